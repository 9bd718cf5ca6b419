/**
 * The generation behind the memcached store's `clear`, against real memcached processes: every
 * server holds a copy, and it never moves backwards in a process, under load on a pool of two
 * connections.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, Option } from "effect"
import type { Value } from "effect-cachekit/CacheStore"
import * as MemcachedStore from "effect-cachekit/MemcachedStore"
import { useMemcached } from "./harness/memcached-fixture.js"
import { rawCommand } from "./harness/memcached.js"
import { eventually } from "./harness/process.js"

const servers = useMemcached(3)

let run = 0
const uniquePrefix = (label: string) => `mg-${process.pid}-${Date.now().toString(36)}-${run++}-${label}`
const bytes = (s: string) => new TextEncoder().encode(s)
const text = (v: Option.Option<Value>) => Option.map(v, (b) => new TextDecoder().decode(b as Uint8Array))

/** A generation as the store shows it (base 36), as a number that compares. */
const generationOf = (store: MemcachedStore.MemcachedStore): bigint => {
  const shown = store.generation()
  if (shown === undefined) throw new Error("the store has no generation")
  let n = 0n
  for (const digit of shown) n = n * 36n + BigInt(parseInt(digit, 36))
  return n
}

describe("MemcachedStore generation", () => {
  it.scopedLive("every server holds a copy; one lowered or removed behind the store's back is written back up", () =>
    Effect.gen(function*() {
      const cluster = servers()
      const store = yield* MemcachedStore.make({
        servers: cluster.map((s) => s.address),
        prefix: uniquePrefix("copies"),
        generationRefresh: "50 millis"
      })
      yield* store.clear
      yield* store.set("k", bytes("v"))
      const g = generationOf(store)
      const key = `${store.prefix}:gen`
      const copies = Effect.forEach(
        cluster,
        (s) => Effect.map(rawCommand(s.port, `mg ${key} v\r\n`), (answer) => /^VA \d+\r\n(\d+)\r\n$/.exec(answer)?.[1])
      )
      expect(yield* copies).toEqual(cluster.map(() => g.toString()))

      const lower = (g - 5n).toString()
      expect(yield* rawCommand(cluster[0]!.port, `ms ${key} ${lower.length}\r\n${lower}\r\n`)).toBe("HD\r\n")
      expect(yield* rawCommand(cluster[1]!.port, `md ${key}\r\n`)).toBe("HD\r\n")
      yield* eventually(
        "the copies to be written back up",
        Effect.map(copies, (values) => values.every((v) => v === g.toString())),
        5000
      )
      expect(generationOf(store)).toBe(g)
      expect(text(yield* store.get("k"))).toEqual(Option.some("v"))
    }))

  it.scopedLive("300 clears under concurrent reads on a pool of two connections: the generation never moves backwards", () =>
    Effect.gen(function*() {
      const store = yield* MemcachedStore.make({
        servers: [servers()[0]!.address],
        prefix: uniquePrefix("monotonic"),
        generationRefresh: "1 millis"
      })
      // Readers keep the first connection past its spill-over point (256 requests in flight), so
      // the re-reads of the generation and the clears go out on both connections.
      const readers = yield* Effect.fork(Effect.forever(
        Effect.forEach(Array.from({ length: 400 }, (_, i) => `r${i}`), (k) => Effect.either(store.get(k)), {
          concurrency: "unbounded",
          discard: true
        })
      ))
      let highest = generationOf(store)
      let backwards = 0
      let revived = 0
      for (let i = 0; i < 300; i++) {
        // everything written so far was cleared: a value read now is a cleared one come back
        const reads = yield* Effect.all([store.get("k"), store.get("k"), store.get("k")], { concurrency: "unbounded" })
        if (reads.some(Option.isSome)) revived++
        if (generationOf(store) < highest) backwards++
        yield* store.set("k", bytes(`v${i}`))
        yield* store.clear
        const after = generationOf(store)
        if (after <= highest) backwards++
        highest = after > highest ? after : highest
      }
      yield* Fiber.interrupt(readers)
      expect({ backwards, revived }).toEqual({ backwards: 0, revived: 0 })
      // the store keeps working under its final generation
      yield* store.set("k", bytes("last"))
      expect(text(yield* store.get("k"))).toEqual(Option.some("last"))
      expect(Either.isRight(yield* Effect.either(store.clear))).toBe(true)
      expect(generationOf(store)).toBeGreaterThan(highest)
    }))
})
