/**
 * Write-behind caching: a write updates the cache at once and is saved to the source of truth
 * later, in batches, by a flush fiber owned by the scope.
 *
 * - Writes to one key before a flush coalesce: the last one wins, one row per key per batch.
 * - The flush runs on the `flush` schedule and whenever `batchSize` writes are pending; `flush`
 *   forces one; closing the scope flushes everything pending, within `shutdownTimeout`.
 * - A failed batch is retried on the `retry` schedule and never dropped: when the schedule ends
 *   its writes stay queued for the next flush and are reported on `failures`. A newer write of a
 *   key replaces a failed one. A write that fails on its own `maxAttempts` times is dead-lettered,
 *   so it cannot block the others.
 * - `maxPending` bounds memory: a write of a new key waits while the queue is full, never dropped.
 * - Writes of one key reach the source in the order they were made; `saveBatch` must be an
 *   idempotent upsert (a batch interrupted at shutdown may be saved again).
 *
 * @since 0.1.0
 */
import type * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as Cache from "./Cache.js"
import { EncodeError } from "./CacheError.js"
import type { CacheError, StoreError } from "./CacheError.js"
import type * as CacheMetrics from "./CacheMetrics.js"
import type { CacheStore } from "./CacheStore.js"
import { keyedLockOf } from "./internal/keyedLock.js"
import { check, duration, optionalInteger } from "./internal/options.js"
import * as strategy from "./internal/strategy.js"
import * as engine from "./internal/writeBehind.js"

/**
 * A write-behind cache of `A` by key `K` over a source whose operations fail with `E`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WriteBehind<K, A, E = never> {
  /**
   * The value of a key: from the cache (every write updated it), else the newest write not yet
   * saved, else `load` (when given; one load per key at a time). `None` when none of them has it.
   */
  readonly read: (key: K) => Effect.Effect<Option.Option<A>, E | CacheError>
  /**
   * Caches the value and queues it for the source; waits while `maxPending` writes are queued.
   * A value the cache cannot store is still queued (its old entry is removed); when the old entry
   * cannot be removed either, the write is queued and fails with `StoreError`.
   */
  readonly write: (key: K, value: A) => Effect.Effect<void, CacheError>
  /** Flushes every write queued now, and returns when that flush is over (saved or reported). */
  readonly flush: Effect.Effect<void>
  /** Failed batches, dead letters and writes left unsaved at shutdown, as they happen. */
  readonly failures: Stream.Stream<Failure<K, A, E>>
  /** The writes dead-lettered so far. */
  readonly deadLetters: Effect.Effect<ReadonlyArray<DeadLetter<K, A, E>>>
  /** Counters of the queue since it was made. */
  readonly stats: Effect.Effect<Stats>
  /** Counters of the cache (hits, misses, loads) since it was made. */
  readonly cacheStats: Effect.Effect<CacheMetrics.Stats>
}

/**
 * A failure of the write-behind queue, as `failures` reports it.
 *
 * @since 0.1.0
 * @category models
 */
export type Failure<K, A, E> = BatchFailed<K, E> | DeadLetter<K, A, E> | Unwritten<K, A>

/**
 * A batch whose retries ran out: its writes stay queued for the next flush.
 *
 * @since 0.1.0
 * @category models
 */
export interface BatchFailed<K, E> {
  readonly _tag: "BatchFailed"
  readonly keys: ReadonlyArray<K>
  readonly cause: Cause.Cause<E>
}

/**
 * A write that failed `attempts` (= `maxAttempts`) saves of its own and was taken off the queue.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeadLetter<K, A, E> {
  readonly _tag: "DeadLettered"
  readonly key: K
  readonly value: A
  readonly attempts: number
  readonly cause: Cause.Cause<E>
}

/**
 * The writes still unsaved when the shutdown deadline passed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Unwritten<K, A> {
  readonly _tag: "Unwritten"
  readonly writes: ReadonlyArray<readonly [K, A]>
}

/**
 * Counters of a write-behind queue (also exported as the `CacheMetrics.writeBehind*` metrics).
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  readonly namespace: string
  /** Writes queued or being saved now. */
  readonly pending: number
  /** Writes saved to the source. */
  readonly flushed: number
  /** Writes replaced by a newer write of their key before they were saved. */
  readonly coalesced: number
  /** Writes tried again after a failed save. */
  readonly retried: number
  /** Writes whose retries ran out (still queued), or unsaved at shutdown. */
  readonly failed: number
  /** Writes dead-lettered. */
  readonly deadLettered: number
  /** Calls of `saveBatch`, successful or not. */
  readonly batches: number
}

/**
 * Where durable mode keeps each write until it is saved: `Redis.journal` (a Redis Stream), or
 * any store with the same guarantees. Entries are appended before `write` returns, marked done
 * after `saveBatch` saved them (or they were dead-lettered), and the ones not done are replayed
 * when the next write-behind cache over the journal starts.
 *
 * @since 0.1.0
 * @category models
 */
export interface Journal {
  /** A name for logs. */
  readonly name: string
  /** Appends one write (key and value as JSON); its entry id. */
  readonly append: (key: string, value: string) => Effect.Effect<string, StoreError>
  /** The entries not done, oldest first, taken over by this process. */
  readonly recover: Effect.Effect<ReadonlyArray<JournalEntry>, StoreError>
  /** Marks entries done. */
  readonly done: (ids: ReadonlyArray<string>) => Effect.Effect<void, StoreError>
}

/**
 * One write in a `Journal`: its key and value as JSON.
 *
 * @since 0.1.0
 * @category models
 */
export interface JournalEntry {
  readonly id: string
  readonly key: string
  readonly value: string
}

/**
 * Options of a write-behind cache.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<K, A, I, E, R> extends Cache.Options<A, I> {
  /** Saves a batch of writes (one per key, each key's newest) to the source: an idempotent upsert. */
  readonly saveBatch: (batch: ReadonlyArray<readonly [K, A]>) => Effect.Effect<void, E, R>
  /** Loads one value from the source on a cache miss, once per key at a time. */
  readonly load?: ((key: K) => Effect.Effect<A, E, R>) | undefined
  /** When to flush: a duration between flushes, or any `Schedule`. */
  readonly flush: Duration.DurationInput | Schedule.Schedule<unknown, unknown>
  /** Most writes in one `saveBatch` call; a flush starts as soon as this many are queued. 100 by default. */
  readonly batchSize?: number | undefined
  /** Most writes queued or being saved; a write of a new key waits while it is reached. 10,000 by default. */
  readonly maxPending?: number | undefined
  /**
   * How a failed batch is retried within a flush (its input is the failure's `Cause`). By default
   * 4 retries, 100 ms apart doubling.
   */
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
  /** Failed saves of a write on its own before it is dead-lettered; an integer ≥ 1, 5 by default. */
  readonly maxAttempts?: number | undefined
  /** How long closing the scope keeps flushing before it reports what is left. 30 seconds by default. */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
  /** How a key becomes the string stored (default: strings as they are, other values by `String`/JSON). */
  readonly key?: ((key: K) => string) | undefined
  /**
   * Durable mode: every write is appended to this journal before `write` returns, and the
   * writes a process left unsaved (killed before its flush) are replayed when the cache is made.
   * At-least-once: `saveBatch` must be an idempotent upsert. Keys must survive `JSON.stringify`
   * and `JSON.parse`; values are stored with the `value` Schema as JSON.
   */
  readonly journal?: Journal | undefined
}

const component = "WriteBehind"
const defaultRetry = Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(4)))

/**
 * Builds a write-behind cache over the `CacheStore` in context; its flush fiber belongs to the
 * scope, and closing the scope flushes what is pending. The source operations' requirements `R`
 * are taken from the context of `make`. Nonsense options throw `CacheError.InvalidOptions` when
 * `make` is called. In durable mode, `make` first replays the journal, and fails with
 * `StoreError` when it cannot read it; without a journal it never fails.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { MemoryStore, WriteBehind } from "effect-cachekit"
 * import { Effect, Schema } from "effect"
 *
 * const rows = new Map<string, number>()
 *
 * const program = Effect.gen(function*() {
 *   const scores = yield* WriteBehind.make({
 *     namespace: "score",
 *     value: Schema.Number,
 *     ttl: "1 hour",
 *     flush: "1 second",
 *     batchSize: 500,
 *     saveBatch: (batch: ReadonlyArray<readonly [string, number]>) =>
 *       Effect.sync(() => batch.forEach(([id, score]) => rows.set(id, score)))
 *   })
 *   yield* scores.write("ada", 10)
 *   yield* scores.write("ada", 12) // coalesces with the first: one row is saved
 *   yield* scores.flush
 * })
 *
 * Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(MemoryStore.layer())))
 * ```
 */
export const make = <K, A, I, E, R>(
  options: Options<K, A, I, E, R>
): Effect.Effect<WriteBehind<K, A, E>, StoreError, CacheStore | Scope.Scope | R> => {
  const resolved = strategy.resolve(component, options)
  check(
    typeof options.saveBatch === "function",
    component,
    "saveBatch",
    "saveBatch must be a function"
  )
  optionalInteger(component, "batchSize", options.batchSize, 1)
  optionalInteger(component, "maxPending", options.maxPending, 1)
  optionalInteger(component, "maxAttempts", options.maxAttempts, 1)
  const flush = Schedule.isSchedule(options.flush)
    ? options.flush as Schedule.Schedule<unknown, unknown>
    : Schedule.spaced(duration(component, "flush", options.flush))
  check(
    options.retry === undefined || Schedule.isSchedule(options.retry),
    component,
    "retry",
    "retry must be a Schedule"
  )
  const shutdownTimeoutMillis = options.shutdownTimeout === undefined
    ? 30_000
    : Duration.toMillis(duration(component, "shutdownTimeout", options.shutdownTimeout))
  const keyOf: (key: K) => string = options.key ?? strategy.defaultKey
  const journal = options.journal
  const json = Schema.parseJson(options.value)
  const encodeJson = Schema.encodeEither(json)
  /**
   * Durable mode: the write is in the journal before it is queued, appended and queued as one
   * step. A write interrupted while it waits for room in the queue takes its entry back out of the
   * journal, where it would outlive newer writes of its key.
   */
  const journaledEnqueue = (
    journal: Journal,
    queue: engine.Engine<K, A, E>,
    k: string,
    key: K,
    value: A
  ): Effect.Effect<void, CacheError> => {
    const encoded = encodeJson(value)
    if (Either.isLeft(encoded)) {
      return Effect.fail(new EncodeError({ namespace: resolved.namespace, key: k, detail: encoded.left.message }))
    }
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(
        journal.append(JSON.stringify(key), encoded.right),
        (id) =>
          restore(queue.enqueue(k, key, value, [id])).pipe(
            Effect.onInterrupt(() => Effect.ignore(journal.done([id])))
          )
      )
    )
  }
  return Effect.gen(function*() {
    const context = yield* strategy.sourceContext<R>()
    const pipeline = yield* strategy.makeScoped(resolved)
    const lock = keyedLockOf(pipeline.store)
    const queue = yield* engine.make<K, A, E>({
      namespace: resolved.namespace,
      batchSize: options.batchSize ?? 100,
      maxPending: options.maxPending ?? 10_000,
      maxAttempts: options.maxAttempts ?? 5,
      flush,
      retry: options.retry ?? defaultRetry,
      shutdownTimeoutMillis,
      saveBatch: (batch) => Effect.provide(options.saveBatch(batch), context),
      done: journal?.done
    })
    if (journal !== undefined) yield* replay(journal, queue, keyOf, json, resolved.namespace)
    const queued = (k: string): Option.Option<A> => {
      const rec = queue.latest(k)
      return rec === undefined ? Option.none() : Option.some(rec.value)
    }
    const load = options.load
    const lookup = load === undefined ? undefined : (key: K) => Effect.provide(load(key), context)
    return {
      read: (key) => {
        const k = keyOf(key)
        // a hit is as for any cache (every write updated it); on a miss (evicted, expired, a cache
        // write that failed) a write not yet saved answers before the source, which lacks it
        if (lookup === undefined) {
          return Effect.map(pipeline.read(k), (cached) => Option.isSome(cached) ? cached : queued(k))
        }
        return Effect.map(
          pipeline.getOrLoad(k, key, (arg: K) => {
            const rec = queue.latest(k)
            return rec === undefined ? lookup(arg) : Effect.succeed(rec.value)
          }),
          Option.some
        )
      },
      write: (key, value) => {
        const k = keyOf(key)
        // queued and cached under the key's lock: the cache ends with the write the queue ends with
        return lock.withLock(pipeline.fullKey(k))(
          Effect.zipRight(
            journal === undefined ? queue.enqueue(k, key, value, []) : journaledEnqueue(journal, queue, k, key, value),
            pipeline.replace(k, value)
          )
        )
      },
      flush: queue.flush,
      failures: queue.failures,
      deadLetters: queue.deadLetters,
      stats: queue.stats,
      cacheStats: pipeline.stats
    }
  })
}

/** Queues the writes a journal holds, oldest first; an entry that no longer decodes is logged and left. */
const replay = <K, A, E>(
  journal: Journal,
  queue: engine.Engine<K, A, E>,
  keyOf: (key: K) => string,
  json: Schema.Schema<A, string>,
  namespace: string
): Effect.Effect<void, StoreError> =>
  Effect.flatMap(journal.recover, (entries) => {
    const decode = Schema.decodeEither(json)
    return Effect.forEach(entries, (entry) => {
      const value = decode(entry.value)
      let key: K
      try {
        key = JSON.parse(entry.key) as K
      } catch {
        return Effect.logError("a journal entry's key is not JSON; it is left in the journal").pipe(
          Effect.annotateLogs({ namespace, journal: journal.name, entry: entry.id })
        )
      }
      if (Either.isLeft(value)) {
        return Effect.logError("a journal entry no longer decodes; it is left in the journal").pipe(
          Effect.annotateLogs({ namespace, journal: journal.name, entry: entry.id, error: value.left.message })
        )
      }
      return queue.enqueue(keyOf(key), key, value.right, [entry.id])
    }, { discard: true })
  })

/**
 * A tag for a write-behind cache, for programs that prefer `Context.GenericTag` to a class tag.
 *
 * @since 0.1.0
 * @category tags
 * @example
 * ```ts
 * import { WriteBehind } from "effect-cachekit"
 *
 * const Scores = WriteBehind.Tag<string, number>("app/Scores")
 * ```
 */
export const Tag = <K, A, E = never>(key: string): Context.Tag<WriteBehind<K, A, E>, WriteBehind<K, A, E>> =>
  Context.GenericTag<WriteBehind<K, A, E>>(key)
