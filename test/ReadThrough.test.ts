import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Layer, Metric, Option, Ref, Schema, TestClock, Tracer } from "effect"
import { CacheError, CacheMetrics, CacheStore, MemoryStore, ReadThrough, Ttl } from "effect-cachekit"
import * as Testing from "effect-cachekit/testing"

const User = Schema.Struct({ id: Schema.String, name: Schema.String, joined: Schema.DateFromString })
type User = typeof User.Type

class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { id: Schema.String }) {}

const user = (id: string): User => ({ id, name: `user-${id}`, joined: new Date(Date.UTC(2024, 0, 1)) })

/** A lookup that counts its calls. */
const counting = Effect.gen(function*() {
  const calls = yield* Ref.make(0)
  const lookup = (id: string) =>
    Effect.zipRight(
      Ref.update(calls, (n) => n + 1),
      id.startsWith("missing") ? Effect.fail(new NotFound({ id })) : Effect.succeed(user(id))
    )
  return { calls, lookup }
})

/** A lookup that counts its calls and holds every load until `open` runs. */
const gated = Effect.gen(function*() {
  const calls = yield* Ref.make(0)
  const gate = yield* Deferred.make<void>()
  const lookup = (id: string) =>
    Ref.update(calls, (n) => n + 1).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as(user(id)))
  return { calls, lookup, open: Deferred.succeed(gate, undefined) }
})

const Memory = MemoryStore.layer()

describe("ReadThrough", () => {
  it.scoped("a miss loads and stores; the next get is a hit without the loader", () =>
    Effect.gen(function*() {
      const { calls, lookup } = yield* counting
      const users = yield* ReadThrough.make({ namespace: "user", value: User, lookup, ttl: "5 minutes" })
      const first = yield* users.get("42")
      const second = yield* users.get("42")
      expect(first).toEqual(user("42"))
      expect(second).toEqual(user("42"))
      expect(yield* Ref.get(calls)).toBe(1)
      const stats = yield* users.stats
      expect(stats).toMatchObject({ hits: 1, misses: 1, loads: 1, hitRate: 0.5 })
    }).pipe(Effect.provide(Memory)))

  it.scoped("stampede: 1,000 concurrent gets of a cold key call lookup exactly once", () =>
    Effect.gen(function*() {
      const { calls, lookup, open } = yield* gated
      const users = yield* ReadThrough.make({ namespace: "user", value: User, lookup, ttl: "5 minutes" })
      const fibers = yield* Effect.forEach(Array.from({ length: 1000 }), () => Effect.fork(users.get("cold")))
      yield* Effect.yieldNow()
      yield* open
      const results = yield* Fiber.joinAll(fibers)
      expect(results.length).toBe(1000)
      expect(results.every((u) => u.id === "cold")).toBe(true)
      expect(yield* Ref.get(calls)).toBe(1)
      expect((yield* users.stats).loads).toBe(1)
    }).pipe(Effect.provide(Memory)))

  it.scoped("an interrupted waiter does not interrupt the load the other waiters share", () =>
    Effect.gen(function*() {
      const { calls, lookup, open } = yield* gated
      const users = yield* ReadThrough.make({ namespace: "user", value: User, lookup, ttl: "5 minutes" })
      const impatient = yield* Effect.fork(users.get("k"))
      const patient = yield* Effect.fork(users.get("k"))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(impatient)
      yield* open
      expect(yield* Fiber.join(patient)).toEqual(user("k"))
      expect(yield* Ref.get(calls)).toBe(1)
      // and the value was stored: no further load
      yield* users.get("k")
      expect(yield* Ref.get(calls)).toBe(1)
    }).pipe(Effect.provide(Memory)))

  it.scoped("when the last waiter leaves, the shared load is interrupted", () =>
    Effect.gen(function*() {
      const interrupted = yield* Deferred.make<boolean>()
      const users = yield* ReadThrough.make({
        namespace: "user",
        value: User,
        lookup: (id: string) =>
          Effect.never.pipe(
            Effect.as(user(id)),
            Effect.onInterrupt(() => Deferred.succeed(interrupted, true))
          ),
        ttl: "5 minutes"
      })
      const a = yield* Effect.fork(users.get("k"))
      const b = yield* Effect.fork(users.get("k"))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(a)
      expect(yield* Deferred.isDone(interrupted)).toBe(false)
      yield* Fiber.interrupt(b)
      expect(yield* Deferred.await(interrupted)).toBe(true)
    }).pipe(Effect.provide(Memory)))

  it.scoped("the loader's own error passes through typed, and a failed load is not cached", () =>
    Effect.gen(function*() {
      const { calls, lookup } = yield* counting
      const users = yield* ReadThrough.make({ namespace: "user", value: User, lookup, ttl: "5 minutes" })
      const first = yield* Effect.flip(users.get("missing-1"))
      expect(first).toBeInstanceOf(NotFound)
      const second = yield* users.get("missing-1").pipe(Effect.catchTag("NotFound", (e) => Effect.succeed(e.id)))
      expect(second).toBe("missing-1")
      expect(yield* Ref.get(calls)).toBe(2)
      expect((yield* users.stats).loadFailures).toBe(2)
    }).pipe(Effect.provide(Memory)))

  it.scoped("entries expire after their TTL on the TestClock", () =>
    Effect.gen(function*() {
      const { calls, lookup } = yield* counting
      const users = yield* ReadThrough.make({ namespace: "user", value: User, lookup, ttl: "5 minutes" })
      yield* users.get("a")
      yield* TestClock.adjust("4 minutes")
      yield* users.get("a")
      expect(yield* Ref.get(calls)).toBe(1)
      yield* TestClock.adjust("1 minute")
      yield* users.get("a")
      expect(yield* Ref.get(calls)).toBe(2)
    }).pipe(Effect.provide(Memory)))

  it.scoped("jittered TTLs all lie within [d·(1−spread), d·(1+spread)] and are spread out", () =>
    Effect.gen(function*() {
      const { lookup } = yield* counting
      const users = yield* ReadThrough.make({
        namespace: "user",
        value: User,
        lookup,
        ttl: Ttl.jittered("100 seconds", { spread: 0.2 }),
        // the store keeps an entry past its end for the fence window: here 1 s + 1 s
        loadTimeout: "1 second"
      })
      const keys = Array.from({ length: 200 }, (_, i) => `k${i}`)
      yield* users.getMany(keys)
      const store = yield* CacheStore.CacheStore
      const alive = () => Effect.map(store.getMany(keys.map((k) => `user:${k}`)), (r) => r.filter(Option.isSome).length)
      yield* TestClock.adjust("81999 millis")
      expect(yield* alive()).toBe(200) // none before d·(1−spread)
      yield* TestClock.adjust("20001 millis") // t = d
      const atNominal = yield* alive()
      expect(atNominal).toBeGreaterThan(0)
      expect(atNominal).toBeLessThan(200)
      yield* TestClock.adjust("20000 millis") // t = d·(1+spread)
      expect(yield* alive()).toBe(0)
    }).pipe(Effect.provide(Memory)))

  it.scoped("bytes that no longer decode are a miss: dropped, counted, reloaded", () =>
    Effect.gen(function*() {
      const { calls, lookup } = yield* counting
      const store = yield* CacheStore.CacheStore
      const users = yield* ReadThrough.make({ namespace: "user", value: User, lookup, ttl: "5 minutes" })
      yield* store.set("user:garbage", new TextEncoder().encode("{not json"))
      yield* store.set(
        "user:old-shape",
        new TextEncoder().encode(JSON.stringify({ f: 1, h: "x", c: 0, u: null, s: null, l: 0, t: [], v: { id: 1 } }))
      )
      expect(yield* users.get("garbage")).toEqual(user("garbage"))
      expect(yield* users.get("old-shape")).toEqual(user("old-shape"))
      expect(yield* Ref.get(calls)).toBe(2)
      expect((yield* users.stats).decodeFailures).toBe(2)
      const decodeFailures = CacheMetrics.decodeFailures.pipe(
        Metric.tagged("namespace", "user"),
        Metric.tagged("store", "memory")
      )
      expect((yield* Metric.value(decodeFailures)).count).toBeGreaterThanOrEqual(2)
      // the reloaded entries are now hits
      yield* users.get("garbage")
      expect(yield* Ref.get(calls)).toBe(2)
    }).pipe(Effect.provide(Memory)))

  it.scoped("a schema change is a miss, not a wrongly typed hit", () =>
    Effect.gen(function*() {
      const v1 = yield* ReadThrough.make({
        namespace: "thing",
        value: Schema.Struct({ n: Schema.Number }),
        lookup: () => Effect.succeed({ n: 1 }),
        ttl: "1 hour"
      })
      yield* v1.get("x")
      const v2 = yield* ReadThrough.make({
        namespace: "thing",
        value: Schema.Struct({ n: Schema.String }),
        lookup: () => Effect.succeed({ n: "one" }),
        ttl: "1 hour"
      })
      expect(yield* v2.get("x")).toEqual({ n: "one" })
      expect((yield* v2.stats).decodeFailures).toBe(1)
    }).pipe(Effect.provide(Memory)))

  it.scoped("a failing store falls back to the loader and counts the errors", () =>
    Effect.gen(function*() {
      const { calls, lookup } = yield* counting
      const { faults, store } = yield* Effect.flatMap(MemoryStore.make(), Testing.faulty)
      const users = yield* ReadThrough.make({ namespace: "user", value: User, lookup, ttl: "5 minutes" }).pipe(
        Effect.provideService(CacheStore.CacheStore, store)
      )
      yield* users.get("a")
      yield* users.get("a")
      expect(yield* Ref.get(calls)).toBe(1)
      yield* faults.inject(Testing.failure("connection"))
      expect(yield* users.get("a")).toEqual(user("a"))
      expect(yield* users.get("b")).toEqual(user("b"))
      expect(yield* Ref.get(calls)).toBe(3)
      expect((yield* users.stats).storeErrors).toBe(4) // two reads, two writes
      yield* faults.heal()
      yield* users.get("a")
      expect(yield* Ref.get(calls)).toBe(3)
    }))

  it.scoped("an invalidation the store refused fails with StoreError, even when reads fall back: the old value never comes back", () =>
    Effect.gen(function*() {
      let version = 1
      const { faults, store } = yield* Effect.flatMap(MemoryStore.make(), Testing.faulty)
      const users = yield* ReadThrough.make({
        namespace: "user",
        value: Schema.String,
        lookup: (id: string) => Effect.sync(() => `${id}@v${version}`),
        ttl: "5 minutes"
      }).pipe(Effect.provideService(CacheStore.CacheStore, store))
      expect(yield* users.get("a")).toBe("a@v1")
      version = 2
      yield* faults.inject(Testing.failure("connection"), ["delete", "deleteMany", "keys", "get"])
      // not acknowledged: the caller learns that the old entry may still be there
      expect((yield* Effect.flip(users.invalidate("a")))._tag).toBe("StoreError")
      expect((yield* Effect.flip(users.expire("a")))._tag).toBe("StoreError")
      expect((yield* Effect.flip(users.clear))._tag).toBe("StoreError")
      expect((yield* Effect.flip(users.invalidatePattern("*")))._tag).toBe("StoreError")
      // reads still fall back to the loader while the store fails
      expect(yield* users.get("a")).toBe("a@v2")
      yield* faults.heal()
      yield* users.invalidate("a")
      expect(yield* users.get("a")).toBe("a@v2")
    }))

  it.scoped("onStoreError: \"fail\" surfaces store failures as StoreError", () =>
    Effect.gen(function*() {
      const { lookup } = yield* counting
      const { faults, store } = yield* Effect.flatMap(MemoryStore.make(), Testing.faulty)
      const users = yield* ReadThrough.make({
        namespace: "user",
        value: User,
        lookup,
        ttl: "5 minutes",
        onStoreError: "fail"
      }).pipe(Effect.provideService(CacheStore.CacheStore, store))
      yield* faults.inject(Testing.failure("connection"))
      const error = yield* Effect.flip(users.get("a"))
      expect(error._tag).toBe("StoreError")
    }))

  it.scoped("getMany reads the store once and loads all misses in ONE lookupMany call", () =>
    Effect.gen(function*() {
      const batches = yield* Ref.make<Array<ReadonlyArray<string>>>([])
      const singles = yield* Ref.make(0)
      const users = yield* ReadThrough.make({
        namespace: "user",
        value: User,
        lookup: (id: string) => Effect.as(Ref.update(singles, (n) => n + 1), user(id)),
        lookupMany: (ids) =>
          Effect.as(Ref.update(batches, (b) => [...b, ids]), ids.map((id) => [id, user(id)] as const)),
        ttl: "5 minutes"
      })
      yield* users.get("b")
      const result = yield* users.getMany(["a", "b", "c", "a", "d"])
      expect(result.map((u) => Option.getOrThrow(u).id)).toEqual(["a", "b", "c", "a", "d"])
      expect(yield* Ref.get(batches)).toEqual([["a", "c", "d"]])
      expect(yield* Ref.get(singles)).toBe(1)
      const again = yield* users.getMany(["d", "c", "b", "a"])
      expect(again.map((u) => Option.getOrThrow(u).id)).toEqual(["d", "c", "b", "a"])
      expect((yield* Ref.get(batches)).length).toBe(1)
    }).pipe(Effect.provide(Memory)))

  it.scoped("getMany without lookupMany loads each miss once, and a failing batch fails typed", () =>
    Effect.gen(function*() {
      const { calls, lookup } = yield* counting
      const users = yield* ReadThrough.make({ namespace: "user", value: User, lookup, ttl: "5 minutes" })
      const result = yield* users.getMany(["x", "y", "x"])
      expect(result.map((u) => Option.getOrThrow(u).id)).toEqual(["x", "y", "x"])
      expect(yield* Ref.get(calls)).toBe(2)
      const error = yield* Effect.flip(users.getMany(["x", "missing-z"]))
      expect(error).toBeInstanceOf(NotFound)
    }).pipe(Effect.provide(Memory)))

  it.scoped("concurrent get and getMany of the same cold key share one load", () =>
    Effect.gen(function*() {
      const batches = yield* Ref.make(0)
      const { calls: singles, lookup, open } = yield* gated
      const users = yield* ReadThrough.make({
        namespace: "user",
        value: User,
        lookup,
        lookupMany: (ids) => Effect.as(Ref.update(batches, (n) => n + 1), ids.map((id) => [id, user(id)] as const)),
        ttl: "5 minutes"
      })
      const single = yield* Effect.fork(users.get("shared"))
      yield* Effect.yieldNow()
      const many = yield* Effect.fork(users.getMany(["shared", "other"]))
      yield* Effect.yieldNow()
      yield* open
      expect((yield* Fiber.join(many)).map((u) => Option.getOrThrow(u).id)).toEqual(["shared", "other"])
      expect((yield* Fiber.join(single)).id).toBe("shared")
      expect(yield* Ref.get(singles)).toBe(1)
      expect(yield* Ref.get(batches)).toBe(1)
    }).pipe(Effect.provide(Memory)))

  it.scoped("refresh reloads now; invalidate removes the entry", () =>
    Effect.gen(function*() {
      const { calls, lookup } = yield* counting
      const users = yield* ReadThrough.make({ namespace: "user", value: User, lookup, ttl: "5 minutes" })
      yield* users.get("a")
      yield* users.refresh("a")
      expect(yield* Ref.get(calls)).toBe(2)
      yield* users.get("a")
      expect(yield* Ref.get(calls)).toBe(2)
      expect(yield* users.invalidate("a")).toBe(true)
      expect(yield* users.invalidate("a")).toBe(false)
      yield* users.get("a")
      expect(yield* Ref.get(calls)).toBe(3)
    }).pipe(Effect.provide(Memory)))

  it.scoped("stale-while-revalidate serves the stale value and refreshes once in the background", () =>
    Effect.gen(function*() {
      const version = yield* Ref.make(0)
      const gate = yield* Deferred.make<void>()
      const values = yield* ReadThrough.make({
        namespace: "v",
        value: Schema.Number,
        lookup: (_: string) =>
          Effect.flatMap(
            Ref.updateAndGet(version, (n) => n + 1),
            (n) => n === 1 ? Effect.succeed(n) : Effect.as(Deferred.await(gate), n)
          ),
        ttl: "1 minute",
        staleWhileRevalidate: "30 seconds"
      })
      expect(yield* values.get("k")).toBe(1)
      yield* TestClock.adjust("70 seconds") // stale, inside the window
      expect(yield* values.get("k")).toBe(1)
      expect(yield* values.get("k")).toBe(1)
      yield* Effect.yieldNow() // let the background refresh start
      expect(yield* Ref.get(version)).toBe(2) // one background load for two stale reads
      yield* Deferred.succeed(gate, undefined)
      yield* Effect.yieldNow()
      yield* Effect.yieldNow()
      expect(yield* values.get("k")).toBe(2)
      expect((yield* values.stats).staleHits).toBe(2)
      yield* TestClock.adjust("200 seconds") // past the stale window: a plain miss
      const stillSame = yield* Ref.get(version)
      yield* values.get("k")
      expect(yield* Ref.get(version)).toBe(stillSame + 1)
    }).pipe(Effect.provide(Memory)))

  it.scoped("loadTimeout fails a slow load with LoadTimeout (on the TestClock)", () =>
    Effect.gen(function*() {
      const slow = yield* ReadThrough.make({
        namespace: "slow",
        value: Schema.String,
        lookup: (k: string) => Effect.as(Effect.sleep("10 seconds"), k),
        ttl: "1 minute",
        loadTimeout: "2 seconds"
      })
      const fiber = yield* Effect.fork(slow.get("k"))
      yield* TestClock.adjust("3 seconds")
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isFailure(exit) && String(exit.cause)).toMatch(/LoadTimeout/)
    }).pipe(Effect.provide(Memory)))

  it.scoped("odd keys round-trip: empty, 10 kB, unicode, control characters", () =>
    Effect.gen(function*() {
      const { calls, lookup } = yield* counting
      const users = yield* ReadThrough.make({ namespace: "user", value: User, lookup, ttl: "5 minutes" })
      const keys = ["", "k".repeat(10_000), "ключ🔑", "a\u0000b\r\nc\t", "*?[]"]
      for (const k of keys) expect((yield* users.get(k)).id).toBe(k)
      for (const k of keys) expect((yield* users.get(k)).id).toBe(k)
      expect(yield* Ref.get(calls)).toBe(keys.length)
    }).pipe(Effect.provide(Memory)))

  it.scoped("closing the scope stops background loads", () =>
    Effect.gen(function*() {
      const interrupted = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const inner = Effect.gen(function*() {
        const values = yield* ReadThrough.make({
          namespace: "bg",
          value: Schema.Number,
          lookup: (_: string) =>
            Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(
              Effect.as(1),
              Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
            ),
          ttl: "1 minute"
        })
        const fiber = yield* Effect.forkDaemon(values.get("k"))
        yield* Deferred.await(started)
        return fiber
      })
      const fiber = yield* Effect.scoped(inner)
      yield* Deferred.await(interrupted)
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
    }).pipe(Effect.provide(Memory)))

  it.effect("a handle used after its scope closed fails with a clear defect instead of hanging", () =>
    Effect.gen(function*() {
      const values = yield* Effect.scoped(ReadThrough.make({
        namespace: "closed",
        value: Schema.Number,
        lookup: (_: string) => Effect.succeed(1),
        ttl: "1 minute"
      }))
      const exit = yield* Effect.exit(values.get("k"))
      expect(Exit.isFailure(exit) && String(exit.cause)).toMatch(/used after the scope it was made in had closed/)
    }).pipe(Effect.provide(Memory)))

  it.scoped("with a tracer installed, reads run in spans carrying namespace, store and outcome", () =>
    Effect.gen(function*() {
      const recorded: Array<{ name: string; attributes: ReadonlyMap<string, unknown> }> = []
      const base = yield* Effect.tracer
      const tracer = Tracer.make({
        span: (name, parent, context, links, startTime, kind, options) => {
          const span = base.span(name, parent, context, links, startTime, kind, options)
          recorded.push({ name, attributes: span.attributes })
          return span
        },
        context: (f) => f()
      })
      const { lookup } = yield* counting
      const users = yield* ReadThrough.make({ namespace: "user", value: User, lookup, ttl: "5 minutes" })
      yield* users.get("a").pipe(Effect.withTracer(tracer))
      yield* users.get("a").pipe(Effect.withTracer(tracer))
      const gets = recorded.filter((s) => s.name === "cachekit.get")
      expect(gets.map((s) => s.attributes.get("cache.outcome"))).toEqual(["miss", "hit"])
      expect(gets[0]!.attributes.get("cache.namespace")).toBe("user")
      expect(gets[0]!.attributes.get("cache.store")).toBe("memory")
      expect(recorded.some((s) => s.name === "cachekit.load")).toBe(true)
    }).pipe(Effect.provide(Memory)))

  it("rejects nonsense options at construction", () => {
    const base = { namespace: "n", value: Schema.String, lookup: (k: string) => Effect.succeed(k) }
    const bad: Array<Record<string, unknown>> = [
      { ttl: 0 },
      { ttl: -5 },
      { ttl: Number.NaN },
      { ttl: "-1 minutes" },
      { ttl: "five minutes" },
      { ttl: "1 minute", namespace: "" },
      { ttl: "1 minute", staleWhileRevalidate: 0 },
      { ttl: "1 minute", loadTimeout: "-3 seconds" },
      { ttl: "1 minute", onStoreError: "explode" },
      { ttl: "1 minute", refreshConcurrency: 0 },
      { ttl: "1 minute", refreshConcurrency: 2.5 },
      { ttl: "1 minute", failSafe: { maxStale: "1 hour", throttle: 0 } },
      { ttl: "1 minute", failSafe: { maxStale: -1, throttle: "1 second" } },
      { ttl: "1 minute", timeouts: { soft: "1 second" } },
      { ttl: "1 minute", earlyRecompute: { beta: 0 } },
      { ttl: "1 minute", earlyRecompute: { beta: Number.NaN } },
      {
        ttl: "1 minute",
        failSafe: { maxStale: "1 hour", throttle: "1 second" },
        timeouts: { soft: "5 seconds", hard: "1 second" }
      },
      { ttl: "1 minute", loadTimeout: "1 second", timeouts: { hard: "2 seconds" } },
      {}
    ]
    for (const extra of bad) {
      expect(() => ReadThrough.make({ ...base, ...extra } as never), JSON.stringify(extra)).toThrow(
        CacheError.InvalidOptions
      )
    }
  })

  it.effect("one layer per program: the strategy as a service over any store layer", () =>
    Effect.gen(function*() {
      class Users extends Effect.Tag("test/Users")<Users, ReadThrough.ReadThrough<string, User, NotFound>>() {}
      const UsersLive = Layer.scoped(
        Users,
        ReadThrough.make({
          namespace: "user",
          value: User,
          lookup: (id: string) => Effect.succeed(user(id)),
          ttl: "5 minutes"
        })
      )
      const name = yield* Effect.flatMap(Users, (users) => users.get("7")).pipe(
        Effect.map((u) => u.name),
        Effect.provide(UsersLive),
        Effect.provide(MemoryStore.layer())
      )
      expect(name).toBe("user-7")
    }))

  it("Ttl policies reject nonsense", () => {
    expect(() => Ttl.fixed(0)).toThrow(CacheError.InvalidOptions)
    expect(() => Ttl.fixed(-1)).toThrow(CacheError.InvalidOptions)
    expect(() => Ttl.fixed(Number.NaN)).toThrow(CacheError.InvalidOptions)
    expect(() => Ttl.jittered("1 minute", { spread: 1 })).toThrow(/spread/)
    expect(() => Ttl.jittered("1 minute", { spread: -0.1 })).toThrow(/spread/)
    expect(() => Ttl.jittered(Duration.infinity, { spread: 0.1 })).toThrow(/finite/)
    expect(Ttl.fixed(Duration.infinity).nominalMillis).toBeUndefined()
    expect(Ttl.fixed("2 seconds").nominalMillis).toBe(2000)
  })
})
