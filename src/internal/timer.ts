/**
 * Time for deadlines, watchdogs and circuit breakers. These measure how long something has taken,
 * so they read a monotonic clock: the wall clock (`Date.now`, Effect's `currentTimeMillis`) can
 * be stepped back or forward by NTP, and a deadline computed on it then fires late (or at once).
 *
 * Under Effect's own clock that is `performance.now()` and `setTimeout` (Node's timers are
 * monotonic). Under any other clock — `TestClock` in tests — it is that clock's nanosecond time
 * and its `sleep`, so moving the `TestClock` drives deadlines and breakers too.
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

/** @internal */
export interface Timer {
  /** Milliseconds from an arbitrary origin, on a clock that never steps back. */
  readonly now: () => number
  /**
   * Calls `f` once `ms` have passed on this timer's clock. The pending call does not keep the
   * process alive: the I/O a deadline guards is what does.
   */
  readonly schedule: (f: () => void, ms: number) => void
}

/** @internal */
export const live: Timer = {
  now: () => performance.now(),
  schedule: (f, ms) => {
    setTimeout(f, ms).unref()
  }
}

const liveClock: object | null = Object.getPrototypeOf(Clock.make())

/**
 * The timer of an Effect clock: `live` for Effect's own clock (no allocation per reading), the
 * clock's nanosecond time and `sleep` for any other.
 * @internal
 */
export const fromClock = (clock: Clock.Clock): Timer =>
  Object.getPrototypeOf(clock) === liveClock ? live : {
    now: () => Number(clock.unsafeCurrentTimeNanos()) / 1_000_000,
    schedule: (f, ms) => {
      Effect.runFork(Effect.andThen(clock.sleep(Duration.millis(ms)), f))
    }
  }
