/**
 * Seeded late-write interleavings between two real OS processes over one Redis: this process and
 * a worker (lateWriteSideWorker.ts) each play a side (lateWriteSide.ts). Each seed says which
 * process runs the slow load and which one the prefill and the newer `set` or invalidation, and
 * in which order; both processes derive that from the seed, so one interleaving costs two or
 * three IPC round trips (one command line each way):
 *
 * 1. the writer prepares the key (prefill; the action too, when it comes first);
 * 2. the loader starts its `get`/`getMany` and answers once its loader has read the source;
 * 3. the writer acts (when the action comes after the read);
 * 4. the loader lets its load end, waits until the load's flight has written its value (or was
 *    refused, or took it back), and reads the key; the writer reads the key too. Either read
 *    older than the source: a late write.
 *
 * Once every interleaving has ended, this process reads every key again.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import type { CacheStore } from "effect-cachekit"
import { Redis as IoRedis } from "ioredis"
import { startChild } from "./child.js"
import type { Action, Plan } from "./lateWrites.js"
import { plan } from "./lateWrites.js"
import type { Side } from "./lateWriteSide.js"
import { isOlder, makeSide, readSource } from "./lateWriteSide.js"
import type { SideCommand, SideWorkerOptions } from "./lateWriteSideWorker.js"

/** How one interleaving went. */
export interface ProcessOutcome extends Plan {
  /** The loader ran (a miss or a refresh), rather than a hit answering. */
  readonly loaded: boolean
  /** What each process read afterwards. */
  readonly atParent: string | null
  readonly atWorker: string | null
  /** The source's newest value. */
  readonly source: number
  /** A value older than the source's newest was read by either process. */
  readonly older: boolean
  /** Once every interleaving had ended, this process read a value older than the source's newest. */
  readonly olderAtEnd: boolean
}

export interface ProcessesOptions {
  /** The Redis server's port. */
  readonly port: number
  /** A store over that server with a client of its own, under `prefix`. */
  readonly store: (prefix: string) => Effect.Effect<CacheStore.Service, unknown, Scope.Scope>
  readonly prefix: string
  /** The actions drawn from (default: `set` and `invalidate`). */
  readonly actions?: ReadonlyArray<Action>
  readonly withoutFence?: boolean
  readonly withoutPurges?: boolean
  /** How many interleavings run at a time (each on a key of its own). */
  readonly concurrency: number
}

/** Runs `count` seeded interleavings (seeds 0…count−1) between this process and a worker. */
export const acrossProcessInterleavings = (
  count: number,
  options: ProcessesOptions
): Effect.Effect<ReadonlyArray<ProcessOutcome>, Error> =>
  Effect.scoped(Effect.gen(function*() {
    const { prefix, port } = options
    const actions = options.actions ?? ["set", "invalidate"]
    // the source's client; at the end it removes the run's keys, so that later runs' clears,
    // which scan the whole keyspace, do not scan them
    const db = yield* Effect.acquireRelease(
      Effect.sync(() => new IoRedis({ port, host: "127.0.0.1" })),
      (db) =>
        Effect.promise(async () => {
          for (const pattern of [`${prefix}:*`, `src:${prefix}:*`]) {
            for await (const keys of db.scanStream({ match: pattern, count: 1000 })) {
              if ((keys as Array<string>).length > 0) await db.unlink(...(keys as Array<string>))
            }
          }
        }).pipe(Effect.ensuring(Effect.sync(() => db.disconnect())))
    )
    const stores = Effect.orDie(Effect.all([options.store(prefix), options.store(prefix)]))
    const [loading, writing] = yield* stores
    const here = yield* makeSide({
      loading,
      writing,
      db,
      prefix,
      actions,
      withoutFence: options.withoutFence === true,
      withoutPurges: options.withoutPurges === true
    })
    const workerOptions: SideWorkerOptions = {
      port,
      prefix,
      actions,
      withoutFence: options.withoutFence === true,
      withoutPurges: options.withoutPurges === true
    }
    const worker = yield* startChild("./lateWriteSideWorker.ts", workerOptions)

    /** Sends one step to the worker and waits for its answer. */
    const step = (seed: number, command: SideCommand["step"], answer: string) => {
      const ok = `{"seed":${seed},"step":"${answer}"`
      const failed = `{"seed":${seed},"step":"error"`
      return Effect.flatMap(
        worker.request(
          JSON.stringify({ seed, step: command } satisfies SideCommand),
          (line) => line.startsWith(ok) || line.startsWith(failed)
        ),
        (line) =>
          line.startsWith(failed)
            ? Effect.die(new Error(`worker, seed ${seed}, ${command}: ${line}`))
            : Effect.succeed(JSON.parse(line) as { readonly loaded: boolean; readonly value: string | null })
      ).pipe(Effect.orDie)
    }
    const there: Side = {
      prepare: (seed) => Effect.asVoid(step(seed, "prepare", "prepared")),
      act: (seed) => Effect.asVoid(step(seed, "act", "acted")),
      load: (seed) => Effect.asVoid(step(seed, "load", "loading")),
      finish: (seed) => step(seed, "finish", "finished"),
      read: (seed) => Effect.map(step(seed, "read", "value"), (answer) => answer.value)
    }

    const interleaving = (seed: number): Effect.Effect<Omit<ProcessOutcome, "olderAtEnd">> =>
      Effect.gen(function*() {
        const p = yield* plan(seed, actions)
        const [loader, writer] = p.loader === "parent" ? [here, there] : [there, here]
        yield* writer.prepare(seed)
        yield* loader.load(seed)
        if (!p.before) yield* writer.act(seed)
        const { loaded, value: atLoader } = yield* loader.finish(seed)
        const atWriter = yield* writer.read(seed)
        const source = yield* readSource(db, prefix, seed)
        const [atParent, atWorker] = p.loader === "parent" ? [atLoader, atWriter] : [atWriter, atLoader]
        const older = isOlder(atParent, source) || isOlder(atWorker, source)
        return { ...p, loaded, atParent, atWorker, source, older }
      })

    const outcomes = yield* Effect.forEach(Array.from({ length: count }, (_, seed) => seed), interleaving, {
      concurrency: options.concurrency
    })
    // nothing lands later: every key again, once all are done
    return yield* Effect.forEach(outcomes, (outcome, seed) =>
      Effect.zipWith(
        here.read(seed),
        readSource(db, prefix, seed),
        (value, source) => ({ ...outcome, olderAtEnd: isOlder(value, source) })
      ), { concurrency: 64 })
  }))
