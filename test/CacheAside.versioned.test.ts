/**
 * `getVersioned` / `setVersioned` on the memory store, a real Redis and a real memcached: a write
 * carries a version and never replaces a newer one, atomically across clients (two clients of
 * one server racing 200 writes end with the highest version), and a read returns the version or
 * nothing below a minimum. A store without the capability says so with `UnsupportedCapability`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option, Random, Schema } from "effect"
import type { Scope } from "effect"
import { CacheAside, CacheStore, MemoryStore } from "effect-cachekit"
import * as MemcachedStore from "effect-cachekit/MemcachedStore"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import { fixture } from "./harness/fixture.js"
import { startMemcached } from "./harness/memcached.js"
import { redisServer } from "./harness/redis.js"

const redis = fixture(redisServer())
const memcached = fixture(startMemcached())

const Doc = Schema.Struct({ id: Schema.String, body: Schema.String })
type Doc = typeof Doc.Type

let run = 0

/** Two clients of one store (two processes' views, for the remote stores), by prefix. */
type MakeStores = (
  prefix: string
) => Effect.Effect<readonly [CacheStore.Service, CacheStore.Service], never, Scope.Scope>

const stores: ReadonlyArray<readonly [string, MakeStores]> = [
  ["memory", () => Effect.map(MemoryStore.make(), (store) => [store, store] as const)],
  ["redis", (prefix) => {
    const one = Effect.flatMap(
      Redis.make({ port: redis().port }),
      (client) => Effect.provideService(RedisStore.make({ prefix }), Redis.RedisClient, client)
    )
    return Effect.all([one, one])
  }],
  ["memcached", (prefix) => {
    const one = MemcachedStore.make({ servers: [memcached().address], prefix })
    return Effect.all([one, one])
  }]
]

const docsOver = (store: CacheStore.Service) =>
  CacheAside.make({
    namespace: "doc",
    value: Doc,
    ttl: "1 hour",
    staleWhileRevalidate: "1 minute"
  }).pipe(Effect.provideService(CacheStore.CacheStore, store))

const doc = (version: number): Doc => ({ id: "d1", body: `body ${version}` })

describe.each(stores)("versioned writes on the %s store", (_, makeStores) => {
  it.scopedLive("a write carries its version; a lower or equal one is refused and says which version is kept", () =>
    Effect.gen(function*() {
      const [store] = yield* makeStores(`versioned-${process.pid}-${run++}`)
      const docs = yield* docsOver(store)
      expect(yield* docs.getVersioned("d1")).toEqual(Option.none())
      expect(yield* docs.setVersioned("d1", doc(1), 1)).toEqual({ _tag: "Written" })
      expect(yield* docs.getVersioned("d1")).toEqual(Option.some({ value: doc(1), version: 1 }))
      expect(yield* docs.setVersioned("d1", doc(3), 3)).toEqual({ _tag: "Written" })
      expect(yield* docs.setVersioned("d1", doc(2), 2)).toEqual({ _tag: "Outdated", current: 3 })
      expect(yield* docs.setVersioned("d1", doc(30), 3)).toEqual({ _tag: "Outdated", current: 3 })
      expect(yield* docs.getVersioned("d1")).toEqual(Option.some({ value: doc(3), version: 3 }))
      // the plain read sees the versioned value
      expect(yield* docs.get("d1")).toEqual(Option.some(doc(3)))
      // a reader that has seen version 4 does not take version 3
      expect(yield* docs.getVersioned("d1", { minVersion: 4 })).toEqual(Option.none())
      expect(yield* docs.getVersioned("d1", { minVersion: 3 })).toEqual(Option.some({ value: doc(3), version: 3 }))
    }))

  it.scopedLive("an expired (stale) entry keeps its version; a plain set writes version 0, which any version replaces", () =>
    Effect.gen(function*() {
      const [store] = yield* makeStores(`versioned-${process.pid}-${run++}`)
      const docs = yield* docsOver(store)
      yield* docs.setVersioned("d1", doc(5), 5)
      expect(yield* docs.expire("d1")).toBe(true)
      // stale: not returned by a versioned read, and still version 5 for a write
      expect(yield* docs.getVersioned("d1")).toEqual(Option.none())
      expect(yield* docs.setVersioned("d1", doc(4), 4)).toEqual({ _tag: "Outdated", current: 5 })
      yield* docs.set("d1", doc(0))
      expect(yield* docs.getVersioned("d1")).toEqual(Option.some({ value: doc(0), version: 0 }))
      expect(yield* docs.setVersioned("d1", doc(1), 1)).toEqual({ _tag: "Written" })
      // an invalidation removes the entry and its version with it
      yield* docs.invalidate("d1")
      expect(yield* docs.setVersioned("d1", doc(1), 1)).toEqual({ _tag: "Written" })
    }))

  it.scopedLive("two clients racing 200 versioned writes in a random order: the highest version is what stays", () =>
    Effect.gen(function*() {
      const [one, two] = yield* makeStores(`versioned-${process.pid}-${run++}`)
      const a = yield* docsOver(one)
      const b = yield* docsOver(two)
      const versions = yield* Random.shuffle(Array.from({ length: 200 }, (_, i) => i + 1)).pipe(
        Effect.withRandom(Random.make(42))
      )
      const results = yield* Effect.forEach(
        [...versions],
        (version, i) =>
          Effect.map((i % 2 === 0 ? a : b).setVersioned("d1", doc(version), version), (r) => [version, r] as const),
        { concurrency: "unbounded" }
      )
      expect(yield* a.getVersioned("d1")).toEqual(Option.some({ value: doc(200), version: 200 }))
      expect(yield* b.getVersioned("d1")).toEqual(Option.some({ value: doc(200), version: 200 }))
      // every refusal named a version at least as high as the one refused
      for (const [version, result] of results) {
        if (result._tag === "Outdated") expect(result.current).toBeGreaterThanOrEqual(version)
      }
      const refused = results.filter(([, r]) => r._tag === "Outdated").length
      console.log(`${_}: 200 racing versioned writes, ${200 - refused} written, ${refused} refused`)
    }))

  it.scopedLive("a version that is no whole number from 1 is refused with InvalidOptions", () =>
    Effect.gen(function*() {
      const [store] = yield* makeStores(`versioned-${process.pid}-${run++}`)
      const docs = yield* docsOver(store)
      for (const version of [0, -1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) {
        const result = yield* Effect.either(docs.setVersioned("d1", doc(1), version))
        expect(Either.isLeft(result) && result.left._tag).toBe("InvalidOptions")
      }
      const read = yield* Effect.either(docs.getVersioned("d1", { minVersion: -2 }))
      expect(Either.isLeft(read) && read.left._tag).toBe("InvalidOptions")
      expect(yield* docs.get("d1")).toEqual(Option.none())
    }))
})

describe("versioned writes on a store without the capability", () => {
  it.scoped("fail with UnsupportedCapability, and write nothing", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make()
      // a store that gives only the required operations
      const plain = CacheStore.make({
        name: "plain",
        get: memory.get,
        set: memory.set,
        setIfAbsent: memory.setIfAbsent,
        delete: memory.delete,
        expire: memory.expire
      })
      const docs = yield* docsOver(plain)
      const result = yield* Effect.either(docs.setVersioned("d1", doc(1), 1))
      expect(Either.isLeft(result) && result.left._tag).toBe("UnsupportedCapability")
      expect(yield* docs.get("d1")).toEqual(Option.none())
    }))
})
