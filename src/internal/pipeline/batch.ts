/**
 * Batched reads: many keys in one store round trip, the misses loaded through the same single
 * flight as single reads — in one `lookupMany` call when the strategy has one. A batch loader's
 * answer is matched to the keys by the keys it names, never by position (`batchMatch.ts`).
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type { CacheError } from "../../CacheError.js"
import type * as CacheStore from "../../CacheStore.js"
import type { BatchLoader } from "./batchMatch.js"
import { matchAnswer } from "./batchMatch.js"
import { classify, sortTagged } from "./batchSort.js"
import type { Found } from "./batchSort.js"
import type { Entry } from "./envelope.js"
import type { Fenced } from "./fence.js"
import type { Flights } from "./flight.js"
import type { Superseding } from "./keyOrder.js"
import type { Leases } from "./lease.js"
import type { RunLoad } from "./load.js"
import type { Loader, Reader } from "./read.js"
import type { SingleLoads } from "./single.js"
import type { Slider } from "./slide.js"
import type { FlightKey, Slot, SlotExit } from "./slot.js"
import { Absent, absent, isRetry } from "./slot.js"
import type { Counters } from "./stats.js"
import type { OnStoreFailure } from "./storeErrors.js"
import type { TagChecks } from "./tags.js"

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
    loaded: ReadonlyArray<{ readonly load: Superseding & Fenced; readonly key: string; readonly value: A }>,
    elapsed: number
  ) => Effect.Effect<void, CacheError>
  /** Loads one key through the single flight, as a single read does. */
  readonly loadShared: SingleLoads<A>["loadShared"]
  readonly runLoad: RunLoad
  readonly startOrJoin: SingleLoads<A>["startOrJoin"]
  /** Whether fail-safe is on: a failed load answers with an entry kept past its expiry. */
  readonly failSafe: boolean
  /** Fail-safe's answer to a failed load of a key whose caller read `fallback`. */
  readonly rescue: SingleLoads<A>["rescued"]
  /** The soft timeout's wait for a key whose caller holds a kept value (no soft timeout: undefined). */
  readonly waitSoftly: SingleLoads<A>["waitSoftly"] | undefined
  /** The distributed lock (`lock`): each key of a batch load is loaded under its lease. */
  readonly leases: Leases<A> | undefined
  /** Whether an entry read from the store answers a miss. */
  readonly servable: (entry: Entry<A>) => boolean
  /** The load of one key's slot through `lookup`: the loader stack, then the write. */
  readonly loadKey: SingleLoads<A>["loadKey"]
  /** Refreshes a stale key in the background (bounded), unless it is loading already. */
  readonly revalidate: SingleLoads<A>["revalidate"]
  /** The namespace's sliding TTL: fresh hits extend their entries (after the read), debounced. */
  readonly slider: Slider | undefined
}

/** One batch read. @internal */
export interface BatchRead<X, A, E, R> {
  readonly keys: ReadonlyArray<string>
  readonly args: ReadonlyArray<X>
  readonly loadOne: Loader<X, A, E, R>
  readonly loadMany: BatchLoader<A, E, R> | undefined
}

/**
 * What taking a key's lease gave a batch: the lease (`Mine`), none while another holds it
 * (`Held`), the value the holder before wrote meanwhile (`Written`), or a store that failed when
 * the policy is to go on without the cache (`Unleased`).
 */
type Taken<A> =
  | { readonly _tag: "Mine"; readonly token: string }
  | { readonly _tag: "Held" }
  | { readonly _tag: "Written"; readonly value: A }
  | { readonly _tag: "Unleased" }

const held: Taken<never> = { _tag: "Held" }
const unleased: Taken<never> = { _tag: "Unleased" }

/** A batch read; made as it runs (it reads the store's keys at once). @internal */
export const getManyOrLoad = <A, X, E, R>(
  context: BatchContext<A>,
  batch: BatchRead<X, A, E, R>
): Effect.Effect<Array<Option.Option<A>>, E | CacheError, R> => {
  const { keys } = batch
  const fulls = keys.map(context.fullKey)
  return Effect.matchEffect(context.store.getMany(fulls), {
    onFailure: (error) =>
      Effect.flatMap(
        context.onStoreFailure("read", error, undefined),
        () => loadMissing(context, batch, classify(context, keys, fulls, undefined))
      ),
    onSuccess: (stored) => {
      const found = classify(context, keys, fulls, stored)
      // a cached failure fails the batch, as the load of its key would (never a value)
      if (found.failed !== undefined) return Effect.fail(found.failed.value as unknown as E)
      if (found.tagged !== undefined) {
        return Effect.flatMap(sortTagged(context, keys, found), (sorted) =>
          sorted.slid
            ? Effect.zipRight(context.slider!.flush, loadMissing(context, batch, sorted))
            : loadMissing(context, batch, sorted))
      }
      // every key a fresh hit: the answer, with no further step (nothing decoded badly: no drops)
      const answer = found.missing === undefined && found.stale.length === 0
        ? Effect.succeed(found.results)
        : loadMissing(context, batch, found)
      return found.slid ? Effect.zipRight(context.slider!.flush, answer) : answer
    }
  })
}

/** Refreshes the stale hits of a batch read in the background, and loads its misses. */
const loadMissing = <A, X, E, R>(
  context: BatchContext<A>,
  batch: BatchRead<X, A, E, R>,
  found: Found<A>
): Effect.Effect<Array<Option.Option<A>>, E | CacheError, R> =>
  Effect.gen(function*() {
    const { flights, reader } = context
    const { args, keys, loadMany, loadOne } = batch
    const { fallbacks, fulls, observed, results, stale, staleEntries } = found
    yield* reader.flushDrops
    for (let j = 0; j < stale.length; j++) {
      const i = stale[j]!
      yield* context.revalidate(keys[i]!, fulls[i]!, args[i]!, loadOne, staleEntries[j]!, observed.get(fulls[i]!))
    }
    const missing = found.missing
    if (missing === undefined) return results

    const waits: Array<readonly [Slot<A, E>, ReadonlyArray<number>]> = []
    const batched: Array<FlightKey<A>> = []
    const batchedIndices: Array<ReadonlyArray<number>> = []
    for (const [full, indices] of missing) {
      const i = indices[0]!
      const existing = flights.current<E>(full)
      if (existing !== undefined) waits.push([existing, indices])
      else if (loadMany === undefined) {
        waits.push([
          yield* context.startOrJoin(
            keys[i]!,
            full,
            args[i]!,
            loadOne,
            fallbacks.get(full),
            undefined,
            observed.get(full)
          ),
          indices
        ])
      } else {
        batched.push([keys[i]!, full, observed.get(full)])
        batchedIndices.push(indices)
      }
    }
    if (loadMany !== undefined && batched.length > 0) {
      /** One `lookupMany` call for some slots of the batch: each slot's outcome, aligned with them. */
      const loadBatch = (
        slots: ReadonlyArray<Slot<A, E>>,
        firstIndices: ReadonlyArray<number>
      ): Effect.Effect<ReadonlyArray<SlotExit<A, E>>, never, R> =>
        context.runLoad(
          slots.map((slot) => slot.key),
          Effect.suspend(() => loadMany(firstIndices)),
          (answer, elapsed) =>
            Effect.flatMap(matchAnswer(context.namespace, slots, answer), (values) => {
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
        )
      const firstIndices = batchedIndices.map((indices) =>
        indices[0]!
      )
      const { leases } = context
      const slots = yield* flights.start<E, R>(batched, (slots) =>
        leases === undefined ?
          loadBatch(slots, firstIndices) :
          leases.acquire(
            slots.map((slot) => slot.full),
            (granted) =>
              Effect.gen(function*() {
                // under the lock: the keys whose leases this batch takes load together, in one call
                // (unless the entry read once more after taking the lease shows that the holder before
                // wrote it and released meanwhile, as a single read checks); each other key waits for
                // its holder as a single read does, and loads alone if it takes the lease over. The
                // leases taken are given back if the batch is interrupted, wherever that lands
                const taken = yield* Effect.forEach(slots, (slot, j) =>
                  Effect.either(Effect.flatMap(granted[j]!, (token): Effect.Effect<Taken<A>, CacheError> =>
                    token === undefined
                      ? Effect.succeed(unleased)
                      : token._tag === "None"
                      ? Effect.succeed(held)
                      : Effect.map(
                        leases.recheck(slot.key, slot.full, token.value, context.servable),
                        (found): Taken<A> =>
                          found._tag === "Some"
                            ? { _tag: "Written", value: found.value }
                            : { _tag: "Mine", token: token.value }
                      ))), {
                  concurrency: "unbounded"
                })
                const exits = new Array<SlotExit<A, E>>(slots.length)
                const mine: Array<number> = []
                const tokens: Array<readonly [string, string, string]> = []
                const waiting: Array<Effect.Effect<void, never, R>> = []
                for (let j = 0; j < slots.length; j++) {
                  const slot = slots[j]!
                  const outcome = taken[j]!
                  if (outcome._tag === "Left") {
                    exits[j] = Exit.fail(outcome.left)
                  } else if (outcome.right._tag === "Written") {
                    exits[j] = Exit.succeed(outcome.right.value)
                  } else if (outcome.right._tag !== "Held") {
                    mine.push(j)
                    if (outcome.right._tag === "Mine") {
                      tokens.push([slot.key, slot.full, outcome.right.token])
                    }
                  } else {
                    const fallback = fallbacks.get(slot.full)
                    const i = firstIndices[j]!
                    waiting.push(
                      context.rescue(
                        slot,
                        fallback,
                        leases.waitFor(slot, fallback, context.servable, context.loadKey(slot, args[i]!, loadOne))
                      ).pipe(
                        Effect.exit,
                        Effect.map((exit) => void (exits[j] = exit))
                      )
                    )
                  }
                }
                const batch = mine.length === 0 ? Effect.void : leases.holding(
                  tokens,
                  Effect.map(
                    loadBatch(
                      mine.map((j) =>
                        slots[j]!
                      ),
                      mine.map((j) =>
                        firstIndices[j]!
                      )
                    ),
                    (outcomes) => mine.forEach((j, k) => void (exits[j] = outcomes[k]!))
                  )
                )
                yield* Effect.all([batch, ...waiting], { concurrency: "unbounded", discard: true })
                return exits
              })
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
