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
import type * as Schedule from "effect/Schedule"
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
 * A TTL policy for values of type `A`. Build one with `fixed`, `jittered`, `sliding`,
 * `fromValue`, `fromSchedule` or `tiered`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Ttl<in A = unknown> {
  readonly [TypeId]: TypeId
  /** Which constructor built the policy (`"Fixed"`, `"Jittered"`, `"Sliding"`, `"FromValue"`, `"FromSchedule"`, `"Tiered"`). */
  readonly _tag: string
  /** The TTL in milliseconds of a value being written under a key; `undefined` means no expiry. */
  readonly compute: (value: A, key: string) => Effect.Effect<number | undefined>
  /** The nominal TTL in milliseconds, when the policy has one (`undefined` for no expiry or a per-value TTL). */
  readonly nominalMillis: number | undefined
  /** How reads extend an entry's life, for a sliding policy (`undefined`: reads never extend it). */
  readonly sliding?: Sliding | undefined
}

/**
 * The slide of a sliding policy: each hit moves the entry's expiry to `now + slideMillis` (never
 * past the cap that `compute` gives at the write), when that moves it by more than
 * `debounceMillis`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Sliding {
  /** How long an entry lives after its last (extending) hit, in milliseconds. */
  readonly slideMillis: number
  /** A hit extends the entry only when its expiry would move by more than this, in milliseconds. */
  readonly debounceMillis: number
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
 * A sliding TTL: an entry lives for `slide` after its last hit, and never longer than `max`
 * after it was written (the cap, recorded in the entry: an entry read every second still loads
 * again at its cap). An entry nobody reads for `slide` is gone (a miss). Past its cap, it is
 * stale for `staleWhileRevalidate` (served while one refresh runs), then a miss.
 *
 * A hot key is not extended on every hit: a hit extends it only when its expiry would move by
 * more than `debounce` (a tenth of `slide` by default; zero extends on every hit), so most hits
 * stay plain reads. The extension is one store command: Redis reads and extends with `GETEX`,
 * memcached with `mg … T<ttl>`, the memory store retimes the entry in place; a store without a
 * read-and-extend (`CacheStore.Service.getAndExpire`) reads, then sends `expire` in the
 * background. See docs/ttl.md.
 *
 * A non-positive or unparsable `slide`, a `max` below `slide`, or a `debounce` not shorter than
 * `slide` fail at construction with `CacheError.InvalidOptions`.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Ttl } from "effect-cachekit"
 *
 * // a session lives 30 minutes after its last use, and 12 hours at most
 * const ttl = Ttl.sliding("30 minutes", { max: "12 hours" })
 * ```
 */
export const sliding: (
  slide: Duration.DurationInput,
  options: {
    /** The cap: how long after its write an entry may live at most (`Duration.infinity`: no cap). */
    readonly max: Duration.DurationInput
    /** A hit extends only when the expiry would move by more than this (a tenth of `slide` by default). */
    readonly debounce?: Duration.DurationInput | undefined
  }
) => Ttl<unknown> = internal.sliding

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
 * A TTL taken from a `Schedule`: each write steps the schedule once, from its initial state, at the
 * current time of Effect's `Clock` with the value being written as its input, and the entry lives
 * until the schedule's next recurrence. `Schedule.spaced("5 minutes")` is a fixed TTL;
 * `Schedule.cron("0 * * * *")` expires every entry at the top of the next hour, whenever it was
 * written. A schedule that is done at its first step gives a zero TTL: the entry is not kept.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Ttl } from "effect-cachekit"
 * import { Schedule } from "effect"
 *
 * // every entry expires at the next full hour (UTC)
 * const ttl = Ttl.fromSchedule(Schedule.cron("0 * * * *", "UTC"))
 * ```
 */
export const fromSchedule: <A = unknown>(schedule: Schedule.Schedule<unknown, A>) => Ttl<A> = internal.fromSchedule

/**
 * TTLs by kind of data: a table of named tiers, each a duration or another policy, and a `kind`
 * that picks the tier: a tier name (the same tier for every value, chosen per namespace) or a
 * function of the value and key (chosen per value; an unknown or `undefined` kind takes
 * `fallback`). Empty tiers, a missing fallback and a fixed kind that names no tier fail at
 * construction with `CacheError.InvalidOptions`. A sliding tier needs a fixed kind (reads extend
 * an entry before they know its value): with a kind function, a sliding tier fails too.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Ttl } from "effect-cachekit"
 *
 * const tiers = {
 *   volatile: "30 seconds",
 *   standard: Ttl.jittered("5 minutes", { spread: 0.1 }),
 *   reference: "1 day"
 * } as const
 *
 * // chosen per namespace
 * const countries = Ttl.tiered(tiers, { kind: "reference", fallback: "5 minutes" })
 *
 * // chosen per value
 * const products = Ttl.tiered(tiers, {
 *   kind: (product: { readonly onSale: boolean }) => product.onSale ? "volatile" : "standard",
 *   fallback: "5 minutes"
 * })
 * ```
 */
export const tiered: <A = unknown, const K extends string = string>(
  tiers: Readonly<Record<K, Ttl<A> | Duration.DurationInput>>,
  options: {
    /** The tier: one name for every value, or a function choosing one per value. */
    readonly kind: NoInfer<K> | ((value: A, key: string) => string | undefined)
    /** The TTL of a value whose kind names no tier. */
    readonly fallback: Ttl<A> | Duration.DurationInput
  }
) => Ttl<A> = internal.tiered

/**
 * Whether a value is a TTL policy.
 *
 * @since 0.1.0
 * @category guards
 */
export const isTtl: (u: unknown) => u is Ttl<unknown> = internal.isTtl
