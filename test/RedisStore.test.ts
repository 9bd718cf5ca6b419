import { describe, expect, it } from "@effect/vitest"
import {
  ConfigProvider,
  Context,
  Duration,
  Effect,
  HashMap,
  Layer,
  Logger,
  Option,
  Redacted,
  Schema,
  TestClock
} from "effect"
import { Config } from "effect"
import { StoreError } from "effect-cachekit/CacheError"
import { CacheStore, getAndExpireOf } from "effect-cachekit/CacheStore"
import * as MemoryStore from "effect-cachekit/MemoryStore"
import * as ReadThrough from "effect-cachekit/ReadThrough"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import * as Testing from "effect-cachekit/testing"
import * as Ttl from "effect-cachekit/Ttl"
import { Redis as IoRedis } from "ioredis"
import * as util from "node:util"
import { createCluster, createSentinel } from "../src/internal/redis/client.js"
import { bytes, text } from "../src/internal/testing/bytes.js"
import { fixture } from "./harness/fixture.js"
import { freePort } from "./harness/process.js"
import { redisCli, redisServer } from "./harness/redis.js"

const env = fixture(Effect.gen(function*() {
  const server = yield* redisServer()
  const secured = yield* redisServer({ args: ["--requirepass", "s3cret pass"] })
  const redis = yield* Redis.make({ port: server.port })
  // a second client without auto-pipelining, for the store with batching turned off
  const plain = yield* Redis.make({ port: server.port, autoPipelining: false })
  return { server, secured, redis, plain }
}))

/** Runs `self` with a logger that keeps each line as `LEVEL message annotations`. */
const withLogLines = <A, E>(self: (lines: Array<string>) => Effect.Effect<A, E>) => {
  const lines: Array<string> = []
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    const text = Array.isArray(message) ? message.join(" ") : String(message)
    lines.push(`${logLevel.label} ${text} ${JSON.stringify(Object.fromEntries(HashMap.toEntries(annotations)))}`)
  })
  return Effect.provide(self(lines), Logger.replace(Logger.defaultLogger, logger))
}

/** JSON.stringify, with each object written once (a client holds cycles), so everything reachable is written. */
const stringifyCycles = (value: unknown): string => {
  const seen = new WeakSet<object>()
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === "bigint") return v.toString()
    if (typeof v === "object" && v !== null) {
      if (seen.has(v)) return "[seen]"
      seen.add(v)
    }
    return v
  }) ?? ""
}

Testing.storeSuite({ describe, expect, it }, "redis standalone", {
  clock: "real",
  make: (prefix) => Effect.provideService(RedisStore.make({ prefix }), Redis.RedisClient, env().redis)
})

Testing.storeSuite({ describe, expect, it }, "redis standalone, gets not batched, no auto-pipelining", {
  clock: "real",
  make: (prefix) => Effect.provideService(RedisStore.make({ prefix, batchGets: false }), Redis.RedisClient, env().plain)
})

const commandCalls = (port: number, command: string) =>
  Effect.map(redisCli(port, "info", "commandstats"), (info) => {
    const line = info.split(/\r?\n/).find((l) => l.startsWith(`cmdstat_${command}:`))
    return line === undefined ? 0 : Number(/calls=(\d+)/.exec(line)?.[1] ?? 0)
  })

describe("RedisStore on a standalone server", () => {
  it.scopedLive("store prefixes are escaped: store a + key b:k is not store a:b + key k, and clear keeps them apart", () =>
    Effect.gen(function*() {
      const { redis } = env()
      const a = yield* Effect.provideService(RedisStore.make({ prefix: "pa" }), Redis.RedisClient, redis)
      const ab = yield* Effect.provideService(RedisStore.make({ prefix: "pa:b" }), Redis.RedisClient, redis)
      yield* ab.set("k", bytes("of store pa:b"))
      expect(text(yield* a.get("b:k"))).toEqual(Option.none())
      yield* a.set("b:k", bytes("of store pa"))
      expect(text(yield* ab.get("k"))).toEqual(Option.some("of store pa:b"))
      yield* a.clear
      expect(text(yield* ab.get("k"))).toEqual(Option.some("of store pa:b"))
      expect(yield* ab.keys("*")).toEqual(["k"])
    }))

  it.live("concurrent single gets from many fibers share one MGET round trip", () =>
    Effect.gen(function*() {
      const { redis, server } = env()
      const store = yield* Effect.provideService(RedisStore.make({ prefix: "batch" }), Redis.RedisClient, redis)
      yield* store.setMany(Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, value: bytes(`v${i}`) })))
      yield* redisCli(server.port, "config", "resetstat")
      const results = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (i) => store.get(`k${i % 150}`), // 50 duplicates among them
        { concurrency: "unbounded" }
      )
      expect(results.map(text)).toEqual(Array.from({ length: 200 }, (_, i) => Option.some(`v${i % 150}`)))
      expect(yield* commandCalls(server.port, "get")).toBe(0)
      const mgets = yield* commandCalls(server.port, "mget")
      expect(mgets).toBeGreaterThanOrEqual(1)
      expect(mgets).toBeLessThanOrEqual(2)
    }))

  it.scopedLive("getMany and coalesced gets of ASCII, non-ASCII and unpaired-surrogate keys read what a plain client wrote", () =>
    Effect.gen(function*() {
      const { redis, server } = env()
      const store = yield* Effect.provideService(RedisStore.make({ prefix: "enc" }), Redis.RedisClient, redis)
      const raw = new IoRedis({ port: server.port, host: "127.0.0.1", lazyConnect: true })
      yield* Effect.addFinalizer(() => Effect.sync(() => raw.disconnect()))
      const keys = Array.from(
        { length: 120 },
        (_, i) => i % 4 === 0 ? `k${i}` : i % 4 === 1 ? `clé-${i}-😀` : i % 4 === 2 ? `x${i}\uD800` : `y${i}\uDC00z`
      )
      // every key written by the store, each value naming its key; one more written by a plain client
      yield* store.setMany(keys.map((key, i) => ({ key, value: bytes(`v${i}`) })))
      yield* Effect.promise(() => raw.set("enc:k0-other", "other"))
      const many = yield* store.getMany([...keys, "absent", "k0-other"])
      expect(many.map(text)).toEqual([...keys.map((_, i) => Option.some(`v${i}`)), Option.none(), Option.some("other")])
      const single = yield* Effect.forEach(keys, (key) => store.get(key), { concurrency: "unbounded" })
      expect(single.map(text)).toEqual(keys.map((_, i) => Option.some(`v${i}`)))
      // the ASCII and UTF-8 keys are where any client finds them
      expect(yield* Effect.promise(() => raw.get("enc:clé-1-😀"))).toBe("v1")
      expect(yield* Effect.promise(() => raw.get("enc:k4"))).toBe("v4")
    }))

  it.scopedLive("over a client with ioredis's own keyPrefix, getMany and gets read the keys the store wrote", () =>
    Effect.gen(function*() {
      const { server } = env()
      const client = yield* Redis.make({ port: server.port, ioredis: { keyPrefix: "outer:" } })
      const store = yield* Effect.provideService(RedisStore.make({ prefix: "kp" }), Redis.RedisClient, client)
      yield* store.setMany([{ key: "a", value: bytes("A") }, { key: "b", value: bytes("B") }])
      expect((yield* store.getMany(["a", "b", "c"])).map(text)).toEqual([
        Option.some("A"),
        Option.some("B"),
        Option.none()
      ])
      const both = yield* Effect.all([store.get("a"), store.get("b")], { concurrency: "unbounded" })
      expect(both.map(text)).toEqual([Option.some("A"), Option.some("B")])
      expect(yield* redisCli(server.port, "get", "outer:kp:a")).toBe("A\n")
    }))

  it.live("a batch larger than maxBatch is split into several MGETs, each reader still gets its own key", () =>
    Effect.gen(function*() {
      const { redis, server } = env()
      const store = yield* Effect.provideService(
        RedisStore.make({ prefix: "chunks", maxBatch: 7 }),
        Redis.RedisClient,
        redis
      )
      yield* store.setMany(Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: bytes(`v${i}`) })))
      yield* redisCli(server.port, "config", "resetstat")
      // 60 reads of 20 keys, with a missing key among them: three readers per key
      const results = yield* Effect.forEach(
        Array.from({ length: 63 }, (_, i) => i),
        (i) => store.get(`k${i % 21}`),
        { concurrency: "unbounded" }
      )
      expect(results.map(text)).toEqual(
        Array.from({ length: 63 }, (_, i) => i % 21 === 20 ? Option.none() : Option.some(`v${i % 21}`))
      )
      // 21 distinct keys, at most 7 per command: 3 MGETs when all reads share one batch
      const mgets = yield* commandCalls(server.port, "mget")
      expect(mgets).toBeGreaterThanOrEqual(3)
      expect(mgets).toBeLessThanOrEqual(6)
    }))

  it.live("getMany and deleteMany send at most maxBatch keys per command", () =>
    Effect.gen(function*() {
      const { redis, server } = env()
      const store = yield* Effect.provideService(
        RedisStore.make({ prefix: "chunked-many", maxBatch: 8 }),
        Redis.RedisClient,
        redis
      )
      yield* store.setMany(Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: bytes(`v${i}`) })))
      yield* redisCli(server.port, "config", "resetstat")
      const keys = Array.from({ length: 21 }, (_, i) => `k${i}`) // k20 is missing
      const values = yield* store.getMany(keys)
      expect(values.map(text)).toEqual(keys.map((_, i) => i === 20 ? Option.none() : Option.some(`v${i}`)))
      // 21 keys, 8 per command: 8 + 8 + 5
      expect(yield* commandCalls(server.port, "mget")).toBe(3)
      expect(yield* store.deleteMany(keys)).toBe(20)
      expect(yield* commandCalls(server.port, "unlink")).toBe(3)
      expect((yield* store.getMany(keys)).every(Option.isNone)).toBe(true)
    }))
  it.live("a value over maxValueBytes fails with ValueTooLarge and setMany writes nothing then", () =>
    Effect.gen(function*() {
      const store = yield* Effect.provideService(
        RedisStore.make({ prefix: "large", maxValueBytes: 1024 }),
        Redis.RedisClient,
        env().redis
      )
      const tooLarge = yield* Effect.flip(store.set("big", new Uint8Array(1025)))
      expect(tooLarge._tag).toBe("ValueTooLarge")
      expect(tooLarge._tag === "ValueTooLarge" && [tooLarge.size, tooLarge.limit]).toEqual([1025, 1024])
      const batch = yield* Effect.flip(store.setMany([
        { key: "ok", value: bytes("fine") },
        { key: "big", value: new Uint8Array(2048) }
      ]))
      expect(batch._tag).toBe("ValueTooLarge")
      expect(Option.isNone(yield* store.get("ok"))).toBe(true)
      yield* store.set("edge", new Uint8Array(1024))
      expect(Option.map(yield* store.get("edge"), (v) => (v as Uint8Array).byteLength)).toEqual(Option.some(1024))
      expect(store.capabilities.maxValueBytes).toBe(1024)
    }))

  it.live("keys are stored as <prefix>:<key>, visible to any other client", () =>
    Effect.gen(function*() {
      const { redis, server } = env()
      const store = yield* Effect.provideService(RedisStore.make({ prefix: "tenant-a" }), Redis.RedisClient, redis)
      yield* store.set("user:1", bytes("Ada"), "1 minute")
      expect((yield* redisCli(server.port, "get", "tenant-a:user:1")).trim()).toBe("Ada")
      const pttl = Number(yield* redisCli(server.port, "pttl", "tenant-a:user:1"))
      expect(pttl).toBeGreaterThan(0)
      expect(pttl).toBeLessThanOrEqual(60_000)
    }))

  it.scopedLive("random glob patterns list the same keys on Redis and on the memory store", () =>
    Effect.gen(function*() {
      const redis = yield* Effect.provideService(
        RedisStore.make({ prefix: "glob-fuzz" }),
        Redis.RedisClient,
        env().redis
      )
      const memory = yield* MemoryStore.make()
      yield* redis.clear
      // a seeded generator over the bytes a pattern treats specially, and two that are not ASCII
      let state = 7
      const next = (n: number) => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) % n
      const alphabet = ["a", "b", "c", "*", "?", "[", "]", "^", "!", "-", "\\", "é"]
      const draw = (length: number, from: ReadonlyArray<string>) =>
        Array.from({ length }, () => from[next(from.length)]!).join("")
      const keys = [...new Set(Array.from({ length: 200 }, () => draw(1 + next(5), alphabet)))]
      const entries = keys.map((key) => ({ key, value: bytes(key) }))
      yield* redis.setMany(entries)
      yield* memory.setMany(entries)
      let compared = 0
      for (let i = 0; i < 400; i++) {
        const pattern = draw(1 + next(6), alphabet)
        const [onRedis, onMemory] = yield* Effect.all([
          Effect.either(redis.keys(pattern)),
          Effect.either(memory.keys(pattern))
        ])
        // a pattern is refused by both stores or by neither
        expect(onRedis._tag, JSON.stringify(pattern)).toBe(onMemory._tag)
        if (onRedis._tag === "Right" && onMemory._tag === "Right") {
          expect([...onMemory.right].sort(), JSON.stringify(pattern)).toEqual([...onRedis.right].sort())
          compared++
        }
      }
      expect(compared).toBeGreaterThan(300)
    }))

  it.live("a TTL over the maximum is stored as the maximum, 365 days", () =>
    Effect.gen(function*() {
      const { redis, server } = env()
      const store = yield* Effect.provideService(RedisStore.make({ prefix: "ttl-max" }), Redis.RedisClient, redis)
      yield* store.set("huge", bytes("h"), 1e19)
      yield* store.set("touched", bytes("t"))
      expect(yield* store.expire("touched", Duration.days(5000))).toBe(true)
      for (const key of ["huge", "touched"]) {
        const pttl = Number(yield* redisCli(server.port, "pttl", `ttl-max:${key}`))
        expect(pttl, key).toBeGreaterThan(365 * 86_400_000 - 10_000)
        expect(pttl, key).toBeLessThanOrEqual(365 * 86_400_000)
      }
    }))

  it("nonsense options are rejected when the layer is built, with InvalidOptions", () => {
    const invalid = (f: () => unknown) => {
      try {
        f()
      } catch (e) {
        return (e as { _tag?: string })._tag
      }
      return "accepted"
    }
    expect(invalid(() => RedisStore.layer({ commandTimeout: -1 }))).toBe("InvalidOptions")
    expect(invalid(() => RedisStore.layer({ commandTimeout: "0 millis" }))).toBe("InvalidOptions")
    expect(invalid(() => RedisStore.layer({ url: "http://localhost:6379" }))).toBe("InvalidOptions")
    // a bad port is named as such, and the URL (which may hold a password) is never repeated
    for (const url of ["redis://127.0.0.1:99999", "redis://:s3cret@127.0.0.1:99999"]) {
      expect(() => RedisStore.layer({ url })).toThrow(/port 99999/)
      expect(() => RedisStore.layer({ url: Redacted.make(url) })).not.toThrow(/s3cret/)
    }
    expect(invalid(() => RedisStore.layer({ url: "redis://x:1", port: 2 }))).toBe("InvalidOptions")
    expect(invalid(() => RedisStore.layer({ port: 70_000 }))).toBe("InvalidOptions")
    expect(invalid(() => RedisStore.layer({ maxValueBytes: 0 }))).toBe("InvalidOptions")
    expect(invalid(() => RedisStore.layer({ maxValueBytes: 1024 * 1024 * 1024 }))).toBe("InvalidOptions")
    expect(invalid(() => RedisStore.layer({ circuitBreaker: { failureThreshold: 0 } }))).toBe("InvalidOptions")
    expect(invalid(() => RedisStore.layer({ circuitBreaker: { resetAfter: -5 } }))).toBe("InvalidOptions")
    expect(invalid(() => RedisStore.layer({ maxBatch: 1.5 }))).toBe("InvalidOptions")
    expect(invalid(() => RedisStore.layerCluster({ nodes: [] }))).toBe("InvalidOptions")
    expect(invalid(() => RedisStore.layerCluster({ nodes: ["no-port"] }))).toBe("InvalidOptions")
    expect(invalid(() => RedisStore.layerSentinel({ sentinels: [{ host: "127.0.0.1", port: 26379 }], name: "" })))
      .toBe("InvalidOptions")
    expect(invalid(() => RedisStore.make({ prefix: 3 as unknown as string }))).toBe("InvalidOptions")
    expect(invalid(() => RedisStore.layer({ port: 6380, commandTimeout: "250 millis", prefix: "x" }))).toBe("accepted")
  })

  it.live("layerConfig reads the URL, a Redacted password and the prefix from the environment", () =>
    Effect.gen(function*() {
      const { secured } = env()
      const provider = ConfigProvider.fromMap(
        new Map([
          ["REDIS_HOST", "127.0.0.1"],
          ["REDIS_PORT", String(secured.port)],
          ["REDIS_PASSWORD", "s3cret pass"],
          ["CACHE_PREFIX", "from-env"]
        ])
      )
      const StoreLive = RedisStore.layerConfig({
        host: Config.string("REDIS_HOST"),
        port: Config.integer("REDIS_PORT"),
        password: Config.redacted("REDIS_PASSWORD"),
        prefix: Config.string("CACHE_PREFIX")
      })
      const got = yield* Effect.gen(function*() {
        const store = yield* CacheStore
        yield* store.set("k", bytes("configured"))
        return text(yield* store.get("k"))
      }).pipe(Effect.provide(StoreLive), Effect.withConfigProvider(provider))
      expect(got).toEqual(Option.some("configured"))
      expect((yield* redisCli(secured.port, "-a", "s3cret pass", "--no-auth-warning", "get", "from-env:k")).trim())
        .toBe("configured")
    }))

  it.live("the password never prints from the store, its client service or the client, however it was given", () =>
    Effect.gen(function*() {
      const { secured } = env()
      const secret = "s3cret pass"
      const url = `redis://:${encodeURIComponent(secret)}@127.0.0.1:${secured.port}`
      const layers = [
        RedisStore.layer({ port: secured.port, password: secret }),
        RedisStore.layer({ port: secured.port, password: Redacted.make(secret) }),
        RedisStore.layer({ url: Redacted.make(url) }),
        RedisStore.layer({ url })
      ]
      for (const layer of layers) {
        yield* Effect.scoped(Effect.gen(function*() {
          const store = Context.get(yield* Layer.build(layer), CacheStore) as RedisStore.RedisStore
          // connected and authenticated: the password has been used
          yield* store.set("k", bytes("v"))
          for (const value of [store, store.redis, store.redis.client]) {
            const printed = [util.inspect(value, { depth: Infinity }), stringifyCycles(value)]
            for (const text of printed) {
              expect(text).not.toContain("s3cret")
              expect(text).not.toContain(encodeURIComponent(secret))
            }
          }
        }))
      }
    }))

  it("cluster and Sentinel clients keep their credentials unprintable too", () => {
    const secret = Redacted.make("s3cret")
    const cluster = createCluster({ nodes: ["127.0.0.1:1"], password: "s3cret", username: Redacted.make("s3cret-u") })
    const sentinel = createSentinel({
      sentinels: ["127.0.0.1:1"],
      name: "main",
      password: secret,
      sentinelPassword: secret
    })
    // the credentials are still what the clients send
    expect(String(cluster.options.redisOptions?.password)).toBe("s3cret")
    expect(String(sentinel.options.sentinelPassword)).toBe("s3cret")
    for (const client of [cluster, sentinel]) {
      expect(util.inspect(client, { depth: Infinity })).not.toContain("s3cret")
      expect(stringifyCycles(client)).not.toContain("s3cret")
      client.disconnect()
    }
  })

  it.live("a wrong password: calls fail with reason auth, one warning says the credentials were refused, no reconnect storm", () =>
    withLogLines((lines) =>
      Effect.gen(function*() {
        const { secured } = env()
        const connections = Effect.map(
          redisCli(secured.port, "-a", "s3cret pass", "--no-auth-warning", "info", "stats"),
          (info) => Number(/total_connections_received:(\d+)/.exec(info)?.[1])
        )
        yield* Effect.scoped(Effect.gen(function*() {
          const context = yield* Layer.build(
            RedisStore.layer({ port: secured.port, password: Redacted.make("wrong"), prefix: "wrongpass" })
          )
          const store = Context.get(context, CacheStore)
          for (const call of [store.get("k"), store.set("k", bytes("v")), store.getMany(["a", "b"])]) {
            const error = yield* Effect.flip(call)
            expect(error).toMatchObject({ _tag: "StoreError", reason: "auth" })
            expect(error.message).toContain("WRONGPASS")
            expect(error.message).toContain(`127.0.0.1:${secured.port}`)
            expect(error.message).not.toContain("wrong")
          }
          // ioredis would reconnect (and be refused) every 50 ms; one attempt in 1.5 s at most now
          const before = yield* connections
          yield* Effect.sleep("1500 millis")
          expect((yield* connections) - before).toBeLessThanOrEqual(1)
        }))
        const warnings = lines.filter((l) => l.startsWith("WARN"))
        expect(warnings.filter((l) => l.includes("refused the credentials")).length).toBe(1)
        expect(warnings.filter((l) => l.includes("not reachable") || l.includes("connection lost"))).toEqual([])
      })
    ))

  it.live("a call made while disconnected says so in our words: offlineQueue, and the server's address", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const error = yield* Effect.scoped(Effect.gen(function*() {
        const store = Context.get(yield* Layer.build(RedisStore.layer({ port, prefix: "down" })), CacheStore)
        return yield* Effect.flip(store.get("k"))
      }))
      expect(error).toMatchObject({ _tag: "StoreError", reason: "connection" })
      expect(error.message).toContain(`127.0.0.1:${port}`)
      expect(error.message).toContain("offlineQueue")
      expect(error.message).not.toContain("enableOfflineQueue")
    }))

  it.live("a layer closes the client it created; layerFromClient leaves the caller's client open", () =>
    Effect.gen(function*() {
      const { server } = env()
      const owned = yield* Effect.scoped(Effect.gen(function*() {
        const ctx = yield* Layer.build(RedisStore.layer({ port: server.port }))
        const store = ctx.unsafeMap.get(CacheStore.key) as RedisStore.RedisStore
        yield* store.set("owned", bytes("x"))
        return store.redis.client
      }))
      expect(owned.status).toBe("end")

      const mine = new IoRedis({ port: server.port, host: "127.0.0.1", lazyConnect: true })
      yield* Effect.promise(() => mine.connect())
      yield* Effect.scoped(Effect.gen(function*() {
        const ctx = yield* Layer.build(RedisStore.layerFromClient(Effect.succeed(mine), { prefix: "byo" }))
        const store = ctx.unsafeMap.get(CacheStore.key) as RedisStore.RedisStore
        yield* store.set("k", bytes("mine"))
        expect(text(yield* store.get("k"))).toEqual(Option.some("mine"))
      }))
      expect(mine.status).toBe("ready")
      expect(yield* Effect.promise(() => mine.get("byo:k"))).toBe("mine")
      yield* Effect.promise(() => mine.quit())
    }))
})

const User = Schema.Struct({ id: Schema.String, name: Schema.String })

describe("ReadThrough over RedisStore (standalone)", () => {
  const users = (ttl: "1 minute" | "300 millis") =>
    Effect.gen(function*() {
      const store = yield* Effect.provideService(
        RedisStore.make({ prefix: `rt-${ttl.replace(" ", "")}` }),
        Redis.RedisClient,
        env().redis
      )
      yield* store.clear
      const loaded: Array<string> = []
      const cache = yield* ReadThrough.make({
        namespace: "user",
        value: User,
        ttl,
        lookup: (id: string) =>
          Effect.sync(() => {
            loaded.push(id)
            return { id, name: `user ${id}` }
          })
      }).pipe(Effect.provideService(CacheStore, store))
      return { cache, loaded, store }
    })

  it.scopedLive("a miss loads and writes to Redis; the next get is a hit served from Redis", () =>
    Effect.gen(function*() {
      const { cache, loaded, store } = yield* users("1 minute")
      expect(yield* cache.get("42")).toEqual({ id: "42", name: "user 42" })
      expect(yield* cache.get("42")).toEqual({ id: "42", name: "user 42" })
      expect(loaded).toEqual(["42"])
      const stats = yield* cache.stats
      expect([stats.hits, stats.misses, stats.loads, stats.storeErrors]).toEqual([1, 1, 1, 0])
      expect(yield* store.keys("user:*")).toEqual(["user:42"])
      const pttl = Number(yield* redisCli(env().server.port, "pttl", `${store.prefix}:user:42`))
      expect(pttl).toBeGreaterThan(0)
    }))

  it.scopedLive("entries expire with their TTL in real time, and the next get loads again", () =>
    Effect.gen(function*() {
      const { cache, loaded } = yield* users("300 millis")
      yield* cache.get("7")
      yield* cache.get("7")
      expect(loaded).toEqual(["7"])
      yield* Effect.sleep("500 millis")
      yield* cache.get("7")
      expect(loaded).toEqual(["7", "7"])
    }))

  it.scopedLive("getMany mixes hits and misses in one round trip and loads only the misses", () =>
    Effect.gen(function*() {
      const { cache, loaded } = yield* users("1 minute")
      yield* cache.get("a")
      const got = yield* cache.getMany(["a", "b", "c"])
      expect(got.map((u) => Option.getOrThrow(u).id)).toEqual(["a", "b", "c"])
      expect([...loaded].sort()).toEqual(["a", "b", "c"])
      expect((yield* cache.getMany(["a", "b", "c"])).map((u) => Option.getOrThrow(u).name)).toEqual([
        "user a",
        "user b",
        "user c"
      ])
      expect(loaded.length).toBe(3)
    }))

  it.scopedLive("concurrent gets of many fibers are answered from one MGET, each with its own value", () =>
    Effect.gen(function*() {
      const { cache, loaded } = yield* users("1 minute")
      const ids = Array.from({ length: 150 }, (_, i) => `u${i}`)
      yield* cache.getMany(ids)
      yield* redisCli(env().server.port, "config", "resetstat")
      const got = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => ids[i % 150]!),
        (id) => cache.get(id),
        { concurrency: "unbounded" }
      )
      expect(got.map((u) => u.id)).toEqual(Array.from({ length: 200 }, (_, i) => ids[i % 150]))
      expect(loaded.length).toBe(150)
      expect((yield* cache.stats).hits).toBe(200)
      const mgets = yield* commandCalls(env().server.port, "mget")
      expect(mgets).toBeGreaterThanOrEqual(1)
      expect(mgets).toBeLessThanOrEqual(2)
    }))

  it.scopedLive("bytes that do not decode are a miss: the loader runs and rewrites the entry", () =>
    Effect.gen(function*() {
      const { cache, loaded, store } = yield* users("1 minute")
      yield* redisCli(env().server.port, "set", `${store.prefix}:user:9`, "not an entry")
      expect(yield* cache.get("9")).toEqual({ id: "9", name: "user 9" })
      expect(loaded).toEqual(["9"])
      expect((yield* cache.stats).decodeFailures).toBe(1)
      expect(yield* cache.get("9")).toEqual({ id: "9", name: "user 9" })
      expect(loaded).toEqual(["9"])
    }))

  it.scopedLive("a copy of the store with its get replaced is read through that get, not around it", () =>
    Effect.gen(function*() {
      const { store } = yield* users("1 minute")
      const failing: typeof store = {
        ...store,
        get: () =>
          Effect.fail(new StoreError({ store: "redis", operation: "get", reason: "connection", detail: "injected" }))
      }
      yield* store.set("user:5", bytes("junk"))
      const cache = yield* ReadThrough.make({
        namespace: "user",
        value: User,
        ttl: "1 minute",
        lookup: (id: string) => Effect.succeed({ id, name: `loaded ${id}` })
      }).pipe(Effect.provideService(CacheStore, failing))
      expect(yield* cache.get("5")).toEqual({ id: "5", name: "loaded 5" })
      const stats = yield* cache.stats
      expect([stats.storeErrors, stats.decodeFailures]).toEqual([1, 0])
    }))

  it.scopedLive("a failed read loads the value, or fails with the StoreError when onStoreError is fail", () =>
    Effect.gen(function*() {
      const { secured } = env()
      const client = yield* Redis.make({ port: secured.port, password: Redacted.make("wrong") })
      const store = yield* Effect.provideService(RedisStore.make({ prefix: "auth" }), Redis.RedisClient, client)
      const make = (onStoreError: "fallback" | "fail") =>
        ReadThrough.make({
          namespace: onStoreError,
          value: User,
          ttl: "1 minute",
          onStoreError,
          lookup: (id: string) => Effect.succeed({ id, name: `loaded ${id}` })
        }).pipe(Effect.provideService(CacheStore, store))
      const fallback = yield* make("fallback")
      expect(yield* fallback.get("1")).toEqual({ id: "1", name: "loaded 1" })
      expect((yield* fallback.stats).storeErrors).toBeGreaterThanOrEqual(1)
      const strict = yield* make("fail")
      const error = yield* Effect.flip(strict.get("1"))
      expect(error._tag).toBe("StoreError")
    }))
})

describe("Ttl.sliding over RedisStore (standalone)", () => {
  const sliding = (prefix: string, ttl: Ttl.Ttl<unknown>) =>
    Effect.gen(function*() {
      const store = yield* Effect.provideService(RedisStore.make({ prefix }), Redis.RedisClient, env().redis)
      yield* store.clear
      let loads = 0
      const cache = yield* ReadThrough.make({
        namespace: "session",
        value: Schema.String,
        ttl,
        lookup: (id: string) => Effect.sync(() => `${id}#${++loads}`)
      }).pipe(Effect.provideService(CacheStore, store))
      return { cache, store, loads: () => loads }
    })
  const calls = (command: string) => commandCalls(env().server.port, command)

  it.scoped("one command per sliding hit: GETEX when the extension is due, a plain MGET otherwise", () =>
    Effect.gen(function*() {
      const { cache, loads, store } = yield* sliding("slide-count", Ttl.sliding("1 minute", { max: "1 hour" }))
      const port = env().server.port
      expect(yield* cache.get("s")).toBe("s#1")
      // shorten the entry's life in Redis: an extension shows in its TTL
      expect(yield* store.expire("session:s", "5 seconds")).toBe(true)
      yield* redisCli(port, "config", "resetstat")
      for (let i = 0; i < 10; i++) expect(yield* cache.get("s")).toBe("s#1")
      // the first hit of this process extends (GETEX), the next nine are within the debounce (6 s)
      expect([yield* calls("getex"), yield* calls("mget")]).toEqual([1, 9])
      expect(Number(yield* redisCli(port, "pttl", `${store.prefix}:session:s`))).toBeGreaterThan(55_000)
      yield* TestClock.adjust("10 seconds")
      for (let i = 0; i < 10; i++) expect(yield* cache.get("s")).toBe("s#1")
      const commands = {
        getex: yield* calls("getex"),
        mget: yield* calls("mget"),
        get: yield* calls("get"),
        pexpire: yield* calls("pexpire"),
        set: yield* calls("set")
      }
      expect(commands).toEqual({ getex: 2, mget: 18, get: 0, pexpire: 0, set: 0 })
      expect(commands.getex + commands.mget).toBe(20) // 20 hits, 20 commands
      expect(loads()).toBe(1)
    }))

  it.scopedLive("in real time: an entry read more often than its slide stays, an idle one is gone", () =>
    Effect.gen(function*() {
      const { cache, loads } = yield* sliding(
        "slide-idle",
        Ttl.sliding("400 millis", { max: "1 minute", debounce: 0 })
      )
      yield* cache.get("s")
      for (let i = 0; i < 6; i++) {
        yield* Effect.sleep("150 millis")
        expect(yield* cache.get("s")).toBe("s#1")
      }
      yield* Effect.sleep("700 millis")
      expect(yield* cache.get("s")).toBe("s#2")
      expect(loads()).toBe(2)
    }))

  it.scopedLive("getAndExpire reads and sets the TTL in one command; a missing key stays missing", () =>
    Effect.gen(function*() {
      const store = yield* Effect.provideService(RedisStore.make({ prefix: "getex" }), Redis.RedisClient, env().redis)
      const port = env().server.port
      yield* store.set("k", bytes("v"), "2 seconds")
      const touch = getAndExpireOf(store)!
      expect(text(yield* touch.read("k", "1 minute"))).toEqual(Option.some("v"))
      expect(Number(yield* redisCli(port, "pttl", `${store.prefix}:k`))).toBeGreaterThan(58_000)
      expect(text(yield* touch.read("k", Duration.infinity))).toEqual(Option.some("v"))
      expect(Number(yield* redisCli(port, "pttl", `${store.prefix}:k`))).toBe(-1)
      expect(Option.isNone(yield* touch.read("missing", "1 minute"))).toBe(true)
      expect(yield* redisCli(port, "exists", `${store.prefix}:missing`)).toMatch(/^0/)
      expect(text(yield* touch.read("k", 0))).toEqual(Option.some("v"))
      expect(Option.isNone(yield* store.get("k"))).toBe(true)
    }))
})
