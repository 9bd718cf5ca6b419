/**
 * Late-write protection on a real Redis: seeded interleavings through two independent RedisStore
 * clients (each with its own connection, key order and single flight, as two processes have), and
 * the same race between two real OS processes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Option, Schema } from "effect"
import { CacheAside } from "effect-cachekit"
import { CacheStore } from "effect-cachekit/CacheStore"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import * as Testing from "effect-cachekit/testing"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { fixture } from "./harness/fixture.js"
import { interleavings } from "./harness/lateWrites.js"
import { redisCli, redisServer } from "./harness/redis.js"

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

  it.live("fenced writes that fail never leave an older value", () =>
    Effect.gen(function*() {
      const { older } = yield* interleavings(1_000, { ...onRedis, stores: twoClients(true) }, 32)
      expect(older).toBe(0)
    }), 60_000)

  const workerScript = fileURLToPath(new URL("./harness/lateWriteWorker.ts", import.meta.url))
  const root = fileURLToPath(new URL("..", import.meta.url))

  for (const action of ["set", "invalidate"] as const) {
    it.live(
      `two OS processes: a slow load that read the source before another process's ${action} does not overwrite it`,
      () =>
        Effect.gen(function*() {
          const port = env().server.port
          const prefix = `late-os-${process.pid}-${action}`
          yield* redisCli(port, "SET", `${prefix}-source`, "0")
          const read = yield* Deferred.make<string, Error>()
          const done = yield* Deferred.make<string, Error>()
          const child = yield* Effect.acquireRelease(
            Effect.sync(() =>
              spawn(process.execPath, ["--import", "tsx", workerScript, JSON.stringify({ port, prefix, key: "k" })], {
                cwd: root,
                stdio: ["pipe", "pipe", "pipe"]
              })
            ),
            (child) => Effect.sync(() => void (child.exitCode === null && child.kill("SIGKILL")))
          )
          let output = ""
          let errors = ""
          child.stdout!.on("data", (chunk: Buffer) => {
            output += chunk.toString()
            for (const line of output.split("\n")) {
              if (line.startsWith("READ ")) Deferred.unsafeDone(read, Effect.succeed(line.slice(5)))
              if (line.startsWith("DONE ")) Deferred.unsafeDone(done, Effect.succeed(line.slice(5)))
            }
          })
          child.stderr!.on("data", (chunk: Buffer) => void (errors += chunk.toString()))
          child.once("exit", (code) => {
            const failure = Effect.fail(new Error(`worker exited (${code}): ${errors}`))
            Deferred.unsafeDone(read, failure)
            Deferred.unsafeDone(done, failure)
          })
          // the other process read the source (0) and is loading; this one changes the source and the cache
          expect(yield* Deferred.await(read)).toBe("0")
          const store = yield* Effect.provideService(RedisStore.make({ prefix }), Redis.RedisClient, env().one)
          const cache = yield* CacheAside.make({ namespace: "late", value: Schema.String, ttl: "1 minute" }).pipe(
            Effect.provideService(CacheStore, store)
          )
          yield* redisCli(port, "SET", `${prefix}-source`, "1")
          if (action === "set") yield* cache.set("k", "v1")
          else yield* cache.invalidate("k")
          child.stdin!.write("GO\n")
          // the slow load answers its own caller with what it read, but does not store it
          expect(yield* Deferred.await(done)).toBe("v0")
          expect(yield* cache.get("k")).toEqual(action === "set" ? Option.some("v1") : Option.none())
          expect(yield* cache.getOrLoad("k", Effect.succeed("v1"))).toBe("v1")
        }).pipe(Effect.scoped),
      60_000
    )
  }
})
