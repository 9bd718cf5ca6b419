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
/** Past its stale window: a miss. @internal */
export const EXPIRED = 2

/** @internal */
export type Freshness = typeof FRESH | typeof STALE | typeof EXPIRED

/** What an entry is worth at `now` (clock millis). @internal */
export const freshness = (entry: Entry<unknown>, now: number): Freshness =>
  now < entry.freshUntil ? FRESH : now < entry.staleUntil ? STALE : EXPIRED

/**
 * The `freshUntil` and `staleUntil` of an entry written at `now` with a TTL (`undefined`: no
 * expiry) and a stale window.
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
