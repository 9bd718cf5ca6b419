/**
 * Hit rate of the memory store's eviction policies on real and synthetic traces, next to plain
 * LRU (the `lru-cache` package) and Belady's offline optimum.
 *
 *   npx tsx bench/hitrate.ts [trace-name …]
 *
 * Real traces are read from `$CACHEKIT_TRACES`, or from `../shared/traces` beside the repository.
 * Synthetic ones (Zipf, Zipf with scans) are generated from a fixed seed, so every run replays
 * exactly the same requests and prints exactly the same figures: hit rates are deterministic,
 * unlike timings.
 *
 * Writes `bench/results/hitrate.json` for `scripts/hitrate-chart.ts`.
 */
import { LRUCache } from "lru-cache"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import type { EvictionKind } from "../src/internal/eviction/index.js"
import { MemoryCore } from "../src/internal/memoryStore.js"
import { seeded } from "./lib.js"

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..")

/** A workload: the requested keys in order. */
interface Workload {
  readonly name: string
  readonly source: string
  readonly capacities: ReadonlyArray<number>
  readonly keys: () => Float64Array
}

/** One measured row of the table. */
interface Row {
  readonly trace: string
  readonly capacity: number
  readonly requests: number
  readonly lru: number
  readonly wtinylfu: number
  readonly optimal: number
  /** The store's own LRU policy: must equal `lru`, or the store's simulation is off. */
  readonly lruPolicy: number
}

// ---------------------------------------------------------------------------------------------
// Traces

const tracesDir = (): string => {
  const fromEnv = process.env["CACHEKIT_TRACES"]
  const dir = fromEnv !== undefined && fromEnv.length > 0
    ? resolve(fromEnv)
    : resolve(repoRoot, "..", "shared", "traces")
  if (!existsSync(dir)) {
    console.error(
      `Trace directory not found: ${dir}\n` +
        "Set CACHEKIT_TRACES to the folder holding OLTP.lis, gli.trace and loop.trace " +
        "(by default it is ../shared/traces next to the repository)."
    )
    process.exit(1)
  }
  return dir
}

const readTrace = (file: string): string => {
  const path = join(tracesDir(), file)
  if (!existsSync(path)) {
    console.error(`Trace file missing: ${path} (set CACHEKIT_TRACES to the folder that holds it)`)
    process.exit(1)
  }
  return readFileSync(path, "utf8")
}

/** Collects keys into a growing typed array without boxing every number. */
class KeyBuffer {
  private data = new Float64Array(1 << 16)
  length = 0
  push(key: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2)
      next.set(this.data)
      this.data = next
    }
    this.data[this.length++] = key
  }
  toArray(): Float64Array {
    return this.data.slice(0, this.length)
  }
}

/** ARC format: `start count ignored reqno` per line, meaning keys start .. start+count-1. */
const parseArc = (text: string): Float64Array => {
  const out = new KeyBuffer()
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/)
    if (fields.length < 2 || fields[0] === "") continue
    const start = Number(fields[0])
    const count = Number(fields[1])
    if (!Number.isFinite(start) || !Number.isFinite(count)) continue
    for (let i = 0; i < count; i++) out.push(start + i)
  }
  return out.toArray()
}

/** LIRS format: one integer key per line; blank lines and `*` are not requests. */
const parseLirs = (text: string): Float64Array => {
  const out = new KeyBuffer()
  for (const line of text.split("\n")) {
    const field = line.trim()
    if (field === "" || field === "*") continue
    const key = Number(field)
    if (Number.isFinite(key)) out.push(key)
  }
  return out.toArray()
}

// ---------------------------------------------------------------------------------------------
// Synthetic workloads

/** Draws ranks 0..n-1 with probability ∝ 1/(rank+1)^s, by binary search over the CDF. */
const zipfSampler = (n: number, s: number, random: () => number): () => number => {
  const cdf = new Float64Array(n)
  let total = 0
  for (let i = 0; i < n; i++) {
    total += 1 / Math.pow(i + 1, s)
    cdf[i] = total
  }
  for (let i = 0; i < n; i++) cdf[i] = cdf[i]! / total
  return () => {
    const u = random()
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid]! < u) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

const ZIPF_KEYS = 100_000
const ZIPF_REQUESTS = 1_000_000
const ZIPF_S = 0.9

const zipf = (): Float64Array => {
  const next = zipfSampler(ZIPF_KEYS, ZIPF_S, seeded(42))
  const out = new Float64Array(ZIPF_REQUESTS)
  for (let i = 0; i < ZIPF_REQUESTS; i++) out[i] = next()
  return out
}

/** Zipf traffic with a scan of 20,000 never-repeated keys after every 50,000 requests. */
const SCAN_EVERY = 50_000
const SCAN_LENGTH = 20_000

const zipfWithScans = (): Float64Array => {
  const next = zipfSampler(ZIPF_KEYS, ZIPF_S, seeded(7))
  const out = new Float64Array(ZIPF_REQUESTS)
  let scanKey = ZIPF_KEYS
  let i = 0
  while (i < ZIPF_REQUESTS) {
    for (let j = 0; j < SCAN_EVERY && i < ZIPF_REQUESTS; j++) out[i++] = next()
    for (let j = 0; j < SCAN_LENGTH && i < ZIPF_REQUESTS; j++) out[i++] = scanKey++
  }
  return out
}

/**
 * Pure recency, where frequency carries no signal: every key is new, requested twice more within
 * the next few hundred requests, then never again. Included because it is where LRU wins.
 */
const RECENCY_KEYS = 200_000

const recency = (): Float64Array => {
  const random = seeded(5)
  const due = new Map<number, Array<number>>()
  const out = new KeyBuffer()
  for (let t = 0; t < RECENCY_KEYS; t++) {
    out.push(t)
    for (const delay of [50 + Math.floor(random() * 600), 100 + Math.floor(random() * 650)]) {
      const list = due.get(t + delay)
      if (list === undefined) due.set(t + delay, [t])
      else list.push(t)
    }
    for (const key of due.get(t) ?? []) out.push(key)
    due.delete(t)
  }
  return out.toArray()
}

const workloads: ReadonlyArray<Workload> = [
  {
    name: "OLTP",
    source: "OLTP.lis (ARC traces)",
    capacities: [1000, 2000],
    keys: () => parseArc(readTrace("OLTP.lis"))
  },
  {
    name: "gli",
    source: "gli.trace (LIRS traces)",
    capacities: [500, 1000],
    keys: () => parseLirs(readTrace("gli.trace"))
  },
  {
    name: "loop",
    source: "loop.trace (LIRS traces)",
    capacities: [500, 1000],
    keys: () => parseLirs(readTrace("loop.trace"))
  },
  {
    name: "zipf",
    source: `synthetic: Zipf s=${ZIPF_S}, ${ZIPF_KEYS} keys, ${ZIPF_REQUESTS} requests`,
    capacities: [1000, 10_000],
    keys: zipf
  },
  {
    name: "zipf+scan",
    source: `synthetic: Zipf s=${ZIPF_S} with a ${SCAN_LENGTH}-key one-off scan every ${SCAN_EVERY} requests`,
    capacities: [1000, 10_000],
    keys: zipfWithScans
  },
  {
    name: "recency",
    source: `synthetic: ${RECENCY_KEYS} keys, each requested three times within ~750 requests, then never`,
    capacities: [500, 1000],
    keys: recency
  }
]

// ---------------------------------------------------------------------------------------------
// Simulators

/** Plain LRU, the way most Node code caches: the `lru-cache` package. */
const simulateLruCache = (keys: Float64Array, capacity: number): number => {
  const cache = new LRUCache<number, true>({ max: capacity })
  let hits = 0
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    if (cache.get(key) !== undefined) hits++
    else cache.set(key, true)
  }
  return hits / keys.length
}

const VALUE = new Uint8Array(0)

/**
 * The memory store's synchronous core, driven the way a read-through cache drives it: a read,
 * and on a miss a write of the loaded value. Keys become strings, as in the store.
 */
const simulateStore = (keys: Float64Array, capacity: number, eviction: EvictionKind): number => {
  const core = new MemoryCore({ capacity, maxBytes: Infinity, eviction })
  let hits = 0
  for (let i = 0; i < keys.length; i++) {
    const key = String(keys[i]!)
    if (core.lookup(key, 0) !== undefined) hits++
    else core.write(key, VALUE, 1, Infinity)
  }
  return hits / keys.length
}

/**
 * Belady's optimum with bypass: on a miss the new key is only kept if some cached key is needed
 * later than it; the key evicted is the one needed furthest in the future. A binary max-heap of
 * (next use, key) with lazy deletion: a popped entry is stale if the key's next use moved on.
 */
const simulateOptimal = (keys: Float64Array, capacity: number): number => {
  const n = keys.length
  // next[i]: position of the next request for keys[i]; keys never requested again get a distinct
  // position past the end, so every priority in the heap is unique and staleness is exact.
  const next = new Float64Array(n)
  const seen = new Map<number, number>()
  for (let i = n - 1; i >= 0; i--) {
    const key = keys[i]!
    next[i] = seen.get(key) ?? n + i
    seen.set(key, i)
  }
  const cached = new Map<number, number>()
  const heapPriority = new Float64Array(n + 1)
  const heapKey = new Float64Array(n + 1)
  let heapSize = 0
  const push = (priority: number, key: number) => {
    let i = heapSize++
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heapPriority[parent]! >= priority) break
      heapPriority[i] = heapPriority[parent]!
      heapKey[i] = heapKey[parent]!
      i = parent
    }
    heapPriority[i] = priority
    heapKey[i] = key
  }
  const pop = () => {
    const lastPriority = heapPriority[--heapSize]!
    const lastKey = heapKey[heapSize]!
    let i = 0
    for (;;) {
      let child = 2 * i + 1
      if (child >= heapSize) break
      if (child + 1 < heapSize && heapPriority[child + 1]! > heapPriority[child]!) child++
      if (heapPriority[child]! <= lastPriority) break
      heapPriority[i] = heapPriority[child]!
      heapKey[i] = heapKey[child]!
      i = child
    }
    heapPriority[i] = lastPriority
    heapKey[i] = lastKey
  }
  let hits = 0
  for (let i = 0; i < n; i++) {
    const key = keys[i]!
    const nextUse = next[i]!
    if (cached.has(key)) {
      hits++
      cached.set(key, nextUse)
      push(nextUse, key)
      continue
    }
    if (cached.size < capacity) {
      cached.set(key, nextUse)
      push(nextUse, key)
      continue
    }
    // Drop stale heap entries until the top is a cached key at its current next use.
    while (cached.get(heapKey[0]!) !== heapPriority[0]!) pop()
    if (heapPriority[0]! > nextUse) {
      cached.delete(heapKey[0]!)
      pop()
      cached.set(key, nextUse)
      push(nextUse, key)
    }
    // Otherwise bypass: every cached key is needed before this one.
  }
  return hits / n
}

// ---------------------------------------------------------------------------------------------
// Report

const pct = (rate: number): string => (rate * 100).toFixed(2)

const main = () => {
  const only = process.argv.slice(2)
  const selected = only.length === 0 ? workloads : workloads.filter((w) => only.includes(w.name))
  if (selected.length === 0) {
    console.error(`No such workload: ${only.join(", ")}. Known: ${workloads.map((w) => w.name).join(", ")}`)
    process.exit(1)
  }
  // Fail before printing anything if a real trace is wanted and the folder is missing.
  if (selected.some((w) => !w.source.startsWith("synthetic"))) tracesDir()
  const rows: Array<Row> = []
  const header = "| trace | capacity | requests | LRU (lru-cache) % | W-TinyLFU % | optimal % | W-TinyLFU − LRU |"
  console.log(header)
  console.log("|---|---:|---:|---:|---:|---:|---:|")
  for (const workload of selected) {
    const keys = workload.keys()
    for (const capacity of workload.capacities) {
      const row: Row = {
        trace: workload.name,
        capacity,
        requests: keys.length,
        lru: simulateLruCache(keys, capacity),
        wtinylfu: simulateStore(keys, capacity, "w-tinylfu"),
        optimal: simulateOptimal(keys, capacity),
        lruPolicy: simulateStore(keys, capacity, "lru")
      }
      rows.push(row)
      const delta = (row.wtinylfu - row.lru) * 100
      console.log(
        `| ${row.trace} | ${capacity.toLocaleString("en-US")} | ${keys.length.toLocaleString("en-US")} | ` +
          `${pct(row.lru)} | ${pct(row.wtinylfu)} | ${pct(row.optimal)} | ${delta >= 0 ? "+" : ""}${delta.toFixed(2)} |`
      )
      if (Math.abs(row.lruPolicy - row.lru) > 1e-9) {
        console.log(`  note: the store's LRU policy got ${pct(row.lruPolicy)} % where lru-cache got ${pct(row.lru)} %`)
      }
    }
  }
  const out = join(repoRoot, "bench", "results", "hitrate.json")
  mkdirSync(dirname(out), { recursive: true })
  // Only a full run replaces the results file the chart and docs are built from.
  if (only.length === 0) {
    writeFileSync(
      out,
      JSON.stringify(
        {
          description: "Hit rate (hits / requests) per trace and capacity; see docs/eviction.md",
          node: process.version,
          workloads: selected.map((w) => ({ name: w.name, source: w.source })),
          rows
        },
        null,
        2
      ) + "\n"
    )
    console.log(`\nwrote ${out}`)
  }
}

main()
