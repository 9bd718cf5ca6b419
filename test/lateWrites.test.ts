/**
 * Late-write protection: a slow load that read a key before another "process" wrote or
 * invalidated it never leaves its older value in the store. Two handles over two store objects
 * that share one memory store and nothing else (no key order, no single flight), as two processes
 * share a remote store; 10,000 seeded interleavings, on the TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema, TestClock } from "effect"
import { CacheStore, MemoryStore, ReadThrough } from "effect-cachekit"
import * as Testing from "effect-cachekit/testing"
import { interleavings } from "./harness/lateWrites.js"

const onMemory = {
  stores: Effect.map(MemoryStore.make(), (store) => [store, store] as const),
  ttl: "1 second",
  staleWhileRevalidate: "1 hour",
  // far inside the fence window (one minute), even when ten runs move the clock at once
  makeStale: TestClock.adjust("2 seconds")
} as const

describe("late writes across processes", () => {
  it.effect(
    "10,000 seeded interleavings of a slow load and a newer write or invalidation: no older value survives",
    () =>
      Effect.gen(function*() {
        const { loaded, older, outcomes } = yield* interleavings(10_000, onMemory, 10)
        expect(older).toBe(0)
        // every kind of interleaving ran, and most of them loaded while the write came
        const kinds = new Set(outcomes.map((o) => `${o.prefill}/${o.action}/${o.before}/${o.batch}`))
        expect(kinds.size).toBe(24)
        expect(loaded).toBeGreaterThan(7_000)
      }),
    120_000
  )

  it.effect(
    "without the store's fence, the same interleavings leave older values (what the fence prevents)",
    () =>
      Effect.gen(function*() {
        const { older } = yield* interleavings(2_000, { ...onMemory, withoutFence: true })
        expect(older).toBeGreaterThan(0)
      }),
    60_000
  )

  it.effect(
    "a store failing the fenced writes never leaves an older value, and every call returns",
    () =>
      Effect.gen(function*() {
        const { older } = yield* interleavings(2_000, {
          ...onMemory,
          stores: Effect.gen(function*() {
            const store = yield* MemoryStore.make()
            const { faults, store: failing } = yield* Testing.faulty(store)
            yield* faults.inject(Testing.failure("timeout"), "set")
            return [failing, store] as const
          })
        })
        expect(older).toBe(0)
      }),
    60_000
  )

  it.scoped("an invalidation leaves a tombstone for the fence window: a miss that a load slower than the window does not write over", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make()
      let calls = 0
      const users = yield* ReadThrough.make({
        namespace: "u",
        value: Schema.String,
        ttl: "1 hour",
        loadTimeout: "10 seconds",
        lookup: (k: string) => Effect.as(Effect.sync(() => calls++), `${k}#${calls}`)
      }).pipe(Effect.provideService(CacheStore.CacheStore, store))
      expect(yield* users.get("a")).toBe("a#0")
      expect(yield* users.invalidate("a")).toBe(true)
      // the tombstone is there, read as a miss, and reported as no entry
      expect(Array.from(yield* store.keys("*")).length).toBe(1)
      expect(yield* users.invalidate("a")).toBe(false)
      expect(yield* users.get("a")).toBe("a#1")
      expect(yield* users.get("a")).toBe("a#1")
      // gone after the window (load timeout + 1 second)
      yield* users.invalidate("a")
      yield* TestClock.adjust("11001 millis")
      expect(Array.from(yield* store.keys("*"))).toEqual([])
    }))
})
