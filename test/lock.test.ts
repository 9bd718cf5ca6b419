/**
 * The distributed lock (`lock`) on the memory store, under TestClock, and its counters on a real
 * Redis (real short times); with early recompute (XFetch), one recompute per cycle on both. Two or
 * three handles over one store stand for as many processes: each has its own single flight, so
 * only the lease stops the others from loading too.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Deferred, Duration, Effect, Exit, Fiber, Option, Random, Ref, Schema, TestClock } from "effect"
import { Cache, CacheMetrics, CacheStore, MemoryStore, ReadThrough } from "effect-cachekit"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import * as Testing from "effect-cachekit/testing"
import { fixture } from "./harness/fixture.js"
import { redisServer } from "./harness/redis.js"

const Memory = MemoryStore.layer()

/** The store key of `key` in namespace `n` (namespaces here need no escaping). */
const fullKey = (key: string) => `n:${key}`

/** A lookup that counts its calls, takes `millis` of (test) time, and answers `label:key`. */
const slow = (label: string, millis: number) =>
  Effect.gen(function*() {
    const calls = yield* Ref.make(0)
    const started = yield* Deferred.make<void>()
    const lookup = (key: string) =>
      Ref.update(calls, (n) => n + 1).pipe(
        Effect.zipRight(Deferred.succeed(started, undefined)),
        Effect.zipRight(Effect.sleep(Duration.millis(millis))),
        Effect.as(`${label}:${key}`)
      )
    return { calls, started, lookup }
  })

const handle = <E>(
  lookup: (key: string) => Effect.Effect<string, E>,
  options: Partial<Cache.Options<string, string>> = {}
) =>
  ReadThrough.make({
    namespace: "n",
    value: Schema.String,
    lookup,
    ttl: "1 minute",
    lock: { ttl: "3 seconds", wait: "20 seconds" },
    ...options
  })

/** The lock's counters of a handle's stats, in one line. */
const lockStats = (stats: CacheMetrics.Stats) =>
  `acquired ${stats.locksAcquired}, waits ${stats.lockWaits}, timeouts ${stats.lockTimeouts}, takeovers ${stats.lockTakeovers}`

/** Takes the lease of a key as a holder that never extends nor releases it (a process that died). */
const foreignHolder = (key: string, ttl: Duration.DurationInput) =>
  Effect.flatMap(CacheStore.CacheStore, (store) => store.lease!.acquire(fullKey(key), ttl))

describe("lock (distributed lease) on the memory store", () => {
  it.scoped("while one handle loads under the lease, the other polls and gets its value: 1 loader call", () =>
    Effect.gen(function*() {
      const a = yield* slow("a", 5_000)
      const b = yield* slow("b", 5_000)
      const first = yield* handle(a.lookup)
      const second = yield* handle(b.lookup)
      const holder = yield* Effect.fork(first.get("k"))
      yield* Deferred.await(a.started)
      const waiters = yield* Effect.forEach(Array.from({ length: 50 }), () => Effect.fork(second.get("k")))
      yield* TestClock.adjust("6 seconds")
      expect(yield* Fiber.join(holder)).toBe("a:k")
      const values = yield* Fiber.joinAll(waiters)
      expect(new Set(values)).toEqual(new Set(["a:k"]))
      expect(yield* Ref.get(a.calls)).toBe(1)
      expect(yield* Ref.get(b.calls)).toBe(0)
      // the 50 gets of the second handle share one flight: one wait, answered by the holder's value
      expect(lockStats(yield* first.stats)).toBe("acquired 1, waits 0, timeouts 0, takeovers 0")
      expect(lockStats(yield* second.stats)).toBe("acquired 0, waits 1, timeouts 0, takeovers 0")
      // the holder released the lease after writing: the next load of the key takes it at once
      const store = yield* CacheStore.CacheStore
      expect(Option.isSome(yield* store.lease!.acquire(fullKey("k"), "1 second"))).toBe(true)
    }).pipe(Effect.provide(Memory)))

  it.scoped("the watchdog extends the lease of a load longer than its TTL: still 1 loader call", () =>
    Effect.gen(function*() {
      const a = yield* slow("a", 10_000) // more than three times the 3 s lease
      const b = yield* slow("b", 10_000)
      const first = yield* handle(a.lookup)
      const second = yield* handle(b.lookup)
      const holder = yield* Effect.fork(first.get("k"))
      yield* Deferred.await(a.started)
      const waiter = yield* Effect.fork(second.get("k"))
      yield* TestClock.adjust("11 seconds")
      expect(yield* Fiber.join(holder)).toBe("a:k")
      expect(yield* Fiber.join(waiter)).toBe("a:k")
      expect(yield* Ref.get(b.calls)).toBe(0)
    }).pipe(Effect.provide(Memory)))

  it.scoped("a holder that dies lets its lease lapse, and a waiter takes the load over", () =>
    Effect.gen(function*() {
      expect(Option.isSome(yield* foreignHolder("k", "3 seconds"))).toBe(true)
      const b = yield* slow("b", 1_000)
      const second = yield* handle(b.lookup)
      const waiter = yield* Effect.fork(second.get("k"))
      yield* TestClock.adjust("2900 millis")
      expect(yield* Ref.get(b.calls)).toBe(0) // the lease still runs
      yield* TestClock.adjust("2 seconds")
      expect(yield* Fiber.join(waiter)).toBe("b:k")
      expect(yield* Ref.get(b.calls)).toBe(1)
      expect(lockStats(yield* second.stats)).toBe("acquired 1, waits 1, timeouts 0, takeovers 1")
    }).pipe(Effect.provide(Memory)))

  it.scoped("a holder whose load fails releases the lease and a waiter takes the load over; the counters are metrics too", () =>
    Effect.gen(function*() {
      const b = yield* slow("b", 1_000)
      const failing = (key: string) => Effect.zipRight(Effect.sleep("1 second"), Effect.fail(`no ${key}`))
      const options: Partial<Cache.Options<string, string>> = { namespace: "lock-counted" }
      const first = yield* handle(failing, options)
      const second = yield* handle(b.lookup, options)
      const holder = yield* Effect.fork(first.get("k"))
      yield* TestClock.adjust("1 millis")
      const waiter = yield* Effect.fork(second.get("k"))
      yield* TestClock.adjust("3 seconds")
      expect(yield* Effect.flip(Fiber.join(holder))).toBe("no k")
      expect(yield* Fiber.join(waiter)).toBe("b:k")
      expect(yield* Ref.get(b.calls)).toBe(1)
      expect(lockStats(yield* first.stats)).toBe("acquired 1, waits 0, timeouts 0, takeovers 0")
      expect(lockStats(yield* second.stats)).toBe("acquired 1, waits 1, timeouts 0, takeovers 1")
      const metrics = yield* CacheMetrics.snapshot({ namespace: "lock-counted", store: "memory" })
      expect(lockStats(metrics)).toBe("acquired 2, waits 1, timeouts 0, takeovers 1")
    }).pipe(Effect.provide(Memory)))

  it.scoped("onTimeout \"fail\": when wait ends first, LockTimeout and no load", () =>
    Effect.gen(function*() {
      yield* foreignHolder("k", "1 minute")
      const b = yield* slow("b", 1_000)
      const second = yield* handle(b.lookup, { lock: { ttl: "3 seconds", wait: "2 seconds", onTimeout: "fail" } })
      const waiter = yield* Effect.fork(second.get("k"))
      yield* TestClock.adjust("1999 millis")
      expect(waiter.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.await(waiter)
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("LockTimeout")
      expect(yield* Ref.get(b.calls)).toBe(0)
      expect(lockStats(yield* second.stats)).toBe("acquired 0, waits 1, timeouts 1, takeovers 0")
    }).pipe(Effect.provide(Memory)))

  it.scoped("onTimeout \"load\" (the default): when wait ends first, the loader runs anyway", () =>
    Effect.gen(function*() {
      yield* foreignHolder("k", "1 minute")
      const b = yield* slow("b", 1_000)
      const second = yield* handle(b.lookup, { lock: { ttl: "3 seconds", wait: "2 seconds" } })
      const waiter = yield* Effect.fork(second.get("k"))
      yield* TestClock.adjust("1999 millis")
      expect(yield* Ref.get(b.calls)).toBe(0)
      yield* TestClock.adjust("1 millis")
      expect(yield* Ref.get(b.calls)).toBe(1)
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(waiter)).toBe("b:k")
      // loaded anyway, without the lease: a timeout, neither a lease nor a takeover
      expect(lockStats(yield* second.stats)).toBe("acquired 0, waits 1, timeouts 1, takeovers 0")
    }).pipe(Effect.provide(Memory)))

  it.scoped("when wait ends and a value is kept (failSafe), it is served and the loader does not run", () =>
    Effect.gen(function*() {
      const b = yield* slow("b", 1_000)
      const options: Partial<Cache.Options<string, string>> = {
        ttl: "10 seconds",
        failSafe: { maxStale: "1 hour", throttle: "1 second" },
        lock: { ttl: "3 seconds", wait: "2 seconds", onTimeout: "fail" }
      }
      const second = yield* handle(b.lookup, options)
      const loaded = yield* Effect.fork(second.get("k"))
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(loaded)).toBe("b:k")
      yield* TestClock.adjust("1 minute") // expired, kept by failSafe
      yield* foreignHolder("k", "1 minute")
      const waiter = yield* Effect.fork(second.get("k"))
      yield* TestClock.adjust("2 seconds")
      expect(yield* Fiber.join(waiter)).toBe("b:k")
      expect(yield* Ref.get(b.calls)).toBe(1)
      // the wait timed out and the kept value answered: no lease taken for it
      expect(lockStats(yield* second.stats)).toBe("acquired 1, waits 1, timeouts 1, takeovers 0")
    }).pipe(Effect.provide(Memory)))

  it.scoped("stale-while-revalidate across two handles: both serve the stale value, 1 refresh load", () =>
    Effect.gen(function*() {
      const a = yield* slow("a", 2_000)
      const b = yield* slow("b", 2_000)
      const options: Partial<Cache.Options<string, string>> = { ttl: "10 seconds", staleWhileRevalidate: "1 minute" }
      const first = yield* handle(a.lookup, options)
      const second = yield* handle(b.lookup, options)
      const filled = yield* Effect.fork(first.get("k"))
      yield* TestClock.adjust("2 seconds")
      expect(yield* Fiber.join(filled)).toBe("a:k")
      yield* TestClock.adjust("10 seconds")
      expect(yield* first.get("k")).toBe("a:k") // stale: a refresh starts under the lease
      expect(yield* second.get("k")).toBe("a:k") // stale: its refresh finds the lease held
      yield* TestClock.adjust("3 seconds")
      expect(yield* Ref.get(a.calls)).toBe(2)
      expect(yield* Ref.get(b.calls)).toBe(0)
      expect(yield* second.get("k")).toBe("a:k")
      expect((yield* second.stats).staleHits).toBe(1)
    }).pipe(Effect.provide(Memory)))

  it.scoped("getMany with lookupMany: keys whose leases another handle holds wait for its values; the rest load in one call", () =>
    Effect.gen(function*() {
      const batches = yield* Ref.make<Array<string>>([])
      const batchHandle = (label: string) =>
        ReadThrough.make({
          namespace: "n",
          value: Schema.String,
          lookup: (key: string) => Effect.succeed(`${label}:${key}`),
          lookupMany: (keys: ReadonlyArray<string>) =>
            Ref.update(batches, (b) => [...b, `${label}:${keys.join(",")}`]).pipe(
              Effect.zipRight(Effect.sleep("5 seconds")),
              Effect.as(keys.map((key) => [key, `${label}:${key}`] as const))
            ),
          ttl: "1 minute",
          lock: { ttl: "3 seconds", wait: "20 seconds" }
        })
      const first = yield* batchHandle("a")
      const second = yield* batchHandle("b")
      const holder = yield* Effect.fork(first.getMany(["x", "y"]))
      yield* TestClock.adjust("1 second")
      const waiter = yield* Effect.fork(second.getMany(["x", "y", "z"]))
      yield* TestClock.adjust("10 seconds")
      expect(yield* Fiber.join(holder)).toEqual([Option.some("a:x"), Option.some("a:y")])
      expect(yield* Fiber.join(waiter)).toEqual([Option.some("a:x"), Option.some("a:y"), Option.some("b:z")])
      expect(yield* Ref.get(batches)).toEqual(["a:x,y", "b:z"])
      expect(lockStats(yield* first.stats)).toBe("acquired 2, waits 0, timeouts 0, takeovers 0")
      expect(lockStats(yield* second.stats)).toBe("acquired 1, waits 2, timeouts 0, takeovers 0")
    }).pipe(Effect.provide(Memory)))

  it.scoped("a loader that reads other keys of its cache under the lock does not deadlock", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make<Array<string>>([])
      const self: { get?: (key: string) => Effect.Effect<string, unknown> } = {}
      const lookup = (key: string): Effect.Effect<string, unknown> =>
        Effect.zipRight(
          Ref.update(calls, (c) => [...c, key]),
          key === "leaf" ? Effect.succeed("leaf") : Effect.map(self.get!("leaf"), (leaf) => `${key}+${leaf}`)
        )
      const cache = yield* handle(lookup)
      self.get = cache.get
      expect(yield* cache.get("root")).toBe("root+leaf")
      expect(yield* Ref.get(calls)).toEqual(["root", "leaf"])
    }).pipe(Effect.provide(Memory)))

  it.scoped("an explicit refresh under the lock loads anew even though the entry is fresh", () =>
    Effect.gen(function*() {
      const counter = yield* Ref.make(0)
      const lookup = (key: string) => Effect.map(Ref.updateAndGet(counter, (n) => n + 1), (n) => `${key}#${n}`)
      const cache = yield* handle(lookup)
      expect(yield* cache.get("k")).toBe("k#1")
      expect(yield* cache.refresh("k")).toBe("k#2")
      expect(yield* cache.get("k")).toBe("k#2")
    }).pipe(Effect.provide(Memory)))

  it.scoped("on a store that grants no leases, a load fails with UnsupportedCapability", () =>
    Effect.gen(function*() {
      const map = new Map<string, CacheStore.Value>()
      const plain = CacheStore.make({
        name: "plain",
        capabilities: { live: true },
        get: (key) => Effect.sync(() => Option.fromNullable(map.get(key))),
        set: (key, value) => Effect.sync(() => void map.set(key, value)),
        setIfAbsent: (key, value) => Effect.sync(() => map.has(key) ? false : (map.set(key, value), true)),
        delete: (key) => Effect.sync(() => map.delete(key)),
        expire: (key) => Effect.sync(() => map.has(key))
      })
      const cache = yield* Effect.provideService(handle((key) => Effect.succeed(key)), CacheStore.CacheStore, plain)
      const exit = yield* Effect.exit(cache.get("k"))
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe(
        "UnsupportedCapability"
      )
    }))

  it.scoped("a store that fails to grant the lease: the load goes on without it, or fails with onStoreError \"fail\"", () =>
    Effect.gen(function*() {
      const { faults, store } = yield* Testing.faulty(yield* CacheStore.CacheStore)
      yield* faults.inject(Testing.failure("connection"), "lease")
      const b = yield* slow("b", 1_000)
      const fallback = yield* Effect.provideService(handle(b.lookup), CacheStore.CacheStore, store)
      const strict = yield* Effect.provideService(
        handle(b.lookup, { namespace: "strict", onStoreError: "fail" }),
        CacheStore.CacheStore,
        store
      )
      const loaded = yield* Effect.fork(fallback.get("k"))
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(loaded)).toBe("b:k")
      expect((yield* fallback.stats).storeErrors).toBe(1)
      const refused = yield* Effect.exit(strict.get("k"))
      expect(Exit.isFailure(refused) && refused.cause._tag === "Fail" && refused.cause.error._tag).toBe("StoreError")
      expect(yield* Ref.get(b.calls)).toBe(1)
      expect((yield* faults.calls).lease).toBe(2)
    }).pipe(Effect.provide(Memory)))

  it("lock options that make no sense throw InvalidOptions when the cache is made", () => {
    const bad: ReadonlyArray<readonly [unknown, string]> = [
      [{ ttl: 0, wait: "1 second" }, "lock.ttl"],
      [{ ttl: "1 second", wait: -1 }, "lock.wait"],
      [{ ttl: "1 second", wait: Duration.infinity }, "lock.wait"],
      [{ ttl: "1 second", wait: "1 second", onTimeout: "stale" }, "lock.onTimeout"],
      [null, "lock"]
    ]
    for (const [lock, option] of bad) {
      let thrown: unknown
      try {
        Cache.cached({ namespace: "n", key: "k", value: Schema.String, ttl: "1 minute", lock: lock as never })
      } catch (error) {
        thrown = error
      }
      expect({ option, thrown: (thrown as { option?: string } | undefined)?.option }).toEqual({
        option,
        thrown: option
      })
    }
  })
})

/**
 * Early recompute (XFetch) with the lock, over `handles` handles of one store: every read of a
 * cycle's waves draws from a seeded `Random`, so which reads fire is the same on every run. Each
 * cycle starts 4 s before the entry's expiry and reads in 24 waves 250 ms apart (to 2 s past the
 * expiry), each wave `reads` concurrent gets spread over the handles; a load takes 2 s, so a
 * recompute started in one wave is still running during the next ones. Answers the loader calls
 * of each cycle, and the handles' stats.
 */
const xfetchCycles = (options: {
  readonly handles: number
  readonly cycles: number
  readonly reads: number
  readonly lock: boolean
}) =>
  Effect.gen(function*() {
    const calls = yield* Ref.make(0)
    let loadedAt = 0
    const handles = yield* Effect.forEach(Array.from({ length: options.handles }), (_, h) =>
      handle(
        (key) =>
          Effect.flatMap(Ref.updateAndGet(calls, (n) => n + 1), (n) =>
            Effect.sleep("2 seconds").pipe(
              Effect.zipRight(Effect.flatMap(Clock.currentTimeMillis, (t) => Effect.sync(() => void (loadedAt = t)))),
              Effect.as(`${h}:${key}#${n}`)
            )),
        {
          ttl: "1 minute",
          earlyRecompute: { beta: 1 },
          lock: options.lock ? { ttl: "3 seconds", wait: "20 seconds" } : undefined
        }
      ))
    const cold = yield* Effect.fork(handles[0]!.get("k"))
    yield* TestClock.adjust("2 seconds")
    let previous = yield* Fiber.join(cold)
    const perCycle: Array<number> = []
    for (let cycle = 0; cycle < options.cycles; cycle++) {
      const before = yield* Ref.get(calls)
      const expiry = loadedAt + 60_000
      yield* TestClock.adjust(expiry - 4_000 - (yield* Clock.currentTimeMillis))
      const seen = new Set<string>()
      for (let wave = 0; wave < 24; wave++) {
        const values = yield* Effect.forEach(
          Array.from({ length: options.reads }),
          (_, i) => handles[i % handles.length]!.get("k"),
          { concurrency: "unbounded" }
        ).pipe(Effect.withRandom(Random.make(`xfetch ${cycle} ${wave}`)))
        for (const value of values) seen.add(value)
        yield* TestClock.adjust("250 millis")
      }
      // one more lease's worth of time: every waiter has polled since the recompute ended
      yield* TestClock.adjust("3 seconds")
      perCycle.push((yield* Ref.get(calls)) - before)
      // the reads saw the value of the cycle before, then the recompute's, and nothing else
      const current = yield* handles[0]!.get("k")
      for (const h of handles) expect(yield* h.get("k")).toBe(current)
      expect([...seen].every((value) => value === previous || value === current)).toBe(true)
      previous = current
    }
    const stats = yield* Effect.forEach(handles, (h) => h.stats)
    return { perCycle, stats }
  })

describe("lock with early recompute (XFetch) across handles of one store", () => {
  it.scoped(
    "3 handles × 300 seeded reads per wave near expiry, 5 cycles: 1 loader call per cycle in total with the lock",
    () =>
      Effect.gen(function*() {
        const { perCycle, stats } = yield* xfetchCycles({ handles: 3, cycles: 5, reads: 300, lock: true })
        expect(perCycle).toEqual([1, 1, 1, 1, 1])
        const total = (count: (s: CacheMetrics.Stats) => number) => stats.reduce((sum, s) => sum + count(s), 0)
        // the cold load and one recompute per cycle took the lease; in every cycle the two other
        // handles decided to recompute too, and waited on the lease instead of loading
        expect(total((s) => s.locksAcquired)).toBe(1 + 5)
        expect(total((s) => s.lockWaits)).toBe(2 * 5)
        expect(total((s) => s.lockTakeovers + s.lockTimeouts)).toBe(0)
      }).pipe(Effect.provide(Memory))
  )

  it.scoped(
    "the same reads without the lock: each handle recomputes once per cycle (single flight is per handle)",
    () =>
      Effect.gen(function*() {
        const { perCycle } = yield* xfetchCycles({ handles: 3, cycles: 5, reads: 300, lock: false })
        expect(perCycle).toEqual([3, 3, 3, 3, 3])
      }).pipe(Effect.provide(Memory))
  )
})

const redis = fixture(redisServer())

/** A Redis store over a client of its own, standing for one process. */
const redisStore = (prefix: string) =>
  Effect.flatMap(
    Redis.make({ port: redis().port }),
    (client) => Effect.provideService(RedisStore.make({ prefix }), Redis.RedisClient, client)
  )

describe("lock counters on a real Redis", () => {
  it.scopedLive("a held lease makes the other process wait, and a lapsed one is taken over: both counted", () =>
    Effect.gen(function*() {
      const one = yield* redisStore("lock-counters")
      const two = yield* redisStore("lock-counters")
      const a = yield* slow("a", 300)
      const b = yield* slow("b", 300)
      const lock = { ttl: "1 second", wait: "10 seconds" } as const
      const first = yield* Effect.provideService(handle(a.lookup, { lock }), CacheStore.CacheStore, one)
      const second = yield* Effect.provideService(handle(b.lookup, { lock }), CacheStore.CacheStore, two)
      const holder = yield* Effect.fork(first.get("k"))
      yield* Deferred.await(a.started)
      const waiters = yield* Effect.forEach(Array.from({ length: 20 }), () => Effect.fork(second.get("k")))
      expect(yield* Fiber.join(holder)).toBe("a:k")
      expect(new Set(yield* Fiber.joinAll(waiters))).toEqual(new Set(["a:k"]))
      expect(yield* Ref.get(b.calls)).toBe(0)
      // a holder that never comes back: its 500 ms lease lapses, and the waiting handle loads
      expect(Option.isSome(yield* one.lease!.acquire(fullKey("gone"), "500 millis"))).toBe(true)
      expect(yield* second.get("gone")).toBe("b:gone")
      expect(yield* Ref.get(b.calls)).toBe(1)
      expect(lockStats(yield* first.stats)).toBe("acquired 1, waits 0, timeouts 0, takeovers 0")
      expect(lockStats(yield* second.stats)).toBe("acquired 1, waits 2, timeouts 0, takeovers 1")
    }))
})

describe("lock with early recompute (XFetch) on a real Redis", () => {
  it.scopedLive(
    "3 handles on their own clients read near expiry for 4.5 s (1 s TTL, 100 ms loads): each loader call starts from the value of the one before, 1 per cycle",
    () =>
      Effect.gen(function*() {
        // in real time, which read fires depends on timing; what holds whatever the timing is
        // that no two loader calls replace the same value: each starts after the one before
        // ended, from its value (two recomputes of one cycle would both start from the same one)
        let calls = 0
        let latest = 0
        const startedFrom: Array<number> = []
        const handles = yield* Effect.forEach(["a", "b", "c"], (label) =>
          Effect.flatMap(redisStore("lock-xfetch"), (store) =>
            Effect.provideService(
              handle(
                (key) =>
                  Effect.suspend(() => {
                    const n = ++calls
                    startedFrom.push(latest)
                    return Effect.as(
                      Effect.zipRight(
                        Effect.sleep("100 millis"),
                        Effect.sync(() =>
                          void (latest = n)
                        )
                      ),
                      `${label}:${key}#${n}`
                    )
                  }),
                {
                  ttl: "1 second",
                  earlyRecompute: { beta: 1 },
                  lock: { ttl: "1 second", wait: "5 seconds" }
                }
              ),
              CacheStore.CacheStore,
              store
            )))
        const end = Date.now() + 4_500
        const seen = new Set<string>()
        while (Date.now() < end) {
          const values = yield* Effect.forEach(
            Array.from({ length: 30 }),
            (_, i) => handles[i % handles.length]!.get("k"),
            { concurrency: "unbounded" }
          )
          for (const value of values) seen.add(value)
          yield* Effect.sleep("25 millis")
        }
        // the last recompute ends
        yield* Effect.sleep("300 millis")
        expect(startedFrom).toEqual(Array.from({ length: calls }, (_, i) => i))
        // several cycles: the cold load, then about one recompute per second
        expect(calls).toBeGreaterThanOrEqual(4)
        expect(seen.size).toBeGreaterThanOrEqual(calls - 1)
        const stats = yield* Effect.forEach(handles, (h) => h.stats)
        const waits = stats.reduce((sum, s) => sum + s.lockWaits, 0)
        // other handles decided to recompute in the same cycles, and waited instead of loading
        expect(waits).toBeGreaterThan(0)
      }).pipe(Effect.withRandom(Random.make("xfetch on redis"))),
    30_000
  )
})
