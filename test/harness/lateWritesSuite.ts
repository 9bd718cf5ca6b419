/**
 * The late-write tests every shared store runs (see `lateWrites.ts`): seeded interleavings through
 * two independent clients, the same with the fence left out and with failing fenced writes, and
 * the race between two real OS processes; with `purges`, the interleavings of `clear` and
 * `invalidatePattern` too.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import type { Scope } from "effect"
import type { CacheStore } from "effect-cachekit"
import * as Testing from "effect-cachekit/testing"
import { acrossProcesses, interleavings } from "./lateWrites.js"
import type { WorkerStore } from "./lateWriteWorker.js"

export interface LateWriteSuite {
  /** Says which store the tests run on. */
  readonly name: string
  /** A store over the shared backend with a client of its own, under `prefix`. */
  readonly store: (prefix: string) => Effect.Effect<CacheStore.Service, unknown, Scope.Scope>
  /** The same backend, as the worker process opens it. */
  readonly worker: () => WorkerStore
  /** Whether the store offers `clear` and `invalidatePattern` of a namespace. */
  readonly purges: boolean
}

export const lateWriteSuite = (suite: LateWriteSuite): void => {
  let prefixes = 0
  /** Two stores over one backend, one client each, under a prefix of their own. */
  const twoClients = (fault = false) =>
    Effect.gen(function*() {
      const prefix = `late-${process.pid}-${prefixes++}`
      const a = yield* suite.store(prefix)
      const b = yield* suite.store(prefix)
      if (!fault) return [a, b] as const
      const { faults, store } = yield* Testing.faulty(a)
      yield* faults.inject(Testing.failure("timeout"), "set")
      return [store, b] as const
    }).pipe(Effect.orDie)

  const scenario = {
    stores: twoClients(),
    ttl: "10 millis",
    staleWhileRevalidate: "1 hour",
    makeStale: Effect.sleep("15 millis")
  } as const

  describe(`late writes across processes, on ${suite.name}`, () => {
    it.live("10,000 seeded interleavings through two clients: no older value survives", () =>
      Effect.gen(function*() {
        const { loaded, older, outcomes } = yield* interleavings(10_000, scenario, 32)
        expect(older).toBe(0)
        const kinds = new Set(outcomes.map((o) => `${o.prefill}/${o.action}/${o.before}/${o.batch}`))
        expect(kinds.size).toBe(24)
        expect(loaded).toBeGreaterThan(5_000)
      }), 180_000)

    it.live(
      `without the fence, the same interleavings on ${suite.name} leave older values`,
      () =>
        Effect.gen(function*() {
          const { older } = yield* interleavings(1_000, { ...scenario, withoutFence: true }, 32)
          expect(older).toBeGreaterThan(0)
        }),
      60_000
    )

    if (suite.purges) {
      it.live(
        "2,000 seeded interleavings with a clear or a pattern invalidation: no older value survives",
        () =>
          Effect.gen(function*() {
            const { older, outcomes } = yield* interleavings(2_000, { ...scenario, actions: ["clear", "pattern"] }, 32)
            expect(older).toBe(0)
            const kinds = new Set(outcomes.map((o) => `${o.prefill}/${o.action}/${o.before}/${o.batch}`))
            expect(kinds.size).toBe(24)
          }),
        180_000
      )

      it.live(
        "without the purge token's check, clears and pattern invalidations leave older values",
        () =>
          Effect.gen(function*() {
            const { older } = yield* interleavings(1_000, {
              ...scenario,
              actions: ["clear", "pattern"],
              withoutPurges: true
            }, 32)
            expect(older).toBeGreaterThan(0)
          }),
        60_000
      )
    }

    it.live("fenced writes that fail never leave an older value", () =>
      Effect.gen(function*() {
        const { older } = yield* interleavings(1_000, { ...scenario, stores: twoClients(true) }, 32)
        expect(older).toBe(0)
      }), 60_000)

    for (const action of ["set", "invalidate"] as const) {
      it.live(
        `two OS processes: a slow load that read the source before another process's ${action} does not overwrite it`,
        () =>
          Effect.gen(function*() {
            const prefix = `late-os-${process.pid}-${action}`
            const race = yield* acrossProcesses({
              action,
              worker: suite.worker(),
              prefix,
              store: suite.store(prefix)
            })
            // the slow load answers its own caller with what it read, but does not store it
            expect(race.read).toBe("0")
            expect(race.answered).toBe("v0")
            expect(race.after).toEqual(action === "set" ? Option.some("v1") : Option.none())
            expect(race.reloaded).toBe("v1")
          }).pipe(Effect.scoped),
        60_000
      )
    }
  })
}
