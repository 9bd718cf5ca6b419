#!/usr/bin/env bash
# Packaging smoke test: packs the library as npm would publish it, installs the tarball with the exact peer
# versions in a throwaway ESM project, and runs a small program against the installed package:
# the entry point's namespaces, a read-through cache over the memory store, the driver deep imports, and the
# `exports` map that hides `internal/`. Expects `npm run build` to have run (builds if dist/ is missing).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cachekit-pack-smoke.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [[ ! -f dist/index.js ]]; then
  echo "dist/ is missing: building"
  npm run build
fi

peer() {
  node -e 'const v = require("./package.json").peerDependencies?.[process.argv[1]]
    if (!v) { console.error(`no peer dependency ${process.argv[1]} in package.json`); process.exit(1) }
    console.log(v)' "$1"
}
effect_version=$(peer effect)
platform_version=$(peer @effect/platform)
ioredis_version=$(peer ioredis)
platform_node_version=$(peer @effect/platform-node)

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
for required in package.json dist/index.js dist/index.d.ts; do
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

echo "--- npm install (effect@$effect_version, @effect/platform@$platform_version, @effect/platform-node@$platform_node_version, ioredis@$ioredis_version)"
mkdir -p "$tmp/app"
cat >"$tmp/app/package.json" <<'JSON'
{
  "name": "cachekit-pack-smoke",
  "version": "0.0.0",
  "private": true,
  "type": "module"
}
JSON
(
  cd "$tmp/app"
  npm install --no-audit --no-fund --prefer-offline \
    "$tarball" \
    "effect@$effect_version" \
    "@effect/platform@$platform_version" \
    "@effect/platform-node@$platform_node_version" \
    "ioredis@$ioredis_version"
)

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
const namespaces = ["CacheStore", "MemoryStore", "ReadThrough", "CacheAside", "Cache", "Ttl", "CacheError", "CacheMetrics"]
for (const name of namespaces) {
  assert.equal(typeof Kit[name], "object", `effect-cachekit exports the namespace ${name}`)
}
console.log(`ok: namespaces ${namespaces.join(", ")}`)

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

// 4. internal/ is not importable, although its files are in the package.
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
