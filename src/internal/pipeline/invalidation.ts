/**
 * Invalidation of one namespace's entries: a key removed (hard) or made stale (soft), the whole
 * namespace, or the keys matching a pattern. Each supersedes the loads under way that it covers,
 * so none of them stores a value older than the invalidation, and is announced to the
 * invalidation bus when the store has one.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { CacheError } from "../../CacheError.js"
import type * as CacheStore from "../../CacheStore.js"
import { deleteMatchingOf } from "../../CacheStore.js"
import { announce } from "../invalidationBus.js"
import { escapeGlob } from "../store.js"
import type { Fencing } from "./fence.js"
import { nextLoadMark } from "./fence.js"
import { namespacePrefix, versionedBase } from "./key.js"
import type { KeyOrder, Superseding } from "./keyOrder.js"
import type { Reader } from "./read.js"
import type { OnStoreFailure } from "./storeErrors.js"
import { traced } from "./tracing.js"
import type { Writer } from "./write.js"

/** The keys of the namespace at its current version, and how their entries decode. @internal */
export interface GenerationView<A> {
  readonly prefix: string
  readonly reader: Pick<Reader<A>, "entryOf" | "flushDrops">
}

/** @internal */
export interface InvalidationOptions<A> {
  readonly namespace: string
  readonly store: CacheStore.Service
  readonly now: () => number
  readonly order: KeyOrder
  readonly writer: Writer<A>
  /** Late-write protection: an invalidated key keeps a tombstone for the fence window. */
  readonly fencing: Fencing | undefined
  /** What a store failure becomes: the invalidations fail with it, so that none is acknowledged undone. */
  readonly onStoreFailure: OnStoreFailure
  readonly spanAttributes: Record<string, string>
  /** Whether a version of the namespace is part of every key. */
  readonly versioned: boolean
  /** Runs `f` with the namespace's current version. */
  readonly withGeneration: <B, E, R>(
    f: (g: GenerationView<A>) => Effect.Effect<B, E, R>
  ) => Effect.Effect<B, E | CacheError, R>
}

/** @internal */
export const makeInvalidation = <A>(options: InvalidationOptions<A>) => {
  const { fencing, namespace, now, onStoreFailure, order, spanAttributes, store, versioned, withGeneration, writer } =
    options

  const invalidate = (key: string): Effect.Effect<boolean, CacheError> =>
    withGeneration((g) => {
      const full = g.prefix + key
      return Effect.zipRight(
        order.supersede(full),
        Effect.catchAll(
          // a tombstone rather than nothing: a load that read the key before cannot write over it
          fencing === undefined ? store.delete(full) : fencing.mark(full),
          (error) => onStoreFailure("delete", error, false)
        )
      ).pipe(Effect.tap(() => announce(store, { _tag: "Keys", namespace, keys: [key] })))
    }).pipe(traced("cachekit.invalidate", spanAttributes))

  const expire = (key: string): Effect.Effect<boolean, CacheError> =>
    withGeneration((g) => {
      const full = g.prefix + key
      // the rewrite is a loaded write of its own: a write or invalidation of the key that comes
      // while it reads supersedes it, so it never puts back an older value over a newer one
      const rewrite: Superseding = { full, superseded: false }
      const began = nextLoadMark()
      const observedAt = now()
      const epoch = store.fence?.epoch?.()
      return order.supersede(full).pipe(
        Effect.zipRight(Effect.sync(() => order.register(rewrite))),
        Effect.zipRight(Effect.catchAll(store.get(full), (error) => onStoreFailure("expire", error, Option.none()))),
        Effect.flatMap((stored) => {
          const entry = stored._tag === "Some" ? g.reader.entryOf(key, full, stored.value) : undefined
          const t = now()
          if (entry === undefined || t >= entry.freshUntil) return Effect.as(g.reader.flushDrops, false)
          // fresh no more from now on; kept, as it was, until its own staleUntil
          return Effect.as(
            order.writeLoaded([{ load: rewrite }], () => writer.keep(full, entry, t, { began, observedAt, epoch })),
            true
          )
        }),
        Effect.ensuring(Effect.sync(() => order.unregister(rewrite)))
      )
    }).pipe(traced("cachekit.expire", spanAttributes))

  // a versioned namespace's entries of every version
  const clearPrefix = versioned ? versionedBase(namespace) : namespacePrefix(namespace)
  // first the purge token, then the keys: a load that lands after the keys went sees the new token
  const purge = (operation: string): Effect.Effect<void, CacheError> =>
    fencing === undefined
      ? Effect.void
      : Effect.catchAll(fencing.purge, (error) => onStoreFailure(operation, error, undefined))
  const clear: Effect.Effect<number, CacheError> = Effect.zipRight(
    Effect.zipRight(purge("clear"), order.supersedePrefix(clearPrefix)),
    deleteMatchingOf(store)(escapeGlob(clearPrefix) + "*").pipe(
      Effect.catchAll((error): Effect.Effect<number, CacheError> =>
        // a store that cannot list keys says so; an unreachable one too
        error._tag === "StoreError" ? onStoreFailure("clear", error, 0) : Effect.fail(error)
      )
    )
  ).pipe(
    Effect.tap(() => announce(store, { _tag: "Clear", namespace })),
    traced("cachekit.clear", spanAttributes)
  )

  const invalidatePattern = (pattern: string): Effect.Effect<number, CacheError> =>
    withGeneration((g) =>
      Effect.zipRight(
        // which loads under way the pattern covers is not worth working out: none of them stores
        Effect.zipRight(purge("invalidatePattern"), order.supersedePrefix(g.prefix)),
        Effect.catchAll(
          deleteMatchingOf(store)(escapeGlob(g.prefix) + pattern),
          (error): Effect.Effect<number, CacheError> =>
            // a store that cannot scan, or a pattern it refuses, says so; an unreachable one too
            error._tag === "StoreError" && error.reason !== "command"
              ? onStoreFailure("invalidatePattern", error, 0)
              : Effect.fail(error)
        )
      ).pipe(Effect.tap(() => announce(store, { _tag: "Pattern", namespace, pattern })))
    ).pipe(traced("cachekit.invalidatePattern", { ...spanAttributes, "cache.pattern": pattern }))

  return { invalidate, expire, clear, invalidatePattern }
}
