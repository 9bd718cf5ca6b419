/**
 * The Redis pub/sub invalidation bus on a 3-master Redis Cluster the harness starts: a message
 * published on any node reaches a subscriber connected to another, and invalidations propagate
 * across OS processes (the worker in harness/busWorker.ts) whose connections are spread over the
 * nodes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Schema, Stream } from "effect"
import { InvalidationBus } from "effect-cachekit"
import * as Redis from "effect-cachekit/Redis"
import { busWorker, propagationRounds, summary } from "./harness/busProcesses.js"
import { fixture } from "./harness/fixture.js"
import { redisCli, redisCluster } from "./harness/redis.js"

const cluster = fixture(redisCluster())

const encode = Schema.encodeSync(Schema.parseJson(InvalidationBus.Message))

/** The subscriber connections on a node: the names their clients gave. */
const subscriberNames = (port: number) =>
  Effect.map(
    redisCli(port, "client", "list", "type", "pubsub"),
    (list) => list.split("\n").flatMap((line) => /name=(\S*)/.exec(line)?.[1] ?? [])
  )

/** How many PUBLISH commands a node ran. */
const publishes = (port: number) =>
  Effect.map(
    redisCli(port, "info", "commandstats"),
    (info) => Number(/cmdstat_publish:calls=(\d+)/.exec(info)?.[1] ?? 0)
  )

describe("InvalidationBus over a 3-master Redis Cluster", () => {
  it.scopedLive("a message published on any node of the Cluster reaches the bus, which subscribes on one", () =>
    Effect.gen(function*() {
      const redis = yield* Redis.makeCluster({ nodes: cluster().startupNodes, connectionName: "bus-any-node" })
      const bus = yield* Effect.provideService(
        Redis.makeInvalidationBus({ channel: "cluster-any-node" }),
        Redis.RedisClient,
        redis
      )
      const heard = yield* bus.subscribe
      const masters = yield* Effect.forEach([0, 5461, 10923], (slot) => cluster().masterOf(slot))
      const listening = yield* Effect.forEach(masters, (m) => subscriberNames(m.port))
      // the bus holds one subscriber connection, on one master
      expect(listening.map((names) => names.filter((n) => n === "bus-any-node").length).sort()).toEqual([0, 0, 1])
      for (const [i, master] of masters.entries()) {
        const message: InvalidationBus.Message = {
          origin: `node-${master.port}`,
          event: { _tag: "Tags", tags: [`t${i}`], hard: true }
        }
        yield* redisCli(master.port, "publish", "cluster-any-node", encode(message))
      }
      const got = yield* heard.pipe(Stream.take(3), Stream.runCollect, Effect.timeout("10 seconds"))
      expect(Chunk.toReadonlyArray(got).map((m) => m.origin)).toEqual(masters.map((m) => `node-${m.port}`))
    }))

  it.scopedLive(
    "three OS processes on the Cluster: A invalidates a tag, B's and C's next reads miss, through the bus",
    () =>
      Effect.gen(function*() {
        const prefix = `cluster-bus-${process.pid}`
        const target = { nodes: cluster().startupNodes }
        // a window of an hour: only the bus can tell B and C in time
        const worker = (name: string) =>
          busWorker(target, { prefix, name: `${prefix}-${name}`, bus: true, versionWindowMillis: 3_600_000 })
        const { a, b, c } = yield* Effect.all({ a: worker("A"), b: worker("B"), c: worker("C") }, {
          concurrency: "unbounded"
        })
        const ports = cluster().nodes.map((n) => n.port)
        const before = yield* Effect.forEach(ports, publishes)
        const rounds = yield* propagationRounds(a, [b, c], 10)
        for (const round of rounds) expect(round.seen).toEqual([round.generation, round.generation])
        const after = yield* Effect.forEach(ports, publishes)
        const names = yield* Effect.forEach(ports, subscriberNames)
        const where = ["A", "B", "C"].map((p) =>
          `${p} on :${ports[names.findIndex((n) => n.includes(`${prefix}-${p}`))]}`
        )
        const published = ports.map((p, i) => `:${p} ${after[i]! - before[i]!}`).filter((s) => !s.endsWith(" 0"))
        console.log(
          `bus on a 3-master Cluster, 3 processes, invalidateTag in A → first read of the new value in B and C: ${
            summary(rounds.flatMap((r) => r.delays))
          }; subscribers ${where.join(", ")}; PUBLISH per node ${published.join(", ")}`
        )
      }),
    120_000
  )
})
