/**
 * The ioredis client as an Effect service: one `RedisClient` tag over a standalone server, a
 * Sentinel-managed master or a Redis Cluster, with layers that open the connection and close it
 * when their scope closes. `RedisStore` is built on it.
 *
 * The connection defaults are a cache's, not a database's: a short command timeout (500 ms), no
 * offline queue (a call made while disconnected fails at once instead of waiting), in-flight
 * commands failed rather than resent when the connection drops, a socket timeout that drops a
 * silent connection, and a jittered exponential reconnect backoff capped at 2 s.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { Cluster, ClusterOptions as IoClusterOptions, Redis, RedisOptions as IoRedisOptions } from "ioredis"
import { hostname } from "node:os"
import type { ConnectionOptions as TlsOptions } from "node:tls"
import type { StoreError } from "./CacheError.js"
import * as internalOptions from "./internal/options.js"
import * as bus from "./internal/redis/bus.js"
import * as internal from "./internal/redis/client.js"
import { toStoreError } from "./internal/redis/errors.js"
import * as internalJournal from "./internal/redis/journal.js"
import type * as InvalidationBus from "./InvalidationBus.js"
import { InvalidationBus as InvalidationBusTag } from "./InvalidationBus.js"
import type * as WriteBehind from "./WriteBehind.js"

/**
 * Options every connection shares.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  /** ACL user name (Redis 6+). */
  readonly username?: string | Redacted.Redacted<string> | undefined
  /** Password (AUTH). Pass a `Redacted` so it never shows up in logs. */
  readonly password?: string | Redacted.Redacted<string> | undefined
  /** TLS: `true` for the defaults, or Node's `tls.connect` options, passed through as given. */
  readonly tls?: boolean | TlsOptions | undefined
  /** Database index (standalone and Sentinel only). */
  readonly db?: number | undefined
  /** CLIENT SETNAME, to find the connection in `CLIENT LIST`. */
  readonly connectionName?: string | undefined
  /** How long a command may wait for its reply. Default 500 ms. */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** How long a connection attempt may take. Default 2 s. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * A connection that owes replies and receives nothing for this long is dropped and reconnected
   * (a silent network partition). Default: 4 × `commandTimeout`, at least 2 s.
   */
  readonly socketTimeout?: Duration.DurationInput | undefined
  /** Reconnections a command in flight survives before it fails. Default 0: it fails at once. */
  readonly maxRetriesPerRequest?: number | undefined
  /** Queue commands while disconnected instead of failing them. Default false. */
  readonly offlineQueue?: boolean | undefined
  /**
   * ioredis automatic pipelining: commands issued in one tick share one write. Default true. On a
   * standalone server or Sentinel, MGET is left out (`RedisStore` merges concurrent reads into
   * MGETs itself, sooner than ioredis would); on a cluster it groups them per node. See
   * https://github.com/effect-cachekit/effect-cachekit/blob/main/docs/redis.md.
   */
  readonly autoPipelining?: boolean | undefined
  /** Delay between reconnect attempts, fed the attempt number. Default: 50 ms doubling, capped at 2 s, jittered. */
  readonly reconnect?: Schedule.Schedule<unknown, number> | undefined
  /** Raw ioredis options, applied last (for a node of a cluster: its `redisOptions`). */
  readonly ioredis?: Partial<IoRedisOptions> | undefined
}

/**
 * A standalone server, by URL (`redis://user:pass@host:port/db`, `rediss://` for TLS) or by
 * host and port (default `127.0.0.1:6379`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends ClientOptions {
  /** `redis://…` or `rediss://…`; may carry credentials, so it may be `Redacted`. */
  readonly url?: string | Redacted.Redacted<string> | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
}

/**
 * A node address: `{ host, port }` or `"host:port"`.
 *
 * @since 0.1.0
 * @category models
 */
export type NodeAddress = { readonly host: string; readonly port: number } | string

/**
 * A Redis Cluster, reached through any of its nodes; the others are discovered.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClusterOptions extends ClientOptions {
  /** Startup nodes; one reachable node is enough. */
  readonly nodes: ReadonlyArray<NodeAddress>
  /** How often the slot map is refreshed even without a redirection. Default 5 s. */
  readonly slotsRefreshInterval?: Duration.DurationInput | undefined
  /** Raw ioredis `Cluster` options, applied last. */
  readonly ioredisCluster?: Partial<IoClusterOptions> | undefined
}

/**
 * A master found through Redis Sentinel; after a failover the client follows the new master.
 *
 * @since 0.1.0
 * @category models
 */
export interface SentinelOptions extends ClientOptions {
  /** Sentinel addresses; any reachable one is enough. */
  readonly sentinels: ReadonlyArray<NodeAddress>
  /** The master group name the sentinels monitor. */
  readonly name: string
  readonly sentinelUsername?: string | Redacted.Redacted<string> | undefined
  readonly sentinelPassword?: string | Redacted.Redacted<string> | undefined
}

/**
 * How the client reaches Redis.
 *
 * @since 0.1.0
 * @category models
 */
export type Mode = "standalone" | "sentinel" | "cluster"

/**
 * The service behind the `RedisClient` tag.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisClientService {
  /** The ioredis client. */
  readonly client: Redis | Cluster
  readonly mode: Mode
  /** The master connections, for commands that must visit every master (SCAN). */
  readonly masters: () => ReadonlyArray<Redis>
  /** Runs a command; a rejection becomes a `StoreError` with its reason. */
  readonly use: <A>(operation: string, f: (client: Redis | Cluster) => Promise<A>) => Effect.Effect<A, StoreError>
}

/**
 * The ioredis client in context.
 *
 * @since 0.1.0
 * @category tags
 */
export class RedisClient extends Context.Tag("effect-cachekit/RedisClient")<RedisClient, RedisClientService>() {}

/**
 * Wraps a client without taking ownership of it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromClient = (client: Redis | Cluster): RedisClientService => {
  const mode = internal.modeOf(client)
  return {
    client,
    mode,
    masters: () => internal.masters(client),
    use: (operation, f) =>
      Effect.tryPromise({
        try: () => f(client),
        catch: (cause) => toStoreError(`redis ${mode}`, operation, cause, internal.contextOf(client))
      })
  }
}

/**
 * Connects to a standalone server; the client is closed (QUIT, then disconnect) when the scope
 * closes. An unreachable server does not fail this effect: it logs a warning and the client keeps
 * reconnecting, while calls fail fast with `StoreError`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<RedisClientService, never, Scope.Scope> => {
  internal.validateStandalone("Redis", options)
  return Effect.map(
    internal.acquire(() => internal.createStandalone(options), options.connectTimeout),
    fromClient
  )
}

/**
 * Connects to a Redis Cluster.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCluster = (options: ClusterOptions): Effect.Effect<RedisClientService, never, Scope.Scope> => {
  internal.validateCluster("Redis.cluster", options)
  return Effect.map(internal.acquire(() => internal.createCluster(options), options.connectTimeout), fromClient)
}

/**
 * Connects to the master a group of sentinels points at.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSentinel = (options: SentinelOptions): Effect.Effect<RedisClientService, never, Scope.Scope> => {
  internal.validateSentinel("Redis.sentinel", options)
  return Effect.map(internal.acquire(() => internal.createSentinel(options), options.connectTimeout), fromClient)
}

/**
 * A standalone server. Nonsense options throw `InvalidOptions` when `layer` is called (the same
 * holds for `layerCluster`, `layerSentinel` and the `make` constructors).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import * as Redis from "effect-cachekit/Redis"
 *
 * const RedisLive = Redis.layer({ url: "redis://127.0.0.1:6379" })
 * ```
 */
export const layer = (options: Options = {}): Layer.Layer<RedisClient> => Layer.scoped(RedisClient, make(options))

/**
 * A Redis Cluster.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCluster = (options: ClusterOptions): Layer.Layer<RedisClient> =>
  Layer.scoped(RedisClient, makeCluster(options))

/**
 * A Sentinel-managed master.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSentinel = (options: SentinelOptions): Layer.Layer<RedisClient> =>
  Layer.scoped(RedisClient, makeSentinel(options))

/**
 * A standalone server configured from `Config`. Nonsense options fail the layer with a
 * `ConfigError` at the option's path (`InvalidData` at `["port"]`, for example); so do those of
 * `layerClusterConfig` and `layerSentinelConfig`.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { Config } from "effect"
 * import * as Redis from "effect-cachekit/Redis"
 *
 * const RedisLive = Redis.layerConfig({
 *   url: Config.redacted("REDIS_URL"),
 *   commandTimeout: Config.withDefault(Config.duration("REDIS_TIMEOUT"), "500 millis")
 * })
 * ```
 */
export const layerConfig = (config: Config.Config.Wrap<Options>): Layer.Layer<RedisClient, ConfigError.ConfigError> =>
  Layer.unwrapEffect(internalOptions.layerConfig(config, layer))

/**
 * A Redis Cluster configured from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClusterConfig = (
  config: Config.Config.Wrap<ClusterOptions>
): Layer.Layer<RedisClient, ConfigError.ConfigError> =>
  Layer.unwrapEffect(internalOptions.layerConfig(config, layerCluster))

/**
 * A Sentinel-managed master configured from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSentinelConfig = (
  config: Config.Config.Wrap<SentinelOptions>
): Layer.Layer<RedisClient, ConfigError.ConfigError> =>
  Layer.unwrapEffect(internalOptions.layerConfig(config, layerSentinel))

/**
 * A client the caller created and owns: this layer never closes it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromClient = <E, R>(
  acquire: Effect.Effect<Redis | Cluster, E, R>
): Layer.Layer<RedisClient, E, Exclude<R, Scope.Scope>> => Layer.scoped(RedisClient, Effect.map(acquire, fromClient))

/**
 * Options of a write-behind journal on a Redis Stream (`journal`).
 *
 * @since 0.1.0
 * @category models
 */
export interface JournalOptions {
  /** The stream's key. One live process per stream: give each instance its own. */
  readonly stream: string
  /** The consumer group that recovers entries on start. Default `"effect-cachekit"`. */
  readonly group?: string | undefined
  /** This process's consumer name in the group. Default `<hostname>:<pid>`. */
  readonly consumer?: string | undefined
  /**
   * Entries another consumer received and left unacknowledged for this long are taken over on
   * start (that consumer died while recovering). Default 30 seconds.
   */
  readonly claimIdle?: Duration.DurationInput | undefined
}

/**
 * A durable journal for `WriteBehind` (its `journal` option) on a Redis Stream of the
 * `RedisClient` in context: each write is appended (`XADD`) before it is acknowledged to the
 * caller, and acknowledged and deleted (`XACK`, `XDEL`) once `saveBatch` saved it. When the
 * write-behind cache starts, it replays what a process killed before its flush left behind.
 * Creates the consumer group (`XGROUP CREATE … MKSTREAM`) when it does not exist.
 *
 * @since 0.1.0
 * @category write-behind
 * @example
 * ```ts
 * import { WriteBehind } from "effect-cachekit"
 * import * as Redis from "effect-cachekit/Redis"
 * import { Effect, Schema } from "effect"
 *
 * const scores = Effect.gen(function*() {
 *   const journal = yield* Redis.journal({ stream: "scores:journal" })
 *   return yield* WriteBehind.make({
 *     namespace: "score",
 *     value: Schema.Number,
 *     ttl: "1 hour",
 *     flush: "1 second",
 *     journal,
 *     saveBatch: (batch: ReadonlyArray<readonly [string, number]>) => Effect.void
 *   })
 * })
 * ```
 */
export const journal = (options: JournalOptions): Effect.Effect<WriteBehind.Journal, StoreError, RedisClient> => {
  internalOptions.check(
    typeof options.stream === "string" && options.stream.length > 0,
    "Redis.journal",
    "stream",
    "stream must be a non-empty string"
  )
  const claimIdle = options.claimIdle === undefined
    ? 30_000
    : Duration.toMillis(internalOptions.duration("Redis.journal", "claimIdle", options.claimIdle))
  return Effect.flatMap(RedisClient, (redis) =>
    internalJournal.make(redis, {
      stream: options.stream,
      group: options.group ?? "effect-cachekit",
      consumer: options.consumer ?? `${hostname()}:${process.pid}`,
      claimIdleMillis: claimIdle
    }))
}

/**
 * Options of the Redis pub/sub invalidation bus.
 *
 * @since 0.1.0
 * @category models
 */
export interface InvalidationBusOptions {
  /** The channel (default `effect-cachekit:invalidation`): processes that share a store share it. */
  readonly channel?: string | undefined
  /** When to try again after the subscriber lost its connection (default: from 50 ms, doubling, at most 5 s). */
  readonly reconnect?: Schedule.Schedule<unknown, unknown> | undefined
}

/**
 * An invalidation bus over Redis pub/sub, on the client in context (standalone, Sentinel or
 * Cluster, where a message published on one node reaches every node). It subscribes on a
 * connection of its own, closed with the scope; a subscriber that loses its connection reconnects
 * on `reconnect`, counts the disconnection (`InvalidationBus.disconnections`) and, once back,
 * delivers `Missed`: the listeners assume they missed events and drop what they keep.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeInvalidationBus = (
  options: InvalidationBusOptions = {}
): Effect.Effect<InvalidationBus.Service, never, RedisClient | Scope.Scope> =>
  Effect.flatMap(RedisClient, (redis) => bus.make(redis, options))

/**
 * The Redis pub/sub invalidation bus as a layer. Attach it to the store with
 * `InvalidationBus.connect`.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { CacheStore, InvalidationBus } from "effect-cachekit"
 * import * as Redis from "effect-cachekit/Redis"
 * import * as RedisStore from "effect-cachekit/RedisStore"
 * import { Layer } from "effect"
 *
 * // one client for the store and the bus's publishes; the bus subscribes on a connection of its own
 * const CacheLive = InvalidationBus.connect.pipe(
 *   Layer.provideMerge(Layer.scoped(CacheStore.CacheStore, RedisStore.make({ prefix: "app" }))),
 *   Layer.provideMerge(Redis.layerInvalidationBus()),
 *   Layer.provideMerge(Redis.layer({ url: "redis://127.0.0.1:6379" }))
 * )
 * ```
 */
export const layerInvalidationBus = (
  options: InvalidationBusOptions = {}
): Layer.Layer<InvalidationBus.InvalidationBus, never, RedisClient> =>
  Layer.scoped(InvalidationBusTag, makeInvalidationBus(options))
