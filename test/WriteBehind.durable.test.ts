import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Schedule, Schema, Scope } from "effect"
import { MemoryStore, WriteBehind } from "effect-cachekit"
import * as Redis from "effect-cachekit/Redis"
import { spawn } from "node:child_process"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { fixture } from "./harness/fixture.js"
import { tempDir } from "./harness/process.js"
import { redisCli, redisServer } from "./harness/redis.js"
import { allRows, outage, SqliteTest, upsertMany } from "./sqlite.js"

const env = fixture(Effect.gen(function*() {
  const server = yield* redisServer()
  const redis = yield* Redis.make({ port: server.port })
  return { server, redis }
}))

const xlen = (stream: string) => Effect.map(redisCli(env().server.port, "XLEN", stream), (out) => Number(out.trim()))

const durable = (stream: string, extra: Partial<WriteBehind.Options<string, string, string, unknown, never>> = {}) =>
  Effect.flatMap(
    Redis.journal({ stream, claimIdle: "1 millis" }),
    (journal) =>
      WriteBehind.make({
        namespace: "row",
        value: Schema.String,
        ttl: "1 hour",
        flush: "1 hour",
        journal,
        saveBatch: upsertMany,
        ...extra
      })
  ).pipe(Effect.provideService(Redis.RedisClient, env().redis))

const Env = Layer.merge(SqliteTest, MemoryStore.layer())

const script = fileURLToPath(new URL("./fixtures/durable-writer.ts", import.meta.url))

/** Runs the fixture process; `untilLine` makes it resolve when that line is printed (the process still runs). */
const runChild = (args: ReadonlyArray<string>, untilLine?: string) =>
  Effect.async<{ readonly pid: number; readonly output: string; readonly exited: Promise<number | null> }, Error>(
    (resume) => {
      const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      let done = false
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
      child.stdout.on("data", (d: Buffer) => {
        output += d.toString()
        if (!done && untilLine !== undefined && output.split("\n").includes(untilLine)) {
          done = true
          resume(Effect.succeed({ pid: child.pid!, output, exited }))
        }
      })
      child.stderr.on("data", (d: Buffer) => {
        output += d.toString()
      })
      void exited.then((code) => {
        if (done) return
        done = true
        if (untilLine === undefined && code === 0) resume(Effect.succeed({ pid: child.pid!, output, exited }))
        else resume(Effect.fail(new Error(`the fixture process exited with ${code}:\n${output}`)))
      })
      return Effect.sync(() => {
        if (child.exitCode === null) child.kill("SIGKILL")
      })
    }
  )

describe("WriteBehind durable mode (Redis Streams)", () => {
  it.live("a write is in the stream before it returns; saved writes are acknowledged and deleted", () =>
    Effect.gen(function*() {
      const stream = "journal:ack"
      const cache = yield* durable(stream)
      yield* cache.write("a", "1")
      yield* cache.write("a", "2")
      yield* cache.write("b", "3")
      expect(yield* xlen(stream)).toBe(3)
      yield* cache.flush
      expect(yield* allRows).toEqual(new Map([["a", "2"], ["b", "3"]]))
      expect(yield* xlen(stream)).toBe(0)
    }).pipe(Effect.scoped, Effect.provide(Env)))

  it.live("entries another consumer received and never acknowledged are claimed and saved on start", () =>
    Effect.gen(function*() {
      const stream = "journal:claim"
      const port = env().server.port
      yield* redisCli(port, "XGROUP", "CREATE", stream, "effect-cachekit", "0", "MKSTREAM")
      yield* redisCli(port, "XADD", stream, "*", "k", JSON.stringify("x"), "v", JSON.stringify("old"))
      yield* redisCli(port, "XADD", stream, "*", "k", JSON.stringify("x"), "v", JSON.stringify("new"))
      yield* redisCli(port, "XADD", stream, "*", "k", JSON.stringify("y"), "v", JSON.stringify("y1"))
      // a consumer that took delivery and died
      yield* redisCli(port, "XREADGROUP", "GROUP", "effect-cachekit", "dead", "COUNT", "2", "STREAMS", stream, ">")
      const cache = yield* durable(stream)
      expect(yield* cache.read("x")).toEqual(Option.some("new"))
      yield* cache.flush
      expect(yield* allRows).toEqual(new Map([["x", "new"], ["y", "y1"]]))
      expect(yield* xlen(stream)).toBe(0)
    }).pipe(Effect.scoped, Effect.provide(Env)))

  it.live("writes left unsaved at shutdown stay in the stream and are saved by the next start", () =>
    Effect.gen(function*() {
      const stream = "journal:restart"
      const down = yield* outage
      const scope = yield* Scope.make()
      const first = yield* durable(stream, { shutdownTimeout: "200 millis", retry: undefined }).pipe(
        Scope.extend(scope)
      )
      yield* first.write("a", "1")
      yield* Scope.close(scope, Exit.void)
      expect(yield* xlen(stream)).toBe(1)
      yield* down.end
      const second = yield* durable(stream)
      yield* second.flush
      expect(yield* allRows).toEqual(new Map([["a", "1"]]))
      expect(yield* xlen(stream)).toBe(0)
    }).pipe(Effect.scoped, Effect.provide(Env)))

  it.live("a failed write replaced by a newer one of its key: both entries are done once the newer is saved", () =>
    Effect.gen(function*() {
      const stream = "journal:replace"
      const down = yield* outage
      const cache = yield* durable(stream, { retry: Schedule.recurs(1) })
      yield* cache.write("k", "old")
      yield* cache.flush
      expect((yield* cache.stats).failed).toBe(1)
      yield* cache.write("k", "new")
      yield* down.end
      yield* cache.flush
      expect(yield* allRows).toEqual(new Map([["k", "new"]]))
      expect(yield* xlen(stream)).toBe(0)
    }).pipe(Effect.scoped, Effect.provide(Env)))

  it.live(
    "crash: a process SIGKILLed before its flush loses nothing; the next one saves all 10,000 latest values",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("durable")
        const file = join(dir, "db.sqlite")
        const stream = "journal:crash"
        const port = String(env().server.port)
        const writer = yield* runChild(["write", port, file, stream], "written")
        process.kill(writer.pid, "SIGKILL")
        const code = yield* Effect.promise(() => writer.exited)
        expect(code).toBe(null)
        expect(yield* xlen(stream)).toBe(20_000)
        const readRows = Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          return yield* sql<{ key: string; value: string }>`SELECT key, value FROM kv`
        }).pipe(Effect.scoped, Effect.provide(SqliteClient.layer({ filename: file })))
        // nothing reached the database before the kill
        expect((yield* readRows).length).toBe(0)
        yield* runChild(["recover", port, file, stream])
        const rows = yield* readRows
        expect(rows.length).toBe(10_000)
        const byKey = new Map(rows.map((r) => [r.key, r.value]))
        for (let k = 0; k < 10_000; k++) expect(byKey.get(`k${k}`)).toBe(`v${10_000 + k}`)
        expect(yield* xlen(stream)).toBe(0)
      }).pipe(Effect.scoped),
    120_000
  )
})
