import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Ref, Schema } from "effect"
import { CacheAside, CacheStore, NoopStore, ReadThrough } from "effect-cachekit"
import * as Testing from "effect-cachekit/testing"
import { bytes } from "../src/internal/testing/bytes.js"
import { noopCases } from "./utils.js"

Testing.storeSuite({ describe, expect, it }, "NoopStore", {
  make: () => Effect.sync(() => NoopStore.make()),
  clock: "test",
  cases: noopCases
})

describe("NoopStore", () => {
  it.effect("every write succeeds and every read misses afterwards", () =>
    Effect.gen(function*() {
      const store = NoopStore.make()
      yield* store.set("a", bytes("1"))
      yield* store.set("b", { live: "object" }, "1 hour")
      yield* store.setMany([{ key: "c", value: bytes("3") }, { key: "d", value: bytes("4"), ttl: 0 }])
      expect(yield* store.setIfAbsent("e", bytes("5"))).toBe(true)
      expect(yield* store.setIfAbsent("e", bytes("6"))).toBe(true)
      expect(Option.isNone(yield* store.get("a"))).toBe(true)
      const direct = CacheStore.directReadOf(store)
      expect(direct?._tag).toBe("Sync")
      expect(direct?._tag === "Sync" && direct.read("a")).toBeUndefined()
      const many = yield* store.getMany(["a", "b", "c", "d", "e", "a"])
      expect(many.length).toBe(6)
      expect(many.every(Option.isNone)).toBe(true)
      expect(yield* store.getMany([])).toEqual([])
    }))

  it.effect("removals find nothing, keys lists nothing, clear succeeds", () =>
    Effect.gen(function*() {
      const store = NoopStore.make({ name: "off" })
      yield* store.set("k", bytes("v"))
      expect(yield* store.delete("k")).toBe(false)
      expect(yield* store.deleteMany(["k", "l"])).toBe(0)
      expect(yield* store.expire("k", "1 minute")).toBe(false)
      expect(yield* store.keys("*")).toEqual([])
      yield* store.clear
      expect(store.name).toBe("off")
      expect(store.capabilities).toMatchObject({ live: true, scan: true, clear: true })
    }))

  it("rejects an empty name with InvalidOptions", () => {
    expect(() => NoopStore.make({ name: "" })).toThrow(/NoopStore: invalid options: name must be a non-empty string/)
  })

  it.scoped("a ReadThrough over the no-op store runs its loader on every read", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const users = yield* ReadThrough.make({
        namespace: "user",
        value: Schema.String,
        lookup: (id: string) => Effect.as(Ref.update(calls, (n) => n + 1), `user ${id}`),
        ttl: "5 minutes"
      })
      expect(yield* users.get("1")).toBe("user 1")
      expect(yield* users.get("1")).toBe("user 1")
      expect(yield* users.getMany(["1", "2"])).toEqual([Option.some("user 1"), Option.some("user 2")])
      expect(yield* Ref.get(calls)).toBe(4)
      expect(yield* users.stats).toMatchObject({ namespace: "user", store: "noop", hits: 0, misses: 4, loads: 4 })
    }).pipe(Effect.provide(NoopStore.layer)))

  it.scoped("a value the Schema cannot encode still fails with EncodeError", () =>
    Effect.gen(function*() {
      const positives = yield* CacheAside.make({
        namespace: "n",
        value: Schema.Number.pipe(Schema.positive()),
        ttl: "1 minute"
      })
      yield* positives.set("k", 1)
      expect(yield* positives.get("k")).toEqual(Option.none())
      const error = yield* Effect.flip(positives.set("k", -1))
      expect(error._tag).toBe("EncodeError")
    }).pipe(Effect.provide(NoopStore.layer)))

  it.effect("the layer provides a CacheStore named noop", () =>
    Effect.gen(function*() {
      const store = yield* CacheStore.CacheStore
      expect(store.name).toBe("noop")
      expect(Option.isNone(yield* store.get("x"))).toBe(true)
    }).pipe(Effect.provide(NoopStore.layer)))
})
