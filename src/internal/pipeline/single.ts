/**
 * Loads of one key: starting or joining the key's flight, the background refresh (bounded by
 * `refreshConcurrency`), fail-safe's answer to a failed load, and the soft timeout.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type { CacheError } from "../../CacheError.js"
import type { Entry } from "./envelope.js"
import type { Fenced } from "./fence.js"
import type { Flights } from "./flight.js"
import type { Superseding } from "./keyOrder.js"
import type { Leases } from "./lease.js"
import type { RunLoad } from "./load.js"
import type { Loader } from "./read.js"
import type { Abandoned, Absent, Slot } from "./slot.js"
import { isRetry } from "./slot.js"
import type { Counters } from "./stats.js"
import type { FailSafe } from "./types.js"
import type { Writer } from "./write.js"

/** What single loads use of their pipeline. @internal */
export interface SingleLoadOptions<A> {
  readonly namespace: string
  readonly now: () => number
  readonly counters: Counters
  readonly writer: Writer<A>
  readonly flights: Flights<A>
  readonly runLoad: RunLoad
  readonly storeLoaded: (
    loaded: ReadonlyArray<{ readonly load: Superseding & Fenced; readonly key: string; readonly value: A }>,
    elapsed: number
  ) => Effect.Effect<void, CacheError>
  /** Negative caching: stores a load's failure when the options accept it (none: failures are not cached). */
  readonly storeFailed:
    | ((load: Superseding & Fenced, key: string, error: unknown, elapsed: number) => Effect.Effect<void, CacheError>)
    | undefined
  readonly failSafe: FailSafe | undefined
  readonly softTimeout: number | undefined
  readonly refreshPermits: Effect.Semaphore
  /** The distributed lock (`lock`): loads run under their key's lease. */
  readonly leases: Leases<A> | undefined
  /** Whether an entry read from the store answers a miss (anything a read would serve). */
  readonly servable: (entry: Entry<A>) => boolean
  /** What the store holds of a key (an entry or tombstone; none when nothing, or the read failed), on a store with a fence. */
  readonly observe: ((key: string, full: string) => Effect.Effect<Entry<A> | undefined, CacheError>) | undefined
}

/** An explicit refresh loads anew, whatever entry the store holds. */
const never = () => false

/** @internal */
export const makeSingleLoads = <A>(options: SingleLoadOptions<A>) => {
  const {
    counters,
    failSafe,
    flights,
    leases,
    namespace,
    now,
    observe,
    refreshPermits,
    runLoad,
    servable,
    softTimeout,
    storeFailed,
    storeLoaded,
    writer
  } = options

  /**
   * Starts the load of one key, or joins the one under way. `fallback` is the entry the caller
   * read past its stale window, which fail-safe may answer a failed load with. With the lock,
   * the load runs under the key's lease, or is answered by an entry another holder wrote that
   * `settled` accepts (by default: any servable entry). `observed` is what the caller's read
   * found in the store (an entry or tombstone; none: nothing), which the load writes against.
   */
  const startOrJoin = <X, E, R>(
    key: string,
    full: string,
    arg: X,
    load: Loader<X, A, E, R>,
    fallback?: Entry<A>,
    settled: (entry: Entry<A>) => boolean = servable,
    observed?: Entry<A>
  ): Effect.Effect<Slot<A, E>, never, R> =>
    Effect.suspend(() => {
      const existing = flights.current<E>(full)
      return existing !== undefined
        ? Effect.succeed(existing)
        : startOne(key, full, arg, load, fallback, settled, observed)
    })

  /** Starts the load of one key that is not in flight (see `startOrJoin`). */
  const startOne = <X, E, R>(
    key: string,
    full: string,
    arg: X,
    load: Loader<X, A, E, R>,
    fallback: Entry<A> | undefined,
    settled: (entry: Entry<A>) => boolean,
    observed: Entry<A> | undefined
  ): Effect.Effect<Slot<A, E>, never, R> =>
    Effect.map(
      flights.start<E, R>([[key, full, observed]], ([slot]) =>
        rescued(
          slot!,
          fallback,
          leases === undefined
            ? loadKey(slot!, arg, load)
            : leases.run(slot!, fallback, settled, loadKey(slot!, arg, load))
        ).pipe(
          Effect.exit,
          Effect.map((exit) => [exit])
        )),
      (slots) => slots[0]!
    )

  /**
   * Fail-safe: a load that fails while the caller holds an entry kept past its expiry (and no
   * write or invalidation came since) answers with that entry's value, logs and counts the error,
   * and keeps the entry fresh for `throttle` so the loader is not tried again before then.
   */
  const rescued = <E, R>(
    slot: Slot<A, E>,
    fallback: Entry<A> | undefined,
    loading: Effect.Effect<A, E | CacheError, R>
  ): Effect.Effect<A, E | CacheError, R> =>
    failSafe === undefined || fallback === undefined ? loading : Effect.catchAll(loading, (error) => {
      const t = now()
      if (slot.superseded || t >= fallback.staleUntil) return Effect.fail(error)
      counters.failSafeServe()
      return Effect.logWarning("a load failed; serving the value failSafe kept past its expiry").pipe(
        Effect.annotateLogs({ namespace, key: slot.key, error: String(error) }),
        Effect.zipRight(
          writer.keep(slot.full, fallback, Math.min(t + failSafe.throttleMillis, fallback.staleUntil), slot)
        ),
        Effect.ignore,
        Effect.as(fallback.value)
      )
    })

  /** The load of one key's flight: the loader stack, then the write unless a write superseded it. */
  const loadKey = <X, E, R>(slot: Slot<A, E>, arg: X, load: Loader<X, A, E, R>) =>
    storeFailed === undefined ? loadAndStore(slot, arg, load) : Effect.suspend(() => {
      const start = now()
      // the loader's own failure (never a timeout: that is a CacheError) may be cached
      return Effect.tapError(
        loadAndStore(slot, arg, load),
        (error) => Effect.ignore(storeFailed(slot, slot.key, error, now() - start))
      )
    })

  const loadAndStore = <X, E, R>(slot: Slot<A, E>, arg: X, load: Loader<X, A, E, R>) =>
    runLoad(
      [slot.key],
      Effect.suspend(() => load(arg)),
      (value, elapsed) => Effect.as(storeLoaded([{ load: slot, key: slot.key, value }], elapsed), value)
    )

  /**
   * Refreshes one key in the background unless it is loading already: the refresh holds one of
   * the `refreshConcurrency` permits while it loads, and a failure leaves the entry as it was
   * (logged and counted; a caller that joined the refresh hears of it). The new value replaces
   * `observed` (the entry as the store held it) only while the store still holds it.
   */
  const revalidate = <X, E, R>(
    key: string,
    full: string,
    arg: X,
    load: Loader<X, A, E, R>,
    entry: Entry<A>,
    observed: Entry<A> = entry
  ): Effect.Effect<void, never, R> =>
    Effect.suspend(() => {
      if (flights.current(full) !== undefined) return Effect.void
      return flights.start<E, R>([[key, full, observed]], ([slot]) =>
        (leases === undefined
          ? refreshPermits.withPermits(1)(loadKey(slot!, arg, load))
          // under the lock, a refresh another process wrote first (a newer entry) is this one's answer
          : leases.run(
            slot!,
            entry,
            (found) => found.freshUntil > entry.freshUntil,
            refreshPermits.withPermits(1)(loadKey(slot!, arg, load))
          )).pipe(
            Effect.tapErrorCause((cause) =>
              Cause.isInterruptedOnly(cause) ? Effect.void : Effect.zipRight(
                Effect.sync(counters.refreshFailure),
                Effect.logWarning("a background refresh failed; the entry is kept as it was", cause).pipe(
                  Effect.annotateLogs({ namespace, key })
                )
              )
            ),
            (refreshing) => rescued(slot!, entry, refreshing),
            Effect.exit,
            Effect.map((exit) => [exit])
          ))
    })

  /**
   * Loads one key through the single flight; a batch that did not return it hands it back here.
   * A caller that finds the key loading joins it at the cost of one suspension: no fiber, no
   * Deferred, no interruption handler of its own.
   */
  const loadShared = <X, E, R>(
    key: string,
    full: string,
    arg: X,
    load: Loader<X, A, E, R>,
    fallback?: Entry<A>,
    settled: (entry: Entry<A>) => boolean = servable,
    observed?: Entry<A>
  ): Effect.Effect<A, E | CacheError, R> =>
    Effect.suspend(() => {
      const existing = flights.current<E>(full)
      return existing !== undefined
        ? waitShared(existing, key, full, arg, load, fallback, settled)
        : Effect.flatMap(
          startOne(key, full, arg, load, fallback, settled, observed),
          (slot) => waitShared(slot, key, full, arg, load, fallback, settled)
        )
    })

  /** Waits on a key's slot; a load abandoned or not returned is started again, from what the store holds now. */
  const waitShared = <X, E, R>(
    slot: Slot<A, E>,
    key: string,
    full: string,
    arg: X,
    load: Loader<X, A, E, R>,
    fallback: Entry<A> | undefined,
    settled: (entry: Entry<A>) => boolean
  ): Effect.Effect<A, E | CacheError, R> => {
    // a load started again starts from what the store holds now: nothing known, nothing expected
    const again = () => loadShared(key, full, arg, load, fallback, settled)
    return fallback === undefined || softTimeout === undefined
      ? flights.waitOr(slot, again)
      : Effect.catchIf(waitSoftly(slot, fallback), isRetry, again)
  }

  /**
   * Loads one key anew (an explicit refresh), joining a load under way. On a store with a fence
   * the key is read first: what it holds is what the new value replaces, unless it changes.
   */
  const reload = <X, E, R>(
    key: string,
    full: string,
    arg: X,
    load: Loader<X, A, E, R>
  ): Effect.Effect<A, E | CacheError, R> =>
    observe === undefined
      ? loadShared(key, full, arg, load, undefined, never)
      : Effect.flatMap(observe(key, full), (found) => loadShared(key, full, arg, load, undefined, never, found))

  /**
   * The soft timeout: a caller holding a value kept by fail-safe waits at most `soft` for the
   * load, then is answered with that value while the load goes on and fills the cache. A write or
   * invalidation since the read means waiting for the load after all.
   */
  const waitSoftly = <E>(
    slot: Slot<A, E>,
    fallback: Entry<A>
  ): Effect.Effect<A, E | CacheError | Absent | Abandoned> =>
    Effect.flatMap(flights.waitAtMost(slot, softTimeout!), (done) => {
      if (done._tag === "Some") return Effect.succeed(done.value)
      if (slot.superseded || now() >= fallback.staleUntil) return flights.wait(slot)
      counters.softTimeout()
      return Effect.succeed(fallback.value)
    })

  return { startOrJoin, loadKey, loadShared, reload, revalidate, rescued, waitSoftly }
}

/** The single loads of a pipeline: what its reads and batch reads load through. @internal */
export type SingleLoads<A> = ReturnType<typeof makeSingleLoads<A>>
