/**
 * `npm start`: a product catalog in front of a slow database, read directly and through a
 * ReadThrough over the in-memory store, under the same open-loop load. Needs nothing but Node.
 *
 * The database: a pool of POOL connections (an Effect Queue holding them: a call takes one, first
 * come first served, and gives it back), each call holding its connection for SERVICE_MS (a
 * sleep). When every connection is busy, calls wait in line. Capacity: POOL / SERVICE_MS = 1,600
 * calls/s. The load offers RATE = 800 requests/s, so the database alone is busy half of the time
 * on paper and more in fact, since timers fire late (the table shows the measured figure,
 * typically 55–70 %): loaded, but stable. The pool is not an Effect Semaphore because in effect
 * 3.22 a released permit wakes every waiting fiber: a backlog of n waiters costs n wake-ups per
 * call, and a short pause of the process can then grow into a collapse.
 *
 * The load: requests arrive open-loop, as independent users do: a seeded Poisson process at RATE.
 * Each request is started at its scheduled arrival whether or not earlier ones have finished, in
 * a fiber of its own, and its latency runs from that scheduled arrival to its answer
 * (performance.now()): waiting for a late driver (Node timers have 1 ms granularity), for the
 * event loop or for a database connection all count. Keys follow a Zipf-like mix over PRODUCTS
 * products.
 *
 * Side by side: the two catalogs, each with its own database, serve the same arrivals at the same
 * moments in this one process. A pause of the process (a garbage collection, other programs on
 * the machine) then delays both alike, instead of deciding the tail of whichever run it fell in.
 *
 * Steady state: WARMUP requests are served first and not reported (JIT; the cache fills with the
 * popular products). The REQUESTS reported after them include every miss of the cache: products
 * first asked for then, loaded from the database, and the requests that wait on those loads.
 * Last, 1,000 concurrent requests for one cold key show that they make one database call.
 *
 * Then write-behind on SQLite (in memory): stock updates of Zipf-popular products, accepted at
 * once and saved in batches every 50 ms, coalesced per product between flushes.
 */
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Deferred, Duration, Effect, Queue, Random, Ref, Schema } from "effect"
import { MemoryStore, ReadThrough, WriteBehind } from "effect-cachekit"
import { monitorEventLoopDelay } from "node:perf_hooks"

const Product = Schema.Struct({ sku: Schema.String, name: Schema.String, price: Schema.Number })
type Product = typeof Product.Type

const SEED = 2024
const RATE = 800 // arrivals per second
const WARMUP = 2_000 // requests served first, not reported
const REQUESTS = 10_000 // reported requests
const PRODUCTS = 2_000
const POOL = 8 // database connections
const SERVICE_MS = 5 // how long a database call holds its connection

/** The slow database: POOL connections, each call holding one for SERVICE_MS; calls are counted. */
const makeDatabase = Effect.gen(function*() {
  const connections = yield* Queue.bounded<number>(POOL)
  yield* Queue.offerAll(connections, Array.from({ length: POOL }, (_, i) => i))
  const calls = yield* Ref.make(0)
  let busyMs = 0 // connection time used, for the utilisation figure
  const query = (sku: string) =>
    Effect.suspend(() => {
      const t = performance.now()
      return Effect.sleep(Duration.millis(SERVICE_MS)).pipe(
        Effect.ensuring(Effect.sync(() => busyMs += performance.now() - t)),
        Effect.as({ sku, name: `Product ${sku}`, price: (sku.length * 7) % 100 + 0.99 } satisfies Product)
      )
    })
  const getProduct = (sku: string) =>
    Effect.zipRight(
      Ref.update(calls, (n) => n + 1),
      Effect.acquireUseRelease(Queue.take(connections), () => query(sku), (c) => Queue.offer(connections, c))
    )
  return { calls, getProduct, busyMs: () => busyMs }
})
type Database = Effect.Effect.Success<typeof makeDatabase>

/** Zipf-like popularity (s = 1): a few products get most of the traffic. */
const zipfKeys = (n: number, universe: number): Effect.Effect<Array<string>> =>
  Effect.gen(function*() {
    const weights = Array.from({ length: universe }, (_, i) => 1 / (i + 1))
    const total = weights.reduce((a, b) => a + b, 0)
    const cumulative: Array<number> = []
    let acc = 0
    for (const w of weights) cumulative.push(acc += w / total)
    const keys: Array<string> = []
    for (let i = 0; i < n; i++) {
      const u = yield* Random.next
      let lo = 0
      let hi = universe - 1
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (cumulative[mid]! < u) lo = mid + 1
        else hi = mid
      }
      keys.push(`sku-${lo}`)
    }
    return keys
  })

/** Arrival times in ms from the start of a Poisson process at `rate` per second. */
const poissonArrivals = (n: number, rate: number): Effect.Effect<Array<number>> =>
  Effect.gen(function*() {
    const arrivals: Array<number> = []
    let t = 0
    for (let i = 0; i < n; i++) {
      t += (-Math.log(1 - (yield* Random.next)) / rate) * 1000
      arrivals.push(t)
    }
    return arrivals
  })

interface Workload {
  readonly arrivals: ReadonlyArray<number>
  readonly keys: ReadonlyArray<string>
}

interface Catalog {
  readonly get: (sku: string) => Effect.Effect<Product, unknown>
  readonly db: Database
}

/** The nearest-rank percentile of sorted values. */
const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!

const progress = (label: string, done: number, total: number) => {
  if (!process.stdout.isTTY && done !== total) return
  const width = 30
  const filled = Math.round((done / total) * width)
  process.stdout.write(`\r${label.padEnd(10)} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total}`)
  if (done === total) process.stdout.write("\n")
}

/**
 * Open-loop driver: at start + arrivals[i], request i is started on every catalog (in the order
 * given), each in a fiber of its own, whatever the earlier requests are doing; each latency is
 * measured from that scheduled time. Between arrivals the driver sleeps, so it never holds the
 * event loop.
 */
const serve = (label: string, load: Workload, catalogs: ReadonlyArray<Catalog>) =>
  Effect.gen(function*() {
    const n = load.keys.length
    const results = catalogs.map(() => ({ latencies: new Array<number>(n), last: 0 }))
    const total = n * catalogs.length
    const finished = yield* Deferred.make<void>()
    let done = 0
    const start = performance.now()
    const request = (c: number, i: number) => {
      const scheduled = start + load.arrivals[i]!
      const result = results[c]!
      return Effect.tap(Effect.orDie(catalogs[c]!.get(load.keys[i]!)), () =>
        Effect.suspend(() => {
          const now = performance.now()
          result.latencies[i] = now - scheduled
          result.last = now
          if (++done % 1000 === 0 || done === total) progress(label, Math.floor(done / catalogs.length), n)
          return done === total ? Deferred.succeed(finished, undefined) : Effect.void
        }))
    }
    let next = 0
    while (next < n) {
      const now = performance.now() - start
      for (; next < n && load.arrivals[next]! <= now; next++) {
        for (let c = 0; c < catalogs.length; c++) yield* Effect.forkDaemon(request(c, next))
      }
      if (next < n) {
        yield* Effect.sleep(Duration.millis(Math.max(0, load.arrivals[next]! - (performance.now() - start))))
      }
    }
    yield* Deferred.await(finished)
    return results.map(({ last, latencies }) => {
      const sorted = latencies.sort((a, b) => a - b)
      const seconds = (last - start) / 1000
      return {
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        p999: percentile(sorted, 99.9),
        seconds,
        achieved: n / seconds
      }
    })
  })

const program = Effect.gen(function*() {
  const [warmup, measured] = yield* Effect.all([
    Effect.all({ arrivals: poissonArrivals(WARMUP, RATE), keys: zipfKeys(WARMUP, PRODUCTS) }),
    Effect.all({ arrivals: poissonArrivals(REQUESTS, RATE), keys: zipfKeys(REQUESTS, PRODUCTS) })
  ]).pipe(Effect.withRandom(Random.make(SEED)))

  // without a cache: every request goes to the database
  const plainDb = yield* makeDatabase
  const plain: Catalog = { db: plainDb, get: plainDb.getProduct }

  // with a ReadThrough over the memory store, in front of a database of its own
  const cachedDb = yield* makeDatabase
  const catalog = yield* ReadThrough.make({
    namespace: "product",
    value: Product,
    lookup: cachedDb.getProduct,
    ttl: "5 minutes"
  })
  const cached: Catalog = { db: cachedDb, get: catalog.get }

  yield* serve("warm-up", warmup, [plain, cached])

  // the reported requests: database calls, connection time and cache counters from here on
  for (const { db } of [plain, cached]) yield* Ref.set(db.calls, 0)
  const busyBefore = [plainDb.busyMs(), cachedDb.busyMs()]
  const before = yield* catalog.stats
  const pauses = monitorEventLoopDelay({ resolution: 1 })
  pauses.enable()
  const [withoutCache, withCache] = yield* serve("measuring", measured, [plain, cached])
  pauses.disable()
  const after = yield* catalog.stats
  const hits = after.hits + after.staleHits - before.hits - before.staleHits
  const reads = hits + after.misses - before.misses
  const calls = [yield* Ref.get(plainDb.calls), yield* Ref.get(cachedDb.calls)]
  const busy = [plainDb, cachedDb].map((db, i) =>
    (db.busyMs() - busyBefore[i]!) / (POOL * [withoutCache, withCache][i]!.seconds * 1000)
  )

  // single flight: 1,000 concurrent requests for one cold product
  yield* Ref.set(cachedDb.calls, 0)
  yield* Effect.forEach(Array.from({ length: 1000 }), () => catalog.get("sku-cold"), {
    concurrency: "unbounded",
    discard: true
  })
  const coldCalls = yield* Ref.get(cachedDb.calls)

  const a = withoutCache!
  const b = withCache!
  const ms = (x: number) => `${x.toFixed(2)} ms`
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`
  const rows: Array<[string, string, string]> = [
    ["requests", String(REQUESTS), String(REQUESTS)],
    ["database calls", String(calls[0]), String(calls[1])],
    ["database busy", pct(busy[0]!), pct(busy[1]!)],
    ["hit rate", "—", pct(hits / reads)],
    ["p50 latency", ms(a.p50), ms(b.p50)],
    ["p99 latency", ms(a.p99), ms(b.p99)],
    ["p99.9 latency", ms(a.p999), ms(b.p999)],
    ["achieved rate", `${a.achieved.toFixed(0)} /s`, `${b.achieved.toFixed(0)} /s`],
    ["wall time", `${a.seconds.toFixed(2)} s`, `${b.seconds.toFixed(2)} s`]
  ]
  console.log("")
  console.log(`open loop: Poisson arrivals at ${RATE}/s, the same for both columns, served side by side`)
  console.log(`database: ${POOL} connections, ${SERVICE_MS} ms per call; products: ${PRODUCTS}, Zipf-like`)
  console.log(
    `steady state: ${WARMUP} warm-up requests not reported; the ${REQUESTS} reported include every cache miss`
  )
  console.log("latency: from each request's scheduled arrival to its answer")
  console.log("")
  console.log(`${"".padEnd(16)}${"without cache".padStart(16)}${"with cache".padStart(16)}`)
  for (const [name, x, y] of rows) console.log(`${name.padEnd(16)}${x.padStart(16)}${y.padStart(16)}`)
  console.log("")
  console.log(
    `longest pause of the event loop while measuring: ${(pauses.max / 1e6).toFixed(0)} ms (it delays both columns)`
  )
  console.log(`single flight: 1,000 concurrent requests for one cold key -> ${coldCalls} database call(s)`)
})

const STOCK_WRITES = 20_000

/** Write-behind on SQLite: writes accepted, rows written, statements saved. */
const writeBehindDemo = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE stock (sku TEXT PRIMARY KEY, quantity INTEGER NOT NULL)`
  const keys = yield* zipfKeys(STOCK_WRITES, PRODUCTS).pipe(Effect.withRandom(Random.make(SEED)))
  const started = performance.now()
  const stock = yield* Effect.scoped(Effect.gen(function*() {
    const stock = yield* WriteBehind.make({
      namespace: "stock",
      value: Schema.Number,
      ttl: "1 hour",
      flush: "50 millis",
      batchSize: 1000,
      saveBatch: (batch: ReadonlyArray<readonly [string, number]>) =>
        sql`INSERT INTO stock ${sql.insert(batch.map(([sku, quantity]) => ({ sku, quantity })))}
            ON CONFLICT (sku) DO UPDATE SET quantity = excluded.quantity`
    })
    // bursts of 500 updates, 10 ms apart
    for (let i = 0; i < STOCK_WRITES; i++) {
      yield* stock.write(keys[i]!, i)
      if (i % 500 === 499) yield* Effect.sleep("10 millis")
    }
    return stock
  })) // closing the scope flushes what is still queued
  const seconds = (performance.now() - started) / 1000
  const stats = yield* stock.stats
  const [row] = yield* sql<{ n: number }>`SELECT count(*) AS n FROM stock`
  console.log("")
  console.log(`write-behind on SQLite: ${STOCK_WRITES} stock updates of ${PRODUCTS} Zipf-popular products`)
  console.log(`  writes accepted      ${STOCK_WRITES} in ${seconds.toFixed(2)} s`)
  console.log(`  rows written         ${stats.flushed} in ${stats.batches} INSERT statements`)
  console.log(
    `  coalesced            ${stats.coalesced} writes (${((stats.coalesced / STOCK_WRITES) * 100).toFixed(1)} %)`
  )
  console.log(`  statements saved     ${STOCK_WRITES - stats.batches} of ${STOCK_WRITES} (vs one upsert per write)`)
  console.log(`  products in SQLite   ${row?.n ?? 0}`)
})

program.pipe(
  Effect.zipRight(writeBehindDemo.pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" })))),
  Effect.scoped,
  Effect.provide(MemoryStore.layer({ capacity: 10_000 })),
  Effect.runPromise
).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
