import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Option, Random, Ref, Schema, TestClock } from "effect"
import { CacheStore, MemoryStore, Stampede } from "effect-cachekit"

const Memory = MemoryStore.layer()

/** An effect that counts its runs, takes `millis` of (test) time and answers `label#run`. */
const counted = (label: string, millis: number) =>
  Effect.gen(function*() {
    const runs = yield* Ref.make(0)
    const started = yield* Deferred.make<void>()
    const effect = Ref.updateAndGet(runs, (n) => n + 1).pipe(
      Effect.tap(() => Deferred.succeed(started, undefined)),
      Effect.zipLeft(Effect.sleep(Duration.millis(millis))),
      Effect.map((n) => `${label}#${n}`)
    )
    return { runs, started, effect }
  })

describe("Stampede", () => {
  it.scoped("withLock: while a run holds the key's lease, another cache of the key waits for its value", () =>
    Effect.gen(function*() {
      const a = yield* counted("a", 5_000)
      const b = yield* counted("b", 5_000)
      const base = { namespace: "report", key: "daily", value: Schema.String, ttl: "1 hour" } as const
      // two option sets make two pipelines with flights of their own, as two processes have
      const first = a.effect.pipe(Stampede.withLock({ ...base, lock: { ttl: "2 seconds", wait: "1 minute" } }))
      const second = b.effect.pipe(Stampede.withLock({ ...base, lock: { ttl: "2 seconds", wait: "2 minutes" } }))
      const holder = yield* Effect.fork(first)
      yield* Deferred.await(a.started)
      const waiter = yield* Effect.fork(second)
      yield* TestClock.adjust("6 seconds")
      expect(yield* Fiber.join(holder)).toBe("a#1")
      expect(yield* Fiber.join(waiter)).toBe("a#1")
      expect(yield* Ref.get(b.runs)).toBe(0)
    }).pipe(Effect.provide(Memory)))

  it.scoped("withLock: a lease held elsewhere that is never released lapses, and the run takes over", () =>
    Effect.gen(function*() {
      const store = yield* CacheStore.CacheStore
      expect(Option.isSome(yield* store.lease!.acquire("report:daily", "3 seconds"))).toBe(true)
      const b = yield* counted("b", 1_000)
      const locked = b.effect.pipe(
        Stampede.withLock({
          namespace: "report",
          key: "daily",
          value: Schema.String,
          ttl: "1 hour",
          lock: { ttl: "2 seconds", wait: "1 minute" }
        })
      )
      const waiter = yield* Effect.fork(locked)
      yield* TestClock.adjust("2900 millis")
      expect(yield* Ref.get(b.runs)).toBe(0)
      yield* TestClock.adjust("2 seconds")
      expect(yield* Fiber.join(waiter)).toBe("b#1")
    }).pipe(Effect.provide(Memory)))

  it.scoped("earlyRecompute: a fresh read close to expiry reruns the effect when now − δ·β·ln(u) ≥ expiry", () =>
    Effect.gen(function*() {
      const { effect, runs } = yield* counted("v", 1_000)
      const cached = effect.pipe(
        Stampede.earlyRecompute({
          namespace: "ranking",
          key: "global",
          value: Schema.String,
          ttl: "10 seconds",
          earlyRecompute: { beta: 1 }
        })
      )
      const filled = yield* Effect.fork(cached)
      yield* TestClock.adjust("1 second") // δ = 1 s; fresh until t = 11 s
      expect(yield* Fiber.join(filled)).toBe("v#1")
      // t = 10 s, τ = 1 s: fires when ln(u) ≤ −1, u ≤ 0.3679 (u = 1 − Random.next)
      yield* TestClock.adjust("9 seconds")
      expect(yield* Effect.withRandom(cached, Random.fixed([0.5]))).toBe("v#1") // u = 0.5
      yield* TestClock.adjust("1 millis")
      expect(yield* Ref.get(runs)).toBe(1)
      expect(yield* Effect.withRandom(cached, Random.fixed([0.7]))).toBe("v#1") // u = 0.3: the fresh value, at once
      yield* TestClock.adjust("1 second")
      expect(yield* Ref.get(runs)).toBe(2)
      expect(yield* cached).toBe("v#2")
    }).pipe(Effect.provide(Memory)))

  it.scoped("staleWhileRevalidate: a stale read answers at once, and one run refreshes in the background", () =>
    Effect.gen(function*() {
      const { effect, runs } = yield* counted("rate", 1_000)
      const cached = effect.pipe(
        Stampede.staleWhileRevalidate({
          namespace: "rates",
          key: "eur",
          value: Schema.String,
          ttl: "1 minute",
          staleWhileRevalidate: "10 minutes"
        })
      )
      const filled = yield* Effect.fork(cached)
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(filled)).toBe("rate#1")
      yield* TestClock.adjust("2 minutes")
      const stale = yield* Effect.forEach(Array.from({ length: 100 }), () => cached, { concurrency: "unbounded" })
      expect(new Set(stale)).toEqual(new Set(["rate#1"]))
      yield* TestClock.adjust("1 second")
      expect(yield* Ref.get(runs)).toBe(2)
      expect(yield* cached).toBe("rate#2")
    }).pipe(Effect.provide(Memory)))
})
