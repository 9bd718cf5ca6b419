/**
 * Bad options, the one way every public constructor and layer reports them: `make` / `layer` / the
 * `Ttl` constructors throw `InvalidOptions` naming the option when they are called, and every
 * `layerConfig` fails its layer with a `ConfigError` at the option's path (never a defect, and
 * never printing a secret). No server is needed: the options are rejected before anything connects.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Config, ConfigError, ConfigProvider, Effect, Exit, Layer, Option, Schema } from "effect"
import { MemoryStore, ReadThrough, Ttl } from "effect-cachekit"
import * as MemcachedStore from "effect-cachekit/MemcachedStore"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"

/** Builds a layer under a config provider made of `env`; the failure it ends with, if any. */
const buildFailure = <A, E>(layer: Layer.Layer<A, E>, env: Record<string, string>) =>
  Layer.build(layer).pipe(
    Effect.scoped,
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
    Effect.exit,
    Effect.map((exit) => {
      if (Exit.isSuccess(exit)) return { failure: Option.none<E>(), defect: false }
      return { failure: Cause.failureOption(exit.cause), defect: Cause.isDie(exit.cause) }
    })
  )

/** Expects the layer to fail with `InvalidData` at `path`, with a message that names the component. */
const expectInvalidData = <A, E>(
  layer: Layer.Layer<A, E>,
  env: Record<string, string>,
  path: ReadonlyArray<string>,
  message: RegExp
) =>
  Effect.gen(function*() {
    const { defect, failure } = yield* buildFailure(layer, env)
    expect(defect).toBe(false)
    const error = Option.getOrThrowWith(failure, () => new Error("the layer was built"))
    expect(ConfigError.isConfigError(error)).toBe(true)
    const invalid = error as ConfigError.InvalidData
    expect(invalid._op).toBe("InvalidData")
    expect(invalid.path).toEqual(path)
    expect(invalid.message).toMatch(message)
    return invalid
  })

describe("bad options", () => {
  it("make and layer throw InvalidOptions naming the option, when they are called", () => {
    const thrown = (f: () => unknown): { readonly _tag?: string; readonly option?: string } => {
      try {
        f()
      } catch (e) {
        return e as { readonly _tag?: string; readonly option?: string }
      }
      return {}
    }
    const cases: ReadonlyArray<readonly [() => unknown, string]> = [
      [() => MemoryStore.layer({ capacity: 0 }), "capacity"],
      [() => MemoryStore.make({ sweepInterval: -1 }), "sweepInterval"],
      [() => MemcachedStore.layer({ servers: ["127.0.0.1:11211"], weights: [1, 2] }), "weights"],
      [() => MemcachedStore.make({ servers: ["127.0.0.1:11211"], reconnect: { max: 0 } }), "reconnect.max"],
      [() => RedisStore.layer({ circuitBreaker: { resetAfter: "0 millis" } }), "circuitBreaker.resetAfter"],
      [() => RedisStore.layerCluster({ nodes: [] }), "nodes"],
      [() => Redis.layer({ port: 0 }), "port"],
      [() => Ttl.jittered("1 minute", { spread: 1 }), "spread"],
      [
        () =>
          ReadThrough.make({
            namespace: "",
            value: Schema.String,
            lookup: (key: string) => Effect.succeed(key),
            ttl: "1 minute"
          }),
        "namespace"
      ],
      [
        () =>
          ReadThrough.make({
            namespace: "n",
            value: Schema.String,
            lookup: (key: string) => Effect.succeed(key),
            ttl: 0
          }),
        "ttl"
      ]
    ]
    for (const [f, option] of cases) {
      const error = thrown(f)
      expect(error._tag, option).toBe("InvalidOptions")
      expect(error.option).toBe(option)
    }
  })

  it.effect("MemoryStore.layerConfig: a ConfigError at the option's path", () =>
    Effect.gen(function*() {
      yield* expectInvalidData(
        MemoryStore.layerConfig({ capacity: Config.integer("CACHE_CAPACITY") }),
        { CACHE_CAPACITY: "0" },
        ["capacity"],
        /MemoryStore: invalid options: capacity must be a positive integer/
      )
      yield* expectInvalidData(
        MemoryStore.layerConfig({ sweepInterval: Config.duration("CACHE_SWEEP") }),
        { CACHE_SWEEP: "0 seconds" },
        ["sweepInterval"],
        /sweepInterval must be greater than zero/
      )
    }))

  it.effect("MemcachedStore.layerConfig: a ConfigError at the option's path, not InvalidOptions", () =>
    Effect.gen(function*() {
      yield* expectInvalidData(
        MemcachedStore.layerConfig({ servers: Config.array(Config.string(), "MEMCACHED_SERVERS") }),
        { MEMCACHED_SERVERS: "nowhere:0" },
        ["servers"],
        /MemcachedStore: invalid options: cannot read server "nowhere:0"/
      )
      yield* expectInvalidData(
        MemcachedStore.layerConfig({
          servers: Config.array(Config.string(), "MEMCACHED_SERVERS"),
          circuitBreaker: { failureThreshold: Config.integer("MEMCACHED_FAILURES") }
        }),
        { MEMCACHED_SERVERS: "127.0.0.1:11211", MEMCACHED_FAILURES: "0" },
        ["circuitBreaker", "failureThreshold"],
        /circuitBreaker.failureThreshold must be an integer/
      )
    }))

  it.effect("RedisStore's config layers: a ConfigError at the option's path, not a defect", () =>
    Effect.gen(function*() {
      yield* expectInvalidData(
        RedisStore.layerConfig({ port: Config.integer("REDIS_PORT") }),
        { REDIS_PORT: "70000" },
        ["port"],
        /port must be an integer in 1\.\.65535/
      )
      yield* expectInvalidData(
        RedisStore.layerConfig({ maxBatch: Config.integer("CACHE_BATCH") }),
        { CACHE_BATCH: "0" },
        ["maxBatch"],
        /RedisStore: invalid options: maxBatch must be an integer/
      )
      yield* expectInvalidData(
        RedisStore.layerClusterConfig({ nodes: Config.array(Config.string(), "REDIS_NODES") }),
        { REDIS_NODES: "no-port" },
        ["nodes"],
        /is not "host:port"/
      )
      yield* expectInvalidData(
        RedisStore.layerSentinelConfig({
          sentinels: Config.array(Config.string(), "REDIS_SENTINELS"),
          name: Config.string("REDIS_MASTER"),
          commandTimeout: Config.duration("REDIS_TIMEOUT")
        }),
        { REDIS_SENTINELS: "127.0.0.1:26379", REDIS_MASTER: "main", REDIS_TIMEOUT: "0 millis" },
        ["commandTimeout"],
        /commandTimeout must be greater than zero/
      )
    }))

  it.effect("a URL with credentials that is rejected is not printed", () =>
    Effect.gen(function*() {
      const error = yield* expectInvalidData(
        RedisStore.layerConfig({ url: Config.redacted("REDIS_URL") }),
        { REDIS_URL: "http://cache:s3cret@localhost:6379" },
        ["url"],
        /url must be a redis:\/\/ or rediss:\/\/ URL/
      )
      expect(String(error)).not.toContain("s3cret")
    }))

  it.effect("Redis's config layers: a ConfigError at the option's path, not a defect", () =>
    Effect.gen(function*() {
      yield* expectInvalidData(
        Redis.layerConfig({ db: Config.integer("REDIS_DB") }),
        { REDIS_DB: "-1" },
        ["db"],
        /Redis: invalid options: db must be an integer/
      )
      yield* expectInvalidData(
        Redis.layerClusterConfig({ nodes: Config.array(Config.string(), "REDIS_NODES") }),
        { REDIS_NODES: "127.0.0.1:0" },
        ["nodes"],
        /is not "host:port"/
      )
      yield* expectInvalidData(
        Redis.layerSentinelConfig({
          sentinels: Config.array(Config.string(), "REDIS_SENTINELS"),
          name: Config.string("REDIS_MASTER")
        }),
        { REDIS_SENTINELS: "127.0.0.1:26379", REDIS_MASTER: "" },
        ["name"],
        /name \(the monitored master\) is required/
      )
    }))

  it.effect("missing configuration is still reported by Config itself", () =>
    Effect.gen(function*() {
      const { defect, failure } = yield* buildFailure(
        MemcachedStore.layerConfig({ servers: Config.array(Config.string(), "MEMCACHED_SERVERS") }),
        {}
      )
      expect(defect).toBe(false)
      const error = Option.getOrThrow(failure) as ConfigError.ConfigError
      expect(error._op).toBe("MissingData")
    }))
})
