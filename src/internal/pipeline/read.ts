/**
 * The hot path: reading a key's entry from the store and handing it to the decision, by the
 * fastest way the store offers — its synchronous in-process read, its callback read, or `get` —
 * with the decoded-entry memo for byte stores. A hit is one synchronous decision with no work
 * that can be avoided.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import type { CacheError } from "../../CacheError.js"
import * as CacheStore from "../../CacheStore.js"
import type { Codec } from "./envelope.js"
import { Entry, isTombstone } from "./envelope.js"
import type { Slider } from "./slide.js"
import type { Counters } from "./stats.js"
import type { OnStoreFailure } from "./storeErrors.js"
import { isTraced, untracedTracer } from "./tracing.js"

/** A loader called with the argument of the read; not called at all on a hit. @internal */
export type Loader<X, A, E, R = never> = (arg: X) => Effect.Effect<A, E, R>

/**
 * What a read goes on with: the read's own parameters (the caller's key, and what the decision
 * needs besides: a loader and its argument), the store key, the entry found (none: undefined),
 * and whether it runs traced. The parameters are passed one by one, not as an object: a hit
 * allocates nothing for them.
 * @internal
 */
export type Next<A, X, L, B, E, R> = (
  key: string,
  arg: X,
  load: L,
  full: string,
  entry: Entry<A> | undefined,
  traced: boolean
) => Effect.Effect<B, E, R>

/** @internal */
export interface ReadOptions<A> {
  readonly namespace: string
  readonly store: CacheStore.Service
  readonly codec: Codec<A>
  readonly prefix: string
  readonly counters: Counters
  readonly onStoreFailure: OnStoreFailure
  readonly spanAttributes: Record<string, unknown>
  readonly now: () => number
  /** The namespace's sliding TTL, if it has one. */
  readonly slider: Slider | undefined
}

/** @internal */
export interface Reader<A> {
  /** A read of one key by the fastest path the store offers, continued by `next`. */
  readonly reading: <X, L, B, E, R>(
    spanName: string,
    next: Next<A, X, L, B, E, R>
  ) => (key: string, arg: X, load: L) => Effect.Effect<B, E | CacheError, R>
  /** The entry a stored value holds, or undefined when it holds none that decodes (then it is dropped). */
  readonly entryOf: (key: string, full: string, stored: CacheStore.Value) => Entry<A> | undefined
  /** Deletes the entries that failed to decode since the last call. */
  readonly flushDrops: Effect.Effect<void>
  /** Whether entries failed to decode since the last `flushDrops`. */
  readonly hasDrops: () => boolean
  /**
   * What the store holds of a key now, read with `get`: the entry or tombstone (none when nothing
   * decodes, or the read failed and the store-failure policy lets the caller go on).
   */
  readonly current: (key: string, full: string) => Effect.Effect<Entry<A> | undefined, CacheError>
}

/** Bounds of the memo of decoded entries (at most ~4 MiB of copied bytes). */
const DECODED_MAX_ENTRIES = 1024
const DECODED_MAX_BYTES = 4096

interface Memo<A> {
  readonly full: string
  readonly bytes: Uint8Array
  readonly entry: Entry<A>
}

/** @internal */
export const makeReader = <A>(options: ReadOptions<A>): Reader<A> => {
  const { codec, counters, namespace, onStoreFailure, prefix, store } = options
  const untraced = untracedTracer()
  const direct = CacheStore.directReadOf(store)
  const { now, slider } = options
  // a sliding hit on a store that reads and extends in one command extends within its read
  const touch = slider === undefined ? undefined : CacheStore.getAndExpireOf(store)
  // where a lease lives in the entry (memcached), a key not read before may hold a lease's stub,
  // which an extension would lengthen: only keys known to hold an entry are read that way there
  const touchUnread = store.lease?.endsOnWrite !== true

  /**
   * The last decoded entry of recently read keys of a byte store, with the bytes it came from.
   * A read whose bytes are identical (compared in full) reuses the entry instead of parsing the
   * envelope and validating the value again: decoding is deterministic, so identical bytes give
   * an identical entry. Keyed by the caller's key, whose hash is usually known already; it also
   * keeps the store key, so a read of a remembered key builds and hashes no new string.
   */
  const decoded = new Map<string, Memo<A>>()
  const remember = (key: string, full: string, bytes: Uint8Array, entry: Entry<A>) => {
    if (bytes.byteLength > DECODED_MAX_BYTES) return
    decoded.delete(key)
    // a copy (a Buffer's own `slice` would be a view): the bytes a store hands over may be a view
    // into a buffer it reads into again (see `CacheStore.DirectReply`)
    const copy = new Uint8Array(bytes.byteLength)
    copy.set(bytes)
    decoded.set(key, { full, bytes: copy, entry })
    if (decoded.size > DECODED_MAX_ENTRIES) decoded.delete(decoded.keys().next().value!)
  }

  const pendingDrops: Array<string> = []
  const drop = (full: string) => {
    counters.decodeFailure()
    pendingDrops.push(full)
  }
  const flushDrops: Effect.Effect<void> = Effect.suspend(() => {
    if (pendingDrops.length === 0) return Effect.void
    const keys = pendingDrops.splice(0, pendingDrops.length)
    return Effect.zipRight(
      Effect.logDebug("dropping cache entries that no longer decode").pipe(
        Effect.annotateLogs({ namespace, keys: keys.join(", ") })
      ),
      Effect.ignore(store.deleteMany(keys))
    )
  })

  const entryOf = (
    key: string,
    full: string,
    stored: CacheStore.Value,
    known?: Memo<A>
  ): Entry<A> | undefined => {
    if (stored instanceof Entry) {
      if (stored.fingerprint === codec.fingerprint) return stored as Entry<A>
      if (stored.fingerprint === codec.failureFingerprint && stored.failed) return stored as Entry<A>
      // an invalidation's marker: a miss whose fence token a load writes against
      if (isTombstone(stored)) return stored as Entry<A>
    } else if (stored instanceof Uint8Array) {
      const memo = known ?? decoded.get(key)
      if (
        memo !== undefined && memo.bytes.byteLength === stored.byteLength && Buffer.compare(memo.bytes, stored) === 0
      ) {
        return memo.entry
      }
      const result = codec.fromBytes(stored)
      if (Either.isRight(result)) {
        remember(key, full, stored, result.right)
        return result.right
      }
    }
    drop(full)
    return undefined
  }

  const reading = <X, L, B, E, R>(
    spanName: string,
    next: Next<A, X, L, B, E, R>
  ): (key: string, arg: X, load: L) => Effect.Effect<B, E | CacheError, R> => {
    /**
     * The TTL a read at `t` extends the key to when it reads with `getAndExpire`, or undefined
     * when it is a plain read: known entries whose debounce has not passed stay plain reads.
     */
    const extendingTtl = (memo: Memo<A> | undefined, t: number): number | undefined => {
      if (memo === undefined) return touchUnread ? slider!.slideMillis : undefined
      if (!slider!.due(memo.entry, t)) return undefined
      const ttl = slider!.ttlAt(memo.entry, t)
      return ttl > 0 ? ttl : undefined
    }
    /** The read through `get` (or `getAndExpire`, extending to `extend` millis): one Effect round trip. */
    const viaGet = (
      key: string,
      arg: X,
      load: L,
      traced: boolean,
      extend?: number
    ): Effect.Effect<B, E | CacheError, R> => {
      const memo = decoded.get(key)
      const full = memo === undefined ? prefix + key : memo.full
      let t = 0
      if (touch !== undefined && extend === undefined) {
        t = now()
        extend = extendingTtl(memo, t)
      }
      const read = extend === undefined ? store.get(full) : touch!.read(full, Math.max(1, Math.ceil(extend)))
      return Effect.matchEffect(read, {
        onFailure: (error) =>
          Effect.flatMap(onStoreFailure("read", error, undefined), () => next(key, arg, load, full, undefined, traced)),
        onSuccess: (stored) => {
          const entry = stored._tag === "Some" ? entryOf(key, full, stored.value, memo) : undefined
          if (extend !== undefined && entry !== undefined) entry.slidAt = t === 0 ? now() : t
          return next(key, arg, load, full, entry, traced)
        }
      })
    }
    const viaGetTraced = (key: string, arg: X, load: L) =>
      Effect.withSpan(viaGet(key, arg, load, true), spanName, {
        attributes: options.spanAttributes,
        captureStackTrace: false
      })

    if (direct?._tag === "Sync") {
      // an in-process store answers at once: a hit costs no Effect round trip to the store
      const read = direct.read
      return (key, arg, load) =>
        Effect.withFiberRuntime((fiber) => {
          if (isTraced(fiber, untraced)) return viaGetTraced(key, arg, load)
          const full = prefix + key
          const stored = read(full)
          return next(key, arg, load, full, stored === undefined ? undefined : entryOf(key, full, stored), false)
        })
    }
    if (direct?._tag === "Callback") {
      // a store that completes reads from a callback (a batch reply): what was read is decided
      // right there, and the reader resumes with its answer in one step
      const read = direct.read
      return (key, arg, load) =>
        Effect.async<B, E | CacheError, R>((resume) => {
          const fiber = Fiber.getCurrentFiber()
          if (fiber._tag === "None") return resume(viaGet(key, arg, load, false))
          if (isTraced(fiber.value, untraced)) return resume(viaGetTraced(key, arg, load))
          // one memo lookup gives both the store key and, for the reply, the last decoded entry
          const memo = decoded.get(key)
          if (touch !== undefined) {
            const extend = extendingTtl(memo, now())
            if (extend !== undefined) return resume(viaGet(key, arg, load, false, extend))
          }
          const full = memo === undefined ? prefix + key : memo.full
          read(full, (value, error, before) => {
            let then: Effect.Effect<B, E | CacheError, R>
            try {
              then = error === undefined
                ? next(key, arg, load, full, value === null ? undefined : entryOf(key, full, value, memo), false)
                : Effect.flatMap(
                  onStoreFailure("read", error, undefined),
                  () => next(key, arg, load, full, undefined, false)
                )
            } catch (defect) {
              // a Schema whose decode throws fails this read alone, as it does on the other paths;
              // it must not stop the store from answering the other readers of its reply
              then = Effect.die(defect)
            }
            resume(before === undefined ? then : Effect.zipRight(before, then))
          })
        })
    }
    return (key, arg, load) =>
      Effect.withFiberRuntime((fiber) =>
        isTraced(fiber, untraced) ? viaGetTraced(key, arg, load) : viaGet(key, arg, load, false)
      )
  }

  return {
    reading,
    entryOf: (key, full, stored) => entryOf(key, full, stored),
    flushDrops,
    hasDrops: () => pendingDrops.length > 0,
    current: (key, full) =>
      Effect.matchEffect(store.get(full), {
        onFailure: (error) => onStoreFailure("read", error, undefined),
        onSuccess: (stored) =>
          Effect.as(flushDrops, stored._tag === "Some" ? entryOf(key, full, stored.value) : undefined)
      })
  }
}
