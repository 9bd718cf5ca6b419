/**
 * Freshness decisions: pure functions of an entry and a time. The outcome is a returned value,
 * never state shared between fibers, so a decision stays right whatever runs between it and the
 * code that acts on it.
 */
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import type { Entry } from "./envelope.js"

/** Fresh: served as a hit. @internal */
export const FRESH = 0
/** Past its TTL but inside its stale window: served while one background load refreshes it. @internal */
export const STALE = 1
/**
 * Past its stale window (a cached failure: past its TTL): a miss. An entry still before its `staleUntil` (kept longer by
 * `failSafe`) is the value a failed load may answer with. @internal
 */
export const EXPIRED = 2

/** @internal */
export type Freshness = typeof FRESH | typeof STALE | typeof EXPIRED

/**
 * What an entry is worth at `now` (clock millis), with a stale-while-revalidate window of
 * `staleWindow` millis. The entry's `staleUntil` ends every use of it; it may lie past the stale
 * window when `failSafe` keeps entries longer.
 * @internal
 */
export const freshness = (entry: Entry<unknown>, now: number, staleWindow: number): Freshness =>
  now < entry.freshUntil
    ? FRESH
    // a cached failure is never served stale (an `expire` makes it a miss)
    : !entry.failed && now < entry.staleUntil && now < entry.freshUntil + staleWindow
    ? STALE
    : EXPIRED

/**
 * The `freshUntil` and `staleUntil` of an entry written at `now` with a TTL (`undefined`: no
 * expiry) and a window it is kept for after it (the longer of the stale window and `failSafe`'s
 * `maxStale`).
 * @internal
 */
export const lifetime = (
  now: number,
  ttl: number | undefined,
  staleWindow: number
): { readonly freshUntil: number; readonly staleUntil: number } => {
  const freshUntil = ttl === undefined ? Infinity : now + ttl
  return { freshUntil, staleUntil: freshUntil + staleWindow }
}

/**
 * Early recompute (XFetch: Vattani, Chierichetti and Lowenstein, "Optimal Probabilistic Cache
 * Stampede Prevention", VLDB 2015): a read at `now` of a fresh entry that expires at `expiry`,
 * whose load took `delta` millis, recomputes it early when `now − delta·beta·ln(u) ≥ expiry`,
 * for `u` uniform in (0, 1]. The probability at a time to expiry τ is `exp(−τ / (beta·delta))`.
 * @internal
 */
export const recomputesEarly = (now: number, expiry: number, delta: number, beta: number, u: number): boolean =>
  now - delta * beta * Math.log(u) >= expiry

/** The smallest `u` drawn: `Random.next` has 53 bits, so `1 − next` is 0 or at least 2⁻⁵³. */
const MIN_U = 2 ** -53

/**
 * How far from expiry, in units of `delta·beta`, the rule can fire at all: `u ≥ 2⁻⁵³`, so
 * `−ln(u) ≤ 53·ln 2 ≈ 36.74 < 37`. A read further from expiry than `37·delta·beta` cannot recompute
 * early and draws nothing: the bound is exact, not an approximation (at 37 the probability would be
 * e⁻³⁷ ≈ 10⁻¹⁶ anyway).
 * @internal
 */
export const EARLY_REACH = 37

/** Whether a fresh entry is close enough to its expiry for the rule to fire (no draw otherwise). @internal */
export const mayRecomputeEarly = (entry: Entry<unknown>, now: number, beta: number): boolean =>
  entry.freshUntil - now <= entry.loadTime * beta * EARLY_REACH

/**
 * Draws `u` from Effect's `Random` (`1 − next`, in (0, 1]) and decides with `recomputesEarly`.
 * @internal
 */
export const drawEarly = (now: number, expiry: number, delta: number, beta: number): Effect.Effect<boolean> =>
  Effect.map(Random.next, (next) => recomputesEarly(now, expiry, delta, beta, Math.max(MIN_U, 1 - next)))
