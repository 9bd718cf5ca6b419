/**
 * Fault tests on real servers: a kill with calls in flight, a black hole, added latency and
 * connection resets (through a TCP proxy). Every scenario counts the calls it issued and the calls
 * that returned; they must be equal, and every failure must be a typed StoreError.
 */
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import { Clock, Context, Effect, Either, Fiber, Layer, Option, Schema } from "effect"
import { CacheStore } from "effect-cachekit/CacheStore"
import * as ReadThrough from "effect-cachekit/ReadThrough"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import { Redis as IoRedis } from "ioredis"
import { bytes, text } from "../src/internal/testing/bytes.js"
import { fixture } from "./harness/fixture.js"
import { freePort } from "./harness/process.js"
import { eventually } from "./harness/process.js"
import { tcpProxy } from "./harness/proxy.js"
import { redisServer } from "./harness/redis.js"
import { wallClockSteppedBack } from "./utils.js"

const env = fixture(Effect.gen(function*() {
  const server = yield* redisServer()
  const proxy = yield* tcpProxy(server)
  return { server, proxy }
}))

const unhandled: Array<unknown> = []
const onUnhandled = (reason: unknown) => void unhandled.push(reason)
beforeEach(() => {
  unhandled.length = 0
  process.on("unhandledRejection", onUnhandled)
})
afterEach(() => {
  process.off("unhandledRejection", onUnhandled)
  expect(unhandled).toEqual([])
})

/** Runs `calls` concurrently, counting issued and returned calls and the failures by tag/reason. */
const tally = <A, E extends { readonly _tag: string }>(calls: ReadonlyArray<Effect.Effect<A, E>>) =>
  Effect.gen(function*() {
    let issued = 0
    let returned = 0
    const failures = new Map<string, number>()
    const results = yield* Effect.forEach(calls, (call) => {
      issued++
      return Effect.either(call).pipe(Effect.tap(() =>
        Effect.sync(() => {
          returned++
        })
      ))
    }, { concurrency: "unbounded" })
    for (const r of results) {
      if (Either.isLeft(r)) {
        const e = r.left as { _tag: string; reason?: string }
        const label = e.reason === undefined ? e._tag : `${e._tag}/${e.reason}`
        failures.set(label, (failures.get(label) ?? 0) + 1)
      }
    }
    return { issued, returned, failures, results }
  })

const viaProxy = (options: RedisStore.Options & Redis.Options = {}) =>
  Effect.gen(function*() {
    const { proxy } = env()
    const redis = yield* Redis.make({ port: proxy.port, commandTimeout: "300 millis", ...options })
    return yield* Effect.provideService(
      RedisStore.make({
        commandTimeout: "300 millis",
        circuitBreaker: { failureThreshold: 5, resetAfter: "200 millis" },
        ...options
      }),
      Redis.RedisClient,
      redis
    )
  })

describe("RedisStore under faults", () => {
  it.scopedLive("a client that gives up (status end) without the layer closing it is connected again", () =>
    Effect.gen(function*() {
      const { server } = env()
      const redis = yield* Redis.make({ port: server.port, commandTimeout: "300 millis" })
      const store = yield* Effect.provideService(
        RedisStore.make({ prefix: "revive", circuitBreaker: { failureThreshold: 5, resetAfter: "100 millis" } }),
        Redis.RedisClient,
        redis
      )
      yield* store.set("k", bytes("v"))
      // what ioredis does on its own when a connection attempt fails outright: it ends the client
      const ended = Effect.async<void>((resume) => {
        redis.client.once("end", () => resume(Effect.void))
      })
      redis.client.disconnect()
      yield* ended
      expect(redis.client.status).toBe("end")
      expect((yield* Effect.either(store.get("k")))._tag).toBe("Left")
      yield* eventually(
        "the store serves again",
        Effect.map(Effect.either(store.get("k")), (r) => Either.isRight(r) && text(r.right)._tag === "Some")
      )
      expect(redis.client.status).toBe("ready")
    }))

  it.scopedLive("a black hole is bounded by the command timeout: no call hangs, and it recovers when the path heals", () =>
    Effect.gen(function*() {
      const { proxy } = env()
      // the breaker stays open long enough that the call after the burst meets it open, however
      // long a busy machine takes between the two
      const store = yield* viaProxy({
        prefix: "blackhole",
        circuitBreaker: { failureThreshold: 5, resetAfter: "3 seconds" }
      })
      yield* store.set("k", bytes("v"))
      // the proxy is shared by the tests of this file: it is healed whatever happens here
      yield* Effect.addFinalizer(() => Effect.sync(() => proxy.setMode("forward")))
      proxy.setMode("blackhole")
      const started = yield* Clock.currentTimeMillis
      const outcome = yield* tally(Array.from({ length: 100 }, () => store.get("k"))).pipe(
        // a liveness guard, far above the command timeout: hitting it means a call hung
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("calls hung in the black hole") })
      )
      const elapsed = (yield* Clock.currentTimeMillis) - started
      console.log(
        `black hole: 100 gets returned after ${elapsed} ms with ${JSON.stringify(Object.fromEntries(outcome.failures))}`
      )
      expect(outcome.returned).toBe(outcome.issued)
      expect(outcome.failures.get("StoreError/timeout")).toBe(100)
      // the breaker has opened: the next call is skipped at once
      expect(store.breakerState()).toBe("open")
      const skipped = yield* Effect.flip(store.get("k"))
      expect(skipped._tag === "StoreError" && skipped.reason).toBe("unavailable")
      proxy.setMode("forward")
      yield* eventually("reads served again", Effect.map(store.get("k"), (v) => text(v)._tag === "Some"))
      expect(store.breakerState()).toBe("closed")
    }))

  it.scopedLive("a wall clock stepped back 30 s does not hold the command timeout back, on a client handed in", () =>
    Effect.gen(function*() {
      // a proxy of its own: the black hole it opens concerns no other test
      const proxy = yield* tcpProxy(env().server)
      // the caller's client has no command timeout of its own: only the store's bounds the call
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new IoRedis({ host: proxy.host, port: proxy.port, lazyConnect: true })),
        (c) => Effect.sync(() => c.disconnect())
      )
      yield* Effect.promise(() => client.connect())
      const context = yield* Layer.build(
        RedisStore.layerFromClient(Effect.succeed(client), { prefix: "stepped", commandTimeout: "300 millis" })
      )
      const store = Context.get(context, CacheStore)
      yield* store.set("k", bytes("v"))
      proxy.setMode("blackhole")
      const fiber = yield* Effect.fork(Effect.either(store.get("k")))
      yield* eventually("the read in flight", Effect.sync(() => client.commandQueue.length === 1))
      yield* wallClockSteppedBack(30_000)
      const result = yield* Fiber.join(fiber).pipe(
        // a liveness guard, far above the 300 ms timeout and far below the 30 s step
        Effect.timeoutFail({
          duration: "5 seconds",
          onTimeout: () => new Error("the deadline waited for the wall clock")
        })
      )
      expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "StoreError", reason: "timeout" })
      proxy.setMode("forward")
    }))

  it.scopedLive("added latency under the timeout is served; above it, calls time out; replies never go to the wrong caller", () =>
    Effect.gen(function*() {
      const { proxy } = env()
      const store = yield* viaProxy({ prefix: "latency", circuitBreaker: false })
      yield* store.setMany(Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: bytes(`v${i}`) })))
      proxy.setLatency(100)
      expect(text(yield* store.get("k1"))).toEqual(Option.some("v1"))
      proxy.setLatency(600)
      const slow = yield* tally(Array.from({ length: 50 }, (_, i) => store.get(`k${i}`)))
      expect(slow.returned).toBe(slow.issued)
      expect(slow.failures.get("StoreError/timeout")).toBe(50)
      proxy.setLatency(0)
      // the late replies of the timed-out reads arrive and are dropped; new reads get their own
      yield* Effect.sleep("700 millis")
      const got = yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => i),
        (i) => store.get(`k${i}`),
        { concurrency: "unbounded" }
      )
      expect(got.map(text)).toEqual(Array.from({ length: 50 }, (_, i) => Option.some(`v${i}`)))
    }))

  it.scopedLive("connections reset with 500 calls in flight: every call returns, then the store reconnects", () =>
    Effect.gen(function*() {
      const { proxy } = env()
      const store = yield* viaProxy({
        prefix: "reset",
        circuitBreaker: { failureThreshold: 5, resetAfter: "100 millis" }
      })
      yield* store.setMany(Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: bytes(`v${i}`) })))
      proxy.setLatency(100)
      const fiber = yield* Effect.fork(tally(Array.from({ length: 500 }, (_, i) => store.get(`k${i % 100}`))))
      yield* Effect.sleep("30 millis")
      proxy.resetAll()
      proxy.setLatency(0)
      const outcome = yield* Fiber.join(fiber)
      console.log(
        `reset: ${outcome.issued} issued, ${outcome.returned} returned, ${
          JSON.stringify(Object.fromEntries(outcome.failures))
        }`
      )
      expect(outcome.returned).toBe(outcome.issued)
      for (const label of outcome.failures.keys()) expect(label).toMatch(/^StoreError\/(connection|unavailable)$/)
      expect(outcome.failures.size).toBeGreaterThan(0)
      yield* eventually("reads served again", Effect.map(store.get("k7"), (v) => text(v)._tag === "Some"))
    }))

  it.scopedLive("Redis down at start-up: the layer still builds, calls fail fast with a typed error, and it connects once Redis is up", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const redis = yield* Redis.make({ port, connectTimeout: "300 millis" })
      const store = yield* Effect.provideService(
        RedisStore.make({ prefix: "late", circuitBreaker: false }),
        Redis.RedisClient,
        redis
      )
      const outcome = yield* tally(Array.from({ length: 100 }, (_, i) => store.get(`k${i}`)))
      expect(outcome.returned).toBe(outcome.issued)
      expect(outcome.failures.get("StoreError/connection")).toBe(100)
      yield* redisServer({ port })
      yield* eventually("the client connected", Effect.as(store.set("k", bytes("up")), true))
      expect(text(yield* store.get("k"))).toEqual(Option.some("up"))
    }))

  // Its own server: it kills and restarts it, so no other test depends on running before or after it.
  it.scopedLive(
    "Redis killed with 1,000 ReadThrough gets in flight: all answered by the loader, the breaker opens, hits resume after a restart on the same port",
    () =>
      Effect.gen(function*() {
        const server = yield* redisServer()
        const redis = yield* Redis.make({ port: server.port })
        const store = yield* Effect.provideService(
          RedisStore.make({ prefix: "kill", circuitBreaker: { failureThreshold: 5, resetAfter: "200 millis" } }),
          Redis.RedisClient,
          redis
        )
        let loads = 0
        const items = yield* ReadThrough.make({
          namespace: "item",
          value: Schema.String,
          ttl: "1 minute",
          lookup: (id: string) =>
            Effect.sync(() => {
              loads++
              return `value-${id}`
            })
        }).pipe(Effect.provideService(CacheStore, store))
        const ids = Array.from({ length: 100 }, (_, i) => `id${i}`)
        expect(yield* items.getMany(ids)).toEqual(ids.map((id) => Option.some(`value-${id}`)))
        expect(yield* items.get("id1")).toBe("value-id1")
        const hitsBefore = (yield* items.stats).hits
        expect(hitsBefore).toBeGreaterThan(0)

        // frozen first, so the reads are really on the wire when the process dies
        yield* server.process().freeze
        const fiber = yield* Effect.fork(tally(Array.from({ length: 1000 }, (_, i) => items.get(ids[i % 100]!))))
        yield* Effect.sleep("50 millis")
        const killedAt = yield* Clock.currentTimeMillis
        yield* server.kill
        const outcome = yield* Fiber.join(fiber)
        const answeredAt = yield* Clock.currentTimeMillis
        console.log(
          `kill: ${outcome.issued} issued, ${outcome.returned} returned ${answeredAt - killedAt} ms after the kill, ${
            JSON.stringify(Object.fromEntries(outcome.failures))
          }, ${loads} loads`
        )
        expect(outcome.returned).toBe(outcome.issued)
        expect(outcome.failures.size).toBe(0)
        expect(outcome.results.map((r) => Either.getOrThrow(r))).toEqual(
          Array.from({ length: 1000 }, (_, i) => `value-${ids[i % 100]}`)
        )
        expect(store.breakerState()).toBe("open")
        const direct = yield* Effect.flip(store.get("item:id1"))
        expect(direct._tag === "StoreError" && ["unavailable", "connection"].includes(direct.reason)).toBe(true)

        yield* server.restart
        const restartedAt = yield* Clock.currentTimeMillis
        // the same program, not restarted: once reconnected, a miss is written back and then hit
        yield* eventually(
          "hits resume",
          Effect.gen(function*() {
            const before = (yield* items.stats).hits
            yield* items.get("id1")
            return (yield* items.stats).hits > before
          })
        )
        console.log(`kill: hits resumed ${(yield* Clock.currentTimeMillis) - restartedAt} ms after the restart`)
        expect(store.breakerState()).toBe("closed")
        expect(text(yield* store.get("item:id1"))._tag).toBe("Some")
      }),
    60_000
  )
})
