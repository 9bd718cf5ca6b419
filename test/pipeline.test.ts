/**
 * The load pipeline's behaviour, once for every way a read reaches it: each read path (a store
 * with a synchronous in-process read, a byte store without one, a store that answers reads from
 * a batch callback; each with and without a tracer installed) × each strategy that reads through
 * it (`ReadThrough`, `CacheAside`, `Cache.cached`). A scenario that needs a verb a strategy does
 * not have (a batch read, a refresh) runs for the strategies that have it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, Ref, Schema, TestClock, Tracer } from "effect"
import type { Scope } from "effect"
import { Cache, CacheAside, CacheStore, MemoryStore, ReadThrough } from "effect-cachekit"
import type { CacheError } from "effect-cachekit"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import { fixture } from "./harness/fixture.js"
import { redisServer } from "./harness/redis.js"
import { bytesOnlyStore, faultyStoreOver } from "./utils.js"

const redis = fixture(Effect.gen(function*() {
  const server = yield* redisServer()
  return yield* Redis.make({ port: server.port })
}))

let prefixes = 0

/** How a read reaches the pipeline. */
interface ReadPath {
  readonly name: string
  readonly store: Effect.Effect<CacheStore.Service, never, Scope.Scope>
}

const readPaths: ReadonlyArray<ReadPath> = [
  { name: "synchronous in-process read (memory)", store: MemoryStore.make() },
  { name: "byte store without a synchronous read", store: bytesOnlyStore },
  {
    name: "batch-callback read (redis)",
    store: Effect.suspend(() =>
      Effect.provideService(RedisStore.make({ prefix: `pipe${++prefixes}` }), Redis.RedisClient, redis())
    )
  }
]

/** What a scenario needs of a strategy: the verbs every strategy has, and the ones only some have. */
interface Handle<K, A, E> {
  readonly get: (key: K) => Effect.Effect<A, E | CacheError.CacheError>
  readonly invalidate?: (key: K) => Effect.Effect<boolean, CacheError.CacheError>
  readonly refresh?: (key: K) => Effect.Effect<A, E | CacheError.CacheError>
  readonly getMany?: (keys: ReadonlyArray<K>) => Effect.Effect<Array<Option.Option<A>>, E | CacheError.CacheError>
}

interface HandleOptions<A, I, E> extends Cache.Options<A, I> {
  readonly lookup: (key: string) => Effect.Effect<A, E>
  readonly lookupMany?: (keys: ReadonlyArray<string>) => Effect.Effect<Iterable<readonly [string, A]>, E>
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
        invalidate: aside.invalidate
      }))
  },
  {
    name: "Cache.cached",
    make: (options) =>
      Effect.map(CacheStore.CacheStore, (store) => ({
        get: (key: string) =>
          options.lookup(key).pipe(
            Cache.cached({ ...options, key }),
            Effect.provideService(CacheStore.CacheStore, store)
          )
      }))
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
            const cache = yield* strategy.make({ namespace: "item", value: Item, lookup, ttl: "5 minutes" })
            expect(yield* cache.get("a")).toEqual(item("a"))
            expect(yield* cache.get("a")).toEqual(item("a"))
            expect(yield* Ref.get(calls)).toBe(1)
          }))

        scenario("1,000 concurrent gets of a cold key call the loader exactly once", () =>
          Effect.gen(function*() {
            const { calls, lookup, open } = yield* gated
            const cache = yield* strategy.make({ namespace: "item", value: Item, lookup, ttl: "5 minutes" })
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
              const cache = yield* strategy.make({ namespace: "item", value: Item, lookup, ttl: "5 minutes" })
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
          "the loader's own error passes through typed, and a failed load is not cached",
          () =>
            Effect.gen(function*() {
              const { calls, lookup } = yield* counting
              const cache = yield* strategy.make({ namespace: "item", value: Item, lookup, ttl: "5 minutes" })
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
            const cache = yield* strategy.make({ namespace: "item", value: Item, lookup, ttl: "5 minutes" })
            yield* store.set("item:garbage", new TextEncoder().encode("{not json"))
            expect(yield* cache.get("garbage")).toEqual(item("garbage"))
            expect(yield* Ref.get(calls)).toBe(1)
            expect(yield* cache.get("garbage")).toEqual(item("garbage"))
            expect(yield* Ref.get(calls)).toBe(1)
          }))

        scenario("entries expire after their TTL on the TestClock", () =>
          Effect.gen(function*() {
            const { calls, lookup } = yield* counting
            const cache = yield* strategy.make({ namespace: "item", value: Item, lookup, ttl: "5 minutes" })
            yield* cache.get("a")
            yield* TestClock.adjust("4 minutes")
            yield* cache.get("a")
            expect(yield* Ref.get(calls)).toBe(1)
            yield* TestClock.adjust("1 minute")
            yield* cache.get("a")
            expect(yield* Ref.get(calls)).toBe(2)
          }))

        scenario(
          "stale-while-revalidate serves the stale value and refreshes once in the background",
          () =>
            Effect.gen(function*() {
              const version = yield* Ref.make(0)
              const gate = yield* Deferred.make<void>()
              const cache = yield* strategy.make({
                namespace: "item",
                value: Item,
                lookup: (id: string) =>
                  Ref.updateAndGet(version, (n) => n + 1).pipe(
                    Effect.tap((n) => n > 1 ? Deferred.await(gate) : Effect.void),
                    Effect.map((n) => item(id, n))
                  ),
                ttl: "1 minute",
                staleWhileRevalidate: "1 minute"
              })
              expect((yield* cache.get("k")).n).toBe(1)
              yield* TestClock.adjust("90 seconds")
              // stale: served at once, one refresh starts for all three readers
              expect((yield* cache.get("k")).n).toBe(1)
              expect((yield* cache.get("k")).n).toBe(1)
              expect((yield* cache.get("k")).n).toBe(1)
              yield* settle
              expect(yield* Ref.get(version)).toBe(2)
              yield* Deferred.succeed(gate, undefined)
              yield* settle
              expect((yield* cache.get("k")).n).toBe(2)
              expect(yield* Ref.get(version)).toBe(2)
            })
        )

        if (strategy.name !== "Cache.cached") {
          scenario("invalidate removes the entry; the next get loads again", () =>
            Effect.gen(function*() {
              const { calls, lookup } = yield* counting
              const cache = yield* strategy.make({ namespace: "item", value: Item, lookup, ttl: "5 minutes" })
              yield* cache.get("a")
              expect(yield* cache.invalidate!("a")).toBe(true)
              expect(yield* cache.invalidate!("a")).toBe(false)
              yield* cache.get("a")
              expect(yield* Ref.get(calls)).toBe(2)
            }))
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

          scenario("refresh reloads now and stores the result", () =>
            Effect.gen(function*() {
              const { calls, lookup } = yield* counting
              const cache = yield* strategy.make({ namespace: "item", value: Item, lookup, ttl: "5 minutes" })
              yield* cache.get("a")
              yield* cache.refresh!("a")
              expect(yield* Ref.get(calls)).toBe(2)
              yield* cache.get("a")
              expect(yield* Ref.get(calls)).toBe(2)
            }))
        }
      })
    }
  }
}

describe("pipeline: a store that fails", () => {
  for (const strategy of strategies) {
    it.scoped(`${strategy.name}: reads fall back to the loader while the store is down, and recover`, () =>
      Effect.gen(function*() {
        const { calls, lookup } = yield* counting
        const { store, failing } = yield* faultyStoreOver(MemoryStore.make())
        const cache = yield* strategy.make({ namespace: "item", value: Item, lookup, ttl: "5 minutes" }).pipe(
          Effect.provideService(CacheStore.CacheStore, store)
        )
        const get = (key: string) => Effect.provideService(cache.get(key), CacheStore.CacheStore, store)
        yield* get("a")
        yield* get("a")
        expect(yield* Ref.get(calls)).toBe(1)
        yield* Ref.set(failing, true)
        expect(yield* get("a")).toEqual(item("a"))
        expect(yield* Ref.get(calls)).toBe(2)
        yield* Ref.set(failing, false)
        yield* get("a")
        expect(yield* Ref.get(calls)).toBe(2)
      }))
  }
})
