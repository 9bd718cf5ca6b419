/**
 * Write-through caching: every write goes to the source of truth first and then to the cache, so
 * the cache holds only what the source accepted. Reads are read-through on `load`.
 *
 * Writes to one key are serialised (the source and then the cache, one writer at a time), writes
 * to different keys run in parallel, and a write supersedes any load of the key under way: after
 * `write` returns, the cache holds the value the source holds last, or nothing.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Cache from "./Cache.js"
import { UnsupportedCapability } from "./CacheError.js"
import type { CacheError } from "./CacheError.js"
import type * as CacheMetrics from "./CacheMetrics.js"
import type { CacheStore } from "./CacheStore.js"
import { keyedLockOf } from "./internal/keyedLock.js"
import * as strategy from "./internal/strategy.js"

/**
 * A write-through cache of `A` by key `K` over a source whose operations fail with `E`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WriteThrough<in K, A, E = never> {
  /**
   * The value of a key: from the cache when fresh, else from `load` (one load per key at a time),
   * which is then cached. `None` only when no `load` was given and the cache has no entry.
   */
  readonly read: (key: K) => Effect.Effect<Option.Option<A>, E | CacheError>
  /**
   * Saves the value to the source, then caches it. When `save` fails the cache is untouched and
   * the error is the caller's; when caching fails after the save, the key's entry is removed, and
   * when that fails too the write fails with `StoreError` (the source has the value, the cache
   * may still hold the old one).
   */
  readonly write: (key: K, value: A) => Effect.Effect<void, E | CacheError>
  /**
   * Removes the key from the source (`remove`), then its cache entry. Without `remove` it fails
   * with `UnsupportedCapability` and touches nothing.
   */
  readonly delete: (key: K) => Effect.Effect<void, E | CacheError>
  /** Removes the key's cache entry only; true when there was one. */
  readonly invalidate: (key: K) => Effect.Effect<boolean, CacheError>
  /** Counters of this cache since it was made. */
  readonly stats: Effect.Effect<CacheMetrics.Stats>
}

/**
 * Options of a write-through cache.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<K, A, I, E, R> extends Cache.Options<A, I> {
  /** Writes one value to the source of truth (an upsert). */
  readonly save: (key: K, value: A) => Effect.Effect<void, E, R>
  /** Loads one value from the source on a cache miss, once per key at a time. */
  readonly load?: ((key: K) => Effect.Effect<A, E, R>) | undefined
  /** Removes one key from the source; `delete` needs it. */
  readonly remove?: ((key: K) => Effect.Effect<void, E, R>) | undefined
  /** How a key becomes the string stored (default: strings as they are, other values by `String`/JSON). */
  readonly key?: ((key: K) => string) | undefined
}

/**
 * Builds a write-through cache over the `CacheStore` in context. The source operations'
 * requirements `R` are taken from the context of `make`; background work (shared loads) belongs
 * to the scope. Nonsense options throw `CacheError.InvalidOptions` when `make` is called.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { MemoryStore, WriteThrough } from "effect-cachekit"
 * import { Effect, Schema } from "effect"
 *
 * const rows = new Map<string, string>()
 *
 * const program = Effect.gen(function*() {
 *   const names = yield* WriteThrough.make({
 *     namespace: "name",
 *     value: Schema.String,
 *     ttl: "10 minutes",
 *     save: (id: string, name: string) => Effect.sync(() => void rows.set(id, name)),
 *     load: (id: string) => Effect.sync(() => rows.get(id) ?? "unknown")
 *   })
 *   yield* names.write("1", "Ada")
 *   return yield* names.read("1") // Option.some("Ada"), from the cache
 * })
 *
 * Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(MemoryStore.layer())))
 * ```
 */
export const make = <K, A, I, E, R>(
  options: Options<K, A, I, E, R>
): Effect.Effect<WriteThrough<K, A, E>, never, CacheStore | Scope.Scope | R> => {
  const resolved = strategy.resolve("WriteThrough", options)
  const keyOf: (key: K) => string = options.key ?? strategy.defaultKey
  return Effect.gen(function*() {
    const context = yield* strategy.sourceContext<R>()
    const pipeline = yield* strategy.makeScoped(resolved)
    const lock = keyedLockOf(pipeline.store)
    const { load, remove, save } = options
    const lookup = load === undefined ? undefined : (key: K) => Effect.provide(load(key), context)
    const notRemovable = new UnsupportedCapability({
      store: `WriteThrough(${resolved.namespace})`,
      capability: "delete",
      detail: "no remove was given"
    })
    return {
      read: (key) => strategy.readOrLoad(pipeline, keyOf(key), key, lookup),
      write: (key, value) => {
        const k = keyOf(key)
        return lock.withLock(pipeline.fullKey(k))(
          Effect.zipRight(Effect.provide(save(key, value), context), pipeline.replace(k, value))
        )
      },
      delete: (key) => {
        if (remove === undefined) return Effect.fail(notRemovable)
        const k = keyOf(key)
        return lock.withLock(pipeline.fullKey(k))(
          Effect.zipRight(Effect.provide(remove(key), context), Effect.asVoid(pipeline.invalidate(k)))
        )
      },
      invalidate: (key) => pipeline.invalidate(keyOf(key)),
      stats: pipeline.stats
    }
  })
}

/**
 * A tag for a write-through cache, for programs that prefer `Context.GenericTag` to a class tag.
 *
 * @since 0.1.0
 * @category tags
 * @example
 * ```ts
 * import { WriteThrough } from "effect-cachekit"
 *
 * const Accounts = WriteThrough.Tag<string, { readonly balance: number }>("app/Accounts")
 * ```
 */
export const Tag = <K, A, E = never>(key: string): Context.Tag<WriteThrough<K, A, E>, WriteThrough<K, A, E>> =>
  Context.GenericTag<WriteThrough<K, A, E>>(key)
