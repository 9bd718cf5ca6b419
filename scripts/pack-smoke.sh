#!/usr/bin/env bash
# Packaging smoke test: packs the library as npm would publish it and checks what a user receives:
# - the tarball holds dist/, docs/ and the README, nothing of the tests or the toolchain, and every relative link of
#   its Markdown leads to a file of the package;
# - it installs, without --force or --legacy-peer-deps, beside effect at the oldest version its peer range accepts,
#   and then beside the drivers' peers at the oldest versions theirs accept;
# - the test kit (effect-cachekit/testing) type-checks and runs from the tarball: a faulty store falls back to the loader;
# - a TypeScript consumer type-checks against the installed declarations with `skipLibCheck: false` and
#   `exactOptionalPropertyTypes` (the published types must be complete, and a wrong option must not compile);
# - a small program runs against the installed package: the entry point's namespaces (without internal functions), a
#   read-through cache over the memory store, the driver deep imports, and the `exports` map that hides `internal/`.
# Expects `npm run build` to have run (builds if dist/ is missing).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cachekit-pack-smoke.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [[ ! -f dist/index.js ]]; then
  echo "dist/ is missing: building"
  npm run build
fi

# Each peer dependency is a caret range whose lower bound is the oldest version the package supports; the test
# installs exactly that version, so the floor the README states is the floor that is tested.
floor() {
  node -e 'const v = require("./package.json").peerDependencies?.[process.argv[1]]
    if (!v) { console.error(`no peer dependency ${process.argv[1]} in package.json`); process.exit(1) }
    const m = /^\^(\d+\.\d+\.\d+)$/.exec(v)
    if (!m) { console.error(`peer dependency ${process.argv[1]} is ${JSON.stringify(v)}, not a range "^x.y.z"`); process.exit(1) }
    console.log(m[1])' "$1"
}
effect_version=$(floor effect)
platform_version=$(floor @effect/platform)
ioredis_version=$(floor ioredis)
platform_node_version=$(floor @effect/platform-node)

# The compiler and Node types the consumer is checked with: the versions this repository builds with.
dev() {
  node -e 'const v = require("./package.json").devDependencies?.[process.argv[1]]
    if (!v) { console.error(`no dev dependency ${process.argv[1]} in package.json`); process.exit(1) }
    console.log(v)' "$1"
}
typescript_version=$(dev typescript)
types_node_version=$(dev @types/node)

# The versions the repository develops and runs its tests with are inside the peer ranges.
node -e 'const p = require("./package.json")
  const parse = (v) => v.split(".").map(Number)
  for (const [name, range] of Object.entries(p.peerDependencies)) {
    const pin = p.devDependencies?.[name]
    const [fM, fm, fp] = parse(range.slice(1))
    const [M, m, pp] = parse(pin ?? "0.0.0")
    const atLeast = M > fM || (M === fM && (m > fm || (m === fm && pp >= fp)))
    const sameLine = fM === 0 ? M === 0 && m === fm : M === fM
    if (!pin || !atLeast || !sameLine) {
      console.error(`devDependencies pin ${name} at ${pin}, outside its peer range ${range}`)
      process.exit(1)
    }
  }'

echo "--- npm pack"
mkdir -p "$tmp/pack"
npm pack --silent --pack-destination "$tmp/pack" >"$tmp/pack.out"
tarball=$(find "$tmp/pack" -maxdepth 1 -name '*.tgz' -print -quit)
if [[ -z "$tarball" ]]; then
  echo "npm pack produced no tarball" >&2
  cat "$tmp/pack.out" >&2
  exit 1
fi
echo "packed $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB)"

# What the tarball holds: the entry point and its types, and nothing of the tests or the toolchain.
tar -tzf "$tarball" | sed 's|^package/||' | sort >"$tmp/contents.txt"
for required in package.json README.md dist/index.js dist/index.d.ts docs/getting-started.md; do
  if ! grep -qx "$required" "$tmp/contents.txt"; then
    echo "the tarball has no $required" >&2
    exit 1
  fi
done
if grep -E '^(test|bench|examples|scripts|node_modules|\.ci)/' "$tmp/contents.txt"; then
  echo "the tarball holds files it should not (above)" >&2
  exit 1
fi
echo "$(wc -l <"$tmp/contents.txt") files in the tarball"

# The README and the docs as the registry and an installed copy show them: every relative link must lead to a file
# in the package (links to the repository are absolute).
echo "--- relative links of the packaged Markdown"
mkdir -p "$tmp/extract"
tar -xzf "$tarball" -C "$tmp/extract"
node - "$tmp/extract/package" <<'JS'
const { existsSync, readFileSync } = require("node:fs")
const { dirname, join, relative, resolve } = require("node:path")
const { execFileSync } = require("node:child_process")
const root = process.argv[2]
const files = execFileSync("find", [root, "-name", "*.md", "-not", "-path", "*/node_modules/*"], { encoding: "utf8" })
  .split("\n").filter(Boolean)
const dead = []
for (const file of files) {
  const text = readFileSync(file, "utf8").replace(/```[\s\S]*?```/g, "")
  for (const [, target] of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("#")) continue
    const path = resolve(dirname(file), decodeURIComponent(target.split("#")[0]))
    if (relative(root, path).startsWith("..") || !existsSync(path)) dead.push(`${relative(root, file)}: ${target}`)
  }
}
if (dead.length > 0) {
  console.error(`links to files that are not in the package:\n  ${dead.join("\n  ")}`)
  process.exit(1)
}
console.log(`ok: the relative links of ${files.length} Markdown files lead to files in the package`)
JS

mkdir -p "$tmp/app"
cat >"$tmp/app/package.json" <<'JSON'
{
  "name": "cachekit-pack-smoke",
  "version": "0.0.0",
  "private": true,
  "type": "module"
}
JSON
installed() {
  (cd "$tmp/app" && node -p 'require(process.argv[1] + "/package.json").version' "$1")
}
expect_installed() {
  local got
  got=$(installed "$1")
  if [[ "$got" != "$2" ]]; then
    echo "$1 $got is installed, expected $2" >&2
    exit 1
  fi
}

# A project that already has Effect at the oldest supported version, and uses the memory store only: the package
# installs beside it without the optional drivers' peers, and without --force or --legacy-peer-deps.
echo "--- npm install effect@$effect_version, then the tarball"
(
  cd "$tmp/app"
  npm install --no-audit --no-fund --prefer-offline --save-exact "effect@$effect_version"
  npm install --no-audit --no-fund --prefer-offline "$tarball"
)
expect_installed effect "$effect_version"

# The drivers' peers at their oldest supported versions, and the compiler the consumer is checked with.
echo "--- npm install @effect/platform@$platform_version, @effect/platform-node@$platform_node_version, ioredis@$ioredis_version"
(
  cd "$tmp/app"
  npm install --no-audit --no-fund --prefer-offline --save-exact \
    "@effect/platform@$platform_version" \
    "@effect/platform-node@$platform_node_version" \
    "ioredis@$ioredis_version" \
    "typescript@$typescript_version" \
    "@types/node@$types_node_version"
)
expect_installed effect "$effect_version"
expect_installed @effect/platform "$platform_version"
expect_installed @effect/platform-node "$platform_node_version"
expect_installed ioredis "$ioredis_version"
echo "installed: effect $effect_version, @effect/platform $platform_version, @effect/platform-node $platform_node_version, ioredis $ioredis_version"

echo "--- type check of a consumer (skipLibCheck: false, exactOptionalPropertyTypes)"
cat >"$tmp/app/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022",
    "lib": ["ES2022"],
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "types": ["node"],
    "strict": true,
    "exactOptionalPropertyTypes": true,
    "noUncheckedIndexedAccess": true,
    "skipLibCheck": false,
    "noEmit": true
  },
  "files": ["consumer.ts"]
}
JSON
cat >"$tmp/app/consumer.ts" <<'TS'
import { Config, Context, Effect, Layer, Option, Schema } from "effect"
import { Cache, CacheAside, CacheError, CacheStore, HashRing, MemoryStore, ReadThrough, Ttl } from "effect-cachekit"
import * as MemcachedStore from "effect-cachekit/MemcachedStore"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import * as TtlModule from "effect-cachekit/Ttl"
import * as Testing from "effect-cachekit/testing"

const User = Schema.Struct({ id: Schema.String, name: Schema.String, active: Schema.Boolean })
type User = typeof User.Type
class DbError extends Schema.TaggedError<DbError>()("DbError", {}) {}
const fetchUser = (id: string): Effect.Effect<User, DbError> => Effect.succeed({ id, name: "Ada", active: true })

class Users extends Context.Tag("app/Users")<Users, ReadThrough.ReadThrough<string, User, DbError>>() {}
const UsersLive = Layer.scoped(
  Users,
  ReadThrough.make({
    namespace: "user",
    value: User,
    lookup: fetchUser,
    ttl: Ttl.jittered("5 minutes", { spread: 0.1 }),
    staleWhileRevalidate: "1 minute"
  })
)
const program: Effect.Effect<User, DbError | CacheError.CacheError, Users> = Effect.flatMap(Users, (users) =>
  users.get("42"))
export const main: Effect.Effect<User, DbError | CacheError.CacheError> = program.pipe(
  Effect.provide(UsersLive),
  Effect.provide(MemoryStore.layer({ capacity: 1_000 }))
)

// The TTL policies are complete types.
const perValue: Ttl.Ttl<User> = Ttl.fromValue((user: User) => (user.active ? "1 minute" : "1 hour"))
const fixed: TtlModule.Ttl = TtlModule.fixed("5 minutes")
export const millis: number | undefined = fixed.nominalMillis
export const isPolicy: boolean = Ttl.isTtl(perValue)
export const aside = CacheAside.make({ namespace: "user", value: User, ttl: perValue })
export const cachedUser = fetchUser("42").pipe(Cache.cached({ namespace: "user", key: "42", value: User, ttl: fixed }))

// A wrong TTL must not compile.
export const wrongTtl = ReadThrough.make({
  namespace: "user",
  value: User,
  lookup: fetchUser,
  // @ts-expect-error: a TTL is a duration or a Ttl policy
  ttl: { bogus: true }
})
// @ts-expect-error: an object that is not built by the Ttl module is not a policy
export const notAPolicy: Ttl.Ttl<User> = { bogus: true }

// Stores, errors, the ring.
export const hinted: CacheStore.Value = { [CacheStore.SizeHint]: 128 }
export const isError: boolean = CacheError.isCacheError(new CacheError.StoreError({
  store: "memory",
  operation: "get",
  reason: "timeout",
  detail: "no answer"
}))
export const ring = HashRing.make([{ name: "a", node: 1 }])
export const redisStore: Layer.Layer<CacheStore.CacheStore> = RedisStore.layer({ url: "redis://127.0.0.1:6379" })
export const redisClient: Layer.Layer<Redis.RedisClient> = Redis.layer({ url: "redis://127.0.0.1:6379" })
export const fromConfig = RedisStore.layerConfig({ url: Config.redacted("REDIS_URL") })
export const memcached: Layer.Layer<CacheStore.CacheStore> = MemcachedStore.layer({ servers: ["127.0.0.1:11211"] })
export const none: Option.Option<number> = Option.none()

// The test kit: a fault-injecting wrapper and the conformance suite are typed for a consumer.
export const storeTest: Layer.Layer<CacheStore.CacheStore | Testing.Faults> = Testing.layerFaulty.pipe(
  Layer.provide(MemoryStore.layer())
)
export const outage: Effect.Effect<void, never, Testing.Faults> = Effect.flatMap(
  Testing.Faults,
  (faults) => faults.inject(Testing.failure("connection"), ["get"])
)
export const conformanceCases: number = Testing.storeSuiteCases.length
TS
(cd "$tmp/app" && node_modules/.bin/tsc -p tsconfig.json)
echo "ok: the consumer type-checks against the published declarations"

echo "--- smoke program"
cat >"$tmp/app/smoke.mjs" <<'JS'
import assert from "node:assert/strict"
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { Effect, Schema } from "effect"
import * as Kit from "effect-cachekit"

const require = createRequire(import.meta.url)
const packageDir = dirname(require.resolve("effect-cachekit/package.json"))

// 1. The entry point's namespaces.
const namespaces = [
  "CacheStore",
  "MemoryStore",
  "ReadThrough",
  "CacheAside",
  "WriteThrough",
  "WriteBehind",
  "Cache",
  "Ttl",
  "CacheError",
  "CacheMetrics"
]
for (const name of namespaces) {
  assert.equal(typeof Kit[name], "object", `effect-cachekit exports the namespace ${name}`)
}
console.log(`ok: namespaces ${namespaces.join(", ")}`)

// Internal functions stay internal.
for (const [namespace, name] of [["CacheStore", "ttlMillis"], ["CacheStore", "globToRegExp"], ["CacheError", "assertOption"]]) {
  assert.ok(!(name in Kit[namespace]), `${namespace}.${name} is an internal function, not part of the API`)
}
console.log("ok: no internal function in the public namespaces")

// 2. A read-through cache over the memory store: the second read of a key is a hit.
const { MemoryStore, ReadThrough } = Kit
let lookups = 0
const program = Effect.gen(function*() {
  const cache = yield* ReadThrough.make({
    namespace: "smoke",
    value: Schema.String,
    lookup: (id) =>
      Effect.sync(() => {
        lookups++
        return "v" + id
      }),
    ttl: "1 minute"
  })
  const first = yield* cache.get("1")
  const second = yield* cache.get("1")
  const stats = yield* cache.stats
  return { first, second, stats }
}).pipe(Effect.scoped, Effect.provide(MemoryStore.layer()))

const { first, second, stats } = await Effect.runPromise(program)
assert.equal(first, "v1", "the first read returns the looked-up value")
assert.equal(second, "v1", "the second read returns the same value")
assert.equal(lookups, 1, "the lookup ran once")
assert.ok(stats.hits >= 1, `the second read is a hit (stats: ${JSON.stringify(stats)})`)
assert.ok(stats.misses >= 1, `the first read is a miss (stats: ${JSON.stringify(stats)})`)
console.log(`ok: read-through over the memory store (${JSON.stringify(stats)})`)

// 3. The driver deep imports, where the package has them.
for (const driver of ["RedisStore", "MemcachedStore"]) {
  if (!existsSync(join(packageDir, "dist", `${driver}.js`))) {
    console.log(`skipped: effect-cachekit/${driver} (no dist/${driver}.js in the package)`)
    continue
  }
  const module = await import(`effect-cachekit/${driver}`)
  assert.equal(typeof module.layer, "function", `effect-cachekit/${driver} exports a layer function`)
  console.log(`ok: effect-cachekit/${driver}`)
}

// 4. The test kit: a store wrapped by Testing.faulty fails as told, and the read-through falls back to its loader.
const Testing = await import("effect-cachekit/testing")
assert.equal(typeof Testing.storeSuite, "function", "effect-cachekit/testing exports storeSuite")
const fallback = await Effect.runPromise(
  Effect.gen(function*() {
    const { faults, store } = yield* Effect.flatMap(MemoryStore.make(), Testing.faulty)
    const cache = yield* ReadThrough.make({
      namespace: "kit",
      value: Schema.String,
      lookup: (id) => Effect.succeed("loaded " + id),
      ttl: "1 minute"
    }).pipe(Effect.provideService(Kit.CacheStore.CacheStore, store))
    yield* faults.inject(Testing.failure("connection"))
    const value = yield* cache.get("1")
    const calls = yield* faults.calls
    return { value, gets: calls.get }
  }).pipe(Effect.scoped)
)
assert.equal(fallback.value, "loaded 1", "a failing store falls back to the loader")
assert.ok(fallback.gets >= 1, "the read reached the faulty store")
console.log(`ok: effect-cachekit/testing (${Testing.storeSuiteCases.length} conformance cases; a faulty store falls back)`)

// 5. internal/ is not importable, although its files are in the package.
assert.ok(existsSync(join(packageDir, "dist", "internal", "store.js")), "dist/internal/store.js is in the package")
for (const specifier of ["effect-cachekit/internal/store", "effect-cachekit/internal/store.js"]) {
  await assert.rejects(
    import(specifier),
    (error) => error?.code === "ERR_PACKAGE_PATH_NOT_EXPORTED",
    `${specifier} must not be importable`
  )
}
console.log("ok: effect-cachekit/internal/* is not exported")
JS
(cd "$tmp/app" && node smoke.mjs)

echo "pack smoke test passed"
