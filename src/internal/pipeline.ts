/**
 * The one load pipeline every strategy shares: read → decode → fresh / stale / miss →
 * single-flight load → encode → write, with metrics, spans and the store-error policy.
 */
import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { DecodeError, EncodeError, LoadTimeout } from "../CacheError.js"
import type { CacheError, StoreFailure } from "../CacheError.js"
import * as CacheMetrics from "../CacheMetrics.js"
import type * as CacheStore from "../CacheStore.js"
import type { Codec } from "./entry.js"
import { Entry, makeCodec } from "./entry.js"
import { readWithOf } from "./store.js"
import type { ReadCallback } from "./store.js"
import type { TtlPolicy } from "./ttl.js"

/** @internal */
export type StoreErrorMode = "fallback" | "fail"

/** @internal */
export interface PipelineOptions<A, I> {
  readonly namespace: string
  readonly schema: Schema.Schema<A, I, never>
  readonly ttl: TtlPolicy<A> | undefined
  readonly staleWhileRevalidateMillis: number
  readonly onStoreError: StoreErrorMode
  readonly loadTimeoutMillis: number | undefined
  readonly tags: ((value: A, key: string) => ReadonlyArray<string>) | undefined
}

/** A loader called with the argument of the read; not called at all on a hit. @internal */
export type Loader<X, A, E, R = never> = (arg: X) => Effect.Effect<A, E, R>

/** How background work and shared loads are forked: into a layer's scope, or as daemons. @internal */
export type Forker = <X, E, R>(effect: Effect.Effect<X, E, R>) => Effect.Effect<Fiber.RuntimeFiber<X, E>, never, R>

interface Group {
  waiters: number
  started: boolean
  done: boolean
  fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
}

interface Flight<A, E> {
  readonly deferred: Deferred.Deferred<A, E | CacheError>
  readonly group: Group
}

/** @internal */
export interface Pipeline<A> {
  readonly namespace: string
  readonly store: CacheStore.Service
  readonly codec: Codec<A>
  readonly fullKey: (key: string) => string
  /** Read; on a miss, load through the single flight and write. */
  readonly getOrLoad: <X, E, R>(key: string, arg: X, load: Loader<X, A, E, R>) => Effect.Effect<A, E | CacheError, R>
  /** Read only: a fresh (or servable stale) value, or none. */
  readonly read: (key: string) => Effect.Effect<Option.Option<A>, CacheError>
  /** An explicit write: encode failures and (in strict mode) store failures fail the call. */
  readonly write: (key: string, value: A) => Effect.Effect<void, CacheError>
  /** Loads again now, sharing a flight already under way, and writes the result. */
  readonly refresh: <X, E, R>(key: string, arg: X, load: Loader<X, A, E, R>) => Effect.Effect<A, E | CacheError, R>
  /** Removes the entry; true when it existed. */
  readonly invalidate: (key: string) => Effect.Effect<boolean, CacheError>
  /** Reads many keys in one store round trip and loads the misses, in one batch when `loadMany` is given. */
  readonly getManyOrLoad: <X, E, R>(
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<X>,
    loadOne: Loader<X, A, E, R>,
    loadMany: ((indices: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<A>, E, R>) | undefined
  ) => Effect.Effect<Array<A>, E | CacheError, R>
  readonly stats: Effect.Effect<CacheMetrics.Stats>
}

const scopeClosed = Effect.dieMessage(
  "effect-cachekit: a cache handle was used after the scope it was made in had closed; " +
    "make it with Layer.scoped or keep its scope open while it is in use"
)

/**
 * The tracer every fiber has unless the program installs one (OpenTelemetry, DevTools). Spans
 * made for it are never exported, so the pipeline skips them: a hit then costs no span at all.
 */
const untracedTracer = Effect.runSync(Effect.tracer)

/** Runs an effect in a span when a tracer is installed. @internal */
export const traced =
  (name: string, attributes: Record<string, unknown>) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.tracerWith((tracer) =>
      tracer === untracedTracer ? self : Effect.withSpan(self, name, { attributes, captureStackTrace: false })
    )

/** Records the outcome of a read on the current span, if there is one. */
const annotateOutcome = (outcome: "hit" | "miss" | "stale") =>
  Effect.tracerWith((tracer) =>
    tracer === untracedTracer ? Effect.void : Effect.annotateCurrentSpan("cache.outcome", outcome)
  )

/** Bounds of the per-pipeline memo of decoded entries (at most ~4 MiB of copied bytes). */
const DECODED_MAX_ENTRIES = 1024
const DECODED_MAX_BYTES = 4096

interface Memo<A> {
  readonly full: string
  readonly bytes: Uint8Array
  readonly entry: Entry<A>
}

const MISS = 0
const FRESH = 1
const STALE = 2

/** @internal */
export const make = <A, I>(
  store: CacheStore.Service,
  clock: Clock.Clock,
  fork: Forker,
  options: PipelineOptions<A, I>
): Pipeline<A> => {
  const { namespace } = options
  const codec = makeCodec(options.schema)
  const prefix = namespace + ":"
  const fullKey = (key: string) => prefix + key
  const now = () => clock.unsafeCurrentTimeMillis()
  const live = store.capabilities.live
  const labels = [MetricLabel.make("namespace", namespace), MetricLabel.make("store", store.name)]
  const inflight = new Map<string, Flight<A, unknown>>()
  const spanAttributes = { "cache.namespace": namespace, "cache.store": store.name }

  let hits = 0
  let staleHits = 0
  let misses = 0
  let loads = 0
  let loadFailures = 0
  let decodeFailures = 0
  let encodeFailures = 0
  let storeErrors = 0

  // ---------------------------------------------------------------------------------------------
  // counting reads (a local counter for `stats`, an Effect metric for exporters)

  const countHits = (n: number) => {
    hits += n
    CacheMetrics.hits.unsafeUpdate(n, labels)
  }
  const countStales = (n: number) => {
    staleHits += n
    CacheMetrics.staleHits.unsafeUpdate(n, labels)
  }
  const countMisses = (n: number) => {
    misses += n
    CacheMetrics.misses.unsafeUpdate(n, labels)
  }
  const countHit = () => countHits(1)
  const countStale = () => countStales(1)
  const countMiss = () => countMisses(1)
  /** Counts what `classify` just found. */
  const countFound = () => lastKind === FRESH ? countHit() : countStale()

  // ---------------------------------------------------------------------------------------------
  // store errors

  const onStoreFailure = <X>(operation: string, error: StoreFailure, fallback: X): Effect.Effect<X, CacheError> => {
    storeErrors++
    CacheMetrics.storeErrors.unsafeUpdate(1, labels)
    if (options.onStoreError === "fail") return Effect.fail(error)
    return Effect.as(
      Effect.logDebug(`cache ${operation} failed, continuing without the cache`).pipe(
        Effect.annotateLogs({ namespace, store: store.name, error: error.message })
      ),
      fallback
    )
  }

  // ---------------------------------------------------------------------------------------------
  // decoding

  /**
   * The last decoded entry of recently read keys of a byte store, with the bytes it came from.
   * A read whose bytes are identical (compared in full) reuses the entry instead of parsing the
   * envelope and validating the value again: decoding is deterministic, so identical bytes give
   * an identical entry. Bounded in entries and in the size of what it keeps. Keyed by the
   * caller's key (the namespace prefix is the same for all), which is usually a string whose hash
   * is already known, where the prefixed key would be a new string to hash on every read. It also
   * keeps that prefixed key, so a read of a remembered key reuses one string (hashed once) for the
   * store, instead of building and hashing a new one.
   */
  const decoded = new Map<string, Memo<A>>()
  const remember = (key: string, full: string, bytes: Uint8Array, entry: Entry<A>) => {
    if (bytes.byteLength > DECODED_MAX_BYTES) return
    decoded.delete(key)
    // a copy: the bytes a client hands over may be a view into a larger socket buffer
    decoded.set(key, { full, bytes: bytes.slice(), entry })
    if (decoded.size > DECODED_MAX_ENTRIES) decoded.delete(decoded.keys().next().value!)
  }
  /** The store key of a caller's key: the remembered one when the key has a memo. */
  const fullOf = (key: string, memo: Memo<A> | undefined): string => memo === undefined ? prefix + key : memo.full
  const fullKeyOf = (key: string): string => fullOf(key, decoded.get(key))

  /**
   * Reads what the store returned: the entry, or undefined for a miss (dropping what does not
   * decode). `known` is the memo of the key when the caller has already looked it up.
   */
  let lastKind = MISS
  const classify = (
    key: string,
    full: string,
    stored: CacheStore.Value,
    t = now(),
    known?: Memo<A>
  ): Entry<A> | undefined => {
    let entry: Entry<A>
    if (stored instanceof Entry) {
      if (stored.fingerprint !== codec.fingerprint) {
        dropUndecodable(full, "written with a different schema")
        return undefined
      }
      entry = stored as Entry<A>
    } else if (stored instanceof Uint8Array) {
      const memoed = known ?? decoded.get(key)
      if (
        memoed !== undefined && memoed.bytes.byteLength === stored.byteLength &&
        Buffer.compare(memoed.bytes, stored) === 0
      ) {
        entry = memoed.entry
      } else {
        const result = codec.fromBytes(stored)
        if (Either.isLeft(result)) {
          dropUndecodable(full, result.left)
          return undefined
        }
        entry = result.right
        remember(key, full, stored, entry)
      }
    } else {
      dropUndecodable(full, "not a cache entry")
      return undefined
    }
    if (t < entry.freshUntil) {
      lastKind = FRESH
      return entry
    }
    if (t < entry.staleUntil) {
      lastKind = STALE
      return entry
    }
    return undefined
  }

  const pendingDrops: Array<string> = []
  const dropUndecodable = (full: string, detail: string) => {
    decodeFailures++
    CacheMetrics.decodeFailures.unsafeUpdate(1, labels)
    pendingDrops.push(full)
    void detail
  }
  /** Deletes entries that failed to decode (the store is asked once, the loader will rewrite them). */
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

  // ---------------------------------------------------------------------------------------------
  // writing

  const ttlOf = (value: A, key: string): Effect.Effect<number | undefined> =>
    options.ttl === undefined ? Effect.succeed(undefined) : options.ttl.compute(value, key)

  type Prepared = { readonly full: string; readonly stored: CacheStore.Value; readonly ttl: number | undefined } | {
    readonly full: string
    readonly stored: undefined
    readonly ttl: 0
  }

  const prepare = (
    key: string,
    value: A,
    loadTime: number
  ): Effect.Effect<Prepared, EncodeError> =>
    Effect.flatMap(ttlOf(value, key), (ttl): Effect.Effect<Prepared, EncodeError> => {
      const full = fullKey(key)
      if (ttl !== undefined && ttl <= 0) return Effect.succeed({ full, stored: undefined, ttl: 0 as const })
      const encoded = codec.encode(value)
      if (Either.isLeft(encoded)) {
        encodeFailures++
        CacheMetrics.encodeFailures.unsafeUpdate(1, labels)
        return Effect.fail(new EncodeError({ namespace, key, detail: encoded.left }))
      }
      const t = now()
      const freshUntil = ttl === undefined ? Infinity : t + ttl
      const staleUntil = freshUntil + options.staleWhileRevalidateMillis
      const tags = options.tags === undefined ? [] : options.tags(value, key)
      const entry = new Entry(value, t, freshUntil, staleUntil, loadTime, tags, codec.fingerprint, encoded.right.length)
      const stored = live ? entry : codec.toBytes(entry, encoded.right)
      return Effect.succeed({ full, stored, ttl: staleUntil === Infinity ? undefined : staleUntil - t })
    })

  const writePrepared = (prepared: Prepared): Effect.Effect<void, StoreFailure> =>
    prepared.stored === undefined
      ? Effect.asVoid(store.delete(prepared.full))
      : store.set(prepared.full, prepared.stored, prepared.ttl)

  /** Writes a loaded value: failures never lose the value the caller is waiting for. */
  const writeLoaded = (key: string, value: A, loadTime: number): Effect.Effect<void, CacheError> =>
    prepare(key, value, loadTime).pipe(
      Effect.flatMap(writePrepared),
      Effect.catchAll((error): Effect.Effect<void, CacheError> =>
        error._tag === "EncodeError"
          ? Effect.logWarning("a loaded value could not be encoded; it is returned but not cached").pipe(
            Effect.annotateLogs({ namespace, key, error: error.detail })
          )
          : onStoreFailure("write", error, undefined)
      )
    )

  const write = (key: string, value: A): Effect.Effect<void, CacheError> =>
    prepare(key, value, 0).pipe(
      Effect.flatMap((prepared) =>
        writePrepared(prepared).pipe(
          Effect.catchAll((error): Effect.Effect<void, CacheError> =>
            error._tag === "StoreError" ? onStoreFailure("write", error, undefined) : Effect.fail(error)
          )
        )
      ),
      traced("cachekit.set", spanAttributes)
    )

  // ---------------------------------------------------------------------------------------------
  // loading

  const runLoad = <X, E, R>(key: string, arg: X, loader: Loader<X, A, E, R>): Effect.Effect<A, E | CacheError, R> => {
    const load = Effect.suspend(() => loader(arg))
    const timed: Effect.Effect<A, E | CacheError, R> = options.loadTimeoutMillis === undefined
      ? load
      : Effect.timeoutFail(load, {
        duration: Duration.millis(options.loadTimeoutMillis),
        onTimeout: () => new LoadTimeout({ namespace, key, timeoutMillis: options.loadTimeoutMillis! })
      })
    return Effect.suspend(() => {
      loads++
      CacheMetrics.loads.unsafeUpdate(1, labels)
      const start = now()
      return Effect.matchCauseEffect(timed, {
        onFailure: (cause) => {
          loadFailures++
          CacheMetrics.loadFailures.unsafeUpdate(1, labels)
          return Effect.failCause(cause)
        },
        onSuccess: (value) => {
          const elapsed = now() - start
          CacheMetrics.loadDuration.unsafeUpdate(elapsed / 1000, labels)
          return Effect.as(writeLoaded(key, value, elapsed), value)
        }
      })
    }).pipe(traced("cachekit.load", { ...spanAttributes, "cache.key": key }))
  }

  const newGroup = (): Group => ({ waiters: 0, started: false, done: false, fiber: undefined })

  /** Waits on a flight; the last waiter to be interrupted interrupts the shared load. */
  const wait = <E>(flight: Flight<A, E>): Effect.Effect<A, E | CacheError> =>
    Effect.suspend(() => {
      const group = flight.group
      group.waiters++
      return Effect.onExit(Deferred.await(flight.deferred), (exit) => {
        group.waiters--
        if (Exit.isInterrupted(exit) && group.waiters === 0 && !group.done && group.fiber !== undefined) {
          return Fiber.interruptFork(group.fiber)
        }
        return Effect.void
      })
    })

  /** Starts (or joins) the single flight of one key. */
  const startFlight = <X, E, R>(
    key: string,
    full: string,
    arg: X,
    load: Loader<X, A, E, R>
  ): Effect.Effect<Flight<A, E>, never, R> =>
    Effect.suspend(() => {
      const existing = inflight.get(full) as Flight<A, E> | undefined
      if (existing !== undefined) return Effect.succeed(existing)
      const group = newGroup()
      const flight: Flight<A, E> = { deferred: Deferred.unsafeMake<A, E | CacheError>(FiberId.none), group }
      inflight.set(full, flight as Flight<A, unknown>)
      const settle = () => {
        group.done = true
        if (inflight.get(full) === (flight as Flight<A, unknown>)) inflight.delete(full)
      }
      const job = Effect.suspend(() => {
        group.started = true
        return runLoad(key, arg, load)
      }).pipe(
        Effect.exit,
        Effect.flatMap((exit) => {
          settle()
          return Deferred.done(flight.deferred, exit)
        })
      )
      return Effect.map(fork(job), (fiber) => {
        group.fiber = fiber
        // the load may be interrupted before it completes the deferred (the scope closed):
        // the waiters must still hear of it
        fiber.addObserver(() => {
          if (group.done) return
          settle()
          Deferred.unsafeDone(flight.deferred, group.started ? Effect.interrupt : scopeClosed)
        })
        return flight
      })
    })

  const loadShared = <X, E, R>(
    key: string,
    full: string,
    arg: X,
    load: Loader<X, A, E, R>
  ): Effect.Effect<A, E | CacheError, R> => Effect.flatMap(startFlight(key, full, arg, load), wait)

  // ---------------------------------------------------------------------------------------------
  // reading

  const readStored = (full: string): Effect.Effect<Option.Option<CacheStore.Value>, CacheError> =>
    Effect.catchAll(store.get(full), (error) => onStoreFailure("read", error, Option.none()))

  const onMiss = <X, E, R>(
    key: string,
    full: string,
    arg: X,
    load: Loader<X, A, E, R>
  ): Effect.Effect<A, E | CacheError, R> => {
    countMiss()
    return Effect.zipRight(flushDrops, loadShared(key, full, arg, load))
  }

  /** Decides what a read found: a fresh hit, a stale hit (refresh in the background) or a miss. */
  const decide = <X, E, R>(
    key: string,
    full: string,
    arg: X,
    load: Loader<X, A, E, R>,
    stored: CacheStore.Value | undefined,
    traced: boolean,
    known?: Memo<A>
  ): Effect.Effect<A, E | CacheError, R> => {
    if (stored !== undefined) {
      const entry = classify(key, full, stored, now(), known)
      if (entry !== undefined) {
        if (lastKind === FRESH) {
          countHit()
          return traced ? Effect.as(annotateOutcome("hit"), entry.value) : Effect.succeed(entry.value)
        }
        countStale()
        // serve the stale value now; refresh in the background (joining any flight under way)
        const refresh = Effect.as(startFlight(key, full, arg, load), entry.value)
        return traced ? Effect.zipRight(annotateOutcome("stale"), refresh) : refresh
      }
    }
    const miss = onMiss(key, full, arg, load)
    return traced ? Effect.zipRight(annotateOutcome("miss"), miss) : miss
  }

  const getCore = <X, E, R>(
    key: string,
    arg: X,
    load: Loader<X, A, E, R>,
    traced: boolean
  ): Effect.Effect<A, E | CacheError, R> => {
    const full = fullKeyOf(key)
    return Effect.matchEffect(store.get(full), {
      onFailure: (error) =>
        Effect.flatMap(
          onStoreFailure("read", error, undefined),
          () => decide(key, full, arg, load, undefined, traced)
        ),
      onSuccess: (stored) => decide(key, full, arg, load, stored._tag === "Some" ? stored.value : undefined, traced)
    })
  }

  const getSync = store.getSync
  const readWith = readWithOf(store)
  const isTraced = (fiber: Fiber.RuntimeFiber<unknown, unknown>) => fiber.currentTracer !== untracedTracer

  const getTraced = <X, E, R>(key: string, arg: X, load: Loader<X, A, E, R>): Effect.Effect<A, E | CacheError, R> =>
    Effect.withSpan(getCore(key, arg, load, true), "cachekit.get", {
      attributes: spanAttributes,
      captureStackTrace: false
    })

  const getOrLoadWith = <X, E, R>(key: string, arg: X, load: Loader<X, A, E, R>): Effect.Effect<A, E | CacheError, R> =>
    Effect.withFiberRuntime((fiber) => {
      if (isTraced(fiber)) return getTraced(key, arg, load)
      // an in-process store answers at once: a hit costs no Effect round trip to the store
      if (getSync !== undefined) {
        const full = prefix + key
        return decide(key, full, arg, load, getSync(full), false)
      }
      return getCore(key, arg, load, false)
    })

  /**
   * The read of a store that completes reads from a callback (a batch reply): what was read is
   * decided right there, and the reader resumes with its answer — the value of a hit, or the
   * effect that loads — in one step. The registration runs in the reading fiber, so the tracer is
   * looked up there too, without a step of its own.
   */
  const getWith = <X, E, R>(
    read: (key: string, callback: ReadCallback) => void,
    key: string,
    arg: X,
    load: Loader<X, A, E, R>
  ): Effect.Effect<A, E | CacheError, R> =>
    Effect.async<A, E | CacheError, R>((resume) => {
      const fiber = Fiber.getCurrentFiber()
      if (fiber._tag === "None") return resume(getOrLoadWith(key, arg, load))
      if (isTraced(fiber.value)) return resume(getTraced(key, arg, load))
      // one memo lookup gives both the store key and, for the reply, the last decoded entry
      const memo = decoded.get(key)
      const full = fullOf(key, memo)
      read(full, (value, error, before) => {
        const next = error === undefined
          ? decide(key, full, arg, load, value === null ? undefined : value, false, memo)
          : Effect.flatMap(
            onStoreFailure("read", error, undefined),
            () => decide(key, full, arg, load, undefined, false)
          )
        resume(before === undefined ? next : Effect.zipRight(before, next))
      })
    })

  const getOrLoad = <X, E, R>(key: string, arg: X, load: Loader<X, A, E, R>): Effect.Effect<A, E | CacheError, R> =>
    readWith === undefined ? getOrLoadWith(key, arg, load) : getWith(readWith, key, arg, load)

  const read = (key: string): Effect.Effect<Option.Option<A>, CacheError> => {
    const full = prefix + key
    return Effect.flatMap(readStored(full), (stored): Effect.Effect<Option.Option<A>, CacheError> => {
      if (stored._tag === "None") {
        countMiss()
        return Effect.as(annotateOutcome("miss"), Option.none())
      }
      const entry = classify(key, full, stored.value)
      if (entry === undefined) {
        countMiss()
        return Effect.as(Effect.zipRight(annotateOutcome("miss"), flushDrops), Option.none())
      }
      countFound()
      return Effect.as(annotateOutcome(lastKind === FRESH ? "hit" : "stale"), Option.some(entry.value))
    }).pipe(traced("cachekit.read", spanAttributes))
  }

  const refresh = <X, E, R>(key: string, arg: X, load: Loader<X, A, E, R>): Effect.Effect<A, E | CacheError, R> =>
    loadShared(key, fullKey(key), arg, load).pipe(traced("cachekit.refresh", spanAttributes))

  const invalidate = (key: string): Effect.Effect<boolean, CacheError> =>
    Effect.catchAll(store.delete(fullKey(key)), (error) => onStoreFailure("delete", error, false)).pipe(
      traced("cachekit.invalidate", spanAttributes)
    )

  // ---------------------------------------------------------------------------------------------
  // batches

  const getManyOrLoad = <X, E, R>(
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<X>,
    loadOne: Loader<X, A, E, R>,
    loadMany: ((indices: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<A>, E, R>) | undefined
  ): Effect.Effect<Array<A>, E | CacheError, R> =>
    Effect.gen(function*() {
      const fulls = keys.map(fullKey)
      const stored = yield* Effect.catchAll(
        store.getMany(fulls),
        (error) => onStoreFailure("read", error, fulls.map(() => Option.none<CacheStore.Value>()))
      )
      const results = new Array<A>(keys.length)
      // first index of each distinct missing key, and the indices that share it
      const missing = new Map<string, Array<number>>()
      const stale: Array<number> = []
      const t = now()
      let freshHits = 0
      for (let i = 0; i < keys.length; i++) {
        const found = stored[i]
        const entry = found !== undefined && found._tag === "Some"
          ? classify(keys[i]!, fulls[i]!, found.value, t)
          : undefined
        if (entry !== undefined) {
          results[i] = entry.value
          if (lastKind === STALE) stale.push(i)
          else freshHits++
          continue
        }
        const same = missing.get(fulls[i]!)
        if (same === undefined) missing.set(fulls[i]!, [i])
        else same.push(i)
      }
      // counted once per batch rather than per key
      if (freshHits > 0) countHits(freshHits)
      if (stale.length > 0) countStales(stale.length)
      if (freshHits + stale.length < keys.length) countMisses(keys.length - freshHits - stale.length)
      yield* flushDrops
      for (const i of stale) yield* startFlight(keys[i]!, fulls[i]!, args[i]!, loadOne)
      if (missing.size === 0) return results

      const flights: Array<readonly [Flight<A, E>, ReadonlyArray<number>]> = []
      if (loadMany === undefined) {
        for (const [full, indices] of missing) {
          flights.push([yield* startFlight(keys[indices[0]!]!, full, args[indices[0]!]!, loadOne), indices])
        }
      } else {
        // keys already loading elsewhere are joined; the rest load in one batch
        const fresh: Array<readonly [string, ReadonlyArray<number>, Flight<A, E>]> = []
        const group = newGroup()
        for (const [full, indices] of missing) {
          const existing = inflight.get(full) as Flight<A, E> | undefined
          if (existing !== undefined) {
            flights.push([existing, indices])
            continue
          }
          const flight: Flight<A, E> = { deferred: Deferred.unsafeMake<A, E | CacheError>(FiberId.none), group }
          inflight.set(full, flight as Flight<A, unknown>)
          fresh.push([full, indices, flight])
          flights.push([flight, indices])
        }
        if (fresh.length > 0) {
          const fiber = yield* fork(runBatch(keys, fresh, loadMany, group))
          group.fiber = fiber
          fiber.addObserver(() => {
            if (group.done) return
            group.done = true
            for (const [full, , flight] of fresh) {
              if (inflight.get(full) === (flight as Flight<A, unknown>)) inflight.delete(full)
              Deferred.unsafeDone(flight.deferred, group.started ? Effect.interrupt : scopeClosed)
            }
          })
        }
      }
      yield* Effect.forEach(flights, ([flight, indices]) =>
        Effect.map(wait(flight), (value) => {
          for (const i of indices) results[i] = value
        }), { concurrency: "unbounded", discard: true })
      return results
    }).pipe(traced("cachekit.getMany", { ...spanAttributes, "cache.keys": keys.length }))

  const runBatch = <E, R>(
    keys: ReadonlyArray<string>,
    batch: ReadonlyArray<readonly [string, ReadonlyArray<number>, Flight<A, E>]>,
    loadMany: (indices: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<A>, E, R>,
    group: Group
  ): Effect.Effect<void, never, R> => {
    const settle = (complete: (flight: Flight<A, E>, j: number) => Effect.Effect<boolean>) =>
      Effect.suspend(() => {
        group.done = true
        return Effect.forEach(batch, ([full, , flight], j) => {
          if (inflight.get(full) === (flight as Flight<A, unknown>)) inflight.delete(full)
          return complete(flight, j)
        }, { discard: true })
      })
    const firstIndices = batch.map(([, indices]) => indices[0]!)
    const load = Effect.suspend(() => {
      group.started = true
      loads++
      CacheMetrics.loads.unsafeUpdate(1, labels)
      const start = now()
      return Effect.matchCauseEffect(loadMany(firstIndices), {
        onFailure: (cause) => {
          loadFailures++
          CacheMetrics.loadFailures.unsafeUpdate(1, labels)
          return Effect.failCause(cause)
        },
        onSuccess: (values) => {
          if (values.length !== firstIndices.length) {
            return Effect.dieMessage(
              `lookupMany for ${namespace} returned ${values.length} values for ${firstIndices.length} keys`
            )
          }
          const elapsed = now() - start
          CacheMetrics.loadDuration.unsafeUpdate(elapsed / 1000, labels)
          return Effect.as(
            writeLoadedMany(firstIndices.map((i, j) => [keys[i]!, values[j]!] as const), elapsed),
            values
          )
        }
      })
    }).pipe(traced("cachekit.loadMany", { ...spanAttributes, "cache.keys": batch.length }))
    return load.pipe(
      Effect.exit,
      Effect.flatMap((exit) =>
        settle((flight, j) =>
          Deferred.done(
            flight.deferred,
            Exit.isSuccess(exit) ? Exit.succeed(exit.value[j] as A) : exit as Exit.Exit<never, E | CacheError>
          )
        )
      )
    )
  }

  const writeLoadedMany = (
    pairs: ReadonlyArray<readonly [string, A]>,
    loadTime: number
  ): Effect.Effect<void, CacheError> =>
    Effect.gen(function*() {
      const entries: Array<CacheStore.SetEntry> = []
      const deletes: Array<string> = []
      for (const [key, value] of pairs) {
        const prepared = yield* Effect.either(prepare(key, value, loadTime))
        if (Either.isLeft(prepared)) {
          yield* Effect.logWarning("a loaded value could not be encoded; it is returned but not cached").pipe(
            Effect.annotateLogs({ namespace, key, error: prepared.left.detail })
          )
          continue
        }
        if (prepared.right.stored === undefined) deletes.push(prepared.right.full)
        else entries.push({ key: prepared.right.full, value: prepared.right.stored, ttl: prepared.right.ttl })
      }
      if (deletes.length > 0) {
        yield* Effect.catchAll(store.deleteMany(deletes), (error) => onStoreFailure("write", error, 0))
      }
      if (entries.length > 0) {
        yield* Effect.catchAll(store.setMany(entries), (error) => onStoreFailure("write", error, undefined))
      }
    })

  const stats = Effect.sync((): CacheMetrics.Stats => {
    const reads = hits + staleHits + misses
    return {
      namespace,
      store: store.name,
      hits,
      staleHits,
      misses,
      loads,
      loadFailures,
      decodeFailures,
      encodeFailures,
      storeErrors,
      hitRate: reads === 0 ? 0 : (hits + staleHits) / reads
    }
  })

  return { namespace, store, codec, fullKey, getOrLoad, read, write, refresh, invalidate, getManyOrLoad, stats }
}

/**
 * A forker whose fibers belong to a scope: closing the scope interrupts the ones still running.
 * Cheaper than `Effect.forkIn` per fork (no child scope per load): the fibers are kept in a set
 * that one finalizer of the scope interrupts.
 * @internal
 */
export const forkerIn = (scope: Scope.Scope): Effect.Effect<Forker> =>
  Effect.gen(function*() {
    const running = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
    let closed = false
    yield* Scope.addFinalizer(
      scope,
      Effect.suspend(() => {
        closed = true
        const fibers = Array.from(running)
        running.clear()
        return Fiber.interruptAll(fibers)
      })
    )
    return <X, E, R>(effect: Effect.Effect<X, E, R>) =>
      Effect.map(Effect.forkDaemon(closed ? Effect.interrupt : effect), (fiber) => {
        if (closed) return fiber
        running.add(fiber as Fiber.RuntimeFiber<unknown, unknown>)
        fiber.addObserver(() => running.delete(fiber as Fiber.RuntimeFiber<unknown, unknown>))
        return fiber
      })
  })

/** A forker for pipelines with no scope of their own (`Cache.cached`). @internal */
export const daemonForker: Forker = (effect) => Effect.forkDaemon(effect)

/** Raises a decode error for callers that read through a codec directly. @internal */
export const decodeError = (namespace: string, key: string, detail: string) =>
  new DecodeError({ namespace, key, detail })
