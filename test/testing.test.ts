import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Option, Ref, Runtime, Schema, TestClock } from "effect"
import { CacheStore, MemoryStore, NoopStore, ReadThrough } from "effect-cachekit"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import * as Testing from "effect-cachekit/testing"
import { bytes, text } from "../src/internal/testing/bytes.js"
import { fixture } from "./harness/fixture.js"
import { redisServer } from "./harness/redis.js"
import { noopCases } from "./utils.js"

const faultyMemory = Effect.flatMap(MemoryStore.make(), Testing.faulty)

const redis = fixture(Effect.gen(function*() {
  const server = yield* redisServer()
  return yield* Redis.make({ port: server.port })
}))

describe("testing: the faulty store", () => {
  it.scoped("starts healthy and passes every operation to the wrapped store", () =>
    Effect.gen(function*() {
      const inner = yield* MemoryStore.make()
      const { faults, store } = yield* Testing.faulty(inner)
      expect(store.name).toBe(inner.name)
      expect(store.capabilities).toEqual(inner.capabilities)
      yield* store.set("a", bytes("1"))
      yield* store.setMany([{ key: "b", value: bytes("2") }])
      expect(yield* store.setIfAbsent("c", bytes("3"))).toBe(true)
      expect(text(yield* inner.get("a"))).toEqual(Option.some("1"))
      expect((yield* store.getMany(["a", "b", "c"])).map(text)).toEqual(["1", "2", "3"].map(Option.some))
      expect([...(yield* store.keys("*"))].sort()).toEqual(["a", "b", "c"])
      expect(yield* store.expire("a", "1 minute")).toBe(true)
      expect(yield* store.delete("a")).toBe(true)
      expect(yield* store.deleteMany(["b", "c"])).toBe(2)
      yield* store.clear
      // a lease's three calls go to the wrapped store's lease, under one operation
      const token = Option.getOrThrow(yield* store.lease!.acquire("l", "1 minute"))
      expect(Option.isNone(yield* inner.lease!.acquire("l", "1 minute"))).toBe(true)
      expect(yield* store.lease!.extend("l", token, "1 minute")).toBe(true)
      expect(yield* store.lease!.release("l", token)).toBe(true)
      expect(yield* faults.faultOf("get")).toEqual(Testing.healthy)
      expect(yield* faults.calls).toEqual({
        get: 0,
        getMany: 1,
        set: 1,
        setMany: 1,
        setIfAbsent: 1,
        delete: 1,
        deleteMany: 1,
        expire: 1,
        clear: 1,
        keys: 1,
        lease: 3
      })
    }))

  it.scoped("a failure fails the chosen operations with a typed StoreError and leaves the others alone", () =>
    Effect.gen(function*() {
      const { faults, store } = yield* faultyMemory
      yield* store.set("k", bytes("v"))
      yield* faults.inject(Testing.failure("timeout", { detail: "too slow" }), ["get", "set"])
      const error = yield* Effect.flip(store.get("k"))
      expect(error).toMatchObject({
        _tag: "StoreError",
        store: "memory",
        operation: "get",
        reason: "timeout",
        detail: "too slow"
      })
      const write = yield* Effect.flip(store.set("k", bytes("w")))
      expect(write).toMatchObject({ _tag: "StoreError", operation: "set", reason: "timeout" })
      // the failed write did not reach the store; the healthy getMany reads what is there
      expect((yield* store.getMany(["k"])).map(text)).toEqual([Option.some("v")])
      yield* faults.inject(Testing.failure("connection"), "getMany")
      expect(yield* Effect.flip(store.getMany(["k"]))).toMatchObject({ operation: "getMany", reason: "connection" })
      expect(yield* faults.faultOf("getMany")).toMatchObject({ _tag: "Failure", reason: "connection" })
    }))

  it.scoped("latency is a sleep on the TestClock", () =>
    Effect.gen(function*() {
      const { faults, store } = yield* faultyMemory
      yield* store.set("k", bytes("v"))
      yield* faults.inject(Testing.latency("2 seconds"), "get")
      const fiber = yield* Effect.fork(store.get("k"))
      yield* TestClock.adjust("1999 millis")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 milli")
      expect(text(yield* Fiber.join(fiber))).toEqual(Option.some("v"))
    }))

  it.scoped("a failure after a delay fails only when the TestClock gets there", () =>
    Effect.gen(function*() {
      const { faults, store } = yield* faultyMemory
      yield* faults.inject(Testing.failure("timeout", { after: "500 millis" }), "set")
      const fiber = yield* Effect.fork(Effect.either(store.set("k", bytes("v"))))
      yield* TestClock.adjust("499 millis")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 milli")
      const result = yield* Fiber.join(fiber)
      expect(result._tag === "Left" && result.left).toMatchObject({ _tag: "StoreError", reason: "timeout" })
      expect(Option.isNone(yield* store.get("k"))).toBe(true)
    }))

  it.scoped("a black hole never answers, and a timeout around it still fires", () =>
    Effect.gen(function*() {
      const { faults, store } = yield* faultyMemory
      yield* faults.inject(Testing.blackHole, "get")
      const fiber = yield* Effect.fork(store.get("k"))
      yield* TestClock.adjust("10 minutes")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      const timed = yield* Effect.fork(Effect.timeoutOption(store.get("k"), "1 second"))
      yield* TestClock.adjust("1 second")
      expect(Option.isNone(yield* Fiber.join(timed))).toBe(true)
      yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(yield* Fiber.await(fiber))).toBe(true)
    }))

  it.scoped("faults switch at run time: an effect built before inject meets the fault when it runs", () =>
    Effect.gen(function*() {
      const { faults, store } = yield* faultyMemory
      yield* store.set("k", bytes("v"))
      const read = store.get("k")
      yield* faults.inject(Testing.failure("connection"))
      expect(Exit.isFailure(yield* Effect.exit(read))).toBe(true)
      yield* faults.heal("get")
      expect(text(yield* read)).toEqual(Option.some("v"))
      expect(yield* faults.faultOf("set")).toMatchObject({ _tag: "Failure" })
      yield* faults.heal()
      yield* store.set("k", bytes("w"))
      yield* faults.inject(Testing.failure("command"), "delete")
      yield* faults.inject(Testing.healthy, "delete")
      expect(yield* store.delete("k")).toBe(true)
    }))

  it("nonsense faults and operations throw InvalidOptions", () => {
    expect(() => Testing.latency(-1)).toThrow(/testing.faulty: invalid options: latency/)
    expect(() => Testing.latency("0 millis")).toThrow(/latency must be greater than zero/)
    expect(() => Testing.latency(Infinity)).toThrow(/latency must be finite/)
    expect(() => Testing.failure("gone" as never)).toThrow(/reason must be one of/)
    expect(() => Testing.failure("timeout", { after: Number.NaN })).toThrow(/after is NaN/)
    const { faults } = Effect.runSync(Testing.faulty(Effect.runSync(Effect.scoped(MemoryStore.make()))))
    expect(() => faults.inject(Testing.blackHole, ["get", "gett" as never])).toThrow(/unknown operation "gett"/)
    expect(() => faults.heal("nope" as never)).toThrow(/unknown operation "nope"/)
    expect(() => faults.inject({ _tag: "Latency" } as never)).toThrow(/a fault made by this module/)
  })

  it.scoped("the wrapper does not pass on the memory store's synchronous direct read", () =>
    Effect.gen(function*() {
      const inner = yield* MemoryStore.make()
      expect(CacheStore.directReadOf(inner)?._tag).toBe("Sync")
      const { store } = yield* Testing.faulty(inner)
      expect(store.directRead).toBeUndefined()
      expect(CacheStore.directReadOf(store)).toBeUndefined()
    }))

  it.scoped("a cached value is not served around a failing get: the strategy falls back to the loader", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const { faults, store } = yield* faultyMemory
      const users = yield* ReadThrough.make({
        namespace: "user",
        value: Schema.String,
        lookup: (id: string) => Effect.as(Ref.update(calls, (n) => n + 1), `user ${id}`),
        ttl: "5 minutes"
      }).pipe(Effect.provideService(CacheStore.CacheStore, store))
      yield* users.get("1")
      yield* users.get("1")
      expect(yield* Ref.get(calls)).toBe(1)
      yield* faults.inject(Testing.failure("connection"), "get")
      expect(yield* users.get("1")).toBe("user 1")
      expect(yield* Ref.get(calls)).toBe(2)
      expect((yield* users.stats).storeErrors).toBe(1)
    }))

  it.scopedLive("over Redis, whose reads complete from a batch callback, a failing get is not bypassed", () =>
    Effect.gen(function*() {
      const inner = yield* Effect.provideService(RedisStore.make({ prefix: "faulty" }), Redis.RedisClient, redis())
      expect(CacheStore.directReadOf(inner)?._tag).toBe("Callback")
      const { faults, store } = yield* Testing.faulty(inner)
      expect(store.directRead).toBeUndefined()
      const calls = yield* Ref.make(0)
      const users = yield* ReadThrough.make({
        namespace: "user",
        value: Schema.String,
        lookup: (id: string) => Effect.as(Ref.update(calls, (n) => n + 1), `user ${id}`),
        ttl: "5 minutes"
      }).pipe(Effect.provideService(CacheStore.CacheStore, store))
      yield* users.get("1")
      expect(yield* users.get("1")).toBe("user 1")
      expect([yield* Ref.get(calls), (yield* users.stats).hits]).toEqual([1, 1])
      yield* faults.inject(Testing.failure("timeout"), "get")
      expect(yield* users.get("1")).toBe("user 1")
      expect(yield* Ref.get(calls)).toBe(2)
      expect((yield* users.stats).storeErrors).toBe(1)
      expect((yield* faults.calls).get).toBe(3)
      yield* store.clear
    }))

  it.scoped("layerFaulty wraps the store in context and provides its controller", () =>
    Effect.gen(function*() {
      const faults = yield* Testing.Faults
      const store = yield* CacheStore.CacheStore
      expect(store.directRead).toBeUndefined()
      yield* store.set("k", bytes("v"))
      yield* faults.inject(Testing.failure("unavailable"), "get")
      expect(yield* Effect.flip(store.get("k"))).toMatchObject({ reason: "unavailable", store: "memory" })
      expect((yield* faults.calls).get).toBe(1)
    }).pipe(Effect.provide(Testing.layerFaulty.pipe(Layer.provide(MemoryStore.layer())))))
})

/** A runner that keeps the cases the suite registers, to run them by hand. */
const collecting = () => {
  const registered: Array<{ readonly title: string; readonly run: () => Promise<void> }> = []
  const names: Array<string> = []
  const runner: Testing.StoreSuiteRunner = {
    describe: (name, body) => {
      names.push(name)
      body()
    },
    it: (title, run) => void registered.push({ title, run }),
    expect
  }
  return { names, registered, runner }
}

describe("testing: the store conformance suite", () => {
  it("registers one describe named after the store and one case per id, in order", () => {
    const { names, registered, runner } = collecting()
    Testing.storeSuite(runner, "some store", { make: () => MemoryStore.make(), clock: "test" })
    expect(names).toEqual(["CacheStore conformance: some store"])
    expect(registered.length).toBe(Testing.storeSuiteCases.length)
    const only = collecting()
    Testing.storeSuite(only.runner, "some store", { make: () => MemoryStore.make(), clock: "test", cases: ["ttl"] })
    expect(only.registered.map((c) => c.title)).toEqual([
      "entries expire after their TTL; entries without a TTL do not"
    ])
  })

  it("passes the memory store, run through a runner of its own", async () => {
    const { registered, runner } = collecting()
    Testing.storeSuite(runner, "memory", { make: () => MemoryStore.make(), clock: "test" })
    for (const test of registered) await test.run()
    expect(registered.length).toBe(Testing.storeSuiteCases.length)
  })

  it("fails a store that keeps nothing on every case but the ones that never read back a write", async () => {
    const { registered, runner } = collecting()
    Testing.storeSuite(runner, "noop", { make: () => Effect.sync(() => NoopStore.make()), clock: "test" })
    const passed: Array<string> = []
    const failures: Array<unknown> = []
    for (const [i, test] of registered.entries()) {
      await test.run().then(() => void passed.push(Testing.storeSuiteCases[i]!), (error) => void failures.push(error))
    }
    expect(passed).toEqual(noopCases)
    // a failing case rejects with its own error (the assertion error, mostly), not a wrapper around it
    expect(failures.length).toBe(Testing.storeSuiteCases.length - noopCases.length)
    expect(failures.every((e) => e instanceof Error && !Runtime.isFiberFailure(e))).toBe(true)
    expect(failures.filter((e) => e instanceof Error && e.name === "AssertionError").length).toBeGreaterThan(10)
  })

  it("rejects nonsense options with InvalidOptions", () => {
    const { runner } = collecting()
    const make = () => MemoryStore.make()
    const run = (options: Partial<Testing.StoreSuiteOptions>) => () =>
      Testing.storeSuite(runner, "x", { make, clock: "test", ...options } as Testing.StoreSuiteOptions)
    expect(run({ clock: "fake" as never })).toThrow(
      /testing.storeSuite: invalid options: clock must be "test" or "real"/
    )
    expect(run({ cases: ["ttl", "nope" as never] })).toThrow(/unknown case "nope"/)
    expect(run({ shortTtl: 0 })).toThrow(/shortTtl must be greater than zero/)
    expect(run({ shortTtlWait: -5 })).toThrow(/shortTtlWait must be greater than zero/)
    expect(run({ largeValueBytes: 1.5 })).toThrow(/largeValueBytes must be a positive integer/)
    expect(run({ make: undefined as never })).toThrow(/make is required/)
  })
})
