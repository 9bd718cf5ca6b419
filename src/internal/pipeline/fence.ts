/**
 * Late-write protection across processes, on stores that offer `CacheStore.Fence`: a loaded value
 * is written only while its key still holds what the load's read found (an entry, by the fence
 * token at the start of its envelope; an invalidation's tombstone, by its token; or nothing), and
 * an invalidation leaves a tombstone with a fresh token instead of nothing, for the fence window.
 *
 * A fenced write also lands on a key that holds nothing: the entry the load read expired, or there
 * was none, and no write came since (it would have left a value) nor an invalidation (it would
 * have left a tombstone). Why a tombstone then: after a plain delete the key would hold nothing,
 * and a load that started before the delete would land its older value. The tombstone lives for
 * the fence window; a load older than the window is not written at all, since the tombstone of an
 * invalidation that came after its read may be gone.
 */
import * as Effect from "effect/Effect"
import type { StoreFailure } from "../../CacheError.js"
import type * as CacheStore from "../../CacheStore.js"
import type { Entry } from "./envelope.js"
import { expectedOf, isTombstoneValue, tombstoneValue } from "./envelope.js"

/** What a load's read found of its key, and when (Clock millis): what its write is fenced against. @internal */
export interface Fenced {
  /** The entry or tombstone found; undefined: nothing (or the read failed, or there was no read). */
  readonly observed: Entry<unknown> | undefined
  readonly observedAt: number
}

/** The fence window when loads have no timeout: one minute. @internal */
export const DEFAULT_FENCE_WINDOW_MILLIS = 60_000

/** Room between the tombstone's end and the last moment a load that expects nothing may write. */
const MARGIN_MILLIS = 1_000

/**
 * How long an invalidation's tombstone lives: the longest a load may take (its timeout, one
 * minute without one), plus the longest a lock waiter waits before it loads, plus a margin.
 * @internal
 */
export const fenceWindowMillis = (loadTimeoutMillis: number | undefined, lockWaitMillis: number | undefined): number =>
  (loadTimeoutMillis ?? DEFAULT_FENCE_WINDOW_MILLIS) + (lockWaitMillis ?? 0) + MARGIN_MILLIS

/** @internal */
export interface FenceOptions {
  readonly fence: CacheStore.Fence
  readonly live: boolean
  readonly now: () => number
  readonly windowMillis: number
}

/** @internal */
export interface Fencing {
  /**
   * Writes a loaded value (a prepared store value) against what its load found: false when the
   * key changed since (or the load is older than the window), nothing written.
   */
  readonly write: (
    full: string,
    stored: CacheStore.Value,
    ttl: number | undefined,
    load: Fenced
  ) => Effect.Effect<boolean, StoreFailure>
  /** An invalidation: the key's tombstone for the window; whether an entry was there. */
  readonly mark: (full: string) => Effect.Effect<boolean, StoreFailure>
  /**
   * How long the store keeps an entry past its end (read as a miss meanwhile): the window, so that
   * a key holds nothing only when nothing was written to it for that long, and a load that read
   * the key before a newer entry was written cannot land once that entry ends.
   */
  readonly windowMillis: number
}

/** @internal */
export const makeFencing = (options: FenceOptions): Fencing => {
  const { fence, live, now, windowMillis } = options
  return {
    windowMillis,
    write: (full, stored, ttl, load) =>
      Effect.suspend(() => {
        // the key may hold nothing again by now though an invalidation came since: its tombstone is gone
        if (now() - load.observedAt >= windowMillis - MARGIN_MILLIS) return Effect.succeed(false)
        return fence.setIf(full, expectedOf(load.observed, live), stored, ttl)
      }),
    mark: (full) =>
      Effect.map(
        Effect.suspend(() => fence.swap(full, tombstoneValue(live), windowMillis)),
        (before) => before._tag === "Some" && !isTombstoneValue(before.value)
      )
  }
}
