/**
 * What an entry costs in the memory store, next to `lru-cache`:
 *
 * 1. heap bytes per entry at 100,000 small entries (16-character keys, 16-byte Uint8Array values
 *    created beforehand, so only the cache's own structures are counted);
 * 2. the cost of a hit: a Map lookup plus `policy.onHit`, W-TinyLFU against LRU, and a full hit
 *    through the store's core and through `lru-cache`, in nanoseconds per hit — once with
 *    100,000 entries (memory-bound: most of a hit is waiting for cache misses) and once with
 *    1,000 entries (everything in the CPU cache: the policies' own work shows).
 *
 *   node --expose-gc --import tsx bench/memory.ts     (re-runs itself with --expose-gc if needed)
 *
 * Timings move with machine load. To keep other processes' CPU use out of the figures, hits are
 * timed in this process's CPU time (not wall time); rounds alternate between the contenders; the
 * median and the best round are reported, and ratios are the median of per-round ratios. Cache
 * and memory-bandwidth contention still leak in: run the script more than once before trusting a
 * figure.
 */
import { LRUCache } from "lru-cache"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import type { EvictionKind } from "../src/internal/eviction/index.js"
import { makePolicy } from "../src/internal/eviction/index.js"
import type { Policy } from "../src/internal/eviction/policy.js"
import { hashKey, NO_SLOT } from "../src/internal/eviction/policy.js"
import { ABSENT, MemoryCore } from "../src/internal/memoryStore.js"
import { seeded } from "./lib.js"

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) {
  const result = spawnSync(
    process.execPath,
    ["--expose-gc", "--import", "tsx", fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: "inherit" }
  )
  process.exit(result.status ?? 1)
}
const collect = gc!

const ENTRIES = 100_000
const MEMORY_ROUNDS = 3
const HIT_ROUNDS = 7
const HITS_PER_ROUND = 2_000_000

const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const keys: Array<string> = []
const values: Array<Uint8Array> = []
for (let i = 0; i < ENTRIES; i++) {
  // 16 characters, the length of a short namespaced id.
  keys.push(`k:${i.toString(36).padStart(14, "0")}`)
  values.push(new Uint8Array(16))
}

/**
 * Caches are measured full, as they run in production: one key more than fits is written, so the
 * policy has evicted once (W-TinyLFU only starts its window bookkeeping then), and whichever
 * measured key that pushed out is written back in place of the extra one.
 */
const SPARE = "k:spare-key-0000"

const buildCore = (eviction: EvictionKind, entries: number) => () => {
  const core = new MemoryCore({ capacity: entries, maxBytes: Infinity, eviction })
  for (let i = 0; i < entries; i++) core.write(keys[i]!, values[i]!, 16 + 32, Infinity)
  core.write(SPARE, values[0]!, 16 + 32, Infinity)
  core.delete(SPARE)
  for (let i = 0; i < entries; i++) {
    if (core.peek(keys[i]!, 0) === ABSENT) core.write(keys[i]!, values[i]!, 16 + 32, Infinity)
  }
  return core
}

interface PolicyHarness {
  readonly map: Map<string, number>
  readonly policy: Policy
}

/** The bare minimum a store needs: the map from key to slot, and the policy. */
const buildPolicyOnly = (eviction: EvictionKind, entries: number) => (): PolicyHarness => {
  const map = new Map<string, number>()
  const policy = makePolicy(eviction, entries)
  const slotKeys: Array<string> = []
  const free: Array<number> = []
  policy.grow(entries + 1)
  const add = (key: string) => {
    const slot = free.pop() ?? slotKeys.length
    slotKeys[slot] = key
    map.set(key, slot)
    policy.onAdd(slot, hashKey(key))
  }
  const drop = (slot: number) => {
    map.delete(slotKeys[slot]!)
    free.push(slot)
  }
  for (let i = 0; i < entries; i++) add(keys[i]!)
  // Full, as in production (see SPARE): one eviction, then the measured key set is whole again.
  add(SPARE)
  const victim = policy.evict()
  if (victim !== NO_SLOT) drop(victim)
  const spare = map.get(SPARE)
  if (spare !== undefined) {
    policy.onRemove(spare)
    drop(spare)
  }
  for (let i = 0; i < entries; i++) if (!map.has(keys[i]!)) add(keys[i]!)
  return { map, policy }
}

const buildLruCache = (entries: number) => () => {
  const cache = new LRUCache<string, Uint8Array>({ max: entries })
  for (let i = 0; i < entries; i++) cache.set(keys[i]!, values[i]!)
  return cache
}

// ---------------------------------------------------------------------------------------------
// 1. Heap per entry

const heap = (): number => {
  collect()
  collect()
  const usage = process.memoryUsage()
  // Typed arrays (the sketch, lru-cache's index arrays) live outside the JS heap: count them too.
  return usage.heapUsed + usage.external
}

let sink: unknown = undefined

const perEntry = (build: () => unknown): number => {
  sink = undefined
  const before = heap()
  sink = build()
  const after = heap()
  sink = undefined
  return (after - before) / ENTRIES
}

const memoryContenders: ReadonlyArray<readonly [string, () => unknown]> = [
  ["store core, w-tinylfu", buildCore("w-tinylfu", ENTRIES)],
  ["store core, lru", buildCore("lru", ENTRIES)],
  ["map + slots + w-tinylfu", buildPolicyOnly("w-tinylfu", ENTRIES)],
  ["map + slots + lru", buildPolicyOnly("lru", ENTRIES)],
  ["lru-cache", buildLruCache(ENTRIES)]
]

const memory = new Map<string, Array<number>>()
for (let round = 0; round < MEMORY_ROUNDS; round++) {
  for (const [name, build] of memoryContenders) {
    const list = memory.get(name) ?? []
    list.push(perEntry(build))
    memory.set(name, list)
  }
}

console.log(
  `Heap per entry at ${ENTRIES.toLocaleString("en-US")} entries (median of ${MEMORY_ROUNDS}; keys and values excluded)`
)
for (const [name] of memoryContenders) {
  const samples = memory.get(name)!
  console.log(
    `  ${name.padEnd(30)} ${median(samples).toFixed(1).padStart(7)} B   (${
      samples.map((s) => s.toFixed(1)).join(", ")
    })`
  )
}

// ---------------------------------------------------------------------------------------------
// 2. Hit cost

/** A skewed access sequence over the first `entries` keys (Zipf s=0.9), ranks scattered over them. */
const accessSequence = (entries: number): Array<string> => {
  const random = seeded(1)
  const order = new Int32Array(entries)
  for (let i = 0; i < entries; i++) order[i] = i
  for (let i = entries - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const t = order[i]!
    order[i] = order[j]!
    order[j] = t
  }
  const cdf = new Float64Array(entries)
  let total = 0
  for (let i = 0; i < entries; i++) {
    total += 1 / Math.pow(i + 1, 0.9)
    cdf[i] = total
  }
  const out: Array<string> = []
  for (let n = 0; n < HITS_PER_ROUND; n++) {
    const u = random() * total
    let lo = 0
    let hi = entries - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid]! < u) lo = mid + 1
      else hi = mid
    }
    out.push(keys[order[lo]!]!)
  }
  return out
}

/** CPU time of this process in nanoseconds (user + system). */
const cpuNanos = (): number => {
  const { system, user } = process.cpuUsage()
  return (user + system) * 1000
}

/** A hit as the store performs it: find the node, tell the policy. Returns ns per hit. */
const timePolicyHits = ({ map, policy }: PolicyHarness, sequence: Array<string>): number => {
  const start = cpuNanos()
  for (let i = 0; i < sequence.length; i++) policy.onHit(map.get(sequence[i]!)!)
  return (cpuNanos() - start) / sequence.length
}

const timeCoreHits = (core: MemoryCore, sequence: Array<string>): number => {
  let found = 0
  const start = cpuNanos()
  for (let i = 0; i < sequence.length; i++) if (core.lookup(sequence[i]!, 0) !== undefined) found++
  const ns = (cpuNanos() - start) / sequence.length
  if (found !== sequence.length) throw new Error("expected every lookup to hit")
  return ns
}

const timeLruCacheHits = (cache: LRUCache<string, Uint8Array>, sequence: Array<string>): number => {
  let found = 0
  const start = cpuNanos()
  for (let i = 0; i < sequence.length; i++) if (cache.get(sequence[i]!) !== undefined) found++
  const ns = (cpuNanos() - start) / sequence.length
  if (found !== sequence.length) throw new Error("expected every lookup to hit")
  return ns
}

const hitCost = (entries: number): void => {
  const sequence = accessSequence(entries)
  const lruPolicy = buildPolicyOnly("lru", entries)()
  const tinyPolicy = buildPolicyOnly("w-tinylfu", entries)()
  const lruCore = buildCore("lru", entries)()
  const tinyCore = buildCore("w-tinylfu", entries)()
  const lruCache = buildLruCache(entries)()
  const contenders: ReadonlyArray<readonly [string, () => number]> = [
    ["map.get + lru.onHit", () => timePolicyHits(lruPolicy, sequence)],
    ["map.get + w-tinylfu.onHit", () => timePolicyHits(tinyPolicy, sequence)],
    ["store core lookup, lru", () => timeCoreHits(lruCore, sequence)],
    ["store core lookup, w-tinylfu", () => timeCoreHits(tinyCore, sequence)],
    ["lru-cache get", () => timeLruCacheHits(lruCache, sequence)]
  ]
  // One untimed pass each, so every contender runs optimised code before it is measured.
  for (const [, run] of contenders) run()
  const times = new Map<string, Array<number>>()
  for (let round = 0; round < HIT_ROUNDS; round++) {
    for (const [name, run] of contenders) {
      const list = times.get(name) ?? []
      list.push(run())
      times.set(name, list)
    }
  }
  console.log(
    `\nHit cost, ${HITS_PER_ROUND.toLocaleString("en-US")} Zipf-distributed hits over ${
      entries.toLocaleString("en-US")
    } entries ` +
      `(CPU time; median and best of ${HIT_ROUNDS} interleaved rounds)`
  )
  for (const [name] of contenders) {
    const samples = times.get(name)!
    console.log(
      `  ${name.padEnd(30)} ${median(samples).toFixed(1).padStart(6)} ns/hit median, ` +
        `${Math.min(...samples).toFixed(1).padStart(6)} best   (${samples.map((s) => s.toFixed(0)).join(", ")})`
    )
  }
  // Contenders ran back to back within a round, so a per-round ratio cancels most of the drift.
  const ratio = (a: string, b: string): string => {
    const xs = times.get(a)!
    const ys = times.get(b)!
    const ratios = xs.map((x, i) => x / ys[i]!)
    return `${median(ratios).toFixed(2)}×  (per round: ${ratios.map((r) => r.toFixed(2)).join(", ")})`
  }
  console.log(`  w-tinylfu / lru, map + policy:         ${ratio("map.get + w-tinylfu.onHit", "map.get + lru.onHit")}`)
  console.log(
    `  w-tinylfu / lru, store core:           ${ratio("store core lookup, w-tinylfu", "store core lookup, lru")}`
  )
  console.log(`  store core w-tinylfu / lru-cache get:  ${ratio("store core lookup, w-tinylfu", "lru-cache get")}`)
}

hitCost(ENTRIES)
hitCost(1_000)
console.log(
  "\n(targets: a W-TinyLFU hit, map + policy, within 1.2× of an LRU hit; ≤ 110 B per entry at 100,000 entries)"
)
void sink
