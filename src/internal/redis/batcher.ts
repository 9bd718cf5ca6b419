import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { StoreError } from "../../CacheError.js"

/**
 * Coalesces single-key reads issued by many fibers in the same tick into multi-key reads.
 *
 * Every `get` registers a waiter and, if none is scheduled yet, schedules a flush with
 * `process.nextTick`. Effect runs ready fibers in promise microtasks, and Node runs the next-tick
 * queue only after the microtask queue has drained, so every fiber that is ready to read in this
 * turn of the event loop has registered before the flush sends anything. The flush deduplicates
 * keys, splits them into groups the server accepts in one command (one hash slot on a cluster,
 * at most `maxBatch` keys) and sends each group as one MGET, all in the same tick (on a cluster,
 * an auto-pipelining client then sends the MGETs of one node as one pipeline).
 * @internal
 */
export interface GetBatcher {
  readonly get: (key: string) => Effect.Effect<Option.Option<Buffer>, StoreError>
}

type Waiter = (effect: Effect.Effect<Option.Option<Buffer>, StoreError>) => void

/** @internal */
export interface BatcherOptions {
  /** Reads keys that the server accepts in one command. */
  readonly fetch: (keys: Array<string>) => Promise<Array<Buffer | null>>
  /** Keys with different groups never share a command (the hash slot on a cluster). */
  readonly groupOf?: ((key: string) => number) | undefined
  readonly maxBatch: number
  readonly timeoutMs: number
  readonly toError: (cause: unknown) => StoreError
  readonly timeoutError: () => StoreError
  readonly onBatch?: ((keys: number, waiters: number) => void) | undefined
}

/** @internal */
export const make = (options: BatcherOptions): GetBatcher => {
  let pending = new Map<string, Array<Waiter>>()
  let waiting = 0
  let scheduled = false

  const settle = (
    keys: ReadonlyArray<string>,
    batch: Map<string, Array<Waiter>>,
    result: (i: number) => Effect.Effect<Option.Option<Buffer>, StoreError>
  ) => {
    for (let i = 0; i < keys.length; i++) {
      const waiters = batch.get(keys[i]!)
      if (waiters === undefined) continue
      const effect = result(i)
      // A waiter whose fiber was interrupted ignores this: Effect drops a resume that comes late.
      for (const resume of waiters) resume(effect)
    }
  }

  const send = (keys: Array<string>, batch: Map<string, Array<Waiter>>) => {
    let done = false
    const timer = setTimeout(() =>
      // Due timers run before sockets are read: after a blocked event loop the reply may already
      // be waiting, so the timeout is only declared after one more I/O phase.
      setImmediate(() => {
        if (done) return
        done = true
        const error = Effect.fail(options.timeoutError())
        settle(keys, batch, () => error)
      }), options.timeoutMs)
    const fail = (cause: unknown) => {
      if (done) return
      done = true
      clearTimeout(timer)
      const error = Effect.fail(options.toError(cause))
      settle(keys, batch, () => error)
    }
    let promise: Promise<Array<Buffer | null>>
    try {
      promise = options.fetch(keys)
    } catch (cause) {
      return fail(cause)
    }
    promise.then((values) => {
      if (done) return
      done = true
      clearTimeout(timer)
      settle(keys, batch, (i) => Effect.succeed(Option.fromNullable(values[i])))
    }, fail)
  }

  const flush = () => {
    scheduled = false
    const batch = pending
    const waiters = waiting
    pending = new Map()
    waiting = 0
    const keys = [...batch.keys()]
    options.onBatch?.(keys.length, waiters)
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

  // No canceler: an interrupted reader only stops waiting, and the shared read goes on for the
  // others (registering none also spares an interrupt handler per read).
  const get = (key: string) =>
    Effect.async<Option.Option<Buffer>, StoreError>((resume) => {
      const list = pending.get(key)
      if (list === undefined) pending.set(key, [resume])
      else list.push(resume)
      waiting++
      if (!scheduled) {
        scheduled = true
        process.nextTick(flush)
      }
    })

  return { get }
}
