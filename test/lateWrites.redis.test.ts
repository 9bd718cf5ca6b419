/**
 * Late-write protection on a real Redis: seeded interleavings through two independent RedisStore
 * clients (each with its own connection, key order and single flight, as two processes have), and
 * the same race between two real OS processes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import * as Testing from "effect-cachekit/testing"
import { fixture } from "./harness/fixture.js"
import { acrossProcesses, interleavings } from "./harness/lateWrites.js"
import { redisServer } from "./harness/redis.js"

const env = fixture(Effect.gen(function*() {
  const server = yield* redisServer()
  const one = yield* Redis.make({ port: server.port })
  const two = yield* Redis.make({ port: server.port })
  return { server, one, two }
}))

let prefixes = 0

/** Two stores over one Redis, one client each, under a prefix of their own. */
const twoClients = (fault = false) =>
  Effect.gen(function*() {
    const prefix = `late-${process.pid}-${prefixes++}`
    const a = yield* Effect.provideService(RedisStore.make({ prefix }), Redis.RedisClient, env().one)
    const b = yield* Effect.provideService(RedisStore.make({ prefix }), Redis.RedisClient, env().two)
    if (!fault) return [a, b] as const
    const { faults, store } = yield* Testing.faulty(a)
    yield* faults.inject(Testing.failure("timeout"), "set")
    return [store, b] as const
  })

const onRedis = {
  stores: twoClients(),
  ttl: "10 millis",
  staleWhileRevalidate: "1 hour",
  makeStale: Effect.sleep("15 millis")
} as const

describe("late writes across processes, on Redis", () => {
  it.live("10,000 seeded interleavings through two clients: no older value survives", () =>
    Effect.gen(function*() {
      const { loaded, older, outcomes } = yield* interleavings(10_000, onRedis, 32)
      expect(older).toBe(0)
      const kinds = new Set(outcomes.map((o) => `${o.prefill}/${o.action}/${o.before}/${o.batch}`))
      expect(kinds.size).toBe(24)
      expect(loaded).toBeGreaterThan(5_000)
    }), 180_000)

  it.live("without the fence, the same interleavings on Redis leave older values", () =>
    Effect.gen(function*() {
      const { older } = yield* interleavings(1_000, { ...onRedis, withoutFence: true }, 32)
      expect(older).toBeGreaterThan(0)
    }), 60_000)

  it.live(
    "2,000 seeded interleavings with a clear or a pattern invalidation: no older value survives",
    () =>
      Effect.gen(function*() {
        const { older, outcomes } = yield* interleavings(2_000, { ...onRedis, actions: ["clear", "pattern"] }, 32)
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
          ...onRedis,
          actions: ["clear", "pattern"],
          withoutPurges: true
        }, 32)
        expect(older).toBeGreaterThan(0)
      }),
    60_000
  )

  it.live("fenced writes that fail never leave an older value", () =>
    Effect.gen(function*() {
      const { older } = yield* interleavings(1_000, { ...onRedis, stores: twoClients(true) }, 32)
      expect(older).toBe(0)
    }), 60_000)

  for (const action of ["set", "invalidate"] as const) {
    it.live(
      `two OS processes: a slow load that read the source before another process's ${action} does not overwrite it`,
      () =>
        Effect.gen(function*() {
          const port = env().server.port
          const prefix = `late-os-${process.pid}-${action}`
          const race = yield* acrossProcesses({
            action,
            worker: { kind: "redis", port },
            prefix,
            store: Effect.provideService(RedisStore.make({ prefix }), Redis.RedisClient, env().one)
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
