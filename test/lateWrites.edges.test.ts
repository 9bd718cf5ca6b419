/**
 * Late writes at the edges of the fence: a fail-safe keep after another process's clear (Redis),
 * and a load that lands after another process's memcached clear once its process adopted the new
 * generation.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, Schema } from "effect"
import { CacheAside, CacheStore, ReadThrough } from "effect-cachekit"
import * as MemcachedStore from "effect-cachekit/MemcachedStore"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import { fixture } from "./harness/fixture.js"
import { startMemcacheds } from "./harness/memcached.js"
import { redisServer } from "./harness/redis.js"

const redis = fixture(redisServer())
const ring = fixture(startMemcacheds(1))

describe("late writes at the edges of the fence", () => {
  it.live(
    "a fail-safe keep after another process's clear puts the cleared value back (Redis)",
    () =>
      Effect.gen(function*() {
        const prefix = `review-${process.pid}`
        const storeOf = Effect.flatMap(
          Redis.make({ port: redis().port }),
          (client) => Effect.provideService(RedisStore.make({ prefix }), Redis.RedisClient, client)
        )
        const storeA = yield* storeOf
        const storeB = yield* storeOf
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        let calls = 0
        const a = yield* ReadThrough.make({
          namespace: "fs",
          value: Schema.String,
          ttl: "50 millis",
          failSafe: { maxStale: "1 hour", throttle: "1 hour" },
          lookup: (key: string) =>
            Effect.gen(function*() {
              if (key !== "k") return `other-${calls++}`
              if (calls++ === 0) return "v0"
              yield* Deferred.succeed(started, undefined)
              yield* Deferred.await(gate)
              return yield* Effect.fail("source down")
            })
        }).pipe(Effect.provideService(CacheStore.CacheStore, storeA))
        const b = yield* CacheAside.make({ namespace: "fs", value: Schema.String, ttl: "1 hour" }).pipe(
          Effect.provideService(CacheStore.CacheStore, storeB)
        )
        expect(yield* a.get("k")).toBe("v0")
        yield* Effect.sleep("100 millis") // expired, kept by failSafe
        const reading = yield* Effect.fork(a.get("k"))
        yield* Deferred.await(started)
        // the other process clears the namespace (its source changed)
        yield* b.clear
        // this process loads another key: its check learns the new purge token
        yield* a.get("other")
        yield* Deferred.succeed(gate, undefined)
        expect(yield* Fiber.join(reading)).toBe("v0")
        // the value from before the clear must not be in the store again
        expect(yield* b.get("k")).toEqual(Option.none())
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "a load that read before another process's clear lands in the new generation (memcached)",
    () =>
      Effect.gen(function*() {
        const prefix = `review-${process.pid}`
        const servers = ring().map((s) => s.address)
        const storeA = yield* MemcachedStore.make({ servers, prefix, generationRefresh: "20 millis" })
        const storeB = yield* MemcachedStore.make({ servers, prefix, generationRefresh: "20 millis" })
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        let source = 0
        const a = yield* ReadThrough.make({
          namespace: "gen",
          value: Schema.String,
          ttl: "1 hour",
          lookup: (_key: string) =>
            Effect.gen(function*() {
              const read = source
              yield* Deferred.succeed(started, undefined)
              yield* Deferred.await(gate)
              return `v${read}`
            })
        }).pipe(Effect.provideService(CacheStore.CacheStore, storeA))
        const b = yield* CacheAside.make({ namespace: "gen", value: Schema.String, ttl: "1 hour" }).pipe(
          Effect.provideService(CacheStore.CacheStore, storeB)
        )
        const reading = yield* Effect.fork(a.get("k"))
        yield* Deferred.await(started)
        source = 1
        yield* storeB.clear
        yield* Effect.sleep("300 millis") // the loading process adopts the new generation
        expect(storeA.generation()).toBe(storeB.generation())
        yield* Deferred.succeed(gate, undefined)
        expect(yield* Fiber.join(reading)).toBe("v0")
        // v0 was read before the clear: it must not be what the store now holds
        expect(yield* b.get("k")).toEqual(Option.none())
      }).pipe(Effect.scoped),
    30_000
  )
})
