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
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import { identity } from "effect/Function"
import type * as Option from "effect/Option"
import type { CacheError } from "../../CacheError.js"
import type { Entry } from "./envelope.js"
import type { Fenced } from "./fence.js"
import { nextLoadMark } from "./fence.js"
import type { Forker } from "./fork.js"
import type { KeyOrder } from "./keyOrder.js"

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

/** A load whose last waiter left: a caller that joined it after that loads again. @internal */
export class Abandoned {
  readonly _tag = "Abandoned"
}

const abandoned = new Abandoned()

/** Whether a flight's failure means "load this key again" (`Absent` or `Abandoned`). @internal */
export const isRetry = (u: unknown): u is Absent | Abandoned => u instanceof Absent || u instanceof Abandoned

/** The outcome of one key of a flight. @internal */
export type SlotExit<A, E> = Exit.Exit<A, E | CacheError | Absent | Abandoned>

/** One key of a flight. @internal */
export class Slot<A, E> implements Fenced {
  /** A write or invalidation came after the load started: its value must not be stored. */
  superseded = false
  readonly began = nextLoadMark()
  readonly deferred = Deferred.unsafeMake<A, E | CacheError | Absent | Abandoned>(FiberId.none)
  constructor(
    readonly key: string,
    readonly full: string,
    readonly flight: Flight,
    readonly observed: Entry<A> | undefined,
    readonly observedAt: number
  ) {}
}

/** A key a flight loads, with what the read before it found there (none: nothing, or no read). @internal */
export type FlightKey<A> = readonly [key: string, full: string, observed?: Entry<A> | undefined]

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
  /** Waits on a slot; the last waiter to be interrupted abandons the flight. */
  readonly wait: <E>(slot: Slot<A, E>) => Effect.Effect<A, E | CacheError | Absent | Abandoned>
  /**
   * Waits on a slot for at most `millis`: none when the time ran out first. The flight goes on
   * (and stores its value) when its waiters stop waiting so; only interrupted waiters abandon it.
   */
  readonly waitAtMost: <E>(
    slot: Slot<A, E>,
    millis: number
  ) => Effect.Effect<Option.Option<A>, E | CacheError | Absent | Abandoned>
}

/** @internal */
export const makeFlights = <A>(fork: Forker, order: KeyOrder, now: () => number): Flights<A> => {
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

  const start = <E, R>(
    keys: ReadonlyArray<FlightKey<A>>,
    job: (slots: ReadonlyArray<Slot<A, E>>) => Effect.Effect<ReadonlyArray<SlotExit<A, E>>, never, R>
  ): Effect.Effect<ReadonlyArray<Slot<A, E>>, never, R> =>
    Effect.suspend(() => {
      const flight = new Flight()
      const t = now()
      const slots = keys.map(([key, full, observed]) => {
        const slot = new Slot<A, E>(key, full, flight, observed, t)
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
            const slot = slots[i]!
            finish(slot as Slot<A, unknown>)
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
          const outcome = flight.state === PENDING
            ? scopeClosed
            : flight.state === ABANDONED
            ? Exit.fail(abandoned)
            : Exit.interrupt(FiberId.none)
          flight.state = DONE
          for (const slot of slots) {
            finish(slot as Slot<A, unknown>)
            Deferred.unsafeDone(slot.deferred, outcome)
          }
        })
        return slots
      })
    })

  const abandon = (flight: Flight) => {
    flight.state = ABANDONED
    for (const slot of flight.slots) {
      slot.superseded = true
      release(slot as Slot<A, unknown>)
    }
    return Fiber.interruptFork(flight.fiber!)
  }

  /** Waits on a slot through `awaiting`; the last waiter to be interrupted abandons the flight. */
  const waiting = <E, B>(
    slot: Slot<A, E>,
    awaiting: (
      outcome: Effect.Effect<A, E | CacheError | Absent | Abandoned>
    ) => Effect.Effect<B, E | CacheError | Absent | Abandoned>
  ): Effect.Effect<B, E | CacheError | Absent | Abandoned> =>
    Effect.suspend(() => {
      const flight = slot.flight
      flight.waiters++
      return Effect.onExit(awaiting(Deferred.await(slot.deferred)), (exit) => {
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

  const wait = <E>(slot: Slot<A, E>): Effect.Effect<A, E | CacheError | Absent | Abandoned> => waiting(slot, identity)

  // a waiter that stops waiting on time is not interrupted: the load goes on without it
  const waitAtMost = <E>(
    slot: Slot<A, E>,
    millis: number
  ): Effect.Effect<Option.Option<A>, E | CacheError | Absent | Abandoned> =>
    waiting(slot, (outcome) => Effect.timeoutOption(outcome, Duration.millis(millis)))

  return {
    current: <E>(full: string) => {
      const slot = inflight.get(full)
      return slot === undefined || slot.superseded ? undefined : slot as Slot<A, E>
    },
    start,
    wait,
    waitAtMost
  }
}
