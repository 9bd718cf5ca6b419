/**
 * The write-behind queue: pending writes coalesced per key, one flush fiber that saves them in
 * batches, retries, dead letters, back-pressure and the flush at shutdown.
 *
 * One fiber saves, one batch at a time, so the writes of one key reach the source in the order
 * they were made: a write made while an older one of its key is being saved waits in `pending`
 * and is saved after it (or replaces it, when the older one failed).
 *
 * A failed batch of several records is split in halves, tried again at once, until the failure is
 * narrowed down to single records or both halves fail (then it is not the records' fault: an
 * outage, retried as it is). A record's attempts are the saves that failed with it alone; after
 * `maxAttempts` of those it is dead-lettered, and the rest of its batch goes on.
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as MetricLabel from "effect/MetricLabel"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { StoreError } from "../CacheError.js"
import * as CacheMetrics from "../CacheMetrics.js"
import type * as WriteBehind from "../WriteBehind.js"
import { traced } from "./pipeline/tracing.js"

const closed = Symbol.for("effect-cachekit/WriteBehind/closed")

/** One pending write. @internal */
export interface Rec<K, A> {
  readonly id: string
  readonly key: K
  readonly value: A
  /** The journal entries this write stands for (its own and those of the writes it replaced). */
  readonly ids: Array<string>
  /** Saves that failed with this record alone. */
  attempts: number
}

/** @internal */
export interface EngineOptions<K, A, E> {
  readonly namespace: string
  readonly batchSize: number
  readonly maxPending: number
  readonly maxAttempts: number
  readonly flush: Schedule.Schedule<unknown, unknown>
  readonly retry: Schedule.Schedule<unknown, unknown>
  readonly shutdownTimeoutMillis: number
  readonly saveBatch: (batch: ReadonlyArray<readonly [K, A]>) => Effect.Effect<void, E>
  /** Marks journal entries done (saved or dead-lettered), in durable mode. */
  readonly done: ((ids: ReadonlyArray<string>) => Effect.Effect<void, StoreError>) | undefined
}

/** @internal */
export interface Engine<K, A, E> {
  /** Queues a write, replacing a pending one of the same key; waits while the queue is full. */
  readonly enqueue: (id: string, key: K, value: A, ids: ReadonlyArray<string>) => Effect.Effect<void>
  /** The newest write of a key not yet saved, if any. */
  readonly latest: (id: string) => Rec<K, A> | undefined
  readonly flush: Effect.Effect<void>
  readonly failures: Stream.Stream<WriteBehind.Failure<K, A, E>>
  readonly deadLetters: Effect.Effect<ReadonlyArray<WriteBehind.DeadLetter<K, A, E>>>
  readonly stats: Effect.Effect<WriteBehind.Stats>
}

/** @internal */
export const make = <K, A, E>(options: EngineOptions<K, A, E>): Effect.Effect<Engine<K, A, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { batchSize, maxAttempts, maxPending, namespace, saveBatch } = options
    const labels = [MetricLabel.make("namespace", namespace)]
    /** Writes not yet taken by a flush, in the order their keys were first written. */
    const pending = new Map<string, Rec<K, A>>()
    /** Writes a flush is saving (a newer write of the same key may wait in `pending`). */
    const inflight = new Map<string, Rec<K, A>>()
    const deadLetters: Array<WriteBehind.DeadLetter<K, A, E>> = []
    let space = Deferred.unsafeMake<void>(FiberId.none)
    const stats = { flushed: 0, coalesced: 0, retried: 0, failed: 0, deadLettered: 0, batches: 0 }

    // not shut down at close: that would drop reports its subscribers have not taken yet; they
    // end at the `closed` mark instead, after every report published before it
    const failures = yield* PubSub.unbounded<WriteBehind.Failure<K, A, E> | typeof closed>()
    let isClosed = false
    const wake = yield* Queue.sliding<void>(1)
    let waiters: Array<Deferred.Deferred<void>> = []

    const held = () => pending.size + inflight.size
    const updatePending = () => CacheMetrics.writeBehindPending.unsafeUpdate(held(), labels)
    /** Records left the queue: writers waiting for space may go on. */
    const released = () => {
      updatePending()
      const freed = space
      space = Deferred.unsafeMake<void>(FiberId.none)
      Deferred.unsafeDone(freed, Exit.void)
    }
    const metrics = {
      flushed: CacheMetrics.writeBehindFlushed,
      coalesced: CacheMetrics.writeBehindCoalesced,
      retried: CacheMetrics.writeBehindRetried,
      failed: CacheMetrics.writeBehindFailed,
      deadLettered: CacheMetrics.writeBehindDeadLettered
    }
    const count = (counter: keyof typeof metrics, n: number) => {
      stats[counter] += n
      metrics[counter].unsafeUpdate(n, labels)
    }

    const enqueue = (id: string, key: K, value: A, ids: ReadonlyArray<string>): Effect.Effect<void> =>
      Effect.suspend(() => {
        const older = pending.get(id)
        if (older !== undefined) {
          pending.set(id, { id, key, value, ids: ids.length === 0 ? older.ids : older.ids.concat(ids), attempts: 0 })
          count("coalesced", 1)
          return Effect.void
        }
        if (held() >= maxPending) {
          // full: the flush fiber makes room; this write waits for it, it is never dropped
          const room = space
          return Effect.zipRight(
            Effect.zipRight(wake.offer(undefined), Deferred.await(room)),
            enqueue(id, key, value, ids)
          )
        }
        pending.set(id, { id, key, value, ids: ids.slice(), attempts: 0 })
        updatePending()
        return pending.size >= batchSize ? Effect.asVoid(wake.offer(undefined)) : Effect.void
      })

    /** Takes records out of flight: saved, dead-lettered, or replaced by a newer pending write. */
    const settle = (recs: ReadonlyArray<Rec<K, A>>) => {
      for (const rec of recs) if (inflight.get(rec.id) === rec) inflight.delete(rec.id)
    }

    /** Drops the records a newer write of their key replaced while they waited for a retry. */
    const current = (recs: ReadonlyArray<Rec<K, A>>): Array<Rec<K, A>> => {
      const kept: Array<Rec<K, A>> = []
      let replaced = 0
      for (const rec of recs) {
        const newer = pending.get(rec.id)
        if (newer !== undefined) {
          replaced++
          for (const journalId of rec.ids) newer.ids.push(journalId)
          if (inflight.get(rec.id) === rec) inflight.delete(rec.id)
        } else kept.push(rec)
      }
      if (replaced > 0) {
        count("coalesced", replaced)
        released()
      }
      return kept
    }

    /** Journal entries of saved or dead-lettered writes are done; if marking fails they are replayed later. */
    const markDone = (recs: ReadonlyArray<Rec<K, A>>): Effect.Effect<void> => {
      if (options.done === undefined) return Effect.void
      const ids = recs.flatMap((r) => r.ids)
      if (ids.length === 0) return Effect.void
      return Effect.catchAll(
        options.done(ids),
        (error) =>
          Effect.logWarning("saved writes could not be marked done in the journal; they will be replayed").pipe(
            Effect.annotateLogs({ namespace, error: error.message })
          )
      )
    }

    const deadLetter = (rec: Rec<K, A>, cause: Cause.Cause<E>) => {
      const letter: WriteBehind.DeadLetter<K, A, E> = {
        _tag: "DeadLettered",
        key: rec.key,
        value: rec.value,
        attempts: rec.attempts,
        cause
      }
      deadLetters.push(letter)
      count("deadLettered", 1)
      return Effect.zipRight(
        Effect.zipRight(
          markDone([rec]),
          Effect.logError(`a write failed ${rec.attempts} times on its own and was dead-lettered`).pipe(
            Effect.annotateLogs({ namespace, key: rec.id }),
            Effect.annotateLogs("cause", Cause.pretty(cause))
          )
        ),
        PubSub.publish(failures, letter)
      )
    }

    /** One call of `saveBatch`; a success settles the group. */
    const saveOnce = (group: ReadonlyArray<Rec<K, A>>): Effect.Effect<Exit.Exit<void, E>> =>
      Effect.flatMap(
        Effect.exit(saveBatch(group.map((r) => [r.key, r.value] as const))),
        (exit): Effect.Effect<Exit.Exit<void, E>> => {
          stats.batches++
          if (Exit.isFailure(exit)) return Effect.succeed(exit)
          settle(group)
          count("flushed", group.length)
          released()
          return Effect.as(markDone(group), exit)
        }
      )

    interface Outcome {
      readonly failed: Array<Array<Rec<K, A>>>
      readonly cause: Cause.Cause<E> | undefined
    }

    /**
     * Narrows down the failure of a group that just failed: its halves are saved; when both fail
     * the failure is not localised and the group is retried as it is; when one fails, that half is
     * narrowed down in turn, down to a single record, whose attempt it then is.
     */
    const narrow = (group: ReadonlyArray<Rec<K, A>>, cause: Cause.Cause<E>): Effect.Effect<Outcome> => {
      if (Cause.isInterruptedOnly(cause)) return Effect.interrupt
      if (group.length === 1) {
        const rec = group[0]!
        rec.attempts++
        if (rec.attempts < maxAttempts) return Effect.succeed({ failed: [[rec]], cause })
        settle(group)
        released()
        return Effect.as(deadLetter(rec, cause), { failed: [], cause })
      }
      count("retried", group.length)
      const half = Math.ceil(group.length / 2)
      const first = group.slice(0, half)
      const second = group.slice(half)
      return Effect.flatMap(
        Effect.zip(saveOnce(first), saveOnce(second)),
        ([a, b]): Effect.Effect<Outcome> => {
          if (Exit.isFailure(a) && Exit.isFailure(b)) {
            if (Cause.isInterruptedOnly(a.cause) || Cause.isInterruptedOnly(b.cause)) return Effect.interrupt
            // two records that each failed alone: an attempt of each
            if (group.length === 2) {
              return Effect.zipWith(narrow(first, a.cause), narrow(second, b.cause), (x, y) => ({
                failed: [...x.failed, ...y.failed],
                cause: b.cause
              }))
            }
            return Effect.succeed({ failed: [group.slice()], cause: b.cause })
          }
          if (Exit.isFailure(a)) return narrow(first, a.cause)
          if (Exit.isFailure(b)) return narrow(second, b.cause)
          return Effect.succeed({ failed: [], cause: undefined })
        }
      )
    }

    /**
     * Saves one batch, retrying what fails on the `retry` schedule; true when nothing of it is
     * left. What is left when the schedule ends goes back to `pending` (unless a newer write of
     * its key is there) and is reported.
     */
    const saveWithRetry = (batch: ReadonlyArray<Rec<K, A>>): Effect.Effect<boolean> =>
      Effect.gen(function*() {
        const driver = yield* Schedule.driver(options.retry)
        let groups: Array<Array<Rec<K, A>>> = [batch.slice()]
        while (true) {
          let failed: Array<Array<Rec<K, A>>> = []
          let cause: Cause.Cause<E> | undefined
          for (const group of groups) {
            const live = current(group)
            if (live.length === 0) continue
            const exit = yield* saveOnce(live)
            if (Exit.isSuccess(exit)) continue
            const result = yield* narrow(live, exit.cause)
            failed = failed.concat(result.failed)
            cause = result.cause ?? cause
          }
          if (failed.length === 0) return true
          const again = yield* Effect.either(driver.next(cause))
          const left = failed.flat()
          if (again._tag === "Right") {
            count("retried", left.length)
            groups = failed
            continue
          }
          // the schedule is over: the records wait in pending for the next flush, and are reported
          const kept = current(left)
          settle(kept)
          for (const rec of kept) pending.set(rec.id, rec)
          count("failed", kept.length)
          const report: WriteBehind.Failure<K, A, E> = {
            _tag: "BatchFailed",
            keys: kept.map((r) => r.key),
            cause: cause ?? Cause.empty
          }
          yield* Effect.logWarning(`${kept.length} writes could not be saved; they stay queued`).pipe(
            Effect.annotateLogs({ namespace }),
            Effect.annotateLogs("cause", Cause.pretty(report.cause))
          )
          yield* PubSub.publish(failures, report)
          return false
        }
      })

    /** Moves up to `batchSize` pending records into flight. */
    const take = (): Array<Rec<K, A>> => {
      const batch: Array<Rec<K, A>> = []
      for (const rec of pending.values()) {
        if (batch.length >= batchSize) break
        batch.push(rec)
      }
      for (const rec of batch) {
        pending.delete(rec.id)
        inflight.set(rec.id, rec)
      }
      return batch
    }

    /** Puts records back after an interruption, unless a newer write of their key is pending. */
    const restore = Effect.sync(() => {
      for (const rec of inflight.values()) {
        const newer = pending.get(rec.id)
        if (newer === undefined) pending.set(rec.id, rec)
        else for (const journalId of rec.ids) newer.ids.push(journalId)
      }
      inflight.clear()
    })

    /** One flush: every record pending when it starts, in batches; stops at a batch that failed. */
    const flushRound: Effect.Effect<void> = Effect.suspend(() => {
      const rounds = Math.ceil(pending.size / batchSize)
      let done = 0
      const next: Effect.Effect<void> = Effect.suspend(() => {
        if (done >= rounds || pending.size === 0) return Effect.void
        done++
        return Effect.flatMap(saveWithRetry(take()), (ok) => ok ? next : Effect.void)
      })
      return next.pipe(
        Effect.onInterrupt(() => restore),
        traced("cachekit.writeBehind.flush", { "cache.namespace": namespace, "cache.pending": pending.size })
      )
    })

    const worker = Effect.forever(
      Effect.gen(function*() {
        yield* wake.take
        const served = waiters
        waiters = []
        yield* flushRound
        for (const waiter of served) Deferred.unsafeDone(waiter, Exit.void)
      })
    )

    const flush: Effect.Effect<void> = Effect.suspend(() => {
      const done = Deferred.unsafeMake<void>(FiberId.none)
      waiters.push(done)
      return Effect.zipRight(wake.offer(undefined), Deferred.await(done))
    })

    const workerFiber = yield* Effect.forkScoped(worker)
    const ticker = yield* Effect.forkScoped(Effect.schedule(wake.offer(undefined), options.flush))

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        // the schedule's pace, until everything is saved or the deadline passes (finalizers run
        // uninterruptibly: the deadline needs this part interruptible)
        yield* Effect.interruptible(Effect.repeat(flush, { schedule: options.flush, until: () => held() === 0 })).pipe(
          Effect.timeout(options.shutdownTimeoutMillis),
          Effect.ignore
        )
        yield* Fiber.interrupt(ticker)
        yield* Fiber.interrupt(workerFiber)
        if (held() > 0) {
          yield* restore
          const left = Array.from(pending.values())
          pending.clear()
          count("failed", left.length)
          updatePending()
          yield* Effect.logError(`${left.length} writes could not be saved before shutdown`).pipe(
            Effect.annotateLogs({ namespace, keys: left.slice(0, 20).map((r) => r.id).join(",") })
          )
          yield* PubSub.publish(failures, {
            _tag: "Unwritten",
            writes: left.map((r) => [r.key, r.value] as const)
          })
        }
        isClosed = true
        yield* PubSub.publish(failures, closed)
      })
    )

    return {
      enqueue,
      latest: (id) => pending.get(id) ?? inflight.get(id),
      flush,
      failures: Stream.suspend(() =>
        isClosed ? Stream.empty : Stream.fromPubSub(failures).pipe(
          Stream.takeWhile((failure): failure is WriteBehind.Failure<K, A, E> => failure !== closed)
        )
      ),
      deadLetters: Effect.sync(() => deadLetters.slice()),
      stats: Effect.sync((): WriteBehind.Stats => ({
        namespace,
        pending: held(),
        ...stats
      }))
    }
  })
