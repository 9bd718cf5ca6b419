/**
 * The invalidation bus between processes that share one store: each "process" is its own view of
 * the store (its own copy of the versions, its own handles), as two OS processes over one Redis
 * are. Over the memory bus on the TestClock here; over Redis pub/sub in
 * test/InvalidationBus.redis.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Ref, Schema, TestClock } from "effect"
import { CacheStore, Invalidation, InvalidationBus, MemoryStore, ReadThrough } from "effect-cachekit"

const Item = Schema.Struct({ id: Schema.String, n: Schema.Number })

/** A process over `store`: a handle whose loads count in `calls`, attached to `bus` when given. */
const processOver = (
  store: CacheStore.Service,
  calls: Ref.Ref<number>,
  bus: InvalidationBus.Service | undefined
) =>
  Effect.gen(function*() {
    if (bus !== undefined) {
      yield* Layer.build(
        InvalidationBus.connect.pipe(
          Layer.provide(Layer.succeed(CacheStore.CacheStore, store)),
          Layer.provide(Layer.succeed(InvalidationBus.InvalidationBus, bus))
        )
      )
    }
    return yield* ReadThrough.make({
      namespace: "item",
      value: Item,
      lookup: (id: string) => Effect.map(Ref.updateAndGet(calls, (n) => n + 1), (n) => ({ id, n })),
      ttl: "1 hour",
      tags: () => ["t"],
      versioned: true,
      versionWindow: "10 seconds"
    }).pipe(Effect.provideService(CacheStore.CacheStore, store))
  })

/** Lets the listener fibers run. */
const settle = Effect.repeatN(Effect.yieldNow(), 50)

describe("InvalidationBus over memory", () => {
  it.scoped("without a bus another process sees an invalidation only after versionWindow; with one, at once", () =>
    Effect.gen(function*() {
      for (const withBus of [false, true]) {
        const shared = yield* MemoryStore.make()
        // a second process's view of the same store: its own versions and handles
        const other: CacheStore.Service = { ...shared }
        const bus = withBus ? yield* InvalidationBus.makeMemory : undefined
        const calls = yield* Ref.make(0)
        const a = yield* processOver(shared, calls, bus)
        const b = yield* processOver(other, calls, bus)
        yield* b.get("k")
        expect((yield* b.get("k")).n).toBe(1)
        yield* a.invalidateTag("t")
        yield* settle
        // the bus brings the new version at once; without it, b trusts its copy for its window
        expect((yield* b.get("k")).n).toBe(withBus ? 2 : 1)
        yield* a.bumpVersion
        yield* settle
        expect((yield* b.get("k")).n).toBe(withBus ? 3 : 1)
        yield* TestClock.adjust("10 seconds")
        expect((yield* b.get("k")).n).toBe(withBus ? 3 : 2)
      }
    }))

  it.scoped("after Missed a listener drops every version it keeps: a change it never heard of is seen at once", () =>
    Effect.gen(function*() {
      const shared = yield* MemoryStore.make()
      const other: CacheStore.Service = { ...shared }
      const bus = yield* InvalidationBus.makeMemory
      const calls = yield* Ref.make(0)
      const b = yield* processOver(other, calls, bus)
      yield* b.get("k")
      // another process bumped the tag, and its message was lost
      yield* Effect.provideService(Invalidation.invalidateTag("t"), CacheStore.CacheStore, shared)
      yield* settle
      expect((yield* b.get("k")).n).toBe(1)
      yield* bus.publish({ origin: "the bus itself", event: { _tag: "Missed" } })
      yield* settle
      expect((yield* b.get("k")).n).toBe(2)
    }))

  it.scoped("a process does not apply its own events: what it just wrote is not read back", () =>
    Effect.gen(function*() {
      const shared = yield* MemoryStore.make()
      const bus = yield* InvalidationBus.makeMemory
      const calls = yield* Ref.make(0)
      const a = yield* processOver(shared, calls, bus)
      yield* a.get("k")
      yield* a.invalidateTag("t")
      // were its own event applied, the version would be forgotten and this foreign one read
      yield* shared.set(":th:t", new TextEncoder().encode("foreign"))
      yield* settle
      expect((yield* a.get("k")).n).toBe(2)
      expect((yield* a.get("k")).n).toBe(2)
    }))

  it.scoped("events are Schema-encoded invalidations, never values", () =>
    Effect.gen(function*() {
      const encoded = Schema.encodeSync(InvalidationBus.Message)({
        origin: "o",
        event: { _tag: "Tags", tags: ["user:1"], hard: true }
      })
      expect(encoded).toEqual({ origin: "o", event: { _tag: "Tags", tags: ["user:1"], hard: true } })
      expect(Schema.decodeUnknownEither(InvalidationBus.Message)({ origin: "o", event: { _tag: "Value", v: 1 } })._tag)
        .toBe("Left")
    }))
})
