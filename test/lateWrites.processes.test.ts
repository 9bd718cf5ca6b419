/**
 * Late-write protection between two real OS processes on one real Redis: seeded interleavings of
 * (slow load starts, newer set or invalidation, load completes) where the load runs in one process
 * and the write in the other, in both directions (harness/lateWritesProcesses.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import { fixture } from "./harness/fixture.js"
import { isOlder } from "./harness/lateWriteSide.js"
import type { ProcessOutcome } from "./harness/lateWritesProcesses.js"
import { acrossProcessInterleavings } from "./harness/lateWritesProcesses.js"
import { redisServer } from "./harness/redis.js"

const env = fixture(redisServer())

/** The seeded interleavings between the two processes. */
const INTERLEAVINGS = 10_000
/** The same with a clear or a pattern invalidation as the action. */
const PURGE_INTERLEAVINGS = 2_000
/** The controls, without the fence or without the purge token's check. */
const CONTROL_INTERLEAVINGS = 1_000
/** Interleavings in flight at a time, each on a key of its own. */
const CONCURRENCY = 64

const thousands = (n: number) => n.toLocaleString("en")

let prefixes = 0
const run = (count: number, options: {
  readonly actions?: ReadonlyArray<"set" | "invalidate" | "clear" | "pattern">
  readonly withoutFence?: boolean
  readonly withoutPurges?: boolean
} = {}) =>
  acrossProcessInterleavings(count, {
    port: env().port,
    prefix: `late-procs-${process.pid}-${prefixes++}`,
    store: (prefix) =>
      Effect.flatMap(
        Redis.make({ port: env().port }),
        (client) => Effect.provideService(RedisStore.make({ prefix }), Redis.RedisClient, client)
      ),
    concurrency: CONCURRENCY,
    ...options
  })

const kinds = (outcomes: ReadonlyArray<ProcessOutcome>) =>
  new Set(outcomes.map((o) => `${o.loader}/${o.prefill}/${o.action}/${o.before}/${o.batch}`))

/** The interleavings that left an older value: seen by either process's read, or at the end. */
const older = (outcomes: ReadonlyArray<ProcessOutcome>) => outcomes.filter((o) => o.older || o.olderAtEnd)

const olderBy = (outcomes: ReadonlyArray<ProcessOutcome>, loader: ProcessOutcome["loader"]) =>
  outcomes.filter((o) => o.older && o.loader === loader).length

describe("late writes between two OS processes, on Redis", () => {
  it.live(
    `${thousands(INTERLEAVINGS)} seeded interleavings, loads in either process: no older value survives`,
    () =>
      Effect.gen(function*() {
        const outcomes = yield* run(INTERLEAVINGS)
        expect(older(outcomes)).toEqual([])
        // every ordering, both ways round: 2 loaders × 3 prefills × 2 actions × before/after × get/getMany
        expect(kinds(outcomes).size).toBe(48)
        for (const loader of ["parent", "worker"] as const) {
          const raced = outcomes.filter((o) => o.loader === loader && o.loaded && !o.before)
          expect(raced.length).toBeGreaterThan(INTERLEAVINGS / 8)
        }
      }),
    180_000
  )

  it.live(
    "without the fence, the same interleavings leave older values, whichever process loads",
    () =>
      Effect.gen(function*() {
        const outcomes = yield* run(CONTROL_INTERLEAVINGS, { withoutFence: true })
        expect(olderBy(outcomes, "parent")).toBeGreaterThan(0)
        expect(olderBy(outcomes, "worker")).toBeGreaterThan(0)
        // seen by both processes' reads, and still there at the end
        expect(outcomes.filter((o) => isOlder(o.atParent, o.source) && isOlder(o.atWorker, o.source)).length)
          .toBeGreaterThan(0)
        expect(outcomes.filter((o) => o.olderAtEnd).length).toBeGreaterThan(0)
      }),
    120_000
  )

  it.live(
    `${thousands(PURGE_INTERLEAVINGS)} interleavings of clears and pattern invalidations: no older value survives`,
    () =>
      Effect.gen(function*() {
        const outcomes = yield* run(PURGE_INTERLEAVINGS, { actions: ["clear", "pattern"] })
        expect(older(outcomes)).toEqual([])
        expect(kinds(outcomes).size).toBe(48)
      }),
    180_000
  )

  it.live(
    "without the purge token's check, clears and pattern invalidations leave older values",
    () =>
      Effect.gen(function*() {
        const outcomes = yield* run(CONTROL_INTERLEAVINGS, { actions: ["clear", "pattern"], withoutPurges: true })
        expect(olderBy(outcomes, "parent")).toBeGreaterThan(0)
        expect(olderBy(outcomes, "worker")).toBeGreaterThan(0)
      }),
    120_000
  )
})
