/**
 * Read-through caching: the cache owns the loader. `get` answers from the store when it can and
 * otherwise runs `lookup` — once per key at a time, however many fibers ask — and stores the
 * result with the namespace's Schema and TTL policy.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
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
 * A read-through cache of `A` by key `K`, whose loader fails with `E`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadThrough<in K, A, E = never> extends Invalidation.Invalidating<K> {
  /** The value of a key: from the store when fresh, else from `lookup` (one load per key at a time). */
  readonly get: (key: K) => Effect.Effect<A, E | CacheError>
  /**
   * Many values in one store round trip, aligned with `keys`; the misses load together in one
   * `lookupMany` call when it was given (a key it does not return is `None`), else one `lookup`
   * per distinct key.
   */
  readonly getMany: (keys: Iterable<K>) => Effect.Effect<Array<Option.Option<A>>, E | CacheError>
  /** Loads a key now (joining a load already under way) and stores the result. */
  readonly refresh: (key: K) => Effect.Effect<A, E | CacheError>
  /** Counters of this cache since it was made. */
  readonly stats: Effect.Effect<CacheMetrics.Stats>
}

/**
 * Options of a read-through cache.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<K, A, I, E, R, EN = never, IN = never> extends Cache.Options<A, I> {
  /** Loads one value; runs on a miss, once per key at a time. */
  readonly lookup: (key: K) => Effect.Effect<A, E, R>
  /**
   * Loads many values at once: used by `getMany` for all its misses in ONE call. It answers with
   * each value under its key — a `Map`, or `[key, value]` pairs, in any order (as SQL's
   * `WHERE id IN (…)` returns rows). A key it leaves out is not found; a key it was not asked
   * for, or returns twice, fails the batch with `CacheError.BatchMismatch`.
   */
  readonly lookupMany?:
    | ((keys: ReadonlyArray<K>) => Effect.Effect<Iterable<readonly [K, A]>, E, R>)
    | undefined
  /** How a key becomes the string stored (default: strings as they are, other values by `String`/JSON). */
  readonly key?: ((key: K) => string) | undefined
  /**
   * Negative caching: the loader's failures that `negative.error` recognises are cached for
   * `negative.ttl`, and `get` fails with the same failure meanwhile, without loading. See
   * `Cache.NegativeOptions` and docs/ttl.md.
   */
  readonly negative?: Cache.NegativeOptions<EN, IN> | undefined
}

/**
 * Builds a read-through cache over the `CacheStore` in context. Background work (shared loads,
 * stale-while-revalidate refreshes) belongs to the scope: closing it stops that work. The
 * loader's requirements `R` are taken from the context of `make`.
 *
 * Nonsense options throw `CacheError.InvalidOptions` when `make` is called.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { MemoryStore, ReadThrough } from "effect-cachekit"
 * import { Effect, Schema } from "effect"
 *
 * const User = Schema.Struct({ id: Schema.String, name: Schema.String })
 *
 * const program = Effect.gen(function*() {
 *   const users = yield* ReadThrough.make({
 *     namespace: "user",
 *     value: User,
 *     lookup: (id: string) => Effect.succeed({ id, name: "Ada" }),
 *     ttl: "5 minutes"
 *   })
 *   return yield* users.get("42")
 * })
 *
 * Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(MemoryStore.layer())))
 * ```
 */
export const make = <K, A, I, E, R, EN = never, IN = never>(
  options: Options<K, A, I, E, R, EN, IN>
): Effect.Effect<ReadThrough<K, A, E | EN>, never, CacheStore | Scope.Scope | R> => {
  const resolved = strategy.resolve("ReadThrough", options)
  const keyOf: (key: K) => string = options.key ?? strategy.defaultKey
  return Effect.gen(function*() {
    const context = yield* strategy.sourceContext<R>()
    const pipeline = yield* strategy.makeScoped(resolved)
    const lookup = (key: K) => Effect.provide(options.lookup(key), context)
    const lookupMany = options.lookupMany
    const getMany = (keys: Iterable<K>) =>
      Effect.suspend(() => {
        const args = Array.from(keys)
        return pipeline.getManyOrLoad(
          args.map(keyOf),
          args,
          lookup,
          lookupMany === undefined
            ? undefined
            : (indices) =>
              Effect.map(
                Effect.provide(lookupMany(indices.map((i) => args[i]!)), context),
                (answer) => Array.from(answer, ([key, value]) => [keyOf(key), value] as const)
              )
        )
      })
    return {
      get: (key) => pipeline.getOrLoad(keyOf(key), key, lookup),
      getMany,
      refresh: (key) => pipeline.refresh(keyOf(key), key, lookup),
      ...invalidation.verbsOf(pipeline, keyOf),
      stats: pipeline.stats
    }
  })
}

/**
 * A tag for a read-through cache, for programs that prefer `Context.GenericTag` to a class tag.
 *
 * @since 0.1.0
 * @category tags
 * @example
 * ```ts
 * import { ReadThrough } from "effect-cachekit"
 *
 * const Users = ReadThrough.Tag<string, { readonly name: string }>("app/Users")
 * ```
 */
export const Tag = <K, A, E = never>(key: string): Context.Tag<ReadThrough<K, A, E>, ReadThrough<K, A, E>> =>
  Context.GenericTag<ReadThrough<K, A, E>>(key)
