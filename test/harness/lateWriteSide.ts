/**
 * What one seeded late-write interleaving is, and one process's part in it when the two sides of
 * the race are two OS processes (lateWritesProcesses.ts). The same code runs in the test process
 * and in the worker (lateWriteSideWorker.ts): each side derives the whole interleaving from its
 * seed, so the processes only tell each other which step of which seed to run.
 *
 * A side has a loading cache (read-through, whose slow loader reads the source and waits at a
 * gate) and a writing cache (cache-aside: the prefill, the newer `set` or the invalidation, and
 * the reads that check what is left), each over a store of its own on the shared backend. The
 * source, the "database", is a Redis counter per seed that both processes read.
 */
import { Deferred, Effect, Fiber, Option, Schema } from "effect"
import type { Scope } from "effect"
import { CacheAside, CacheStore, ReadThrough, Ttl } from "effect-cachekit"
import type { Redis as IoRedis } from "ioredis"
import type { Action } from "./lateWrites.js"
import { plan } from "./lateWrites.js"

/** The loading side's store, with its fence or its listing of keys left out for the controls. */
const loadingStore = (
  store: CacheStore.Service,
  withoutFence: boolean,
  withoutPurges: boolean
): CacheStore.Service => ({
  ...store,
  // a store that cannot list keys has no purges: the loading side does not check the purge token
  capabilities: withoutPurges ? { ...store.capabilities, scan: false } : store.capabilities,
  fence: withoutFence ? undefined : store.fence
})

/** The prefilled value: the only one written with the short TTL, so a wait makes it stale. */
const PREFILL = "p0"
/** How long the prefill is fresh, and the wait that makes it stale. */
const PREFILL_TTL_MILLIS = 10
const STALE_AFTER_MILLIS = 15

/**
 * Every other value lives long: across processes a read may come a while after the write (a
 * loaded older value must still be there to be seen), unlike in one process where the in-process
 * interleavings can keep every entry at 10 ms.
 */
const ttl = Ttl.fromValue((value: string) => value === PREFILL ? `${PREFILL_TTL_MILLIS} millis` : "10 minutes")

/** Whether a value read is older than the source's newest: a surviving prefill counts as older. */
export const isOlder = (value: string | null, source: number): boolean =>
  value !== null && Number(value.slice(1)) < source

/** The source of a seed's key, a Redis counter outside the cache's keys. */
const sourceKey = (prefix: string, seed: number) => `src:${prefix}:${seed}`

export const readSource = (db: IoRedis, prefix: string, seed: number): Effect.Effect<number> =>
  Effect.map(Effect.promise(() => db.get(sourceKey(prefix, seed))), (s) => Number(s ?? "0"))

/** One process's part in the interleavings; every step is by seed. */
export interface Side {
  /** Writing side: the prefill (and the wait that makes it stale); the action too when it comes first. */
  readonly prepare: (seed: number) => Effect.Effect<void>
  /** Writing side: the action (after the other side's load read the source). */
  readonly act: (seed: number) => Effect.Effect<void>
  /**
   * Loading side: starts the `get` or `getMany`; returns once its load has read the source (when
   * the action is to come after that), else at once.
   */
  readonly load: (seed: number) => Effect.Effect<void>
  /**
   * Loading side: lets the load end; once the get has returned and the load's flight has ended
   * (its value written, refused or taken back), reads the key. Whether the loader ran, and what
   * the key holds.
   */
  readonly finish: (seed: number) => Effect.Effect<{ readonly loaded: boolean; readonly value: string | null }>
  /** What the key holds, as this process's cache reads it (stale values included). */
  readonly read: (seed: number) => Effect.Effect<string | null>
}

export interface SideOptions {
  /** The loading cache's store. */
  readonly loading: CacheStore.Service
  /** The writing cache's store: the same backend and prefix, another client. */
  readonly writing: CacheStore.Service
  /** The source's client. */
  readonly db: IoRedis
  /** The stores' prefix (names the source keys too). */
  readonly prefix: string
  readonly actions: ReadonlyArray<Action>
  /** Leaves out the loading store's fence, to show what happens without it. */
  readonly withoutFence: boolean
  /** Leaves out the loading side's check of the purge token, to show what happens without it. */
  readonly withoutPurges: boolean
}

/** What one load of a seed is doing. */
interface Run {
  readonly started: Deferred.Deferred<void>
  readonly gate: Deferred.Deferred<void>
  reader?: Fiber.RuntimeFiber<void>
  /**
   * The fiber that ran the loader: the load's flight, which writes the loaded value once the
   * loader returns (and, after a purge, takes it back), then ends.
   */
  flight?: Fiber.RuntimeFiber<unknown, unknown>
}

export const makeSide = (options: SideOptions): Effect.Effect<Side, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { actions, db, prefix } = options
    const scope = yield* Effect.scope
    const runs = new Map<string, Run>()
    const keyOf = (seed: number) => `k${seed}`

    /** Notes the fiber the load of `key` runs in (the first one: a batch's, not its keys'). */
    const inFlight = (key: string) =>
      Effect.withFiberRuntime<void>((fiber) => {
        const run = runs.get(key)
        if (run !== undefined) run.flight ??= fiber
        return Effect.void
      })
    const lookupOne = (key: string) =>
      Effect.gen(function*() {
        const read = yield* readSource(db, prefix, Number(key.slice(1)))
        const run = runs.get(key)
        // a load after its run ended (none is expected) reads the newest source: it cannot be older
        if (run === undefined) return `v${read}`
        yield* Deferred.succeed(run.started, undefined)
        yield* Deferred.await(run.gate)
        return `v${read}`
      })
    const common = { namespace: "late", value: Schema.String, ttl, staleWhileRevalidate: "1 hour" } as const
    const loading = yield* ReadThrough.make({
      ...common,
      lookup: (key: string) => Effect.zipRight(inFlight(key), lookupOne(key)),
      lookupMany: (keys: ReadonlyArray<string>) =>
        Effect.zipRight(
          Effect.forEach(keys, inFlight, { discard: true }),
          Effect.forEach(keys, (k) => Effect.map(lookupOne(k), (v) => [k, v] as const), { concurrency: "unbounded" })
        )
    }).pipe(
      Effect.provideService(
        CacheStore.CacheStore,
        loadingStore(options.loading, options.withoutFence, options.withoutPurges)
      )
    )
    // with the stale window too, so that its reads see every value the key holds
    const writing = yield* CacheAside.make(common).pipe(Effect.provideService(CacheStore.CacheStore, options.writing))

    const read = (seed: number) => Effect.map(writing.get(keyOf(seed)), Option.getOrNull).pipe(Effect.orDie)

    const act = (seed: number) =>
      Effect.gen(function*() {
        const { action } = yield* plan(seed, actions)
        const key = keyOf(seed)
        const source = yield* Effect.promise(() => db.incr(sourceKey(prefix, seed)))
        switch (action) {
          case "set":
            return yield* writing.set(key, `v${source}`)
          case "invalidate":
            return yield* Effect.asVoid(writing.invalidate(key))
          case "clear":
            return yield* Effect.asVoid(writing.clear)
          default:
            return yield* Effect.asVoid(writing.invalidatePattern(key))
        }
      }).pipe(Effect.orDie)

    const prepare = (seed: number) =>
      Effect.gen(function*() {
        const { before, prefill } = yield* plan(seed, actions)
        const key = keyOf(seed)
        if (prefill !== "none") yield* writing.set(key, PREFILL)
        if (prefill === "tombstone") yield* writing.invalidate(key)
        if (prefill === "stale") yield* Effect.sleep(STALE_AFTER_MILLIS)
        if (before) yield* act(seed)
      }).pipe(Effect.orDie)

    const load = (seed: number) =>
      Effect.gen(function*() {
        const { batch, before } = yield* plan(seed, actions)
        const key = keyOf(seed)
        const run: Run = {
          started: yield* Deferred.make<void>(),
          gate: yield* Deferred.make<void>()
        }
        runs.set(key, run)
        if (before) yield* Deferred.succeed(run.gate, undefined)
        run.reader = yield* Effect.forkIn(
          Effect.orDie(batch ? Effect.asVoid(loading.getMany([key])) : Effect.asVoid(loading.get(key))),
          scope
        )
        // the load has read the source (a miss, or the refresh of a stale entry); the action comes now
        if (!before) yield* Deferred.await(run.started)
      })

    const finish = (seed: number) =>
      Effect.gen(function*() {
        const key = keyOf(seed)
        const run = runs.get(key)!
        yield* Deferred.succeed(run.gate, undefined)
        yield* Fiber.join(run.reader!)
        const loaded = yield* Deferred.isDone(run.started)
        // the loaded value's write (or its refusal; after a purge, its taking back) is done when the
        // flight ends: after the get returned, for a background refresh
        if (loaded) yield* Fiber.await(run.flight!)
        const value = yield* read(seed)
        runs.delete(key)
        return { loaded, value }
      })

    return { prepare, act, load, finish, read }
  })
