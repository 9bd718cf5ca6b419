/**
 * The decisions of a read: what an entry found is worth (its tags checked, its freshness) and
 * what follows — a fresh hit (with XFetch's early recompute close to expiry), a stale hit with one
 * refresh in the background, or a miss that loads through the single flight.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { CacheError } from "../../CacheError.js"
import type { Entry } from "./envelope.js"
import { drawEarly, EXPIRED, FRESH, freshness, mayRecomputeEarly, STALE } from "./freshness.js"
import type { Loader } from "./read.js"
import type { SingleLoads } from "./single.js"
import type { Slider } from "./slide.js"
import type { Counters } from "./stats.js"
import type { OnStoreFailure } from "./storeErrors.js"
import type { TagChecks } from "./tags.js"
import { UNKNOWN } from "./tags.js"
import { annotateOutcome } from "./tracing.js"

/** @internal */
export interface DecisionOptions<A> {
  readonly now: () => number
  /** The namespace's sliding TTL: fresh hits extend the entry, debounced. */
  readonly slider: Slider | undefined
  readonly staleWindow: number
  /** XFetch's β, when early recompute is on. */
  readonly beta: number | undefined
  /** Whether fail-safe may answer with an expired entry still kept. */
  readonly failSafe: boolean
  readonly counters: Counters
  readonly tagChecks: TagChecks
  readonly onStoreFailure: OnStoreFailure
  /** Deletes the entries that failed to decode (those of the namespace's current version). */
  readonly flushDrops: Effect.Effect<void>
  /** Whether there are such entries to delete. */
  readonly hasDrops: () => boolean
  readonly revalidate: SingleLoads<A>["revalidate"]
  readonly loadShared: SingleLoads<A>["loadShared"]
}

/** @internal */
export const makeDecisions = <A>(options: DecisionOptions<A>) => {
  const {
    beta,
    counters,
    failSafe,
    flushDrops,
    hasDrops,
    loadShared,
    now,
    onStoreFailure,
    revalidate,
    slider,
    staleWindow,
    tagChecks
  } = options

  /**
   * What a tagged entry is worth once its tags' versions are read (a miss when they cannot be),
   * then `next` with it: the slow path of a tag check, taken once per version window.
   */
  const checkedThen = <B, E, R>(
    entry: Entry<A>,
    next: (entry: Entry<A> | undefined) => Effect.Effect<B, E, R>
  ): Effect.Effect<B, E | CacheError, R> =>
    Effect.flatMap(
      Effect.catchAll(
        Effect.map(tagChecks.checkAll([entry], now()), (checked) => checked[0]),
        (error) => onStoreFailure("read", error, undefined)
      ),
      next
    )

  /** A hit of a cached failure (negative caching): the loader's own error again, typed as it was. */
  const failedHit = <E>(entry: Entry<A>, isTraced: boolean): Effect.Effect<never, E> =>
    isTraced
      ? Effect.zipRight(annotateOutcome("hit"), Effect.fail(entry.value as unknown as E))
      : Effect.fail(entry.value as unknown as E)

  /**
   * A fresh hit: its value, recomputed early in the background when XFetch says so (against
   * `found`, what the store held).
   */
  const decideFresh = <X, E, R>(
    key: string,
    arg: X,
    load: Loader<X, A, E, R>,
    full: string,
    found: Entry<A> | undefined,
    entry: Entry<A>,
    t: number,
    isTraced: boolean
  ): Effect.Effect<A, E | CacheError, R> => {
    if (beta !== undefined && mayRecomputeEarly(entry, t, beta)) {
      // close to expiry: XFetch decides whether this read recomputes in the background
      const early = Effect.flatMap(
        drawEarly(t, entry.freshUntil, entry.loadTime, beta),
        (recompute) =>
          recompute
            ? Effect.as(revalidate(key, full, arg, load, entry, found), entry.value)
            : Effect.succeed(entry.value)
      )
      return isTraced ? Effect.zipRight(annotateOutcome("hit"), early) : early
    }
    return isTraced ? Effect.as(annotateOutcome("hit"), entry.value) : Effect.succeed(entry.value)
  }

  /** What a read found: a fresh hit, a stale hit (one refresh in the background) or a miss. */
  const decide = <X, E, R>(
    key: string,
    arg: X,
    load: Loader<X, A, E, R>,
    full: string,
    found: Entry<A> | undefined,
    isTraced: boolean
  ): Effect.Effect<A, E | CacheError, R> => decideChecked(key, arg, load, full, found, found, isTraced)

  /**
   * `decide` with the entry as its tags' versions have it: `found` is still what the store held,
   * which a load or refresh started from here writes against (late-write protection).
   */
  const decideChecked = <X, E, R>(
    key: string,
    arg: X,
    load: Loader<X, A, E, R>,
    full: string,
    found: Entry<A> | undefined,
    checkedEntry: Entry<A> | undefined,
    isTraced: boolean
  ): Effect.Effect<A, E | CacheError, R> => {
    let entry = checkedEntry
    // an entry with tags is worth what its tags' versions say; one without pays nothing here
    if (entry !== undefined && entry.tags.length > 0) {
      const checked = tagChecks.check(entry, now())
      if (checked === UNKNOWN) {
        return checkedThen(entry, (e) => decideChecked(key, arg, load, full, found, e, isTraced))
      }
      entry = checked
    }
    let fallback: Entry<A> | undefined
    if (entry !== undefined) {
      const t = now()
      const kind = freshness(entry, t, staleWindow)
      if (kind === FRESH) {
        counters.hits(1)
        if (entry.failed) return failedHit(entry, isTraced)
        if (slider !== undefined && slider.hit(full, entry, t)) {
          // an extension is due (once per debounce): it goes out, then the hit is decided as usual
          return Effect.zipRight(slider.flush, decideFresh(key, arg, load, full, found, entry, t, isTraced))
        }
        return decideFresh(key, arg, load, full, found, entry, t, isTraced)
      }
      if (kind === STALE) {
        counters.staleHits(1)
        const refresh = Effect.as(revalidate(key, full, arg, load, entry, found), entry.value)
        return isTraced ? Effect.zipRight(annotateOutcome("stale"), refresh) : refresh
      }
      if (failSafe && !entry.failed && t < entry.staleUntil) fallback = entry
    }
    counters.misses(1)
    // a read that found bytes that do not decode deletes them before it loads
    const shared = loadShared(key, full, arg, load, fallback, undefined, found)
    const miss = hasDrops() ? Effect.zipRight(flushDrops, shared) : shared
    return isTraced ? Effect.zipRight(annotateOutcome("miss"), miss) : miss
  }

  const readEntry = (
    key: string,
    _arg: undefined,
    _load: undefined,
    full: string,
    found: Entry<A> | undefined,
    isTraced: boolean
  ): Effect.Effect<Option.Option<A>, CacheError> => {
    let entry = found
    if (entry !== undefined && entry.tags.length > 0) {
      const checked = tagChecks.check(entry, now())
      if (checked === UNKNOWN) return checkedThen(entry, (e) => readEntry(key, undefined, undefined, full, e, isTraced))
      entry = checked
    }
    if (entry !== undefined) {
      const t = now()
      const found = freshness(entry, t, staleWindow)
      if (found !== EXPIRED) {
        if (found === FRESH) counters.hits(1)
        else counters.staleHits(1)
        if (entry.failed) return failedHit(entry, isTraced)
        const value = isTraced
          ? Effect.as(annotateOutcome(found === FRESH ? "hit" : "stale"), Option.some(entry.value))
          : Effect.succeed(Option.some(entry.value))
        return found === FRESH && slider !== undefined && slider.hit(full, entry, t)
          ? Effect.zipRight(slider.flush, value)
          : value
      }
    }
    counters.misses(1)
    const miss = Effect.as(flushDrops, Option.none<A>())
    return isTraced ? Effect.zipRight(annotateOutcome("miss"), miss) : miss
  }

  return { decide, readEntry }
}
