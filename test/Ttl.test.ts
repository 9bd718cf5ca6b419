import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Random, Schedule, Schema, TestClock } from "effect"
import { CacheError, MemoryStore, ReadThrough, Ttl } from "effect-cachekit"

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
