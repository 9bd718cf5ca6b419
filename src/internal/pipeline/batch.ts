/**
 * Batched reads: many keys in one store round trip, the misses loaded through the same single
 * flight as single reads — in one `lookupMany` call when the strategy has one. A batch loader's
 * answer is matched to the keys by the keys it names, never by position: a key it did not return
 * is not found, and a key it was not asked for fails the batch with `BatchMismatch`.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import { BatchMismatch } from "../../CacheError.js"
import type { CacheError } from "../../CacheError.js"
import type * as CacheStore from "../../CacheStore.js"
import type { Entry } from "./envelope.js"
import type { Abandoned, Flights, Slot, SlotExit } from "./flight.js"
import { Absent, absent, isRetry } from "./flight.js"
import { EXPIRED, freshness, STALE } from "./freshness.js"
import type { Superseding } from "./keyOrder.js"
import type { RunLoad } from "./load.js"
import type { Loader, Reader } from "./read.js"
import type { Counters } from "./stats.js"
import type { OnStoreFailure } from "./storeErrors.js"
import type { TagChecks } from "./tags.js"

/**
 * Loads the keys at the given indices of a batch read in one call, answering with each value
 * under its caller's key (a `Map` or pairs).
 * @internal
 */
export type BatchLoader<A, E, R> = (
  indices: ReadonlyArray<number>
) => Effect.Effect<Iterable<readonly [key: string, value: A]>, E, R>

/** What a batch read uses of its pipeline. @internal */
export interface BatchContext<A> {
  readonly namespace: string
  readonly store: CacheStore.Service
  readonly fullKey: (key: string) => string
  readonly now: () => number
  /** The stale-while-revalidate window, millis. */
  readonly staleWindow: number
  readonly counters: Counters
  readonly onStoreFailure: OnStoreFailure
  readonly reader: Reader<A>
  /** What entries with tags are worth once their tags' versions are compared. */
  readonly tagChecks: TagChecks
  readonly flights: Flights<A>
  /** Stores loaded values whose loads are still current. */
  readonly storeLoaded: (
    loaded: ReadonlyArray<{ readonly load: Superseding; readonly key: string; readonly value: A }>,
    elapsed: number
  ) => Effect.Effect<void, CacheError>
  /** Loads one key through the single flight, as a single read does. */
  readonly loadShared: <X, E, R>(
    key: string,
    full: string,
    arg: X,
    load: Loader<X, A, E, R>
  ) => Effect.Effect<A, E | CacheError, R>
  readonly runLoad: RunLoad
  readonly startOrJoin: <X, E, R>(
    key: string,
    full: string,
    arg: X,
    load: Loader<X, A, E, R>,
    fallback?: Entry<A>
  ) => Effect.Effect<Slot<A, E>, never, R>
  /** Whether fail-safe is on: a failed load answers with an entry kept past its expiry. */
  readonly failSafe: boolean
  /** Fail-safe's answer to a failed load of a key whose caller read `fallback`. */
  readonly rescue: <E, R>(
    slot: Slot<A, E>,
    fallback: Entry<A> | undefined,
    loading: Effect.Effect<A, E | CacheError, R>
  ) => Effect.Effect<A, E | CacheError, R>
  /** The soft timeout's wait for a key whose caller holds a kept value (no soft timeout: undefined). */
  readonly waitSoftly:
    | (<E>(slot: Slot<A, E>, fallback: Entry<A>) => Effect.Effect<A, E | CacheError | Absent | Abandoned>)
    | undefined
  /** Refreshes a stale key in the background (bounded), unless it is loading already. */
  readonly revalidate: <X, E, R>(
    key: string,
    full: string,
    arg: X,
    load: Loader<X, A, E, R>,
    entry: Entry<A>
  ) => Effect.Effect<void, never, R>
}

/** One batch read. @internal */
export interface BatchRead<X, A, E, R> {
  readonly keys: ReadonlyArray<string>
  readonly args: ReadonlyArray<X>
  readonly loadOne: Loader<X, A, E, R>
  readonly loadMany: BatchLoader<A, E, R> | undefined
}

/** Matches a batch loader's answer to its slots: each slot's value, or `absent`. */
const match = <A, E>(
  namespace: string,
  slots: ReadonlyArray<Slot<A, E>>,
  answer: Iterable<readonly [string, A]>
): Effect.Effect<Array<A | Absent>, BatchMismatch> => {
  const position = new Map<string, number>()
  for (let j = 0; j < slots.length; j++) position.set(slots[j]!.key, j)
  const values = new Array<A | Absent>(slots.length).fill(absent)
  for (const [key, value] of answer) {
    const j = position.get(key)
    if (j === undefined) {
      return Effect.fail(
        new BatchMismatch({ namespace, detail: `returned the key ${JSON.stringify(key)}, not asked for` })
      )
    }
    if (values[j] !== absent) {
      return Effect.fail(new BatchMismatch({ namespace, detail: `returned the key ${JSON.stringify(key)} twice` }))
    }
    values[j] = value
  }
  return Effect.succeed(values)
}

/** @internal */
export const getManyOrLoad = <A, X, E, R>(
  context: BatchContext<A>,
  batch: BatchRead<X, A, E, R>
): Effect.Effect<Array<Option.Option<A>>, E | CacheError, R> =>
  Effect.gen(function*() {
    const { counters, flights, reader, store } = context
    const { args, keys, loadMany, loadOne } = batch
    const fulls = keys.map(context.fullKey)
    const stored = yield* Effect.catchAll(
      store.getMany(fulls),
      (error) => context.onStoreFailure("read", error, fulls.map(() => Option.none<CacheStore.Value>()))
    )
    const results = new Array<Option.Option<A>>(keys.length)
    // the indices that share each distinct missing key
    const missing = new Map<string, Array<number>>()
    const stale: Array<number> = []
    const staleEntries: Array<Entry<A>> = []
    // entries kept past their stale window by fail-safe, by store key: what a failed load answers with
    const fallbacks = new Map<string, Entry<A>>()
    const t = context.now()
    let entries = new Array<Entry<A> | undefined>(keys.length)
    let tagged = false
    for (let i = 0; i < keys.length; i++) {
      const found = stored[i]
      const entry = found !== undefined && found._tag === "Some"
        ? reader.entryOf(keys[i]!, fulls[i]!, found.value)
        : undefined
      entries[i] = entry
      if (entry !== undefined && entry.tags.length > 0) tagged = true
    }
    if (tagged) {
      // the versions of every tag the batch's entries carry, in one read when not known here
      entries = yield* Effect.catchAll(
        context.tagChecks.checkAll(entries, t),
        (error) => context.onStoreFailure("read", error, entries.map((e) => e?.tags.length === 0 ? e : undefined))
      )
    }
    let freshHits = 0
    for (let i = 0; i < keys.length; i++) {
      const entry = entries[i]
      const kind = entry === undefined ? EXPIRED : freshness(entry, t, context.staleWindow)
      if (kind !== EXPIRED) {
        results[i] = Option.some(entry!.value)
        if (kind === STALE) {
          stale.push(i)
          staleEntries.push(entry!)
        } else freshHits++
        continue
      }
      if (context.failSafe && entry !== undefined && t < entry.staleUntil) fallbacks.set(fulls[i]!, entry)
      const same = missing.get(fulls[i]!)
      if (same === undefined) missing.set(fulls[i]!, [i])
      else same.push(i)
    }
    // counted once per batch rather than per key
    if (freshHits > 0) counters.hits(freshHits)
    if (stale.length > 0) counters.staleHits(stale.length)
    if (freshHits + stale.length < keys.length) counters.misses(keys.length - freshHits - stale.length)
    yield* reader.flushDrops
    for (let j = 0; j < stale.length; j++) {
      const i = stale[j]!
      yield* context.revalidate(keys[i]!, fulls[i]!, args[i]!, loadOne, staleEntries[j]!)
    }
    if (missing.size === 0) return results

    const waits: Array<readonly [Slot<A, E>, ReadonlyArray<number>]> = []
    const batched: Array<readonly [string, string]> = []
    const batchedIndices: Array<ReadonlyArray<number>> = []
    for (const [full, indices] of missing) {
      const i = indices[0]!
      const existing = flights.current<E>(full)
      if (existing !== undefined) waits.push([existing, indices])
      else if (loadMany === undefined) {
        waits.push([yield* context.startOrJoin(keys[i]!, full, args[i]!, loadOne, fallbacks.get(full)), indices])
      } else {
        batched.push([keys[i]!, full])
        batchedIndices.push(indices)
      }
    }
    if (loadMany !== undefined && batched.length > 0) {
      const firstIndices = batchedIndices.map((indices) => indices[0]!)
      const slots = yield* flights.start<E, R>(batched, (slots) =>
        context.runLoad(
          slots.map((slot) => slot.key),
          Effect.suspend(() => loadMany(firstIndices)),
          (answer, elapsed) =>
            Effect.flatMap(match(context.namespace, slots, answer), (values) => {
              const loaded: Array<{ load: Slot<A, E>; key: string; value: A }> = []
              for (let j = 0; j < slots.length; j++) {
                const value = values[j]!
                if (value !== absent) loaded.push({ load: slots[j]!, key: slots[j]!.key, value: value as A })
              }
              return Effect.as(context.storeLoaded(loaded, elapsed), values)
            })
        ).pipe(
          Effect.exit,
          Effect.flatMap((exit): Effect.Effect<ReadonlyArray<SlotExit<A, E>>> =>
            Exit.isSuccess(exit)
              ? Effect.succeed(
                exit.value.map((value) => value === absent ? Exit.fail(absent) : Exit.succeed(value as A))
              )
              // fail-safe answers each key that has a kept entry with it; the others fail
              : Effect.forEach(slots, (slot) =>
                Effect.exit(context.rescue(slot, fallbacks.get(slot.full), exit as Exit.Exit<never, E | CacheError>)))
          )
        ))
      for (let j = 0; j < slots.length; j++) {
        waits.push([slots[j]!, batchedIndices[j]!])
      }
    }
    const { waitSoftly } = context
    yield* Effect.forEach(waits, ([slot, indices]) => {
      const fallback = waitSoftly === undefined ? undefined : fallbacks.get(slot.full)
      return Effect.map(
        Effect.catchIf(
          fallback === undefined ? flights.wait(slot) : waitSoftly!(slot, fallback),
          isRetry,
          // not returned by its batch: not found; abandoned by its last waiter: this read loads it
          (retry): Effect.Effect<A | Absent, E | CacheError, R> =>
            retry instanceof Absent
              ? Effect.succeed(absent)
              : context.loadShared(keys[indices[0]!]!, slot.full, args[indices[0]!]!, loadOne)
        ),
        (value) => {
          const result = value === absent ? Option.none<A>() : Option.some(value as A)
          for (const i of indices) {
            results[i] = result
          }
        }
      )
    }, { concurrency: "unbounded", discard: true })
    return results
  })
