/**
 * Invalidation across real OS processes on one real Redis (the worker in harness/busWorker.ts):
 * one process invalidates a tag, the others' next reads miss. How long that takes is printed, not
 * asserted (speed belongs in bench/); what is asserted is that the readers see the new value, and
 * that no read ever serves a value older than the configured bound — even from a process frozen
 * for 10 s whose bus subscriber was killed meanwhile.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { agesOf, busWorker, invalidationsOf, propagationRounds, readsOf, summary } from "./harness/busProcesses.js"
import { fixture } from "./harness/fixture.js"
import { eventually } from "./harness/process.js"
import { redisCli, redisServer } from "./harness/redis.js"

const server = fixture(redisServer())

let run = 0
const prefixOf = (what: string) => `${what}-${process.pid}-${run++}`

/** Three processes on the server: A invalidates, B and C read. */
const threeProcesses = (bus: boolean, versionWindowMillis: number) =>
  Effect.gen(function*() {
    const prefix = prefixOf(bus ? "bus" : "nobus")
    const target = { port: server().port }
    const worker = (name: string) => busWorker(target, { prefix, name: `${prefix}-${name}`, bus, versionWindowMillis })
    const { a, b, c } = yield* Effect.all({ a: worker("A"), b: worker("B"), c: worker("C") }, {
      concurrency: "unbounded"
    })
    return { a, b, c, nameOfB: `${prefix}-B` }
  })

/** The subscriber connections of a process, by the name its connections carry. */
const subscribersOf = (port: number, name: string) =>
  Effect.map(
    redisCli(port, "client", "list", "type", "pubsub"),
    (list) =>
      list.split("\n").filter((line) => line.includes(` name=${name} `)).map((line) => /id=(\d+)/.exec(line)![1]!)
  )

const ROUNDS = 10

describe("invalidation across three OS processes on one Redis", () => {
  it.scopedLive(
    "with the bus: A invalidates a tag, B's and C's next reads miss and load the new value",
    () =>
      Effect.gen(function*() {
        // a window of an hour: without the bus, B and C would serve the old value for an hour
        const { a, b, c } = yield* threeProcesses(true, 3_600_000)
        const rounds = yield* propagationRounds(a, [b, c], ROUNDS)
        for (const round of rounds) expect(round.seen).toEqual([round.generation, round.generation])
        const delays = rounds.flatMap((r) => r.delays)
        console.log(`bus, 3 processes, invalidateTag in A → first read of the new value in B and C: ${summary(delays)}`)
      }),
    120_000
  )

  it.scopedLive(
    "without the bus: B and C see A's invalidation once their versionWindow (200 ms) has passed",
    () =>
      Effect.gen(function*() {
        const { a, b, c } = yield* threeProcesses(false, 200)
        const rounds = yield* propagationRounds(a, [b, c], ROUNDS)
        for (const round of rounds) expect(round.seen).toEqual([round.generation, round.generation])
        const delays = rounds.flatMap((r) => r.delays)
        console.log(
          `no bus, versionWindow 200 ms, 3 processes, invalidateTag in A → first read of the new value in B and C: ${
            summary(delays)
          }`
        )
      }),
    120_000
  )

  it.scopedLive(
    "B frozen (SIGSTOP) for 10 s and its subscriber connection killed while A invalidates: after SIGCONT it reconnects, and no read of B or C serves a value older than versionWindow",
    () =>
      Effect.gen(function*() {
        const windowMillis = 1_000
        // the bound a read is held to: the window, plus a round trip for the version read it trusts
        const bound = windowMillis + 100
        const { a, b, c, nameOfB } = yield* threeProcesses(true, windowMillis)
        const port = server().port
        const [subscriberOfB] = yield* subscribersOf(port, nameOfB)
        expect(subscriberOfB).toBeDefined()
        yield* Effect.forEach([b, c], (r) => r.send("READFOR 14000"), { discard: true })
        yield* Effect.sleep("1 second")
        yield* b.freeze
        const frozenAt = performance.timeOrigin + performance.now()
        // killed on the server: what is published from now on never reaches B's old subscription
        yield* redisCli(port, "client", "kill", "id", subscriberOfB!)
        yield* a.request("INVALIDATEEVERY 500 20", (l) => l === "DONE")
        yield* b.thaw
        const thawedAt = performance.timeOrigin + performance.now()
        yield* Effect.forEach([b, c], (r) => r.waitFor((l) => l === "DONE"), { discard: true })
        // B's subscriber is back under a new connection, and counted the disconnection
        yield* eventually(
          "B subscribed again",
          Effect.map(subscribersOf(port, nameOfB), (ids) => ids.length === 1 && ids[0] !== subscriberOfB)
        )
        const stats = yield* b.request("STATS", (l) => l.startsWith("STATS "))
        expect(Number(stats.split(" ")[1])).toBeGreaterThanOrEqual(1)
        // and hears the bus again: one more invalidation reaches B
        const after = b.lines.length
        yield* b.send("WATCH 21 last")
        yield* b.waitFor((l) => l === "WATCHING last", after)
        yield* a.request("INVALIDATE last", (l) => l.startsWith("INVALIDATED last "))
        const seen = yield* b.waitFor((l) => l.startsWith("SEEN last "), after)
        expect(seen.split(" ")[3]).toBe("21")

        const invalidations = invalidationsOf(a)
        expect(invalidations.length).toBe(21)
        const report = [b, c].map((worker, i) => {
          const reads = readsOf(worker)
          const ages = agesOf(reads, invalidations)
          return {
            name: i === 0 ? "B" : "C",
            reads: reads.length,
            readsAfterThaw: reads.filter((r) => r.start > thawedAt).length,
            // a second's margin each side: the processes' clocks agree only to a few ms, and under
            // load a read in flight at SIGSTOP may be stamped late; a B that was not frozen would
            // read hundreds of times in the seconds between
            readsWhileFrozen: reads.filter((r) => r.start > frozenAt + 1_000 && r.start < thawedAt - 1_000).length,
            old: ages.filter((age) => age > bound).length,
            maxAge: Math.max(...ages)
          }
        })
        for (const r of report) {
          console.log(
            `subscriber of B frozen 10 s and killed, 20 invalidations by A: ${r.name} made ${r.reads} reads (${r.readsAfterThaw} after SIGCONT), ${r.old} older than ${bound} ms, the oldest ${
              r.maxAge.toFixed(1)
            } ms after the invalidation that replaced it`
          )
          expect(r.reads).toBeGreaterThan(0)
          expect(r.old).toBe(0)
        }
        // B really was frozen, and read again after it was thawed
        expect(report[0]!.readsWhileFrozen).toBe(0)
        expect(report[0]!.readsAfterThaw).toBeGreaterThan(0)
      }),
    120_000
  )
})
