import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { StoreError } from "../../CacheError.js"
import type { CircuitBreaker } from "../circuitBreaker.js"
import { defaultIsFailure } from "../circuitBreaker.js"
import type { Deadlines } from "../deadlines.js"
import type { ReadCallback } from "../store.js"

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
  /** Reads keys that the server accepts in one command. */
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

const count = (readers: Readers | undefined): number =>
  readers === undefined ? 0 : typeof readers === "function" ? 1 : readers.length

/** @internal */
export const make = (options: BatcherOptions): GetBatcher => {
  const breaker = options.breaker
  let pending = new Map<string, Readers>()
  let waiting = 0
  let scheduled = false

  const settle = (
    keys: ReadonlyArray<string>,
    batch: Map<string, Readers>,
    values: ReadonlyArray<Buffer | null> | undefined,
    error: StoreError | undefined
  ) => {
    let before: Effect.Effect<void> | undefined
    if (breaker !== undefined) {
      // an error that is not the backend's fault (a refused command) still shows it answering
      if (error === undefined || !defaultIsFailure(error)) breaker.succeeded()
      else {
        let readers = 0
        for (const key of keys) readers += count(batch.get(key))
        breaker.failed(readers)
      }
      if (breaker.hasLog()) before = breaker.flushLog
    }
    for (let i = 0; i < keys.length; i++) {
      const readers = batch.get(keys[i]!)
      if (readers === undefined) continue
      const value = values === undefined ? null : values[i] ?? null
      // A reader whose fiber was interrupted ignores this: Effect drops a resume that comes late.
      if (typeof readers === "function") readers(value, error, before)
      else for (const callback of readers) callback(value, error, before)
      before = undefined
    }
  }

  const send = (keys: Array<string>, batch: Map<string, Readers>) => {
    const deadline = options.deadlines.add(() => settle(keys, batch, undefined, options.timeoutError()))
    const fail = (cause: unknown) => {
      if (!deadline.settle()) return
      settle(keys, batch, undefined, options.toError(cause))
    }
    let promise: Promise<Array<Buffer | null>>
    try {
      promise = options.fetch(keys)
    } catch (cause) {
      return fail(cause)
    }
    promise.then((values) => {
      if (!deadline.settle()) return
      settle(keys, batch, values, undefined)
    }, fail)
  }

  const flush = () => {
    scheduled = false
    const batch = pending
    const readers = waiting
    pending = new Map()
    waiting = 0
    const keys = [...batch.keys()]
    options.onBatch?.(keys.length, readers)
    if (options.groupOf === undefined) {
      for (let i = 0; i < keys.length; i += options.maxBatch) send(keys.slice(i, i + options.maxBatch), batch)
      return
    }
    const groups = new Map<number, Array<string>>()
    for (const key of keys) {
      const g = options.groupOf(key)
      const group = groups.get(g)
      if (group === undefined) groups.set(g, [key])
      else group.push(key)
    }
    for (const group of groups.values()) {
      for (let i = 0; i < group.length; i += options.maxBatch) send(group.slice(i, i + options.maxBatch), batch)
    }
  }

  const read = (key: string, callback: ReadCallback): void => {
    if (breaker !== undefined && breaker.state() !== "closed" && !breaker.admit()) {
      return callback(null, breaker.refused("get"), breaker.hasLog() ? breaker.flushLog : undefined)
    }
    const readers = pending.get(key)
    if (readers === undefined) pending.set(key, callback)
    else if (typeof readers === "function") pending.set(key, [readers, callback])
    else readers.push(callback)
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
