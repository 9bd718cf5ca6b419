/**
 * Freshness decisions: pure functions of an entry and a time. The outcome is a returned value,
 * never state shared between fibers, so a decision stays right whatever runs between it and the
 * code that acts on it.
 */
import type { Entry } from "./envelope.js"

/** Fresh: served as a hit. @internal */
export const FRESH = 0
/** Past its TTL but inside its stale window: served while one background load refreshes it. @internal */
export const STALE = 1
/**
 * Past its stale window: a miss. An entry still before its `staleUntil` (kept longer by
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
    : now < entry.staleUntil && now < entry.freshUntil + staleWindow
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
