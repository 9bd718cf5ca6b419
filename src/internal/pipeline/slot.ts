/**
 * What single flight is made of (see `flight.ts`): a flight, one load under way with one explicit
 * state; its slots, one per key it loads, which waiters wait on; and the two outcomes that send a
 * caller to load again (`Absent`, `Abandoned`).
 */
import type * as Deferred from "effect/Deferred"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import type { CacheError } from "../../CacheError.js"
import type { Entry } from "./envelope.js"
import type { Fenced } from "./fence.js"
import { nextLoadMark } from "./fence.js"

/** A flight's states. @internal */
export const PENDING = 0
/** @internal */
export const RUNNING = 1
/** @internal */
export const DONE = 2
/** @internal */
export const ABANDONED = 3

/** One load under way. @internal */
export class Flight {
  state: typeof PENDING | typeof RUNNING | typeof DONE | typeof ABANDONED = PENDING
  /** Callers waiting on one of its slots. */
  waiters = 0
  /** Waiters whose fiber ended while they waited, whose entries are still in their slot. */
  gone = 0
  fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined = undefined
  readonly slots: Array<Slot<unknown, unknown>> = []
  /** Observes each waiting fiber until it is woken: its end before then means it left. */
  readonly left: (exit: unknown) => void
  constructor(onLeft: (flight: Flight) => void) {
    this.left = () => onLeft(this)
  }
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

/** @internal */
export const abandoned = new Abandoned()

/** Whether a flight's failure means "load this key again" (`Absent` or `Abandoned`). @internal */
export const isRetry = (u: unknown): u is Absent | Abandoned => u instanceof Absent || u instanceof Abandoned

/** The outcome of one key of a flight. @internal */
export type SlotExit<A, E> = Exit.Exit<A, E | CacheError | Absent | Abandoned>

/** Called with the outcome of a slot; answers one waiter. @internal */
export type Joiner<A, E> = (exit: SlotExit<A, E>) => void

/** One key of a flight. @internal */
export class Slot<A, E> implements Fenced {
  /** A write or invalidation came after the load started: its value must not be stored. */
  superseded = false
  readonly began = nextLoadMark()
  /** The outcome, once the flight has it. */
  exit: SlotExit<A, E> | undefined = undefined
  /** The waiters, and the fiber each waits in (observed by the flight until it is woken). */
  joiners: Array<Joiner<A, E>> = []
  fibers: Array<Fiber.RuntimeFiber<unknown, unknown> | undefined> = []
  /** The waiters that stop waiting on time wait on this, made for the first of them. */
  patient: Deferred.Deferred<A, E | CacheError | Absent | Abandoned> | undefined = undefined
  constructor(
    readonly key: string,
    readonly full: string,
    readonly flight: Flight,
    readonly observed: Entry<A> | undefined,
    readonly observedAt: number,
    readonly epoch: unknown
  ) {}
}

/** A key a flight loads, with what the read before it found there (none: nothing, or no read). @internal */
export type FlightKey<A> = readonly [key: string, full: string, observed?: Entry<A> | undefined]

/** The retry a slot's outcome calls for: `Absent` or `Abandoned`, else undefined. @internal */
export const retryOf = <A, E>(exit: SlotExit<A, E>): Absent | Abandoned | undefined =>
  exit._tag === "Failure" && exit.cause._tag === "Fail" && isRetry(exit.cause.error) ? exit.cause.error : undefined
