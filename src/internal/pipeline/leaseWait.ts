/**
 * Waiting for the holder of a key's lease (see `lease.ts`): the caller that did not get the lease
 * polls the entry on a jittered exponential backoff until the holder's value is there, trying the
 * lease again at each poll (a holder that died lets it lapse, and the waiter takes over). When
 * `wait` ends first, a kept value answers, else `onTimeout` decides: load anyway, or fail with
 * `LockTimeout`.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { LockTimeout } from "../../CacheError.js"
import type { CacheError } from "../../CacheError.js"
import type { Entry } from "./envelope.js"
import type { Leased, LeasedLoad, LockOptions } from "./lease.js"
import type { Counters } from "./stats.js"

/** The first pause between two polls of a waiter; it doubles up to `MAX_POLL_MILLIS`. */
const FIRST_POLL_MILLIS = 10
const MAX_POLL_MILLIS = 250

/** What a waiter needs of the lock. @internal */
export interface WaitParts<A> {
  readonly namespace: string
  readonly lock: LockOptions
  readonly now: () => number
  readonly counters: Pick<Counters, "lockWait" | "lockTimeout">
  /** The entry of a key as the store has it now (none when it cannot be read). */
  readonly readEntry: (key: string, full: string) => Effect.Effect<Entry<A> | undefined, CacheError>
  /** Tries the lease once more: the value of the load run under it when taken, none while held. */
  readonly takeOver: <E, R>(
    key: string,
    full: string,
    settled: (entry: Entry<A>) => boolean,
    loading: Effect.Effect<A, E | CacheError, R>
  ) => Effect.Effect<Option.Option<A>, E | CacheError, R>
}

/**
 * A waiter's poll: the answer (the holder's value, or this caller's own load once it took the
 * lease over), or still waiting.
 */
type Poll<A> =
  | { readonly _tag: "Settled"; readonly value: A }
  | { readonly _tag: "Waiting"; readonly kept: Entry<A> | undefined }

/** Waits for the holder of a key's lease (the caller did not get it). @internal */
export const makeWaitFor = <A>(parts: WaitParts<A>): Leased<A> => {
  const { counters, lock, namespace, now, readEntry, takeOver } = parts
  return <E, R>(
    load: LeasedLoad,
    kept: Entry<A> | undefined,
    settled: (entry: Entry<A>) => boolean,
    loading: Effect.Effect<A, E | CacheError, R>
  ): Effect.Effect<A, E | CacheError, R> =>
    Effect.suspend(() => {
      const { full, key } = load
      counters.lockWait()
      const deadline = now() + lock.waitMillis
      let latest = kept
      const step: Effect.Effect<Poll<A>, E | CacheError, R> = Effect.flatMap(readEntry(key, full), (entry) => {
        if (entry !== undefined) {
          if (settled(entry)) return Effect.succeed<Poll<A>>({ _tag: "Settled", value: entry.value })
          // an expired entry still kept (fail-safe) may answer when the wait ends
          if (now() < entry.staleUntil && (latest === undefined || entry.freshUntil > latest.freshUntil)) {
            latest = entry
          }
        }
        return Effect.map(
          takeOver(key, full, settled, loading),
          (taken): Poll<A> =>
            taken._tag === "Some" ? { _tag: "Settled", value: taken.value } : { _tag: "Waiting", kept: latest }
        )
      })
      // jittered so that the waiters of several processes do not poll in step; never past the deadline
      const backoff: Schedule.Schedule<unknown, Poll<A>> = Schedule.exponential(Duration.millis(FIRST_POLL_MILLIS), 2)
        .pipe(
          Schedule.union(Schedule.spaced(Duration.millis(MAX_POLL_MILLIS))),
          Schedule.jittered,
          Schedule.modifyDelay((_, delay) =>
            // whole milliseconds: a fractional sleep would end a hair past the deadline
            Duration.millis(Math.max(0, Math.min(Math.floor(Duration.toMillis(delay)), deadline - now())))
          )
        )
      const polled = Effect.zipRight(
        Effect.sleep(Duration.millis(Math.min(FIRST_POLL_MILLIS, lock.waitMillis))),
        Effect.repeat(step, {
          schedule: Schedule.passthrough(backoff),
          until: (poll) => poll._tag !== "Waiting" || now() >= deadline
        })
      )
      return Effect.flatMap(polled, (poll): Effect.Effect<A, E | CacheError, R> => {
        switch (poll._tag) {
          case "Settled":
            return Effect.succeed(poll.value)
          case "Waiting": {
            counters.lockTimeout()
            // the value kept is older than a write of this process since: not served
            const last = poll.kept
            if (last !== undefined && !load.superseded && now() < last.staleUntil) return Effect.succeed(last.value)
            if (lock.onTimeout === "load") return loading
            return Effect.fail(new LockTimeout({ namespace, key, waitMillis: lock.waitMillis }))
          }
        }
      })
    })
}
