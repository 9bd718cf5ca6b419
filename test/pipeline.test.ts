/**
 * The load pipeline's behaviour, once for every way a read reaches it: each read path (a store
 * with a synchronous in-process read, a byte store without one, a store that answers reads from
 * a batch callback; each with and without a tracer installed) × each strategy that reads through
 * it (`ReadThrough`, `CacheAside`, `Cache.cached`). A scenario that needs a verb a strategy does
 * not have (a batch read, a refresh) runs for the strategies that have it.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Metric,
  Option,
  Random,
  Ref,
  Scheduler,
  Schema,
  Scope,
  TestClock,
  TestServices,
  Tracer
} from "effect"
import {
  Cache,
  CacheAside,
  CacheError,
  CacheMetrics,
  CacheStore,
  Invalidation,
  MemoryStore,
  ReadThrough,
  Ttl
} from "effect-cachekit"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import * as Testing from "effect-cachekit/testing"
import { drawEarly, mayRecomputeEarly, recomputesEarly } from "../src/internal/pipeline/freshness.js"
import { fixture } from "./harness/fixture.js"
import { redisServer } from "./harness/redis.js"
import { bytesOnlyStore } from "./utils.js"

const redis = fixture(Effect.gen(function*() {
  const server = yield* redisServer()
  return yield* Redis.make({ port: server.port })
}))

let prefixes = 0

/** How a read reaches the pipeline. */
interface ReadPath {
  readonly name: string
  readonly store: Effect.Effect<CacheStore.Service, never, Scope.Scope>
  /** Whether the store's own expiry follows the TestClock (an in-process store), not a server's clock. */
  readonly followsTestClock: boolean
}

const readPaths: ReadonlyArray<ReadPath> = [
  { name: "synchronous in-process read (memory)", store: MemoryStore.make(), followsTestClock: true },
  { name: "byte store without a synchronous read", store: bytesOnlyStore, followsTestClock: true },
  {
    name: "batch-callback read (redis)",
    followsTestClock: false,
    store: Effect.suspend(() =>
      Effect.provideService(RedisStore.make({ prefix: `pipe${++prefixes}` }), Redis.RedisClient, redis())
    )
  }
]

/** What a scenario needs of a strategy: the verbs every strategy has, and the ones only some have. */
interface Handle<K, A, E> {
  readonly get: (key: K) => Effect.Effect<A, E | CacheError.CacheError>
  readonly invalidate?: (key: K) => Effect.Effect<boolean, CacheError.CacheError>
  readonly expire?: (key: K) => Effect.Effect<boolean, CacheError.CacheError>
  readonly invalidatePattern?: (pattern: string) => Effect.Effect<number, CacheError.CacheError>
  readonly refresh?: (key: K) => Effect.Effect<A, E | CacheError.CacheError>
  readonly clear?: Effect.Effect<number, CacheError.CacheError>
  readonly getMany?: (keys: ReadonlyArray<K>) => Effect.Effect<Array<Option.Option<A>>, E | CacheError.CacheError>
  readonly stats: Effect.Effect<CacheMetrics.Stats>
}

interface HandleOptions<A, I, E> extends Cache.Options<A, I> {
  readonly lookup: (key: string) => Effect.Effect<A, E>
  readonly lookupMany?: (keys: ReadonlyArray<string>) => Effect.Effect<Iterable<readonly [string, A]>, E>
  readonly negative?: Cache.NegativeOptions<E, any> | undefined
}

interface Strategy {
  readonly name: string
  readonly make: <A, I, E>(
    options: HandleOptions<A, I, E>
  ) => Effect.Effect<Handle<string, A, E>, never, CacheStore.CacheStore | Scope.Scope>
}

const strategies: ReadonlyArray<Strategy> = [
  { name: "ReadThrough", make: (options) => ReadThrough.make(options) },
  {
    name: "CacheAside",
    make: (options) =>
      Effect.map(CacheAside.make(options), (aside) => ({
        get: (key: string) => aside.getOrLoad(key, options.lookup(key)),
        invalidate: aside.invalidate,
        expire: aside.expire,
        invalidatePattern: aside.invalidatePattern,
        clear: aside.clear,
        stats: aside.stats
      }))
  },
  {
    name: "Cache.cached",
    make: (options) =>
      Effect.gen(function*() {
        const store = yield* CacheStore.CacheStore
        const handle = {
          // built anew for each call, as a request handler does: calls with the same options share
          get: (key: string) =>
            options.lookup(key).pipe(
              Cache.cached({ ...options, key }),
              Effect.provideService(CacheStore.CacheStore, store)
            ),
          invalidate: (key: string) =>
            Effect.provideService(Cache.cached({ ...options, key }).invalidate, CacheStore.CacheStore, store),
          expire: (key: string) =>
            Effect.provideService(Cache.cached({ ...options, key }).expire, CacheStore.CacheStore, store),
          stats: Effect.provideService(Cache.cached({ ...options, key: "" }).stats, CacheStore.CacheStore, store)
        }
        // the shared pipeline's first use waits until it is ready (on a remote store, one read of
        // the namespace's purge token), as the other strategies' `make` does: the scenarios start
        // their clocks after it
        yield* handle.stats
        return handle
      })
  }
]

/** A tracer that records the spans it makes; `undefined` runs with Effect's default (untraced). */
const recordingTracer = (base: Tracer.Tracer) => {
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      const span = base.span(name, parent, context, links, startTime, kind, options)
      spans.push(span)
      return span
    },
    context: (f) => f()
  })
  return { tracer, spans }
}

const Item = Schema.Struct({ id: Schema.String, n: Schema.Number })
type Item = typeof Item.Type
const item = (id: string, n = 0): Item => ({ id, n })

/** The usual handle of a scenario: items in namespace "item", kept 5 minutes unless `options` say otherwise. */
const itemsOf = <E>(
  strategy: Strategy,
  lookup: (key: string) => Effect.Effect<Item, E>,
  options?: Partial<Omit<HandleOptions<Item, typeof Item.Encoded, E>, "lookup" | "value">>
) =>
  strategy.make<Item, typeof Item.Encoded, E>({ namespace: "item", ttl: "5 minutes", ...options, value: Item, lookup })

class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { id: Schema.String }) {}

/** A lookup that counts its calls; ids starting with "missing" fail with NotFound. */
const counting = Effect.gen(function*() {
  const calls = yield* Ref.make(0)
  const lookup = (id: string) =>
    Effect.zipRight(
      Ref.update(calls, (n) => n + 1),
      id.startsWith("missing") ? Effect.fail(new NotFound({ id })) : Effect.succeed(item(id))
    )
  return { calls, lookup }
})

/** A lookup that counts its calls and holds every load until `open`. */
const gated = Effect.gen(function*() {
  const calls = yield* Ref.make(0)
  const gate = yield* Deferred.make<void>()
  const lookup = (id: string) =>
    Ref.update(calls, (n) => n + 1).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as(item(id)))
  return { calls, lookup, open: Deferred.succeed(gate, undefined) }
})

/**
 * A lookup whose n-th load returns version n of the item; every load after the first waits until
 * `open` (so a background refresh can be watched while it runs).
 */
const versionsGatedAfterFirst = Effect.gen(function*() {
  const version = yield* Ref.make(0)
  const gate = yield* Deferred.make<void>()
  const lookup = (id: string) =>
    Ref.updateAndGet(version, (n) => n + 1).pipe(
      Effect.tap((n) => n > 1 ? Deferred.await(gate) : Effect.void),
      Effect.map((n) => item(id, n))
    )
  return { version, lookup, open: Deferred.succeed(gate, undefined) }
})

/** A logger that keeps the messages logged at warning level or above. */
const capturingLogger = () => {
  const warnings: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) {
      warnings.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
    }
  })
  return { warnings, layer: Logger.replace(Logger.defaultLogger, logger) }
}

/** Runs forked work until `done` holds, letting fibers and the store answer between checks. */
const settleUntil = <E>(done: Effect.Effect<boolean, E>) =>
  Effect.gen(function*() {
    while (!(yield* done)) yield* settle
  })

/**
 * Lets forked fibers run until they wait on something, then makes one round trip to the store in
 * context: a remote store answers in order, so what the fibers wrote before it has landed.
 */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
  yield* Effect.flatMap(CacheStore.CacheStore, (store) => Effect.ignore(store.get("settle")))
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
})

for (const path of readPaths) {
  for (const traced of [false, true]) {
    for (const strategy of strategies) {
      describe(`pipeline: ${strategy.name} over ${path.name}${traced ? ", traced" : ""}`, () => {
        /** Runs a scenario with the store in context and, when traced, a recording tracer. */
        const scenario = (
          name: string,
          body: (store: CacheStore.Service) => Effect.Effect<void, unknown, CacheStore.CacheStore | Scope.Scope>
        ) =>
          it.scoped(name, () =>
            Effect.gen(function*() {
              const store = yield* path.store
              const run = Effect.provideService(body(store), CacheStore.CacheStore, store)
              if (!traced) return yield* run
              const { tracer } = recordingTracer(yield* Effect.tracer)
              return yield* Effect.withTracer(run, tracer)
            }))

        scenario("a miss loads and stores; the next get is a hit without the loader", () =>
          Effect.gen(function*() {
            const { calls, lookup } = yield* counting
            const cache = yield* itemsOf(strategy, lookup)
            expect(yield* cache.get("a")).toEqual(item("a"))
            expect(yield* cache.get("a")).toEqual(item("a"))
            expect(yield* Ref.get(calls)).toBe(1)
          }))

        scenario("1,000 concurrent gets of a cold key call the loader exactly once", () =>
          Effect.gen(function*() {
            const { calls, lookup, open } = yield* gated
            const cache = yield* itemsOf(strategy, lookup)
            const fibers = yield* Effect.forEach(Array.from({ length: 1000 }), () => Effect.fork(cache.get("cold")))
            yield* settle
            yield* open
            const results = yield* Fiber.joinAll(fibers)
            expect(results.length).toBe(1000)
            expect(results.every((r) => r.id === "cold")).toBe(true)
            expect(yield* Ref.get(calls)).toBe(1)
          }))

        scenario(
          "an interrupted waiter does not interrupt the load the other waiters share",
          () =>
            Effect.gen(function*() {
              const { calls, lookup, open } = yield* gated
              const cache = yield* itemsOf(strategy, lookup)
              const impatient = yield* Effect.fork(cache.get("k"))
              const patient = yield* Effect.fork(cache.get("k"))
              yield* settle
              yield* Fiber.interrupt(impatient)
              yield* open
              expect(yield* Fiber.join(patient)).toEqual(item("k"))
              expect(yield* cache.get("k")).toEqual(item("k"))
              expect(yield* Ref.get(calls)).toBe(1)
            })
        )

        scenario(
          "hundreds of waiters that come and go while one stays: one load, and the one that stayed gets its value",
          () =>
            Effect.gen(function*() {
              const { calls, lookup, open } = yield* gated
              const cache = yield* itemsOf(strategy, lookup)
              const patient = yield* Effect.fork(cache.get("k"))
              yield* settle
              for (let round = 0; round < 3; round++) {
                const impatient = yield* Effect.forEach(Array.from({ length: 100 }), () => Effect.fork(cache.get("k")))
                yield* settle
                yield* Fiber.interruptAll(impatient)
              }
              // a waiter that comes after them all still joins the same load
              const late = yield* Effect.fork(cache.get("k"))
              yield* settle
              yield* open
              expect(yield* Fiber.join(patient)).toEqual(item("k"))
              expect(yield* Fiber.join(late)).toEqual(item("k"))
              expect(yield* Ref.get(calls)).toBe(1)
            })
        )

        scenario("when the last waiter leaves, the shared load is interrupted", () =>
          Effect.gen(function*() {
            const interrupted = yield* Deferred.make<void>()
            const started = yield* Deferred.make<void>()
            const cache = yield* strategy.make({
              namespace: "item",
              value: Item,
              lookup: (id: string) =>
                Deferred.succeed(started, undefined).pipe(
                  Effect.zipRight(Effect.never),
                  Effect.as(item(id)),
                  Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
                ),
              ttl: "5 minutes"
            })
            const a = yield* Effect.fork(cache.get("k"))
            const b = yield* Effect.fork(cache.get("k"))
            yield* Deferred.await(started)
            yield* Fiber.interrupt(a)
            expect(yield* Deferred.isDone(interrupted)).toBe(false)
            yield* Fiber.interrupt(b)
            yield* Deferred.await(interrupted)
          }))

        scenario(
          "500 waiters interrupted at once interrupt the shared load; the next get loads anew",
          () =>
            Effect.gen(function*() {
              const interrupted = yield* Deferred.make<void>()
              const loads = yield* Ref.make(0)
              const cache = yield* strategy.make({
                namespace: "item",
                value: Item,
                lookup: (id: string) =>
                  Ref.updateAndGet(loads, (n) => n + 1).pipe(
                    Effect.flatMap((n) =>
                      n === 1
                        ? Effect.never.pipe(Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined)))
                        : Effect.succeed(item(id))
                    )
                  ),
                ttl: "5 minutes"
              })
              const waiters = yield* Effect.forEach(Array.from({ length: 500 }), () => Effect.fork(cache.get("k")))
              yield* settle
              yield* Fiber.interruptAll(waiters)
              yield* Deferred.await(interrupted)
              expect(yield* cache.get("k")).toEqual(item("k"))
              expect(yield* Ref.get(loads)).toBe(2)
            })
        )

        scenario(
          "the loader's own error passes through typed, and a failed load is not cached",
          () =>
            Effect.gen(function*() {
              const { calls, lookup } = yield* counting
              const cache = yield* itemsOf(strategy, lookup)
              const first = yield* Effect.flip(cache.get("missing-1"))
              expect(first).toBeInstanceOf(NotFound)
              const second = yield* Effect.flip(cache.get("missing-1"))
              expect(second).toBeInstanceOf(NotFound)
              expect(yield* Ref.get(calls)).toBe(2)
            })
        )

        scenario("bytes that do not decode are a miss: dropped and reloaded", (store) =>
          Effect.gen(function*() {
            const { calls, lookup } = yield* counting
            const cache = yield* itemsOf(strategy, lookup)
            yield* store.set("item:garbage", new TextEncoder().encode("{not json"))
            expect(yield* cache.get("garbage")).toEqual(item("garbage"))
            expect(yield* Ref.get(calls)).toBe(1)
            expect(yield* cache.get("garbage")).toEqual(item("garbage"))
            expect(yield* Ref.get(calls)).toBe(1)
          }))

        scenario(
          "a malformed envelope (freshness fields missing) is a miss, never fresh forever",
          (store) =>
            Effect.gen(function*() {
              const { calls, lookup } = yield* counting
              const cache = yield* itemsOf(strategy, lookup)
              yield* cache.get("k")
              const stored = yield* store.get("item:k")
              if (!store.capabilities.live) {
                // a foreign writer with the right fingerprint but no fresh-until field
                const envelope = JSON.parse(new TextDecoder().decode(Option.getOrThrow(stored) as Uint8Array))
                delete envelope.u
                yield* store.set("item:k", new TextEncoder().encode(JSON.stringify(envelope)))
              } else {
                // a live store keeps the entry object; a foreign object under the key is no entry
                yield* store.set("item:k", { value: item("k"), freshUntil: Infinity })
              }
              yield* settle
              yield* cache.get("k")
              expect(yield* Ref.get(calls)).toBe(2)
            })
        )

        scenario("entries expire after their TTL on the TestClock", () =>
          Effect.gen(function*() {
            const { calls, lookup } = yield* counting
            const cache = yield* itemsOf(strategy, lookup)
            yield* cache.get("a")
            yield* TestClock.adjust("4 minutes")
            yield* cache.get("a")
            expect(yield* Ref.get(calls)).toBe(1)
            yield* TestClock.adjust("1 minute")
            yield* cache.get("a")
            expect(yield* Ref.get(calls)).toBe(2)
          }))

        scenario(
          "a sliding TTL: hits keep the entry, the cap ends it however often it is read",
          () =>
            Effect.gen(function*() {
              const { calls, lookup } = yield* counting
              const cache = yield* strategy.make({
                namespace: "item",
                value: Item,
                lookup,
                ttl: Ttl.sliding("5 minutes", { max: "17 minutes" })
              })
              yield* cache.get("a")
              for (let i = 0; i < 4; i++) {
                yield* TestClock.adjust("4 minutes")
                expect(yield* cache.get("a")).toEqual(item("a"))
                if (cache.getMany !== undefined) {
                  expect(yield* cache.getMany(["a", "a"])).toEqual([Option.some(item("a")), Option.some(item("a"))])
                }
                yield* settle
              }
              expect(yield* Ref.get(calls)).toBe(1)
              yield* TestClock.adjust("1 minute")
              yield* cache.get("a")
              expect(yield* Ref.get(calls)).toBe(2)
            })
        )

        if (strategy.name !== "Cache.cached") {
          scenario(
            "negative caching: a failure the predicate accepts fails again without the loader until its TTL",
            () =>
              Effect.gen(function*() {
                const { calls, lookup } = yield* counting
                const cache = yield* strategy.make({
                  namespace: "item",
                  value: Item,
                  lookup,
                  ttl: "5 minutes",
                  negative: { ttl: "30 seconds", error: NotFound, when: (e: NotFound) => e.id !== "missing-skip" }
                })
                for (let i = 0; i < 3; i++) {
                  const error = yield* Effect.flip(cache.get("missing-1"))
                  expect(error).toBeInstanceOf(NotFound)
                  expect(error).toEqual(new NotFound({ id: "missing-1" }))
                }
                expect(yield* Ref.get(calls)).toBe(1)
                // a failure the predicate refuses is not cached
                yield* Effect.flip(cache.get("missing-skip"))
                yield* Effect.flip(cache.get("missing-skip"))
                expect(yield* Ref.get(calls)).toBe(3)
                // values are cached as before
                expect(yield* cache.get("a")).toEqual(item("a"))
                expect(yield* cache.get("a")).toEqual(item("a"))
                expect(yield* Ref.get(calls)).toBe(4)
                yield* TestClock.adjust("29 seconds")
                yield* Effect.flip(cache.get("missing-1"))
                expect(yield* Ref.get(calls)).toBe(4)
                yield* TestClock.adjust("1 second")
                yield* Effect.flip(cache.get("missing-1"))
                expect(yield* Ref.get(calls)).toBe(5)
                // an invalidation ends a cached failure
                if (cache.invalidate !== undefined) {
                  expect(yield* cache.invalidate("missing-1")).toBe(true)
                  yield* Effect.flip(cache.get("missing-1"))
                  expect(yield* Ref.get(calls)).toBe(6)
                }
                if (cache.getMany !== undefined) {
                  // a batch that meets a cached failure fails with it, as the load of its key would
                  expect(yield* Effect.flip(cache.getMany(["a", "missing-1"]))).toEqual(
                    new NotFound({ id: "missing-1" })
                  )
                  expect(yield* Ref.get(calls)).toBe(6)
                }
              })
          )
        }

        if (path.followsTestClock) {
          scenario(
            "a sliding TTL: an entry nobody reads for the slide is a miss, one read keeps it",
            () =>
              Effect.gen(function*() {
                const { calls, lookup } = yield* counting
                const cache = yield* strategy.make({
                  namespace: "item",
                  value: Item,
                  lookup,
                  ttl: Ttl.sliding("5 minutes", { max: "1 hour" })
                })
                yield* cache.get("read")
                yield* cache.get("idle")
                yield* TestClock.adjust("4 minutes")
                yield* cache.get("read")
                yield* settle
                yield* TestClock.adjust("1 minute")
                yield* cache.get("read")
                yield* cache.get("idle")
                expect(yield* Ref.get(calls)).toBe(3)
              })
          )
        }

        scenario(
          "stale-while-revalidate serves the stale value and refreshes once in the background",
          () =>
            Effect.gen(function*() {
              const { lookup, open, version } = yield* versionsGatedAfterFirst
              const cache = yield* itemsOf(strategy, lookup, { ttl: "1 minute", staleWhileRevalidate: "1 minute" })
              expect((yield* cache.get("k")).n).toBe(1)
              yield* TestClock.adjust("90 seconds")
              // stale: served at once, one refresh starts for all three readers
              expect((yield* cache.get("k")).n).toBe(1)
              expect((yield* cache.get("k")).n).toBe(1)
              expect((yield* cache.get("k")).n).toBe(1)
              yield* settle
              expect(yield* Ref.get(version)).toBe(2)
              yield* open
              yield* settle
              expect((yield* cache.get("k")).n).toBe(2)
              expect(yield* Ref.get(version)).toBe(2)
            })
        )

        scenario(
          "1,000 concurrent stale reads are all served the stale value and start exactly one refresh",
          () =>
            Effect.gen(function*() {
              const { lookup, open, version } = yield* versionsGatedAfterFirst
              const cache = yield* itemsOf(strategy, lookup, { ttl: "1 minute", staleWhileRevalidate: "1 minute" })
              yield* cache.get("k")
              yield* TestClock.adjust("90 seconds")
              const results = yield* Effect.forEach(Array.from({ length: 1000 }), () => cache.get("k"), {
                concurrency: "unbounded"
              })
              expect(results.filter((r) => r.n === 1).length).toBe(1000)
              yield* settle
              expect(yield* Ref.get(version)).toBe(2)
              yield* open
              yield* settleUntil(Effect.map(cache.get("k"), (r) => r.n === 2))
              expect(yield* Ref.get(version)).toBe(2)
            })
        )

        /** A lookup whose values count its calls (`n`), and whose entries carry the tag `t:<first letter>`. */
        const versioned = Effect.gen(function*() {
          const calls = yield* Ref.make(0)
          const lookup = (id: string) => Effect.map(Ref.updateAndGet(calls, (n) => n + 1), (n) => item(id, n))
          const tags = (value: Item) => [`t:${value.id[0]}`]
          return { calls, lookup, tags }
        })

        scenario(
          "invalidateTag makes every entry of the tag a miss, in every namespace; other entries stay hits",
          () =>
            Effect.gen(function*() {
              const { calls, lookup, tags } = yield* versioned
              const items = yield* itemsOf(strategy, lookup, { ttl: "5 minutes", tags })
              const others = yield* strategy.make({ namespace: "other", value: Item, lookup, ttl: "5 minutes", tags })
              const plain = yield* strategy.make({ namespace: "plain", value: Item, lookup, ttl: "5 minutes" })
              for (const key of ["a1", "a2", "b1"]) yield* items.get(key)
              yield* others.get("a9")
              yield* plain.get("a1")
              expect(yield* Ref.get(calls)).toBe(5)
              yield* Invalidation.invalidateTag("t:a")
              // the tag's entries load again, in both namespaces; b1 and the untagged entry are hits
              expect((yield* items.get("a1")).n).toBe(6)
              expect((yield* items.get("a2")).n).toBe(7)
              expect((yield* others.get("a9")).n).toBe(8)
              expect((yield* items.get("b1")).n).toBe(3)
              expect((yield* plain.get("a1")).n).toBe(5)
              // reloaded entries carry the new version: hits again
              yield* settle
              expect((yield* items.get("a1")).n).toBe(6)
              expect(yield* Ref.get(calls)).toBe(8)
            })
        )

        scenario(
          "hard vs soft: after expireTag stale-while-revalidate serves the old value once; after invalidateTag never",
          () =>
            Effect.gen(function*() {
              const { calls, lookup, tags } = yield* versioned
              const cache = yield* itemsOf(strategy, lookup, {
                ttl: "5 minutes",
                staleWhileRevalidate: "1 minute",
                tags
              })
              expect((yield* cache.get("a")).n).toBe(1)
              yield* Invalidation.expireTag("t:a")
              // stale: the old value at once, one refresh in the background
              expect((yield* cache.get("a")).n).toBe(1)
              yield* settleUntil(Effect.map(Ref.get(calls), (n) => n === 2))
              yield* settleUntil(Effect.map(cache.get("a"), (r) => r.n === 2))
              yield* Invalidation.invalidateTag("t:a")
              // hard: a miss, the caller waits for the new value
              expect((yield* cache.get("a")).n).toBe(3)
              expect(yield* Ref.get(calls)).toBe(3)
            })
        )

        scenario(
          "deleting or evicting a tag's version after an invalidation brings back 0 entries",
          (store) =>
            Effect.gen(function*() {
              const { calls, lookup, tags } = yield* versioned
              const cache = yield* itemsOf(strategy, lookup, { ttl: "1 hour", tags })
              const keys = Array.from({ length: 100 }, (_, i) => `a${i}`)
              for (const key of keys) yield* cache.get(key)
              yield* settle
              yield* Invalidation.invalidateTag("t:a")
              // the new versions are lost (as an eviction would lose them), and this process's copy
              // of them is past its window: the entries written before the invalidation stay misses
              yield* store.deleteMany([":th:t:a", ":ts:t:a"])
              yield* TestClock.adjust("2 seconds")
              let revived = 0
              for (const key of keys) {
                if ((yield* cache.get(key)).n <= 100) revived++
              }
              expect(revived).toBe(0)
              expect(yield* Ref.get(calls)).toBe(200)
              // and once more, with no invalidation at all: a lost version can only make entries miss
              yield* settle
              yield* store.deleteMany([":th:t:a", ":ts:t:a"])
              yield* TestClock.adjust("2 seconds")
              for (const key of keys) {
                if ((yield* cache.get(key)).n <= 200) revived++
              }
              expect(revived).toBe(0)
            })
        )

        scenario(
          "an invalidation by another process is seen within versionWindow, and not later",
          (store) =>
            Effect.gen(function*() {
              const { calls, lookup, tags } = yield* versioned
              const cache = yield* itemsOf(strategy, lookup, { ttl: "1 hour", tags, versionWindow: "5 seconds" })
              yield* cache.get("a")
              yield* settle
              // another process gives the tag a new version, straight in the store
              yield* store.set(":th:t:a", new TextEncoder().encode("another-process"))
              yield* TestClock.adjust("4 seconds")
              // this process's copy of the version is 4 s old: still trusted, a hit
              expect((yield* cache.get("a")).n).toBe(1)
              yield* TestClock.adjust("1 second")
              expect((yield* cache.get("a")).n).toBe(2)
              expect(yield* Ref.get(calls)).toBe(2)
            })
        )

        scenario(
          "per-key: expire makes the entry stale (served once more, refreshed), invalidate a miss",
          () =>
            Effect.gen(function*() {
              const { lookup } = yield* versioned
              const cache = yield* itemsOf(strategy, lookup, { ttl: "5 minutes", staleWhileRevalidate: "1 minute" })
              yield* cache.get("k")
              yield* settle
              expect(yield* cache.expire!("k")).toBe(true)
              expect((yield* cache.get("k")).n).toBe(1)
              yield* settleUntil(Effect.map(cache.get("k"), (r) => r.n === 2))
              expect(yield* cache.invalidate!("k")).toBe(true)
              expect((yield* cache.get("k")).n).toBe(3)
              // nothing there: expire says so
              expect(yield* cache.expire!("none")).toBe(false)
            })
        )

        if (strategy.name === "ReadThrough") {
          scenario(
            "getMany: entries of an invalidated tag load again in the batch; the others are hits",
            () =>
              Effect.gen(function*() {
                const { calls, lookup, tags } = yield* versioned
                const cache = yield* itemsOf(strategy, lookup, { ttl: "5 minutes", tags })
                yield* cache.getMany!(["a1", "b1", "a2"])
                yield* settle
                yield* Invalidation.invalidateTag("t:a")
                const found = yield* cache.getMany!(["a1", "b1", "a2"])
                expect(found.map((o) => Option.getOrThrow(o).n).sort()).toEqual([2, 4, 5])
                expect(yield* Ref.get(calls)).toBe(5)
              })
          )
        }

        scenario(
          "bumpVersion makes every entry of a versioned namespace a miss, and no other namespace's",
          () =>
            Effect.gen(function*() {
              const { lookup } = yield* versioned
              const items = yield* itemsOf(strategy, lookup, { ttl: "1 hour", versioned: true })
              const others = yield* strategy.make({
                namespace: "other",
                value: Item,
                lookup,
                ttl: "1 hour",
                versioned: true
              })
              yield* items.get("a")
              yield* items.get("b")
              yield* others.get("a")
              yield* settle
              yield* Invalidation.bumpVersion("item")
              expect((yield* items.get("a")).n).toBe(4)
              expect((yield* items.get("b")).n).toBe(5)
              expect((yield* others.get("a")).n).toBe(3)
              yield* settle
              expect((yield* items.get("a")).n).toBe(4)
              if (strategy.name === "ReadThrough") {
                yield* Invalidation.bumpVersion("item")
                const found = yield* items.getMany!(["a", "b"])
                expect(found.map((o) => Option.getOrThrow(o).n)).toEqual([6, 7])
              }
            })
        )

        scenario(
          "deleting or evicting a namespace's version after a bump brings back 0 entries",
          (store) =>
            Effect.gen(function*() {
              const { calls, lookup } = yield* versioned
              const cache = yield* itemsOf(strategy, lookup, { ttl: "1 hour", versioned: true })
              const keys = Array.from({ length: 100 }, (_, i) => `k${i}`)
              for (const key of keys) yield* cache.get(key)
              yield* settle
              yield* Invalidation.bumpVersion("item")
              // the new version is lost, and this process's copy of it is past its window
              yield* store.delete(":nv:item")
              yield* TestClock.adjust("2 seconds")
              let revived = 0
              for (const key of keys) {
                if ((yield* cache.get(key)).n <= 100) revived++
              }
              expect(revived).toBe(0)
              expect(yield* Ref.get(calls)).toBe(200)
            })
        )

        scenario(
          "a bump by another process is seen within versionWindow, and not later",
          (store) =>
            Effect.gen(function*() {
              const { calls, lookup } = yield* versioned
              const cache = yield* itemsOf(strategy, lookup, {
                ttl: "1 hour",
                versioned: true,
                versionWindow: "5 seconds"
              })
              yield* cache.get("a")
              yield* settle
              yield* store.set(":nv:item", new TextEncoder().encode("another-process"))
              yield* TestClock.adjust("4 seconds")
              expect((yield* cache.get("a")).n).toBe(1)
              yield* TestClock.adjust("1 second")
              expect((yield* cache.get("a")).n).toBe(2)
              expect(yield* Ref.get(calls)).toBe(2)
            })
        )

        if (strategy.name !== "Cache.cached") {
          scenario(
            "clear of a versioned namespace removes its entries of every version, and nothing else",
            (store) =>
              Effect.gen(function*() {
                const { lookup } = yield* versioned
                const cache = yield* itemsOf(strategy, lookup, { ttl: "1 hour", versioned: true })
                const plain = yield* itemsOf(strategy, lookup, { ttl: "1 hour" })
                yield* cache.get("a")
                yield* settle
                yield* Invalidation.bumpVersion("item")
                yield* cache.get("a")
                yield* plain.get("a")
                yield* settle
                expect(yield* cache.clear!).toBe(2)
                // the unversioned handle of the same name keeps its entry: its keys are apart
                expect((yield* store.keys("item:*")).length).toBe(1)
              })
          )
        }

        if (strategy.name !== "Cache.cached") {
          scenario(
            "invalidatePattern removes the matching entries of its namespace, and never another's",
            (store) =>
              Effect.gen(function*() {
                const { lookup } = yield* versioned
                const make = (namespace: string) => strategy.make({ namespace, value: Item, lookup, ttl: "1 hour" })
                const items = yield* make("item")
                const near = [yield* make("item:user"), yield* make("ite"), yield* make("items"), yield* make("*")]
                for (const key of ["user:1", "user:2", "team:1"]) yield* items.get(key)
                for (const cache of near) yield* cache.get("user:1")
                yield* settle
                expect(yield* items.invalidatePattern!("user:*")).toBe(2)
                expect(yield* items.invalidatePattern!("*")).toBe(1)
                // "*" of the namespace "*" is its own entries only
                expect(yield* near[3]!.invalidatePattern!("*")).toBe(1)
                expect((yield* store.keys("*")).filter((k) => !k.startsWith(":")).sort()).toEqual([
                  "ite:user:1",
                  "item\\:user:user:1",
                  "items:user:1"
                ])
              })
          )

          scenario(
            "invalidatePattern: *, ?, [, ] and \\ in escaped input match only literally",
            () =>
              Effect.gen(function*() {
                const { lookup } = yield* versioned
                const cache = yield* itemsOf(strategy, lookup, { ttl: "1 hour" })
                const keys = ["a*b", "axb", "a?b", "a[b]", "ab]", "a\\b", "a\\\\b", "a*", "a"]
                for (const special of ["a*b", "a?b", "a[b]", "a\\b", "a*"]) {
                  for (const key of keys) yield* cache.get(key)
                  yield* settle
                  expect(yield* cache.invalidatePattern!(Invalidation.escapePattern(special)), special).toBe(1)
                  // every other key is still there: a hit, no load
                  const before = yield* cache.stats
                  for (const key of keys.filter((k) => k !== special)) yield* cache.get(key)
                  const after = yield* cache.stats
                  expect(after.loads - before.loads, special).toBe(0)
                }
              })
          )

          scenario(
            "invalidatePattern of a versioned namespace removes the current version's matching entries",
            () =>
              Effect.gen(function*() {
                const { calls, lookup } = yield* versioned
                const cache = yield* itemsOf(strategy, lookup, { ttl: "1 hour", versioned: true })
                yield* cache.get("u1")
                yield* cache.get("t1")
                yield* settle
                expect(yield* cache.invalidatePattern!("u*")).toBe(1)
                expect((yield* cache.get("u1")).n).toBe(3)
                expect((yield* cache.get("t1")).n).toBe(2)
                expect(yield* Ref.get(calls)).toBe(3)
              })
          )
        }

        // 10,000 keys in process; 1,000 over the real Redis, where each key costs round trips
        const massExpiry = path.name.includes("redis") ? 1_000 : 10_000
        scenario(
          `${
            massExpiry.toLocaleString("en")
          } keys going stale at once never run more refreshes at a time than refreshConcurrency`,
          () =>
            Effect.gen(function*() {
              const keys = Array.from({ length: massExpiry }, (_, i) => `k${i}`)
              const refreshing = yield* Ref.make(false)
              const running = yield* Ref.make(0)
              const peak = yield* Ref.make(0)
              const refreshed = yield* Ref.make(0)
              const gate = yield* Deferred.make<void>()
              const cache = yield* strategy.make({
                namespace: "item",
                value: Item,
                lookup: (id: string) =>
                  Effect.gen(function*() {
                    if (!(yield* Ref.get(refreshing))) return item(id, 0)
                    const now = yield* Ref.updateAndGet(running, (n) => n + 1)
                    yield* Ref.update(peak, (p) => Math.max(p, now))
                    yield* Deferred.await(gate)
                    yield* Ref.update(running, (n) => n - 1)
                    yield* Ref.update(refreshed, (n) => n + 1)
                    return item(id, 1)
                  }),
                ttl: "1 minute",
                staleWhileRevalidate: "10 minutes",
                refreshConcurrency: 8
              })
              yield* Effect.forEach(keys, cache.get, { concurrency: 64, discard: true })
              yield* Ref.set(refreshing, true)
              yield* TestClock.adjust("2 minutes")
              const stale = yield* Effect.forEach(keys, cache.get, { concurrency: 64 })
              expect(stale.every((r) => r.n === 0)).toBe(true)
              // the bound is reached and held: 8 loads run, the other refreshes wait for a permit
              yield* settleUntil(Effect.map(Ref.get(running), (n) => n >= 8))
              yield* settle
              expect(yield* Ref.get(running)).toBe(8)
              yield* Deferred.succeed(gate, undefined)
              yield* settleUntil(Effect.map(Ref.get(refreshed), (n) => n === keys.length))
              expect(yield* Ref.get(peak)).toBe(8)
              yield* settle
              const fresh = yield* Effect.forEach(keys, cache.get, { concurrency: 64 })
              expect(fresh.every((r) => r.n === 1)).toBe(true)
            })
        )

        scenario(
          "a failing refresh keeps the stale value: logged and counted, never raised",
          () =>
            Effect.gen(function*() {
              const calls = yield* Ref.make(0)
              const { layer, warnings } = capturingLogger()
              const cache = yield* strategy.make({
                namespace: "item",
                value: Item,
                lookup: (id: string) =>
                  Effect.flatMap(
                    Ref.updateAndGet(calls, (n) => n + 1),
                    (n) => n === 1 ? Effect.succeed(item(id, 1)) : Effect.fail(new NotFound({ id }))
                  ),
                ttl: "1 minute",
                staleWhileRevalidate: "10 minutes"
              })
              yield* cache.get("k")
              yield* TestClock.adjust("2 minutes")
              const stale = yield* cache.get("k").pipe(Effect.provide(layer))
              expect(stale.n).toBe(1)
              yield* settleUntil(Effect.map(cache.stats, (s) => s.refreshFailures === 1))
              expect(yield* Ref.get(calls)).toBe(2)
              expect(warnings.some((w) => w.includes("background refresh failed"))).toBe(true)
              // the entry is untouched: still served stale, and the next read tries again
              expect((yield* cache.get("k")).n).toBe(1)
              yield* settleUntil(Effect.map(cache.stats, (s) => s.refreshFailures === 2))
              expect(yield* Ref.get(calls)).toBe(3)
            })
        )

        // Cache.cached has no scope of its own: its refreshes belong to the store's (tested below)
        if (strategy.name !== "Cache.cached") {
          scenario(
            "closing the cache's scope interrupts its refreshes, running and queued",
            () =>
              Effect.gen(function*() {
                const scope = yield* Scope.make()
                const store = yield* Scope.extend(path.store, scope)
                const calls = yield* Ref.make(0)
                const started = yield* Deferred.make<void>()
                const interrupted = yield* Deferred.make<void>()
                const cache = yield* strategy.make({
                  namespace: "item",
                  value: Item,
                  lookup: (id: string) =>
                    Effect.flatMap(
                      Ref.updateAndGet(calls, (n) => n + 1),
                      (n) =>
                        n <= 2 ? Effect.succeed(item(id)) : Deferred.succeed(started, undefined).pipe(
                          Effect.zipRight(Effect.never),
                          Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined)),
                          Effect.as(item(id))
                        )
                    ),
                  ttl: "1 minute",
                  staleWhileRevalidate: "10 minutes",
                  refreshConcurrency: 1
                }).pipe(Scope.extend(scope), Effect.provideService(CacheStore.CacheStore, store))
                yield* cache.get("a")
                yield* cache.get("b")
                yield* TestClock.adjust("2 minutes")
                yield* cache.get("a")
                yield* cache.get("b")
                yield* Deferred.await(started)
                yield* Scope.close(scope, Exit.void)
                yield* Deferred.await(interrupted)
                yield* settle
                // the refresh of b, queued behind a's, never ran
                expect(yield* Ref.get(calls)).toBe(3)
              })
          )
        }

        /** A lookup that counts its calls and fails with NotFound while `failing` holds. */
        const switchable = Effect.gen(function*() {
          const calls = yield* Ref.make(0)
          const failing = yield* Ref.make(false)
          const lookup = (id: string) =>
            Effect.flatMap(Ref.updateAndGet(calls, (n) => n + 1), (n) =>
              Effect.flatMap(
                Ref.get(failing),
                (fail): Effect.Effect<Item, NotFound> =>
                  fail ? Effect.fail(new NotFound({ id })) : Effect.succeed(item(id, n))
              ))
          return { calls, failing, lookup }
        })

        scenario(
          "fail-safe: a failing loader is answered with the value kept past its expiry, then throttled",
          () =>
            Effect.gen(function*() {
              const { calls, failing, lookup } = yield* switchable
              const { layer, warnings } = capturingLogger()
              const cache = yield* itemsOf(strategy, lookup, {
                ttl: "1 minute",
                failSafe: { maxStale: "1 hour", throttle: "30 seconds" }
              })
              expect((yield* cache.get("k")).n).toBe(1)
              yield* TestClock.adjust("2 minutes")
              yield* Ref.set(failing, true)
              // expired, the loader fails: the kept value answers, the error is logged and counted
              expect((yield* Effect.provide(cache.get("k"), layer)).n).toBe(1)
              expect(yield* Ref.get(calls)).toBe(2)
              expect((yield* cache.stats).failSafeServes).toBe(1)
              expect(warnings.some((w) => w.includes("failSafe kept"))).toBe(true)
              yield* settle
              // throttled: served for 30 seconds without trying the loader
              expect((yield* cache.get("k")).n).toBe(1)
              yield* TestClock.adjust("29 seconds")
              expect((yield* cache.get("k")).n).toBe(1)
              expect(yield* Ref.get(calls)).toBe(2)
              yield* TestClock.adjust("2 seconds")
              expect((yield* cache.get("k")).n).toBe(1)
              expect(yield* Ref.get(calls)).toBe(3)
              // the loader recovers after the next throttle: a fresh value again
              yield* Ref.set(failing, false)
              yield* settle
              yield* TestClock.adjust("31 seconds")
              expect((yield* cache.get("k")).n).toBe(4)
              expect((yield* cache.stats).failSafeServes).toBe(2)
            })
        )

        scenario(
          "fail-safe never serves a value past maxStale: the loader's error passes through",
          () =>
            Effect.gen(function*() {
              const { failing, lookup } = yield* switchable
              const cache = yield* itemsOf(strategy, lookup, {
                ttl: "1 minute",
                failSafe: { maxStale: "5 minutes", throttle: "30 seconds" }
              })
              yield* cache.get("k")
              yield* Ref.set(failing, true)
              yield* TestClock.adjust("5 minutes")
              expect((yield* cache.get("k")).n).toBe(1)
              // throttled up to the end of maxStale, never past it
              yield* TestClock.adjust("2 minutes")
              expect(yield* Effect.flip(cache.get("k"))).toBeInstanceOf(NotFound)
            })
        )

        scenario("fail-safe never serves a value older than an invalidation", () =>
          Effect.gen(function*() {
            const { failing, lookup } = yield* switchable
            const cache = yield* itemsOf(strategy, lookup, {
              ttl: "1 minute",
              failSafe: { maxStale: "1 hour", throttle: "30 seconds" }
            })
            yield* cache.get("k")
            yield* TestClock.adjust("2 minutes")
            yield* Ref.set(failing, true)
            yield* cache.invalidate!("k")
            expect(yield* Effect.flip(cache.get("k"))).toBeInstanceOf(NotFound)
          }))

        scenario(
          "soft timeout: past soft, a caller holding a kept value gets it while the load goes on and fills the cache",
          () =>
            Effect.gen(function*() {
              const calls = yield* Ref.make(0)
              const cache = yield* strategy.make({
                namespace: "item",
                value: Item,
                lookup: (id: string) =>
                  Effect.flatMap(
                    Ref.updateAndGet(calls, (n) => n + 1),
                    (n) => n === 1 ? Effect.succeed(item(id, n)) : Effect.as(Effect.sleep("10 seconds"), item(id, n))
                  ),
                ttl: "1 minute",
                failSafe: { maxStale: "1 hour", throttle: "30 seconds" },
                timeouts: { soft: "1 second", hard: "1 minute" }
              })
              yield* cache.get("k")
              yield* TestClock.adjust("2 minutes")
              const reader = yield* Effect.fork(cache.get("k"))
              yield* settle
              yield* TestClock.adjust("1 second")
              expect((yield* Fiber.join(reader)).n).toBe(1)
              expect((yield* cache.stats).softTimeouts).toBe(1)
              // the load went on without its caller, and fills the cache when it ends
              yield* TestClock.adjust("9 seconds")
              yield* settleUntil(Effect.map(cache.get("k"), (r) => r.n === 2))
              expect(yield* Ref.get(calls)).toBe(2)
            })
        )

        scenario(
          "hard timeout: past hard, LoadTimeout; a cold key has no kept value to serve",
          () =>
            Effect.gen(function*() {
              const cache = yield* strategy.make({
                namespace: "item",
                value: Item,
                lookup: () => Effect.never,
                ttl: "1 minute",
                failSafe: { maxStale: "1 hour", throttle: "30 seconds" },
                timeouts: { soft: "1 second", hard: "5 seconds" }
              })
              const cold = yield* Effect.fork(Effect.flip(cache.get("cold")))
              yield* settle
              yield* TestClock.adjust("1 second")
              yield* settle
              expect(cold.unsafePoll()).toBe(null)
              yield* TestClock.adjust("4 seconds")
              expect((yield* Fiber.join(cold))._tag).toBe("LoadTimeout")
            })
        )

        scenario(
          "early recompute: a fresh read near expiry recomputes in the background exactly when now − δ·β·ln(u) ≥ expiry",
          () =>
            Effect.gen(function*() {
              const calls = yield* Ref.make(0)
              const beta = 1
              const cache = yield* strategy.make({
                namespace: "item",
                value: Item,
                // every load takes 10 seconds on the TestClock: δ = 10,000 ms
                lookup: (id: string) =>
                  Effect.flatMap(Ref.updateAndGet(calls, (n) => n + 1), (n) =>
                    Effect.as(Effect.sleep("10 seconds"), item(id, n))),
                ttl: "1 minute",
                earlyRecompute: { beta }
              })
              const first = yield* Effect.fork(cache.get("k"))
              yield* settle
              yield* TestClock.adjust("10 seconds")
              expect((yield* Fiber.join(first)).n).toBe(1)
              const expiry = 70_000
              const delta = 10_000
              // each read draws u = 1 − next; the decision must equal the formula for that u
              const cases: ReadonlyArray<readonly [advanceMillis: number, next: number]> = [
                [0, 0.01], // τ = 60 s, u = 0.99: −ln u = 0.01 < τ/δ = 6
                [40_000, 0.5], // τ = 20 s, u = 0.5: 0.69 < 2
                [0, 0.8], // τ = 20 s, u = 0.2: 1.61 < 2
                [0, 0.9] // τ = 20 s, u = 0.1: 2.30 ≥ 2: recompute
              ]
              for (const [advance, next] of cases) {
                yield* TestClock.adjust(advance)
                const now = yield* TestClock.currentTimeMillis
                const before = yield* Ref.get(calls)
                const read = yield* Effect.withRandom(cache.get("k"), Random.fixed([next]))
                yield* settle
                const recomputed = (yield* Ref.get(calls)) > before
                expect(read.n, "a recompute serves the fresh value").toBe(1)
                expect(recomputed, `at ${now} with u = ${1 - next}`).toBe(
                  now - delta * beta * Math.log(1 - next) >= expiry
                )
              }
              expect(yield* Ref.get(calls)).toBe(2)
              // the recompute ends and fills the cache before the entry expires
              yield* TestClock.adjust("10 seconds")
              yield* settleUntil(Effect.map(cache.get("k"), (r) =>
                r.n === 2))
            })
        )

        scenario(
          "early recompute with single flight: 1,000 reads near expiry start one recompute per cycle",
          () =>
            Effect.gen(function*() {
              const calls = yield* Ref.make(0)
              const gate = yield* Deferred.make<void>()
              const cache = yield* strategy.make({
                namespace: "item",
                value: Item,
                lookup: (id: string) =>
                  Effect.flatMap(
                    Ref.updateAndGet(calls, (n) => n + 1),
                    (n) => Effect.as(n === 1 ? Effect.sleep("10 seconds") : Deferred.await(gate), item(id, n))
                  ),
                ttl: "1 minute",
                earlyRecompute: { beta: 1 }
              })
              const first = yield* Effect.fork(cache.get("k"))
              yield* settle
              yield* TestClock.adjust("10 seconds")
              yield* Fiber.join(first)
              yield* TestClock.adjust("59 seconds")
              // every read draws a u that fires (seeded), and all of them share one recompute
              const reads = yield* Effect.forEach(
                Array.from({ length: 1000 }),
                () => cache.get("k"),
                { concurrency: "unbounded" }
              ).pipe(Effect.withRandom(Random.make("early-recompute")))
              expect(reads.every((r) => r.n === 1)).toBe(true)
              yield* settle
              expect(yield* Ref.get(calls)).toBe(2)
              yield* Deferred.succeed(gate, undefined)
              yield* settleUntil(Effect.map(cache.get("k"), (r) => r.n === 2))
              expect(yield* Ref.get(calls)).toBe(2)
            })
        )

        scenario(
          "an invalidate during a load leaves the key invalidated: the load's value is not stored",
          () =>
            Effect.gen(function*() {
              const price = yield* Ref.make(10)
              const gate = yield* Deferred.make<void>()
              const cache = yield* strategy.make({
                namespace: "price",
                value: Item,
                lookup: (id: string) =>
                  Ref.get(price).pipe(Effect.tap(() => Deferred.await(gate)), Effect.map((n) => item(id, n))),
                ttl: "5 minutes"
              })
              const first = yield* Effect.fork(cache.get("p1"))
              yield* settle
              // the price changes while the load that read 10 is still running
              yield* Ref.set(price, 20)
              expect(yield* cache.invalidate!("p1")).toBe(false)
              yield* Deferred.succeed(gate, undefined)
              expect((yield* Fiber.join(first)).n).toBe(10)
              yield* settle
              expect((yield* cache.get("p1")).n).toBe(20)
            })
        )

        scenario(
          "a caller nobody interrupted never fails with an interruption (it never joins an abandoned load)",
          () =>
            Effect.gen(function*() {
              const { calls } = yield* counting
              const cache = yield* strategy.make({
                namespace: "item",
                value: Item,
                lookup: (id: string) =>
                  Ref.update(calls, (n) => n + 1).pipe(Effect.zipRight(Effect.sleep("50 millis")), Effect.as(item(id))),
                ttl: "5 minutes"
              })
              const fiber = yield* Effect.fork(
                cache.get("k").pipe(Effect.timeout("20 millis"), Effect.orElse(() => cache.get("k")), Effect.exit)
              )
              yield* settle
              yield* TestClock.adjust("20 millis")
              yield* settle
              yield* TestClock.adjust("50 millis")
              const exit = yield* Fiber.join(fiber)
              expect(exit).toEqual(Exit.succeed(item("k")))
              expect(yield* Ref.get(calls)).toBe(2)
            })
        )

        scenario(
          "namespaces stay disjoint whatever the key: user + session:t is not user:session + t",
          () =>
            Effect.gen(function*() {
              const user = yield* strategy.make({
                namespace: "user",
                value: Item,
                lookup: (id: string) => Effect.succeed(item(`user/${id}`)),
                ttl: "5 minutes"
              })
              const session = yield* strategy.make({
                namespace: "user:session",
                value: Item,
                lookup: (id: string) => Effect.succeed(item(`session/${id}`)),
                ttl: "5 minutes"
              })
              expect((yield* user.get("session:tok-123")).id).toBe("user/session:tok-123")
              expect((yield* session.get("tok-123")).id).toBe("session/tok-123")
              expect((yield* user.get("session:tok-123")).id).toBe("user/session:tok-123")
            })
        )

        scenario(
          "a value comes back as its Schema reads it on every store: undeclared properties dropped",
          () =>
            Effect.gen(function*() {
              const loaded = { id: "k", n: 1, secret: "not declared" }
              const cache = yield* strategy.make({
                namespace: "strict",
                value: Item,
                lookup: () => Effect.succeed(loaded),
                ttl: "5 minutes"
              })
              yield* cache.get("k")
              // the loader's object changed afterwards: the cache keeps what it stored
              loaded.n = 2
              expect(yield* cache.get("k")).toStrictEqual({ id: "k", n: 1 })
            })
        )

        scenario(
          "values come back equal: undefined, NaN, ±Infinity, -0, void, a Date under Unknown, bigint",
          () =>
            Effect.gen(function*() {
              const cases: ReadonlyArray<readonly [string, Schema.Schema<any, any>, unknown]> = [
                ["undefined", Schema.Undefined, undefined],
                ["undefined-or", Schema.UndefinedOr(Schema.Number), undefined],
                ["void", Schema.Void, undefined],
                ["nan", Schema.Number, NaN],
                ["inf", Schema.Number, Infinity],
                ["-inf", Schema.Number, -Infinity],
                ["-zero", Schema.Number, -0],
                ["date", Schema.Unknown, new Date(Date.UTC(2024, 1, 29))],
                ["nested", Schema.Unknown, { a: [1, undefined, -0], b: { c: undefined, d: NaN } }],
                ["bigint", Schema.BigIntFromSelf, 12345678901234567890n]
              ]
              for (const [name, schema, value] of cases) {
                const calls = yield* Ref.make(0)
                const cache = yield* strategy.make({
                  namespace: `v-${name}`,
                  value: schema,
                  lookup: () => Effect.as(Ref.update(calls, (n) => n + 1), value),
                  ttl: "5 minutes"
                })
                const first = yield* cache.get("k")
                const second = yield* cache.get("k")
                expect(first, name).toStrictEqual(value)
                expect(second, name).toStrictEqual(value)
                if (typeof value === "number") expect(Object.is(second, value), name).toBe(true)
                expect(yield* Ref.get(calls), `${name}: the second read is a hit`).toBe(1)
              }
            })
        )

        {
          scenario("invalidate removes the entry; the next get loads again", () =>
            Effect.gen(function*() {
              const { calls, lookup } = yield* counting
              const cache = yield* itemsOf(strategy, lookup)
              yield* cache.get("a")
              expect(yield* cache.invalidate!("a")).toBe(true)
              expect(yield* cache.invalidate!("a")).toBe(false)
              yield* cache.get("a")
              expect(yield* Ref.get(calls)).toBe(2)
            }))
        }

        if (strategy.name !== "Cache.cached") {
          scenario(
            "clear removes this namespace's entries and no other's, whatever their names",
            () =>
              Effect.gen(function*() {
                const { calls, lookup } = yield* counting
                const make = (namespace: string) => strategy.make({ namespace, value: Item, lookup, ttl: "5 minutes" })
                const user = yield* make("user")
                const session = yield* make("user:session")
                const globby = yield* make("us*r")
                const reads = Effect.all([
                  user.get("x"),
                  user.get("session:y"),
                  session.get("z"),
                  globby.get("w")
                ])
                yield* reads
                expect(yield* Ref.get(calls)).toBe(4)
                expect(yield* user.clear!).toBe(2)
                yield* settle
                yield* reads
                // only the cleared namespace loads again
                expect(yield* Ref.get(calls)).toBe(6)
              })
          )
        }

        if (strategy.name === "ReadThrough") {
          scenario(
            "getMany reads the store once and loads all misses in ONE lookupMany call",
            () =>
              Effect.gen(function*() {
                const batches = yield* Ref.make<Array<ReadonlyArray<string>>>([])
                const singles = yield* Ref.make(0)
                const cache = yield* strategy.make({
                  namespace: "item",
                  value: Item,
                  lookup: (id: string) => Effect.as(Ref.update(singles, (n) => n + 1), item(id)),
                  lookupMany: (ids) =>
                    Effect.as(Ref.update(batches, (b) => [...b, ids]), ids.map((id) => [id, item(id)] as const)),
                  ttl: "5 minutes"
                })
                yield* cache.get("b")
                const result = yield* cache.getMany!(["a", "b", "c", "a", "d"])
                expect(result.map((r) => Option.getOrThrow(r).id)).toEqual(["a", "b", "c", "a", "d"])
                expect(yield* Ref.get(batches)).toEqual([["a", "c", "d"]])
                expect(yield* Ref.get(singles)).toBe(1)
                const again = yield* cache.getMany!(["d", "c", "b", "a"])
                expect(again.map((r) => Option.getOrThrow(r).id)).toEqual(["d", "c", "b", "a"])
                expect((yield* Ref.get(batches)).length).toBe(1)
              })
          )

          scenario(
            "fail-safe answers a failed lookupMany with each key's kept value; keys without one fail",
            () =>
              Effect.gen(function*() {
                const failing = yield* Ref.make(false)
                const cache = yield* strategy.make({
                  namespace: "item",
                  value: Item,
                  lookup: (id: string) => Effect.succeed(item(id)),
                  lookupMany: (ids) =>
                    Effect.flatMap(
                      Ref.get(failing),
                      (fail) =>
                        fail
                          ? Effect.fail(new NotFound({ id: ids.join(",") }))
                          : Effect.succeed(ids.map((id) => [id, item(id, 1)] as const))
                    ),
                  ttl: "1 minute",
                  failSafe: { maxStale: "1 hour", throttle: "30 seconds" }
                })
                yield* cache.getMany!(["a", "b"])
                yield* TestClock.adjust("2 minutes")
                yield* Ref.set(failing, true)
                expect(yield* cache.getMany!(["a", "b"])).toEqual([
                  Option.some(item("a", 1)),
                  Option.some(item("b", 1))
                ])
                expect((yield* cache.stats).failSafeServes).toBe(2)
                expect(yield* Effect.flip(cache.getMany!(["a", "c"]))).toBeInstanceOf(NotFound)
              })
          )

          scenario("soft and hard timeouts apply to lookupMany as to lookup", () =>
            Effect.gen(function*() {
              const batches = yield* Ref.make(0)
              const cache = yield* strategy.make({
                namespace: "item",
                value: Item,
                lookup: () => Effect.never,
                lookupMany: (ids) =>
                  Effect.flatMap(
                    Ref.updateAndGet(batches, (n) => n + 1),
                    (n) =>
                      Effect.as(
                        n === 1 ? Effect.void : Effect.sleep("10 seconds"),
                        ids.map((id) => [id, item(id, n)] as const)
                      )
                  ),
                ttl: "1 minute",
                failSafe: { maxStale: "1 hour", throttle: "30 seconds" },
                timeouts: { soft: "1 second", hard: "1 minute" }
              })
              yield* cache.getMany!(["a", "b"])
              yield* TestClock.adjust("2 minutes")
              const soft = yield* Effect.fork(cache.getMany!(["a", "b"]))
              yield* settle
              yield* TestClock.adjust("1 second")
              expect(yield* Fiber.join(soft)).toEqual([Option.some(item("a", 1)), Option.some(item("b", 1))])
              yield* TestClock.adjust("9 seconds")
              yield* settleUntil(
                Effect.map(cache.getMany!(["a", "b"]), (r) => r.every((o) => Option.getOrThrow(o).n === 2))
              )
              expect(yield* Ref.get(batches)).toBe(2)
            }))

          scenario("loadTimeout bounds lookupMany as it bounds lookup", () =>
            Effect.gen(function*() {
              const cache = yield* strategy.make({
                namespace: "item",
                value: Item,
                lookup: () => Effect.never,
                lookupMany: () => Effect.never,
                ttl: "5 minutes",
                loadTimeout: "1 second"
              })
              const many = yield* Effect.fork(Effect.flip(cache.getMany!(["a", "b"])))
              const one = yield* Effect.fork(Effect.flip(cache.get("c")))
              yield* settle
              yield* TestClock.adjust("1 second")
              expect((yield* Fiber.join(many))._tag).toBe("LoadTimeout")
              expect((yield* Fiber.join(one))._tag).toBe("LoadTimeout")
            }))

          scenario(
            "a lookupMany answering in another order caches every value under its own key",
            () =>
              Effect.gen(function*() {
                const { calls, lookup } = yield* counting
                const cache = yield* itemsOf(strategy, lookup, { // as SQL's IN (…) does: rows in any order
                  lookupMany: (ids) => Effect.succeed([...ids].reverse().map((id) => [id, item(id)] as const)),
                  ttl: "5 minutes"
                })
                const got = yield* cache.getMany!(["a", "b", "c"])
                expect(got).toEqual([Option.some(item("a")), Option.some(item("b")), Option.some(item("c"))])
                for (const id of ["a", "b", "c"]) expect(yield* cache.get(id)).toEqual(item(id))
                expect(yield* Ref.get(calls)).toBe(0)
              })
          )

          scenario(
            "a key lookupMany leaves out is None; a key it was not asked for fails typed",
            () =>
              Effect.gen(function*() {
                const cache = yield* strategy.make({
                  namespace: "item",
                  value: Item,
                  lookup: (id: string) => Effect.succeed(item(id)),
                  lookupMany: (ids) =>
                    Effect.succeed(
                      ids.includes("rogue")
                        ? [["intruder", item("intruder")] as const]
                        : ids.filter((id) => id !== "unknown").map((id) => [id, item(id)] as const)
                    ),
                  ttl: "5 minutes"
                })
                expect(yield* cache.getMany!(["a", "unknown", "b"])).toEqual([
                  Option.some(item("a")),
                  Option.none(),
                  Option.some(item("b"))
                ])
                const error = yield* Effect.flip(cache.getMany!(["rogue"]))
                expect(error._tag).toBe("BatchMismatch")
              })
          )

          scenario("refresh reloads now and stores the result", () =>
            Effect.gen(function*() {
              const { calls, lookup } = yield* counting
              const cache = yield* itemsOf(strategy, lookup)
              yield* cache.get("a")
              yield* cache.refresh!("a")
              expect(yield* Ref.get(calls)).toBe(2)
              yield* cache.get("a")
              expect(yield* Ref.get(calls)).toBe(2)
            }))
        }

        // The distributed lock (`lock`, an option every strategy takes): two handles over two views
        // of one store stand for two processes, each with its own single flight, so only the
        // key's lease keeps the second from loading too. Waiters poll on the TestClock.
        describe("lock across handles", () => {
          /**
           * Another process over the same store: the same entries and leases, none of this process's
           * state (its own single flights, key order and versions, and Cache.cached's own pipelines).
           */
          const otherProcess = (store: CacheStore.Service): CacheStore.Service => ({ ...store })

          /** A handle made over another process's view of the store. */
          const over = <H>(
            view: CacheStore.Service,
            make: Effect.Effect<H, never, CacheStore.CacheStore | Scope.Scope>
          ) => Effect.provideService(make, CacheStore.CacheStore, view)

          /** The lock's counters of handles' stats, summed, in one line. */
          const lockStats = (...handles: ReadonlyArray<{ readonly stats: Effect.Effect<CacheMetrics.Stats> }>) =>
            Effect.map(Effect.forEach(handles, (h) => h.stats), (all) => {
              const sum = (f: (s: CacheMetrics.Stats) => number) => all.reduce((n, s) => n + f(s), 0)
              return `acquired ${sum((s) => s.locksAcquired)}, waits ${sum((s) => s.lockWaits)}, timeouts ${
                sum((s) => s.lockTimeouts)
              }, takeovers ${sum((s) => s.lockTakeovers)}`
            })

          const isDone = (fibers: ReadonlyArray<Fiber.RuntimeFiber<unknown, unknown>>) =>
            Effect.sync(() => fibers.every((fiber) => fiber.unsafePoll() !== null))

          /**
           * Lets fibers and the store answer, without moving the clock, until `done` holds, at most
           * 200 rounds: what waits on the clock (a lease's poll) never gets there.
           */
          const within = (done: Effect.Effect<boolean>, what: string) =>
            Effect.gen(function*() {
              for (let i = 0; i < 200 && !(yield* done); i++) yield* settle
              expect(yield* done, what).toBe(true)
            })

          /** A step of the TestClock: the longest pause between two polls of a lease's waiter. */
          const STEP_MILLIS = 250

          /** Moves the TestClock on by `millis`, a step at a time, letting fibers and the store answer at each. */
          const advance = (millis: number) =>
            Effect.gen(function*() {
              for (let t = 0; t < millis; t += STEP_MILLIS) {
                yield* TestClock.adjust(Math.min(STEP_MILLIS, millis - t))
                yield* settle
              }
            })

          /** Moves the TestClock on, a step at a time, until `done` holds: at most a minute of it. */
          const advanceUntil = (done: Effect.Effect<boolean>, what: string) =>
            Effect.gen(function*() {
              for (let t = 0; t < 60_000 && !(yield* done); t += STEP_MILLIS) {
                yield* TestClock.adjust(STEP_MILLIS)
                yield* settle
              }
              expect(yield* done, what).toBe(true)
            })

          for (const locked of [true, false]) {
            scenario(
              locked
                ? "two handles over one store × 100 concurrent cold gets each: the loader runs once"
                : "control, without lock: two handles over one store × 100 concurrent cold gets each load once per handle",
              (store) =>
                Effect.gen(function*() {
                  const { calls, lookup, open } = yield* gated
                  const options = { lock: locked ? { ttl: "1 minute", wait: "1 minute" } as const : undefined }
                  const first = yield* itemsOf(strategy, lookup, options)
                  const second = yield* over(otherProcess(store), itemsOf(strategy, lookup, options))
                  const gets = yield* Effect.forEach(
                    Array.from({ length: 200 }),
                    (_, i) => Effect.fork((i % 2 === 0 ? first : second).get("cold"))
                  )
                  // every get has begun: with the lock one handle holds the key's lease and loads while
                  // the other waits on it; without, each handle's own single flight loads
                  // (the holder reads the key once more after taking the lease, before its loader runs)
                  yield* within(
                    Effect.zipWith(
                      lockStats(first, second),
                      Ref.get(calls),
                      (s, n) => locked ? s === "acquired 1, waits 1, timeouts 0, takeovers 0" && n === 1 : n === 2
                    ),
                    "both handles' loads have begun"
                  )
                  // a slow load: the waiter polls for 5 seconds, and neither loads nor gives up
                  yield* advance(5_000)
                  expect(yield* Ref.get(calls)).toBe(locked ? 1 : 2)
                  expect(yield* isDone(gets), "no get answered before the load ends").toBe(false)
                  yield* open
                  yield* advanceUntil(isDone(gets), "every get answered")
                  const results = yield* Fiber.joinAll(gets)
                  expect(results.length).toBe(200)
                  expect(results.every((r) => r.id === "cold")).toBe(true)
                  expect(yield* Ref.get(calls)).toBe(locked ? 1 : 2)
                  if (locked) {
                    // the waiter was answered by the holder's value: no timeout, no takeover
                    expect(yield* lockStats(first, second)).toBe("acquired 1, waits 1, timeouts 0, takeovers 0")
                    // and the holder released the lease once its value was written
                    const lease = yield* store.lease!.acquire("item:cold", "1 second")
                    expect(Option.isSome(lease)).toBe(true)
                  }
                })
            )
          }

          /**
           * A handle whose loads never end: once it has begun loading a key, it holds the key's
           * lease (its watchdog extends it) until the test ends.
           */
          const stuckHolder = (
            options: Partial<Omit<HandleOptions<Item, typeof Item.Encoded, never>, "lookup" | "value">>
          ) =>
            Effect.gen(function*() {
              const calls = yield* Ref.make(0)
              const holder = yield* itemsOf(strategy, () =>
                Effect.zipRight(Ref.update(calls, (n) => n + 1), Effect.never), options)
              /** Waits until the holder has taken the lease and its loader runs. */
              const loading = within(
                Effect.zipWith(holder.stats, Ref.get(calls), (s, n) =>
                  s.locksAcquired === 1 && n === 1),
                "the holder took the lease and loads"
              )
              return { calls, holder, loading }
            })

          scenario(
            "wait ends while another handle holds the lease and never finishes: onTimeout \"fail\" fails with LockTimeout, no load",
            (store) =>
              Effect.gen(function*() {
                const lock = { ttl: "1 minute", wait: "2 seconds", onTimeout: "fail" } as const
                const stuck = yield* stuckHolder({ lock })
                const { calls, lookup } = yield* counting
                const waiting = yield* over(otherProcess(store), itemsOf(strategy, lookup, { lock }))
                const holder = yield* Effect.fork(stuck.holder.get("k"))
                yield* stuck.loading
                const waiter = yield* Effect.fork(Effect.exit(waiting.get("k")))
                yield* within(Effect.map(waiting.stats, (s) => s.lockWaits === 1), "the other handle waits")
                yield* advance(1_900)
                expect(waiter.unsafePoll(), "still waiting before wait ends").toBeNull()
                yield* advanceUntil(isDone([waiter]), "the wait ended")
                const exit = yield* Fiber.join(waiter)
                expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("LockTimeout")
                expect(yield* Ref.get(calls)).toBe(0)
                expect(holder.unsafePoll(), "the holder still loads").toBeNull()
                expect(yield* Ref.get(stuck.calls)).toBe(1)
                expect(yield* lockStats(waiting)).toBe("acquired 0, waits 1, timeouts 1, takeovers 0")
              })
          )

          scenario(
            "wait ends while another handle holds the lease and never finishes: onTimeout \"load\" loads anyway",
            (store) =>
              Effect.gen(function*() {
                const lock = { ttl: "1 minute", wait: "2 seconds", onTimeout: "load" } as const
                const stuck = yield* stuckHolder({ lock })
                const { calls, lookup } = yield* counting
                const waiting = yield* over(otherProcess(store), itemsOf(strategy, lookup, { lock }))
                yield* Effect.fork(stuck.holder.get("k"))
                yield* stuck.loading
                const waiter = yield* Effect.fork(waiting.get("k"))
                yield* within(Effect.map(waiting.stats, (s) => s.lockWaits === 1), "the other handle waits")
                yield* advance(1_900)
                expect(yield* Ref.get(calls), "no load before wait ends").toBe(0)
                yield* advanceUntil(isDone([waiter]), "the wait ended")
                expect(yield* Fiber.join(waiter)).toEqual(item("k"))
                expect(yield* Ref.get(calls)).toBe(1)
                // loaded without the lease: a timeout, neither a lease of its own nor a takeover
                expect(yield* lockStats(waiting)).toBe("acquired 0, waits 1, timeouts 1, takeovers 0")
              })
          )

          // the kept value answers whatever onTimeout says: never a load anyway, never a LockTimeout
          for (const onTimeout of ["fail", "load"] as const) {
            scenario(
              `wait ends while another handle holds the lease and never finishes: the value failSafe kept is served, no load (onTimeout "${onTimeout}")`,
              (store) =>
                Effect.gen(function*() {
                  const options = {
                    ttl: "1 minute",
                    failSafe: { maxStale: "1 hour", throttle: "30 seconds" },
                    lock: { ttl: "1 minute", wait: "2 seconds", onTimeout }
                  } as const
                  const { calls, lookup } = yield* versioned
                  const waiting = yield* over(otherProcess(store), itemsOf(strategy, lookup, options))
                  expect((yield* waiting.get("k")).n).toBe(1)
                  yield* TestClock.adjust("2 minutes") // expired, kept by failSafe
                  const stuck = yield* stuckHolder(options)
                  yield* Effect.fork(stuck.holder.get("k"))
                  yield* stuck.loading
                  const waiter = yield* Effect.fork(waiting.get("k"))
                  yield* within(Effect.map(waiting.stats, (s) => s.lockWaits === 1), "the other handle waits")
                  yield* advanceUntil(isDone([waiter]), "the wait ended")
                  expect((yield* Fiber.join(waiter)).n).toBe(1)
                  expect(yield* Ref.get(calls)).toBe(1)
                  // the first load took the lease; the wait timed out and the kept value answered it,
                  // not a failed load that fail-safe rescued
                  expect(yield* lockStats(waiting)).toBe("acquired 1, waits 1, timeouts 1, takeovers 0")
                  expect((yield* waiting.stats).failSafeServes).toBe(0)
                })
            )

            scenario(
              `wait ends while another handle holds the lease and never finishes: a stale-while-revalidate refresh keeps the stale value, no load (onTimeout "${onTimeout}")`,
              (store) =>
                Effect.gen(function*() {
                  const options = {
                    ttl: "1 minute",
                    staleWhileRevalidate: "10 minutes",
                    lock: { ttl: "1 minute", wait: "2 seconds", onTimeout }
                  } as const
                  const { calls, lookup } = yield* versioned
                  const waiting = yield* over(otherProcess(store), itemsOf(strategy, lookup, options))
                  expect((yield* waiting.get("k")).n).toBe(1)
                  yield* TestClock.adjust("2 minutes") // stale
                  const stuck = yield* stuckHolder(options)
                  // stale: served at once, and the holder's refresh takes the lease and never ends
                  expect((yield* stuck.holder.get("k")).n).toBe(1)
                  yield* stuck.loading
                  expect((yield* waiting.get("k")).n).toBe(1)
                  yield* within(Effect.map(waiting.stats, (s) => s.lockWaits === 1), "the other handle's refresh waits")
                  yield* advanceUntil(
                    Effect.map(waiting.stats, (s) => s.lockTimeouts === 1),
                    "the refresh's wait ended"
                  )
                  yield* settle
                  // the refresh ended with the stale value it refreshes: no load, no failure
                  expect(yield* Ref.get(calls)).toBe(1)
                  expect((yield* waiting.stats).refreshFailures).toBe(0)
                  expect((yield* waiting.get("k")).n).toBe(1)
                  expect(yield* Ref.get(stuck.calls)).toBe(1)
                })
            )
          }

          scenario(
            "a loader that reads another key through the same cache under the lock does not deadlock",
            () =>
              Effect.gen(function*() {
                const calls = yield* Ref.make<Array<string>>([])
                const self: { cache?: Handle<string, Item, unknown> } = {}
                const lookup = (id: string): Effect.Effect<Item, unknown> =>
                  Effect.zipRight(
                    Ref.update(calls, (c) => [...c, id]),
                    id === "leaf" ?
                      Effect.succeed(item("leaf", 1)) :
                      Effect.map(self.cache!.get("leaf"), (leaf) => item(id, leaf.n + 1))
                  )
                const cache = yield* itemsOf(strategy, lookup, {
                  lock: { ttl: "1 minute", wait: "1 minute", onTimeout: "fail" }
                })
                self.cache = cache
                const root = yield* Effect.fork(cache.get("root"))
                // the clock stands still: a load waiting on a lease (its own, or one shared by both keys) never ends
                yield* within(isDone([root]), "the nested load ended")
                expect(yield* Fiber.join(root)).toEqual(item("root", 2))
                expect(yield* Ref.get(calls)).toEqual(["root", "leaf"])
                expect(yield* lockStats(cache)).toBe("acquired 2, waits 0, timeouts 0, takeovers 0")
                // both written: hits, no load
                expect(yield* cache.get("leaf")).toEqual(item("leaf", 1))
                expect(yield* cache.get("root")).toEqual(item("root", 2))
                expect(yield* Ref.get(calls)).toEqual(["root", "leaf"])
              })
          )

          for (const verb of strategy.name === "ReadThrough" ? ["get", "getMany"] as const : ["get"] as const) {
            scenario(
              `onStoreError "fail": the read of the key just after its lease is taken fails the ${verb}, and the lease is released`,
              (store) =>
                Effect.gen(function*() {
                  const { calls, lookup } = yield* counting
                  // the store goes down for reads as soon as this process is granted a lease
                  let down = false
                  const failing: CacheStore.Service = {
                    ...store,
                    get: (key) =>
                      down
                        ? Effect.fail(
                          new CacheError.StoreError({
                            store: store.name,
                            operation: "get",
                            reason: "connection",
                            detail: "down after the lease"
                          })
                        )
                        : store.get(key),
                    lease: {
                      ...store.lease!,
                      acquire: (key, ttl) =>
                        Effect.tap(store.lease!.acquire(key, ttl), (token) => {
                          if (token._tag === "Some") down = true
                        })
                    }
                  }
                  const cache = yield* over(
                    failing,
                    itemsOf(strategy, lookup, {
                      onStoreError: "fail",
                      lock: { ttl: "1 minute", wait: "1 minute" },
                      ...(verb === "getMany"
                        ? {
                          lookupMany: (ids: ReadonlyArray<string>) =>
                            Effect.forEach(ids, (id) => Effect.map(lookup(id), (v) => [id, v] as const))
                        }
                        : {})
                    })
                  )
                  const error = yield* Effect.flip(
                    verb === "get" ? Effect.asVoid(cache.get("k")) : Effect.asVoid(cache.getMany!(["k"]))
                  )
                  expect(error._tag).toBe("StoreError")
                  expect(down).toBe(true)
                  expect(yield* Ref.get(calls)).toBe(0)
                  // the lease is free at once, not held until its TTL lapses: another process loads now
                  expect(Option.isSome(yield* store.lease!.acquire("item:k", "1 second"))).toBe(true)
                })
            )
          }

          /**
           * A view of the store whose first lease of `full` granted answers only once `open`: the
           * store has granted it (as Redis applies `SET NX PX`) but the caller has no token yet.
           * `granted` completes when that lease is granted; the other acquisitions answer at once.
           */
          const grantHeldBack = (store: CacheStore.Service, full: string) =>
            Effect.gen(function*() {
              const granted = yield* Deferred.make<void>()
              const gate = yield* Deferred.make<void>()
              let first = true
              const view: CacheStore.Service = {
                ...store,
                lease: {
                  ...store.lease!,
                  acquire: (key, ttl) =>
                    Effect.flatMap(store.lease!.acquire(key, ttl), (token) => {
                      if (token._tag === "None" || key !== full || !first) return Effect.succeed(token)
                      first = false
                      return Deferred.succeed(granted, undefined).pipe(
                        Effect.zipRight(Deferred.await(gate)),
                        Effect.as(token)
                      )
                    })
                }
              }
              return {
                view,
                granted: Deferred.await(granted),
                isGranted: Deferred.isDone(granted),
                open: Deferred.succeed(gate, undefined)
              }
            })

          /**
           * Whether a key's lease is free now: a probe takes it and gives it back at once (no
           * clock moves, so a lease that is held stays held until the end of the test).
           */
          const leaseFree = (store: CacheStore.Service, full: string) =>
            Effect.orDie(Effect.flatMap(store.lease!.acquire(full, "1 second"), (token) =>
              token._tag === "Some"
                ? Effect.as(store.lease!.release(full, token.value), true)
                : Effect.succeed(false)))

          /**
           * The reader is interrupted while the store's answer to its acquisition is on its way, and
           * the interruption reaches the load (the last waiter gone, its flight is interrupted); then
           * the answer comes. The interruption is forked: taking a lease may not be interruptible.
           */
          const interruptWhileGranted = (
            reader: Fiber.RuntimeFiber<unknown, unknown>,
            gated: { readonly granted: Effect.Effect<void>; readonly open: Effect.Effect<boolean> }
          ) =>
            Effect.gen(function*() {
              yield* gated.granted
              const interrupting = yield* Effect.fork(Fiber.interrupt(reader))
              yield* settle
              yield* gated.open
              yield* Fiber.join(interrupting)
              expect(Exit.isInterrupted(yield* Fiber.await(reader))).toBe(true)
            })

          /**
           * After the interruption, with the clock standing still (a lease nobody gave back would stay
           * held for its minute): the key's lease is free, and the other handle's get loads at once.
           */
          const leaseGivenBack = (
            store: CacheStore.Service,
            other: {
              readonly get: (key: string) => Effect.Effect<unknown, unknown>
              readonly stats: Effect.Effect<CacheMetrics.Stats>
            },
            calls: Ref.Ref<number>
          ) =>
            Effect.gen(function*() {
              yield* within(leaseFree(store, "item:k"), "the lease is given back")
              const get = yield* Effect.fork(other.get("k"))
              yield* within(isDone([get]), "the other handle's get answered without waiting")
              expect(yield* Fiber.join(get)).toEqual(item("k"))
              expect(yield* Ref.get(calls)).toBe(1)
              expect(yield* lockStats(other)).toBe("acquired 1, waits 0, timeouts 0, takeovers 0")
            })

          scenario(
            "a get interrupted while the store grants it the lease gives the lease back: another handle loads at once",
            (store) =>
              Effect.gen(function*() {
                const interrupted = yield* counting
                const { calls, lookup } = yield* counting
                const lock = { ttl: "1 minute", wait: "1 minute" } as const
                const gated = yield* grantHeldBack(store, "item:k")
                const reader = yield* over(gated.view, itemsOf(strategy, interrupted.lookup, { lock }))
                const other = yield* over(otherProcess(store), itemsOf(strategy, lookup, { lock }))
                const read = yield* Effect.fork(reader.get("k"))
                yield* interruptWhileGranted(read, gated)
                // the interrupted load never ran its loader
                expect(yield* Ref.get(interrupted.calls)).toBe(0)
                yield* leaseGivenBack(store, other, calls)
              })
          )

          scenario(
            "a waiter interrupted while the store grants it the lease it takes over gives the lease back",
            (store) =>
              Effect.gen(function*() {
                const interrupted = yield* counting
                const { calls, lookup } = yield* counting
                const lock = { ttl: "1 minute", wait: "1 minute" } as const
                // another process holds the lease; it gives it back without writing: the waiter's next poll takes it
                const held = yield* store.lease!.acquire("item:k", "1 minute")
                expect(Option.isSome(held)).toBe(true)
                const gated = yield* grantHeldBack(store, "item:k")
                const reader = yield* over(gated.view, itemsOf(strategy, interrupted.lookup, { lock }))
                const other = yield* over(otherProcess(store), itemsOf(strategy, lookup, { lock }))
                const read = yield* Effect.fork(reader.get("k"))
                yield* within(Effect.map(reader.stats, (s) => s.lockWaits === 1), "the reader waits")
                yield* store.lease!.release("item:k", Option.getOrThrow(held))
                yield* advanceUntil(gated.isGranted, "the waiter's poll takes the lease")
                yield* interruptWhileGranted(read, gated)
                expect(yield* Ref.get(interrupted.calls)).toBe(0)
                yield* leaseGivenBack(store, other, calls)
              })
          )

          if (strategy.name === "ReadThrough") {
            scenario(
              "getMany with lookupMany interrupted while the store grants it one key's lease gives every lease it took back",
              (store) =>
                Effect.gen(function*() {
                  const loads = yield* Ref.make<Array<string>>([])
                  /** The options of a handle whose batch loads are recorded under `label`. */
                  const batchOptions = (label: string) => {
                    const lookup = (id: string) =>
                      Effect.as(Ref.update(loads, (l) => [...l, `${label}:${id}`]), item(id))
                    return {
                      lock: { ttl: "1 minute", wait: "1 minute" },
                      lookupMany: (ids: ReadonlyArray<string>) =>
                        Effect.forEach(ids, (id) => Effect.map(lookup(id), (v) => [id, v] as const))
                    } as const
                  }
                  // j's lease is granted at once, k's answer is held back
                  const gated = yield* grantHeldBack(store, "item:k")
                  const reader = yield* over(
                    gated.view,
                    itemsOf(strategy, () => Effect.die("no single load"), batchOptions("interrupted"))
                  )
                  const other = yield* over(
                    otherProcess(store),
                    itemsOf(strategy, () => Effect.die("no single load"), batchOptions("other"))
                  )
                  const read = yield* Effect.fork(reader.getMany!(["j", "k"]))
                  yield* interruptWhileGranted(read, gated)
                  expect(yield* Ref.get(loads), "the interrupted batch never ran its loader").toEqual([])
                  yield* within(
                    Effect.zipWith(leaseFree(store, "item:j"), leaseFree(store, "item:k"), (j, k) => j && k),
                    "both leases are given back"
                  )
                  const batch = yield* Effect.fork(other.getMany!(["j", "k"]))
                  yield* within(isDone([batch]), "the other handle's getMany answered without waiting")
                  expect(yield* Fiber.join(batch)).toEqual([Option.some(item("j")), Option.some(item("k"))])
                  expect(yield* Ref.get(loads)).toEqual(["other:j", "other:k"])
                  expect(yield* lockStats(other)).toBe("acquired 2, waits 0, timeouts 0, takeovers 0")
                })
            )
          }

          if (strategy.name === "ReadThrough") {
            for (const batched of [true, false]) {
              scenario(
                `getMany ${
                  batched ? "with lookupMany" : "without lookupMany"
                }: a key another handle loads, writes and releases between this read and its lease gets that value, no second load`,
                (store) =>
                  Effect.gen(function*() {
                    const loads = yield* Ref.make<Array<string>>([])
                    const loader = (label: string, n: number) => (id: string) =>
                      Effect.as(Ref.update(loads, (l) => [...l, `${label}:${id}`]), item(id, n))
                    const lock = { ttl: "1 minute", wait: "1 minute" } as const
                    // the other process's batch read of x answers only once `resume` opens: its miss is
                    // old news by then
                    const read = yield* Deferred.make<void>()
                    const resume = yield* Deferred.make<void>()
                    const paused: CacheStore.Service = {
                      ...store,
                      getMany: (keys) =>
                        keys.includes("item:x")
                          ? store.getMany(keys).pipe(
                            Effect.zipLeft(Deferred.succeed(read, undefined)),
                            Effect.zipLeft(Deferred.await(resume))
                          )
                          : store.getMany(keys)
                    }
                    const first = yield* itemsOf(strategy, loader("a", 1), { lock })
                    const second = yield* over(
                      paused,
                      itemsOf(strategy, loader("b", 2), {
                        lock,
                        ...(batched
                          ? {
                            lookupMany: (ids: ReadonlyArray<string>) =>
                              Effect.forEach(ids, (id) => Effect.map(loader("b", 2)(id), (v) => [id, v] as const))
                          }
                          : {})
                      })
                    )
                    const batch = yield* Effect.fork(second.getMany!(["x"]))
                    yield* Deferred.await(read)
                    // meanwhile the first handle takes the lease, loads, writes and releases it
                    expect(yield* first.get("x")).toEqual(item("x", 1))
                    yield* Deferred.succeed(resume, undefined)
                    // the batch takes the free lease, and reads the key once more before it loads
                    yield* advanceUntil(isDone([batch]), "the getMany answered")
                    expect(yield* Fiber.join(batch)).toEqual([Option.some(item("x", 1))])
                    expect(yield* Ref.get(loads)).toEqual(["a:x"])
                    expect(yield* lockStats(first, second)).toBe("acquired 2, waits 0, timeouts 0, takeovers 0")
                    // and it released the lease it took
                    expect(Option.isSome(yield* store.lease!.acquire("item:x", "1 second"))).toBe(true)
                  })
              )

              for (const locked of [true, false]) {
                scenario(
                  `${locked ? "" : "control, without lock: "}getMany ${
                    batched ? "with lookupMany" : "without lookupMany"
                  }, two handles × 20 concurrent reads of 3 keys: ${
                    locked ? "one load per key" : "one load per key per handle"
                  }`,
                  (store) =>
                    Effect.gen(function*() {
                      const loads = yield* Ref.make<Array<string>>([])
                      const gate = yield* Deferred.make<void>()
                      const options = {
                        ...(batched
                          ? {
                            lookupMany: (ids: ReadonlyArray<string>) =>
                              Ref.update(loads, (l) => [...l, ...ids]).pipe(
                                Effect.zipRight(Deferred.await(gate)),
                                Effect.as(ids.map((id) => [id, item(id)] as const))
                              )
                          }
                          : {}),
                        lock: locked ? { ttl: "1 minute", wait: "1 minute" } as const : undefined
                      }
                      const lookup = (id: string) =>
                        Ref.update(loads, (l) => [...l, id]).pipe(
                          Effect.zipRight(Deferred.await(gate)),
                          Effect.as(item(id))
                        )
                      const first = yield* itemsOf(strategy, lookup, options)
                      const second = yield* over(otherProcess(store), itemsOf(strategy, lookup, options))
                      const keys = ["x", "y", "z"]
                      const reads = yield* Effect.forEach(
                        Array.from({ length: 40 }),
                        (_, i) => Effect.fork((i % 2 === 0 ? first : second).getMany!(keys))
                      )
                      // each key's lease is held by one handle and waited on by the other
                      yield* within(
                        locked
                          ? Effect.map(lockStats(first, second), (s) =>
                            s === "acquired 3, waits 3, timeouts 0, takeovers 0")
                          : Effect.map(Ref.get(loads), (l) =>
                            l.length === 6),
                        "both handles' loads have begun"
                      )
                      // slow loads: the waiters poll for 5 seconds, and neither load nor give up
                      yield* advance(5_000)
                      expect((yield* Ref.get(loads)).length).toBe(locked ? 3 : 6)
                      expect(yield* isDone(reads), "no getMany answered before the loads end").toBe(false)
                      yield* Deferred.succeed(gate, undefined)
                      yield* advanceUntil(isDone(reads), "every getMany answered")
                      for (const read of yield* Fiber.joinAll(reads)) {
                        expect(read).toEqual(keys.map((key) => Option.some(item(key))))
                      }
                      expect([...(yield* Ref.get(loads))].sort()).toEqual(
                        locked ? keys : ["x", "x", "y", "y", "z", "z"]
                      )
                      if (locked) {
                        expect(yield* lockStats(first, second)).toBe("acquired 3, waits 3, timeouts 0, takeovers 0")
                      }
                    })
                )
              }
            }
          }
        })
      })
    }
  }
}

describe("pipeline: a store that fails", () => {
  for (const strategy of strategies) {
    it.scoped(`${strategy.name}: reads fall back to the loader while the store is down, and recover`, () =>
      Effect.gen(function*() {
        const { calls, lookup } = yield* counting
        const { faults, store } = yield* Effect.flatMap(MemoryStore.make(), Testing.faulty)
        const cache = yield* itemsOf(strategy, lookup).pipe(
          Effect.provideService(CacheStore.CacheStore, store)
        )
        const get = (key: string) => Effect.provideService(cache.get(key), CacheStore.CacheStore, store)
        yield* get("a")
        yield* get("a")
        expect(yield* Ref.get(calls)).toBe(1)
        yield* faults.inject(Testing.failure("connection"))
        expect(yield* get("a")).toEqual(item("a"))
        expect(yield* Ref.get(calls)).toBe(2)
        yield* faults.heal()
        yield* get("a")
        expect(yield* Ref.get(calls)).toBe(2)
      }))
  }
})

describe("pipeline: bytes a store hands over", () => {
  it.scoped("a store that reads every value into one reused buffer: each read decodes what it holds now", () =>
    Effect.gen(function*() {
      // the store answers every read with a view into one scratch buffer, overwritten by the
      // next read, as a client reading into a reused socket buffer would
      const map = new Map<string, Uint8Array>()
      const scratch = Buffer.alloc(4096)
      const viewOf = (key: string): Uint8Array | null => {
        const stored = map.get(key)
        if (stored === undefined) return null
        scratch.set(stored)
        return scratch.subarray(0, stored.byteLength)
      }
      const get: CacheStore.Service["get"] = (key) => Effect.sync(() => Option.fromNullable(viewOf(key)))
      const store = CacheStore.make({
        name: "scratch",
        get,
        set: (key, value) => Effect.sync(() => void map.set(key, new Uint8Array(value as Uint8Array))),
        setIfAbsent: (key, value) =>
          Effect.sync(() => map.has(key) ? false : (map.set(key, new Uint8Array(value as Uint8Array)), true)),
        delete: (key) => Effect.sync(() => map.delete(key)),
        expire: (key) => Effect.sync(() => map.has(key)),
        directRead: { _tag: "Callback", get, read: (key, reply) => reply(viewOf(key), undefined, undefined) }
      })
      const make = CacheAside.make({ namespace: "scratch", value: Schema.String, ttl: "5 minutes" }).pipe(
        Effect.provideService(CacheStore.CacheStore, store)
      )
      const reader = yield* make
      // another handle (another process, say) writes: same length, other bytes
      const writer = yield* make
      yield* writer.set("k", "one")
      expect(yield* reader.get("k")).toEqual(Option.some("one"))
      yield* writer.set("k", "two")
      expect(yield* reader.get("k")).toEqual(Option.some("two"))
      yield* writer.set("k", "six")
      expect(yield* reader.get("k")).toEqual(Option.some("six"))
    }))
})

describe("pipeline: spans, metrics and options", () => {
  it.scoped("a loader's spans hang under the read that started it, not under the span open at make", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer(yield* Effect.tracer)
      // the loader's own span (a database query, say) must hang under cachekit.load
      const lookup = (id: string) => Effect.succeed(item(id)).pipe(Effect.withSpan("db.query"))
      const cache = yield* ReadThrough.make({ namespace: "item", value: Item, lookup, ttl: "5 minutes" }).pipe(
        Effect.withSpan("startup"),
        Effect.withTracer(tracer)
      )
      yield* cache.get("a").pipe(Effect.withSpan("request"), Effect.withTracer(tracer))
      const byName = (name: string) => spans.find((span) => span.name === name)!
      const query = byName("db.query")
      expect(query.parent._tag === "Some" && (query.parent.value as Tracer.Span).name).toBe("cachekit.load")
      const load = byName("cachekit.load")
      expect(load.parent._tag === "Some" && (load.parent.value as Tracer.Span).name).toBe("cachekit.get")
      const get = byName("cachekit.get")
      expect(get.parent._tag === "Some" && (get.parent.value as Tracer.Span).name).toBe("request")
    }).pipe(Effect.provide(MemoryStore.layer())))

  it.scoped("the load-time histogram records failed loads too", () =>
    Effect.gen(function*() {
      const { lookup } = yield* counting
      const cache = yield* ReadThrough.make({ namespace: "histogram", value: Item, lookup, ttl: "5 minutes" })
      yield* cache.get("a")
      yield* cache.get("b")
      yield* Effect.flip(cache.get("missing-1"))
      yield* Effect.flip(cache.get("missing-2"))
      const histogram = CacheMetrics.loadDuration.pipe(
        Metric.tagged("namespace", "histogram"),
        Metric.tagged("store", "memory")
      )
      expect((yield* Metric.value(histogram)).count).toBe(4)
      expect(yield* cache.stats).toMatchObject({ loads: 4, loadFailures: 2 })
    }).pipe(Effect.provide(MemoryStore.layer())))

  it.scoped("Cache.cached with another Schema under the same namespace never runs with the first one's", () =>
    Effect.gen(function*() {
      const asNumber = Effect.succeed(1).pipe(
        Cache.cached({ namespace: "n", key: "k", value: Schema.Number, ttl: "1 minute" })
      )
      const asString = Effect.succeed("one").pipe(
        Cache.cached({ namespace: "n", key: "k", value: Schema.String, ttl: "1 minute" })
      )
      expect(yield* asNumber).toBe(1)
      // the entry written with the number Schema does not decode as a string: a miss, not a number
      expect(yield* asString).toBe("one")
      expect(yield* asNumber).toBe(1)
    }).pipe(Effect.provide(MemoryStore.layer())))

  it.effect("Cache.cached's stale refreshes belong to the store's scope: closing the store stops them", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(MemoryStore.layer(), scope)
      const started = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      const version = yield* Ref.make(0)
      const load = Ref.updateAndGet(version, (n) => n + 1).pipe(
        Effect.tap((n) =>
          n === 1 ? Effect.void : Deferred.succeed(started, undefined).pipe(
            Effect.zipRight(Effect.never),
            Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
          )
        )
      )
      const cached = Cache.cached({
        namespace: "owned",
        key: "k",
        value: Schema.Number,
        ttl: "1 minute",
        staleWhileRevalidate: "1 hour"
      })
      expect(yield* Effect.provide(load.pipe(cached), context)).toBe(1)
      yield* TestClock.adjust("2 minutes")
      // stale: served at once, and a refresh starts in the background
      expect(yield* Effect.provide(load.pipe(cached), context)).toBe(1)
      yield* Deferred.await(started)
      yield* Scope.close(scope, Exit.void)
      yield* Deferred.await(interrupted)
    }))

  it.scoped("CacheAside.set during a load wins: the load does not overwrite it, and the next read serves it", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const aside = yield* CacheAside.make({ namespace: "item", value: Item, ttl: "5 minutes" })
      const loading = yield* Effect.fork(aside.getOrLoad("k", Effect.as(Deferred.await(gate), item("k", 1))))
      yield* settle
      yield* aside.set("k", item("k", 2))
      yield* Deferred.succeed(gate, undefined)
      expect((yield* Fiber.join(loading)).n).toBe(1)
      yield* settle
      expect(yield* aside.get("k")).toEqual(Option.some(item("k", 2)))
    }).pipe(Effect.provide(MemoryStore.layer())))
})

describe("pipeline: handles sharing a namespace, and races", () => {
  it.scoped("a getMany that joined a single load its last waiter left still gets its value", () =>
    Effect.gen(function*() {
      const { lookup, open } = yield* gated
      const cache = yield* ReadThrough.make({ namespace: "item", value: Item, lookup, ttl: "5 minutes" })
      const single = yield* Effect.fork(cache.get("k"))
      yield* settle
      // a batch read of the same key joins the load; then the single reader goes away
      const batch = yield* Effect.fork(cache.getMany(["k"]))
      yield* Fiber.interrupt(single)
      yield* open
      expect(yield* Fiber.await(batch)).toEqual(Exit.succeed([Option.some(item("k"))]))
    }).pipe(Effect.provide(MemoryStore.layer())))

  it.scoped("a CacheAside.set supersedes a ReadThrough load of the same namespace (another handle)", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const reads = yield* ReadThrough.make({
        namespace: "item",
        value: Item,
        lookup: (id: string) => Effect.as(Deferred.await(gate), item(id, 1)),
        ttl: "5 minutes"
      })
      const writes = yield* CacheAside.make({ namespace: "item", value: Item, ttl: "5 minutes" })
      const loading = yield* Effect.fork(reads.get("k"))
      yield* settle
      yield* writes.set("k", item("k", 2))
      yield* Deferred.succeed(gate, undefined)
      expect((yield* Fiber.join(loading)).n).toBe(1)
      yield* settle
      expect(yield* writes.get("k")).toEqual(Option.some(item("k", 2)))
      expect((yield* reads.get("k")).n).toBe(2)
    }).pipe(Effect.provide(MemoryStore.layer())))

  it.scoped("Cache.cached with per-call options (an inline tags function): invalidate supersedes the load", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const options = (): Cache.CachedOptions<number, number> => ({
        namespace: "price",
        key: "p",
        value: Schema.Number,
        ttl: "5 minutes",
        tags: () => ["x"]
      })
      const version = yield* Ref.make(10)
      const loading = yield* Effect.fork(
        Effect.flatMap(Ref.get(version), (n) => Effect.as(Deferred.await(gate), n)).pipe(Cache.cached(options()))
      )
      yield* settle
      yield* Ref.set(version, 20)
      expect(yield* Cache.cached(options()).invalidate).toBe(false)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(loading)).toBe(10)
      yield* settle
      expect(yield* Ref.get(version).pipe(Cache.cached(options()))).toBe(20)
    }).pipe(Effect.provide(MemoryStore.layer())))

  it.scoped("a set racing the end of a load, under a scheduler that preempts often: never the older value after it", () =>
    Effect.gen(function*() {
      /** Preempts a fiber every `n` operations, as the default scheduler does every 2,048. */
      const preempting = (n: number) =>
        Scheduler.make((task) => void setImmediate(task), (fiber) => fiber.currentOpCount > n ? 0 : false)
      const older: Array<string> = []
      for (let n = 10; n <= 40; n++) {
        for (let delay = 0; delay < 6; delay++) {
          const read = yield* Effect.gen(function*() {
            const gate = yield* Deferred.make<void>()
            const aside = yield* CacheAside.make({ namespace: `race-${n}-${delay}`, value: Item, ttl: "5 minutes" })
            const loading = yield* Effect.fork(aside.getOrLoad("k", Effect.as(Deferred.await(gate), item("k", 1))))
            yield* settle
            yield* Deferred.succeed(gate, undefined)
            for (let i = 0; i < delay; i++) yield* Effect.yieldNow()
            yield* aside.set("k", item("k", 2))
            yield* Fiber.join(loading)
            yield* settle
            return yield* aside.get("k")
          }).pipe(Effect.withScheduler(preempting(n)))
          if (Option.isSome(read) && read.value.n === 1) older.push(`n=${n}, delay=${delay}`)
        }
      }
      expect(older).toEqual([])
    }).pipe(Effect.provide(MemoryStore.layer())))

  it.scoped("a Schema whose decode throws fails its own read on the callback path, and the others of its reply answer", () =>
    Effect.gen(function*() {
      const store = yield* Effect.provideService(RedisStore.make({ prefix: "throwing" }), Redis.RedisClient, redis())
      const Touchy = Schema.transform(Schema.String, Schema.String, {
        decode: (s) => {
          if (s === "boom") throw new Error("boom")
          return s
        },
        encode: (s) => s
      })
      const aside = yield* CacheAside.make({ namespace: "t", value: Touchy, ttl: "5 minutes" }).pipe(
        Effect.provideService(CacheStore.CacheStore, store)
      )
      yield* aside.set("bad", "boom")
      yield* aside.set("good", "fine")
      // two reads in one tick share one MGET
      const bad = yield* Effect.fork(aside.getOrLoad("bad", Effect.succeed("x")))
      const good = yield* Effect.fork(aside.getOrLoad("good", Effect.succeed("y")))
      expect(yield* Fiber.join(good)).toBe("fine")
      const exit = yield* Fiber.await(bad)
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
    }).pipe(Effect.provide(TestServices.liveServices)))

  it.scoped("an own __proto__ key comes back as data in the tagged form, never as the prototype", () =>
    Effect.gen(function*() {
      const store = yield* bytesOnlyStore
      const cache = yield* CacheAside.make({ namespace: "proto", value: Schema.Unknown, ttl: "5 minutes" }).pipe(
        Effect.provideService(CacheStore.CacheStore, store)
      )
      const value = JSON.parse("{\"__proto__\":{\"admin\":true},\"n\":1}")
      value.n = NaN // not plain JSON: the tagged form
      yield* cache.set("k", value)
      const back = Option.getOrThrow(yield* cache.get("k")) as Record<string, unknown>
      expect(Object.keys(back)).toEqual(["__proto__", "n"])
      expect(Object.getPrototypeOf(back)).toBe(Object.prototype)
      expect(back).toStrictEqual(value)
    }))
})

describe("early recompute: the XFetch rule", () => {
  it.effect("over 10,000 seeded draws per bin, P(recompute at τ) = exp(−τ/(β·δ)) within 2 points", () =>
    Effect.gen(function*() {
      const delta = 250
      const beta = 1.5
      const expiry = 1_000_000
      const runs = 10_000
      for (const ratio of [0.05, 0.25, 0.5, 1, 2, 3, 5]) {
        const tau = ratio * beta * delta
        let fired = 0
        for (let i = 0; i < runs; i++) {
          if (yield* drawEarly(expiry - tau, expiry, delta, beta)) fired++
        }
        const expected = Math.exp(-tau / (beta * delta))
        expect(Math.abs(fired / runs - expected), `τ = ${ratio}·β·δ: ${fired / runs} vs ${expected}`).toBeLessThan(0.02)
      }
    }).pipe(Effect.withRandom(Random.make(20150831))))

  it("never fires, and draws nothing, further than 37·β·δ from expiry", () => {
    const delta = 100
    const beta = 2
    const entry = { freshUntil: 1_000_000, loadTime: delta } as Parameters<typeof mayRecomputeEarly>[0]
    expect(mayRecomputeEarly(entry, 1_000_000 - 37 * beta * delta - 1, beta)).toBe(false)
    expect(mayRecomputeEarly(entry, 1_000_000 - 37 * beta * delta, beta)).toBe(true)
    // the smallest u a draw gives (2⁻⁵³) does not reach past the bound
    expect(recomputesEarly(1_000_000 - 37 * beta * delta, 1_000_000, delta, beta, 2 ** -53)).toBe(false)
    expect(recomputesEarly(1_000_000 - 36 * beta * delta, 1_000_000, delta, beta, 2 ** -53)).toBe(true)
  })
})
