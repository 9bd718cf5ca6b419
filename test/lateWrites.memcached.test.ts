/**
 * Late-write protection on a ring of three real memcached servers: seeded interleavings through
 * two independent MemcachedStore clients (each with its own connections, key order and single
 * flight, as two processes have), and the same race between two real OS processes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as MemcachedStore from "effect-cachekit/MemcachedStore"
import * as Testing from "effect-cachekit/testing"
import { fixture } from "./harness/fixture.js"
import { acrossProcesses, interleavings } from "./harness/lateWrites.js"
import { startMemcacheds } from "./harness/memcached.js"

const ring = fixture(startMemcacheds(3))
const servers = () => ring().map((server) => server.address)

let prefixes = 0

/** Two stores over one ring, with clients of their own, under a prefix of their own. */
const twoClients = (fault = false) =>
  Effect.gen(function*() {
    const prefix = `late-${process.pid}-${prefixes++}`
    const a = yield* MemcachedStore.make({ servers: servers(), prefix })
    const b = yield* MemcachedStore.make({ servers: servers(), prefix })
    if (!fault) return [a, b] as const
    const { faults, store } = yield* Testing.faulty(a)
    yield* faults.inject(Testing.failure("timeout"), "set")
    return [store, b] as const
  })

const onMemcached = {
  stores: twoClients(),
  ttl: "10 millis",
  staleWhileRevalidate: "1 hour",
  makeStale: Effect.sleep("15 millis")
} as const

describe("late writes across processes, on memcached", () => {
  it.live("10,000 seeded interleavings through two clients: no older value survives", () =>
    Effect.gen(function*() {
      const { loaded, older, outcomes } = yield* interleavings(10_000, onMemcached, 32)
      expect(older).toBe(0)
      const kinds = new Set(outcomes.map((o) => `${o.prefill}/${o.action}/${o.before}/${o.batch}`))
      expect(kinds.size).toBe(24)
      expect(loaded).toBeGreaterThan(5_000)
    }), 180_000)

  it.live("without the fence, the same interleavings on memcached leave older values", () =>
    Effect.gen(function*() {
      const { older } = yield* interleavings(1_000, { ...onMemcached, withoutFence: true }, 32)
      expect(older).toBeGreaterThan(0)
    }), 60_000)

  it.live("fenced writes that fail never leave an older value", () =>
    Effect.gen(function*() {
      const { older } = yield* interleavings(1_000, { ...onMemcached, stores: twoClients(true) }, 32)
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
            worker: { kind: "memcached", servers: servers() },
            prefix,
            store: MemcachedStore.make({ servers: servers(), prefix })
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
