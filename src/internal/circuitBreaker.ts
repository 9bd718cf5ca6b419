import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import { StoreError } from "../CacheError.js"
import * as Timer from "./timer.js"

/** @internal */
export type BreakerState = "closed" | "open" | "half-open"

/** @internal */
export interface BreakerOptions {
  /** Name of the guarded backend (store name, or `memcached 127.0.0.1:11211`). */
  readonly name: string
  /** Consecutive failures that open the breaker. */
  readonly failureThreshold: number
  /** How long the breaker stays open before one probe call is let through. */
  readonly resetAfter: Duration.DurationInput
}

/**
 * A consecutive-failure circuit breaker. Closed: calls pass. Open: calls fail at once with a
 * `StoreError` of reason `unavailable`. After `resetAfter`, one call is let through as a probe
 * (half-open): its success closes the breaker, its failure opens it again. Time comes from
 * Effect's Clock, read monotonically (a wall clock stepped back does not keep the breaker open);
 * every change of state is logged and recorded in a gauge.
 *
 * The state changes synchronously (`admit`, `succeeded`, `failed`), so code that completes many
 * calls from one callback — a batch of coalesced reads — can account for them without an Effect
 * step per call. The log line of a change is kept until a fiber emits it with `flushLog` (the
 * effects `run`, `recordSuccess` and `recordFailure` do that themselves).
 * @internal
 */
export interface CircuitBreaker {
  readonly state: () => BreakerState
  /** Runs `effect` through the breaker; `isFailure` tells which errors count against the backend. */
  readonly run: <A, E>(
    effect: Effect.Effect<A, E>,
    operation: string,
    isFailure?: (e: E) => boolean
  ) => Effect.Effect<A, E | StoreError>
  /**
   * Lets a call through or not: true when closed; when open long enough and no probe is under
   * way, the call becomes the probe (half-open) and true; otherwise false.
   */
  readonly admit: () => boolean
  /** A call (or a batch of calls) succeeded: resets the failure count, closes a half-open breaker. */
  readonly succeeded: () => void
  /** `count` calls failed in a way that counts against the backend. */
  readonly failed: (count: number) => void
  /** The error a call refused by `admit` fails with. */
  readonly refused: (operation: string) => StoreError
  /** Whether a change of state is waiting for `flushLog`. */
  readonly hasLog: () => boolean
  /** Emits the log lines of the changes of state made since the last flush. */
  readonly flushLog: Effect.Effect<void>
  readonly recordSuccess: Effect.Effect<void>
  readonly recordFailure: Effect.Effect<void>
}

const stateGauge = Metric.gauge("effect_cachekit_breaker_state", {
  description: "Circuit breaker state per backend: 0 closed, 1 half-open, 2 open"
})
const stateValue = { closed: 0, "half-open": 1, open: 2 } as const

/** Whether an error counts against the backend: a store error of reason connection, timeout or protocol. */
export const defaultIsFailure = (e: unknown): boolean =>
  typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "StoreError" &&
  ((e as { reason?: unknown }).reason === "connection" || (e as { reason?: unknown }).reason === "timeout" ||
    (e as { reason?: unknown }).reason === "protocol")

/** @internal */
export const make = (options: BreakerOptions): Effect.Effect<CircuitBreaker> =>
  Effect.map(Effect.clock, (clock) => {
    const now = Timer.fromClock(clock).now
    const resetMillis = Duration.toMillis(Duration.decode(options.resetAfter))
    const tags = [MetricLabel.make("backend", options.name)]
    let state: BreakerState = "closed"
    let failures = 0
    let openedAt = 0
    let probing = false
    const logs: Array<{ readonly from: BreakerState; readonly to: BreakerState; readonly failures: number }> = []

    const transition = (to: BreakerState): void => {
      if (state === to) return
      logs.push({ from: state, to, failures })
      state = to
      stateGauge.unsafeUpdate(stateValue[to], tags)
    }

    const flushLog: Effect.Effect<void> = Effect.suspend(() => {
      if (logs.length === 0) return Effect.void
      const lines = logs.splice(0, logs.length)
      return Effect.forEach(lines, ({ failures, from, to }) =>
        (to === "open" ? Effect.logWarning : Effect.logInfo)(`circuit breaker ${from} -> ${to}`).pipe(
          Effect.annotateLogs({ backend: options.name, failures: String(failures) })
        ), { discard: true })
    })

    const allows = () => {
      if (state === "closed") {
        return true
      }
      if (probing) {
        return false
      }
      return now() - openedAt >= resetMillis
    }

    const admit = () => {
      if (state === "closed") {
        return true
      }
      if (!allows()) {
        return false
      }
      probing = true
      transition("half-open")
      return true
    }

    const succeeded = () => {
      failures = 0
      if (state !== "closed") {
        probing = false
        transition("closed")
      }
    }

    const failed = (count: number) => {
      failures += count
      probing = false
      if (state === "half-open" || (state === "closed" && failures >= options.failureThreshold)) {
        openedAt = now()
        transition("open")
      } else if (state === "open") {
        openedAt = now()
      }
    }

    const refused = (operation: string) =>
      new StoreError({
        store: options.name,
        operation,
        reason: "unavailable",
        detail: "circuit breaker open: the backend failed repeatedly and is skipped until a probe succeeds"
      }, true) // fields are known-good: skip Schema validation on this fast-fail path

    const recordSuccess = Effect.suspend(() => {
      succeeded()
      return flushLog
    })

    const recordFailure = Effect.suspend(() => {
      failed(1)
      return flushLog
    })

    const run = <A, E>(
      effect: Effect.Effect<A, E>,
      operation: string,
      isFailure: (e: E) => boolean = defaultIsFailure
    ): Effect.Effect<A, E | StoreError> =>
      Effect.suspend((): Effect.Effect<A, E | StoreError> => {
        if (state !== "closed") {
          if (!admit()) {
            return Effect.fail(refused(operation))
          }
          return Effect.zipRight(
            flushLog,
            Effect.onExit(effect, (exit) =>
              exit._tag === "Success"
                ? recordSuccess
                : exit.cause._tag === "Fail" && !isFailure(exit.cause.error)
                ? recordSuccess
                : recordFailure)
          )
        }
        return Effect.onExit(effect, (exit) => {
          if (exit._tag === "Success") {
            if (failures !== 0) {
              failures = 0
            }
            return Effect.void
          }
          const cause = exit.cause
          if (cause._tag === "Fail" && !isFailure(cause.error)) {
            return Effect.void
          }
          if (cause._tag === "Interrupt") {
            return Effect.void
          }
          return recordFailure
        })
      })

    return {
      state: () =>
        state,
      run,
      admit,
      succeeded,
      failed,
      refused,
      hasLog: () =>
        logs.length > 0,
      flushLog,
      recordSuccess,
      recordFailure
    }
  })
