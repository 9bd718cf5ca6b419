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
 *
 * A namespace's `clear` and `invalidatePattern` remove keys without tombstones (they cannot mark
 * keys they never saw). On a store shared between processes they first replace the namespace's
 * purge token (a version key, `purgeKey`); a loaded value that lands is then checked against that
 * token with one read, and taken back (replaced by a tombstone, only while the key still holds
 * it) when the token changed since the load began: the load may have read its source before the
 * purge. The pipeline learns the token before its first load (`ready`), so a token that changes
 * later is a purge, and every load that began before this process saw the change is taken back.
 */
import * as Effect from "effect/Effect"
import type { StoreFailure } from "../../CacheError.js"
import type * as CacheStore from "../../CacheStore.js"
import type { Versions } from "../versions.js"
import type { Entry } from "./envelope.js"
import { expectedOf, expectedOfStored, isTombstoneValue, tombstoneValue } from "./envelope.js"

/** What a load's read found of its key, and when (Clock millis): what its write is fenced against. @internal */
export interface Fenced {
  /** The entry or tombstone found; undefined: nothing (or the read failed, or there was no read). */
  readonly observed: Entry<unknown> | undefined
  readonly observedAt: number
  /** When the load began, in the order of `nextLoadMark` (purges are ordered by it too). */
  readonly began: number
  /** The store's `Fence.epoch()` when the load began (undefined: the store has none). */
  readonly epoch: unknown
}

let loadMarks = 0

/**
 * A number that grows with every call: orders the beginnings of loads against the purges this
 * process learns of, with no clock (a test's clock may stand still). @internal
 */
export const nextLoadMark = (): number => ++loadMarks

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
  /** The namespace's purge token, on a store shared between processes (none: a live store). */
  readonly purges?: { readonly key: string; readonly versions: Versions } | undefined
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
  /** Learns the namespace's purge token, before the pipeline's first load. */
  readonly ready: Effect.Effect<void>
  /** A purge of the namespace (before its keys are removed): a fresh purge token. */
  readonly purge: Effect.Effect<void, StoreFailure>
  /**
   * How long the store keeps an entry past its end (read as a miss meanwhile): the window, so that
   * a key holds nothing only when nothing was written to it for that long, and a load that read
   * the key before a newer entry was written cannot land once that entry ends.
   */
  readonly windowMillis: number
}

/** @internal */
export const makeFencing = (options: FenceOptions): Fencing => {
  const { fence, live, now, purges, windowMillis } = options
  /** The purge token known here (none: not read yet), and the mark of when it was learnt. */
  let known: string | undefined
  let learnt = 0
  const learn = (token: string | undefined) => {
    if (token !== known) {
      known = token
      learnt = nextLoadMark()
    }
  }

  /** Takes a value this process wrote back: a tombstone, written only while the key still holds it. */
  const takeBack = (full: string, stored: CacheStore.Value): Effect.Effect<boolean, StoreFailure> =>
    fence.setIf(full, expectedOfStored(stored, live), tombstoneValue(live), windowMillis)

  /**
   * A loaded value has landed: it stays while the purge token is the one known when its load
   * began; else it is taken back. When the token cannot be read, it is taken back too (and the
   * failure follows): a value whose check could not be made is not left behind.
   */
  const confirm = (full: string, stored: CacheStore.Value, load: Fenced): Effect.Effect<boolean, StoreFailure> =>
    Effect.matchEffect(purges!.versions.fetch([purges!.key], now()), {
      onFailure: (error) => Effect.zipRight(Effect.ignore(takeBack(full, stored)), Effect.fail(error)),
      onSuccess: ([token]) => {
        if (token === known && load.began > learnt) return Effect.succeed(true)
        learn(token)
        return Effect.as(takeBack(full, stored), false)
      }
    })

  return {
    windowMillis,
    write: (full, stored, ttl, load) =>
      Effect.suspend(() => {
        // the key may hold nothing again by now though an invalidation came since: its tombstone is gone
        if (now() - load.observedAt >= windowMillis - MARGIN_MILLIS) return Effect.succeed(false)
        const written = fence.setIf(full, expectedOf(load.observed, live), stored, ttl, load.epoch)
        return purges === undefined ? written : Effect.matchEffect(written, {
          // the write may have landed though its answer was lost: it is taken back, unchecked
          onFailure: (error) => Effect.zipRight(Effect.ignore(takeBack(full, stored)), Effect.fail(error)),
          onSuccess: (wrote) => wrote ? confirm(full, stored, load) : Effect.succeed(false)
        })
      }),
    mark: (full) =>
      Effect.map(
        Effect.suspend(() => fence.swap(full, tombstoneValue(live), windowMillis)),
        (before) => before._tag === "Some" && !isTombstoneValue(before.value)
      ),
    ready: purges === undefined ? Effect.void : Effect.suspend(() =>
      known !== undefined
        ? Effect.void
        // unreadable now: the first load's check learns it (and takes that load's value back)
        : Effect.ignore(Effect.map(purges.versions.fetch([purges.key], now()), ([token]) => learn(token)))
    ),
    purge: purges === undefined ?
      Effect.void :
      Effect.suspend(() =>
        Effect.map(
          purges.versions.bump([purges.key], now()),
          () => learn(purges.versions.known(purges.key, now(), Infinity))
        )
      )
  }
}
