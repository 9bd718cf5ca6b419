/**
 * Cache-aside: the program owns loading and writing; the cache is a typed, namespaced map with
 * TTLs over the `CacheStore`. `getOrLoad` adds the one thing hand-written cache-aside code gets
 * wrong — concurrent misses of one key share one load.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Cache from "./Cache.js"
import type { CacheError } from "./CacheError.js"
import type * as CacheMetrics from "./CacheMetrics.js"
import type { CacheStore } from "./CacheStore.js"
import * as invalidation from "./internal/invalidation.js"
import * as strategy from "./internal/strategy.js"
import type * as Invalidation from "./Invalidation.js"

/**
 * A cache-aside handle for values of type `A` by key `K`; `EN`: the failures it caches (`negative`).
 *
 * @since 0.1.0
 * @category models
 */
export interface CacheAside<in K, A, EN = never> extends Invalidation.Invalidating<K> {
  /** The cached value of a key, if fresh (or servable stale); fails with a cached failure (`negative`). Never loads. */
  readonly get: (key: K) => Effect.Effect<Option.Option<A>, EN | CacheError>
  /** The cached value, or the result of `load` (run once per key at a time), which is then stored. */
  readonly getOrLoad: <E, R>(key: K, load: Effect.Effect<A, E, R>) => Effect.Effect<A, E | EN | CacheError, R>
  /**
   * Stores a value, with tags of its own besides those of the `tags` option; fails with
   * `EncodeError` (leaving the old entry untouched) when it does not encode. When the store
   * refuses the write, the key's old entry is removed instead; when that fails too, `set` fails
   * with `StoreError` whatever `onStoreError` says, since the old value may still be served.
   */
  readonly set: (key: K, value: A, options?: SetOptions) => Effect.Effect<void, CacheError>
  /**
   * The fresh value of a key with the version it was written with (0 when written without one),
   * or none — also when its version is below `minVersion`. Tags and freshness are checked as
   * `get` checks them; a stale value is never returned.
   */
  readonly getVersioned: (
    key: K,
    options?: Cache.GetVersionedOptions
  ) => Effect.Effect<Option.Option<Cache.Versioned<A>>, CacheError>
  /**
   * Stores a value with its version (a whole number from 1), unless the key holds a version at
   * least as high: then nothing changes and the result is `Outdated` with the version kept. The
   * compare and the write are one atomic step across processes (a Lua script on Redis, a
   * compare-and-swap on memcached); a store that cannot do that fails with
   * `UnsupportedCapability`. A plain `set` or a load writes version 0, which any version replaces.
   */
  readonly setVersioned: (
    key: K,
    value: A,
    version: number,
    options?: SetOptions
  ) => Effect.Effect<Cache.VersionedWrite, CacheError>
  /** Counters of this cache since it was made. */
  readonly stats: Effect.Effect<CacheMetrics.Stats>
}

/**
 * Options of one `set`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SetOptions {
  /** Tags of this entry, recorded besides those the `tags` option gives. */
  readonly tags?: ReadonlyArray<string> | undefined
}

/**
 * Options of a cache-aside handle.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<K, A, I, EN = never, IN = never> extends Cache.Options<A, I> {
  /** How a key becomes the string stored (default: strings as they are, other values by `String`/JSON). */
  readonly key?: ((key: K) => string) | undefined
  /**
   * Negative caching: failures of `getOrLoad`'s effect that `negative.error` recognises are cached
   * for `negative.ttl`; meanwhile `getOrLoad` and `get` fail with the same failure, without
   * running the effect (`get`'s `None` stays "nothing cached"). See `Cache.NegativeOptions`.
   */
  readonly negative?: Cache.NegativeOptions<EN, IN> | undefined
}

const run = <A, E, R>(effect: Effect.Effect<A, E, R>) => effect

/**
 * Builds a cache-aside handle over the `CacheStore` in context. Nonsense options throw
 * `CacheError.InvalidOptions` when `make` is called.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { CacheAside, MemoryStore } from "effect-cachekit"
 * import { Effect, Option, Schema } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const sessions = yield* CacheAside.make({ namespace: "session", value: Schema.String, ttl: "30 minutes" })
 *   yield* sessions.set("s1", "alice")
 *   return yield* sessions.get("s1") // Option.some("alice")
 * })
 *
 * Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(MemoryStore.layer())))
 * ```
 */
export const make = <K, A, I, EN = never, IN = never>(
  options: Options<K, A, I, EN, IN>
): Effect.Effect<CacheAside<K, A, EN>, never, CacheStore | Scope.Scope> => {
  const resolved = strategy.resolve("CacheAside", options)
  const keyOf: (key: K) => string = options.key ?? strategy.defaultKey
  return Effect.map(strategy.makeScoped(resolved), (pipeline) => ({
    // a cached failure (negative caching) fails `get` with that failure: distinct from `None`
    get: (key) => pipeline.read(keyOf(key)) as Effect.Effect<Option.Option<A>, EN | CacheError>,
    getOrLoad: (key, load) => pipeline.getOrLoad(keyOf(key), load, run),
    set: (key, value, options) => pipeline.write(keyOf(key), value, options?.tags),
    getVersioned: (key, options) => pipeline.getVersioned(keyOf(key), options),
    setVersioned: (key, value, version, options) => pipeline.setVersioned(keyOf(key), value, version, options?.tags),
    ...invalidation.verbsOf(pipeline, keyOf),
    stats: pipeline.stats
  }))
}
