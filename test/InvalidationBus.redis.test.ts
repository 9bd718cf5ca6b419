/**
 * The invalidation bus over Redis pub/sub, on a server the harness starts: two processes' views of
 * one Redis (each its own store, versions, bus subscriber) hear each other's invalidations, and a
 * subscriber whose connection is killed reconnects and assumes it missed events.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Fiber, Metric, Ref, Schema, Stream } from "effect"
import { CacheStore, InvalidationBus, ReadThrough } from "effect-cachekit"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import { connectRedisBus } from "./harness/bus.js"
import { fixture } from "./harness/fixture.js"
import { redisCli, redisServer } from "./harness/redis.js"

const server = fixture(redisServer())

const Item = Schema.Struct({ id: Schema.String, n: Schema.Number })

/** A process: its own client, store, bus and handle over the shared server; loads count in `calls`. */
const processOver = (calls: Ref.Ref<number>, channel: string) =>
  Effect.gen(function*() {
    const redis = yield* Redis.make({ port: server().port })
    const store = yield* Effect.provideService(RedisStore.make({ prefix: channel }), Redis.RedisClient, redis)
    const bus = yield* connectRedisBus(redis, store, channel)
    const cache = yield* ReadThrough.make({
      namespace: "item",
      value: Item,
      lookup: (id: string) => Effect.map(Ref.updateAndGet(calls, (n) => n + 1), (n) => ({ id, n })),
      ttl: "1 hour",
      tags: () => ["t"],
      // without the bus, another process's invalidation would be seen only after an hour
      versionWindow: "1 hour"
    }).pipe(Effect.provideService(CacheStore.CacheStore, store))
    return { cache, bus }
  })

/** Reads until `done` holds (the bus is asynchronous), at most 5 s; how long it took. */
const until = (read: Effect.Effect<boolean, unknown>) =>
  Effect.gen(function*() {
    const start = performance.now()
    while (!(yield* read)) {
      if (performance.now() - start > 5000) throw new Error("not seen within 5 s")
      yield* Effect.sleep("1 millis")
    }
    return performance.now() - start
  })

describe("InvalidationBus over Redis pub/sub", () => {
  it.scopedLive("an invalidation in one process is seen by the next reads of another, not an hour later", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const a = yield* processOver(calls, "bus1")
      const b = yield* processOver(calls, "bus1")
      yield* b.cache.get("k")
      expect((yield* b.cache.get("k")).n).toBe(1)
      const delays: Array<number> = []
      for (let round = 2; round <= 11; round++) {
        yield* a.cache.invalidateTag("t")
        delays.push(yield* until(Effect.map(b.cache.get("k"), (v) => v.n === round)))
      }
      delays.sort((x, y) => x - y)
      console.log(
        `bus propagation, invalidateTag in A to B's first miss, 10 rounds: median ${delays[5]!.toFixed(2)} ms, max ${
          delays[9]!.toFixed(2)
        } ms`
      )
      expect(yield* Ref.get(calls)).toBe(11)
    }))

  it.scopedLive("a subscriber whose connection is killed reconnects, counts it, and delivers Missed", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const b = yield* processOver(calls, "bus2")
      const before = (yield* Metric.value(InvalidationBus.disconnections)).count
      const heard = yield* b.bus.subscribe
      const missed = yield* Deferred.make<void>()
      const watcher = yield* heard.pipe(
        Stream.filter((m) => m.event._tag === "Missed"),
        Stream.take(1),
        Stream.runCollect,
        Effect.tap(() => Deferred.succeed(missed, undefined)),
        Effect.fork
      )
      yield* b.cache.get("k")
      // another process changes the tag's version while nobody tells b (a lost message)
      yield* redisCli(server().port, "set", "bus2::th:t", "changed-unheard")
      expect((yield* b.cache.get("k")).n).toBe(1)
      yield* redisCli(server().port, "client", "kill", "type", "pubsub")
      yield* Deferred.await(missed)
      expect(Chunk.size(yield* Fiber.join(watcher))).toBe(1)
      expect((yield* Metric.value(InvalidationBus.disconnections)).count).toBeGreaterThan(before)
      // b assumed it missed events and dropped its versions: the change is seen now, not in an hour
      yield* until(Effect.map(b.cache.get("k"), (v) => v.n === 2))
      // and the bus works again after the reconnect
      const a = yield* processOver(calls, "bus2")
      yield* a.cache.invalidateTag("t")
      yield* until(Effect.map(b.cache.get("k"), (v) => v.n === 3))
    }))
})
