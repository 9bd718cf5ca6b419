/**
 * What a read that joins a load under way costs: N concurrent reads of one cold key (each its own
 * fiber, started with `runPromise` as a server's handlers are) whose loader waits until every read
 * has joined, then answers. Measured in CPU time of the process per read, in two phases: **join**
 * (from the first read issued until every read waits on the load, the process idle again) and
 * **wake** (from the loader's answer until every read has its value); next to a burst of N hits
 * of a warm key, the floor of issuing and answering N reads. Over MemoryStore and over RedisStore,
 * with single flight alone and with `lock`, through `ReadThrough.get` and `CacheAside.getOrLoad`.
 *
 * Run: `npm run bench -- joiners`. `JOINERS` changes N (10,000).
 */
import { Deferred, Duration, Effect, Exit, Layer, ManagedRuntime, Schema, Scope } from "effect"
import type * as Cache from "effect-cachekit/Cache"
import * as CacheAside from "effect-cachekit/CacheAside"
import { CacheStore } from "effect-cachekit/CacheStore"
import type { Service as StoreService } from "effect-cachekit/CacheStore"
import * as MemoryStore from "effect-cachekit/MemoryStore"
import * as ReadThrough from "effect-cachekit/ReadThrough"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import { loadavg } from "node:os"
import { redisServer } from "../test/harness/redis.js"
import { median } from "./lib.js"
import { withServers } from "./redis-common.js"

const N = Number(process.env.JOINERS ?? 10_000)
const ROUNDS = Number(process.env.JOINERS_ROUNDS ?? 7)
/** CPU µs over 20 ms under which the process counts as idle (a profiler takes more). */
const IDLE_US = Number(process.env.JOINERS_IDLE_US ?? 500)

const Product = Schema.Struct({ id: Schema.String, price: Schema.Number })
type Product = typeof Product.Type
const product = (id: string): Product => ({ id, price: id.length * 1.25 })

const collect = (globalThis as { gc?: () => void }).gc ?? (() => {})
const cpuNow = () => {
  const u = process.cpuUsage()
  return u.user + u.system
}
const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Waits until the process is idle: less than `IDLE_US` of CPU over 20 ms, twice in a row. */
const idle = async () => {
  let quiet = 0
  while (quiet < 2) {
    const before = cpuNow()
    await pause(20)
    quiet = cpuNow() - before < IDLE_US ? quiet + 1 : 0
  }
}

/** One subject: reads of a key whose loader waits on `gate` (a fresh gate per round). */
interface Subject {
  readonly get: (key: string) => Effect.Effect<unknown, unknown>
  readonly calls: () => number
  readonly open: () => void
  readonly close: () => Promise<void>
}

interface Sample {
  readonly join: number
  readonly wake: number
  readonly hit: number
  readonly heap: number
  readonly calls: number
}

const runtime = ManagedRuntime.make(Layer.empty)

const measure = async (subject: Subject, round: number): Promise<Sample> => {
  const key = `cold-${round}`
  // the floor: N hits of a warm key
  const warming = runtime.runPromise(subject.get("warm"))
  await idle()
  subject.open()
  await warming
  await idle()
  collect()
  let cpu = cpuNow()
  await Promise.all(Array.from({ length: N }, () => runtime.runPromise(subject.get("warm"))))
  const hit = (cpuNow() - cpu) / N
  await idle()
  collect()
  const calls = subject.calls()
  const heap = process.memoryUsage().heapUsed
  cpu = cpuNow()
  const reads = Promise.all(Array.from({ length: N }, () => runtime.runPromise(subject.get(key))))
  await idle()
  const joined = cpuNow()
  const heapJoined = process.memoryUsage().heapUsed
  subject.open()
  await reads
  const woken = cpuNow()
  return {
    join: (joined - cpu) / N,
    wake: (woken - joined) / N,
    hit,
    heap: (heapJoined - heap) / N,
    calls: subject.calls() - calls
  }
}

const gated = () => {
  let calls = 0
  let gate = Effect.runSync(Deferred.make<void>())
  return {
    calls: () => calls,
    open: () => {
      Effect.runSync(Deferred.succeed(gate, undefined))
      gate = Effect.runSync(Deferred.make<void>())
    },
    lookup: (id: string) =>
      Effect.suspend(() => {
        calls++
        return Effect.as(Deferred.await(gate), product(id))
      })
  }
}

type Store = Effect.Effect<StoreService, never, Scope.Scope>

let subjects = 0

const readThrough =
  (store: Store, options: Partial<Cache.Options<Product, typeof Product.Encoded>>) =>
  async (run: number): Promise<Subject> => {
    const g = gated()
    const scope = await runtime.runPromise(Scope.make())
    const cache = await runtime.runPromise(Scope.extend(
      ReadThrough.make({
        namespace: `joiners-${subjects++}-${run}`,
        value: Product,
        ttl: Duration.minutes(5),
        lookup: g.lookup,
        ...options
      }).pipe(Effect.provideServiceEffect(CacheStore, store)),
      scope
    ))
    return {
      get: cache.get,
      calls: g.calls,
      open: g.open,
      close: () => runtime.runPromise(Scope.close(scope, Exit.void))
    }
  }

const cacheAside = (store: Store) => async (run: number): Promise<Subject> => {
  const g = gated()
  const scope = await runtime.runPromise(Scope.make())
  const cache = await runtime.runPromise(Scope.extend(
    CacheAside.make({ namespace: `joiners-aside-${subjects++}-${run}`, value: Product, ttl: Duration.minutes(5) }).pipe(
      Effect.provideServiceEffect(CacheStore, store)
    ),
    scope
  ))
  return {
    get: (key) => cache.getOrLoad(key, g.lookup(key)),
    calls: g.calls,
    open: g.open,
    close: () => runtime.runPromise(Scope.close(scope, Exit.void))
  }
}

/**
 * The floor: the same N fibers, each suspended in a bare `Effect.async` until all are resumed,
 * against `Effect.void` as the "hit". What any read that waits costs here, cache or not.
 */
const bare = async (): Promise<Subject> => {
  let waiting: Array<(effect: Effect.Effect<unknown>) => void> = []
  return {
    get: (key) =>
      key === "warm" ? Effect.void : Effect.async<unknown>((resume) => {
        waiting.push(resume)
      }),
    calls: () => 0,
    open: () => {
      const all = waiting
      waiting = []
      for (const resume of all) resume(Effect.void)
    },
    close: async () => {}
  }
}

const report = async (name: string, make: (run: number) => Promise<Subject>) => {
  const samples: Array<Sample> = []
  const warm = await make(-1)
  await measure(warm, -1) // JIT warm-up
  await warm.close()
  for (let r = 0; r < ROUNDS; r++) {
    const subject = await make(r)
    samples.push(await measure(subject, r))
    await subject.close()
  }
  const m = (f: (s: Sample) => number) => median(samples.map(f))
  const calls = [...new Set(samples.map((s) => s.calls))].join(", ")
  console.log(
    `| ${name} | ${calls} | ${(m((s) => s.join + s.wake)).toFixed(1)} | ${m((s) => s.join).toFixed(1)} | ${
      m((s) => s.wake).toFixed(1)
    } | ${m((s) => s.hit).toFixed(1)} | ${m((s) => s.join + s.wake - s.hit).toFixed(1)} | ${
      (m((s) => s.heap) / 1024).toFixed(2)
    } |`
  )
}

const header = () => {
  console.log(
    "| reads of one cold key | loader calls | CPU µs per joining read | of which join | of which wake | CPU µs per hit | joining − hit | heap kB per waiting read |"
  )
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
}

const only = process.argv.slice(2)
const want = (name: string) => only.length === 0 || only.some((o) => name.includes(o))

console.log(
  `${N} concurrent reads of one cold key, median of ${ROUNDS} rounds; load average ${
    loadavg().map((x) => x.toFixed(1)).join(" ")
  }\n`
)
header()
if (want("bare")) await report("bare `Effect.async` (floor), `Effect.void` as the hit", bare)
const memory: Store = MemoryStore.make() as Store
if (want("memory")) {
  await report("MemoryStore, ReadThrough.get", readThrough(memory, {}))
  await report("MemoryStore, CacheAside.getOrLoad", cacheAside(memory))
  await report(
    "MemoryStore, ReadThrough.get, lock",
    readThrough(memory, { lock: { ttl: "5 seconds", wait: "5 seconds" } })
  )
}
if (want("redis")) {
  await withServers(redisServer(), async (server) => {
    const clientScope = await runtime.runPromise(Scope.make())
    const client = await runtime.runPromise(
      Scope.extend(Redis.make({ port: server.port, commandTimeout: "5 seconds" }), clientScope)
    )
    const redis: Store = RedisStore.make({ prefix: "joiners" }).pipe(
      Effect.provideService(Redis.RedisClient, client)
    ) as Store
    await report("RedisStore, ReadThrough.get", readThrough(redis, {}))
    await report("RedisStore, CacheAside.getOrLoad", cacheAside(redis))
    await report(
      "RedisStore, ReadThrough.get, lock",
      readThrough(redis, { lock: { ttl: "5 seconds", wait: "5 seconds" } })
    )
    await runtime.runPromise(Scope.close(clientScope, Exit.void))
  })
}
console.log(`\nload average after: ${loadavg().map((x) => x.toFixed(1)).join(" ")}`)
await runtime.dispose()
