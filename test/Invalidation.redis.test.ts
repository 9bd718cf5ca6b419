/**
 * Invalidation at scale on real Redis servers the harness starts: a tag covering 1,000,000 keys is
 * invalidated in a handful of commands (counted with `INFO commandstats`), none of them KEYS, SCAN
 * or SMEMBERS, and none slow enough for `SLOWLOG` at 1 ms; the same on a 3-master Cluster.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Schema } from "effect"
import { CacheStore } from "effect-cachekit/CacheStore"
import * as ReadThrough from "effect-cachekit/ReadThrough"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import { slotOf, SLOTS } from "../src/internal/redis/slot.js"
import { fixture } from "./harness/fixture.js"
import { redisCli, redisCluster, redisServer } from "./harness/redis.js"

const standalone = fixture(Effect.gen(function*() {
  const server = yield* redisServer()
  // a million keys on a machine shared with other tests: the client gets time, not the default deadline
  const redis = yield* Redis.make({ port: server.port, commandTimeout: "30 seconds" })
  return { ports: [server.port], redis }
}))

const cluster = fixture(Effect.gen(function*() {
  const c = yield* redisCluster()
  const redis = yield* Redis.makeCluster({ nodes: c.startupNodes, commandTimeout: "30 seconds" })
  // the masters: a replica counts again every write it applies
  const roles = yield* Effect.forEach(c.nodes, (n) => redisCli(n.port, "role"))
  return { ports: c.nodes.filter((_, i) => roles[i]!.startsWith("master")).map((n) => n.port), redis }
}))

/** Calls per command since the last reset, summed over the servers (`INFO commandstats`). */
const commandCalls = (ports: ReadonlyArray<number>) =>
  Effect.map(Effect.forEach(ports, (port) => redisCli(port, "info", "commandstats")), (infos) => {
    const calls = new Map<string, number>()
    for (const info of infos) {
      for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
        // the harness's own commands are not the cache's
        if (/^(info|config\|.*|slowlog\|.*|cluster\|.*|ping|command.*|replconf|client\|.*)$/.test(match[1]!)) continue
        calls.set(match[1]!, (calls.get(match[1]!) ?? 0) + Number(match[2]))
      }
    }
    return calls
  })

const resetStats = (ports: ReadonlyArray<number>) =>
  Effect.forEach(ports, (port) =>
    Effect.all([
      redisCli(port, "config", "resetstat"),
      redisCli(port, "config", "set", "slowlog-log-slower-than", "1000"),
      redisCli(port, "slowlog", "reset")
    ]), { discard: true })

const slowlogLength = (ports: ReadonlyArray<number>) =>
  Effect.map(
    Effect.forEach(ports, (port) => redisCli(port, "slowlog", "len")),
    (lens) => lens.reduce((n, s) => n + Number(s.trim()), 0)
  )

const dbsize = (ports: ReadonlyArray<number>) =>
  Effect.map(
    Effect.forEach(ports, (port) => redisCli(port, "dbsize")),
    (sizes) => sizes.reduce((n, s) => n + Number(s.trim()), 0)
  )

const TOTAL = 1_000_000

/** For each Cluster slot, a short hash tag that hashes to it. */
const slotTags: ReadonlyArray<string> = (() => {
  const tags = new Array<string>(SLOTS)
  let found = 0
  for (let n = 0; found < SLOTS; n++) {
    const tag = n.toString(36)
    const slot = slotOf(tag)
    if (tags[slot] === undefined) {
      tags[slot] = tag
      found++
    }
  }
  return tags
})()

/** The copies k0…k999999 split over the slots in runs: the indices of a slot, and a copy's slot. */
const perSlot = Math.ceil(1_000_000 / SLOTS)
const slotRange = Object.assign(
  (slot: number): readonly [number, number] => [slot * perSlot, Math.min(1_000_000, (slot + 1) * perSlot) - 1],
  { slotOfIndex: (i: number) => Math.floor(i / perSlot) }
)
const SAMPLE = 1_000

const Item = Schema.Struct({ id: Schema.String, n: Schema.Number })

/**
 * The scenario over one deployment: `fill` writes `TOTAL` copies of the entry of `seed` under
 * the keys k0…k999999 of the namespace (the envelope holds no key, so a copy is a valid entry).
 */
const scenario = (
  env: () => { readonly ports: ReadonlyArray<number>; readonly redis: Redis.RedisClientService },
  prefix: string,
  fill: (seedKey: string, keyPrefix: string) => Effect.Effect<void, unknown>,
  keyAt: (i: number) => string = (i) => `k${i}`
) =>
  Effect.gen(function*() {
    const { ports, redis } = env()
    // filling a million keys on a machine shared with other tests: time, not the default deadline
    const store = yield* Effect.provideService(
      RedisStore.make({ prefix, commandTimeout: "30 seconds" }),
      Redis.RedisClient,
      redis
    )
    let loads = 0
    const cache = yield* ReadThrough.make({
      namespace: "item",
      value: Item,
      lookup: (id: string) => Effect.sync(() => ({ id, n: ++loads })),
      ttl: "1 hour",
      tags: () => ["big"],
      onStoreError: "fail"
    }).pipe(Effect.provideService(CacheStore, store))
    yield* cache.get("seed")
    yield* fill(`${prefix}:item:seed`, `${prefix}:item:k`)
    expect(yield* dbsize(ports)).toBeGreaterThanOrEqual(TOTAL)
    const sample = Array.from({ length: SAMPLE }, (_, i) => keyAt(Math.floor(i * (TOTAL / SAMPLE)) + 7))
    // the copies are live entries of the tag: hits, no load
    const before = yield* cache.getMany(sample)
    expect(before.every((o) => Option.isSome(o) && o.value.n === 1)).toBe(true)
    expect(loads).toBe(1)

    yield* resetStats(ports)
    yield* cache.invalidateTag("big")
    const calls = yield* commandCalls(ports)
    const total = [...calls.values()].reduce((a, b) => a + b, 0)
    console.log(`invalidateTag over ${TOTAL.toLocaleString("en")} keys (${prefix}):`, Object.fromEntries(calls))
    expect(total).toBeLessThanOrEqual(5)
    for (const forbidden of ["keys", "scan", "smembers", "sscan", "unlink", "del"]) {
      expect(calls.get(forbidden) ?? 0, forbidden).toBe(0)
    }
    expect(yield* slowlogLength(ports)).toBe(0)
    // nothing was deleted: the entries are left to their TTL
    expect(yield* dbsize(ports)).toBeGreaterThanOrEqual(TOTAL)

    // every entry of the tag is a miss now: the sample loads again
    yield* resetStats(ports)
    const after = yield* cache.getMany(sample)
    expect(after.every((o) => Option.isSome(o) && o.value.n > 1)).toBe(true)
    expect(loads).toBe(1 + SAMPLE)
    console.log(
      `getMany of ${SAMPLE} of those keys after it (${prefix}):`,
      Object.fromEntries(yield* commandCalls(ports))
    )
  })

describe("invalidateTag at scale on real Redis", () => {
  it.scopedLive(
    `standalone: a tag over ${TOTAL.toLocaleString("en")} keys is invalidated in a handful of commands`,
    () =>
      scenario(standalone, "big", (seed, keyPrefix) =>
        Effect.gen(function*() {
          // a Lua loop on the server writes the copies in about a second
          const script = "local v = redis.call('GET', KEYS[1]) " +
            "for i = 0, tonumber(ARGV[1]) - 1 do redis.call('SET', ARGV[2] .. i, v) end return 1"
          const out = yield* redisCli(standalone().ports[0]!, "eval", script, "1", seed, String(TOTAL), keyPrefix)
          expect(out.trim()).toBe("1")
        })),
    180_000
  )

  it.scopedLive(
    `cluster: a tag over ${TOTAL.toLocaleString("en")} keys on every slot is invalidated in a handful of commands`,
    () =>
      scenario(
        cluster,
        "bigc",
        (seed) =>
          Effect.gen(function*() {
            // a script on a Cluster may only touch keys of one slot: one script per slot, each
            // writing that slot's share of the copies under keys with the slot's hash tag
            const client = cluster().redis.client
            const value = yield* Effect.promise(() => client.getBuffer(seed))
            const script = "for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do " +
              "redis.call('SET', KEYS[1] .. i, ARGV[3]) end return 1"
            yield* Effect.forEach(slotTags, (tag, slot) => {
              const [from, to] = slotRange(slot)
              return from > to
                ? Effect.void
                : Effect.promise(() => client.eval(script, 1, `bigc:item:{${tag}}:`, from, to, value!))
            }, { concurrency: 64, discard: true })
          }),
        (i) => `{${slotTags[slotRange.slotOfIndex(i)]}}:${i}`
      ),
    600_000
  )
})

describe("invalidatePattern on a Redis Cluster", () => {
  it.scopedLive("scans every master (never KEYS) and unlinks what matches in this namespace only", () =>
    Effect.gen(function*() {
      const { ports, redis } = cluster()
      // a page that times out on a loaded machine would follow the store-failure policy: give it
      // time, and make a failure fail the test instead of counting 0
      const store = yield* Effect.provideService(
        RedisStore.make({ prefix: "pat", commandTimeout: "10 seconds" }),
        Redis.RedisClient,
        redis
      )
      const make = (namespace: string) =>
        ReadThrough.make({
          namespace,
          value: Item,
          lookup: (id: string) => Effect.succeed({ id, n: 0 }),
          ttl: "1 hour",
          onStoreError: "fail"
        }).pipe(Effect.provideService(CacheStore, store))
      const users = yield* make("user")
      const others = yield* make("user:x")
      const keys = Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? `a:${i}` : `b:${i}`))
      yield* users.getMany(keys)
      yield* others.getMany(keys.slice(0, 300))
      yield* resetStats(ports)
      expect(yield* users.invalidatePattern("a:*")).toBe(1000)
      const calls = yield* commandCalls(ports)
      console.log("invalidatePattern of 1,000 of 3,000 keys on a Cluster:", Object.fromEntries(calls))
      expect(calls.get("keys") ?? 0).toBe(0)
      // every master was scanned
      for (const port of ports) {
        const info = yield* redisCli(port, "info", "commandstats")
        expect(info).toMatch(/cmdstat_scan:calls=\d+/)
      }
      expect(calls.get("unlink") ?? 0).toBeGreaterThan(0)
      // the rest of the namespace and the other namespace are untouched
      expect((yield* store.keys("user:b:*")).length).toBe(2000)
      expect((yield* store.keys("user\\\\:x:a:*")).length).toBe(100)
      expect((yield* store.keys("user:a:*")).length).toBe(0)
    }))
})
