/**
 * Single flight: one load per key at a time in this process, for single and batch loads alike.
 *
 * A flight is one load under way (one key's, or a batch's) with one explicit state; each key it
 * loads has a slot its waiters wait on. The rules, written once:
 * - a caller for a key that is loading joins its slot instead of loading again;
 * - an interrupted waiter only stops waiting; when the last waiter of a flight leaves, the flight
 *   is abandoned: it leaves the map at once (a new caller starts a new load, never joins one that
 *   is being interrupted) and its fiber is interrupted;
 * - a write or invalidation of a key supersedes its slot: the waiters still get the loaded value,
 *   but the flight does not store it, and the next caller loads afresh;
 * - a flight whose fiber is interrupted before it started (its scope closed) tells its waiters so.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import type { CacheError } from "../../CacheError.js"
import type { Forker } from "./fork.js"

const PENDING = 0
const RUNNING = 1
const DONE = 2
const ABANDONED = 3

/** One load under way. @internal */
export class Flight {
  state: typeof PENDING | typeof RUNNING | typeof DONE | typeof ABANDONED = PENDING
  waiters = 0
  fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined = undefined
  readonly slots: Array<Slot<unknown, unknown>> = []
}

/**
 * A key that a batch load did not return: its waiters learn it is not found (a batch read) or
 * load it on their own (a single read, whose loader reports its own error).
 * @internal
 */
export class Absent {
  readonly _tag = "Absent"
}

/** @internal */
export const absent = new Absent()

/** The outcome of one key of a flight. @internal */
export type SlotExit<A, E> = Exit.Exit<A, E | CacheError | Absent>

/** One key of a flight. @internal */
export class Slot<A, E> {
  /** A write or invalidation came after the load started: its value must not be stored. */
  superseded = false
  readonly deferred = Deferred.unsafeMake<A, E | CacheError | Absent>(FiberId.none)
  constructor(readonly key: string, readonly full: string, readonly flight: Flight) {}
}

const scopeClosed = Exit.die(
  new Error(
    "effect-cachekit: a cache handle was used after the scope it was made in had closed; " +
      "make it with Layer.scoped or keep its scope open while it is in use"
  )
)

/** @internal */
export interface Flights<A> {
  /** The slot of a key that is loading now, if any. */
  readonly current: <E>(full: string) => Slot<A, E> | undefined
  /**
   * Starts one load of keys that are not in flight. `job` runs in a forked fiber and returns the
   * outcome of each slot, aligned with them.
   */
  readonly start: <E, R>(
    keys: ReadonlyArray<readonly [key: string, full: string]>,
    job: (slots: ReadonlyArray<Slot<A, E>>) => Effect.Effect<ReadonlyArray<SlotExit<A, E>>, never, R>
  ) => Effect.Effect<ReadonlyArray<Slot<A, E>>, never, R>
  /** Waits on a slot; the last waiter to be interrupted abandons the flight. */
  readonly wait: <E>(slot: Slot<A, E>) => Effect.Effect<A, E | CacheError | Absent>
  /** A write or invalidation of a key: a load under way for it must not store its value. */
  readonly supersede: (full: string) => void
  /** The whole namespace was cleared: no load under way may store its value. */
  readonly supersedeAll: () => void
}

/** @internal */
export const makeFlights = <A>(fork: Forker): Flights<A> => {
  const inflight = new Map<string, Slot<A, unknown>>()

  const release = (slot: Slot<A, unknown>) => {
    if (inflight.get(slot.full) === slot) inflight.delete(slot.full)
  }

  const start = <E, R>(
    keys: ReadonlyArray<readonly [key: string, full: string]>,
    job: (slots: ReadonlyArray<Slot<A, E>>) => Effect.Effect<ReadonlyArray<SlotExit<A, E>>, never, R>
  ): Effect.Effect<ReadonlyArray<Slot<A, E>>, never, R> =>
    Effect.suspend(() => {
      const flight = new Flight()
      const slots = keys.map(([key, full]) => {
        const slot = new Slot<A, E>(key, full, flight)
        inflight.set(full, slot as Slot<A, unknown>)
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
            const slot = slots[i]!
            release(slot as Slot<A, unknown>)
            Deferred.unsafeDone(slot.deferred, Exit.isSuccess(exit) ? exit.value[i]! : exit as Exit.Exit<never>)
          }
        })
      )
      return Effect.map(fork(run), (fiber) => {
        flight.fiber = fiber
        // interrupted before it completed its slots (abandoned, or its scope closed): the waiters
        // must still hear of it
        fiber.addObserver(() => {
          if (flight.state === DONE) return
          const outcome = flight.state === PENDING ? scopeClosed : Exit.interrupt(FiberId.none)
          flight.state = DONE
          for (const slot of slots) {
            release(slot as Slot<A, unknown>)
            Deferred.unsafeDone(slot.deferred, outcome)
          }
        })
        return slots
      })
    })

  const abandon = (flight: Flight) => {
    flight.state = ABANDONED
    for (const slot of flight.slots) release(slot as Slot<A, unknown>)
    return Fiber.interruptFork(flight.fiber!)
  }

  const wait = <E>(slot: Slot<A, E>): Effect.Effect<A, E | CacheError | Absent> =>
    Effect.suspend(() => {
      const flight = slot.flight
      flight.waiters++
      return Effect.onExit(Deferred.await(slot.deferred), (exit) => {
        flight.waiters--
        if (
          flight.waiters === 0 && Exit.isInterrupted(exit) && flight.fiber !== undefined &&
          (flight.state === PENDING || flight.state === RUNNING)
        ) {
          return abandon(flight)
        }
        return Effect.void
      })
    })

  const supersede = (full: string) => {
    const slot = inflight.get(full)
    if (slot === undefined) return
    slot.superseded = true
    inflight.delete(full)
  }

  const supersedeAll = () => {
    for (const slot of inflight.values()) slot.superseded = true
    inflight.clear()
  }

  return {
    current: <E>(full: string) => inflight.get(full) as Slot<A, E> | undefined,
    start,
    wait,
    supersede,
    supersedeAll
  }
}
