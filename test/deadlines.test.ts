import { afterEach, beforeEach, describe, expect, it, vi } from "@effect/vitest"
import * as Deadlines from "../src/internal/deadlines.js"
import * as Timer from "../src/internal/timer.js"

describe("Deadlines (one timer for many calls of one timeout)", () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it("expires the calls still open when their time is up, in order, and never a settled one", () => {
    const deadlines = Deadlines.make(100, Timer.live)
    const expired: Array<string> = []
    const a = deadlines.add(() => expired.push("a"))
    vi.advanceTimersByTime(40)
    const b = deadlines.add(() => expired.push("b"))
    deadlines.add(() => expired.push("c"))
    expect(b.settle()).toBe(true)
    vi.advanceTimersByTime(70) // a is due at 100
    expect(expired).toEqual(["a"])
    expect(a.settle()).toBe(false) // already expired: the late answer is ignored
    vi.advanceTimersByTime(40) // c is due at 140
    expect(expired).toEqual(["a", "c"])
    expect(b.settle()).toBe(false)
    vi.advanceTimersByTime(1000)
    expect(expired).toEqual(["a", "c"])
  })

  it("a wall clock stepped back (as NTP does) does not hold a deadline back", () => {
    const deadlines = Deadlines.make(100, Timer.live)
    const expired: Array<string> = []
    deadlines.add(() => expired.push("a"))
    vi.advanceTimersByTime(10)
    // the fake timers move Date and performance.now together; setSystemTime steps Date alone
    vi.setSystemTime(Date.now() - 30_000)
    deadlines.add(() => expired.push("b"))
    vi.advanceTimersByTime(91)
    expect(expired).toEqual(["a"])
    vi.advanceTimersByTime(10)
    expect(expired).toEqual(["a", "b"])
  })

  it("keeps working after the queue has drained, and across thousands of calls", () => {
    const deadlines = Deadlines.make(50, Timer.live)
    let expired = 0
    for (let i = 0; i < 5000; i++) {
      const d = deadlines.add(() => expired++)
      if (i % 10 !== 0) d.settle()
    }
    vi.advanceTimersByTime(60)
    expect(expired).toBe(500)
    deadlines.add(() => expired++)
    vi.advanceTimersByTime(60)
    expect(expired).toBe(501)
  })
})
