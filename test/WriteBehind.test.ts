import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Exit, Fiber, Layer, Option, Schedule, Schema, Scope, Stream, TestClock } from "effect"
import { CacheAside, CacheError, MemoryStore, WriteBehind } from "effect-cachekit"
import { allRows, outage, refuseWrites, select, SqliteTest, upsertMany } from "./sqlite.js"

const Env = Layer.merge(SqliteTest, MemoryStore.layer())

type Batch = ReadonlyArray<readonly [string, string]>

/** Runs effects until `condition` holds, letting other fibers run in between; fails if it never does. */
const eventually = <E, R>(condition: Effect.Effect<boolean, E, R>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 10_000; i++) {
      if (yield* condition) return
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage("the condition never held")
  })

/** Flushes while moving the test clock, until nothing is pending (retries sleep on the clock). */
const drain = (cache: WriteBehind.WriteBehind<string, string, unknown>) =>
  Effect.gen(function*() {
    for (let round = 0; round < 1_000; round++) {
      const fiber = yield* Effect.fork(cache.flush)
      while (Option.isNone(yield* Fiber.poll(fiber))) {
        yield* TestClock.adjust("100 millis")
        yield* Effect.yieldNow()
      }
      if ((yield* cache.stats).pending === 0) return
    }
    return yield* Effect.dieMessage("writes still pending after 1,000 flushes")
  })

/** Every value each key took in the database, in order (kept by triggers). */
const history = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ key: string; value: string }>`SELECT key, value FROM history ORDER BY seq`
  const byKey = new Map<string, Array<string>>()
  for (const row of rows) byKey.set(row.key, [...(byKey.get(row.key) ?? []), row.value])
  return byKey
})

const recordHistory = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.all([
    sql`CREATE TABLE history (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT, value TEXT)`,
    sql`CREATE TRIGGER kv_ins AFTER INSERT ON kv BEGIN INSERT INTO history (key, value) VALUES (NEW.key, NEW.value); END`,
    sql`CREATE TRIGGER kv_upd AFTER UPDATE ON kv BEGIN INSERT INTO history (key, value) VALUES (NEW.key, NEW.value); END`
  ], { discard: true }))

const base = {
  namespace: "row",
  value: Schema.String,
  ttl: "1 hour",
  saveBatch: upsertMany
} as const

describe("WriteBehind", () => {
  it.scoped("write caches at once; the row is saved on the flush schedule", () =>
    Effect.gen(function*() {
      const cache = yield* WriteBehind.make({ ...base, flush: "1 second" })
      const view = yield* CacheAside.make({ namespace: "row", value: Schema.String, ttl: "1 hour" })
      yield* cache.write("a", "1")
      yield* cache.write("b", "2")
      expect(yield* view.get("a")).toEqual(Option.some("1"))
      expect(yield* cache.read("b")).toEqual(Option.some("2"))
      yield* TestClock.adjust("999 millis")
      yield* Effect.repeatN(Effect.yieldNow(), 20)
      expect((yield* allRows).size).toBe(0)
      yield* TestClock.adjust("1 milli")
      yield* eventually(Effect.map(allRows, (rows) => rows.size === 2))
      expect(yield* allRows).toEqual(new Map([["a", "1"], ["b", "2"]]))
      expect(yield* cache.stats).toMatchObject({ flushed: 2, pending: 0, batches: 1 })
    }).pipe(Effect.provide(Env)))

  it.scoped("a flush starts as soon as batchSize writes are pending, without the clock", () =>
    Effect.gen(function*() {
      const cache = yield* WriteBehind.make({ ...base, flush: "1 hour", batchSize: 10 })
      for (let i = 0; i < 9; i++) yield* cache.write(`k${i}`, "v")
      yield* Effect.repeatN(Effect.yieldNow(), 20)
      expect((yield* allRows).size).toBe(0)
      yield* cache.write("k9", "v")
      yield* eventually(Effect.map(allRows, (rows) => rows.size === 10))
      expect((yield* cache.stats).batches).toBe(1)
    }).pipe(Effect.provide(Env)))

  it.scoped("coalescing: 100,000 writes over 1,000 keys write at most 1,000 rows per flush, the last value of each", () =>
    Effect.gen(function*() {
      const batches: Array<number> = []
      const cache = yield* WriteBehind.make({
        ...base,
        flush: "1 second",
        batchSize: 5_000,
        maxPending: 5_000,
        saveBatch: (batch: Batch) => Effect.zipRight(Effect.sync(() => batches.push(batch.length)), upsertMany(batch))
      })
      for (let chunk = 0; chunk < 10; chunk++) {
        for (let i = chunk * 10_000; i < (chunk + 1) * 10_000; i++) yield* cache.write(`k${i % 1000}`, String(i))
        const before = batches.length
        yield* TestClock.adjust("1 second")
        yield* eventually(Effect.sync(() => batches.length > before))
      }
      const rows = yield* allRows
      expect(rows.size).toBe(1000)
      for (let k = 0; k < 1000; k++) expect(rows.get(`k${k}`)).toBe(String(99_000 + k))
      expect(batches.length).toBe(10)
      expect(Math.max(...batches)).toBeLessThanOrEqual(1000)
      const stats = yield* cache.stats
      expect(stats.flushed).toBe(10_000)
      expect(stats.coalesced).toBe(90_000)
    }).pipe(Effect.provide(Env)))

  it.scoped("back-pressure: a write of a new key waits while maxPending writes are held, and is never dropped", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const cache = yield* WriteBehind.make({
        ...base,
        flush: "1 hour",
        maxPending: 5,
        saveBatch: (batch: Batch) => Effect.zipRight(Deferred.await(gate), upsertMany(batch))
      })
      for (let i = 0; i < 5; i++) yield* cache.write(`k${i}`, "v")
      // a write of a pending key coalesces: it never waits
      yield* cache.write("k0", "v2")
      const sixth = yield* Effect.fork(cache.write("k5", "v"))
      yield* Effect.repeatN(Effect.yieldNow(), 50)
      expect(Option.isNone(yield* Fiber.poll(sixth))).toBe(true)
      expect((yield* cache.stats).pending).toBe(5)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(sixth)
      yield* cache.flush
      expect(yield* allRows).toEqual(
        new Map([["k0", "v2"], ["k1", "v"], ["k2", "v"], ["k3", "v"], ["k4", "v"], ["k5", "v"]])
      )
    }).pipe(Effect.provide(Env)))

  it.effect("closing the scope flushes everything pending", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const cache = yield* WriteBehind.make({ ...base, flush: "1 hour", batchSize: 7 }).pipe(Scope.extend(scope))
      for (let i = 0; i < 50; i++) yield* cache.write(`k${i % 20}`, String(i))
      yield* Scope.close(scope, Exit.void)
      const rows = yield* allRows
      expect(rows.size).toBe(20)
      for (let k = 0; k < 20; k++) expect(rows.get(`k${k}`)).toBe(String(k < 10 ? 40 + k : 20 + k))
    }).pipe(Effect.provide(Env)))

  it.effect("closing the scope while the database fails retries until it recovers within the deadline", () =>
    Effect.gen(function*() {
      const down = yield* outage
      const scope = yield* Scope.make()
      const cache = yield* WriteBehind.make({ ...base, flush: "1 second", shutdownTimeout: "1 minute" }).pipe(
        Scope.extend(scope)
      )
      for (let i = 0; i < 30; i++) yield* cache.write(`k${i}`, String(i))
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("10 seconds")
      expect(Option.isNone(yield* Fiber.poll(closing))).toBe(true)
      expect((yield* allRows).size).toBe(0)
      yield* down.end
      while (Option.isNone(yield* Fiber.poll(closing))) yield* TestClock.adjust("1 second")
      expect((yield* allRows).size).toBe(30)
    }).pipe(Effect.provide(Env)))

  it.effect("what the shutdown deadline leaves unsaved is reported on failures, value by value", () =>
    Effect.gen(function*() {
      yield* refuseWrites("outage", "1")
      const scope = yield* Scope.make()
      const cache = yield* WriteBehind.make({ ...base, flush: "1 second", shutdownTimeout: "10 seconds" }).pipe(
        Scope.extend(scope)
      )
      const reports = yield* Effect.fork(Stream.runCollect(cache.failures))
      yield* Effect.repeatN(Effect.yieldNow(), 10)
      for (let i = 0; i < 5; i++) yield* cache.write(`k${i}`, String(i))
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      while (Option.isNone(yield* Fiber.poll(closing))) yield* TestClock.adjust("1 second")
      const failures = Chunk.toReadonlyArray(yield* Fiber.join(reports))
      const unwritten = failures.filter((f) => f._tag === "Unwritten")
      expect(unwritten.length).toBe(1)
      expect(unwritten[0]).toEqual({
        _tag: "Unwritten",
        writes: [["k0", "0"], ["k1", "1"], ["k2", "2"], ["k3", "3"], ["k4", "4"]]
      })
      expect(failures.some((f) => f._tag === "BatchFailed")).toBe(true)
      expect((yield* cache.stats).pending).toBe(0)
    }).pipe(Effect.provide(Env)))

  it.scoped("every third batch failing: after recovery every last-written value is saved, in order per key", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* recordHistory
      yield* sql`CREATE TABLE batches (n INTEGER)`
      yield* sql`INSERT INTO batches VALUES (0)`
      yield* refuseWrites("every_third", "(SELECT n FROM batches) % 3 = 0")
      const cache = yield* WriteBehind.make({
        ...base,
        flush: "1 second",
        batchSize: 40,
        maxAttempts: 1_000,
        retry: Schedule.spaced("100 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
        saveBatch: (batch: Batch) => Effect.zipRight(sql`UPDATE batches SET n = n + 1`, upsertMany(batch))
      })
      const last = new Map<string, number>()
      for (let i = 0; i < 3_000; i++) {
        const key = `k${(i * 7) % 100}`
        yield* cache.write(key, String(i))
        last.set(key, i)
        if (i % 250 === 0) yield* TestClock.adjust("300 millis")
      }
      yield* drain(cache)
      const rows = yield* allRows
      expect(rows.size).toBe(100)
      for (const [key, i] of last) expect(rows.get(key)).toBe(String(i))
      for (const [key, values] of yield* history) {
        const numbers = values.map(Number)
        expect(numbers, key).toEqual([...numbers].sort((a, b) => a - b))
        expect(new Set(numbers).size, key).toBe(numbers.length)
      }
      const stats = yield* cache.stats
      expect(stats.retried).toBeGreaterThan(0)
      expect(stats.deadLettered).toBe(0)
      expect(stats.pending).toBe(0)
    }).pipe(Effect.provide(Env)))

  it.scoped("a newer write of a key replaces a failed one: only the newer value reaches the database", () =>
    Effect.gen(function*() {
      yield* recordHistory
      const down = yield* outage
      const cache = yield* WriteBehind.make({ ...base, flush: "1 hour", retry: Schedule.recurs(1) })
      yield* cache.write("k", "old")
      yield* cache.write("other", "x")
      yield* cache.flush
      const stats = yield* cache.stats
      expect(stats).toMatchObject({ failed: 2, pending: 2, flushed: 0 })
      yield* cache.write("k", "new")
      expect(yield* cache.read("k")).toEqual(Option.some("new"))
      yield* down.end
      yield* cache.flush
      expect(yield* allRows).toEqual(new Map([["k", "new"], ["other", "x"]]))
      expect((yield* history).get("k")).toEqual(["new"])
    }).pipe(Effect.provide(Env)))

  it.scoped("a write made while an older one of its key is being saved is saved after it", () =>
    Effect.gen(function*() {
      yield* recordHistory
      const gate = yield* Deferred.make<void>()
      let calls = 0
      const cache = yield* WriteBehind.make({
        ...base,
        flush: "1 hour",
        saveBatch: (batch: Batch) =>
          Effect.suspend(() => ++calls === 1 ? Deferred.await(gate) : Effect.void).pipe(
            Effect.zipRight(upsertMany(batch))
          )
      })
      yield* cache.write("k", "v1")
      const first = yield* Effect.fork(cache.flush)
      yield* eventually(Effect.sync(() => calls === 1))
      yield* cache.write("k", "v2")
      expect(yield* cache.read("k")).toEqual(Option.some("v2"))
      expect((yield* cache.stats).pending).toBe(2)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      yield* cache.flush
      expect((yield* history).get("k")).toEqual(["v1", "v2"])
      expect(yield* select("k")).toEqual(Option.some("v2"))
    }).pipe(Effect.provide(Env)))

  it.scoped("a poison record is dead-lettered after exactly maxAttempts saves of its own; the others are saved", () =>
    Effect.gen(function*() {
      yield* refuseWrites("poison", "NEW.value = 'poison'")
      let alone = 0
      const cache = yield* WriteBehind.make({
        ...base,
        flush: "1 hour",
        batchSize: 64,
        maxAttempts: 3,
        retry: Schedule.spaced("100 millis"),
        saveBatch: (batch: Batch) =>
          Effect.zipRight(
            Effect.sync(() => {
              if (batch.length === 1 && batch[0]![1] === "poison") alone++
            }),
            upsertMany(batch)
          )
      })
      const letters = yield* Effect.fork(Stream.runCollect(Stream.take(cache.failures, 1)))
      yield* Effect.repeatN(Effect.yieldNow(), 10)
      for (let i = 0; i < 50; i++) yield* cache.write(`k${i}`, i === 17 ? "poison" : String(i))
      yield* drain(cache)
      const rows = yield* allRows
      expect(rows.size).toBe(49)
      expect(rows.has("k17")).toBe(false)
      expect(alone).toBe(3)
      const dead = yield* cache.deadLetters
      expect(dead.map((d) => [d.key, d.value, d.attempts])).toEqual([["k17", "poison", 3]])
      const [letter] = Chunk.toReadonlyArray(yield* Fiber.join(letters))
      expect(letter).toMatchObject({ _tag: "DeadLettered", key: "k17", attempts: 3 })
      expect((yield* cache.stats).deadLettered).toBe(1)
      // a later write of the key is a new record, saved as usual
      yield* cache.write("k17", "fixed")
      yield* cache.flush
      expect(yield* select("k17")).toEqual(Option.some("fixed"))
    }).pipe(Effect.provide(Env)))

  it.scoped("read: the cache, else the newest write not yet saved, else read-through on load", () =>
    Effect.gen(function*() {
      const cache = yield* WriteBehind.make({
        ...base,
        flush: "1 hour",
        load: (key: string) => Effect.map(select(key), Option.getOrElse(() => "none"))
      })
      const view = yield* CacheAside.make({ namespace: "row", value: Schema.String, ttl: "1 hour" })
      yield* upsertMany([["db", "from-db"], ["q", "older-in-db"]])
      yield* cache.write("q", "queued")
      expect(yield* cache.read("q")).toEqual(Option.some("queued"))
      expect(yield* cache.read("db")).toEqual(Option.some("from-db"))
      // the entry is gone before the flush: the queued write answers, not the older row
      yield* view.invalidate("q")
      expect(yield* cache.read("q")).toEqual(Option.some("queued"))
      yield* cache.flush
      yield* view.invalidate("q")
      expect(yield* cache.read("q")).toEqual(Option.some("queued"))
      expect((yield* cache.cacheStats).loads).toBe(3)
    }).pipe(Effect.provide(Env)))

  it.scoped("read without load: the cache, else the newest write not yet saved, else None", () =>
    Effect.gen(function*() {
      const cache = yield* WriteBehind.make({ ...base, flush: "1 hour" })
      const view = yield* CacheAside.make({ namespace: "row", value: Schema.String, ttl: "1 hour" })
      yield* cache.write("q", "queued")
      yield* view.invalidate("q")
      expect(yield* cache.read("q")).toEqual(Option.some("queued"))
      yield* cache.flush
      expect(yield* cache.read("q")).toEqual(Option.none())
    }).pipe(Effect.provide(Env)))

  it("nonsense options throw InvalidOptions at make", () => {
    const bad = [{ batchSize: 0 }, { maxPending: 1.5 }, { maxAttempts: 0 }, { flush: -1 }, { shutdownTimeout: "soon" }]
    for (const options of bad) {
      expect(() => WriteBehind.make({ ...base, flush: "1 second", ...options } as never)).toThrow(
        CacheError.InvalidOptions
      )
    }
  })
})
