/**
 * One process of the cross-process invalidation tests, run with tsx as a child process.
 *
 * It connects to a Redis server (or a Cluster, by its nodes) with a store, optionally a Redis
 * pub/sub invalidation bus attached to it, and a read-through cache of one key whose entries carry
 * the tag `t`. The "database" is a Redis key (`<prefix>-src`, a generation number); the loader
 * reads it, so every value says which generation it was loaded from. It prints `READY <pid>` and
 * then answers commands on stdin, one a line, with lines on stdout (times are this machine's epoch
 * clock in fractional milliseconds, comparable across processes):
 *
 * - `READ` → `READ <start> <end> <generation>`
 * - `WATCH <generation> <id>` → reads every millisecond until a value of at least `generation`
 *   comes back: `WATCHING <id>` after the first read, then `SEEN <id> <time> <generation> <reads>`
 * - `READFOR <ms>` → reads every 5 ms for `ms` of real time, a `READ` line each, then `DONE`
 * - `INVALIDATE <id>` → a new generation in the database, then `invalidateTag("t")`:
 *   `INVALIDATED <id> <generation> <start> <end>`
 * - `INVALIDATEEVERY <ms> <count>` → that, `count` times, `ms` apart, then `DONE`
 * - `STATS` → `STATS <disconnections of the bus subscriber>`
 */
import { Effect, Metric, Schema } from "effect"
import { CacheStore, InvalidationBus } from "effect-cachekit"
import * as ReadThrough from "effect-cachekit/ReadThrough"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import { Cluster, Redis as IoRedis } from "ioredis"
import { connectRedisBus } from "./bus.js"
import { runWorker, serveLines } from "./worker.js"

interface WorkerOptions {
  readonly port?: number | undefined
  readonly nodes?: ReadonlyArray<{ readonly host: string; readonly port: number }> | undefined
  readonly prefix: string
  readonly bus: boolean
  readonly versionWindowMillis: number
  /** The name of this process's connections (`CLIENT LIST` shows it). */
  readonly name: string
  /** The bus subscriber's reconnect delay. */
  readonly reconnectMillis?: number | undefined
}

const options = JSON.parse(process.argv[2]!) as WorkerOptions
const now = () => performance.timeOrigin + performance.now()
const print = (line: string) => void process.stdout.write(`${line}\n`)

// the database: a plain client of its own, not the cache's
const db = options.nodes === undefined
  ? new IoRedis({ port: options.port!, host: "127.0.0.1" })
  : new Cluster([...options.nodes])
// one slot for both keys on a Cluster
const srcKey = `{${options.prefix}}-src`

const Item = Schema.Struct({ generation: Schema.Number })

const program = Effect.gen(function*() {
  const redis = options.nodes === undefined
    ? yield* Redis.make({ port: options.port, host: "127.0.0.1", connectionName: options.name })
    : yield* Redis.makeCluster({ nodes: options.nodes, connectionName: options.name })
  const store = yield* Effect.provideService(RedisStore.make({ prefix: options.prefix }), Redis.RedisClient, redis)
  if (options.bus) yield* connectRedisBus(redis, store, options.prefix, options.reconnectMillis)
  const cache = yield* ReadThrough.make({
    namespace: "item",
    value: Item,
    lookup: () => Effect.map(Effect.promise(() => db.get(srcKey)), (g) => ({ generation: Number(g ?? 0) })),
    ttl: "1 hour",
    tags: () => ["t"],
    versionWindow: options.versionWindowMillis
  }).pipe(Effect.provideService(CacheStore.CacheStore, store))

  const read = Effect.gen(function*() {
    const start = now()
    const value = yield* cache.get("k")
    return { start, end: now(), generation: value.generation }
  })
  const invalidate = (id: string) =>
    Effect.gen(function*() {
      const generation = yield* Effect.promise(() => db.incr(srcKey))
      const start = now()
      yield* cache.invalidateTag("t")
      print(`INVALIDATED ${id} ${generation} ${start} ${now()}`)
    })
  const commands: Record<string, (args: ReadonlyArray<string>) => Effect.Effect<void, unknown>> = {
    READ: () => Effect.map(read, (r) => print(`READ ${r.start} ${r.end} ${r.generation}`)),
    WATCH: ([generation, id]) =>
      Effect.gen(function*() {
        let reads = 0
        for (;;) {
          const r = yield* read
          reads++
          if (reads === 1) print(`WATCHING ${id}`)
          if (r.generation >= Number(generation)) return print(`SEEN ${id} ${r.end} ${r.generation} ${reads}`)
          yield* Effect.sleep("1 millis")
        }
      }),
    READFOR: ([ms]) =>
      Effect.gen(function*() {
        const until = now() + Number(ms)
        while (now() < until) {
          const r = yield* read
          print(`READ ${r.start} ${r.end} ${r.generation}`)
          yield* Effect.sleep("5 millis")
        }
        print("DONE")
      }),
    INVALIDATE: ([id]) => invalidate(id!),
    INVALIDATEEVERY: ([ms, count]) =>
      Effect.gen(function*() {
        for (let i = 0; i < Number(count); i++) {
          yield* invalidate(String(i))
          yield* Effect.sleep(`${Number(ms)} millis`)
        }
        print("DONE")
      }),
    STATS: () => Effect.map(Metric.value(InvalidationBus.disconnections), (state) => print(`STATS ${state.count}`))
  }

  print(`READY ${process.pid}`)
  yield* serveLines((line) => {
    const [command, ...args] = line.trim().split(" ")
    const run = commands[command!]
    return run === undefined ? Effect.void : run(args)
  }, (_, cause) => Effect.sync(() => print(`ERROR ${cause}`)))
}).pipe(Effect.scoped)

runWorker(program, () => db.disconnect())
