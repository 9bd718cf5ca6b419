/**
 * One process of the cross-process stampede tests, run with tsx as a child process.
 *
 * It builds a read-through cache over a Redis store, or a memcached ring (with or without `lock`, as
 * the parent says in its JSON argument), prints `READY <pid>`, and waits for `GO` on stdin. Then it runs `gets` concurrent
 * `get`s of one key and prints `RESULT <json>`: each get's value or error tag and how long it took
 * (real time). With `failSafe`, an expired entry the parent wrote beforehand is kept and may answer
 * a get. It prints `LOAD <n>` when its loader starts its n-th call; over Redis, calls are
 * numbered across every process (`INCR` on one key). With `hangFirst` (Redis only), the first call
 * of all processes never finishes: its process is to be killed.
 */
import { Effect, Schema } from "effect"
import * as MemcachedStore from "effect-cachekit/MemcachedStore"
import * as ReadThrough from "effect-cachekit/ReadThrough"
import * as RedisStore from "effect-cachekit/RedisStore"
import { Redis as IoRedis } from "ioredis"
import { awaitGo, runWorker } from "./worker.js"

interface WorkerOptions {
  /** A Redis port, or the memcached servers. */
  readonly port?: number | undefined
  readonly memcached?: ReadonlyArray<string> | undefined
  readonly prefix: string
  readonly key: string
  readonly gets: number
  readonly loadMillis: number
  readonly hangFirst: boolean
  readonly lock?: { readonly ttl: number; readonly wait: number; readonly onTimeout?: "load" | "fail" } | undefined
  /** The cache's `failSafe` (millis): an expired entry it keeps is what a waiter may be answered with. */
  readonly failSafe?: { readonly maxStale: number; readonly throttle: number } | undefined
}

const options = JSON.parse(process.argv[2]!) as WorkerOptions
const counter = options.port === undefined ? undefined : new IoRedis({ port: options.port, host: "127.0.0.1" })
const counterKey = `${options.prefix}-loader-calls`
let localCalls = 0

const lookup = (key: string) =>
  Effect.gen(function*() {
    const n = counter === undefined ? ++localCalls : yield* Effect.promise(() => counter.incr(counterKey))
    process.stdout.write(`LOAD ${n}\n`)
    if (options.hangFirst && n === 1) return yield* Effect.never
    yield* Effect.sleep(options.loadMillis)
    return `${key} loaded by ${process.pid}`
  })

const go = awaitGo()

const program = Effect.gen(function*() {
  const cache = yield* ReadThrough.make({
    namespace: "stampede",
    value: Schema.String,
    lookup,
    ttl: "1 minute",
    lock: options.lock === undefined ? undefined : {
      ttl: options.lock.ttl,
      wait: options.lock.wait,
      onTimeout: options.lock.onTimeout
    },
    failSafe: options.failSafe
  })
  process.stdout.write(`READY ${process.pid}\n`)
  yield* Effect.promise(() => go)
  const results = yield* Effect.forEach(
    Array.from({ length: options.gets }),
    () =>
      Effect.suspend(() => {
        const start = performance.now()
        return cache.get(options.key).pipe(
          Effect.match({
            onFailure: (error) => ({ error: error._tag as string, millis: performance.now() - start }),
            onSuccess: (value) => ({ value, millis: performance.now() - start })
          })
        )
      }),
    { concurrency: "unbounded" }
  )
  process.stdout.write(`RESULT ${JSON.stringify(results)}\n`)
}).pipe(
  Effect.scoped,
  Effect.provide(
    options.memcached === undefined
      ? RedisStore.layer({ host: "127.0.0.1", port: options.port, prefix: options.prefix })
      // a request timeout far above the load: under a busy machine a 1 s timeout can open a
      // server's breaker and take it out of the ring, which moves the key (and, by the fence's
      // epoch, refuses the holder's write) mid-load; what is checked here is one loader
      : MemcachedStore.layer({ servers: [...options.memcached], prefix: options.prefix, timeout: "10 seconds" })
  )
)

runWorker(program, () => counter?.disconnect())
