/**
 * Stampede protection as standalone combinators over the `CacheStore` in context, for one
 * protection around your own effect: `withLock` (one run per key across processes),
 * `earlyRecompute` (XFetch: refresh a hot entry shortly before it expires) and
 * `staleWhileRevalidate` (serve the old value while one refresh runs).
 *
 * Each is `Cache.cached` with that one protection switched on: the same load pipeline as the
 * strategies (single flight, the lease, the freshness rules, bounded background refreshes), so a
 * combinator behaves exactly as the option of the same name does on `ReadThrough` or `CacheAside`.
 * The value is stored with its Schema under `namespace` and `key`, which is what lets a waiter, a
 * stale read or a fresh read be answered without running the effect.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import * as Cache from "./Cache.js"

/**
 * Options of `withLock`: those of `Cache.cached`, with the lock required.
 *
 * @since 0.1.0
 * @category models
 */
export interface WithLockOptions<A, I = unknown> extends Cache.CachedOptions<A, I> {
  readonly lock: Cache.LockOptions
}

/**
 * Runs the effect at most once per key across every process sharing the store: a run takes the
 * key's lease (`lock.ttl`, extended while it runs) and stores its value; a caller that finds the
 * lease held polls the entry with backoff and is answered with the holder's value. When
 * `lock.wait` ends first, a kept stale value answers, else `lock.onTimeout` decides (`"load"`:
 * run anyway; `"fail"`: `CacheError.LockTimeout`). A holder that dies is replaced once its lease
 * lapses. Needs a store that grants leases (memory, Redis, memcached).
 *
 * @since 0.1.0
 * @category combinators
 * @example
 * ```ts
 * import { Stampede } from "effect-cachekit"
 * import * as RedisStore from "effect-cachekit/RedisStore"
 * import { Effect, Schema } from "effect"
 *
 * declare const buildReport: Effect.Effect<string>
 *
 * // however many pods ask at once, one builds the report; the others get its result
 * const report = buildReport.pipe(
 *   Stampede.withLock({
 *     namespace: "report",
 *     key: "daily",
 *     value: Schema.String,
 *     ttl: "1 hour",
 *     lock: { ttl: "10 seconds", wait: "1 minute" }
 *   })
 * )
 *
 * const main = report.pipe(Effect.provide(RedisStore.layer({ url: "redis://127.0.0.1:6379" })))
 * ```
 */
export const withLock = <A, I>(options: WithLockOptions<A, I>): Cache.Cached<A> => Cache.cached(options)

/**
 * Options of `earlyRecompute`: those of `Cache.cached`, with early recompute required.
 *
 * @since 0.1.0
 * @category models
 */
export interface EarlyRecomputeOptions<A, I = unknown> extends Cache.CachedOptions<A, I> {
  readonly earlyRecompute: { readonly beta: number }
}

/**
 * Probabilistic early recompute (XFetch): a fresh read at time-to-expiry τ reruns the effect in
 * the background with probability `exp(−τ / (β·δ))`, δ the time the run that stored the entry
 * took, so a hot entry is usually replaced before it expires and readers never see the miss.
 * Randomness comes from Effect's `Random` (seed it with `Effect.withRandom` to replay a run).
 *
 * @since 0.1.0
 * @category combinators
 * @example
 * ```ts
 * import { MemoryStore, Stampede } from "effect-cachekit"
 * import { Effect, Schema } from "effect"
 *
 * declare const computeRanking: Effect.Effect<ReadonlyArray<string>>
 *
 * const ranking = computeRanking.pipe(
 *   Stampede.earlyRecompute({
 *     namespace: "ranking",
 *     key: "global",
 *     value: Schema.Array(Schema.String),
 *     ttl: "30 seconds",
 *     earlyRecompute: { beta: 1 }
 *   })
 * )
 *
 * const main = ranking.pipe(Effect.provide(MemoryStore.layer()))
 * ```
 */
export const earlyRecompute = <A, I>(options: EarlyRecomputeOptions<A, I>): Cache.Cached<A> => Cache.cached(options)

/**
 * Options of `staleWhileRevalidate`: those of `Cache.cached`, with the stale window required.
 *
 * @since 0.1.0
 * @category models
 */
export interface StaleWhileRevalidateOptions<A, I = unknown> extends Cache.CachedOptions<A, I> {
  readonly staleWhileRevalidate: Duration.DurationInput
}

/**
 * Stale-while-revalidate: past `ttl`, and for `staleWhileRevalidate` more, a read returns the
 * stored value at once and one run of the effect refreshes it in the background (one per key;
 * at most `refreshConcurrency` at a time, 16 by default). A failed refresh keeps the old value
 * and is logged and counted; refreshes stop when the store's scope closes.
 *
 * @since 0.1.0
 * @category combinators
 * @example
 * ```ts
 * import { MemoryStore, Stampede } from "effect-cachekit"
 * import { Effect, Schema } from "effect"
 *
 * declare const fetchRates: Effect.Effect<Record<string, number>>
 *
 * const rates = fetchRates.pipe(
 *   Stampede.staleWhileRevalidate({
 *     namespace: "rates",
 *     key: "eur",
 *     value: Schema.Record({ key: Schema.String, value: Schema.Number }),
 *     ttl: "1 minute",
 *     staleWhileRevalidate: "10 minutes"
 *   })
 * )
 *
 * const main = rates.pipe(Effect.provide(MemoryStore.layer()))
 * ```
 */
export const staleWhileRevalidate = <A, I>(options: StaleWhileRevalidateOptions<A, I>): Cache.Cached<A> =>
  Cache.cached(options)
