/**
 * A `CacheStore` over one or more memcached servers (memcached >= 1.6), with a client of its own
 * that speaks the meta protocol over `@effect/platform` sockets.
 *
 * - Keys go to servers by libmemcached-compatible ketama consistent hashing (see `HashRing`),
 *   with optional per-server weights.
 * - Each server gets a small pool of pipelined connections: many requests in flight per
 *   connection, batched into one write, answers matched in order and checked by opaque token.
 *   `getMany`, `setMany` and `deleteMany` send one quiet batch per server, closed by `mn`, and
 *   run the servers' batches in parallel.
 * - Failover: a server that fails `circuitBreaker.failureThreshold` times in a row leaves the
 *   ring (its keys go to the next servers), and is put back once a probe after
 *   `circuitBreaker.resetAfter` succeeds, together with a new generation, so that nothing it held
 *   from before it left is read again. Both are logged and counted.
 * - Keys that memcached cannot hold as they are (over 250 bytes, spaces, control characters,
 *   non-ASCII) are sent base64 (`b` flag) or, when too long even for that, as the SHA-256 of the
 *   key: never truncated, never sent raw.
 * - `clear` removes the prefix's keys in O(1) by moving to a new generation, a number that is part
 *   of every key. Every server holds a copy of it, and a store only ever moves it forward.
 *   `keys(pattern)` is not supported: memcached cannot list keys.
 *
 * This is a deep import (`effect-cachekit/MemcachedStore`); it needs `@effect/platform-node`.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { CacheStore } from "./CacheStore.js"
import type * as CacheStoreModule from "./CacheStore.js"
import * as internal from "./internal/memcached/store.js"
import * as internalOptions from "./internal/options.js"
import { inScope } from "./internal/store.js"

/**
 * Options of the memcached store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The servers, as `"host:port"` (`"host"` alone means port 11211, IPv6 as `"[::1]:11211"`). */
  readonly servers: ReadonlyArray<string>
  /**
   * Relative weights, one positive integer per server, in the order of `servers`. A server of
   * weight 2 holds about twice the keys of a server of weight 1. Default: all 1.
   */
  readonly weights?: ReadonlyArray<number> | undefined
  /** Key prefix of this store; `clear` removes exactly this prefix's keys. Default `"cachekit"`. */
  readonly prefix?: string | undefined
  /** Name in logs, spans, metrics and errors. Default `"memcached"`. */
  readonly name?: string | undefined
  /**
   * Connections per server, each pipelined. Requests fill the first open connection (so they
   * share writes) and spill over to the next past 256 in flight. Default 2.
   */
  readonly poolSize?: number | undefined
  /**
   * How long a request may wait for its answer. A connection whose oldest request waits longer
   * is declared stuck: its requests fail with reason `"timeout"` and it is reopened. Checked every
   * quarter of the timeout (at most every 250 ms), so a request may wait that much longer. Default 1 s.
   */
  readonly timeout?: Duration.DurationInput | undefined
  /** How long opening a connection may take. Default 1 s. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * The servers' item size limit (memcached's `-I`), in bytes. A value that would not fit — value,
   * key and memcached's per-item header together — fails with `ValueTooLarge` before anything is
   * sent. Default 1 MiB, memcached's default.
   */
  readonly maxValueBytes?: number | undefined
  /**
   * Take a failing server out of the ring so that its keys go to the other servers. It comes back
   * under a new generation: every key of the prefix misses once, and nothing the server held
   * before it left is read. With `false`, its keys fail fast (reason `"unavailable"`) while its
   * breaker is open, and do not move. Default true.
   */
  readonly failover?: boolean | undefined
  /**
   * The per-server circuit breaker: it opens after `failureThreshold` consecutive failures
   * (connection, timeout, protocol; default 3) and lets one probe through after `resetAfter`
   * (default 2 s); while open, the server is out of the ring.
   */
  readonly circuitBreaker?: {
    readonly failureThreshold?: number | undefined
    readonly resetAfter?: Duration.DurationInput | undefined
  } | undefined
  /** Backoff between failed connection attempts: exponential from `base` (50 ms), at most `max` (1 s). */
  readonly reconnect?: {
    readonly base?: Duration.DurationInput | undefined
    readonly max?: Duration.DurationInput | undefined
  } | undefined
  /**
   * How often the prefix's generation is re-read (one small read per server in the ring), so that
   * a `clear` made by another process is seen: the window in which this process can still read
   * entries another process cleared. Default 1 s.
   */
  readonly generationRefresh?: Duration.DurationInput | undefined
}

/**
 * The memcached store: a `CacheStore.Service` plus what is specific to memcached.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemcachedStore extends CacheStoreModule.Service {
  /** The key prefix of this store. */
  readonly prefix: string
  /** The servers (`host:port`) currently in the ring. */
  readonly liveServers: () => ReadonlyArray<string>
  /** The server (`host:port`) a key goes to now; `None` before the generation is known or with no server. */
  readonly serverFor: (key: string) => Option.Option<string>
  /** The prefix's current generation (base 36), once read; it only ever moves forward. */
  readonly generation: () => string | undefined
}

/**
 * Opens the connections and returns the store; closing the scope closes them. Nonsense options
 * throw `InvalidOptions` at the call, before anything is opened. A server that is down when the
 * store starts does not fail it: its requests fail until it is reachable, and failover takes it
 * out of the ring.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { CacheStore } from "effect-cachekit/CacheStore"
 * import * as MemcachedStore from "effect-cachekit/MemcachedStore"
 *
 * const StoreLive = Layer.scoped(CacheStore, MemcachedStore.make({ servers: ["127.0.0.1:11211"], prefix: "app" }))
 * ```
 */
export const make = (options: Options): Effect.Effect<MemcachedStore, never, Scope.Scope> => {
  internal.validate(options)
  return inScope(internal.make(options))
}

/**
 * The store as a layer providing `CacheStore`. Nonsense options throw `InvalidOptions` when
 * `layer` is called.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import * as MemcachedStore from "effect-cachekit/MemcachedStore"
 *
 * const StoreLive = MemcachedStore.layer({
 *   servers: ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"],
 *   weights: [1, 1, 2],
 *   prefix: "app"
 * })
 * ```
 */
export const layer = (options: Options): Layer.Layer<CacheStore> => {
  internal.validate(options)
  return Layer.scoped(CacheStore, inScope(internal.make(options)))
}

/**
 * The store as a layer, configured from `Config` (environment variables by default). Nonsense
 * options fail the layer with a `ConfigError` at the option's path (`InvalidData` at
 * `["servers"]`, for example).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { Config } from "effect"
 * import * as MemcachedStore from "effect-cachekit/MemcachedStore"
 *
 * // MEMCACHED_SERVERS=10.0.0.1:11211,10.0.0.2:11211
 * const StoreLive = MemcachedStore.layerConfig({
 *   servers: Config.array(Config.string(), "MEMCACHED_SERVERS"),
 *   prefix: Config.withDefault(Config.string("CACHE_PREFIX"), "app")
 * })
 * ```
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<CacheStore, ConfigError.ConfigError> => Layer.unwrapEffect(internalOptions.layerConfig(config, layer))
