import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Exit, Logger, TestClock } from "effect"
import * as CircuitBreaker from "../src/internal/circuitBreaker.js"

/** Runs `self` with a logger that keeps the messages it is given. */
const withLines = <A, E>(self: (lines: Array<string>) => Effect.Effect<A, E>) => {
  const lines: Array<string> = []
  const logger = Logger.make(({ message }) => {
    lines.push(Array.isArray(message) ? message.join(" ") : String(message))
  })
  return Effect.provide(self(lines), Logger.replace(Logger.defaultLogger, logger))
}

/**
 * The TestClock with a wall clock of its own that the test can step back, as NTP does: the
 * wall time (`currentTimeMillis`) jumps, the monotonic time (`currentTimeNanos`) does not.
 */
const steppedWallClock = Effect.map(Effect.clock, (inner) => {
  let offset = 0
  const wall = () => inner.unsafeCurrentTimeMillis() + offset
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: wall,
    currentTimeMillis: Effect.sync(wall),
    unsafeCurrentTimeNanos: () => inner.unsafeCurrentTimeNanos(),
    currentTimeNanos: inner.currentTimeNanos,
    sleep: (duration) => inner.sleep(duration)
  }
  return {
    clock,
    stepBack: (millis: number) => {
      offset -= millis
    }
  }
})

const make = CircuitBreaker.make({ name: "test", failureThreshold: 3, resetAfter: "1 second" })

describe("CircuitBreaker (synchronous state, logged changes)", () => {
  it.effect("opens after the threshold of consecutive failures; a success in between resets the count", () =>
    Effect.gen(function*() {
      const breaker = yield* make
      breaker.failed(2)
      breaker.succeeded()
      breaker.failed(2)
      expect(breaker.state()).toBe("closed")
      breaker.failed(1)
      expect(breaker.state()).toBe("open")
      expect(breaker.admit()).toBe(false)
      expect(breaker.refused("get")).toMatchObject({ _tag: "StoreError", reason: "unavailable", operation: "get" })
    }))

  it.effect("after resetAfter one call is the probe: its success closes, its failure opens again", () =>
    Effect.gen(function*() {
      const breaker = yield* make
      breaker.failed(3)
      yield* TestClock.adjust("999 millis")
      expect(breaker.admit()).toBe(false)
      yield* TestClock.adjust("1 millis")
      expect(breaker.admit()).toBe(true)
      expect(breaker.state()).toBe("half-open")
      expect(breaker.admit()).toBe(false) // one probe at a time
      breaker.failed(1)
      expect(breaker.state()).toBe("open")
      expect(breaker.admit()).toBe(false) // the clock restarted at the failed probe
      yield* TestClock.adjust("1 second")
      expect(breaker.admit()).toBe(true)
      breaker.succeeded()
      expect(breaker.state()).toBe("closed")
      expect(breaker.admit()).toBe(true)
    }))

  it.effect("a wall clock stepped back does not keep the breaker open: it probes after resetAfter all the same", () =>
    Effect.gen(function*() {
      const { clock, stepBack } = yield* steppedWallClock
      const breaker = yield* Effect.withClock(make, clock)
      breaker.failed(3)
      expect(breaker.state()).toBe("open")
      stepBack(30_000)
      yield* TestClock.adjust("999 millis")
      expect(breaker.admit()).toBe(false)
      yield* TestClock.adjust("1 millis")
      expect(breaker.admit()).toBe(true)
      breaker.succeeded()
      expect(breaker.state()).toBe("closed")
    }))

  it.effect("every change of state is kept until a fiber flushes it, then logged once", () =>
    withLines((lines) =>
      Effect.gen(function*() {
        const breaker = yield* make
        breaker.failed(3)
        yield* TestClock.adjust("1 second")
        breaker.admit()
        breaker.succeeded()
        expect(breaker.hasLog()).toBe(true)
        expect(lines).toEqual([])
        yield* breaker.flushLog
        expect(breaker.hasLog()).toBe(false)
        expect(lines).toEqual([
          "circuit breaker closed -> open",
          "circuit breaker open -> half-open",
          "circuit breaker half-open -> closed"
        ])
        yield* breaker.flushLog
        expect(lines.length).toBe(3)
      })
    ))

  it.effect("run: counts only backend failures, refuses while open, and lets a probe through after resetAfter", () =>
    Effect.gen(function*() {
      const breaker = yield* make
      const backendDown = Effect.fail({ _tag: "StoreError", reason: "connection" } as const)
      const badCommand = Effect.fail({ _tag: "StoreError", reason: "command" } as const)
      for (let i = 0; i < 5; i++) yield* Effect.exit(breaker.run(badCommand, "set"))
      expect(breaker.state()).toBe("closed")
      for (let i = 0; i < 3; i++) yield* Effect.exit(breaker.run(backendDown, "set"))
      expect(breaker.state()).toBe("open")
      const refused = yield* Effect.exit(breaker.run(Effect.succeed(1), "set"))
      expect(Exit.isFailure(refused)).toBe(true)
      yield* TestClock.adjust("1 second")
      expect(yield* breaker.run(Effect.succeed(1), "set")).toBe(1)
      expect(breaker.state()).toBe("closed")
    }))
})
