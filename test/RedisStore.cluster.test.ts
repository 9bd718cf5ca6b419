import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Either, Option, Schema } from "effect"
import { CacheStore } from "effect-cachekit/CacheStore"
import * as ReadThrough from "effect-cachekit/ReadThrough"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import * as Testing from "effect-cachekit/testing"
import { bytes, text } from "../src/internal/testing/bytes.js"
import { fixture } from "./harness/fixture.js"
import { eventually } from "./harness/process.js"
import { redisCli, redisCluster } from "./harness/redis.js"

const env = fixture(Effect.gen(function*() {
  const cluster = yield* redisCluster()
  const redis = yield* Redis.makeCluster({ nodes: cluster.startupNodes })
  return { cluster, redis }
}))

const storeWith = (options: RedisStore.Options) =>
  Effect.provideService(RedisStore.make(options), Redis.RedisClient, env().redis)

Testing.storeSuite({ describe, expect, it }, "redis cluster", {
  clock: "real",
  make: (prefix) => storeWith({ prefix })
})

const dbsize = (port: number) => Effect.map(redisCli(port, "dbsize"), (s) => Number(s.trim()))

describe("RedisStore on a Redis Cluster", () => {
  it.live("a raw cross-slot MGET is refused, and getMany of 1,000 keys across slots works", () =>
    Effect.gen(function*() {
      const store = yield* storeWith({ prefix: "spread" })
      const refused = yield* redisCli(env().cluster.nodes[0]!.port, "mget", "spread:a", "spread:b", "spread:c")
      expect(refused).toMatch(/CROSSSLOT/)

      const entries = Array.from({ length: 1000 }, (_, i) => ({ key: `item:${i}`, value: bytes(`v${i}`) }))
      yield* store.setMany(entries)
      const keys = [...entries.map((e) => e.key), "absent:1", "absent:2"]
      const got = yield* store.getMany(keys)
      expect(got.map(text)).toEqual([...entries.map((_, i) => Option.some(`v${i}`)), Option.none(), Option.none()])
      // the keys really are spread over the three masters
      const masters = new Set<number>()
      for (const key of ["item:0", "item:1", "item:2", "item:3", "item:4", "item:5", "item:6", "item:7"]) {
        const slot = yield* env().cluster.keySlot(`spread:${key}`)
        masters.add((yield* env().cluster.masterOf(slot)).port)
      }
      expect(masters.size).toBe(3)
      expect(yield* store.deleteMany(keys)).toBe(1000)
    }))

  it.live("concurrent single gets across slots are coalesced per slot and all answered", () =>
    Effect.gen(function*() {
      const store = yield* storeWith({ prefix: "coalesce" })
      yield* store.setMany(Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, value: bytes(`v${i}`) })))
      const got = yield* Effect.forEach(
        Array.from({ length: 600 }, (_, i) => i),
        (i) => store.get(`k${i % 300}`),
        { concurrency: "unbounded" }
      )
      expect(got.map(text)).toEqual(Array.from({ length: 600 }, (_, i) => Option.some(`v${i % 300}`)))
    }))

  it.live("keys and clear SCAN every master", () =>
    Effect.gen(function*() {
      const store = yield* storeWith({ prefix: "scan-all" })
      const other = yield* storeWith({ prefix: "scan-all-other" })
      yield* store.setMany(Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, value: bytes("x") })))
      yield* other.set("k1", bytes("other"))
      expect((yield* store.keys("*")).length).toBe(300)
      expect([...(yield* store.keys("k1?"))].sort()).toEqual(Array.from({ length: 10 }, (_, i) => `k1${i}`))
      const masters = yield* Effect.forEach([0, 5461, 10923], (slot) => env().cluster.masterOf(slot))
      const before = yield* Effect.forEach(masters, (m) => dbsize(m.port))
      expect(before.every((n) => n > 0)).toBe(true)
      yield* store.clear
      expect(yield* store.keys("*")).toEqual([])
      expect(text(yield* other.get("k1"))).toEqual(Option.some("other"))
    }))

  it.scopedLive("a ReadThrough getMany of 500 keys across slots: one batched load for the misses, then all hits", () =>
    Effect.gen(function*() {
      const store = yield* storeWith({ prefix: "rt-cluster" })
      const batches: Array<number> = []
      const cache = yield* ReadThrough.make({
        namespace: "n",
        value: Schema.Number,
        ttl: "1 minute",
        lookup: (n: number) => Effect.succeed(n * 2),
        lookupMany: (ns) =>
          Effect.sync(() => {
            batches.push(ns.length)
            return ns.map((n) => [n, n * 2] as const)
          }),
        key: String
      }).pipe(Effect.provideService(CacheStore, store))
      const ns = Array.from({ length: 500 }, (_, i) => i)
      expect(yield* cache.getMany(ns)).toEqual(ns.map((n) => Option.some(n * 2)))
      expect(batches).toEqual([500])
      expect(yield* cache.getMany(ns)).toEqual(ns.map((n) => Option.some(n * 2)))
      expect(batches).toEqual([500])
      const stats = yield* cache.stats
      expect([stats.hits, stats.storeErrors]).toEqual([500, 0])
      expect((yield* store.keys("n:*")).length).toBe(500)
    }))

  // A cluster of its own: killing a master of the shared one would change what the other tests see.
  it.scopedLive(
    "a master killed: every call returns, only typed StoreErrors while the slot moves, then the cache serves again",
    () =>
      Effect.gen(function*() {
        const cluster = yield* redisCluster()
        const redis = yield* Redis.makeCluster({ nodes: cluster.startupNodes })
        const store = yield* Effect.provideService(RedisStore.make({ prefix: "failover" }), Redis.RedisClient, redis)
        const keys = Array.from({ length: 200 }, (_, i) => `k${i}`)
        yield* store.setMany(keys.map((key) => ({ key, value: bytes(`v-${key}`) })))
        // the writes reached the replicas before the crash
        yield* eventually(
          "replicas caught up",
          Effect.map(
            Effect.forEach(cluster.nodes, (n) => redisCli(n.port, "info", "replication")),
            (infos) =>
              infos.every((info) => {
                if (!info.includes("role:master")) return true
                const offset = /master_repl_offset:(\d+)/.exec(info)?.[1]
                const replica = /slave0:.*offset=(\d+)/.exec(info)?.[1]
                return offset !== undefined && offset === replica
              })
          )
        )
        const slot = yield* cluster.keySlot("failover:k0")
        const victim = yield* cluster.masterOf(slot)
        const victimKeys: Array<string> = []
        for (const key of keys) {
          const s = yield* cluster.keySlot(`failover:${key}`)
          if ((yield* cluster.masterOf(s)).port === victim.port) victimKeys.push(key)
        }
        expect(victimKeys.length).toBeGreaterThan(0)

        let issued = 0
        let returned = 0
        const failures = new Map<string, number>()
        const round = Effect.forEach(keys, (key) => {
          issued++
          return Effect.either(store.get(key)).pipe(
            Effect.tap(() =>
              Effect.sync(() => {
                returned++
              })
            ),
            Effect.map((result) => {
              if (Either.isRight(result)) {
                expect(text(result.right)).toEqual(Option.some(`v-${key}`))
                return true
              }
              const error = result.left
              const label = error._tag === "StoreError" ? `StoreError/${error.reason}` : error._tag
              failures.set(label, (failures.get(label) ?? 0) + 1)
              return false
            })
          )
        }, { concurrency: "unbounded" })

        const killedAt = yield* Clock.currentTimeMillis
        yield* victim.kill
        let recovered = false
        let rounds = 0
        // bounded: at most 30 s of rounds, one every 100 ms
        while (!recovered && rounds < 300) {
          rounds++
          const ok = yield* round
          recovered = ok.every(Boolean)
          if (!recovered) yield* Effect.sleep("100 millis")
        }
        const recoveredAt = yield* Clock.currentTimeMillis
        console.log(
          `cluster failover: served again after ${
            recoveredAt - killedAt
          } ms, ${rounds} rounds, ${issued} gets, failures ${JSON.stringify(Object.fromEntries(failures))}`
        )
        expect(recovered).toBe(true)
        expect(returned).toBe(issued)
        for (const label of failures.keys()) expect(label).toMatch(/^StoreError\/(connection|timeout|unavailable)$/)
        const promoted = yield* cluster.masterOf(slot)
        expect(promoted.port).not.toBe(victim.port)
        // writes to the moved slot land on the promoted replica
        yield* store.set(victimKeys[0]!, bytes("after"))
        expect(text(yield* store.get(victimKeys[0]!))).toEqual(Option.some("after"))
      }),
    120_000
  )
})
