import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { StoreError } from "../../CacheError.js"
import type { DirectReply as ReadCallback } from "../../CacheStore.js"
import type { CircuitBreaker } from "../circuitBreaker.js"
import { defaultIsFailure } from "../circuitBreaker.js"
import type { Deadlines } from "../deadlines.js"

/**
 * Coalesces single-key reads issued by many fibers in the same tick into multi-key reads.
 *
 * Every read registers a callback and, if none is scheduled yet, schedules a flush with
 * `process.nextTick`. Effect runs ready fibers in promise microtasks, and Node runs the next-tick
 * queue only after the microtask queue has drained, so every fiber that is ready to read in this
 * turn of the event loop has registered before the flush sends anything. The flush deduplicates
 * keys, splits them into groups the server accepts in one command (one hash slot on a cluster,
 * at most `maxBatch` keys) and sends each group as one MGET, all in the same tick (on a cluster,
 * an auto-pipelining client then sends the MGETs of one node as one pipeline).
 *
 * A circuit breaker, when given, is consulted as each read starts and told the outcome once per
 * command (a failed command counts one failure per reader waiting on it), so a read costs no
 * Effect step for it; the log line of a change of state rides on the first reader's outcome.
 * @internal
 */
export interface GetBatcher {
  readonly get: (key: string) => Effect.Effect<Option.Option<Buffer>, StoreError>
  /** Registers a read; `callback` is called once with its outcome (at once if the breaker refuses it). */
  readonly read: (key: string, callback: ReadCallback) => void
}

/** One reader, or several reading the same key (most keys of a batch have one). */
type Readers = ReadCallback | Array<ReadCallback>

/** @internal */
export interface BatcherOptions {
  /**
   * Reads keys that the server accepts in one command. The keys are those given to `read`; a
   * store that adds a prefix adds it here, once per key of a batch, so the keys the batcher
   * compares can be the caller's own strings (whose hashes the engine has already computed).
   */
  readonly fetch: (keys: Array<string>) => Promise<Array<Buffer | null>>
  /** Keys with different groups never share a command (the hash slot on a cluster). */
  readonly groupOf?: ((key: string) => number) | undefined
  readonly maxBatch: number
  /** The command timeout. */
  readonly deadlines: Deadlines
  readonly toError: (cause: unknown) => StoreError
  readonly timeoutError: () => StoreError
  readonly onBatch?: ((keys: number, readers: number) => void) | undefined
  readonly breaker?: CircuitBreaker | undefined
}

const count = (readers: Readers): number => typeof readers === "function" ? 1 : readers.length

/** @internal */
export const make = (options: BatcherOptions): GetBatcher => {
  const breaker = options.breaker
  const maxBatch = options.maxBatch
  // The pending batch: distinct keys in arrival order, their readers at the same positions, and
  // each key's position (to add a reader to a key already asked for).
  let keys: Array<string> = []
  let readers: Array<Readers> = []
  let positions = new Map<string, number>()
  let waiting = 0
  let scheduled = false

  const settle = (
    readers: ReadonlyArray<Readers>,
    values: ReadonlyArray<Buffer | null> | undefined,
    error: StoreError | undefined
  ) => {
    let before: Effect.Effect<void> | undefined
    if (breaker !== undefined) {
      // an error that is not the backend's fault (a refused command) still shows it answering
      if (error === undefined || !defaultIsFailure(error)) breaker.succeeded()
      else {
        let n = 0
        for (const r of readers) n += count(r)
        breaker.failed(n)
      }
      if (breaker.hasLog()) before = breaker.flushLog
    }
    for (let i = 0; i < readers.length; i++) {
      const r = readers[i]!
      const value = values === undefined ? null : values[i] ?? null
      // A reader whose fiber was interrupted ignores this: Effect drops a resume that comes late.
      if (typeof r === "function") r(value, error, before)
      else for (const callback of r) callback(value, error, before)
      before = undefined
    }
  }

  const send = (keys: Array<string>, readers: Array<Readers>) => {
    const deadline = options.deadlines.add(() => settle(readers, undefined, options.timeoutError()))
    const fail = (cause: unknown) => {
      if (!deadline.settle()) return
      settle(readers, undefined, options.toError(cause))
    }
    let promise: Promise<Array<Buffer | null>>
    try {
      promise = options.fetch(keys)
    } catch (cause) {
      return fail(cause)
    }
    promise.then((values) => {
      if (!deadline.settle()) return
      settle(readers, values, undefined)
    }, fail)
  }

  /** Sends keys (with their readers) in commands of at most `maxBatch` keys. */
  const sendChunks = (keys: Array<string>, readers: Array<Readers>) => {
    if (keys.length <= maxBatch) return send(keys, readers)
    for (let i = 0; i < keys.length; i += maxBatch) {
      send(keys.slice(i, i + maxBatch), readers.slice(i, i + maxBatch))
    }
  }

  const flush = () => {
    scheduled = false
    const batchKeys = keys
    const batchReaders = readers
    options.onBatch?.(batchKeys.length, waiting)
    keys = []
    readers = []
    positions = new Map()
    waiting = 0
    const groupOf = options.groupOf
    if (groupOf === undefined) return sendChunks(batchKeys, batchReaders)
    const groups = new Map<number, { keys: Array<string>; readers: Array<Readers> }>()
    for (let i = 0; i < batchKeys.length; i++) {
      const g = groupOf(batchKeys[i]!)
      const group = groups.get(g)
      if (group === undefined) groups.set(g, { keys: [batchKeys[i]!], readers: [batchReaders[i]!] })
      else {
        group.keys.push(batchKeys[i]!)
        group.readers.push(batchReaders[i]!)
      }
    }
    for (const group of groups.values()) sendChunks(group.keys, group.readers)
  }

  const read = (key: string, callback: ReadCallback): void => {
    if (breaker !== undefined && breaker.state() !== "closed" && !breaker.admit()) {
      return callback(null, breaker.refused("get"), breaker.hasLog() ? breaker.flushLog : undefined)
    }
    const at = positions.get(key)
    if (at === undefined) {
      positions.set(key, keys.length)
      keys.push(key)
      readers.push(callback)
    } else {
      const r = readers[at]!
      if (typeof r === "function") readers[at] = [r, callback]
      else r.push(callback)
    }
    waiting++
    if (!scheduled) {
      scheduled = true
      process.nextTick(flush)
    }
  }

  // No canceler: an interrupted reader only stops waiting, and the shared read goes on for the
  // others (registering none also spares an interrupt handler per read).
  const get = (key: string) =>
    Effect.async<Option.Option<Buffer>, StoreError>((resume) =>
      read(key, (value, error, before) => {
        const outcome = error === undefined
          ? Effect.succeed(Option.fromNullable(value as Buffer | null))
          : Effect.fail(error as StoreError)
        resume(before === undefined ? outcome : Effect.zipRight(before, outcome))
      })
    )

  return { get, read }
}
