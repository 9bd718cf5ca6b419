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

/**
 * Short reuse distances: each request is a new key with probability 0.25; otherwise it repeats the
 * key requested d positions earlier, with d log-uniform in 1..4,000. Nearer requests come back more
 * often, so the most recent keys are the best ones to keep: LRU's home ground.
 */
const REUSE_REQUESTS = 600_000

const reuse = (): Float64Array => {
  const random = seeded(11)
  const out = new Float64Array(REUSE_REQUESTS)
  let fresh = 0
  for (let i = 0; i < REUSE_REQUESTS; i++) {
    if (i === 0 || random() < 0.25) out[i] = fresh++
    else out[i] = out[i - Math.min(i, Math.floor(Math.exp(random() * Math.log(4000))))]!
  }
  return out
}

/**
 * Bursts over a skewed background: 70 % of requests belong to bursts (a new key requested 2–6
 * times within the next ~1,500 requests, then never again), 30 % are Zipf over 50,000 keys.
 */
const BURST_REQUESTS = 600_000

const bursts = (): Float64Array => {
  const random = seeded(13)
  const background = zipfSampler(50_000, ZIPF_S, seeded(14))
  const due = new Map<number, Array<number>>()
  const out = new KeyBuffer()
  let fresh = 1_000_000
  for (let t = 0; out.length < BURST_REQUESTS; t++) {
    const pending = due.get(t)
    due.delete(t)
    if (pending !== undefined) { for (const key of pending) out.push(key) }
    if (random() < 0.3) {
      out.push(background())
      continue
    }
    const key = fresh++
    out.push(key)
    const repeats = 1 + Math.floor(random() * 5)
    for (let r = 0; r < repeats; r++) {
      const at = t + 1 + Math.floor(random() * random() * 1500)
      const list = due.get(at)
      if (list === undefined) due.set(at, [key])
      else list.push(key)
    }
  }
  return out.toArray().subarray(0, BURST_REQUESTS)
}

/**
 * A working set that shifts: requests are uniform over a band of 3,000 consecutive keys, and the
 * band moves one key ahead every 8 requests, so old keys fade out and new ones come in.
 */
const SHIFT_REQUESTS = 600_000

const shifting = (): Float64Array => {
  const random = seeded(17)
  const out = new Float64Array(SHIFT_REQUESTS)
  for (let i = 0; i < SHIFT_REQUESTS; i++) out[i] = (i >>> 3) + Math.floor(random() * 3000)
  return out
}

/**
 * Alternating phases of 100,000 requests: a recency phase (the short-reuse model above) and a
 * frequency phase (Zipf over a fixed 20,000 keys). The best window size flips at every phase.
 */
const PHASE_REQUESTS = 100_000
const PHASES = 8

const phases = (): Float64Array => {
  const random = seeded(19)
  const hot = zipfSampler(20_000, ZIPF_S, seeded(20))
  const out = new Float64Array(PHASE_REQUESTS * PHASES)
  let fresh = 1_000_000
  for (let p = 0; p < PHASES; p++) {
    const start = p * PHASE_REQUESTS
    for (let i = start; i < start + PHASE_REQUESTS; i++) {
      if (p % 2 === 1) out[i] = hot()
      else if (i === start || random() < 0.25) out[i] = fresh++
      else out[i] = out[i - Math.min(i - start, Math.floor(Math.exp(random() * Math.log(4000))))]!
    }
  }
  return out
}

const SIZES = [250, 500, 1000, 2000, 4000, 8000]

const workloads: ReadonlyArray<Workload> = [
  {
    name: "OLTP",
    source: "OLTP.lis (ARC traces)",
    capacities: SIZES,
    keys: () => parseArc(readTrace("OLTP.lis"))
  },
  {
    name: "gli",
    source: "gli.trace (LIRS traces)",
    capacities: [250, 500, 1000, 1500, 2000],
    keys: () => parseLirs(readTrace("gli.trace"))
  },
  {
    name: "loop",
    source: "loop.trace (LIRS traces)",
    capacities: [250, 500, 750, 1000, 1250],
    keys: () => parseLirs(readTrace("loop.trace"))
  },
  {
    name: "zipf",
    source: `synthetic: Zipf s=${ZIPF_S}, ${ZIPF_KEYS} keys, ${ZIPF_REQUESTS} requests`,
    capacities: [500, 1000, 2500, 10_000, 25_000],
    keys: zipf
  },
  {
    name: "zipf+scan",
    source: `synthetic: Zipf s=${ZIPF_S} with a ${SCAN_LENGTH}-key one-off scan every ${SCAN_EVERY} requests`,
    capacities: [500, 1000, 2500, 10_000, 25_000],
    keys: zipfWithScans
  },
  {
    name: "recency",
    source: `synthetic: ${RECENCY_KEYS} keys, each requested three times within ~750 requests, then never`,
    capacities: [100, 250, 500, 750, 1000, 2000],
    keys: recency
  },
  {
    name: "reuse",
    source: "synthetic: a new key 25 % of the time, else the key of d requests ago, d log-uniform in 1..4,000",
    capacities: SIZES,
    keys: reuse
  },
  {
    name: "bursts",
    source: "synthetic: 70 % bursts (a new key 2–6 times within ~1,500 requests), 30 % Zipf over 50,000 keys",
    capacities: SIZES,
    keys: bursts
  },
  {
    name: "shifting",
    source: "synthetic: uniform over a band of 3,000 keys that moves one key every 8 requests",
    capacities: [500, 1000, 2000, 3000, 4000],
    keys: shifting
  },
  {
    name: "phases",
    source: "synthetic: 100,000-request phases alternating short reuse and Zipf over 20,000 keys",
    capacities: SIZES,
    keys: phases
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
  const args = process.argv.slice(2)
  // --quick: no optimum and no cross-check of the store's LRU, for fast comparisons while tuning.
  const quick = args.includes("--quick")
  // --sizes=500,1000: only these capacities.
  const sizesArg = args.find((arg) => arg.startsWith("--sizes="))
  const sizes = sizesArg === undefined ? undefined : sizesArg.slice("--sizes=".length).split(",").map(Number)
  const only = args.filter((arg) => !arg.startsWith("--"))
  const selected = only.length === 0 ? workloads : workloads.filter((w) => only.includes(w.name))
  if (selected.length === 0) {
    console.error(`No such workload: ${only.join(", ")}. Known: ${workloads.map((w) => w.name).join(", ")}`)
    process.exit(1)
  }
  // Fail before printing anything if a real trace is wanted and the folder is missing.
  if (selected.some((w) => !w.source.startsWith("synthetic"))) tracesDir()
  const rows: Array<Row> = []
  let worst: Row | undefined
  for (const workload of selected) {
    const keys = workload.keys()
    console.log(`\n${workload.name} — ${workload.source}, ${keys.length.toLocaleString("en-US")} requests\n`)
    console.log("| capacity | LRU (lru-cache) % | W-TinyLFU % | optimal % | W-TinyLFU − LRU |")
    console.log("|---:|---:|---:|---:|---:|")
    for (const capacity of sizes ?? workload.capacities) {
      const lru = simulateLruCache(keys, capacity)
      const row: Row = {
        trace: workload.name,
        capacity,
        requests: keys.length,
        lru,
        wtinylfu: simulateStore(keys, capacity, "w-tinylfu"),
        optimal: quick ? NaN : simulateOptimal(keys, capacity),
        lruPolicy: quick ? lru : simulateStore(keys, capacity, "lru")
      }
      rows.push(row)
      const delta = (row.wtinylfu - row.lru) * 100
      if (worst === undefined || delta < (worst.wtinylfu - worst.lru) * 100) worst = row
      console.log(
        `| ${capacity.toLocaleString("en-US")} | ${pct(row.lru)} | ${pct(row.wtinylfu)} | ` +
          `${quick ? "–" : pct(row.optimal)} | ${delta >= 0 ? "+" : ""}${delta.toFixed(2)} |`
      )
      if (Math.abs(row.lruPolicy - row.lru) > 1e-9) {
        console.log(`  note: the store's LRU policy got ${pct(row.lruPolicy)} % where lru-cache got ${pct(row.lru)} %`)
      }
    }
  }
  if (worst !== undefined) {
    console.log(
      `\nclosest to LRU: ${worst.trace} at ${worst.capacity.toLocaleString("en-US")} entries, ` +
        `W-TinyLFU − LRU = ${((worst.wtinylfu - worst.lru) * 100).toFixed(2)} points`
    )
  }
  const out = join(repoRoot, "bench", "results", "hitrate.json")
  mkdirSync(dirname(out), { recursive: true })
  // Only a full run replaces the results file the chart and docs are built from.
  if (only.length === 0 && !quick && sizes === undefined) {
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
