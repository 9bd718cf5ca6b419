/**
 * A `CacheStore` over Redis — standalone, Sentinel or Cluster — through ioredis.
 *
 * - Values are bytes, stored binary-safe; keys are `<prefix>:<key>`, and `clear` / `keys` walk
 *   only that prefix with SCAN (never KEYS) on every master.
 * - Concurrent single `get`s from many fibers in one tick are merged into MGETs (one per hash
 *   slot on a cluster); multi-key operations are split per slot so a cluster accepts them.
 * - Every command is bounded by `commandTimeout` (default 500 ms), and a circuit breaker skips
 *   Redis after repeated failures (calls fail at once with `StoreError` reason `"unavailable"`)
 *   until a probe succeeds.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Cluster, Redis as IoRedis } from "ioredis"
import { CacheStore } from "./CacheStore.js"
import type * as CacheStoreModule from "./CacheStore.js"
import * as internalOptions from "./internal/options.js"
import * as internal from "./internal/redis/store.js"
import { inScope } from "./internal/store.js"
import * as Redis from "./Redis.js"

/**
 * Options of the store itself (the connection options live in `Redis`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Key prefix of this store: keys are stored as `<prefix>:<key>`. Default `"cachekit"`; `""` for none. */
  readonly prefix?: string | undefined
  /** Name in logs, spans, metrics and errors. Default `"redis"`. */
  readonly name?: string | undefined
  /** How long one command may take before the call fails with reason `"timeout"`. Default 500 ms. */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** Largest value accepted, in bytes; larger ones fail with `ValueTooLarge`. Default and maximum 512 MiB. */
  readonly maxValueBytes?: number | undefined
  /** Merge concurrent single gets into MGETs. Default true. */
  readonly batchGets?: boolean | undefined
  /** Most keys in one MGET or UNLINK: coalesced gets, `getMany`, `deleteMany` and `clear`. Default 500. */
  readonly maxBatch?: number | undefined
  /** The circuit breaker, or `false` for none. Default: opens after 5 consecutive failures, probes after 1 s. */
  readonly circuitBreaker?:
    | false
    | {
      readonly failureThreshold?: number | undefined
      readonly resetAfter?: Duration.DurationInput | undefined
    }
    | undefined
}

/**
 * The Redis store: a `CacheStore.Service` plus what is specific to Redis.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisStore extends CacheStoreModule.Service {
  /** The key prefix of this store. */
  readonly prefix: string
  /** The client the store runs on. */
  readonly redis: Redis.RedisClientService
  /** The circuit breaker's state (`"closed"` when the breaker is disabled). */
  readonly breakerState: () => "closed" | "open" | "half-open"
}

/**
 * A store over the `RedisClient` in context. Several stores with different prefixes can share
 * one client.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { CacheStore } from "effect-cachekit/CacheStore"
 * import * as Redis from "effect-cachekit/Redis"
 * import * as RedisStore from "effect-cachekit/RedisStore"
 *
 * const StoreLive = Layer.effect(CacheStore, RedisStore.make({ prefix: "app" })).pipe(
 *   Layer.provide(Redis.layer({ url: "redis://127.0.0.1:6379" }))
 * )
 * ```
 */
export const make = (options: Options = {}): Effect.Effect<RedisStore, never, Redis.RedisClient> => {
  internal.validate(options)
  return Effect.flatMap(Redis.RedisClient, (client) => internal.make(client, options))
}

const storeOptions = (options: Options): Options => ({
  prefix: options.prefix,
  name: options.name,
  commandTimeout: options.commandTimeout,
  maxValueBytes: options.maxValueBytes,
  batchGets: options.batchGets,
  maxBatch: options.maxBatch,
  circuitBreaker: options.circuitBreaker
})

const over = (options: Options, client: Layer.Layer<Redis.RedisClient>): Layer.Layer<CacheStore> => {
  internal.validate(options)
  return Layer.scoped(CacheStore, inScope(make(storeOptions(options)))).pipe(Layer.provide(client))
}

/**
 * A store on a standalone server. The connection is opened when the layer is built and closed
 * with it. Nonsense options throw `InvalidOptions` when `layer` is called (the same holds for
 * `layerCluster`, `layerSentinel`, `layerFromClient` and `make`).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import * as RedisStore from "effect-cachekit/RedisStore"
 *
 * const StoreLive = RedisStore.layer({ url: "redis://127.0.0.1:6379", prefix: "app" })
 * ```
 */
export const layer = (options: Redis.Options & Options = {}): Layer.Layer<CacheStore> =>
  over(options, Redis.layer(options))

/**
 * A store on a Redis Cluster.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCluster = (options: Redis.ClusterOptions & Options): Layer.Layer<CacheStore> =>
  over(options, Redis.layerCluster(options))

/**
 * A store on the master of a Sentinel group; it follows failovers.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSentinel = (options: Redis.SentinelOptions & Options): Layer.Layer<CacheStore> =>
  over(options, Redis.layerSentinel(options))

/**
 * A store on a standalone server, configured from `Config` (environment variables by default).
 * Nonsense options fail the layer with a `ConfigError` at the option's path (`InvalidData` at
 * `["url"]`, for example); so do those of `layerClusterConfig` and `layerSentinelConfig`.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { Config } from "effect"
 * import * as RedisStore from "effect-cachekit/RedisStore"
 *
 * const StoreLive = RedisStore.layerConfig({
 *   url: Config.redacted("REDIS_URL"),
 *   prefix: Config.withDefault(Config.string("CACHE_PREFIX"), "app")
 * })
 * ```
 */
export const layerConfig = (
  config: Config.Config.Wrap<Redis.Options & Options>
): Layer.Layer<CacheStore, ConfigError.ConfigError> => Layer.unwrapEffect(internalOptions.layerConfig(config, layer))

/**
 * A store on a Redis Cluster, configured from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClusterConfig = (
  config: Config.Config.Wrap<Redis.ClusterOptions & Options>
): Layer.Layer<CacheStore, ConfigError.ConfigError> =>
  Layer.unwrapEffect(internalOptions.layerConfig(config, layerCluster))

/**
 * A store on a Sentinel-managed master, configured from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSentinelConfig = (
  config: Config.Config.Wrap<Redis.SentinelOptions & Options>
): Layer.Layer<CacheStore, ConfigError.ConfigError> =>
  Layer.unwrapEffect(internalOptions.layerConfig(config, layerSentinel))

/**
 * A store on a client the caller created. The caller owns the client: the layer never closes
 * it. The store's own command timeout still bounds every call, whatever the client's settings.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Redis } from "ioredis"
 * import * as RedisStore from "effect-cachekit/RedisStore"
 *
 * const StoreLive = RedisStore.layerFromClient(
 *   Effect.acquireRelease(Effect.sync(() => new Redis()), (r) => Effect.promise(() => r.quit())),
 *   { prefix: "app" }
 * )
 * ```
 */
export const layerFromClient = <E, R>(
  acquire: Effect.Effect<IoRedis | Cluster, E, R>,
  options: Options = {}
): Layer.Layer<CacheStore, E, Exclude<R, Scope.Scope>> => {
  internal.validate(options)
  return Layer.scoped(
    CacheStore,
    Effect.flatMap(
      acquire,
      (client) => Effect.provideService(inScope(make(options)), Redis.RedisClient, Redis.fromClient(client))
    )
  )
}
