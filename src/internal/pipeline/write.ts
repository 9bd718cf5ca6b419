/**
 * Writing: single or batched writes of prepared entries (`prepare.ts`) to the store, fenced on
 * stores with a fence, under the store-failure policy. One rule for a value that does not encode:
 * a loaded value is returned to its callers but not cached (logged and counted); an explicit
 * write fails with `EncodeError`.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { CacheError, EncodeError, StoreFailure } from "../../CacheError.js"
import type * as CacheStore from "../../CacheStore.js"
import { Entry, freshFenceToken, tombstoneValue, withFreshUntil } from "./envelope.js"
import type { Fenced, Fencing } from "./fence.js"
import type { Prepared, WriteOptions } from "./prepare.js"
import { makePrepare } from "./prepare.js"

/** @internal */
export interface Writer<A> {
  /**
   * Stores loaded values under the store keys their loads read, each only while its key holds what
   * its load found there (on a store with a fence); never fails the callers waiting for them.
   */
  readonly writeLoaded: (
    loaded: ReadonlyArray<{ readonly key: string; readonly full: string; readonly value: A; readonly load: Fenced }>,
    loadTime: number
  ) => Effect.Effect<void, CacheError>
  /**
   * An explicit write, with tags of its own besides the namespace's: a value that does not encode
   * fails it and leaves the old entry; when the store fails, the old entry is removed and the
   * failure follows the policy, or, when it cannot be removed either, fails the write.
   */
  readonly write: (
    key: string,
    full: string,
    value: A,
    tags?: ReadonlyArray<string>
  ) => Effect.Effect<void, CacheError>
  /**
   * A write the source of truth already holds: when the value cannot be stored (it does not
   * encode, the store fails), the key's old entry is removed instead, so the cache never keeps a
   * value older than the source's, and the failure follows the store-failure policy (an
   * `EncodeError` is logged only); a removal that fails too fails the write with `StoreError`.
   */
  readonly replace: (key: string, full: string, value: A) => Effect.Effect<void, CacheError>
  /**
   * Writes an entry back unchanged but for its `freshUntil` (fail-safe's throttle, a soft
   * invalidation), stored until its own `staleUntil`, only while the key still holds that entry
   * (on a store with a fence); never fails.
   */
  readonly keep: (
    full: string,
    entry: Entry<A>,
    freshUntil: number,
    read: Pick<Fenced, "began" | "observedAt" | "epoch">
  ) => Effect.Effect<void, CacheError>
  /** The envelope of an explicit write, with its tags and its version (0: none), and its TTL. */
  readonly prepare: (
    key: string,
    full: string,
    value: A,
    tags: ReadonlyArray<string> | undefined,
    version: number
  ) => Effect.Effect<Prepared, EncodeError | StoreFailure>
  /**
   * Caches a load's failure for `ttl` millis (negative caching): an entry with no tags and no
   * stale window whose value is the error. A failure that does not encode is not cached (logged).
   */
  readonly writeFailure: (
    key: string,
    full: string,
    error: unknown,
    ttl: number,
    loadTime: number,
    load: Fenced
  ) => Effect.Effect<void, CacheError>
}

/** @internal */
export const makeWriter = <A>(options: WriteOptions<A>): Writer<A> => {
  const { codec, counters, fencing, namespace, now, onStoreFailure, store } = options
  const live = store.capabilities.live

  const noVersions: ReadonlyArray<string> = []
  const prepare = makePrepare(options)

  /** Sends prepared writes: one command for one, the batch commands for more. */
  const persist = (prepared: ReadonlyArray<Prepared>): Effect.Effect<void, StoreFailure> => {
    if (prepared.length === 1) {
      const one = prepared[0]!
      return one.stored === undefined ? Effect.asVoid(store.delete(one.full)) : store.set(one.full, one.stored, one.ttl)
    }
    const sets: Array<CacheStore.SetEntry> = []
    const deletes: Array<string> = []
    for (const p of prepared) {
      if (p.stored === undefined) deletes.push(p.full)
      else sets.push({ key: p.full, value: p.stored, ttl: p.ttl })
    }
    const removed = deletes.length === 0 ? Effect.void : Effect.asVoid(store.deleteMany(deletes))
    return sets.length === 0 ? removed : Effect.zipRight(removed, store.setMany(sets))
  }

  /** Sends one loaded value against what its load found; a key that changed since is left as it is. */
  const persistFenced = (
    fence: Fencing,
    prepared: Prepared,
    key: string,
    load: Fenced
  ): Effect.Effect<void, CacheError> =>
    Effect.catchAll(
      prepared.stored === undefined
        // a value its TTL says not to keep: where the key still holds what the load read, a
        // tombstone takes its place (nothing there would let an older load elsewhere land)
        ? Effect.asVoid(fence.write(prepared.full, tombstoneValue(live), fence.windowMillis, load))
        : Effect.flatMap(fence.write(prepared.full, prepared.stored, prepared.ttl, load), (wrote) =>
          wrote ? Effect.void : Effect.logDebug("a loaded value is not cached: its key changed since it was read").pipe(
            Effect.annotateLogs({ namespace, key })
          )),
      (error) =>
        onStoreFailure("write", error, undefined)
    )

  const writeLoaded = (
    loaded: ReadonlyArray<{ readonly key: string; readonly full: string; readonly value: A; readonly load: Fenced }>,
    loadTime: number
  ): Effect.Effect<void, CacheError> =>
    Effect.forEach(loaded, ({ full, key, value }) =>
      Effect.catchAll(
        prepare(key, full, value, loadTime),
        (error): Effect.Effect<undefined, CacheError> =>
          error._tag === "EncodeError"
            ? Effect.as(
              Effect.logWarning("a loaded value could not be encoded; it is returned but not cached").pipe(
                Effect.annotateLogs({ namespace, key, error: error.detail })
              ),
              undefined
            )
            // its tags' versions could not be read: it is not cached
            : onStoreFailure("write", error, undefined)
      )).pipe(
        Effect.flatMap((prepared) => {
          if (fencing !== undefined) {
            if (prepared.length === 1) {
              const p = prepared[0]
              return p === undefined ? Effect.void : persistFenced(fencing, p, loaded[0]!.key, loaded[0]!.load)
            }
            return Effect.forEach(
              prepared,
              (p, i) => p === undefined ? Effect.void : persistFenced(fencing, p, loaded[i]!.key, loaded[i]!.load),
              { concurrency: "unbounded", discard: true }
            )
          }
          const ready = prepared.filter((p): p is Prepared => p !== undefined)
          return ready.length === 0
            ? Effect.void
            : Effect.catchAll(persist(ready), (error) => onStoreFailure("write", error, undefined))
        })
      )

  /**
   * An explicit write the store did not take: its key's old entry is removed instead, so no read
   * finds a value older than the write. When that works the failure follows the store-failure
   * policy (an `EncodeError` is logged only when `logged`, else the caller's); when the old entry
   * may still be there the caller always hears of it: the write is never acknowledged.
   */
  const undo = (
    key: string,
    full: string,
    error: EncodeError | StoreFailure,
    logged: boolean
  ): Effect.Effect<void, CacheError> => {
    if (error._tag === "EncodeError" && !logged) return Effect.fail(error)
    // with a fence, the removal leaves an invalidation's marker: a load from before cannot land
    return Effect.matchEffect(fencing === undefined ? store.delete(full) : fencing.mark(full), {
      onFailure: (deleteError) => {
        // both store failures are counted
        if (error._tag !== "EncodeError") counters.storeError()
        counters.storeError()
        return Effect.zipRight(
          Effect.logError("a write could not be cached nor its old entry removed").pipe(
            Effect.annotateLogs({ namespace, key, error: error.message, removal: deleteError.message })
          ),
          Effect.fail(error._tag === "EncodeError" ? deleteError : error)
        )
      },
      onSuccess: () =>
        error._tag === "EncodeError"
          ? Effect.logWarning("a written value could not be encoded; its entry was removed instead").pipe(
            Effect.annotateLogs({ namespace, key, error: error.detail })
          )
          : onStoreFailure("write", error, undefined)
    })
  }

  const write = (key: string, full: string, value: A, tags?: ReadonlyArray<string>): Effect.Effect<void, CacheError> =>
    Effect.catchAll(
      Effect.flatMap(prepare(key, full, value, 0, tags), (prepared) => persist([prepared])),
      // a key or value the store refuses is the caller's to hear of, and the old entry stays
      (error) => error._tag === "StoreError" ? undo(key, full, error, false) : Effect.fail(error)
    )

  const replace = (key: string, full: string, value: A): Effect.Effect<void, CacheError> =>
    Effect.catchAll(
      Effect.flatMap(prepare(key, full, value, 0), (prepared) => persist([prepared])),
      (error) => undo(key, full, error, true)
    )

  const keep = (
    full: string,
    entry: Entry<A>,
    freshUntil: number,
    read: Pick<Fenced, "began" | "observedAt" | "epoch">
  ): Effect.Effect<void, CacheError> =>
    Effect.suspend(() => {
      const ttl = entry.staleUntil - now()
      if (!(ttl > 0)) return Effect.void
      // a write of its own: a fresh fence token
      const kept = withFreshUntil(entry, freshUntil, freshFenceToken())
      let stored: CacheStore.Value = kept
      if (!live) {
        const encoded = codec.encode(entry.value)
        if (Either.isLeft(encoded)) return Effect.void
        stored = codec.toBytes(kept, encoded.right)
      }
      const storedTtl = ttl === Infinity ? undefined : Math.max(1, Math.ceil(ttl + (fencing?.windowMillis ?? 0)))
      return Effect.catchAll(
        fencing === undefined
          ? store.set(full, stored, storedTtl)
          : fencing.write(full, stored, storedTtl, {
            observed: entry,
            observedAt: read.observedAt,
            began: read.began,
            epoch: read.epoch
          }),
        (error) => onStoreFailure("write", error, undefined)
      )
    })

  const writeFailure = (
    key: string,
    full: string,
    error: unknown,
    ttl: number,
    loadTime: number,
    load: Fenced
  ): Effect.Effect<void, CacheError> =>
    Effect.suspend(() => {
      const encoded = codec.encodeFailure(error)
      if (Either.isLeft(encoded)) {
        counters.encodeFailure()
        return Effect.logWarning("a failed load could not be encoded with the negative Schema; it is not cached").pipe(
          Effect.annotateLogs({ namespace, key, error: encoded.left })
        )
      }
      const [field, normalized] = encoded.right
      const t = now()
      const entry = new Entry<A>(
        normalized as A,
        t,
        t + ttl,
        t + ttl,
        loadTime,
        noVersions,
        noVersions,
        codec.failureFingerprint!,
        field.length
      )
      const stored = live ? entry : codec.toBytes(entry, field)
      // a loaded result like any other: fenced against what its load found, on a store with a fence
      return Effect.catchAll(
        fencing === undefined ? store.set(full, stored, ttl) : Effect.asVoid(fencing.write(full, stored, ttl, load)),
        (error) => onStoreFailure("write", error, undefined)
      )
    })

  return {
    writeLoaded,
    write,
    replace,
    keep,
    writeFailure,
    prepare: (key, full, value, tags, version) => prepare(key, full, value, 0, tags, version)
  }
}
