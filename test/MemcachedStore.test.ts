/**
 * The memcached store against real memcached processes: the conformance suite on one server and
 * on a ring of three, hostile keys and values, batching per server, TTL encoding, the generation
 * behind `clear`, options, and failover when a server dies mid-flight and comes back.
 */
import { describe, expect, it } from "@effect/vitest"
import { Config, ConfigProvider, Duration, Effect, Either, Fiber, Layer, Option, Schema } from "effect"
import { ReadThrough } from "effect-cachekit"
import { CacheStore, directReadOf, getAndExpireOf } from "effect-cachekit/CacheStore"
import type { Value } from "effect-cachekit/CacheStore"
import * as HashRing from "effect-cachekit/HashRing"
import * as MemcachedStore from "effect-cachekit/MemcachedStore"
import * as Testing from "effect-cachekit/testing"
import * as Ttl from "effect-cachekit/Ttl"
import { bytes, text } from "../src/internal/testing/bytes.js"
import { fixture } from "./harness/fixture.js"
import { rawCommand, startMemcached, startMemcacheds } from "./harness/memcached.js"
import { eventually } from "./harness/process.js"
import { freePort } from "./harness/process.js"

const servers = fixture(startMemcacheds(3))
const addresses = () => servers().map((s) => s.address)

// memcached keeps time in whole seconds and expires an item when its clock ticks past the
// deadline, so a 1 s TTL can lapse at once; 2 s leaves at least one full second.
const ttlOptions = { clock: "real", shortTtl: "2 seconds", shortTtlWait: "2300 millis" } as const

Testing.storeSuite({ describe, expect, it }, "memcached, one server", {
  make: (prefix) => MemcachedStore.make({ servers: [addresses()[0]!], prefix }),
  ...ttlOptions
})

Testing.storeSuite({ describe, expect, it }, "memcached, ring of three", {
  make: (prefix) => MemcachedStore.make({ servers: addresses(), prefix }),
  ...ttlOptions
})

/**
 * A server of a ring of two that the prefix's generation key does not hash to: losing it changes
 * no generation and moves only its own keys.
 */
const notHoldingGeneration = <S extends { readonly address: string; readonly port: number }>(
  cluster: ReadonlyArray<S>,
  prefix: string
): S => {
  const owner = Option.getOrThrow(
    HashRing.get(
      HashRing.make(cluster.map((s) => ({ name: HashRing.serverName("127.0.0.1", s.port), node: s.address }))),
      `${prefix}:gen`
    )
  )
  return cluster.find((s) => s.address !== owner)!
}

/** A ReadThrough over a store whose loader answers `<key>#<n>` for its n-th load, and the loads so far. */
const countingCache = (store: CacheStore["Type"]) => {
  let calls = 0
  return Effect.map(
    ReadThrough.make({
      namespace: "item",
      value: Schema.String,
      lookup: (key: string) => Effect.sync(() => `${key}#${++calls}`),
      ttl: "5 minutes"
    }).pipe(Effect.provideService(CacheStore, store)),
    (cache) => ({ cache, loads: () => calls })
  )
}

let run = 0
const uniquePrefix = (label: string) => `ms-${process.pid}-${Date.now().toString(36)}-${run++}-${label}`

/** The TTL memcached reports for a key of a store (`mg … t`): whole seconds, -1 for none. */
/**
 * How far memcached's remaining TTL may run over the TTL sent. Its clock ticks once a second, on
 * the monotonic clock, while a TTL over 30 days is sent as (and converted from) wall-clock unix
 * time: the two clocks' sub-second phases and a late tick add up to about two seconds.
 */
const clockSlack = 3

const remainingTtl = (port: number, store: MemcachedStore.MemcachedStore) => (key: string) =>
  Effect.map(
    rawCommand(port, `mg ${store.prefix}:${store.generation()}:${key} t\r\n`),
    (line) => Number(/t(-?\d+)/.exec(line)?.[1])
  )

describe("MemcachedStore", () => {
  it.scopedLive("lock: two handles' stale reads of one key start one refresh load, through the win on the entry (R)", () =>
    Effect.gen(function*() {
      const store = yield* MemcachedStore.make({ servers: addresses(), prefix: uniquePrefix("lease-swr") })
      const loads: Array<string> = []
      const handle = (label: string) =>
        ReadThrough.make({
          namespace: "n",
          value: Schema.String,
          lookup: (key: string) =>
            Effect.sync(() => loads.push(label)).pipe(
              Effect.flatMap((n) => Effect.as(Effect.sleep("300 millis"), `${label}:${key}:${n}`))
            ),
          ttl: "2 seconds",
          staleWhileRevalidate: "1 minute",
          lock: { ttl: "3 seconds", wait: "5 seconds" }
        }).pipe(Effect.provideService(CacheStore, store))
      const first = yield* handle("a")
      const second = yield* handle("b")
      expect(yield* first.get("k")).toBe("a:k:1")
      yield* Effect.sleep("2100 millis")
      // both stale: each handle serves the old value and starts a refresh; one wins the lease
      const [a, b] = yield* Effect.all([first.get("k"), second.get("k")], { concurrency: "unbounded" })
      expect([a, b]).toEqual(["a:k:1", "a:k:1"])
      yield* eventually(
        "the refreshed value",
        Effect.map(Effect.all([first.get("k"), second.get("k")]), ([x, y]) => x !== "a:k:1" && x === y)
      )
      expect(loads.length).toBe(2)
      // the refresh wrote the entry, which ended the win: the next refresh can win again
      yield* Effect.sleep("2100 millis")
      yield* first.get("k")
      yield* eventually("a second refresh", Effect.sync(() => loads.length === 3))
    }))

  it.scopedLive("hostile keys round-trip without reaching the protocol raw; nothing is flushed", () =>
    Effect.gen(function*() {
      const port = servers()[0]!.port
      const store = yield* MemcachedStore.make({
        servers: [addresses()[0]!],
        prefix: uniquePrefix("keys"),
        poolSize: 1
      })
      const sentinel = `sentinel-${Date.now()}`
      expect(yield* rawCommand(port, `ms ${sentinel} 2\r\nok\r\n`)).toBe("HD\r\n")
      const hostile = [
        "a\r\nflush_all\r\n",
        "b\r\nms evil 1\r\nx",
        "c mg other v",
        "d\u0000e",
        "\r\n",
        " ",
        "k".repeat(251),
        "é".repeat(200),
        "#starts-with-the-hash-mark",
        "x".repeat(1_000_000)
      ]
      // other callers on the same connection while the hostile keys go by
      yield* store.set("neighbour", bytes("n"))
      const results = yield* Effect.forEach(
        hostile,
        (key, i) =>
          Effect.zipRight(
            store.set(key, bytes(`hostile-${i}`)),
            Effect.all([store.get(key), store.get("neighbour")])
          ),
        { concurrency: "unbounded" }
      )
      results.forEach(([own, neighbour], i) => {
        expect(text(own)).toEqual(Option.some(`hostile-${i}`))
        expect(text(neighbour)).toEqual(Option.some("n"))
      })
      // keys that differ only far past any limit stay distinct
      yield* store.set("k".repeat(251) + "!", bytes("other"))
      expect(text(yield* store.get("k".repeat(251)))).toEqual(Option.some(`hostile-6`))
      expect(yield* rawCommand(port, `mg ${sentinel} v\r\n`)).toBe("VA 2\r\nok\r\n")
      expect(yield* rawCommand(port, "mg evil v\r\n")).toBe("EN\r\n")
      expect((yield* store.getMany(hostile)).map(text)).toEqual(hostile.map((_, i) => Option.some(`hostile-${i}`)))
      expect(yield* store.deleteMany(hostile)).toBe(hostile.length)
    }))

  it.scopedLive("a 2 MB value fails with ValueTooLarge before sending, an empty one round-trips, the connection keeps serving", () =>
    Effect.gen(function*() {
      const store = yield* MemcachedStore.make({
        servers: [addresses()[0]!],
        prefix: uniquePrefix("values"),
        poolSize: 1
      })
      yield* store.set("before", bytes("kept"))
      const big = new Uint8Array(2 * 1024 * 1024)
      const results = yield* Effect.all(
        [Effect.either(store.set("big", big)), store.get("before"), Effect.either(store.setIfAbsent("big", big))],
        { concurrency: "unbounded" }
      )
      const [tooBig, neighbour, tooBigNx] = results
      expect(Either.isLeft(tooBig) && tooBig.left).toMatchObject({ _tag: "ValueTooLarge", size: big.byteLength })
      expect(Either.isLeft(tooBigNx) && tooBigNx.left._tag).toBe("ValueTooLarge")
      expect(text(neighbour)).toEqual(Option.some("kept"))
      // setMany checks every entry first: nothing of the batch is written
      const batch = yield* Effect.either(
        store.setMany([{ key: "m1", value: bytes("1") }, { key: "m2", value: big }, { key: "m3", value: bytes("3") }])
      )
      expect(Either.isLeft(batch) && batch.left._tag).toBe("ValueTooLarge")
      expect((yield* store.getMany(["m1", "m3"])).every(Option.isNone)).toBe(true)
      const notBytes = yield* Effect.either(
        store.setMany([{ key: "m1", value: bytes("1") }, { key: "m4", value: { a: 1 } }])
      )
      expect(Either.isLeft(notBytes) && notBytes.left._tag).toBe("EncodeError")
      expect(Option.isNone(yield* store.get("m1"))).toBe(true)
      // the largest value the store promises fits
      const limit = store.capabilities.maxValueBytes!
      yield* store.set("k".repeat(300), new Uint8Array(limit))
      expect((Option.getOrThrow(yield* store.get("k".repeat(300))) as Uint8Array).byteLength).toBe(limit)
      yield* store.set("empty", new Uint8Array(0))
      expect((Option.getOrThrow(yield* store.get("empty")) as Uint8Array).byteLength).toBe(0)
      expect(text(yield* store.get("before"))).toEqual(Option.some("kept"))
    }))

  it.scopedLive("an error line fails the calls in flight with typed errors but does not take the server out", () =>
    Effect.gen(function*() {
      // told the servers take 4 MB items, the store sends a 2 MB value, which memcached (1 MB)
      // refuses with SERVER_ERROR; the gets sharing the connection fail with it, typed
      const store = yield* MemcachedStore.make({
        servers: addresses(),
        prefix: uniquePrefix("errorline"),
        poolSize: 1,
        maxValueBytes: 4 * 1024 * 1024,
        circuitBreaker: { failureThreshold: 2, resetAfter: "30 seconds" }
      })
      const keys = Array.from({ length: 60 }, (_, i) => `k${i}`)
      yield* store.setMany(keys.map((key) => ({ key, value: bytes(key) })))
      const big = keys.find((k) => Option.getOrThrow(store.serverFor(k)) === addresses()[0])!
      const neighbours = keys.filter((k) => k !== big && Option.getOrThrow(store.serverFor(k)) === addresses()[0])
      const results = yield* Effect.all(
        [
          Effect.either(store.set(big, new Uint8Array(2 * 1024 * 1024))),
          ...neighbours.map((k) => Effect.either(store.get(k)))
        ],
        { concurrency: "unbounded" }
      )
      const [write, ...reads] = results
      expect(Either.isLeft(write!) && write.left).toMatchObject({ _tag: "StoreError", reason: "command" })
      reads.forEach((r, i) => {
        if (Either.isRight(r)) expect(text(r.right as Option.Option<Value>)).toEqual(Option.some(neighbours[i]))
        else expect(r.left).toMatchObject({ _tag: "StoreError", reason: "connection" })
      })
      expect(store.liveServers()).toEqual(addresses())
      yield* eventually("the connection to reopen", Effect.map(store.get(neighbours[0]!), (v) => Option.isSome(v)))
      // memcached drops the old item when a set fails for size; every other key is intact
      expect((yield* store.getMany(keys)).map(text)).toEqual(
        keys.map((k) => k === big ? Option.none() : Option.some(k))
      )
      expect(store.liveServers()).toEqual(addresses())
    }))

  it.scopedLive("1,500 direct reads of distinct keys in one tick, past the pool's spill point, each get their own value", () =>
    Effect.gen(function*() {
      const store = yield* MemcachedStore.make({ servers: addresses(), prefix: uniquePrefix("burst"), poolSize: 2 })
      const keys = Array.from({ length: 1500 }, (_, i) => `k${i}`)
      // every fourth key is never written: misses are interleaved with hits in the same writes
      yield* store.setMany(keys.filter((_, i) => i % 4 !== 0).map((key) => ({ key, value: bytes(`v:${key}`) })))
      const direct = directReadOf(store)
      if (direct?._tag !== "Callback") throw new Error("the memcached store offers a callback read")
      const answers = yield* Effect.async<Array<string>>((resume) => {
        const out = new Array<string>(keys.length)
        let left = keys.length
        keys.forEach((key, i) =>
          direct.read(key, (value, error) => {
            out[i] = error !== undefined ?
              `error ${error._tag}` :
              value === null ?
              "miss" :
              text(Option.some(value)).pipe(
                Option.getOrElse(() => "?")
              )
            if (--left === 0) resume(Effect.succeed(out))
          })
        )
      })
      expect(answers).toEqual(keys.map((key, i) => i % 4 === 0 ? "miss" : `v:${key}`))
      // and through the store's own get, all at once
      const gets = yield* Effect.forEach(keys, (key) => store.get(key), { concurrency: "unbounded" })
      expect(gets.map(text)).toEqual(keys.map((key, i) => i % 4 === 0 ? Option.none() : Option.some(`v:${key}`)))
    }))

  it.scopedLive("after clear, reads of keys read before see the new generation's entries, not the old ones", () =>
    Effect.gen(function*() {
      const store = yield* MemcachedStore.make({ servers: addresses(), prefix: uniquePrefix("regen") })
      const { cache, loads } = yield* countingCache(store)
      const keys = Array.from({ length: 50 }, (_, i) => `k${i}`)
      const first = yield* Effect.forEach(keys, (k) => cache.get(k), { concurrency: "unbounded" })
      first.forEach((v, i) => expect(v).toMatch(new RegExp(`^k${i}#\\d+$`)))
      // read again: hits, so the keys' wire forms are remembered
      expect(yield* Effect.forEach(keys, (k) => cache.get(k), { concurrency: "unbounded" })).toEqual(first)
      expect(loads()).toBe(50)
      yield* store.clear
      // the new generation holds nothing: every key loads again, and what it loads is read back
      const second = yield* Effect.forEach(keys, (k) => cache.get(k), { concurrency: "unbounded" })
      expect(loads()).toBe(100)
      second.forEach((v, i) => {
        expect(v).toMatch(new RegExp(`^k${i}#\\d+$`))
        expect(v).not.toBe(first[i])
      })
      expect(yield* Effect.forEach(keys, (k) => cache.get(k), { concurrency: "unbounded" })).toEqual(second)
      expect(loads()).toBe(100)
    }))

  it.scopedLive("an error line in a burst of ReadThrough reads: each read answers with its own key's value", () =>
    Effect.gen(function*() {
      const store = yield* MemcachedStore.make({
        servers: addresses(),
        prefix: uniquePrefix("burst-error"),
        poolSize: 1,
        maxValueBytes: 4 * 1024 * 1024,
        circuitBreaker: { failureThreshold: 2, resetAfter: "30 seconds" }
      })
      const { cache } = yield* countingCache(store)
      const keys = Array.from({ length: 200 }, (_, i) => `k${i}`)
      const warm = yield* Effect.forEach(keys, (k) => cache.get(k), { concurrency: "unbounded" })
      // a 2 MB value memcached refuses with SERVER_ERROR, in the same write as the reads
      const big = keys.find((k) => Option.getOrThrow(store.serverFor(`item:${k}`)) === addresses()[0])!
      const [write, ...reads] = yield* Effect.all(
        [Effect.either(store.set(`item:${big}`, new Uint8Array(2 * 1024 * 1024))), ...keys.map((k) => cache.get(k))],
        { concurrency: "unbounded" }
      )
      expect(Either.isLeft(write as Either.Either<void, unknown>)).toBe(true)
      // the reads that shared the connection with the refused write failed with it
      expect((yield* cache.stats).storeErrors).toBeGreaterThan(0)
      // a read the failure reached loaded its own key again; every other one is the warm value
      reads.forEach((v, i) => {
        expect(v).toMatch(new RegExp(`^k${i}#\\d+$`))
        if (Option.getOrThrow(store.serverFor(`item:${keys[i]}`)) !== addresses()[0]) expect(v).toBe(warm[i])
      })
    }))

  it.scopedLive("getMany, setMany and deleteMany spread over the three servers and stay aligned", () =>
    Effect.gen(function*() {
      const store = yield* MemcachedStore.make({ servers: addresses(), prefix: uniquePrefix("spread") })
      const keys = Array.from({ length: 300 }, (_, i) => `item:${i}`)
      const owners = new Set(keys.map((k) => Option.getOrThrow(store.serverFor(k))))
      expect(owners.size).toBe(3)
      yield* store.setMany(keys.filter((_, i) => i % 2 === 0).map((key) => ({ key, value: bytes(key) })))
      const got = yield* store.getMany([...keys, "item:0"])
      expect(got.map(text)).toEqual([
        ...keys.map((k, i) => i % 2 === 0 ? Option.some(k) : Option.none()),
        Option.some("item:0")
      ])
      // each key sits on the server the ring names (checked behind the store's back)
      const key = keys[4]!
      const owner = Option.getOrThrow(store.serverFor(key))
      const port = servers().find((s) => s.address === owner)!.port
      const wireKey = `${store.prefix}:${store.generation()}:${key}`
      expect(yield* rawCommand(port, `mg ${wireKey} v\r\n`)).toBe(`VA ${key.length}\r\n${key}\r\n`)
      for (const other of servers().filter((s) => s.address !== owner)) {
        expect(yield* rawCommand(other.port, `mg ${wireKey} v\r\n`)).toBe("EN\r\n")
      }
      expect(yield* store.deleteMany(keys)).toBe(150)
    }))

  it.scopedLive("TTLs: sub-second rounds up to 1 s, over 30 days goes as unix time, infinite means none", () =>
    Effect.gen(function*() {
      const port = servers()[0]!.port
      const store = yield* MemcachedStore.make({ servers: [addresses()[0]!], prefix: uniquePrefix("ttl") })
      const ttlOf = remainingTtl(port, store)
      yield* store.set("short", bytes("s"), "300 millis")
      expect(yield* ttlOf("short")).toBeGreaterThanOrEqual(0)
      expect(yield* ttlOf("short")).toBeLessThanOrEqual(1)
      yield* store.set("long", bytes("l"), "40 days")
      const long = yield* ttlOf("long")
      expect(long).toBeGreaterThan(40 * 86400 - 10)
      expect(long).toBeLessThanOrEqual(40 * 86400 + clockSlack)
      yield* store.set("forever", bytes("f"), "5 seconds")
      expect(yield* store.expire("forever", Duration.infinity)).toBe(true)
      expect(yield* ttlOf("forever")).toBe(-1)
      expect(yield* store.expire("long", "10 seconds")).toBe(true)
      expect(yield* ttlOf("long")).toBeLessThanOrEqual(10)
      // an expired TTL on setIfAbsent writes nothing and reports whether the key was free
      expect(yield* store.setIfAbsent("nx", bytes("x"), 0)).toBe(true)
      expect(Option.isNone(yield* store.get("nx"))).toBe(true)
      expect(yield* store.setIfAbsent("long", bytes("x"), -5)).toBe(false)
      expect(yield* store.expire("long", 0)).toBe(true)
      expect(Option.isNone(yield* store.get("long"))).toBe(true)
    }))

  it.scopedLive("getAndExpire reads and touches in one mg with the T flag; a plain get leaves the TTL", () =>
    Effect.gen(function*() {
      const port = servers()[0]!.port
      const store = yield* MemcachedStore.make({ servers: [addresses()[0]!], prefix: uniquePrefix("touch") })
      const ttlOf = remainingTtl(port, store)
      const touch = getAndExpireOf(store)!
      yield* store.set("k", bytes("v"), "5 seconds")
      expect(text(yield* store.get("k"))).toEqual(Option.some("v"))
      expect(yield* ttlOf("k")).toBeLessThanOrEqual(5)
      expect(text(yield* touch.read("k", "100 seconds"))).toEqual(Option.some("v"))
      expect(yield* ttlOf("k")).toBeGreaterThanOrEqual(98)
      expect(text(yield* touch.read("k", Duration.infinity))).toEqual(Option.some("v"))
      expect(yield* ttlOf("k")).toBe(-1)
      expect(Option.isNone(yield* touch.read("missing", "100 seconds"))).toBe(true)
      expect(text(yield* touch.read("k", 0))).toEqual(Option.some("v"))
      expect(Option.isNone(yield* store.get("k"))).toBe(true)
    }))

  it.scopedLive("a sliding ReadThrough: a hit of a known entry touches it back to the slide", () =>
    Effect.gen(function*() {
      const port = servers()[0]!.port
      const store = yield* MemcachedStore.make({ servers: [addresses()[0]!], prefix: uniquePrefix("sliding") })
      const ttlOf = remainingTtl(port, store)
      let loads = 0
      const cache = yield* ReadThrough.make({
        namespace: "session",
        value: Schema.String,
        ttl: Ttl.sliding("100 seconds", { max: "1 hour", debounce: 0 }),
        lookup: (id: string) => Effect.sync(() => `${id}#${++loads}`)
      }).pipe(Effect.provideService(CacheStore, store))
      expect(yield* cache.get("s")).toBe("s#1")
      expect(yield* ttlOf("session:s")).toBeGreaterThanOrEqual(98)
      expect(yield* cache.get("s")).toBe("s#1")
      for (let i = 0; i < 3; i++) {
        expect(yield* store.expire("session:s", "5 seconds")).toBe(true)
        yield* Effect.sleep("5 millis")
        expect(yield* cache.get("s")).toBe("s#1")
        // the read itself touched it (mg … v T100): no command after it
        expect(yield* ttlOf("session:s")).toBeGreaterThanOrEqual(98)
      }
      expect(loads).toBe(1)
    }))

  it.scopedLive("a TTL over the maximum is stored as the maximum, 365 days, not as no expiry", () =>
    Effect.gen(function*() {
      const port = servers()[0]!.port
      const store = yield* MemcachedStore.make({ servers: [addresses()[0]!], prefix: uniquePrefix("ttl-max") })
      const ttlOf = remainingTtl(port, store)
      yield* store.set("huge", bytes("h"), 1e19)
      yield* store.set("touched", bytes("t"))
      expect(yield* store.expire("touched", Duration.days(5000))).toBe(true)
      for (const key of ["huge", "touched"]) {
        const ttl = yield* ttlOf(key)
        expect(ttl, key).toBeGreaterThan(365 * 86400 - 10)
        expect(ttl, key).toBeLessThanOrEqual(365 * 86400 + clockSlack)
      }
    }))

  it.scopedLive("clear bumps the prefix's generation; another store on the same prefix sees it within the refresh", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix("gen")
      const options = { servers: addresses(), prefix, generationRefresh: "100 millis" } as const
      const a = yield* MemcachedStore.make(options)
      const b = yield* MemcachedStore.make(options)
      expect(a.generation()).toBe(b.generation())
      yield* a.set("k", bytes("v"))
      expect(text(yield* b.get("k"))).toEqual(Option.some("v"))
      const before = a.generation()
      yield* a.clear
      expect(a.generation()).not.toBe(before)
      expect(Option.isNone(yield* a.get("k"))).toBe(true)
      yield* eventually("the other store to see the clear", Effect.map(b.get("k"), Option.isNone), 5000)
      expect(b.generation()).toBe(a.generation())
      yield* b.set("k", bytes("after"))
      expect(text(yield* a.get("k"))).toEqual(Option.some("after"))
    }))

  it.scopedLive("a handle's clear fails typed with UnsupportedCapability: memcached cannot list one namespace's keys", () =>
    Effect.gen(function*() {
      const store = yield* MemcachedStore.make({ servers: addresses(), prefix: uniquePrefix("nsclear") })
      const { cache, loads } = yield* countingCache(store)
      expect(yield* cache.get("x")).toBe("x#1")
      const error = yield* Effect.flip(cache.clear)
      expect(error._tag).toBe("UnsupportedCapability")
      // nothing was dropped or changed by the refused clear
      expect(yield* cache.get("x")).toBe("x#1")
      expect(loads()).toBe(1)
    }))

  it.scopedLive("the direct read answers as get does when a server dies: typed failures, then its keys from the others", () =>
    Effect.gen(function*() {
      const cluster = yield* startMemcacheds(2)
      const prefix = uniquePrefix("direct-failover")
      const store = yield* MemcachedStore.make({
        servers: cluster.map((s) => s.address),
        prefix,
        circuitBreaker: { failureThreshold: 2, resetAfter: "200 millis" },
        reconnect: { base: "20 millis", max: "100 millis" }
      })
      const direct = directReadOf(store)
      expect(direct?._tag).toBe("Callback")
      const read = (key: string) =>
        Effect.async<Option.Option<string>, unknown>((resume) => {
          if (direct?._tag !== "Callback") return resume(Effect.die("no callback read"))
          direct.read(key, (value, error, before) => {
            const outcome = error === undefined
              ? Effect.succeed(
                value === null ? Option.none() : Option.some(new TextDecoder().decode(value as Uint8Array))
              )
              : Effect.fail(error)
            resume(before === undefined ? outcome : Effect.zipRight(before, outcome))
          })
        })
      const keys = Array.from({ length: 60 }, (_, i) => `k${i}`)
      yield* store.setMany(keys.map((key) => ({ key, value: bytes(`v:${key}`) })))
      expect(yield* Effect.forEach(keys, read)).toEqual(keys.map((k) => Option.some(`v:${k}`)))
      const victim = notHoldingGeneration(cluster, store.prefix)
      const victimKeys = keys.filter((k) => Option.getOrThrow(store.serverFor(k)) === victim.address)
      expect(victimKeys.length).toBeGreaterThan(0)
      yield* victim.process.kill
      // its keys fail typed (never another key's value) until its breaker takes it out of the ring
      yield* eventually(
        "the dead server to leave the ring through direct reads",
        Effect.map(Effect.either(read(victimKeys[0]!)), (result) => {
          if (Either.isLeft(result)) {
            expect(result.left).toMatchObject({ _tag: "StoreError" })
            expect(["connection", "timeout", "unavailable"]).toContain((result.left as { reason: string }).reason)
          } else {
            expect(result.right).toEqual(Option.none())
          }
          return !store.liveServers().includes(victim.address)
        })
      )
      // its keys now live on the other server: a miss there until written, then what was written
      expect(yield* read(victimKeys[0]!)).toEqual(Option.none())
      yield* store.setMany(victimKeys.map((key) => ({ key, value: bytes(`moved:${key}`) })))
      expect(yield* Effect.forEach(victimKeys, read)).toEqual(victimKeys.map((k) => Option.some(`moved:${k}`)))
      const others = keys.filter((k) => !victimKeys.includes(k))
      expect(yield* Effect.forEach(others, read)).toEqual(others.map((k) => Option.some(`v:${k}`)))
    }))

  it.scopedLive("a ReadThrough over a store whose server is down at start loads, then hits once the server is up", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const store = yield* MemcachedStore.make({
        servers: [`127.0.0.1:${port}`],
        prefix: uniquePrefix("late"),
        connectTimeout: "200 millis",
        circuitBreaker: { failureThreshold: 100, resetAfter: "100 millis" },
        reconnect: { base: "20 millis", max: "100 millis" }
      })
      // no server has answered: the store knows no generation yet, so its direct read reads it first
      expect(store.generation()).toBeUndefined()
      expect(directReadOf(store)?._tag).toBe("Callback")
      const { cache, loads } = yield* countingCache(store)
      expect(yield* cache.get("x")).toBe("x#1")
      expect((yield* cache.stats).storeErrors).toBeGreaterThan(0)
      yield* startMemcached({ port })
      // once up, the generation is read, the value written, and read back as a hit
      yield* eventually(
        "a read of x to hit",
        Effect.gen(function*() {
          const hits = (yield* cache.stats).hits
          const value = yield* cache.get("x")
          expect(value).toMatch(/^x#\d+$/)
          return (yield* cache.stats).hits > hits
        })
      )
      expect(store.generation()).toBeDefined()
      // the hit is the value of the last load, and loads nothing
      const loaded = loads()
      expect(yield* cache.get("x")).toBe(`x#${loaded}`)
      expect(loads()).toBe(loaded)
    }))

  it.scopedLive("invalidatePattern fails typed with UnsupportedCapability; tags and namespace versions work on memcached", () =>
    Effect.gen(function*() {
      const store = yield* MemcachedStore.make({ servers: addresses(), prefix: uniquePrefix("inval") })
      let calls = 0
      const cache = yield* ReadThrough.make({
        namespace: "item",
        value: Schema.String,
        lookup: (key: string) => Effect.sync(() => `${key}#${++calls}`),
        ttl: "5 minutes",
        tags: (_value, key) => [`t:${key[0]}`],
        versioned: true
      }).pipe(Effect.provideService(CacheStore, store))
      expect(yield* cache.get("x")).toBe("x#1")
      const error = yield* Effect.flip(cache.invalidatePattern("*"))
      expect(error._tag).toBe("UnsupportedCapability")
      expect(yield* cache.get("x")).toBe("x#1")
      yield* cache.invalidateTag("t:x")
      expect(yield* cache.get("x")).toBe("x#2")
      yield* cache.bumpVersion
      expect(yield* cache.get("x")).toBe("x#3")
      expect(yield* cache.get("x")).toBe("x#3")
    }))

  it("rejects nonsense options with InvalidOptions at construction", () => {
    const bad: Array<MemcachedStore.Options> = [
      { servers: [] },
      { servers: ["no port:x"] },
      { servers: ["127.0.0.1:99999"] },
      { servers: ["127.0.0.1:11211", "127.0.0.1:11211"] },
      { servers: ["127.0.0.1:11211"], weights: [1, 2] },
      { servers: ["127.0.0.1:11211"], weights: [0] },
      { servers: ["127.0.0.1:11211"], poolSize: 0 },
      { servers: ["127.0.0.1:11211"], timeout: 0 },
      { servers: ["127.0.0.1:11211"], timeout: "forever" as never },
      { servers: ["127.0.0.1:11211"], maxValueBytes: 100 },
      { servers: ["127.0.0.1:11211"], prefix: "p".repeat(101) },
      { servers: ["127.0.0.1:11211"], circuitBreaker: { failureThreshold: 0 } }
    ]
    for (const options of bad) {
      expect(() => MemcachedStore.make(options), JSON.stringify(options)).toThrow(
        expect.objectContaining({ _tag: "InvalidOptions" })
      )
      expect(() => MemcachedStore.layer(options)).toThrow(expect.objectContaining({ _tag: "InvalidOptions" }))
    }
  })

  it.live("layerConfig reads the servers from Config, and fails with a ConfigError on nonsense", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromMap(
        new Map([["MEMCACHED_SERVERS", addresses().join(",")], ["CACHE_PREFIX", uniquePrefix("cfg")]])
      )
      const layer = MemcachedStore.layerConfig({
        servers: Config.array(Config.string(), "MEMCACHED_SERVERS"),
        prefix: Config.string("CACHE_PREFIX")
      })
      const roundTrip = Effect.gen(function*() {
        const store = yield* CacheStore
        yield* store.set("k", bytes("from-config"))
        return text(yield* store.get("k"))
      })
      const got = yield* roundTrip.pipe(
        Effect.provide(Layer.provide(layer, Layer.setConfigProvider(provider)))
      )
      expect(got).toEqual(Option.some("from-config"))
      const badProvider = ConfigProvider.fromMap(new Map([["MEMCACHED_SERVERS", "nowhere:0"], ["CACHE_PREFIX", "x"]]))
      const failed = yield* Effect.either(
        roundTrip.pipe(Effect.provide(Layer.provide(layer, Layer.setConfigProvider(badProvider))))
      )
      expect(Either.isLeft(failed) && failed.left._tag).toBe("ConfigError")
    }))

  it.scopedLive("a server killed with 1,000 gets in flight: every call returns, its keys fail over, it rejoins on restart", () =>
    Effect.gen(function*() {
      const cluster = yield* startMemcacheds(3)
      const prefix = uniquePrefix("failover")
      const store = yield* MemcachedStore.make({
        servers: cluster.map((s) => s.address),
        prefix,
        timeout: "2 seconds",
        circuitBreaker: { failureThreshold: 3, resetAfter: "200 millis" },
        reconnect: { base: "20 millis", max: "200 millis" }
      })
      const keys = Array.from({ length: 300 }, (_, i) => `key:${i}`)
      yield* store.setMany(keys.map((key) => ({ key, value: bytes(`v:${key}`) })))
      const ownerBefore = new Map(keys.map((k) => [k, Option.getOrThrow(store.serverFor(k))]))
      // The victim is the server `<prefix>:gen` hashes to: every server holds a copy of the
      // generation, so losing this one changes no generation and moves no key but its own.
      const ring = HashRing.make(cluster.map((s) => ({ name: HashRing.serverName("127.0.0.1", s.port), node: s })))
      const victim = Option.getOrThrow(HashRing.get(ring, `${prefix}:gen`))
      const generationBefore = store.generation()
      const victimKeys = keys.filter((k) => ownerBefore.get(k) === victim.address)
      expect(victimKeys.length).toBeGreaterThan(30)

      // Freeze it first, so the gets to it are certainly in flight when it dies.
      yield* victim.process.freeze
      const issued = 1000
      const calls = yield* Effect.fork(
        Effect.forEach(
          Array.from({ length: issued }, (_, i) => keys[i % keys.length]!),
          (key) => Effect.map(Effect.either(store.get(key)), (result) => ({ key, result })),
          { concurrency: "unbounded" }
        )
      )
      yield* Effect.sleep("100 millis")
      yield* victim.process.kill
      const returned = yield* Fiber.join(calls)
      expect(returned.length).toBe(issued)
      let values = 0
      let errors = 0
      for (const { key, result } of returned) {
        if (Either.isRight(result)) {
          values++
          // a value is always the caller's own
          if (Option.isSome(result.right)) expect(text(result.right)).toEqual(Option.some(`v:${key}`))
        } else {
          errors++
          expect(result.left).toMatchObject({ _tag: "StoreError" })
          expect(["connection", "timeout", "unavailable"]).toContain((result.left as { reason: string }).reason)
        }
      }
      expect(values + errors).toBe(issued)
      expect(errors).toBeGreaterThan(0)

      // calls to it now fail fast (it refuses connections), and its breaker takes it out of the
      // ring; then its keys go to the two others, and work there
      yield* eventually(
        "the victim to leave the ring",
        Effect.zipRight(
          Effect.either(store.getMany(victimKeys)),
          Effect.sync(() => !store.liveServers().includes(victim.address))
        )
      )
      expect(store.liveServers().length).toBe(2)
      for (const key of victimKeys) expect(Option.getOrThrow(store.serverFor(key))).not.toBe(victim.address)
      for (const key of keys.filter((k) => ownerBefore.get(k) !== victim.address)) {
        expect(Option.getOrThrow(store.serverFor(key))).toBe(ownerBefore.get(key))
      }
      yield* store.setMany(victimKeys.map((key) => ({ key, value: bytes(`failover:${key}`) })))
      expect((yield* store.getMany(victimKeys)).map(text)).toEqual(victimKeys.map((k) => Option.some(`failover:${k}`)))

      expect(store.generation()).toBe(generationBefore)

      // back on the same port: probed, and put back together with a new generation (so nothing it
      // held before it left could be read), under which it gets its share of the keys again
      yield* startMemcached({ port: victim.port })
      yield* eventually(
        "the victim to rejoin the ring",
        Effect.sync(() => store.liveServers().includes(victim.address))
      )
      expect(store.generation()).not.toBe(generationBefore)
      expect((yield* store.getMany(victimKeys)).every(Option.isNone)).toBe(true)
      const backKeys = keys.filter((k) => Option.getOrThrow(store.serverFor(k)) === victim.address)
      expect(backKeys.length).toBeGreaterThan(30)
      yield* eventually(
        "writes to reach the restarted server",
        Effect.as(store.setMany(backKeys.map((key) => ({ key, value: bytes(`back:${key}`) }))), true)
      )
      expect((yield* store.getMany(backKeys)).map(text)).toEqual(backKeys.map((k) => Option.some(`back:${k}`)))
      const wireKey = `${store.prefix}:${store.generation()}:${backKeys[0]}`
      expect(yield* rawCommand(victim.port, `mg ${wireKey} v\r\n`)).toBe(
        `VA ${`back:${backKeys[0]}`.length}\r\nback:${backKeys[0]}\r\n`
      )
      expect(yield* rawCommand(victim.port, "mn\r\n")).toBe("MN\r\n")
    }))

  it.scopedLive("with failover off, a dead server's keys fail fast with reason unavailable and do not move", () =>
    Effect.gen(function*() {
      const cluster = yield* startMemcacheds(2)
      const store = yield* MemcachedStore.make({
        servers: cluster.map((s) => s.address),
        prefix: uniquePrefix("nofailover"),
        failover: false,
        circuitBreaker: { failureThreshold: 2, resetAfter: "30 seconds" },
        reconnect: { base: "20 millis", max: "100 millis" }
      })
      const keys = Array.from({ length: 100 }, (_, i) => `k${i}`)
      const victim = notHoldingGeneration(cluster, store.prefix)
      const victimKeys = keys.filter((k) => Option.getOrThrow(store.serverFor(k)) === victim.address)
      const otherKeys = keys.filter((k) => !victimKeys.includes(k))
      yield* victim.process.kill
      // the breaker opens after a couple of failures; from then on the calls fail at once
      yield* eventually(
        "the dead server's breaker to open",
        Effect.map(
          Effect.either(store.get(victimKeys[0]!)),
          (r) => Either.isLeft(r) && r.left._tag === "StoreError" && r.left.reason === "unavailable"
        )
      )
      expect(store.liveServers()).toEqual(cluster.map((s) => s.address))
      for (const key of victimKeys) expect(Option.getOrThrow(store.serverFor(key))).toBe(victim.address)
      const failed = yield* Effect.forEach(victimKeys, (k) => Effect.either(store.set(k, bytes("x"))))
      expect(failed.every((r) => Either.isLeft(r) && r.left._tag === "StoreError" && r.left.reason === "unavailable"))
        .toBe(true)
      yield* store.setMany(otherKeys.map((key) => ({ key, value: bytes(key) })))
      expect((yield* store.getMany(otherKeys)).map(text)).toEqual(otherKeys.map((k) => Option.some(k)))
    }))

  it.scopedLive("a server that is down when the store starts leaves the ring, and joins when it comes up", () =>
    Effect.gen(function*() {
      const live = yield* startMemcached()
      const port = yield* freePort
      const absent = `127.0.0.1:${port}`
      const store = yield* MemcachedStore.make({
        servers: [live.address, absent],
        prefix: uniquePrefix("startup"),
        circuitBreaker: { failureThreshold: 2, resetAfter: "200 millis" },
        reconnect: { base: "20 millis", max: "100 millis" }
      })
      const keys = Array.from({ length: 50 }, (_, i) => `k${i}`)
      // calls to the absent server fail (typed) until its breaker takes it out of the ring
      yield* eventually(
        "the absent server to leave the ring",
        Effect.zipRight(
          Effect.either(store.getMany(keys)),
          Effect.sync(() => !store.liveServers().includes(absent))
        )
      )
      yield* store.setMany(keys.map((key) => ({ key, value: bytes(key) })))
      expect((yield* store.getMany(keys)).map(text)).toEqual(keys.map((k) => Option.some(k)))
      yield* startMemcached({ port })
      yield* eventually("the server to join the ring", Effect.sync(() => store.liveServers().includes(absent)))
      const moved = keys.filter((k) => Option.getOrThrow(store.serverFor(k)) === absent)
      expect(moved.length).toBeGreaterThan(0)
      yield* store.setMany(moved.map((key) => ({ key, value: bytes(`new:${key}`) })))
      expect((yield* store.getMany(moved)).map(text)).toEqual(moved.map((k) => Option.some(`new:${k}`)))
    }))
})
