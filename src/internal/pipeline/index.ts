/**
 * The one load pipeline every strategy shares, assembled from its stages:
 * read (the hot path) → freshness (pure decisions) → flight (single flight) → lease (the
 * distributed lock, with `lock`) → load (the loader stack) → write (envelope and store writes),
 * with counters, the store-failure policy and spans.
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { CacheError } from "../../CacheError.js"
import type * as CacheStore from "../../CacheStore.js"
import { purgeKey, versionsOf } from "../versions.js"
import { getManyOrLoad } from "./batch.js"
import type { BatchContext } from "./batch.js"
import { makeDecisions } from "./decide.js"
import { makeCodec } from "./envelope.js"
import { fenceWindowMillis, makeFencing } from "./fence.js"
import { makeFlights } from "./flight.js"
import type { Forker } from "./fork.js"
import { makeGenerations } from "./generation.js"
import { makeInvalidation } from "./invalidation.js"
import { namespacePrefix, versionedPrefix } from "./key.js"
import { keyOrderOf } from "./keyOrder.js"
import { makeLeases, servable } from "./lease.js"
import { makeRunLoad } from "./load.js"
import { makeLoadedWrites } from "./loaded.js"
import { makeReader } from "./read.js"
import type { Loader, Reader } from "./read.js"
import { makeSingleLoads } from "./single.js"
import { makeSlider } from "./slide.js"
import { makeCounters } from "./stats.js"
import { makeOnStoreFailure } from "./storeErrors.js"
import { makeTagChecks } from "./tags.js"
import { traced, untracedTracer } from "./tracing.js"
import type { Pipeline, PipelineOptions } from "./types.js"
import { makeVersioned } from "./versioned.js"
import { makeWriter } from "./write.js"

export type { BatchLoader } from "./batchMatch.js"
export type { Forker } from "./fork.js"
export { daemonForker, forkerIn } from "./fork.js"
export type { LockOptions } from "./lease.js"
export type { Loader } from "./read.js"
export type { StoreErrorMode } from "./storeErrors.js"
export type { FailSafe, Negative, Pipeline, PipelineOptions } from "./types.js"

const noEpoch = (): undefined => undefined

/** @internal */
export const make = <A, I>(
  store: CacheStore.Service,
  clock: Clock.Clock,
  fork: Forker,
  options: PipelineOptions<A, I>
): Pipeline<A> => {
  const { namespace } = options
  const codec = makeCodec(options.schema, options.schemaVersion, options.negative?.schema)
  const now = () => clock.unsafeCurrentTimeMillis()
  const spanAttributes = { "cache.namespace": namespace, "cache.store": store.name }
  const counters = makeCounters(namespace, store.name)
  const onStoreFailure = makeOnStoreFailure(options.onStoreError, namespace, store.name, counters)
  const versions = versionsOf(store)
  const tagChecks = makeTagChecks(versions, options.versionWindowMillis)
  const fencing = store.fence === undefined ? undefined : makeFencing({
    fence: store.fence,
    live: store.capabilities.live,
    now,
    windowMillis: fenceWindowMillis(options.loadTimeoutMillis, options.lock?.waitMillis),
    // a live store lives in this process alone, whose purges supersede its loads; a store that
    // cannot list keys has no purges (`clear` and `invalidatePattern` of a namespace)
    purges: store.capabilities.live || !store.capabilities.scan
      ? undefined
      : { key: purgeKey(namespace), versions }
  })
  const writer = makeWriter({
    namespace,
    store,
    codec,
    now,
    ttl: options.ttl,
    // fail-safe keeps entries in the store past the stale window, for as long as it may serve them
    staleWindowMillis: Math.max(options.staleWhileRevalidateMillis, options.failSafe?.maxStaleMillis ?? 0),
    tags: options.tags,
    tagChecks,
    counters,
    onStoreFailure,
    fencing
  })
  const runLoad = makeRunLoad({
    namespace,
    loadTimeoutMillis: options.loadTimeoutMillis,
    now,
    counters,
    spanAttributes
  })
  const order = keyOrderOf(store)
  const flights = makeFlights<A>(fork, order, now, store.fence?.epoch ?? noEpoch)

  const { storeFailed, storeLoaded } = makeLoadedWrites(order, writer, options.negative)
  const staleWindow = options.staleWhileRevalidateMillis
  const failSafe = options.failSafe
  const softTimeout = options.softTimeoutMillis
  const beta = options.earlyRecomputeBeta
  // background refreshes queue for a permit inside their flight: a key waiting for one is still
  // in flight, so more stale reads of it join it instead of queueing another
  const refreshPermits = Effect.unsafeMakeSemaphore(options.refreshConcurrency)

  // the lease stage decodes with the reader of the namespace's current version
  const leases = options.lock === undefined
    ? undefined
    : makeLeases<A>({
      namespace,
      store,
      lock: options.lock,
      now,
      reader: {
        entryOf: (key, full, stored) => generations.current().reader.entryOf(key, full, stored),
        flushDrops: Effect.suspend(() => generations.current().reader.flushDrops)
      },
      onStoreFailure,
      counters
    })
  const isServable = servable(staleWindow, now)

  const { loadKey, loadShared, reload, rescued, revalidate, startOrJoin, waitSoftly } = makeSingleLoads<A>({
    namespace,
    now,
    counters,
    writer,
    flights,
    runLoad,
    storeLoaded,
    storeFailed,
    failSafe,
    softTimeout,
    refreshPermits,
    leases,
    servable: isServable,
    // an explicit refresh reads what its value replaces, on a store with a fence
    observe: fencing === undefined
      ? undefined
      : (key, full) => Effect.suspend(() => generations.current().reader.current(key, full))
  })

  const slider = makeSlider(store, options.ttl?.sliding, fork)
  const { decide, readEntry } = makeDecisions<A>({
    now,
    slider,
    staleWindow,
    beta,
    failSafe: failSafe !== undefined,
    counters,
    tagChecks,
    onStoreFailure,
    flushDrops: Effect.suspend(() => generations.current().reader.flushDrops),
    hasDrops: () => generations.current().reader.hasDrops(),
    revalidate,
    loadShared
  })

  // -----------------------------------------------------------------------------------------------
  // the namespace's version

  /**
   * The keys of the namespace at one version, and the reads over them. An unversioned namespace
   * has one generation for ever; a versioned one a new generation whenever its version changes.
   */
  interface Generation {
    readonly token: string | undefined
    readonly prefix: string
    readonly reader: Reader<A>
    readonly readOrLoad: (
      key: string,
      arg: unknown,
      load: Loader<unknown, A, unknown, unknown>
    ) => Effect.Effect<A, unknown, unknown>
    readonly readOnly: (key: string, arg: undefined, load: undefined) => Effect.Effect<Option.Option<A>, CacheError>
    /** What a batch read uses of this pipeline at this version: made once, not per read. */
    readonly batch: BatchContext<A>
  }
  const readerOptions = { namespace, store, codec, counters, onStoreFailure, spanAttributes, now, slider }
  const generation = (token: string | undefined): Generation => {
    const prefix = token === undefined ? namespacePrefix(namespace) : versionedPrefix(namespace, token)
    const reader = makeReader({ ...readerOptions, prefix })
    return {
      token,
      prefix,
      reader,
      // one function for every loader type: `decide` passes the loader's own types through
      readOrLoad: reader.reading("cachekit.get", decide<unknown, unknown, unknown>),
      readOnly: reader.reading("cachekit.read", readEntry),
      batch: {
        namespace,
        store,
        fullKey: (key) => prefix + key,
        now,
        staleWindow,
        counters,
        onStoreFailure,
        reader,
        tagChecks,
        flights,
        storeLoaded,
        loadShared,
        runLoad,
        startOrJoin,
        revalidate,
        slider,
        failSafe: failSafe !== undefined,
        rescue: rescued,
        leases,
        servable: isServable,
        loadKey,
        waitSoftly: softTimeout === undefined ? undefined : waitSoftly
      }
    }
  }
  const untraced = untracedTracer()
  const versioned = options.versioned
  const generations = makeGenerations({
    namespace,
    versioned,
    versions,
    now,
    windowMillis: options.versionWindowMillis,
    onStoreFailure,
    make: generation
  })
  const withGeneration = generations.with
  // an unversioned namespace has one generation for ever: its reads take it without a lookup
  const first = generations.current()

  const getOrLoad = <X, E, R>(key: string, arg: X, load: Loader<X, A, E, R>): Effect.Effect<A, E | CacheError, R> =>
    versioned
      ? withGeneration((g) =>
        g.readOrLoad(key, arg, load as Loader<unknown, A, unknown, unknown>) as Effect.Effect<A, E | CacheError, R>
      )
      : first.readOrLoad(key, arg, load as Loader<unknown, A, unknown, unknown>) as Effect.Effect<A, E | CacheError, R>

  const read = (key: string): Effect.Effect<Option.Option<A>, CacheError> =>
    versioned ? withGeneration((g) => g.readOnly(key, undefined, undefined)) : first.readOnly(key, undefined, undefined)

  // -----------------------------------------------------------------------------------------------
  // writes

  const write = (key: string, value: A, tags?: ReadonlyArray<string>): Effect.Effect<void, CacheError> =>
    withGeneration((g) => {
      const full = g.prefix + key
      return Effect.zipRight(order.supersede(full), writer.write(key, full, value, tags))
    }).pipe(
      traced("cachekit.set", spanAttributes)
    )

  const replace = (key: string, value: A): Effect.Effect<void, CacheError> =>
    withGeneration((g) => {
      const full = g.prefix + key
      return Effect.zipRight(order.supersede(full), writer.replace(key, full, value))
    }).pipe(traced("cachekit.set", spanAttributes))

  const keyed = { namespace, store, now, order, writer, spanAttributes, withGeneration }
  const { clear, expire, invalidate, invalidatePattern } = makeInvalidation<A>({
    ...keyed,
    fencing,
    // an invalidation the store did not carry out is never acknowledged, whatever `onStoreError`
    // says of reads: the entry it was meant to remove could be served again once the store is back
    onStoreFailure: makeOnStoreFailure("fail", namespace, store.name, counters),
    versioned
  })
  const { getVersioned, setVersioned } = makeVersioned<A>({ ...keyed, tagChecks, onStoreFailure })

  const refresh = <X, E, R>(key: string, arg: X, load: Loader<X, A, E, R>): Effect.Effect<A, E | CacheError, R> =>
    withGeneration((g) => reload(key, g.prefix + key, arg, load)).pipe(traced("cachekit.refresh", spanAttributes))

  return {
    namespace,
    store,
    fullKey: (key) => generations.current().prefix + key,
    getOrLoad,
    read,
    write,
    replace,
    refresh,
    invalidate,
    expire,
    clear,
    invalidatePattern,
    getVersioned,
    setVersioned,
    getManyOrLoad: (keys, args, loadOne, loadMany) =>
      withGeneration((g) =>
        Effect.tracerWith((tracer) => {
          const read = getManyOrLoad(g.batch, { keys, args, loadOne, loadMany })
          return tracer === untraced ? read : Effect.withSpan(read, "cachekit.getMany", {
            attributes: { ...spanAttributes, "cache.keys": keys.length },
            captureStackTrace: false
          })
        })
      ),
    stats: counters.stats,
    ready: fencing === undefined ? Effect.void : fencing.ready
  }
}
