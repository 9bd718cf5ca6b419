/**
 * The embedded, in-process store and the default of the whole toolkit. Bounded by entries and/or
 * approximate bytes, evicting by its eviction policy, expiring by Effect's `Clock` (so
 * `TestClock.adjust` drives expiry in tests), and keeping values by reference: a hit does no
 * serialisation at all.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { CacheStore } from "./CacheStore.js"
import type * as CacheStoreNs from "./CacheStore.js"
import * as internal from "./internal/memoryStore.js"
import * as internalOptions from "./internal/options.js"
import { inScope } from "./internal/store.js"

/**
 * Options of the memory store. Every field is optional.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Most entries held before the eviction policy makes room (default 10,000; `Infinity` for unbounded). */
  readonly capacity?: number | undefined
  /** Most approximate bytes held (values' encoded sizes plus keys); unbounded by default. */
  readonly maxBytes?: number | undefined
  /**
   * Which entries leave first when the store is full (default `"w-tinylfu"`; see
   * https://github.com/effect-cachekit/effect-cachekit/blob/main/docs/eviction.md).
   */
  readonly eviction?: "lru" | "w-tinylfu" | undefined
  /**
   * Shortest time between two sweeps of expired entries (default 1 minute; reads drop them lazily
   * too). The sweep runs when the earliest entry expires, never on a fixed beat.
   */
  readonly sweepInterval?: Duration.DurationInput | undefined
  /** Name in metrics, spans and errors (default `"memory"`). */
  readonly name?: string | undefined
}

const resolve = (options: Options = {}): internal.MakeOptions => {
  const capacity = options.capacity ?? 10_000
  internalOptions.check(
    capacity === Infinity || (Number.isSafeInteger(capacity) && capacity > 0),
    "MemoryStore",
    "capacity",
    `capacity must be a positive integer or Infinity, got ${capacity}`
  )
  const maxBytes = options.maxBytes ?? Infinity
  internalOptions.check(
    maxBytes === Infinity || (Number.isFinite(maxBytes) && maxBytes > 0),
    "MemoryStore",
    "maxBytes",
    `maxBytes must be a positive number, got ${maxBytes}`
  )
  const eviction = options.eviction ?? "w-tinylfu"
  internalOptions.check(
    eviction === "lru" || eviction === "w-tinylfu",
    "MemoryStore",
    "eviction",
    `eviction must be "lru" or "w-tinylfu", got ${String(eviction)}`
  )
  const name = options.name ?? "memory"
  internalOptions.check(
    typeof name === "string" && name.length > 0,
    "MemoryStore",
    "name",
    "name must be a non-empty string"
  )
  const sweepInterval = options.sweepInterval === undefined
    ? Duration.minutes(1)
    : internalOptions.duration("MemoryStore", "sweepInterval", options.sweepInterval, true)
  return {
    name,
    capacity,
    maxBytes,
    eviction,
    sweepInterval: Duration.isFinite(sweepInterval) ? sweepInterval : undefined
  }
}

/**
 * Builds a memory store in a scope; closing the scope stops its sweep fiber and drops its entries.
 * Nonsense options throw `CacheError.InvalidOptions` when `make` is called.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: Options): Effect.Effect<CacheStoreNs.Service, never, Scope.Scope> =>
  inScope(internal.make(resolve(options)))

/**
 * The memory store as the program's `CacheStore`. Nonsense options throw
 * `CacheError.InvalidOptions` when `layer` is called.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { MemoryStore } from "effect-cachekit"
 *
 * const StoreLive = MemoryStore.layer({ capacity: 50_000, maxBytes: 64 * 1024 * 1024 })
 * ```
 */
export const layer = (options?: Options): Layer.Layer<CacheStore> => {
  const resolved = resolve(options)
  return Layer.scoped(CacheStore, inScope(internal.make(resolved)))
}

/**
 * The memory store configured from `Config` (for example environment variables through the
 * default `ConfigProvider`). Nonsense options fail the layer with a `ConfigError` at the option's
 * path (`InvalidData` at `["capacity"]`, for example).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { MemoryStore } from "effect-cachekit"
 * import { Config } from "effect"
 *
 * const StoreLive = MemoryStore.layerConfig({
 *   capacity: Config.integer("CACHE_CAPACITY").pipe(Config.withDefault(10_000))
 * })
 * ```
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<CacheStore, ConfigError.ConfigError> => Layer.unwrapEffect(internalOptions.layerConfig(config, layer))
