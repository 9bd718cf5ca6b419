/**
 * Seeded interleavings of a slow load in one "process" and a write or invalidation of the same key
 * in another: two handles over two store objects that share the backend but nothing else (no key
 * order, no single flight), as two processes would. Each run counts whether the value the store
 * ends up with is older than the newest one written to the source.
 */
import { Deferred, Effect, Fiber, Option, Random, Schema } from "effect"
import type { Duration, Scope } from "effect"
import { CacheAside, CacheStore, ReadThrough } from "effect-cachekit"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { startChild } from "./child.js"
import type { WorkerStore } from "./lateWriteWorker.js"

/**
 * What the writing side does to the key while the load runs: a `set` of the new value, an
 * `invalidate`, a `clear` of the namespace, or an `invalidatePattern` that matches the key.
 */
export type Action = "set" | "invalidate" | "clear" | "pattern"

/** Which process loads (the other one writes), when the two sides are two processes. */
export type Loader = "parent" | "worker"

/** One interleaving, as its seed says. */
export interface Plan {
  /** What the key holds before: nothing, an invalidation's tombstone, or a stale entry. */
  readonly prefill: "none" | "tombstone" | "stale"
  readonly action: Action
  /** The action comes before the load starts (else: after the load read the source, before it ends). */
  readonly before: boolean
  /** The load is a `getMany` (else a `get`). */
  readonly batch: boolean
  readonly loader: Loader
}

const pick = <A>(random: Random.Random, choices: ReadonlyArray<A>): Effect.Effect<A> =>
  Effect.map(random.nextIntBetween(0, choices.length), (i) => choices[i]!)

/**
 * The interleaving of a seed, the same in one process (`interleavings`, which ignores `loader`)
 * and across two (`lateWritesProcesses`).
 */
export const plan = (seed: number, actions: ReadonlyArray<Action>): Effect.Effect<Plan> =>
  Effect.gen(function*() {
    const random = Random.make(seed)
    const prefill = yield* pick(random, ["none", "tombstone", "stale"] as const)
    const action = yield* pick(random, actions)
    const before = yield* pick(random, [true, false])
    const batch = yield* pick(random, [true, false])
    const loader = yield* pick(random, ["parent", "worker"] as const)
    return { prefill, action, before, batch, loader }
  })

/** How one interleaving went. */
export interface Outcome {
  readonly prefill: "none" | "tombstone" | "stale"
  readonly action: Action
  readonly before: boolean
  readonly batch: boolean
  /** The loader ran (a miss or a refresh), rather than a hit answering. */
  readonly loaded: boolean
  /** The value left in the store is older than the newest the source holds. */
  readonly older: boolean
}

export interface ScenarioOptions {
  /** Two store objects over one backend. */
  readonly stores: Effect.Effect<readonly [CacheStore.Service, CacheStore.Service], never, Scope.Scope>
  readonly ttl: Duration.DurationInput
  readonly staleWhileRevalidate: Duration.DurationInput
  /** Moves time so that a fresh entry is stale (inside its stale window). */
  readonly makeStale: Effect.Effect<void>
  /** Leaves out the store's fence, to show what happens without it. */
  readonly withoutFence?: boolean
  /**
   * Leaves out the loading side's check of the namespace's purge token (its store says it cannot
   * list keys), to show what happens without it.
   */
  readonly withoutPurges?: boolean
  /** The actions drawn from (default: `set` and `invalidate`). */
  readonly actions?: ReadonlyArray<Action>
}

/** What one run's key is doing: its source value, and the signals of its slow load. */
interface KeyRun {
  source: number
  readonly started: Deferred.Deferred<void>
  readonly gate: Deferred.Deferred<void>
  readonly written: Deferred.Deferred<void>
  /**
   * The fiber that ran the loader: the load's flight, which writes the loaded value once the
   * loader returns (and, after a purge, takes it back), then ends.
   */
  flight?: Fiber.RuntimeFiber<unknown, unknown>
}

/** The caller's key of a store key (the runs' keys have no `:`). */
const callerKey = (full: string) => full.slice(full.lastIndexOf(":") + 1)

/**
 * The store as the loading side sees it: every write of a loaded value (fenced or not) is
 * reported once it has returned, so the run knows when the loaded value has landed or was refused.
 */
const reporting = (
  store: CacheStore.Service,
  runs: Map<string, KeyRun>,
  withoutFence: boolean,
  withoutPurges: boolean
) => {
  const done = <A, E>(full: string, effect: Effect.Effect<A, E>) =>
    Effect.ensuring(
      effect,
      Effect.suspend(() => {
        const run = runs.get(callerKey(full))
        return run === undefined ? Effect.void : Deferred.succeed(run.written, undefined)
      })
    )
  return CacheStore.make({
    name: store.name,
    capabilities: withoutPurges ? { ...store.capabilities, scan: false } : store.capabilities,
    get: store.get,
    getMany: store.getMany,
    set: (key, value, ttl) => done(key, store.set(key, value, ttl)),
    setMany: (entries) =>
      Effect.forEach(entries, (e) => done(e.key, store.set(e.key, e.value, e.ttl)), { discard: true }),
    setIfAbsent: store.setIfAbsent,
    delete: store.delete,
    deleteMany: store.deleteMany,
    expire: store.expire,
    lease: store.lease,
    fence: withoutFence || store.fence === undefined ? undefined : {
      setIf: (key, expected, value, ttl, epoch) => done(key, store.fence!.setIf(key, expected, value, ttl, epoch)),
      swap: store.fence.swap,
      epoch: store.fence.epoch
    }
  })
}

/**
 * Runs `count` seeded interleavings (seeds 0…count−1), `concurrency` at a time, each on a key of
 * its own, through one loading handle and one writing handle; how many left an older value.
 */
export const interleavings = (
  count: number,
  options: ScenarioOptions,
  concurrency = 1
): Effect.Effect<{ readonly older: number; readonly loaded: number; readonly outcomes: ReadonlyArray<Outcome> }> =>
  Effect.scoped(Effect.gen(function*() {
    const [storeA, storeB] = yield* options.stores
    const runs = new Map<string, KeyRun>()
    /** Notes the fiber the load of `key` runs in (the first one: a batch's, not its keys'). */
    const inFlight = (key: string) =>
      Effect.withFiberRuntime<void>((fiber) => {
        const run = runs.get(key)
        if (run !== undefined) run.flight ??= fiber
        return Effect.void
      })
    const load = (key: string) =>
      Effect.gen(function*() {
        const run = runs.get(key)!
        const read = run.source
        yield* Deferred.succeed(run.started, undefined)
        yield* Deferred.await(run.gate)
        return `v${read}`
      })
    const common = { namespace: "late", value: Schema.String, ttl: options.ttl }
    const loading = yield* ReadThrough.make({
      ...common,
      staleWhileRevalidate: options.staleWhileRevalidate,
      lookup: (key: string) => Effect.zipRight(inFlight(key), load(key)),
      lookupMany: (keys: ReadonlyArray<string>) =>
        Effect.zipRight(
          Effect.forEach(keys, inFlight, { discard: true }),
          Effect.forEach(keys, (k) => Effect.map(load(k), (v) => [k, v] as const), { concurrency: "unbounded" })
        )
    }).pipe(
      Effect.provideService(
        CacheStore.CacheStore,
        reporting(storeA, runs, options.withoutFence === true, options.withoutPurges === true)
      )
    )
    const writing = yield* CacheAside.make(common).pipe(Effect.provideService(CacheStore.CacheStore, storeB))

    const interleaving = (seed: number): Effect.Effect<Outcome> =>
      Effect.gen(function*() {
        const { action, batch, before, prefill } = yield* plan(seed, options.actions ?? ["set", "invalidate"])
        const key = `k${seed}`
        const run: KeyRun = {
          source: 0,
          started: yield* Deferred.make<void>(),
          gate: yield* Deferred.make<void>(),
          written: yield* Deferred.make<void>()
        }
        runs.set(key, run)

        if (prefill !== "none") yield* writing.set(key, "v0")
        if (prefill === "tombstone") yield* writing.invalidate(key)
        if (prefill === "stale") yield* options.makeStale

        const act = Effect.suspend(() => {
          run.source++
          switch (action) {
            case "set":
              return writing.set(key, `v${run.source}`)
            case "invalidate":
              return Effect.asVoid(writing.invalidate(key))
            case "clear":
              return Effect.asVoid(writing.clear)
            default:
              return Effect.asVoid(writing.invalidatePattern(key))
          }
        })
        if (before) {
          yield* act
          yield* Deferred.succeed(run.gate, undefined)
        }
        const reader = yield* Effect.fork(
          batch ? Effect.asVoid(loading.getMany([key])) : Effect.asVoid(loading.get(key))
        )
        if (!before) {
          // the load has read the source (a miss, or the refresh of a stale entry); the write comes now
          yield* Deferred.await(run.started)
          yield* act
          yield* Deferred.succeed(run.gate, undefined)
        }
        yield* Fiber.join(reader)
        const loaded = yield* Deferred.isDone(run.started)
        // the loaded value's write (or its refusal; after a purge, its taking back) is done when the
        // flight ends: after the get returned, for a background refresh
        if (loaded) {
          yield* Deferred.await(run.written)
          yield* Fiber.await(run.flight!)
        }
        const left = yield* writing.get(key)
        const older = Option.isSome(left) && Number(left.value.slice(1)) < run.source
        runs.delete(key)
        return { prefill, action, before, batch, loaded, older }
      }).pipe(Effect.orDie)

    const outcomes = yield* Effect.forEach(Array.from({ length: count }, (_, seed) => seed), interleaving, {
      concurrency
    })
    return {
      older: outcomes.filter((o) => o.older).length,
      loaded: outcomes.filter((o) => o.loaded).length,
      outcomes
    }
  })).pipe(Effect.orDie)

/** What the race between two OS processes left. */
export interface ProcessRace {
  /** What the slow load in the other process read from the source. */
  readonly read: string
  /** What its `get` answered. */
  readonly answered: string
  /** What this process reads afterwards. */
  readonly after: Option.Option<string>
  /** What a `getOrLoad` of the new source value answers afterwards. */
  readonly reloaded: string
}

/**
 * The same race between two real OS processes: a slow load in a child process
 * (harness/lateWriteWorker.ts) reads the source (a file) and waits; this process changes the
 * source, then `set`s or invalidates the key through `store` (the same backend and prefix); then
 * the load ends and writes — or, fenced, does not.
 */
export const acrossProcesses = <E>(options: {
  readonly action: "set" | "invalidate"
  readonly worker: WorkerStore
  readonly prefix: string
  readonly store: Effect.Effect<CacheStore.Service, E, Scope.Scope>
}): Effect.Effect<ProcessRace, E | Error, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "late-write-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    const source = path.join(dir, "source")
    fs.writeFileSync(source, "0")
    const worker = yield* startChild("./lateWriteWorker.ts", {
      store: options.worker,
      prefix: options.prefix,
      key: "k",
      source
    })
    const read = (yield* worker.waitFor((line) => line.startsWith("READ "))).slice(5)
    // the other process read the source and is loading; this one changes the source and the cache
    const cache = yield* CacheAside.make({ namespace: "late", value: Schema.String, ttl: "1 minute" }).pipe(
      Effect.provideServiceEffect(CacheStore.CacheStore, options.store)
    )
    fs.writeFileSync(source, "1")
    if (options.action === "set") yield* cache.set("k", "v1")
    else yield* cache.invalidate("k")
    const answered = (yield* worker.request("GO", (line) => line.startsWith("DONE "))).slice(5)
    // the worker exits once its get has returned, after its write or its refused write
    yield* Effect.async<void>((resume) => {
      if (worker.child.exitCode !== null || worker.child.signalCode !== null) return resume(Effect.void)
      worker.child.once("exit", () => resume(Effect.void))
    })
    const after = yield* cache.get("k")
    const reloaded = yield* cache.getOrLoad("k", Effect.succeed("v1"))
    return { read, answered, after, reloaded }
  })
