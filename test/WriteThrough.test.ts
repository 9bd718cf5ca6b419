import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Random, Schema } from "effect"
import { CacheAside, MemoryStore, WriteThrough } from "effect-cachekit"
import * as Testing from "effect-cachekit/testing"
import { allRows, refuseWrites, removeRow, select, SqliteTest, upsert } from "./sqlite.js"

class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { key: Schema.String }) {}

const loadRow = (key: string) =>
  Effect.flatMap(
    select(key),
    Option.match({ onNone: () => Effect.fail(new NotFound({ key })), onSome: Effect.succeed })
  )

const accounts = WriteThrough.make({
  namespace: "account",
  value: Schema.String,
  ttl: "10 minutes",
  save: upsert,
  load: loadRow,
  remove: removeRow
})

/** A view of the same namespace that only reads the cache. */
const cacheView = CacheAside.make({ namespace: "account", value: Schema.String, ttl: "10 minutes" })

const Env = Layer.merge(SqliteTest, MemoryStore.layer())

describe("WriteThrough", () => {
  it.scoped("write saves to the database, then the cache answers without loading", () =>
    Effect.gen(function*() {
      const cache = yield* accounts
      const view = yield* cacheView
      yield* cache.write("a", "one")
      expect(yield* select("a")).toEqual(Option.some("one"))
      expect(yield* view.get("a")).toEqual(Option.some("one"))
      expect(yield* cache.read("a")).toEqual(Option.some("one"))
      expect((yield* cache.stats).loads).toBe(0)
    }).pipe(Effect.provide(Env)))

  it.scoped("read is read-through on load; a missing row is the loader's error and is not cached", () =>
    Effect.gen(function*() {
      const cache = yield* accounts
      yield* upsert("b", "from-db")
      expect(yield* cache.read("b")).toEqual(Option.some("from-db"))
      const missing = yield* Effect.flip(cache.read("nope"))
      expect(missing).toEqual(new NotFound({ key: "nope" }))
      expect((yield* cache.stats).loads).toBe(2)
    }).pipe(Effect.provide(Env)))

  it.scoped("without load, read answers from the cache only", () =>
    Effect.gen(function*() {
      const cache = yield* WriteThrough.make({ namespace: "n", value: Schema.String, ttl: "1 minute", save: upsert })
      yield* upsert("x", "db")
      expect(yield* cache.read("x")).toEqual(Option.none())
      yield* cache.write("x", "written")
      expect(yield* cache.read("x")).toEqual(Option.some("written"))
    }).pipe(Effect.provide(Env)))

  it.scoped("delete removes the row, then the entry; without remove it fails typed and touches nothing", () =>
    Effect.gen(function*() {
      const cache = yield* accounts
      const view = yield* cacheView
      yield* cache.write("d", "v")
      yield* cache.delete("d")
      expect(yield* select("d")).toEqual(Option.none())
      expect(yield* view.get("d")).toEqual(Option.none())

      const noRemove = yield* WriteThrough.make({
        namespace: "account",
        value: Schema.String,
        ttl: "1 minute",
        save: upsert
      })
      yield* noRemove.write("e", "kept")
      const error = yield* Effect.flip(noRemove.delete("e"))
      expect(error._tag).toBe("UnsupportedCapability")
      expect(yield* select("e")).toEqual(Option.some("kept"))
      expect(yield* view.get("e")).toEqual(Option.some("kept"))
    }).pipe(Effect.provide(Env)))

  it.scoped("a failed save leaves the cache untouched and the error is the caller's", () =>
    Effect.gen(function*() {
      yield* refuseWrites("refuse", "NEW.value = 'bad'", "UPDATE")
      const cache = yield* accounts
      const view = yield* cacheView
      yield* cache.write("k", "good")
      const error = yield* Effect.flip(cache.write("k", "bad"))
      expect(error._tag).toBe("SqlError")
      expect(yield* select("k")).toEqual(Option.some("good"))
      expect(yield* view.get("k")).toEqual(Option.some("good"))
    }).pipe(Effect.provide(Env)))

  it.scoped("a cache write that fails after the save removes the old entry: the next read loads the new row", () =>
    Effect.gen(function*() {
      const faults = yield* Testing.Faults
      const cache = yield* accounts
      yield* cache.write("k", "old")
      yield* faults.inject(Testing.failure("connection"), ["set"])
      yield* cache.write("k", "new")
      yield* faults.heal()
      expect(yield* select("k")).toEqual(Option.some("new"))
      expect(yield* cache.read("k")).toEqual(Option.some("new"))
      const stats = yield* cache.stats
      expect(stats.storeErrors).toBe(1)
      expect(stats.loads).toBe(1)
    }).pipe(Effect.provide(Layer.merge(SqliteTest, Testing.layerFaulty.pipe(Layer.provide(MemoryStore.layer()))))))

  it.scoped("when even the removal fails, the write fails with StoreError (the old entry may remain) and both failures are counted", () =>
    Effect.gen(function*() {
      const faults = yield* Testing.Faults
      const cache = yield* accounts
      yield* faults.inject(Testing.failure("connection"), ["set", "delete"])
      const error = yield* Effect.flip(cache.write("k", "v"))
      expect(error._tag).toBe("StoreError")
      // the source took the write; the cache's failure is the caller's to hear of
      expect(yield* select("k")).toEqual(Option.some("v"))
      expect((yield* cache.stats).storeErrors).toBe(2)
    }).pipe(Effect.provide(Layer.merge(SqliteTest, Testing.layerFaulty.pipe(Layer.provide(MemoryStore.layer()))))))

  it.scoped("1,000 interleaved writers and readers over 10 keys: the cache equals the database for every key", () =>
    Effect.gen(function*() {
      // each save yields a random number of times before and after its statement, so writes to
      // one key overlap unless the cache serialises them
      const jitter = Effect.flatMap(Random.nextIntBetween(0, 8), (n) => Effect.repeatN(Effect.yieldNow(), n))
      const cache = yield* WriteThrough.make({
        namespace: "account",
        value: Schema.String,
        ttl: "10 minutes",
        save: (key: string, value: string) => jitter.pipe(Effect.zipRight(upsert(key, value)), Effect.zipRight(jitter)),
        load: (key: string) => Effect.zipRight(jitter, Effect.map(select(key), Option.getOrElse(() => "none")))
      })
      const view = yield* cacheView
      const keys = Array.from({ length: 10 }, (_, i) => `k${i}`)
      yield* Effect.forEach(
        Array.from({ length: 1000 }, (_, i) => i),
        (i) =>
          i % 4 === 3
            ? Effect.asVoid(cache.read(keys[i % 10]!))
            : Effect.zipRight(jitter, cache.write(keys[i % 10]!, `v${i}`)),
        { concurrency: "unbounded", discard: true }
      )
      const rows = yield* allRows
      expect(rows.size).toBe(10)
      for (const key of keys) {
        expect(yield* view.get(key)).toEqual(Option.some(rows.get(key)))
      }
    }).pipe(Effect.withRandom(Random.make("write-through")), Effect.provide(Env)))
})
