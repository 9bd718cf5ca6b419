/**
 * Type-checks the TypeScript code blocks of README.md, docs/*.md and the JSDoc of every module under src/
 * (the `@example` blocks): each ```ts block becomes a module under .tmp/docs-check/ and the whole set is
 * checked with the project's compiler options. A block that should not be checked (a fragment) is
 * fenced as ```ts nocheck.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const root = new URL("..", import.meta.url).pathname
const out = join(root, ".tmp", "docs-check")
rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })

// The README states the supported range of every peer dependency: the ranges in package.json, whose lower
// bounds the packaging smoke test installs.
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  readonly peerDependencies: Record<string, string>
}
const readme = readFileSync(join(root, "README.md"), "utf8")
const unstated = Object.entries(pkg.peerDependencies).filter(([name, range]) =>
  !readme.includes(`\`${name}\` ${range}`)
)
if (unstated.length > 0) {
  for (const [name, range] of unstated) {
    console.error(`README.md does not state the peer dependency \`${name}\` ${range}`)
  }
  process.exit(1)
}

const codeBlocks = /```(ts|typescript)([^\n]*)\n([\s\S]*?)```/g
const written: Array<string> = []
const write = (file: string, text: string) => {
  const blocks = [...text.matchAll(codeBlocks)]
  blocks.forEach((match, i) => {
    if ((match[2] ?? "").includes("nocheck")) return
    const name = `${file.replace(/[/.]/g, "_")}_${i}.ts`
    // each block is its own module
    writeFileSync(join(out, name), `${match[3]}\nexport {}\n`)
    written.push(name)
  })
}

const markdown = [
  "README.md",
  ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)
]
for (const file of markdown) write(file, readFileSync(join(root, file), "utf8"))

// JSDoc: the code blocks of every /** … */ comment, without the comment's leading " * ".
const sources = readdirSync(join(root, "src"), { recursive: true, encoding: "utf8" })
  .filter((f) => f.endsWith(".ts"))
  .map((f) => `src/${f}`)
  .sort()
let jsdocBlocks = 0
const unfenced: Array<string> = []
for (const file of sources) {
  const comments = [...readFileSync(join(root, file), "utf8").matchAll(/\/\*\*([\s\S]*?)\*\//g)]
  const text = comments.map((c) => c[1]!.split("\n").map((line) => line.replace(/^\s*\* ?/, "")).join("\n")).join("\n")
  // An example that is not a ```ts block would not be checked.
  for (const match of text.matchAll(/@example(?!\s*```(ts|typescript)\b)/g)) unfenced.push(`${file}: ${match[0]}`)
  const before = written.length
  write(file, text)
  jsdocBlocks += written.length - before
}

if (unfenced.length > 0) {
  console.error(`@example without a \`\`\`ts code block after it:\n  ${unfenced.join("\n  ")}`)
  process.exit(1)
}

writeFileSync(
  join(out, "tsconfig.json"),
  JSON.stringify(
    {
      extends: "../../tsconfig.base.json",
      compilerOptions: {
        noEmit: true,
        noUnusedLocals: false,
        noUnusedParameters: false,
        rootDir: "../..",
        baseUrl: "../..",
        paths: { "effect-cachekit": ["./src/index.ts"], "effect-cachekit/*": ["./src/*.ts"] }
      },
      include: ["*.ts"]
    },
    null,
    2
  )
)

try {
  execFileSync(join(root, "node_modules", ".bin", "tsc"), ["-p", join(out, "tsconfig.json")], { stdio: "inherit" })
  console.log(`docs: ${written.length} code blocks type-check (${jsdocBlocks} of them in JSDoc)`)
} catch {
  console.error("docs: code blocks do not type-check (files under .tmp/docs-check)")
  process.exit(1)
}
