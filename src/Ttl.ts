/**
 * TTL policies: how long a written entry stays fresh. Every policy draws its time from Effect's
 * `Clock` and its randomness from Effect's `Random`, so `TestClock` and a seeded `Random`
 * (`Random.make(seed)` or `Random.fixed([...])`, provided with `Effect.withRandom`) make them
 * deterministic. Nonsense durations (zero, negative, NaN, unparsable, infinite where a finite TTL
 * is needed) are rejected when the policy is built, with `CacheError.InvalidOptions`.
 *
 * Wherever a strategy takes `ttl`, a plain `Duration.DurationInput` means `Ttl.fixed`.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as internal from "./internal/ttl.js"

/**
 * The symbol that marks a TTL policy.
 *
 * @since 0.1.0
 * @category symbols
 */
export const TypeId: unique symbol = internal.TypeId

/**
 * @since 0.1.0
 * @category symbols
 */
export type TypeId = typeof TypeId

/**
 * A TTL policy for values of type `A`. Build one with `fixed`, `jittered` or `fromValue`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Ttl<in A = unknown> {
  readonly [TypeId]: TypeId
  /** Which constructor built the policy (`"Fixed"`, `"Jittered"`, `"FromValue"`). */
  readonly _tag: string
  /** The TTL in milliseconds of a value being written under a key; `undefined` means no expiry. */
  readonly compute: (value: A, key: string) => Effect.Effect<number | undefined>
  /** The nominal TTL in milliseconds, when the policy has one (`undefined` for no expiry or a per-value TTL). */
  readonly nominalMillis: number | undefined
}

/**
 * What a strategy's `ttl` option accepts.
 *
 * @since 0.1.0
 * @category models
 */
export type Input<A> = Ttl<A> | Duration.DurationInput

/**
 * The same TTL for every entry. `Duration.infinity` means entries never expire.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Ttl } from "effect-cachekit"
 *
 * const ttl = Ttl.fixed("5 minutes")
 * ```
 */
export const fixed: (ttl: Duration.DurationInput) => Ttl<unknown> = internal.fixed

/**
 * A TTL drawn uniformly from `[ttl·(1−spread), ttl·(1+spread)]` for each write, so entries written
 * together do not all expire together (the thundering herd at expiry). Drawn through Effect's
 * `Random`: under a seeded generator (`Effect.withRandom(Random.make(seed))`) the draws are
 * reproducible.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Ttl } from "effect-cachekit"
 *
 * // between 4.5 and 5.5 minutes
 * const ttl = Ttl.jittered("5 minutes", { spread: 0.1 })
 * ```
 */
export const jittered = (ttl: Duration.DurationInput, options: { readonly spread: number }): Ttl<unknown> =>
  internal.jittered(ttl, options.spread)

/**
 * A TTL computed from the value (and key) being written: short for volatile records, long for
 * stable ones. A zero or negative result means "do not keep".
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Ttl } from "effect-cachekit"
 *
 * const ttl = Ttl.fromValue((user: { readonly active: boolean }) => user.active ? "1 minute" : "1 hour")
 * ```
 */
export const fromValue: <A>(f: (value: A, key: string) => Duration.DurationInput) => Ttl<A> = internal.fromValue

/**
 * Whether a value is a TTL policy.
 *
 * @since 0.1.0
 * @category guards
 */
export const isTtl: (u: unknown) => u is Ttl<unknown> = internal.isTtl
