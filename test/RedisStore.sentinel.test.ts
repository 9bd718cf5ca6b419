import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Either, Option } from "effect"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import * as Testing from "effect-cachekit/testing"
import { bytes, text } from "../src/internal/testing/bytes.js"
import { fixture } from "./harness/fixture.js"
import { eventually } from "./harness/process.js"
import { redisCli, redisSentinel } from "./harness/redis.js"

const env = fixture(Effect.gen(function*() {
  const group = yield* redisSentinel()
  const redis = yield* Redis.makeSentinel({
    sentinels: group.sentinels.map((s) => ({ host: s.host, port: s.port })),
    name: group.masterName
  })
  return { group, redis }
}))

const storeWith = (options: RedisStore.Options) =>
  Effect.provideService(RedisStore.make(options), Redis.RedisClient, env().redis)

Testing.storeSuite({ describe, expect, it }, "redis sentinel", {
  clock: "real",
  make: (prefix) => storeWith({ prefix })
})

describe("RedisStore through Redis Sentinel", () => {
  it.live("the store writes to the master the sentinels name", () =>
    Effect.gen(function*() {
      const { group } = env()
      const store = yield* storeWith({ prefix: "where" })
      yield* store.set("k", bytes("on-master"))
      const master = yield* group.currentMaster
      expect(master.port).toBe(group.master.port)
      expect((yield* redisCli(master.port, "get", "where:k")).trim()).toBe("on-master")
    }))

  // A group of its own: killing the shared group's master would change what the other tests see.
  it.scopedLive(
    "failover: the master killed, the replica promoted, the store follows it",
    () =>
      Effect.gen(function*() {
        const group = yield* redisSentinel()
        const redis = yield* Redis.makeSentinel({
          sentinels: group.sentinels.map((s) => ({ host: s.host, port: s.port })),
          name: group.masterName
        })
        const store = yield* Effect.provideService(RedisStore.make({ prefix: "failover" }), Redis.RedisClient, redis)
        yield* store.set("before", bytes("replicated"))
        yield* eventually(
          "the write reached the replica",
          Effect.map(redisCli(group.replica.port, "get", "failover:before"), (s) => s.trim() === "replicated")
        )
        let issued = 0
        let returned = 0
        const failures = new Map<string, number>()
        const probe = (i: number) =>
          Effect.gen(function*() {
            issued++
            const result = yield* Effect.either(
              Effect.zipRight(store.set(`during:${i}`, bytes(`${i}`)), store.get(`during:${i}`))
            )
            returned++
            if (Either.isRight(result)) return text(result.right)._tag === "Some"
            const label = result.left._tag === "StoreError" ? `StoreError/${result.left.reason}` : result.left._tag
            failures.set(label, (failures.get(label) ?? 0) + 1)
            return false
          })

        const killedAt = yield* Clock.currentTimeMillis
        yield* group.master.kill
        let served = false
        let i = 0
        // bounded: at most 30 s, one write+read every 50 ms
        while (!served && i < 600) {
          served = yield* probe(i++)
          if (!served) yield* Effect.sleep("50 millis")
        }
        const servedAt = yield* Clock.currentTimeMillis
        // what the sentinels and the replica say, so that a failed run shows which side did not move
        const view = yield* Effect.all({
          sentinels: Effect.forEach(
            group.sentinels,
            (s) => Effect.either(redisCli(s.port, "sentinel", "get-master-addr-by-name", group.masterName))
          ),
          role: Effect.either(redisCli(group.replica.port, "role"))
        })
        console.log(
          `sentinel failover: served again after ${servedAt - killedAt} ms, ${issued} calls, failures ${
            JSON.stringify(Object.fromEntries(failures))
          }; sentinels name ${
            view.sentinels.map((e) => e._tag === "Right" ? e.right.trim().split(/\s+/).join(":") : "?").join(", ")
          }; replica role ${
            view.role._tag === "Right" ? view.role.right.trim().split(/\s+/)[0] : "?"
          }; store client ${store.redis.client.status}`
        )
        expect(served).toBe(true)
        expect(returned).toBe(issued)
        for (const label of failures.keys()) expect(label).toMatch(/^StoreError\/(connection|timeout|unavailable)$/)
        const promoted = yield* group.currentMaster
        expect(promoted.port).toBe(group.replica.port)
        expect((yield* redisCli(group.replica.port, "role")).split("\n")[0]!.trim()).toBe("master")
        // the entry written before the crash survived on the promoted replica
        expect(text(yield* store.get("before"))).toEqual(Option.some("replicated"))
        expect((yield* redisCli(group.replica.port, "get", `failover:during:${i - 1}`)).trim()).toBe(String(i - 1))
      }),
    60_000
  )
})
