/**
 * The first step of a batch read: what the store returned, sorted into fresh hits, stale hits and
 * misses, synchronously for untagged entries; entries with tags are checked against their tags'
 * versions first.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { CacheError } from "../../CacheError.js"
import type * as CacheStore from "../../CacheStore.js"
import type { BatchContext } from "./batch.js"
import type { Entry } from "./envelope.js"
import { EXPIRED, FRESH, freshness, STALE } from "./freshness.js"

/** What a batch read found in the store, key by key. @internal */
export interface Found<A> {
  readonly fulls: ReadonlyArray<string>
  /** The values found, aligned with the keys; the misses are filled in as they load. */
  readonly results: Array<Option.Option<A>>
  /** The indices that share each distinct missing key, by store key; undefined: none missing. */
  readonly missing: Map<string, Array<number>> | undefined
  /** Indices of stale hits, with their entries. */
  readonly stale: ReadonlyArray<number>
  readonly staleEntries: ReadonlyArray<Entry<A>>
  /** Entries kept past their stale window by fail-safe, by store key: what a failed load answers with. */
  readonly fallbacks: Map<string, Entry<A>>
  /** Whether fresh hits queued extensions of their sliding TTL (sent by `slider.flush`). */
  readonly slid: boolean
  /** A cached failure found (negative caching): the batch fails with it, as a load of its key would. */
  readonly failed: Entry<A> | undefined
  /**
   * What the store held of each stale or missing key, as read (before any tag check): what a
   * refresh or load writes against. By store key; a missing key absent from it held nothing.
   */
  readonly observed: Map<string, Entry<A>>
}

const noneStored = Option.none<CacheStore.Value>()
const noIndices: Array<number> = []
const noEntries: Array<Entry<never>> = []

/**
 * Sorts what the store returned into hits, stale hits and misses, and counts them (once per batch,
 * not per key). Synchronous: a batch of hits needs nothing more, and allocates nothing it does
 * not return. An entry with tags is not sorted here: its tags' versions decide what it is worth,
 * so the indices of such entries come back in `tagged` (undefined: none), to be checked and
 * sorted by `sortTagged`.
 */
export const classify = <A>(
  context: BatchContext<A>,
  keys: ReadonlyArray<string>,
  fulls: ReadonlyArray<string>,
  stored: ReadonlyArray<Option.Option<CacheStore.Value>> | undefined
): Classified<A> => {
  const { reader } = context
  const found: Sorting<A> = {
    fulls,
    results: new Array<Option.Option<A>>(keys.length),
    missing: undefined,
    stale: noIndices,
    staleEntries: noEntries,
    fallbacks: undefined,
    freshHits: 0,
    slid: false,
    failed: undefined,
    observed: undefined
  }
  let tagged: Array<number> | undefined
  let taggedEntries: Array<Entry<A>> = noEntries
  const t = context.now()
  for (let i = 0; i < keys.length; i++) {
    const stored_ = stored === undefined ? noneStored : stored[i]
    const entry = stored_ !== undefined && stored_._tag === "Some"
      ? reader.entryOf(keys[i]!, fulls[i]!, stored_.value)
      : undefined
    if (entry !== undefined && entry.tags.length > 0) {
      if (tagged === undefined) {
        tagged = []
        taggedEntries = []
      }
      tagged.push(i)
      taggedEntries.push(entry)
      continue
    }
    place(context, found, i, entry, entry, t)
  }
  if (tagged === undefined) count(context, found, keys.length)
  return finish(found, tagged, taggedEntries)
}

/** What `classify` found: the sorted keys, and the tagged entries still to sort. */
interface Classified<A> extends Found<A> {
  readonly tagged: Array<number> | undefined
  readonly taggedEntries: Array<Entry<A>>
  readonly sorting: Sorting<A>
}

/** A batch's sorting under way. */
interface Sorting<A> {
  readonly fulls: ReadonlyArray<string>
  readonly results: Array<Option.Option<A>>
  missing: Map<string, Array<number>> | undefined
  stale: Array<number>
  staleEntries: Array<Entry<A>>
  fallbacks: Map<string, Entry<A>> | undefined
  observed: Map<string, Entry<A>> | undefined
  freshHits: number
  slid: boolean
  failed: Entry<A> | undefined
}

const finish = <A>(
  found: Sorting<A>,
  tagged: Array<number> | undefined,
  taggedEntries: Array<Entry<A>>
): Classified<A> => ({
  fulls: found.fulls,
  results: found.results,
  missing: found.missing,
  stale: found.stale,
  staleEntries: found.staleEntries,
  fallbacks: found.fallbacks ?? new Map<string, Entry<A>>(),
  slid: found.slid,
  failed: found.failed,
  observed: found.observed ?? new Map<string, Entry<A>>(),
  tagged,
  taggedEntries,
  sorting: found
})

/**
 * Sorts one key's entry (undefined: none) into a hit, a stale hit or a miss; `read` is the entry as
 * the store held it, before its tags were checked.
 */
const place = <A>(
  context: BatchContext<A>,
  found: Sorting<A>,
  i: number,
  entry: Entry<A> | undefined,
  read: Entry<A> | undefined,
  t: number
) => {
  const full = found.fulls[i]!
  const kind = entry === undefined ? EXPIRED : freshness(entry, t, context.staleWindow)
  if (kind === FRESH) {
    found.results[i] = Option.some(entry!.value)
    found.freshHits++
    if (entry!.failed) found.failed ??= entry
    else if (context.slider !== undefined && context.slider.hit(full, entry!, t)) found.slid = true
    return
  }
  if (read !== undefined) (found.observed ??= new Map()).set(full, read)
  if (kind === STALE) {
    found.results[i] = Option.some(entry!.value)
    if (found.stale === noIndices) {
      found.stale = []
      found.staleEntries = []
    }
    found.stale.push(i)
    found.staleEntries.push(entry!)
    return
  }
  if (context.failSafe && entry !== undefined && !entry.failed && t < entry.staleUntil) {
    ;(found.fallbacks ??= new Map()).set(full, entry)
  }
  found.missing ??= new Map()
  const same = found.missing.get(full)
  if (same === undefined) found.missing.set(full, [i])
  else same.push(i)
}

/** Counts a sorted batch: once per batch, not per key. */
const count = <A>(context: BatchContext<A>, found: Sorting<A>, total: number) => {
  const { counters } = context
  const { freshHits } = found
  const staleHits = found.stale.length
  if (freshHits > 0) counters.hits(freshHits)
  if (staleHits > 0) counters.staleHits(staleHits)
  if (freshHits + staleHits < total) counters.misses(total - freshHits - staleHits)
}

/**
 * Checks the tagged entries of a batch against their tags' versions (reading the versions not
 * known here in one round trip) and sorts them. When the versions cannot be read, a tagged entry
 * is not served: it is a miss, or the batch fails, as the store-failure policy says.
 */
export const sortTagged = <A>(
  context: BatchContext<A>,
  keys: ReadonlyArray<string>,
  classified: Classified<A>
): Effect.Effect<Found<A>, CacheError> => {
  const { sorting, tagged, taggedEntries } = classified
  if (tagged === undefined) return Effect.succeed(classified)
  const t = context.now()
  return Effect.map(
    Effect.catchAll(
      context.tagChecks.checkAll(taggedEntries, t),
      (error) => context.onStoreFailure("read", error, taggedEntries.map(() => undefined))
    ),
    (checked) => {
      for (let j = 0; j < tagged.length; j++) place(context, sorting, tagged[j]!, checked[j], taggedEntries[j], t)
      count(context, sorting, keys.length)
      return finish(sorting, undefined, noEntries)
    }
  )
}
