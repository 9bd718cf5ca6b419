import { describe, expect, it, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, Ref, Schema, TestClock } from "effect"
import { Cache, CacheAside, CacheStore, MemoryStore, Ttl } from "effect-cachekit"
import * as Testing from "effect-cachekit/testing"
import { bytesOnlyStore } from "./utils.js"

const Memory = MemoryStore.layer()

// every test shares one memory store (each in a namespace of its own) unless it makes its own
layer(Memory)("CacheAside", (it) => {
  it.scoped("set, get and invalidate by key", () =>
    Effect.gen(function*() {
      const sessions = yield* CacheAside.make({ namespace: "session", value: Schema.String, ttl: "30 minutes" })
      expect(yield* sessions.get("s1")).toEqual(Option.none())
      yield* sessions.set("s1", "alice")
      expect(yield* sessions.get("s1")).toEqual(Option.some("alice"))
      expect(yield* sessions.invalidate("s1")).toBe(true)
      expect(yield* sessions.get("s1")).toEqual(Option.none())
      expect(yield* sessions.stats).toMatchObject({ hits: 1, misses: 2 })
    }))

  it.scoped("a value the Schema cannot encode fails set with EncodeError and leaves the old entry", () =>
    Effect.gen(function*() {
      const Positive = Schema.Number.pipe(Schema.positive())
      const numbers = yield* CacheAside.make({ namespace: "n", value: Positive, ttl: "1 minute" })
      yield* numbers.set("k", 5)
      const error = yield* Effect.flip(numbers.set("k", -1))
      expect(error._tag).toBe("EncodeError")
      expect(error.message).toMatch(/cannot encode the value of n:k/)
      expect(yield* numbers.get("k")).toEqual(Option.some(5))
      expect((yield* numbers.stats).encodeFailures).toBe(1)
    }))

  it.scoped("a set the store refused is never acknowledged while the old entry may remain; one it could undo is", () =>
    Effect.gen(function*() {
      const { faults, store } = yield* Effect.flatMap(MemoryStore.make(), Testing.faulty)
      const prices = yield* CacheAside.make({ namespace: "price", value: Schema.Number, ttl: "5 minutes" }).pipe(
        Effect.provideService(CacheStore.CacheStore, store)
      )
      yield* prices.set("p1", 10)
      // the write fails and so does the removal of the old entry: the caller must hear of it,
      // under the default fallback policy too, or 10 is served once the store is back
      yield* faults.inject(Testing.failure("connection"), ["set", "delete"])
      expect((yield* Effect.flip(prices.set("p1", 20)))._tag).toBe("StoreError")
      yield* faults.heal()
      expect(yield* prices.get("p1")).toEqual(Option.some(10))
      // the write fails but the old entry can be removed: acknowledged, and the key misses
      yield* faults.inject(Testing.failure("connection"), ["set"])
      yield* prices.set("p1", 30)
      yield* faults.heal()
      expect(yield* prices.get("p1")).toEqual(Option.none())
      expect((yield* prices.stats).storeErrors).toBe(3) // the refused set and removal, then the refused set
    }))

  it.scoped("a value that cannot be stored as data fails with EncodeError, on a live store too", () =>
    Effect.gen(function*() {
      const things = yield* CacheAside.make({ namespace: "b", value: Schema.Unknown, ttl: "1 minute" })
      const error = yield* Effect.flip(things.set("k", new Map([["a", 1]])))
      expect(error._tag).toBe("EncodeError")
      expect(error.message).toMatch(/Map cannot be stored/)
      expect(yield* things.get("k")).toEqual(Option.none())
    }))

  it.scoped("getOrLoad shares one load among concurrent callers and stores the result", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const gate = yield* Deferred.make<void>()
      const prices = yield* CacheAside.make({ namespace: "price", value: Schema.Number, ttl: "1 minute" })
      const load = Ref.update(calls, (n) => n + 1).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as(9.5))
      const fibers = yield* Effect.forEach(
        Array.from({ length: 100 }),
        () => Effect.fork(prices.getOrLoad("sku", load))
      )
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gate, undefined)
      expect((yield* Fiber.joinAll(fibers)).every((p) => p === 9.5)).toBe(true)
      expect(yield* Ref.get(calls)).toBe(1)
      expect(yield* prices.get("sku")).toEqual(Option.some(9.5))
    }))

  it.scoped("Ttl.fromValue sets the TTL from the value; zero means do not keep", () =>
    Effect.gen(function*() {
      const items = yield* CacheAside.make({
        namespace: "item",
        value: Schema.Struct({ volatile: Schema.Boolean }),
        ttl: Ttl.fromValue((item: { readonly volatile: boolean }) => item.volatile ? "10 seconds" : "1 hour")
      })
      yield* items.set("v", { volatile: true })
      yield* items.set("s", { volatile: false })
      yield* TestClock.adjust("11 seconds")
      expect(Option.isNone(yield* items.get("v"))).toBe(true)
      expect(Option.isSome(yield* items.get("s"))).toBe(true)
      const never = yield* CacheAside.make({
        namespace: "never",
        value: Schema.Number,
        ttl: Ttl.fromValue(() => 0)
      })
      yield* never.set("k", 1)
      expect(yield* never.get("k")).toEqual(Option.none())
    }))

  it.scoped("over a byte store, entries round-trip as bytes; changed bytes are decoded afresh, never served stale", () =>
    Effect.gen(function*() {
      const store = yield* bytesOnlyStore
      const Item = Schema.Struct({ n: Schema.Number, at: Schema.DateFromString })
      const items = yield* CacheAside.make({ namespace: "item", value: Item, ttl: "1 minute" }).pipe(
        Effect.provideService(CacheStore.CacheStore, store)
      )
      yield* items.set("k", { n: 1, at: new Date(0) })
      const stored = Option.getOrThrow(yield* store.get("item:k"))
      expect(stored).toBeInstanceOf(Uint8Array)
      expect(yield* items.get("k")).toEqual(Option.some({ n: 1, at: new Date(0) }))
      expect(yield* items.get("k")).toEqual(Option.some({ n: 1, at: new Date(0) }))
      // another writer replaces the bytes: the new value is read, not a remembered one
      yield* items.set("k", { n: 2, at: new Date(1000) })
      expect(yield* items.get("k")).toEqual(Option.some({ n: 2, at: new Date(1000) }))
      // bytes of the same length that no longer decode are a miss
      const garbage = new Uint8Array((Option.getOrThrow(yield* store.get("item:k")) as Uint8Array).byteLength).fill(120)
      yield* store.set("item:k", garbage)
      expect(yield* items.get("k")).toEqual(Option.none())
      expect(yield* items.stats).toMatchObject({ hits: 3, misses: 1, decodeFailures: 1 })
    }))

  it.scoped("non-string keys become strings through the key option", () =>
    Effect.gen(function*() {
      const byId = yield* CacheAside.make({
        namespace: "pair",
        value: Schema.String,
        ttl: "1 minute",
        key: (k: { readonly a: number; readonly b: number }) => `${k.a}/${k.b}`
      })
      yield* byId.set({ a: 1, b: 2 }, "x")
      const store = yield* CacheStore.CacheStore
      expect(Option.isSome(yield* store.get("pair:1/2"))).toBe(true)
    }))
})

describe("Cache.cached and Cache.cachedFunction", () => {
  it.effect("cached caches an effect under a key in the store in context", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const fetchUser = (id: string) => Effect.as(Ref.update(calls, (n) => n + 1), { id })
      const User = Schema.Struct({ id: Schema.String })
      const cachedUser = (id: string) =>
        fetchUser(id).pipe(Cache.cached({ namespace: "user", key: id, value: User, ttl: "5 minutes" }))
      yield* Effect.gen(function*() {
        expect(yield* cachedUser("1")).toEqual({ id: "1" })
        expect(yield* cachedUser("1")).toEqual({ id: "1" })
        expect(yield* cachedUser("2")).toEqual({ id: "2" })
        expect(yield* Ref.get(calls)).toBe(2)
        yield* TestClock.adjust("6 minutes")
        yield* cachedUser("1")
        expect(yield* Ref.get(calls)).toBe(3)
      }).pipe(Effect.provide(MemoryStore.layer()))
    }))

  it.effect("cached single-flights concurrent misses", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const gate = yield* Deferred.make<void>()
      const slow = Ref.update(calls, (n) => n + 1).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as(42))
      const program = Effect.gen(function*() {
        const fibers = yield* Effect.forEach(
          Array.from({ length: 50 }),
          () =>
            Effect.fork(
              slow.pipe(Cache.cached({ namespace: "answer", key: "q", value: Schema.Number, ttl: "1 minute" }))
            )
        )
        yield* Effect.yieldNow()
        yield* Deferred.succeed(gate, undefined)
        return yield* Fiber.joinAll(fibers)
      })
      const results = yield* program.pipe(Effect.provide(MemoryStore.layer()))
      expect(results.every((r) => r === 42)).toBe(true)
      expect(yield* Ref.get(calls)).toBe(1)
    }))

  it.effect("cachedFunction keys calls by their arguments", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const add = (a: number, b: number) => Effect.as(Ref.update(calls, (n) => n + 1), a + b)
      const cachedAdd = Cache.cachedFunction(add, { namespace: "add", value: Schema.Number, ttl: "1 minute" })
      yield* Effect.gen(function*() {
        expect(yield* cachedAdd(1, 2)).toBe(3)
        expect(yield* cachedAdd(1, 2)).toBe(3)
        expect(yield* cachedAdd(2, 1)).toBe(3)
        expect(yield* Ref.get(calls)).toBe(2)
        const store = yield* CacheStore.CacheStore
        expect([...(yield* store.keys("add:*"))].sort()).toEqual(["add:[1,2]", "add:[2,1]"])
      }).pipe(Effect.provide(MemoryStore.layer()))
    }))

  it("cached rejects nonsense options when built", () => {
    expect(() => Cache.cached({ namespace: "x", key: "k", value: Schema.Number, ttl: -1 })).toThrow(
      /ttl must be greater than zero/
    )
  })
})
