import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Option, Random, Schedule, Schema, TestClock } from "effect"
import { CacheAside, CacheError, CacheStore, MemoryStore, ReadThrough, Ttl } from "effect-cachekit"

const minutes = (n: number) => n * 60_000

describe("Ttl.fromSchedule", () => {
  it.effect("a spaced schedule is a fixed TTL", () =>
    Effect.gen(function*() {
      const ttl = Ttl.fromSchedule(Schedule.spaced("5 minutes"))
      expect(yield* ttl.compute("v", "k")).toBe(minutes(5))
      yield* TestClock.adjust("17 minutes")
      expect(yield* ttl.compute("v", "k")).toBe(minutes(5))
    }))

  it.effect("a cron schedule expires every entry at its next tick, whenever it was written", () =>
    Effect.gen(function*() {
      const ttl = Ttl.fromSchedule(Schedule.cron("0 * * * *", "UTC"))
      yield* TestClock.setTime(Date.UTC(2026, 0, 1, 10, 20))
      expect(yield* ttl.compute("v", "k")).toBe(minutes(40))
      yield* TestClock.adjust("39 minutes")
      expect(yield* ttl.compute("v", "k")).toBe(minutes(1))
      yield* TestClock.adjust("1 minute")
      // at the tick itself: the next one is an hour away
      expect(yield* ttl.compute("v", "k")).toBe(minutes(60))
    }))

  it.effect("the written value is the schedule's input; a schedule done at once gives a zero TTL", () =>
    Effect.gen(function*() {
      const byValue = Ttl.fromSchedule(
        Schedule.identity<number>().pipe(Schedule.addDelay((n) => Duration.seconds(n)))
      )
      expect(yield* byValue.compute(7, "k")).toBe(7_000)
      expect(yield* byValue.compute(90, "k")).toBe(90_000)
      expect(yield* Ttl.fromSchedule(Schedule.stop).compute("v", "k")).toBe(0)
    }))

  it.scoped("over a ReadThrough: an entry written at 10:20 is served until 11:00 and loaded again after", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2026, 0, 1, 10, 20))
      let loads = 0
      const cache = yield* ReadThrough.make({
        namespace: "hourly",
        value: Schema.String,
        lookup: (key: string) => Effect.sync(() => `${key}#${++loads}`),
        ttl: Ttl.fromSchedule(Schedule.cron("0 * * * *", "UTC"))
      })
      expect(yield* cache.get("report")).toBe("report#1")
      yield* TestClock.adjust("39 minutes")
      expect(yield* cache.get("report")).toBe("report#1")
      yield* TestClock.adjust("2 minutes")
      expect(yield* cache.get("report")).toBe("report#2")
      expect(loads).toBe(2)
    }).pipe(Effect.provide(MemoryStore.layer())))

  it("rejects what is not a schedule", () => {
    expect(() => Ttl.fromSchedule({} as never)).toThrow(CacheError.InvalidOptions)
  })
})

describe("Ttl.tiered", () => {
  const tiers = { volatile: "30 seconds", standard: "5 minutes", reference: "1 day" } as const

  it.effect("a fixed kind picks one tier for every value, and keeps its nominal TTL", () =>
    Effect.gen(function*() {
      const ttl = Ttl.tiered(tiers, { kind: "reference", fallback: "1 minute" })
      expect(ttl.nominalMillis).toBe(86_400_000)
      expect(yield* ttl.compute("anything", "k")).toBe(86_400_000)
    }))

  it.effect("a kind function picks per value and key; an unknown or undefined kind takes the fallback", () =>
    Effect.gen(function*() {
      const ttl = Ttl.tiered<{ readonly kind?: string }>(tiers, {
        kind: (value, key) => key.startsWith("ref:") ? "reference" : value.kind,
        fallback: "1 minute"
      })
      expect(ttl.nominalMillis).toBeUndefined()
      expect(yield* ttl.compute({ kind: "volatile" }, "a")).toBe(30_000)
      expect(yield* ttl.compute({ kind: "standard" }, "a")).toBe(minutes(5))
      expect(yield* ttl.compute({ kind: "volatile" }, "ref:a")).toBe(86_400_000)
      expect(yield* ttl.compute({ kind: "nonsense" }, "a")).toBe(minutes(1))
      expect(yield* ttl.compute({}, "a")).toBe(minutes(1))
    }))

  it.effect("tiers compose with other policies: a jittered tier draws from the seeded Random", () =>
    Effect.gen(function*() {
      const ttl = Ttl.tiered({ hot: Ttl.jittered("100 seconds", { spread: 0.2 }) }, {
        kind: () => "hot",
        fallback: "1 minute"
      })
      const draw = (seed: number) => Effect.withRandom(ttl.compute("v", "k"), Random.make(seed))
      const first = (yield* draw(42))!
      expect(first).toBeGreaterThanOrEqual(80_000)
      expect(first).toBeLessThan(120_000)
      expect(first).not.toBe(100_000)
      expect(yield* draw(42)).toBe(first)
    }))

  it("a fixed kind that names no tier does not compile, and fails at run time when forced", () => {
    // @ts-expect-error: a fixed kind must name one of the tiers
    expect(() => Ttl.tiered(tiers, { kind: "legacy", fallback: "1 minute" })).toThrow(CacheError.InvalidOptions)
  })

  it("rejects nonsense at construction, naming the option", () => {
    const cases: Array<[() => unknown, string]> = [
      [() => Ttl.tiered({}, { kind: "a" as never, fallback: "1 minute" }), "tiers"],
      [() => Ttl.tiered(tiers, { kind: "missing" as never, fallback: "1 minute" }), "kind"],
      [() => Ttl.tiered({ a: "forever" as never }, { kind: "a", fallback: "1 minute" }), "tiers.a"],
      [() => Ttl.tiered({ a: -5 }, { kind: "a", fallback: "1 minute" }), "tiers.a"],
      [() => Ttl.tiered(tiers, { kind: "standard", fallback: 0 }), "fallback"],
      [() => Ttl.tiered(tiers, { kind: "standard" } as never), "fallback"],
      [() => Ttl.tiered(tiers, { kind: 3 as never, fallback: "1 minute" }), "kind"]
    ]
    for (const [build, option] of cases) {
      expect(build, option).toThrow(
        expect.objectContaining({ _tag: "InvalidOptions", component: "Ttl.tiered", option })
      )
    }
  })
})

describe("Ttl.sliding", () => {
  /** A ReadThrough whose loader answers `<key>#<n>` for its n-th load. */
  const counted = (ttl: Ttl.Ttl<string>) =>
    Effect.gen(function*() {
      let loads = 0
      const cache = yield* ReadThrough.make({
        namespace: "sliding",
        value: Schema.String,
        lookup: (key: string) => Effect.sync(() => `${key}#${++loads}`),
        ttl
      })
      return { cache, loads: () => loads }
    })

  /** The memory store with its `expire` and `getAndExpire` counted; its synchronous read stays. */
  const countedMemory = Effect.gen(function*() {
    const inner = yield* MemoryStore.make()
    const counts = { expire: 0, getAndExpire: 0 }
    const store: CacheStore.Service = {
      ...inner,
      expire: (key, ttl) => Effect.suspend(() => (counts.expire++, inner.expire(key, ttl))),
      getAndExpire: {
        get: inner.get,
        read: (key, ttl) => Effect.suspend(() => (counts.getAndExpire++, inner.getAndExpire!.read(key, ttl)))
      }
    }
    return { store, counts }
  })

  it("rejects nonsense at construction, naming the option", () => {
    const cases: Array<[() => unknown, string, string]> = [
      [() => Ttl.sliding(0, { max: "1 hour" }), "Ttl.sliding", "slide"],
      [() => Ttl.sliding(-5, { max: "1 hour" }), "Ttl.sliding", "slide"],
      [() => Ttl.sliding(NaN, { max: "1 hour" }), "Ttl.sliding", "slide"],
      [() => Ttl.sliding(Duration.infinity, { max: Duration.infinity }), "Ttl.sliding", "slide"],
      [() => Ttl.sliding("10 minutes", { max: "5 minutes" }), "Ttl.sliding", "max"],
      [() => Ttl.sliding("10 minutes", {} as never), "Ttl.sliding", "max"],
      [() => Ttl.sliding("10 minutes", { max: 0 }), "Ttl.sliding", "max"],
      [() => Ttl.sliding("10 minutes", { max: "1 hour", debounce: "10 minutes" }), "Ttl.sliding", "debounce"],
      [() => Ttl.sliding("10 minutes", { max: "1 hour", debounce: -1 }), "Ttl.sliding", "debounce"],
      [() => Ttl.jittered("1 minute", { spread: -0.1 }), "Ttl.jittered", "spread"],
      [() => Ttl.jittered("1 minute", { spread: 1 }), "Ttl.jittered", "spread"],
      [() => Ttl.jittered("1 minute", { spread: NaN }), "Ttl.jittered", "spread"],
      [() => Ttl.fixed(-1), "Ttl.fixed", "ttl"],
      [
        () =>
          Ttl.tiered({ session: Ttl.sliding("5 minutes", { max: "1 hour" }), page: "1 minute" }, {
            kind: () => "page",
            fallback: "1 minute"
          }),
        "Ttl.tiered",
        "tiers.session"
      ],
      [
        () =>
          Ttl.tiered({ page: "1 minute" }, {
            kind: () => "page",
            fallback: Ttl.sliding("1 minute", { max: "1 hour" })
          }),
        "Ttl.tiered",
        "fallback"
      ]
    ]
    for (const [build, component, option] of cases) {
      expect(build, option).toThrow(expect.objectContaining({ _tag: "InvalidOptions", component, option }))
    }
    // the message says what is wrong
    expect(() => Ttl.sliding("10 minutes", { max: "5 minutes" })).toThrow(/at least the slide/)
    // a cap equal to the slide, an infinite cap and a zero debounce are fine
    expect(Ttl.sliding("5 minutes", { max: "5 minutes" }).sliding).toEqual({
      slideMillis: minutes(5),
      debounceMillis: 30_000
    })
    expect(Ttl.sliding("5 minutes", { max: Duration.infinity, debounce: 0 }).sliding?.debounceMillis).toBe(0)
    expect(Ttl.sliding("5 minutes", { max: "1 hour", debounce: "0 millis" }).sliding?.debounceMillis).toBe(0)
  })

  it.effect("the policy's TTL is its cap; a tier with a fixed kind keeps its slide", () =>
    Effect.gen(function*() {
      const ttl = Ttl.sliding("5 minutes", { max: "1 hour" })
      expect(ttl._tag).toBe("Sliding")
      expect(ttl.nominalMillis).toBe(minutes(60))
      expect(yield* ttl.compute("v", "k")).toBe(minutes(60))
      const tier = Ttl.tiered({ session: ttl, page: "1 minute" }, { kind: "session", fallback: "1 minute" })
      expect(tier.sliding).toEqual(ttl.sliding)
      expect(Ttl.tiered({ session: ttl, page: "1 minute" }, { kind: "page", fallback: "1 minute" }).sliding)
        .toBeUndefined()
    }))

  it.scoped("each hit keeps the entry alive for the slide, never past the cap", () =>
    Effect.gen(function*() {
      const { cache, loads } = yield* counted(Ttl.sliding("5 minutes", { max: "12 minutes" }))
      expect(yield* cache.get("s")).toBe("s#1")
      for (const step of ["4 minutes", "4 minutes", "3 minutes", "59 seconds"] as const) {
        yield* TestClock.adjust(step)
        expect(yield* cache.get("s")).toBe("s#1")
      }
      expect(loads()).toBe(1)
      // 12 minutes after the write: the cap, however often it was read
      yield* TestClock.adjust("1 second")
      expect(yield* cache.get("s")).toBe("s#2")
      // idle for the slide: gone
      yield* TestClock.adjust("4 minutes")
      expect(yield* cache.get("s")).toBe("s#2")
      yield* TestClock.adjust("5 minutes")
      expect(yield* cache.get("s")).toBe("s#3")
      expect(loads()).toBe(3)
    }).pipe(Effect.provide(MemoryStore.layer())))

  it.scoped("an infinite cap slides for ever while read; an unread entry goes after the slide", () =>
    Effect.gen(function*() {
      const { cache, loads } = yield* counted(Ttl.sliding("1 minute", { max: Duration.infinity }))
      yield* cache.get("s")
      for (let i = 0; i < 100; i++) {
        yield* TestClock.adjust("50 seconds")
        expect(yield* cache.get("s")).toBe("s#1")
      }
      yield* TestClock.adjust("1 minute")
      expect(yield* cache.get("s")).toBe("s#2")
      expect(loads()).toBe(2)
    }).pipe(Effect.provide(MemoryStore.layer())))

  it.scoped("debounce: hits within a tenth of the slide are plain reads; the entry then lives slide − debounce at least", () =>
    Effect.gen(function*() {
      const { counts, store } = yield* countedMemory
      const { cache, loads } = yield* counted(Ttl.sliding("5 minutes", { max: "1 hour" })).pipe(
        Effect.provideService(CacheStore.CacheStore, store)
      )
      yield* cache.get("s")
      // 1,000 hits within the debounce (30 s): no extension at all
      for (let i = 0; i < 1000; i++) {
        if (i % 100 === 0) yield* TestClock.adjust("2 seconds")
        expect(yield* cache.get("s")).toBe("s#1")
      }
      expect(counts).toEqual({ expire: 0, getAndExpire: 0 })
      // so the entry ends 5 minutes after its write, though read 20 s later
      yield* TestClock.adjust("280 seconds")
      expect(yield* cache.get("s")).toBe("s#2")
      // a hit past the debounce extends it, with one command; more hits at once send none
      yield* TestClock.adjust("31 seconds")
      for (let i = 0; i < 1000; i++) yield* cache.get("s")
      expect(counts).toEqual({ expire: 1, getAndExpire: 0 })
      yield* TestClock.adjust("299 seconds")
      expect(yield* cache.get("s")).toBe("s#2")
      expect(counts).toEqual({ expire: 2, getAndExpire: 0 })
      expect(loads()).toBe(2)
    }))

  it.scoped("a zero debounce extends on every hit that moves the expiry", () =>
    Effect.gen(function*() {
      const { counts, store } = yield* countedMemory
      const { cache } = yield* counted(Ttl.sliding("5 minutes", { max: "1 hour", debounce: 0 })).pipe(
        Effect.provideService(CacheStore.CacheStore, store)
      )
      yield* cache.get("s")
      yield* cache.get("s") // same instant: nothing to move
      for (let i = 0; i < 10; i++) {
        yield* TestClock.adjust("1 millis")
        yield* cache.get("s")
      }
      expect(counts.expire).toBe(10)
    }))

  it.scoped("a store without a read-and-extend reads, then extends in the background: one expire per debounce", () =>
    Effect.gen(function*() {
      const inner = yield* MemoryStore.make()
      let expires = 0
      let gets = 0
      const store = CacheStore.make({
        name: "plain",
        get: (key) => Effect.suspend(() => (gets++, inner.get(key))),
        set: inner.set,
        setIfAbsent: inner.setIfAbsent,
        delete: inner.delete,
        expire: (key, ttl) => Effect.suspend(() => (expires++, inner.expire(key, ttl)))
      })
      const { cache, loads } = yield* counted(Ttl.sliding("5 minutes", { max: "1 hour" })).pipe(
        Effect.provideService(CacheStore.CacheStore, store)
      )
      yield* cache.get("s")
      for (let i = 0; i < 9; i++) {
        yield* TestClock.adjust("1 minute")
        for (let j = 0; j < 10; j++) expect(yield* cache.get("s")).toBe("s#1")
        yield* Effect.yieldNow()
      }
      expect(loads()).toBe(1)
      expect(gets).toBe(91)
      expect(expires).toBe(9)
    }))
})

describe("negative caching", () => {
  class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { id: Schema.String }) {}
  class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {}) {}

  it.scoped("CacheAside.get: None is nothing cached, a cached failure fails with it, typed", () =>
    Effect.gen(function*() {
      const aside = yield* CacheAside.make({
        namespace: "user",
        value: Schema.String,
        ttl: "5 minutes",
        negative: { ttl: "1 minute", error: NotFound }
      })
      expect(yield* aside.get("7")).toEqual(Option.none())
      let runs = 0
      const load = Effect.suspend(() => (runs++, Effect.fail(new NotFound({ id: "7" }))))
      expect(yield* Effect.flip(aside.getOrLoad("7", load))).toEqual(new NotFound({ id: "7" }))
      expect(yield* Effect.flip(aside.getOrLoad("7", load))).toEqual(new NotFound({ id: "7" }))
      expect(runs).toBe(1)
      // the type says it: get fails with NotFound | CacheError
      const cached: NotFound | CacheError.CacheError = yield* Effect.flip(aside.get("7"))
      expect(cached).toBeInstanceOf(NotFound)
      // a write replaces the cached failure
      yield* aside.set("7", "Ada")
      expect(yield* aside.get("7")).toEqual(Option.some("Ada"))
      // other failures are not cached
      yield* Effect.flip(aside.getOrLoad("8", Effect.fail(new Unavailable())))
      expect(yield* aside.get("8")).toEqual(Option.none())
      // expire makes a cached failure a miss, never a stale value
      yield* Effect.flip(aside.getOrLoad("9", Effect.fail(new NotFound({ id: "9" }))))
      expect(yield* aside.expire("9")).toBe(true)
      expect(yield* aside.get("9")).toEqual(Option.none())
    }).pipe(Effect.provide(MemoryStore.layer())))

  it.scoped("a load timeout is never cached; the loader runs again", () =>
    Effect.gen(function*() {
      let loads = 0
      const cache = yield* ReadThrough.make({
        namespace: "slow",
        value: Schema.String,
        ttl: "5 minutes",
        loadTimeout: "1 second",
        lookup: (_: string) => Effect.zipRight(Effect.sync(() => loads++), Effect.never),
        negative: { ttl: "1 minute", error: Schema.Unknown }
      })
      for (let i = 0; i < 2; i++) {
        const fiber = yield* Effect.fork(Effect.flip(cache.get("k")))
        yield* TestClock.adjust("1 second")
        expect(yield* Fiber.join(fiber)).toBeInstanceOf(CacheError.LoadTimeout)
      }
      expect(loads).toBe(2)
    }).pipe(Effect.provide(MemoryStore.layer())))

  it.scoped("with fail-safe on, a cached failure is never the value kept", () =>
    Effect.gen(function*() {
      let loads = 0
      const cache = yield* ReadThrough.make({
        namespace: "fs",
        value: Schema.String,
        ttl: "1 minute",
        failSafe: { maxStale: "1 hour", throttle: "10 seconds" },
        lookup: (id: string): Effect.Effect<string, NotFound | Unavailable> =>
          Effect.suspend((): Effect.Effect<string, NotFound | Unavailable> =>
            ++loads === 1 ? Effect.fail(new NotFound({ id })) : Effect.fail(new Unavailable())
          ),
        negative: { ttl: "30 seconds", error: NotFound }
      })
      expect((yield* Effect.flip(cache.get("k")))._tag).toBe("NotFound")
      yield* TestClock.adjust("31 seconds")
      expect((yield* Effect.flip(cache.get("k")))._tag).toBe("Unavailable")
      expect(loads).toBe(2)
    }).pipe(Effect.provide(MemoryStore.layer())))

  it("rejects nonsense at construction, naming the option", () => {
    const base = {
      namespace: "n",
      value: Schema.String,
      ttl: "1 minute" as const,
      lookup: (_: string) => Effect.succeed("")
    }
    const cases: Array<[() => unknown, string]> = [
      [() => ReadThrough.make({ ...base, negative: { ttl: 0, error: NotFound } }), "negative.ttl"],
      [() => ReadThrough.make({ ...base, negative: { ttl: "1 minute", error: {} as never } }), "negative.error"],
      [
        () => ReadThrough.make({ ...base, negative: { ttl: "1 minute", error: NotFound, when: 3 as never } }),
        "negative.when"
      ],
      [() => ReadThrough.make({ ...base, negative: "yes" as never }), "negative"]
    ]
    for (const [build, option] of cases) {
      expect(build, option).toThrow(
        expect.objectContaining({ _tag: "InvalidOptions", component: "ReadThrough", option })
      )
    }
  })
})
