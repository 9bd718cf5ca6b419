import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, Ref, Schema } from "effect"
import { CacheAside, MemoryStore, ReadThrough } from "effect-cachekit"

const Item = Schema.Struct({ id: Schema.String, n: Schema.Number })
const item = (id: string, n = 0) => ({ id, n })
const settle = Effect.gen(function*() {
  for (let i = 0; i < 200; i++) yield* Effect.yieldNow()
})

describe("review: op-budget yields", () => {
  it.scoped("Y1: concurrent gets of a cold key with a yield at every op boundary: how many loads?", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const gate = yield* Deferred.make<void>()
      const cache = yield* ReadThrough.make({
        namespace: "item",
        value: Item,
        lookup: (id: string) => Ref.update(calls, (n) => n + 1).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as(item(id))),
        ttl: "5 minutes"
      })
      const fibers = yield* Effect.forEach(Array.from({ length: 50 }), () => Effect.fork(cache.get("k")))
      yield* settle
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.joinAll(fibers)
      console.log("loads", yield* Ref.get(calls))
      expect(yield* Ref.get(calls)).toBe(1)
    }).pipe(Effect.withMaxOpsBeforeYield(1), Effect.provide(MemoryStore.layer())))

  it.scoped("Y2: a set during a load, with the loader finishing as the set runs: which value is stored?", () =>
    Effect.gen(function*() {
      let wrong = 0
      for (let delay = 0; delay < 60; delay++) {
        const gate = yield* Deferred.make<void>()
        const aside = yield* CacheAside.make({ namespace: `item${delay}`, value: Item, ttl: "5 minutes" })
        const loading = yield* Effect.fork(aside.getOrLoad("k", Effect.as(Deferred.await(gate), item("k", 1))))
        yield* settle
        yield* Deferred.succeed(gate, undefined)
        for (let i = 0; i < delay; i++) yield* Effect.yieldNow()
        yield* aside.set("k", item("k", 2))
        yield* Fiber.join(loading)
        yield* settle
        const got = yield* aside.get("k")
        if (Option.isSome(got) && got.value.n === 1) wrong++
      }
      console.log("stale after an acknowledged set", wrong, "of 60")
      expect(wrong).toBe(0)
    }).pipe(Effect.withMaxOpsBeforeYield(1), Effect.provide(MemoryStore.layer())))
})
