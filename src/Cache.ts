/**
 * The options every cache handle shares, and two combinators that cache any effect over the
 * `CacheStore` in context: `cached` (pipeable, for one effect under one key) and `cachedFunction`
 * (an effectful function whose results are cached by argument).
 *
 * All of them go through the same load pipeline as the strategies: one load per key at a time
 * (concurrent misses share it), stored with the value's Schema, failures passed through untouched
 * and never cached.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import type { CacheError } from "./CacheError.js"
import type * as CacheMetrics from "./CacheMetrics.js"
import type { CacheStore } from "./CacheStore.js"
import * as strategy from "./internal/strategy.js"
import type * as Ttl from "./Ttl.js"

/**
 * Options shared by every typed cache handle.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<A, I = unknown> {
  /** The namespace: the first part of every key (`<namespace>:<key>`, its own `:` and `\\` escaped), and a metric label. */
  readonly namespace: string
  /** The Schema values are stored with. Stored bytes that no longer decode with it are a miss. */
  readonly value: Schema.Schema<A, I, never>
  /**
   * The version of what is stored, when you decide it yourself: entries written under another
   * version are a miss. Without it, a fingerprint of the Schema's structure decides, so any
   * structural change (an added optional field included) is a miss, and a change of meaning
   * with the same shape is not.
   */
  readonly schemaVersion?: string | number | undefined
  /** How long an entry stays fresh: a duration or a `Ttl` policy. `Duration.infinity` keeps it until evicted. */
  readonly ttl: Ttl.Input<A>
  /** For how long after it goes stale an entry is still served while one background load refreshes it. */
  readonly staleWhileRevalidate?: Duration.DurationInput | undefined
  /**
   * Most background refreshes (stale-while-revalidate) of this cache running at once; more wait
   * their turn while the stale value is served. An integer ≥ 1, 16 by default.
   */
  readonly refreshConcurrency?: number | undefined
  /**
   * When the loader fails (its own error or `LoadTimeout`) and an entry at most `maxStale` past its
   * expiry exists, return that value instead of the error (logged and counted), and keep it for
   * `throttle` before the loader is tried again. Entries stay in the store for `maxStale` after
   * their TTL for this.
   */
  readonly failSafe?: FailSafeOptions | undefined
  /**
   * Probabilistic early recompute (XFetch): a fresh read close to expiry refreshes the entry in
   * the background with probability `exp(−τ / (beta·δ))`, τ the time to expiry and δ the load
   * time the entry recorded; `beta` > 0 (1 is the paper's default, more recomputes earlier).
   */
  readonly earlyRecompute?: { readonly beta: number } | undefined
  /**
   * Distributed lock: one loader per key across every process sharing the store. A load takes
   * the key's lease for `ttl` (extended while the load runs); callers in other processes poll the
   * entry until the holder's value is there, for at most `wait`, then get a kept stale value when
   * there is one, else `onTimeout` decides. Needs a store that grants leases (memory, Redis,
   * memcached); on another store, loads fail with `UnsupportedCapability`. See `LockOptions`.
   */
  readonly lock?: LockOptions | undefined
  /** `"fallback"` (default): store failures are counted and the cache is bypassed. `"fail"`: they fail the call. */
  readonly onStoreError?: "fallback" | "fail" | undefined
  /** Fails a load that takes longer with `CacheError.LoadTimeout` (no timeout by default); `timeouts.hard`'s shorthand. */
  readonly loadTimeout?: Duration.DurationInput | undefined
  /**
   * `soft`: a caller holding a value kept by `failSafe` waits this long for a load, then gets that
   * value while the load goes on and fills the cache (needs `failSafe`). `hard`: a load that takes
   * longer fails with `CacheError.LoadTimeout` (as `loadTimeout`). For `get` and `getMany` alike.
   */
  readonly timeouts?: TimeoutOptions | undefined
  /**
   * The tags of an entry, recorded with the current version of each tag when it is written:
   * `Invalidation.invalidateTag(tag)` makes every entry of the tag a miss, `expireTag(tag)` makes
   * them stale. A tag names entries of every namespace over the store. See docs/invalidation.md.
   */
  readonly tags?: ((value: A, key: string) => ReadonlyArray<string>) | undefined
  /**
   * How long a version of a tag read from the store is trusted before a read checks it again (1
   * second by default): how late this process can see an invalidation made by another one. An
   * invalidation made in this process is seen at once.
   */
  readonly versionWindow?: Duration.DurationInput | undefined
  /**
   * A version of the namespace is part of every key, so `Invalidation.bumpVersion(namespace)`
   * makes every entry of the namespace a miss with one write to the store, on every store. The
   * version is read once per `versionWindow`; entries of an old version are left to their TTL.
   */
  readonly versioned?: boolean | undefined
}

/**
 * A cached value with the version it was written with (`setVersioned`); 0 for a value stored
 * without one (a load, a plain `set`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Versioned<A> {
  readonly value: A
  readonly version: number
}

/**
 * What a `setVersioned` did: `Written`, or `Outdated` when the key already held a version at least
 * as high (`current`), which it kept.
 *
 * @since 0.1.0
 * @category models
 */
export type VersionedWrite =
  | { readonly _tag: "Written" }
  | { readonly _tag: "Outdated"; readonly current: number }

/**
 * Options of `getVersioned`.
 *
 * @since 0.1.0
 * @category models
 */
export interface GetVersionedOptions {
  /** A value of a lower version is not returned (a miss): the reader has seen this version already. */
  readonly minVersion?: number | undefined
}

/**
 * Negative caching (the `negative` option of `ReadThrough` and `CacheAside`): a load's failure
 * that `error` recognises (and `when` accepts) is cached for `ttl`, and a read within it fails
 * with that same failure, typed, without calling the loader. The Schema both picks the failures
 * and stores them (a byte store holds the encoded error; a read decodes it back into the class),
 * so a `Schema.TaggedError` class is the usual choice. `CacheError`s (a `LoadTimeout` above all)
 * are never cached, nor is an interruption. A cached failure has no stale window and no tags:
 * `invalidate`, `expire` (which makes it a miss), a write of the key, a namespace version bump or
 * its TTL end it.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { ReadThrough } from "effect-cachekit"
 * import { Effect, Schema } from "effect"
 *
 * class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { id: Schema.String }) {}
 *
 * const users = ReadThrough.make({
 *   namespace: "user",
 *   value: Schema.Struct({ id: Schema.String, name: Schema.String }),
 *   ttl: "5 minutes",
 *   lookup: (id: string) => id === "0" ? Effect.fail(new NotFound({ id })) : Effect.succeed({ id, name: "Ada" }),
 *   negative: { ttl: "30 seconds", error: NotFound }
 * })
 * ```
 */
export interface NegativeOptions<EN, IN = unknown> {
  /** How long a failure is cached. */
  readonly ttl: Duration.DurationInput
  /** The failures cached (those this Schema recognises, `Schema.is`), and how they are stored. */
  readonly error: Schema.Schema<EN, IN, never>
  /** Of those, the ones cached (all by default). */
  readonly when?: ((error: EN) => boolean) | undefined
}

/**
 * Options of fail-safe (`Cache.Options.failSafe`).
 *
 * @since 0.1.0
 * @category models
 */
export interface FailSafeOptions {
  /** How long past its expiry an entry may still answer a failed load (`Duration.infinity`: always). */
  readonly maxStale: Duration.DurationInput
  /** How long the value is served, fresh, after a failed load before the loader is tried again. */
  readonly throttle: Duration.DurationInput
}

/**
 * Options of the distributed lock (`Cache.Options.lock`).
 *
 * @since 0.1.0
 * @category models
 */
export interface LockOptions {
  /**
   * How long a lease lasts when its holder stops extending it (a process that died): another
   * process takes over the load after this. The holder extends it every `ttl / 3` while it loads.
   */
  readonly ttl: Duration.DurationInput
  /** How long a caller waits for another process's load before `onTimeout` applies. */
  readonly wait: Duration.DurationInput
  /**
   * When `wait` ends and no stale value is kept (by `staleWhileRevalidate` or `failSafe`):
   * `"load"` (default) runs the loader anyway; `"fail"` fails with `CacheError.LockTimeout`.
   */
  readonly onTimeout?: "load" | "fail" | undefined
}

/**
 * Options of the load timeouts (`Cache.Options.timeouts`).
 *
 * @since 0.1.0
 * @category models
 */
export interface TimeoutOptions {
  /** After this, a caller holding a kept value gets it; the load goes on in the background. */
  readonly soft?: Duration.DurationInput | undefined
  /** After this, the load fails with `LoadTimeout` (or fail-safe answers it). */
  readonly hard?: Duration.DurationInput | undefined
}

/**
 * Options of `cached`: the shared options plus the key of this one effect.
 *
 * @since 0.1.0
 * @category models
 */
export interface CachedOptions<A, I = unknown> extends Options<A, I> {
  readonly key: string
}

const runEffect = <A, E, R>(effect: Effect.Effect<A, E, R>) => effect

/**
 * A cached effect: apply it to the effect to cache (`effect.pipe(cachedUser)`), and use its
 * verbs to invalidate the entry or read its counters, over the `CacheStore` in context.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cached<A> {
  <E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | CacheError, R | CacheStore>
  /** Removes the entry (true when there was one); a run under way will not store its value. */
  readonly invalidate: Effect.Effect<boolean, CacheError, CacheStore>
  /** Makes the entry stale (true when it was fresh): served while stale-while-revalidate or fail-safe allow. */
  readonly expire: Effect.Effect<boolean, CacheError, CacheStore>
  /** Counters of this cached effect over the store in context. */
  readonly stats: Effect.Effect<CacheMetrics.Stats, never, CacheStore>
}

/**
 * Caches an effect under a key in the `CacheStore` in context. A fresh entry is returned without
 * running the effect; on a miss the effect runs once, however many fibers ask at the same time.
 *
 * Calls with the same namespace and options share one load per key, even when `cached` is built
 * anew for each call (`fetch(id).pipe(Cache.cached({ …, key: id }))`). Options that differ (another
 * Schema or TTL policy, another `tags` function) never share a load: hoist such options out of the
 * function so that calls share them, and give each kind of value its own namespace.
 *
 * @since 0.1.0
 * @category combinators
 * @example
 * ```ts
 * import { Cache, MemoryStore } from "effect-cachekit"
 * import { Effect, Schema } from "effect"
 *
 * const User = Schema.Struct({ id: Schema.String, name: Schema.String })
 * const fetchUser = (id: string) => Effect.succeed({ id, name: "Ada" })
 *
 * const program = fetchUser("42").pipe(
 *   Cache.cached({ namespace: "user", key: "42", value: User, ttl: "5 minutes" })
 * )
 *
 * Effect.runPromise(program.pipe(Effect.provide(MemoryStore.layer())))
 * ```
 */
export const cached = <A, I>(options: CachedOptions<A, I>): Cached<A> => {
  const pipeline = strategy.shared(strategy.resolve("Cache.cached", options))
  const key = options.key
  return Object.assign(
    <E, R>(self: Effect.Effect<A, E, R>) => Effect.flatMap(pipeline, (p) => p.getOrLoad(key, self, runEffect)),
    {
      invalidate: Effect.flatMap(pipeline, (p) => p.invalidate(key)),
      expire: Effect.flatMap(pipeline, (p) => p.expire(key)),
      stats: Effect.flatMap(pipeline, (p) => p.stats)
    }
  )
}

/**
 * Options of `cachedFunction`: the shared options plus how an argument becomes a key.
 *
 * @since 0.1.0
 * @category models
 */
export interface CachedFunctionOptions<Args extends ReadonlyArray<unknown>, A, I = unknown> extends Options<A, I> {
  /** The key of a call (default: the single argument as a string, or the arguments as JSON). */
  readonly key?: ((...args: Args) => string) | undefined
}

/**
 * A cached function: call it as the function it caches, and use its verbs to invalidate the
 * entry of some arguments or read its counters, over the `CacheStore` in context.
 *
 * @since 0.1.0
 * @category models
 */
export interface CachedFunction<Args extends ReadonlyArray<unknown>, A, E, R> {
  (...args: Args): Effect.Effect<A, E | CacheError, R | CacheStore>
  /** Removes the entry of these arguments (true when there was one). */
  readonly invalidate: (...args: Args) => Effect.Effect<boolean, CacheError, CacheStore>
  /** Makes the entry of these arguments stale (true when it was fresh). */
  readonly expire: (...args: Args) => Effect.Effect<boolean, CacheError, CacheStore>
  /** Counters of this cached function over the store in context. */
  readonly stats: Effect.Effect<CacheMetrics.Stats, never, CacheStore>
}

/**
 * Turns an effectful function into a cached one: each call is keyed by its arguments and goes
 * through the load pipeline over the `CacheStore` in context.
 *
 * @since 0.1.0
 * @category combinators
 * @example
 * ```ts
 * import { Cache } from "effect-cachekit"
 * import { Effect, Schema } from "effect"
 *
 * const price = (sku: string) => Effect.succeed(9.99)
 * const cachedPrice = Cache.cachedFunction(price, { namespace: "price", value: Schema.Number, ttl: "1 minute" })
 * ```
 */
export const cachedFunction = <Args extends ReadonlyArray<unknown>, A, I, E, R>(
  f: (...args: Args) => Effect.Effect<A, E, R>,
  options: CachedFunctionOptions<Args, A, I>
): CachedFunction<Args, A, E, R> => {
  const pipeline = strategy.shared(strategy.resolve("Cache.cachedFunction", options))
  const keyOf = options.key ?? ((...args: Args) => strategy.defaultKey(args.length === 1 ? args[0] : args))
  const call = (args: Args) => f(...args)
  return Object.assign(
    (...args: Args) => Effect.flatMap(pipeline, (p) => p.getOrLoad(keyOf(...args), args, call)),
    {
      invalidate: (...args: Args) => Effect.flatMap(pipeline, (p) => p.invalidate(keyOf(...args))),
      expire: (...args: Args) => Effect.flatMap(pipeline, (p) => p.expire(keyOf(...args))),
      stats: Effect.flatMap(pipeline, (p) => p.stats)
    }
  )
}
