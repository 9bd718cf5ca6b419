/**
 * The example HTTP service (examples/http-service.ts) served on a free loopback port, with real
 * requests against it: over the memory store, and over a memcached the harness starts.
 */
import { HttpClient } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Logger, LogLevel } from "effect"
import { CacheMetrics } from "effect-cachekit"
import { HttpLive } from "../examples/http-service.js"
import { fixture } from "./harness/fixture.js"
import { startMemcacheds } from "./harness/memcached.js"

const servers = fixture(startMemcacheds(1))

/** The example's application on a test server, configured by `env`. */
const serve = (env: Record<string, string>) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  self.pipe(
    Effect.provide(HttpLive.pipe(Layer.provideMerge(NodeHttpServer.layerTest))),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({ DB_LATENCY: "0 millis", ...env })))),
    Logger.withMinimumLogLevel(LogLevel.Warning)
  )

const getJson = (path: string) =>
  Effect.flatMap(
    HttpClient.get(path),
    (response) => Effect.map(response.json, (body) => ({ status: response.status, body }))
  )

const user42 = { id: "42", name: "user 42", plan: "pro" }

describe("example: the HTTP service", () => {
  it.scoped("over the memory store: users are cached, invalidated, and counted in /metrics", () =>
    Effect.gen(function*() {
      const labels = { namespace: "user", store: "memory" }
      const before = yield* CacheMetrics.snapshot(labels)

      expect(yield* getJson("/users/42")).toEqual({ status: 200, body: user42 })
      expect(yield* getJson("/users/42")).toEqual({ status: 200, body: user42 })
      const notFound = yield* getJson("/users/0")
      expect(notFound.status).toBe(404)
      expect(notFound.body).toMatchObject({ _tag: "UserNotFound", id: "0" })

      const afterReads = yield* CacheMetrics.snapshot(labels)
      expect(afterReads.hits - before.hits).toBe(1)
      expect(afterReads.misses - before.misses).toBe(2)
      expect(afterReads.loads - before.loads).toBe(2)
      expect(afterReads.loadFailures - before.loadFailures).toBe(1)

      const client = yield* HttpClient.HttpClient
      const invalidate = Effect.flatMap(client.del("/users/42"), (r) => r.json)
      expect(yield* invalidate).toEqual({ invalidated: true })
      expect(yield* invalidate).toEqual({ invalidated: false })
      expect(yield* getJson("/users/42")).toEqual({ status: 200, body: user42 })
      const now = yield* CacheMetrics.snapshot(labels)
      expect(now.loads - before.loads).toBe(3)

      const metrics = yield* client.get("/metrics")
      expect(metrics.status).toBe(200)
      expect(metrics.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8")
      const lines = (yield* metrics.text).split("\n")
      const tags = `{namespace="user",store="memory"}`
      expect(lines).toContain(`effect_cachekit_hits_total${tags} ${now.hits}`)
      expect(lines).toContain(`effect_cachekit_misses_total${tags} ${now.misses}`)
      expect(lines).toContain(`effect_cachekit_loads_total${tags} ${now.loads}`)
      expect(lines).toContain(`effect_cachekit_load_failures_total${tags} ${now.loadFailures}`)
      // the histogram times every load, the failed one included
      expect(lines).toContain(`effect_cachekit_load_duration_seconds_count${tags} ${now.loads}`)
      expect(lines).toContain(`effect_cachekit_entries{store="memory"} 1`)
    }).pipe(serve({ CACHE_STORE: "memory" })))

  it.live("over memcached, chosen by CACHE_STORE: the second read is a hit in the store", () =>
    Effect.suspend(() => {
      const address = servers()[0]!.address
      return Effect.gen(function*() {
        const labels = { namespace: "user", store: "memcached" }
        const before = yield* CacheMetrics.snapshot(labels)
        const user7 = { id: "7", name: "user 7", plan: "free" }
        expect(yield* getJson("/users/7")).toEqual({ status: 200, body: user7 })
        expect(yield* getJson("/users/7")).toEqual({ status: 200, body: user7 })
        const after = yield* CacheMetrics.snapshot(labels)
        expect([after.misses - before.misses, after.hits - before.hits, after.loads - before.loads]).toEqual([1, 1, 1])
        const text = yield* Effect.flatMap(HttpClient.get("/metrics"), (r) => r.text)
        expect(text.split("\n")).toContain(
          `effect_cachekit_hits_total{namespace="user",store="memcached"} ${after.hits}`
        )
      }).pipe(serve({ CACHE_STORE: "memcached", MEMCACHED_SERVERS: address }), Effect.scoped)
    }))

  it.scoped("an unknown CACHE_STORE fails the application with a ConfigError", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.void.pipe(serve({ CACHE_STORE: "mongo" })))
      expect(exit._tag).toBe("Failure")
      expect(String(exit)).toMatch(/CACHE_STORE/)
      expect(String(exit)).toContain("Expected one of (memory, redis, memcached) but received \\\"mongo\\\"")
    }))
})
