/**
 * `npm start`: a product catalog whose database is slow, served through a ReadThrough over the
 * in-memory store. Runs 10,000 requests over a Zipf-like key mix with and without the cache, then
 * 1,000 concurrent requests for one cold key, and prints what happened. Needs nothing but Node.
 */
import { Effect, Layer, Random, Ref, Schema } from "effect"
import { MemoryStore, ReadThrough } from "effect-cachekit"

const Product = Schema.Struct({ sku: Schema.String, name: Schema.String, price: Schema.Number })
type Product = typeof Product.Type

const REQUESTS = 10_000
const PRODUCTS = 2_000
const CONCURRENCY = 64
const DB_LATENCY = "3 millis"

/** The slow database: every call takes DB_LATENCY and is counted. */
const makeDatabase = Effect.gen(function*() {
  const calls = yield* Ref.make(0)
  const getProduct = (sku: string) =>
    Effect.as(
      Effect.zipRight(Ref.update(calls, (n) => n + 1), Effect.sleep(DB_LATENCY)),
      { sku, name: `Product ${sku}`, price: (sku.length * 7) % 100 + 0.99 } satisfies Product
    )
  return { calls, getProduct }
})

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

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

const progress = (label: string, done: number, total: number) => {
  if (!process.stdout.isTTY && done !== total) return
  const width = 30
  const filled = Math.round((done / total) * width)
  process.stdout.write(`\r${label.padEnd(16)} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total}`)
  if (done === total) process.stdout.write("\n")
}

/** Runs the requests with bounded concurrency, recording each one's latency in ms. */
const drive = <E>(label: string, keys: ReadonlyArray<string>, get: (sku: string) => Effect.Effect<Product, E>) =>
  Effect.gen(function*() {
    const latencies: Array<number> = []
    let done = 0
    const start = performance.now()
    yield* Effect.forEach(keys, (sku) =>
      Effect.suspend(() => {
        const t = performance.now()
        return Effect.tap(get(sku), () =>
          Effect.sync(() => {
            latencies.push(performance.now() - t)
            if (++done % 500 === 0 || done === keys.length) progress(label, done, keys.length)
          }))
      }), { concurrency: CONCURRENCY, discard: true })
    const seconds = (performance.now() - start) / 1000
    latencies.sort((a, b) => a - b)
    return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), seconds }
  })

const program = Effect.gen(function*() {
  const keys = yield* zipfKeys(REQUESTS, PRODUCTS)

  // without a cache: every request goes to the database
  const plainDb = yield* makeDatabase
  const plain = yield* drive("without cache", keys, plainDb.getProduct)

  // with a ReadThrough over the memory store
  const db = yield* makeDatabase
  const catalog = yield* ReadThrough.make({
    namespace: "product",
    value: Product,
    lookup: db.getProduct,
    ttl: "5 minutes"
  })
  const cached = yield* drive("with cache", keys, catalog.get)
  const stats = yield* catalog.stats
  const loaderCalls = yield* Ref.get(db.calls)

  // single flight: 1,000 concurrent requests for one cold product
  yield* Ref.set(db.calls, 0)
  yield* Effect.forEach(Array.from({ length: 1000 }), () => catalog.get("sku-cold"), {
    concurrency: "unbounded",
    discard: true
  })
  const coldCalls = yield* Ref.get(db.calls)

  const rows: Array<[string, string, string]> = [
    ["requests", String(REQUESTS), String(REQUESTS)],
    ["database calls", String(REQUESTS), String(loaderCalls)],
    ["hit rate", "—", `${(stats.hitRate * 100).toFixed(1)} %`],
    ["p50 latency", `${plain.p50.toFixed(2)} ms`, `${cached.p50.toFixed(3)} ms`],
    ["p99 latency", `${plain.p99.toFixed(2)} ms`, `${cached.p99.toFixed(3)} ms`],
    ["wall time", `${plain.seconds.toFixed(2)} s`, `${cached.seconds.toFixed(2)} s`]
  ]
  console.log("")
  console.log(`${"".padEnd(16)}${"without cache".padStart(16)}${"with cache".padStart(16)}`)
  for (const [name, a, b] of rows) console.log(`${name.padEnd(16)}${a.padStart(16)}${b.padStart(16)}`)
  console.log("")
  console.log(`single flight: 1,000 concurrent requests for one cold key -> ${coldCalls} database call(s)`)
})

program.pipe(
  Effect.scoped,
  Effect.provide(Layer.mergeAll(MemoryStore.layer({ capacity: 10_000 }))),
  Effect.runPromise
).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
