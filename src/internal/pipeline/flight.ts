/**
 * Single flight: one load per key at a time in this process, for single and batch loads alike.
 *
 * A flight is one load under way (one key's, or a batch's) with one explicit state; each key it
 * loads has a slot its waiters wait on. The rules, written once:
 * - a caller for a key that is loading joins its slot instead of loading again;
 * - an interrupted waiter only stops waiting; when the last waiter of a flight leaves, the flight
 *   is abandoned: it leaves the map at once (a new caller starts a new load, never joins one that
 *   is being interrupted) and its fiber is interrupted; a caller that joined it in the meantime
 *   hears `Abandoned` and loads again;
 * - a write or invalidation of a key supersedes its slot (through the store's key order, whichever
 *   pipeline runs the load): the waiters still get the loaded value, but the flight does not store
 *   it, and the next caller loads afresh;
 * - a flight whose fiber is interrupted before it started (its scope closed) tells its waiters so.
 *
 * A waiter costs one suspension and two array entries: no Deferred, no interruption handler, no
 * closure unless it has something to do when the load must be tried again. It leaves when its
 * fiber ends while it still waits (that only interruption does): the flight's one observer,
 * registered on every waiting fiber and taken off when the fiber is woken, counts it out. A
 * waiter that stops waiting on time (the soft timeout) is not interrupted: it waits on the slot's
 * Deferred, made only for such waiters.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import type * as Option from "effect/Option"
import type { CacheError } from "../../CacheError.js"
import type { Forker } from "./fork.js"
import type { KeyOrder } from "./keyOrder.js"
import type { Abandoned, Absent, FlightKey, Joiner, SlotExit } from "./slot.js"
import { ABANDONED, abandoned, DONE, Flight, PENDING, retryOf, RUNNING, Slot } from "./slot.js"

const scopeClosed = Exit.die(
  new Error(
    "effect-cachekit: a cache handle was used after the scope it was made in had closed; " +
      "make it with Layer.scoped or keep its scope open while it is in use"
  )
)

/** @internal */
export interface Flights<A> {
  /** The slot of a key that is loading now and still current (not superseded), if any. */
  readonly current: <E>(full: string) => Slot<A, E> | undefined
  /**
   * Starts one load of keys that are not in flight. `job` runs in a forked fiber and returns the
   * outcome of each slot, aligned with them.
   */
  readonly start: <E, R>(
    keys: ReadonlyArray<FlightKey<A>>,
    job: (slots: ReadonlyArray<Slot<A, E>>) => Effect.Effect<ReadonlyArray<SlotExit<A, E>>, never, R>
  ) => Effect.Effect<ReadonlyArray<Slot<A, E>>, never, R>
  /** Waits on a slot; when the last waiter is interrupted, the flight is abandoned. */
  readonly wait: <E>(slot: Slot<A, E>) => Effect.Effect<A, E | CacheError | Absent | Abandoned>
  /** `wait`, answered by `retry` instead when the slot ends in `Absent` or `Abandoned` (load again). */
  readonly waitOr: <E, B, E2, R>(
    slot: Slot<A, E>,
    retry: (reason: Absent | Abandoned) => Effect.Effect<B, E2, R>
  ) => Effect.Effect<A | B, E | CacheError | E2, R>
  /**
   * Waits on a slot for at most `millis`: none when the time ran out first. The flight goes on
   * (and stores its value) when its waiters stop waiting so; only interrupted waiters abandon it.
   */
  readonly waitAtMost: <E>(
    slot: Slot<A, E>,
    millis: number
  ) => Effect.Effect<Option.Option<A>, E | CacheError | Absent | Abandoned>
}

/** A waiter's fiber gone while it waited: its entries are dropped once this many are, and half of all. */
const COMPACT_AFTER = 64

/** @internal */
export const makeFlights = <A>(
  fork: Forker,
  order: KeyOrder,
  now: () => number,
  /** Where the store's keys resolve now (`CacheStore.Fence.epoch`), recorded by each load. */
  epoch: () => unknown
): Flights<A> => {
  const inflight = new Map<string, Slot<A, unknown>>()

  /** Out of the map: new callers no longer join it. */
  const release = (slot: Slot<A, unknown>) => {
    if (inflight.get(slot.full) === slot) inflight.delete(slot.full)
  }
  /** Done: out of the map and of the key order. */
  const finish = (slot: Slot<A, unknown>) => {
    release(slot)
    order.unregister(slot)
  }

  /** Answers every waiter of a slot: each is woken once, in the order they came. */
  const complete = (slot: Slot<A, unknown>, exit: SlotExit<A, unknown>) => {
    finish(slot)
    slot.exit = exit
    const { fibers, joiners } = slot
    slot.joiners = []
    slot.fibers = []
    const left = slot.flight.left
    for (let i = 0; i < joiners.length; i++) {
      fibers[i]?.removeObserver(left)
      joiners[i]!(exit)
    }
    if (slot.patient !== undefined) Deferred.unsafeDone(slot.patient, exit)
  }

  /** The last waiter left: out of the map at once (new callers load anew), and the load interrupted. */
  const abandon = (flight: Flight) => {
    flight.state = ABANDONED
    for (const slot of flight.slots) {
      slot.superseded = true
      release(slot as Slot<A, unknown>)
    }
    flight.fiber!.unsafeInterruptAsFork(FiberId.none)
  }

  const abandons = (flight: Flight) =>
    flight.waiters === 0 && flight.fiber !== undefined && (flight.state === PENDING || flight.state === RUNNING)

  /** A waiting fiber ended before it was woken (it was interrupted): one waiter fewer. */
  const onLeft = (flight: Flight) => {
    flight.waiters--
    if (abandons(flight)) return abandon(flight)
    if (++flight.gone >= COMPACT_AFTER && flight.gone * 2 >= flight.waiters) {
      // the entries of fibers that ended go, so that waiters coming and going do not pile up
      flight.gone = 0
      for (const slot of flight.slots) {
        const joiners: Array<Joiner<unknown, unknown>> = []
        const fibers: Array<Fiber.RuntimeFiber<unknown, unknown> | undefined> = []
        for (let i = 0; i < slot.joiners.length; i++) {
          const fiber = slot.fibers[i]
          if (fiber !== undefined && fiber.unsafePoll() !== null) continue
          joiners.push(slot.joiners[i]!)
          fibers.push(fiber)
        }
        slot.joiners = joiners
        slot.fibers = fibers
      }
    }
  }

  const start = <E, R>(
    keys: ReadonlyArray<FlightKey<A>>,
    job: (slots: ReadonlyArray<Slot<A, E>>) => Effect.Effect<ReadonlyArray<SlotExit<A, E>>, never, R>
  ): Effect.Effect<ReadonlyArray<Slot<A, E>>, never, R> =>
    Effect.suspend(() => {
      const flight = new Flight(onLeft)
      const t = now()
      const e = epoch()
      const slots = keys.map(([key, full, observed]) => {
        const slot = new Slot<A, E>(key, full, flight, observed, t, e)
        inflight.set(full, slot as Slot<A, unknown>)
        order.register(slot)
        flight.slots.push(slot as Slot<unknown, unknown>)
        return slot
      })
      const run = Effect.suspend(() => {
        flight.state = RUNNING
        return job(slots)
      }).pipe(
        Effect.exit,
        Effect.map((exit) => {
          if (flight.state === DONE) return
          flight.state = DONE
          for (let i = 0; i < slots.length; i++) {
            complete(
              slots[i] as Slot<A, unknown>,
              Exit.isSuccess(exit) ? exit.value[i]! : exit as Exit.Exit<never>
            )
          }
        })
      )
      return Effect.map(fork(run), (fiber) => {
        flight.fiber = fiber
        // interrupted before it completed its slots (abandoned, or its scope closed): the waiters
        // must still hear of it
        fiber.addObserver(() => {
          if (flight.state === DONE) return
          const outcome = flight.state === PENDING
            ? scopeClosed
            : flight.state === ABANDONED
            ? Exit.fail(abandoned)
            : Exit.interrupt(FiberId.none)
          flight.state = DONE
          for (const slot of slots) complete(slot as Slot<A, unknown>, outcome)
        })
        return slots
      })
    })

  /**
   * Suspends the caller until the slot has its outcome (or, when the slot ends in `Absent` or
   * `Abandoned` and there is a `retry`, what `retry` answers). The caller's fiber is observed
   * until then: if it ends first (interrupted), the waiter has left.
   */
  const joining = <E, B, E2, R>(
    slot: Slot<A, E>,
    retry: ((reason: Absent | Abandoned) => Effect.Effect<B, E2, R>) | undefined
  ): Effect.Effect<A | B, E | CacheError | E2 | Absent | Abandoned, R> =>
    Effect.async<A | B, E | CacheError | E2 | Absent | Abandoned, R>((resume) => {
      const answer = retry === undefined ? resume : (exit: SlotExit<A, E>) => {
        const reason = retryOf(exit)
        resume(reason === undefined ? exit : retry(reason))
      }
      const done = slot.exit
      if (done !== undefined) return answer(done)
      const current = Fiber.getCurrentFiber()
      const flight = slot.flight
      slot.joiners.push(answer)
      // no fiber (never so inside a run loop): a waiter that cannot leave
      if (current._tag === "Some") current.value.addObserver(flight.left)
      slot.fibers.push(current._tag === "Some" ? current.value : undefined)
      flight.waiters++
    })

  const wait = <E>(slot: Slot<A, E>): Effect.Effect<A, E | CacheError | Absent | Abandoned> =>
    joining<E, never, never, never>(slot, undefined)

  const waitOr = <E, B, E2, R>(
    slot: Slot<A, E>,
    retry: (reason: Absent | Abandoned) => Effect.Effect<B, E2, R>
  ): Effect.Effect<A | B, E | CacheError | E2, R> =>
    joining(slot, retry) as Effect.Effect<A | B, E | CacheError | E2, R>

  // a waiter that stops waiting on time is not interrupted: the load goes on without it
  const waitAtMost = <E>(
    slot: Slot<A, E>,
    millis: number
  ): Effect.Effect<Option.Option<A>, E | CacheError | Absent | Abandoned> =>
    Effect.suspend(() => {
      const done = slot.exit
      if (done !== undefined) return Effect.asSome(done)
      const flight = slot.flight
      const patient = slot.patient ??= Deferred.unsafeMake(FiberId.none)
      flight.waiters++
      return Effect.onExit(Effect.timeoutOption(Deferred.await(patient), Duration.millis(millis)), (exit) => {
        flight.waiters--
        if (Exit.isInterrupted(exit) && abandons(flight)) abandon(flight)
        return Effect.void
      })
    })

  return {
    current: <E>(full: string) => {
      const slot = inflight.get(full)
      return slot === undefined || slot.superseded ? undefined : slot as Slot<A, E>
    },
    start,
    wait,
    waitOr,
    waitAtMost
  }
}
