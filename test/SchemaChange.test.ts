/**
 * A deploy that changes a namespace's Schema, on every store (memory, a real Redis, a real
 * memcached): entries written with the old Schema are a miss for a handle of the new one — never
 * a wrongly typed hit — the loader runs, the failure is counted, and the new value is stored, so a
 * handle of the new Schema made afterwards (another process, say) hits it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Ref, Schema } from "effect"
import type { Scope } from "effect"
import { CacheStore, MemoryStore, ReadThrough } from "effect-cachekit"
import * as MemcachedStore from "effect-cachekit/MemcachedStore"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import { fixture } from "./harness/fixture.js"
import { startMemcached } from "./harness/memcached.js"
import { redisServer } from "./harness/redis.js"

const redis = fixture(redisServer())
const memcached = fixture(startMemcached())

const V1 = Schema.Struct({ id: Schema.String, price: Schema.Number })
// the deploy: the price becomes a string with its currency
const V2 = Schema.Struct({ id: Schema.String, price: Schema.String, currency: Schema.String })

let run = 0

const stores: ReadonlyArray<
  readonly [string, (prefix: string) => Effect.Effect<CacheStore.Service, never, Scope.Scope>]
> = [
  ["memory", () => MemoryStore.make()],
  [
    "redis",
    (prefix) =>
      Effect.flatMap(
        Redis.make({ port: redis().port }),
        (client) => Effect.provideService(RedisStore.make({ prefix }), Redis.RedisClient, client)
      )
  ],
  ["memcached", (prefix) => MemcachedStore.make({ servers: [memcached().address], prefix })]
]

/** A read-through handle over `store` whose loads are counted in `calls`. */
const handle = <A, I>(
  store: CacheStore.Service,
  value: Schema.Schema<A, I>,
  load: (id: string) => A,
  calls: Ref.Ref<number>,
  schemaVersion?: number
) =>
  ReadThrough.make({
    namespace: "product",
    value,
    lookup: (id: string) => Effect.as(Ref.update(calls, (n) => n + 1), load(id)),
    ttl: "1 hour",
    schemaVersion
  }).pipe(Effect.provideService(CacheStore.CacheStore, store))

describe.each(stores)("a Schema change on the %s store", (_, makeStore) => {
  it.scopedLive("an entry of the old Schema is a miss for the new one: loaded, counted, then stored anew", () =>
    Effect.gen(function*() {
      const store = yield* makeStore(`schema-${process.pid}-${run++}`)
      const v1Calls = yield* Ref.make(0)
      const v2Calls = yield* Ref.make(0)
      const v1 = yield* handle(store, V1, (id) => ({ id, price: 10 }), v1Calls)
      expect(yield* v1.get("p1")).toEqual({ id: "p1", price: 10 })
      expect(yield* v1.get("p1")).toEqual({ id: "p1", price: 10 })
      expect(yield* Ref.get(v1Calls)).toBe(1)

      // after the deploy
      const v2 = yield* handle(store, V2, (id) => ({ id, price: "10.00", currency: "EUR" }), v2Calls)
      expect(yield* v2.get("p1")).toEqual({ id: "p1", price: "10.00", currency: "EUR" })
      expect(yield* Ref.get(v2Calls)).toBe(1)
      expect(yield* v2.stats).toMatchObject({ misses: 1, hits: 0, decodeFailures: 1 })

      // the new value was stored: this handle and a new one (another process) hit it
      expect(yield* v2.get("p1")).toEqual({ id: "p1", price: "10.00", currency: "EUR" })
      const later = yield* handle(store, V2, () => ({ id: "never", price: "", currency: "" }), v2Calls)
      expect(yield* later.get("p1")).toEqual({ id: "p1", price: "10.00", currency: "EUR" })
      expect(yield* Ref.get(v2Calls)).toBe(1)
      expect(yield* later.stats).toMatchObject({ hits: 1, misses: 0, decodeFailures: 0 })
    }))

  it.scopedLive("a new schemaVersion over an unchanged Schema is a miss too", () =>
    Effect.gen(function*() {
      const store = yield* makeStore(`schema-${process.pid}-${run++}`)
      const calls = yield* Ref.make(0)
      const before = yield* handle(store, V1, (id) => ({ id, price: 10 }), calls, 1)
      yield* before.get("p1")
      // the meaning of the price changed (cents), its type did not: the version says so
      const after = yield* handle(store, V1, (id) => ({ id, price: 1000 }), calls, 2)
      expect(yield* after.get("p1")).toEqual({ id: "p1", price: 1000 })
      expect(yield* Ref.get(calls)).toBe(2)
      expect((yield* after.stats).decodeFailures).toBe(1)
      expect(yield* after.get("p1")).toEqual({ id: "p1", price: 1000 })
      expect(yield* Ref.get(calls)).toBe(2)
    }))
})
