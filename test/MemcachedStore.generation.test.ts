/**
 * The generation behind the memcached store's `clear`, against real memcached processes: it never
 * moves backwards in a process, under load on a pool of two connections, and an outage of a server
 * (frozen with SIGSTOP, so that it comes back with everything it held) undoes no write or delete
 * made while it was out, whether or not it is the server `<prefix>:gen` hashes to.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber, Option, Schedule } from "effect"
import * as HashRing from "effect-cachekit/HashRing"
import * as MemcachedStore from "effect-cachekit/MemcachedStore"
import { StoreError } from "../src/CacheError.js"
import * as Connection from "../src/internal/memcached/connection.js"
import * as Generation from "../src/internal/memcached/generation.js"
import * as Keys from "../src/internal/memcached/keys.js"
import { bytes, text } from "../src/internal/testing/bytes.js"
import { fixture } from "./harness/fixture.js"
import { rawCommand, startMemcacheds } from "./harness/memcached.js"
import type { Memcached } from "./harness/memcached.js"
import { eventually } from "./harness/process.js"

const servers = fixture(startMemcacheds(3))

let run = 0
const uniquePrefix = (label: string) => `mg-${process.pid}-${Date.now().toString(36)}-${run++}-${label}`

/** A generation as the store shows it (base 36), as a number that compares. */
const generationOf = (store: MemcachedStore.MemcachedStore): bigint => {
  const shown = store.generation()
  if (shown === undefined) throw new Error("the store has no generation")
  let n = 0n
  for (const digit of shown) n = n * 36n + BigInt(parseInt(digit, 36))
  return n
}

/** The server of a three-server cluster that `<prefix>:gen` hashes to on the full ring. */
const generationHome = (cluster: ReadonlyArray<Memcached>, prefix: string): Memcached =>
  Option.getOrThrow(
    HashRing.get(
      HashRing.make(cluster.map((s) => ({ name: HashRing.serverName("127.0.0.1", s.port), node: s }))),
      `${prefix}:gen`
    )
  )

/**
 * Freezes `pick(cluster)` until the store takes it out of the ring, writes and deletes every key
 * while it is out, thaws it, waits until it is back in the ring and a few generation re-reads have
 * run, and checks that no key shows what it held before the outage.
 */
const outage = (pick: (cluster: ReadonlyArray<Memcached>, prefix: string) => Memcached) =>
  Effect.gen(function*() {
    const cluster = yield* startMemcacheds(3)
    const prefix = uniquePrefix("outage")
    const store = yield* MemcachedStore.make({
      servers: cluster.map((s) => s.address),
      prefix,
      timeout: "300 millis",
      generationRefresh: "50 millis",
      circuitBreaker: { failureThreshold: 2, resetAfter: "200 millis" },
      reconnect: { base: "20 millis", max: "100 millis" }
    })
    const victim = pick(cluster, prefix)
    const keys = Array.from({ length: 90 }, (_, i) => `key:${i}`)
    const deleted = keys.filter((_, i) => i % 3 === 0)
    const rewritten = keys.filter((_, i) => i % 3 !== 0)
    yield* store.setMany(keys.map((key) => ({ key, value: bytes(`before:${key}`) })))
    expect((yield* store.getMany(keys)).map(text)).toEqual(keys.map((k) => Option.some(`before:${k}`)))
    const victimKeys = keys.filter((k) => Option.getOrThrow(store.serverFor(k)) === victim.address)
    expect(victimKeys.length).toBeGreaterThan(10)

    yield* victim.process.freeze
    yield* eventually(
      "the frozen server to leave the ring",
      Effect.zipRight(
        Effect.either(store.getMany(keys)),
        Effect.sync(() => !store.liveServers().includes(victim.address))
      )
    )
    // generation re-reads run while it is out
    yield* Effect.sleep("200 millis")
    yield* store.setMany(rewritten.map((key) => ({ key, value: bytes(`during:${key}`) })))
    yield* store.deleteMany(deleted)
    const acknowledged = keys.map((k) => deleted.includes(k) ? Option.none() : Option.some(`during:${k}`))
    expect((yield* store.getMany(keys)).map(text)).toEqual(acknowledged)

    yield* victim.process.thaw
    yield* eventually(
      "the thawed server to rejoin the ring",
      Effect.sync(() => store.liveServers().includes(victim.address))
    )
    // generation re-reads run now that it is back
    yield* Effect.sleep("200 millis")
    expect(store.liveServers().length).toBe(3)
    // a key may miss, but never shows what was there before the outage
    const single = yield* Effect.forEach(keys, (k) => store.get(k))
    const batch = yield* store.getMany(keys)
    const wrong: Array<string> = []
    for (const [i, key] of keys.entries()) {
      for (const got of [text(single[i]!), text(batch[i]!)]) {
        if (Option.isSome(got) && !Option.getEquivalence((a: string, b: string) => a === b)(got, acknowledged[i]!)) {
          wrong.push(`${key}${victimKeys.includes(key) ? " (frozen server's)" : ""}: ${got.value}`)
        }
      }
    }
    expect(wrong).toEqual([])
    // and the store works on: a write is read back from every server, the thawed one included
    // (the generation is part of the key, so which keys are the thawed server's has changed)
    expect(keys.some((k) => Option.getOrThrow(store.serverFor(k)) === victim.address)).toBe(true)
    yield* store.setMany(keys.map((key) => ({ key, value: bytes(`after:${key}`) })))
    expect((yield* store.getMany(keys)).map(text)).toEqual(keys.map((k) => Option.some(`after:${k}`)))
  })

describe("MemcachedStore generation", () => {
  it.scopedLive("processes that start together settle on one first generation, whichever writes first", () =>
    Effect.gen(function*() {
      const connections = yield* Effect.forEach(servers(), (server) =>
        Connection.make({
          host: "127.0.0.1",
          port: server.port,
          timeout: "5 seconds",
          connectTimeout: "5 seconds",
          reconnect: Schedule.spaced("100 millis"),
          label: server.address
        }))
      const key = Keys.wireKey(`${uniquePrefix("first")}:gen`)!
      const fail = (reason: StoreError["reason"], detail: string) =>
        new StoreError({ store: "memcached", operation: "generation", reason, detail })
      const plain = (c: Connection.Connection): Generation.Run => (request) => c.execute(request, "generation")
      // B reads every copy (none yet), then A settles in full, then B writes
      let readsOfB = 0
      const readAll = yield* Deferred.make<void>()
      const goOn = yield* Deferred.make<void>()
      const gated = (c: Connection.Connection): Generation.Run => (request) =>
        request._tag === "ms"
          ? Effect.zipRight(Deferred.await(goOn), c.execute(request, "generation"))
          : Effect.tap(c.execute(request, "generation"), () =>
            ++readsOfB === connections.length ? Deferred.succeed(readAll, undefined) : Effect.void)
      const options = { servers: connections, key, current: undefined, bump: false, fail } as const
      const b = yield* Effect.fork(Generation.settle({ ...options, run: gated, seed: () => 2_000n }))
      yield* Deferred.await(readAll)
      const a = yield* Generation.settle({ ...options, run: plain, seed: () => 1_000n })
      yield* Deferred.succeed(goOn, undefined)
      const later = yield* Fiber.join(b)
      expect(a.generation).toBe(1_000n)
      expect(later.generation).toBe(a.generation)
      expect(later.holders.length).toBe(connections.length)
    }))

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

  it.scopedLive("the server `<prefix>:gen` hashes to, frozen and thawed: no write or delete made while it was out is undone", () =>
    outage(generationHome))

  it.scopedLive("another server, frozen and thawed, does not serve what it held when it left the ring", () =>
    outage((cluster, prefix) => cluster.find((s) => s !== generationHome(cluster, prefix))!))

  it.scopedLive(
    "300 clears under concurrent reads on a pool of two connections: the generation never moves backwards",
    () =>
      Effect.gen(function*() {
        const store = yield* MemcachedStore.make({
          servers: [servers()[0]!.address],
          prefix: uniquePrefix("monotonic"),
          generationRefresh: "1 millis",
          // what is checked is the order of generations, not latency: on an overloaded machine a
          // request behind 400 concurrent reads can wait past the default second
          timeout: "10 seconds"
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
          const reads = yield* Effect.all([store.get("k"), store.get("k"), store.get("k")], {
            concurrency: "unbounded"
          })
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
      }),
    // 300 rounds behind a loaded connection take seconds alone, and longer on a busy machine
    180_000
  )
})
