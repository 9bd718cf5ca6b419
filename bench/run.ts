/**
 * `npm run bench`: builds the package, then runs every benchmark scenario, one process each, one
 * after another (so they do not compete for the two cores), and prints their tables.
 * `npm run bench -- hit redis` runs only the named scenarios.
 *
 * The scenarios import `effect-cachekit/*` from the built package (`dist/`, through the package's
 * own `exports`), the code users run: the TypeScript sources as a loader compiles them on the fly
 * are not what ships (esbuild's name-keeping helper, for one, runs on every closure it names).
 */
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"

const here = new URL(".", import.meta.url).pathname
const scenarios: ReadonlyArray<
  { readonly name: string; readonly file: string; readonly node?: ReadonlyArray<string> }
> = [
  { name: "hit", file: "hit.ts", node: ["--expose-gc"] },
  { name: "redis", file: "redis.ts", node: ["--expose-gc"] },
  { name: "redis-cluster", file: "redis-cluster.ts", node: ["--expose-gc"] },
  { name: "memcached", file: "memcached.ts", node: ["--expose-gc"] },
  { name: "stores", file: "stores.ts", node: ["--expose-gc"] },
  { name: "memory", file: "memory.ts", node: ["--expose-gc"] },
  { name: "write-behind", file: "write-behind.ts", node: ["--expose-gc"] },
  { name: "stampede", file: "stampede.ts", node: ["--expose-gc"] },
  { name: "joiners", file: "joiners.ts", node: ["--expose-gc"] },
  { name: "baseline", file: "baseline.ts", node: ["--expose-gc"] },
  { name: "hitrate", file: "hitrate.ts" }
]

const wanted = process.argv.slice(2)
let failed = 0
for (const scenario of scenarios) {
  if (wanted.length > 0 && !wanted.includes(scenario.name)) continue
  const file = join(here, scenario.file)
  if (!existsSync(file)) continue
  console.log(`\n## ${scenario.name}\n`)
  const result = spawnSync(process.execPath, [...(scenario.node ?? []), "--import", "tsx", file], {
    stdio: "inherit",
    cwd: join(here, ".."),
    // a tsconfig without the `paths` that map the package name to its sources
    env: { ...process.env, TSX_TSCONFIG_PATH: join(here, "tsconfig.run.json") }
  })
  if (result.status !== 0) {
    failed++
    console.error(`bench ${scenario.name} exited with ${result.status}`)
  }
}
process.exit(failed === 0 ? 0 : 1)
