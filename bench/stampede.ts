/**
 * Stampedes: N concurrent accessors × K keys, each key's loader taking 50 ms, counted in loader
 * calls and read latency. Two parts:
 *
 * - in one process, over memory: effect-cachekit's ReadThrough with each protection (single flight
 *   alone, `lock`, `staleWhileRevalidate`, `earlyRecompute`) against bentocache (memory driver,
 *   with and without a grace period) and cache-manager (its default keyv memory store, with and
 *   without `refreshThreshold`), on the same workload. Per run: **cold** (every read of an empty
 *   cache at once); **hits** (the same burst over warm entries: the floor of a burst, what issuing
 *   and answering N × K concurrent reads costs with nothing to load); **at expiry** (entries with a
 *   2 s TTL, each key read every 10 ms for the last 500 ms before they expire, as a hot key is,
 *   then every read at once 20 ms after they expired);
 * - across 4 OS processes on one Redis (started here on a free loopback port, stopped by PID):
 *   loader calls with and without `lock`, **cold** (the same cold burst split over the processes)
 *   and **at expiry** (one process writes every key, the entries expire, and 20 ms later the same
 *   burst split over the processes reads them again).
 *
 * Loader calls say how many times the source was hit. A read's latency counts from the start of
 * its burst (every read of a burst arrives at once) to its answer, so it includes the time the
 * process takes to issue the reads before it: the same clock for every contender. Each figure is
 * the median of `RUNS` runs, each on fresh caches.
 *
 * Run: `npm run bench -- stampede` (builds first; measures the built package).
 * `STAMPEDE_ACCESSORS` and `STAMPEDE_KEYS` change N (1,000) and K (10), `STAMPEDE_RUNS` the
 * number of runs (3).
 */
import { BentoCache, bentostore } from "bentocache"
import { memoryDriver } from "bentocache/drivers/memory"
import { createCache } from "cache-manager"
import { Duration, Effect, Exit, Layer, ManagedRuntime, Schema, Scope } from "effect"
import type * as Cache from "effect-cachekit/Cache"
import { CacheStore } from "effect-cachekit/CacheStore"
import type { Service as StoreService } from "effect-cachekit/CacheStore"
import * as MemoryStore from "effect-cachekit/MemoryStore"
import * as ReadThrough from "effect-cachekit/ReadThrough"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import { spawn } from "node:child_process"
import { loadavg } from "node:os"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { redisServer } from "../test/harness/redis.js"
import { median } from "./lib.js"
import { withServers } from "./redis-common.js"

const ACCESSORS = Number(process.env.STAMPEDE_ACCESSORS ?? 1000)
const KEYS = Number(process.env.STAMPEDE_KEYS ?? 10)
const LOAD_MS = 50
const TTL_MS = 2000
/** The expiry phase reads each key every `TRICKLE_MS` for this long before the entries expire… */
const TRICKLE_FOR_MS = 500
const TRICKLE_MS = 10
/** …then every read at once, this long after. */
const AFTER_MS = 20
const RUNS = Number(process.env.STAMPEDE_RUNS ?? 3)
const PROCESSES = 4

const Product = Schema.Struct({ id: Schema.String, price: Schema.Number })
type Product = typeof Product.Type
const product = (id: string): Product => ({ id, price: id.length * 1.25 })

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)))
const collect = (globalThis as { gc?: () => void }).gc ?? (() => {})

/** The reads of one burst: accessor after accessor, each reading every key. */
const burstKeys = (keys: ReadonlyArray<string>, accessors: number): Array<string> =>
  Array.from({ length: accessors * keys.length }, (_, i) => keys[i % keys.length]!)

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!

const lookupOptions = {
  ttl: Duration.millis(TTL_MS),
  value: Product
} as const

/** The protections of effect-cachekit measured, as ReadThrough options. */
const protections = {
  "single flight only": {},
  "lock": { lock: { ttl: "5 seconds", wait: "5 seconds" } },
  "stale-while-revalidate": { staleWhileRevalidate: "1 minute" },
  "earlyRecompute (β 1)": { earlyRecompute: { beta: 1 } }
} as const satisfies Record<string, Partial<Cache.Options<Product, typeof Product.Encoded>>>

// -------------------------------------------------------------------------------------------------
// in one process

/** One cache under test: its reads, its loader calls so far, and how to drop it. */
interface Subject {
  /** Runs every read of `keys` at once; each read's latency in ms. */
  readonly burst: (keys: ReadonlyArray<string>) => Promise<Array<number>>
  readonly calls: () => number
  readonly close: () => Promise<void>
}

interface Contender {
  readonly name: string
  readonly make: (run: number) => Promise<Subject>
}

const promiseBurst = (get: (key: string) => Promise<unknown>) => (keys: ReadonlyArray<string>) => {
  const start = performance.now()
  return Promise.all(keys.map((key) => get(key).then(() => performance.now() - start)))
}

/**
 * Every read at once, each its own fiber started with `runPromise`, as the handlers of a server
 * run. (One `Effect.forEach` of the 10,000 reads with unbounded concurrency would measure the
 * forEach: on the machine of the README it alone costs 30–75 µs of CPU per element, even for
 * `Effect.void`, against about 3 µs for a `runPromise` of a hit.)
 */
const effectBurst = <E>(
  runtime: ManagedRuntime.ManagedRuntime<never, never>,
  get: (key: string) => Effect.Effect<unknown, E>
) => promiseBurst((key) => runtime.runPromise(get(key)))

const ours = (name: string, options: Partial<Cache.Options<Product, typeof Product.Encoded>>): Contender => ({
  name: `effect-cachekit, ${name}`,
  make: async (run) => {
    let calls = 0
    const runtime = ManagedRuntime.make(Layer.empty)
    const scope = await runtime.runPromise(Scope.make())
    const store = await runtime.runPromise(Scope.extend(MemoryStore.make(), scope))
    const cache = await runtime.runPromise(Scope.extend(
      ReadThrough.make({
        namespace: `stampede-${run}`,
        ...lookupOptions,
        lookup: (id: string) =>
          Effect.suspend(() => {
            calls++
            return Effect.as(Effect.sleep(Duration.millis(LOAD_MS)), product(id))
          }),
        ...options
      }).pipe(Effect.provideService(CacheStore, store as StoreService)),
      scope
    ))
    return {
      burst: effectBurst(runtime, cache.get),
      calls: () => calls,
      close: async () => {
        await runtime.runPromise(Scope.close(scope, Exit.void))
        await runtime.dispose()
      }
    }
  }
})

const bento = (name: string, grace: boolean): Contender => ({
  name: `bentocache 1.6.1, ${name}`,
  make: async () => {
    let calls = 0
    const cache = new BentoCache({
      default: "memory",
      stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: 10_000 })) }
    })
    const factory = async (id: string) => {
      calls++
      await sleep(LOAD_MS)
      return product(id)
    }
    return {
      burst: promiseBurst((key) =>
        cache.getOrSet({ key, factory: () => factory(key), ttl: TTL_MS, ...(grace ? { grace: "1m" } : {}) })
      ),
      calls: () => calls,
      close: () => cache.disconnect()
    }
  }
})

const cacheManager = (name: string, refreshThreshold: number | undefined): Contender => ({
  name: `cache-manager 7.2.9, ${name}`,
  make: async () => {
    let calls = 0
    const cache = createCache({ ttl: TTL_MS, ...(refreshThreshold === undefined ? {} : { refreshThreshold }) })
    const load = async (id: string) => {
      calls++
      await sleep(LOAD_MS)
      return product(id)
    }
    return {
      burst: promiseBurst((key) => cache.wrap(key, () => load(key))),
      calls: () => calls,
      close: () => cache.disconnect().then(() => undefined)
    }
  }
})

const contenders: ReadonlyArray<Contender> = [
  ...Object.entries(protections).map(([name, options]) => ours(name, options)),
  bento("no grace", false),
  bento("grace 1 min (serves stale, refreshes behind)", true),
  cacheManager("wrap", undefined),
  cacheManager("wrap, refreshThreshold 500 ms", 500)
]

interface RunResult {
  readonly coldCalls: number
  readonly coldP50: number
  readonly coldP99: number
  readonly hitsP99: number
  readonly expiryCalls: number
  readonly expiryP50: number
  readonly expiryP99: number
  /** The hits burst ran past the point where the expiry phase should have started (its figures are void). */
  readonly late: boolean
}

const measureRun = async (contender: Contender, run: number): Promise<RunResult> => {
  const subject = await contender.make(run)
  collect()
  try {
    const coldKeys = Array.from({ length: KEYS }, (_, k) => `cold-${k}`)
    const cold = (await subject.burst(burstKeys(coldKeys, ACCESSORS))).sort((a, b) => a - b)
    const coldCalls = subject.calls()
    collect()

    // keys of their own, warmed by one read each: a burst of hits, then the expiry phase
    const keys = Array.from({ length: KEYS }, (_, k) => `warm-${k}`)
    await subject.burst(keys)
    const expiry = performance.now() + TTL_MS // no later than this (written before the reads returned)
    const before = subject.calls()
    const hits = (await subject.burst(burstKeys(keys, ACCESSORS))).sort((a, b) => a - b)
    collect()
    const late = performance.now() > expiry - TRICKLE_FOR_MS
    await sleep(expiry - TRICKLE_FOR_MS - performance.now())
    while (performance.now() < expiry) {
      const next = performance.now() + TRICKLE_MS
      await subject.burst(keys)
      await sleep(next - performance.now())
    }
    await sleep(expiry + AFTER_MS - performance.now())
    const burst = (await subject.burst(burstKeys(keys, ACCESSORS))).sort((a, b) => a - b)
    const expiryCalls = subject.calls() - before
    await sleep(LOAD_MS * 2) // background refreshes end before the cache is closed
    return {
      coldCalls,
      coldP50: percentile(cold, 0.5),
      coldP99: percentile(cold, 0.99),
      hitsP99: percentile(hits, 0.99),
      expiryCalls,
      expiryP50: percentile(burst, 0.5),
      expiryP99: percentile(burst, 0.99),
      late
    }
  } finally {
    await subject.close()
  }
}

const ms = (x: number) => x < 10 ? x.toFixed(2) : x.toFixed(0)
const calls = (xs: ReadonlyArray<number>) => {
  const lo = Math.min(...xs)
  const hi = Math.max(...xs)
  return lo === hi ? String(lo) : `${median(xs)} (${lo}–${hi})`
}

// -------------------------------------------------------------------------------------------------
// across processes

interface WorkerOptions {
  readonly port: number
  readonly accessors: number
  readonly keys: number
}

/** One round: a fresh cache under `prefix`, with or without `lock`. */
interface Round {
  readonly prefix: string
  readonly lock: boolean
}

interface WorkerResult {
  readonly calls: number
  readonly latencies: ReadonlyArray<number>
  readonly errors: number
}

/** The lines a child process prints, one at a time as they are asked for. */
const lineReader = (input: NodeJS.ReadableStream) => {
  const lines: Array<string> = []
  const waiting: Array<(line: string) => void> = []
  let closed = false
  const rl = readline.createInterface({ input })
  rl.on("line", (line) => {
    const next = waiting.shift()
    if (next === undefined) lines.push(line)
    else next(line)
  })
  // the other end went away: every line asked for from now on is empty
  rl.on("close", () => {
    closed = true
    for (const next of waiting.splice(0)) next("")
  })
  return (): Promise<string> =>
    lines.length > 0
      ? Promise.resolve(lines.shift()!)
      : closed
      ? Promise.resolve("")
      : new Promise((resolve) => waiting.push(resolve))
}

/**
 * One process of the cross-process part, over one Redis client. For each `ROUND <json>` on stdin it
 * makes a ReadThrough over a RedisStore under the round's prefix and prints `PREPARED`; at `WARM`
 * (the at-expiry phase, sent to one process) it reads every key once and prints `WARMED`; at `GO`
 * it runs the burst and prints `RESULT <json>`, counting only the burst's loader calls.
 */
async function worker(options: WorkerOptions): Promise<void> {
  const runtime = ManagedRuntime.make(Layer.empty)
  const scope = await runtime.runPromise(Scope.make())
  const client = await runtime.runPromise(
    Scope.extend(Redis.make({ port: options.port, commandTimeout: "5 seconds" }), scope)
  )
  const next = lineReader(process.stdin)
  const keys = burstKeys(Array.from({ length: options.keys }, (_, k) => `key-${k}`), options.accessors)
  process.stdout.write("READY\n")
  for (let line = await next(); line.startsWith("ROUND "); line = await next()) {
    const round = JSON.parse(line.slice(6)) as Round
    let calls = 0
    let errors = 0
    const roundScope = await runtime.runPromise(Scope.make())
    const cache = await runtime.runPromise(Scope.extend(
      ReadThrough.make({
        namespace: "stampede",
        ...lookupOptions,
        lookup: (id: string) =>
          Effect.suspend(() => {
            calls++
            return Effect.as(Effect.sleep(Duration.millis(LOAD_MS)), product(id))
          }),
        ...(round.lock ? protections.lock : {})
      }).pipe(
        Effect.provideServiceEffect(CacheStore, RedisStore.make({ prefix: round.prefix })),
        Effect.provideService(Redis.RedisClient, client)
      ),
      roundScope
    ))
    process.stdout.write("PREPARED\n")
    const get = (key: string) => Effect.catchAll(cache.get(key), () => Effect.sync(() => void errors++))
    if ((await next()) === "WARM") {
      await effectBurst(runtime, get)(keys.slice(0, options.keys))
      calls = 0
      errors = 0
      process.stdout.write("WARMED\n")
      await next() // GO
    }
    const latencies = await effectBurst(runtime, get)(keys)
    const result: WorkerResult = { calls, latencies, errors }
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
    await runtime.runPromise(Scope.close(roundScope, Exit.void))
  }
  await runtime.runPromise(Scope.close(scope, Exit.void))
  await runtime.dispose()
}

/** Starts the processes; `round` runs one burst across them all. Killed by PID when done. */
const startWorkers = async (port: number) => {
  const script = fileURLToPath(import.meta.url)
  const options: WorkerOptions = { port, accessors: Math.ceil(ACCESSORS / PROCESSES), keys: KEYS }
  const children = Array.from(
    { length: PROCESSES },
    () =>
      spawn(process.execPath, ["--import", "tsx", script, "--worker", JSON.stringify(options)], {
        stdio: ["pipe", "pipe", "inherit"],
        env: process.env
      })
  )
  const readers = children.map((child) => lineReader(child.stdout!))
  const expect = async (i: number, prefix: string): Promise<string> => {
    const line = await readers[i]!()
    if (!line.startsWith(prefix)) throw new Error(`a worker said ${JSON.stringify(line)}, not ${prefix}`)
    return line
  }
  const all = <A>(f: (i: number) => Promise<A>) => Promise.all(children.map((_, i) => f(i)))
  await all((i) => expect(i, "READY"))
  return {
    /** With `expired`, one process writes every key first, and the burst starts once they expired. */
    round: async (round: Round, expired: boolean): Promise<Array<WorkerResult>> => {
      for (const child of children) child.stdin!.write(`ROUND ${JSON.stringify(round)}\n`)
      await all((i) => expect(i, "PREPARED"))
      if (expired) {
        children[0]!.stdin!.write("WARM\n")
        await expect(0, "WARMED")
        // each entry was written before its read returned: it has expired AFTER_MS before the burst
        await sleep(TTL_MS + AFTER_MS)
      }
      for (const child of children) child.stdin!.write("GO\n")
      return all(async (i) => JSON.parse((await expect(i, "RESULT ")).slice(7)) as WorkerResult)
    },
    stop: () => {
      for (const child of children) {
        if (child.exitCode === null) child.kill("SIGKILL")
      }
    }
  }
}

// -------------------------------------------------------------------------------------------------

/** A fresh prefix for each cross-process round: its own keys and leases. */
let prefixes = 0

async function main(): Promise<void> {
  console.log(
    `${ACCESSORS} accessors × ${KEYS} keys (${ACCESSORS * KEYS} reads a burst), ${LOAD_MS} ms loader, ` +
      `TTL ${TTL_MS} ms; median of ${RUNS} runs; load average ${loadavg().map((x) => x.toFixed(1)).join(" ")}`
  )
  console.log(`\n### In one process, over memory\n`)
  console.log(
    "| contender | cold: loader calls | cold: p50 / p99 ms | all hits: p99 ms | at expiry: loader calls | at expiry: p50 / p99 ms |"
  )
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |")
  // each run measures every contender once, in a rotating order, so that a change in the machine's
  // load hits all of them alike
  const byContender = new Map<Contender, Array<RunResult>>(contenders.map((c) => [c, []]))
  for (let run = 0; run < RUNS; run++) {
    for (let k = 0; k < contenders.length; k++) {
      const contender = contenders[(run + k) % contenders.length]!
      byContender.get(contender)!.push(await measureRun(contender, run))
    }
  }
  for (const [contender, results] of byContender) {
    const late = results.filter((r) => r.late).length
    const pick = (f: (r: RunResult) => number) => median(results.map(f))
    console.log(
      `| ${contender.name} | ${calls(results.map((r) => r.coldCalls))} | ${ms(pick((r) => r.coldP50))} / ${
        ms(pick((r) => r.coldP99))
      } | ${ms(pick((r) => r.hitsP99))} | ${calls(results.map((r) => r.expiryCalls))}${
        late > 0 ? ` (${late} late)` : ""
      } | ${ms(pick((r) => r.expiryP50))} / ${ms(pick((r) => r.expiryP99))} |`
    )
  }

  console.log(`\nload average after: ${loadavg().map((x) => x.toFixed(1)).join(" ")}`)

  await withServers(redisServer(), async (server) => {
    const workers = await startWorkers(server.port)
    try {
      for (const expired of [false, true]) {
        console.log(`\n### Across ${PROCESSES} processes, one Redis, ${expired ? "at expiry" : "cold"}\n`)
        console.log(
          `${PROCESSES} processes × ${Math.ceil(ACCESSORS / PROCESSES)} accessors × ${KEYS} keys, all at once${
            expired ? `, ${AFTER_MS} ms after the entries one process wrote expired (TTL ${TTL_MS} ms)` : ""
          }`
        )
        console.log("\n| effect-cachekit over RedisStore | loader calls | p50 / p99 ms | errors |")
        console.log("| --- | ---: | ---: | ---: |")
        type Row = { calls: number; p50: number; p99: number; errors: number }
        const rows = new Map<boolean, Array<Row>>([[false, []], [true, []]])
        // without and with the lock in turn, so both meet the same moods of the machine
        for (let r = 0; r < RUNS; r++) {
          for (const lock of [false, true]) {
            const results = await workers.round({ prefix: `stampede-${prefixes++}`, lock }, expired)
            const latencies = results.flatMap((w) => w.latencies).sort((a, b) => a - b)
            rows.get(lock)!.push({
              calls: results.reduce((n, w) => n + w.calls, 0),
              p50: percentile(latencies, 0.5),
              p99: percentile(latencies, 0.99),
              errors: results.reduce((n, w) => n + w.errors, 0)
            })
          }
        }
        for (const [lock, runs] of rows) {
          console.log(
            `| ${lock ? "with `lock`" : "single flight only (no `lock`)"} | ${calls(runs.map((r) => r.calls))} | ${
              ms(median(runs.map((r) => r.p50)))
            } / ${ms(median(runs.map((r) => r.p99)))} | ${runs.reduce((n, r) => n + r.errors, 0)} |`
          )
        }
        console.log(`\nload average after: ${loadavg().map((x) => x.toFixed(1)).join(" ")}`)
      }
    } finally {
      workers.stop()
    }
  })
}

if (process.argv[2] === "--worker") {
  await worker(JSON.parse(process.argv[3]!) as WorkerOptions)
} else {
  await main()
}
