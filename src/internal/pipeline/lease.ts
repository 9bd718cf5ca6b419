/**
 * The distributed lock (`lock: { ttl, wait, onTimeout }`): one loader per key across every
 * process that shares the store, through the lease the store offers (`CacheStore.Lease`).
 *
 * A load of a key first takes the key's lease. The holder loads, writes, and only then releases
 * (so that a waiter never finds the lease free before the value is there), while a watchdog fiber
 * extends the lease every third of its TTL. A caller that finds the lease held waits for its
 * holder (`leaseWait.ts`): it polls the entry on a jittered exponential backoff, trying the lease
 * again at each poll (a holder that died lets it lapse, and a waiter takes over); when the entry
 * appears it is the answer. When `wait` ends first, a kept value (fail-safe's, or the stale value
 * a background refresh holds) answers, else `onTimeout` decides: load anyway, or fail with
 * `LockTimeout`.
 *
 * One lease per key, taken only around that key's own load: a loader that reads other keys of
 * the cache takes their leases in turn and never waits on its own.
 *
 * A lease the store granted is never lost to an interruption: taking it is not interruptible (the
 * store may have granted it while its answer is on its way), and an interruption once it is
 * taken, wherever it lands, gives it back (see `owning`).
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import { UnsupportedCapability } from "../../CacheError.js"
import type { CacheError } from "../../CacheError.js"
import type * as CacheStore from "../../CacheStore.js"
import type { Entry } from "./envelope.js"
import { EXPIRED, freshness } from "./freshness.js"
import { makeWaitFor } from "./leaseWait.js"
import type { Reader } from "./read.js"
import type { Counters } from "./stats.js"
import type { OnStoreFailure } from "./storeErrors.js"

/** The resolved `lock` option. @internal */
export interface LockOptions {
  readonly ttlMillis: number
  readonly waitMillis: number
  readonly onTimeout: "load" | "fail"
}

/** @internal */
export interface LeaseOptions<A> {
  readonly namespace: string
  readonly store: CacheStore.Service
  readonly lock: LockOptions
  readonly now: () => number
  /** How entries read from the store decode. */
  readonly reader: Pick<Reader<A>, "entryOf" | "flushDrops">
  readonly onStoreFailure: OnStoreFailure
  readonly counters: Pick<Counters, "lockAcquired" | "lockWait" | "lockTimeout" | "lockTakeover">
}

/**
 * Runs `loading` (one key's loader and write) under the key's lease, or answers with what its
 * holder wrote. `kept` is the value a caller may be answered with when the wait ends (fail-safe's
 * kept entry, or the stale entry a background refresh replaces); `settled` tells whether an entry
 * read from the store answers the load (a miss: any servable entry; a refresh: a newer one).
 * @internal
 */
export type Leased<A> = <E, R>(
  load: LeasedLoad,
  kept: Entry<A> | undefined,
  settled: (entry: Entry<A>) => boolean,
  loading: Effect.Effect<A, E | CacheError, R>
) => Effect.Effect<A, E | CacheError, R>

/**
 * What taking a key's lease gave: its token, none while another holds it, or undefined when the
 * store failed and the policy is to go on without the cache. @internal
 */
export type Taken = Option.Option<string> | undefined

/** The lock's parts, for loads of several keys at once (a batch). @internal */
export interface Leases<A> {
  /** One key's load under its lease: `acquire`, then `holding` or `waitFor`. */
  readonly run: Leased<A>
  /**
   * Takes the leases of keys at once, and hands what each gave (or the error the store's failure
   * fails it with) to `use`. Taking them is not interruptible, and an interruption of `use` gives
   * back every lease taken, wherever it lands: before `recheck` or `holding` own a token, or after.
   */
  readonly acquire: <B, E, R>(
    fulls: ReadonlyArray<string>,
    use: (taken: ReadonlyArray<Either.Either<Taken, CacheError>>) => Effect.Effect<B, E, R>
  ) => Effect.Effect<B, E, R>
  /**
   * Just acquired: the value of the entry the store holds now when `settled` accepts it (the
   * holder before wrote it and released between this caller's read and its acquisition; the
   * lease is then released), or none: the caller loads under the lease. When the read fails the
   * call (or is interrupted), the lease is released too.
   */
  readonly recheck: (
    key: string,
    full: string,
    token: string,
    settled: (entry: Entry<A>) => boolean
  ) => Effect.Effect<Option.Option<A>, CacheError>
  /** Runs `loading` while each token holds its key's lease, then releases them all. */
  readonly holding: <B, E, R>(
    held: ReadonlyArray<readonly [key: string, full: string, token: string]>,
    loading: Effect.Effect<B, E, R>
  ) => Effect.Effect<B, E, R>
  /** Waits for the holder of a key's lease (this caller did not get it), as `run` does. */
  readonly waitFor: Leased<A>
}

/** The load a lease is taken for: one key's slot of its flight. @internal */
export interface LeasedLoad {
  readonly key: string
  readonly full: string
  /** A write or invalidation of the key in this process came since the load started. */
  readonly superseded: boolean
}

/** @internal */
export const makeLeases = <A>(options: LeaseOptions<A>): Leases<A> => {
  const { counters, lock, namespace, now, onStoreFailure, reader, store } = options
  const lease = store.lease
  if (lease === undefined) {
    const unsupported = new UnsupportedCapability({
      store: store.name,
      capability: "lease",
      detail: `the lock option needs a store that grants leases; the ${store.name} store does not`
    })
    const refuse = () => Effect.fail(unsupported)
    return {
      run: refuse,
      acquire: (fulls, use) => use(fulls.map(() => Either.left(unsupported))),
      // never reached: nothing is held without a lease acquired
      recheck: () => Effect.succeed(Option.none()),
      holding: (_, loading) => loading,
      waitFor: refuse
    }
  }
  const ttl = Duration.millis(lock.ttlMillis)
  const extendEvery = Duration.millis(Math.max(1, Math.floor(lock.ttlMillis / 3)))

  /** The entry of a key as the store has it now (none when it cannot be read). */
  const readEntry = (key: string, full: string): Effect.Effect<Entry<A> | undefined, CacheError> =>
    Effect.matchEffect(store.get(full), {
      onFailure: (error) => onStoreFailure("read", error, undefined),
      onSuccess: (stored) =>
        Effect.as(
          reader.flushDrops,
          stored._tag === "Some" ? valueEntry(reader.entryOf(key, full, stored.value)) : undefined
        )
    })

  /** Gives leases back (a lease another holds now stays: a release compares the token). */
  const release = (held: ReadonlyArray<readonly [full: string, token: string]>): Effect.Effect<void> =>
    Effect.forEach(held, ([full, token]) => Effect.ignore(lease.release(full, token)), {
      concurrency: "unbounded",
      discard: true
    })

  /** Keeps the lease while `loading` runs; gives up extending when the lease was lost. */
  const watchdog = (key: string, full: string, token: string): Effect.Effect<void> =>
    Effect.flatMap(
      Effect.either(lease.extend(full, token, ttl)),
      (extended) =>
        extended._tag === "Right" && extended.right
          ? Effect.void
          : Effect.zipRight(
            Effect.logWarning("the lease of a load was lost before the load ended; another loader may run").pipe(
              Effect.annotateLogs({ namespace, key })
            ),
            Effect.fail(undefined)
          )
    ).pipe(
      Effect.delay(extendEvery),
      Effect.forever,
      Effect.ignore
    )

  /**
   * Runs `loading` while the tokens hold their leases, then releases them: after the write, so
   * that no waiter finds a lease free before the value is there.
   */
  const holding = <B, E, R>(
    held: ReadonlyArray<readonly [key: string, full: string, token: string]>,
    loading: Effect.Effect<B, E, R>
  ): Effect.Effect<B, E, R> =>
    held.length === 0 ? loading : Effect.scoped(
      Effect.zipRight(
        Effect.forEach(held, ([key, full, token]) => Effect.forkScoped(watchdog(key, full, token)), { discard: true }),
        loading
      )
    ).pipe(
      Effect.ensuring(release(held.map(([, full, token]) => [full, token] as const)))
    )

  /** Takes a key's lease, counting it when granted. */
  const take = (full: string) =>
    Effect.tap(lease.acquire(full, ttl), (token) => {
      if (token._tag === "Some") counters.lockAcquired()
    })

  /** Takes a key's lease; a store that fails goes by the `onStoreError` policy. */
  const takeOrGoOn = (full: string): Effect.Effect<Taken, CacheError> =>
    Effect.catchAll(take(full), (error) => onStoreFailure("lease", error, undefined))

  /**
   * Takes leases (`taking`) and hands what it took to `use`; `held` tells which leases it holds.
   * Taking is not interruptible: the store may have granted a lease whose answer is on its way,
   * and an interruption then would lose the token, and the lease would be held until its TTL
   * lapses with nobody loading under it. An interruption of `use`, wherever it lands (before
   * `recheck` or `holding` own a token, or inside them), gives back every lease taken. A lease
   * given back already (by `recheck` or `holding`) is given back once more then, which is
   * harmless: a release compares the token (another holder's lease is left alone).
   */
  const owning = <T, E1, B, E, R>(
    taking: Effect.Effect<T, E1>,
    held: (taken: T) => ReadonlyArray<readonly [full: string, token: string]>,
    use: (taken: T) => Effect.Effect<B, E, R>
  ): Effect.Effect<B, E1 | E, R> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(taking, (taken) => {
        const tokens = held(taken)
        return tokens.length === 0 ? restore(use(taken)) : Effect.onExit(
          restore(use(taken)),
          (exit) => Exit.isFailure(exit) && Cause.isInterrupted(exit.cause) ? release(tokens) : Effect.void
        )
      })
    )

  const heldOne = (full: string) => (taken: Taken): ReadonlyArray<readonly [string, string]> =>
    taken !== undefined && taken._tag === "Some" ? [[full, taken.value]] : []

  const acquire = <B, E, R>(
    fulls: ReadonlyArray<string>,
    use: (taken: ReadonlyArray<Either.Either<Taken, CacheError>>) => Effect.Effect<B, E, R>
  ): Effect.Effect<B, E, R> =>
    owning(
      Effect.forEach(fulls, (full) => Effect.either(takeOrGoOn(full)), { concurrency: "unbounded" }),
      (taken) => {
        const tokens: Array<readonly [string, string]> = []
        for (let i = 0; i < taken.length; i++) {
          const t = taken[i]!
          if (t._tag === "Right" && t.right !== undefined && t.right._tag === "Some") {
            tokens.push([fulls[i]!, t.right.value])
          }
        }
        return tokens
      },
      use
    )

  /** A waiter's load once it holds the lease: its holder ended without a value. */
  const takingOver = <B, E, R>(loading: Effect.Effect<B, E, R>): Effect.Effect<B, E, R> =>
    Effect.zipRight(Effect.sync(counters.lockTakeover), loading)

  const recheck = (
    key: string,
    full: string,
    token: string,
    settled: (entry: Entry<A>) => boolean
  ): Effect.Effect<Option.Option<A>, CacheError> =>
    Effect.flatMap(
      // a read that fails the call (onStoreError "fail") or is interrupted gives the lease back:
      // nobody loads under it
      Effect.onError(readEntry(key, full), () => Effect.ignore(lease.release(full, token))),
      (entry) =>
        entry !== undefined && settled(entry)
          ? Effect.as(Effect.ignore(lease.release(full, token)), Option.some(entry.value))
          : Effect.succeed(Option.none())
    )

  /**
   * Just acquired: the holder before may have written and released between this caller's read
   * and its acquisition, so the entry is read once more before loading.
   */
  const acquired = <E, R>(
    key: string,
    full: string,
    token: string,
    settled: (entry: Entry<A>) => boolean,
    loading: Effect.Effect<A, E | CacheError, R>
  ): Effect.Effect<A, E | CacheError, R> =>
    Effect.flatMap(recheck(key, full, token, settled), (found) =>
      found._tag === "Some"
        ? Effect.succeed(found.value)
        : holding([[key, full, token]], loading))

  /**
   * A waiter tries the lease once more (a holder that died lets it lapse): when it takes it, it
   * loads under it, and the value is the answer; none while another still holds it. The lease
   * taken over is this call's to give back: its load runs here.
   */
  const takeOver = <E, R>(
    key: string,
    full: string,
    settled: (entry: Entry<A>) => boolean,
    loading: Effect.Effect<A, E | CacheError, R>
  ): Effect.Effect<Option.Option<A>, E | CacheError, R> =>
    owning(
      Effect.catchAll(take(full), () => Effect.succeed(Option.none<string>())),
      heldOne(full),
      (token) =>
        token._tag === "Some"
          // the entry read once more may still hold the holder's value (written just before its release)
          ? Effect.map(acquired(key, full, token.value, settled, takingOver(loading)), Option.some)
          : Effect.succeed(Option.none())
    )

  const waitFor = makeWaitFor<A>({ counters, lock, namespace, now, readEntry, takeOver })

  const run: Leased<A> = (load, kept, settled, loading) =>
    owning(takeOrGoOn(load.full), heldOne(load.full), (taken) =>
      // the lease cannot be had (the store failed; the policy is to go on without the cache)
      taken === undefined
        ? loading
        : taken._tag === "Some"
        ? acquired(load.key, load.full, taken.value, settled, loading)
        : waitFor(load, kept, settled, loading))

  return { run, acquire, recheck, holding, waitFor }
}

/** A cached failure (negative caching) never answers a wait for a value: the waiter loads. */
const valueEntry = <A>(entry: Entry<A> | undefined): Entry<A> | undefined =>
  entry === undefined || entry.failed ? undefined : entry

/** Whether a stored entry answers a miss: anything a read would serve. @internal */
export const servable = (staleWindow: number, now: () => number) => (entry: Entry<unknown>): boolean =>
  freshness(entry, now(), staleWindow) !== EXPIRED
