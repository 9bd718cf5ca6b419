/**
 * What a pipeline is made from (its options) and what it offers the strategies.
 */
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type { GetVersionedOptions, Versioned, VersionedWrite } from "../../Cache.js"
import type { CacheError } from "../../CacheError.js"
import type * as CacheMetrics from "../../CacheMetrics.js"
import type * as CacheStore from "../../CacheStore.js"
import type { TtlPolicy } from "../ttl.js"
import type { BatchLoader } from "./batchMatch.js"
import type { LockOptions } from "./lease.js"
import type { Loader } from "./read.js"
import type { StoreErrorMode } from "./storeErrors.js"

/** @internal */
export interface PipelineOptions<A, I> {
  readonly namespace: string
  readonly schema: Schema.Schema<A, I, never>
  /** Replaces the Schema's structural fingerprint when given. */
  readonly schemaVersion: string | number | undefined
  readonly ttl: TtlPolicy<A> | undefined
  readonly staleWhileRevalidateMillis: number
  /** Most background refreshes (stale-while-revalidate, early recompute) running at once. */
  readonly refreshConcurrency: number
  /** When a load fails, answer with the entry kept up to `maxStaleMillis` past its expiry. */
  readonly failSafe: FailSafe | undefined
  /** XFetch's β: fresh reads close to expiry recompute early, with probability exp(−τ/(β·δ)). */
  readonly earlyRecomputeBeta: number | undefined
  /** A caller holding a value kept by fail-safe waits this long for a load, then gets that value. */
  readonly softTimeoutMillis: number | undefined
  /** The distributed lock: one loader per key across the processes sharing the store. */
  readonly lock: LockOptions | undefined
  readonly onStoreError: StoreErrorMode
  readonly loadTimeoutMillis: number | undefined
  readonly tags: ((value: A, key: string) => ReadonlyArray<string>) | undefined
  /** How long a version (of a tag, of the namespace) read from the store is trusted before it is read again. */
  readonly versionWindowMillis: number
  /** A version of the namespace is part of every key: `bumpVersion` makes them all misses at once. */
  readonly versioned: boolean
  /** Negative caching: the loader's failures that are cached, and for how long. */
  readonly negative: Negative | undefined
}

/** @internal */
export interface Negative {
  readonly ttlMillis: number
  /** The failures it caches are those this Schema recognises; it stores them. */
  readonly schema: Schema.Schema.AnyNoContext
  /** Whether a failure the Schema recognises is cached. */
  readonly when: (error: unknown) => boolean
}

/** @internal */
export interface FailSafe {
  readonly maxStaleMillis: number
  readonly throttleMillis: number
}

/** @internal */
export interface Pipeline<A> {
  readonly namespace: string
  readonly store: CacheStore.Service
  /** The store key of a caller's key. */
  readonly fullKey: (key: string) => string
  /** Read; on a miss, load through the single flight and write. */
  readonly getOrLoad: <X, E, R>(key: string, arg: X, load: Loader<X, A, E, R>) => Effect.Effect<A, E | CacheError, R>
  /** Read only: a fresh (or servable stale) value, or none. */
  readonly read: (key: string) => Effect.Effect<Option.Option<A>, CacheError>
  /**
   * An explicit write, with tags of its own besides the namespace's; a load under way for the key
   * will not overwrite it.
   */
  readonly write: (key: string, value: A, tags?: ReadonlyArray<string>) => Effect.Effect<void, CacheError>
  /**
   * A write the source of truth already holds: like `write`, but a value that cannot be stored
   * removes the old entry instead of leaving it.
   */
  readonly replace: (key: string, value: A) => Effect.Effect<void, CacheError>
  /** Loads again now, joining a load already under way, and writes the result. */
  readonly refresh: <X, E, R>(key: string, arg: X, load: Loader<X, A, E, R>) => Effect.Effect<A, E | CacheError, R>
  /** Removes the entry (true when it existed); a load under way for the key will not store its value. */
  readonly invalidate: (key: string) => Effect.Effect<boolean, CacheError>
  /**
   * Makes the entry stale (true when there was a fresh one): stale-while-revalidate and fail-safe
   * may still serve it; a load under way for the key will not store its value.
   */
  readonly expire: (key: string) => Effect.Effect<boolean, CacheError>
  /**
   * Removes every entry of the namespace (how many were found), on stores that can scan keys;
   * loads under way will not store their values.
   */
  readonly clear: Effect.Effect<number, CacheError>
  /**
   * Removes the entries whose keys match a glob pattern (how many), on stores that can scan keys;
   * the namespace's prefix is put before the pattern, so it never reaches another namespace.
   */
  readonly invalidatePattern: (pattern: string) => Effect.Effect<number, CacheError>
  /** Reads many keys in one store round trip and loads the misses, in one batch when `loadMany` is given. */
  /** The fresh value of a key with its version, none below `minVersion`. */
  readonly getVersioned: (
    key: string,
    options?: GetVersionedOptions
  ) => Effect.Effect<Option.Option<Versioned<A>>, CacheError>
  /** Writes a value with its version, unless the key holds a version at least as high. */
  readonly setVersioned: (
    key: string,
    value: A,
    version: number,
    tags?: ReadonlyArray<string>
  ) => Effect.Effect<VersionedWrite, CacheError>
  readonly getManyOrLoad: <X, E, R>(
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<X>,
    loadOne: Loader<X, A, E, R>,
    loadMany: BatchLoader<A, E, R> | undefined
  ) => Effect.Effect<Array<Option.Option<A>>, E | CacheError, R>
  readonly stats: Effect.Effect<CacheMetrics.Stats>
  /**
   * Done before the first load: learns what late-write protection must know beforehand (the
   * namespace's purge token, on a store shared between processes). Never fails.
   */
  readonly ready: Effect.Effect<void>
}
