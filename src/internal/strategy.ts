import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import type * as Cache from "../Cache.js"
import { isCacheError } from "../CacheError.js"
import type { CacheError } from "../CacheError.js"
import { CacheStore } from "../CacheStore.js"
import type * as CacheStoreNs from "../CacheStore.js"
import { check, duration, optionalInteger } from "./options.js"
import * as Pipeline from "./pipeline/index.js"
import { fromInput } from "./ttl.js"

/**
 * Background refreshes of one cache running at once when `refreshConcurrency` is not given: enough
 * to keep a busy cache fresh, few enough that a mass expiry does not turn into a burst of loads.
 * @internal
 */
export const DEFAULT_REFRESH_CONCURRENCY = 16

/**
 * How long a version read from the store is trusted when `versionWindow` is not given: short
 * enough that an invalidation from another process lands within a second, long enough that a
 * busy tag is read once a second rather than on every hit.
 * @internal
 */
export const DEFAULT_VERSION_WINDOW_MILLIS = 1000

/** A `negative` option of any error type (its Schema is invariant in it). */
interface AnyNegative {
  readonly ttl: Duration.DurationInput
  readonly error: Schema.Schema.AnyNoContext
  readonly when?: ((error: never) => boolean) | undefined
}

/**
 * Validates the options every strategy shares; throws `InvalidOptions` on nonsense, before any
 * layer is built.
 * @internal
 */
export const resolve = <A, I>(
  component: string,
  options: Cache.Options<A, I> & { readonly negative?: AnyNegative | undefined }
): Pipeline.PipelineOptions<A, I> => {
  check(
    typeof options.namespace === "string" && options.namespace.length > 0,
    component,
    "namespace",
    "namespace must be a non-empty string"
  )
  check(
    typeof options.value === "function" || (typeof options.value === "object" && options.value !== null),
    component,
    "value",
    "value must be a Schema"
  )
  check(
    "ttl" in options && options.ttl !== undefined,
    component,
    "ttl",
    "ttl is required (use Duration.infinity to keep entries until evicted)"
  )
  const onStoreError = options.onStoreError ?? "fallback"
  check(
    onStoreError === "fallback" || onStoreError === "fail",
    component,
    "onStoreError",
    `onStoreError must be "fallback" or "fail", got ${String(onStoreError)}`
  )
  optionalInteger(component, "refreshConcurrency", options.refreshConcurrency, 1)
  const failSafe = options.failSafe
  if (failSafe !== undefined) {
    check(typeof failSafe === "object" && failSafe !== null, component, "failSafe", "failSafe must be an object")
  }
  const beta = options.earlyRecompute?.beta
  check(
    options.earlyRecompute === undefined || (typeof beta === "number" && Number.isFinite(beta) && beta > 0),
    component,
    "earlyRecompute.beta",
    `earlyRecompute.beta must be a finite number > 0, got ${String(beta)}`
  )
  const timeouts = options.timeouts
  check(
    timeouts === undefined || options.loadTimeout === undefined,
    component,
    "loadTimeout",
    "loadTimeout is timeouts.hard's shorthand: give one of them"
  )
  const hard = timeouts?.hard ?? options.loadTimeout
  const hardMillis = hard === undefined
    ? undefined
    : Duration.toMillis(duration(component, timeouts?.hard === undefined ? "loadTimeout" : "timeouts.hard", hard))
  const softMillis = timeouts?.soft === undefined
    ? undefined
    : Duration.toMillis(duration(component, "timeouts.soft", timeouts.soft))
  check(
    softMillis === undefined || failSafe !== undefined,
    component,
    "timeouts.soft",
    "timeouts.soft answers with the value failSafe keeps: it needs failSafe"
  )
  check(
    softMillis === undefined || hardMillis === undefined || softMillis < hardMillis,
    component,
    "timeouts.soft",
    "timeouts.soft must be shorter than timeouts.hard"
  )
  const lock = options.lock
  if (lock !== undefined) {
    check(typeof lock === "object" && lock !== null, component, "lock", "lock must be an object")
    check(
      lock.onTimeout === undefined || lock.onTimeout === "load" || lock.onTimeout === "fail",
      component,
      "lock.onTimeout",
      `lock.onTimeout must be "load" or "fail", got ${String(lock.onTimeout)}`
    )
  }
  const negative = options.negative
  if (negative !== undefined) {
    check(typeof negative === "object" && negative !== null, component, "negative", "negative must be an object")
    check(
      Schema.isSchema(negative.error),
      component,
      "negative.error",
      "negative.error must be a Schema of the errors cached"
    )
    check(
      negative.when === undefined || typeof negative.when === "function",
      component,
      "negative.when",
      "negative.when must be a function of the error"
    )
  }
  return {
    namespace: options.namespace,
    schema: options.value,
    schemaVersion: options.schemaVersion,
    ttl: fromInput(component, options.ttl),
    staleWhileRevalidateMillis: options.staleWhileRevalidate === undefined
      ? 0
      : Duration.toMillis(duration(component, "staleWhileRevalidate", options.staleWhileRevalidate)),
    refreshConcurrency: options.refreshConcurrency ?? DEFAULT_REFRESH_CONCURRENCY,
    failSafe: failSafe === undefined ? undefined : {
      maxStaleMillis: Duration.toMillis(duration(component, "failSafe.maxStale", failSafe.maxStale, true)),
      throttleMillis: Duration.toMillis(duration(component, "failSafe.throttle", failSafe.throttle))
    },
    onStoreError,
    loadTimeoutMillis: hardMillis,
    softTimeoutMillis: softMillis,
    lock: lock === undefined ? undefined : {
      ttlMillis: Duration.toMillis(duration(component, "lock.ttl", lock.ttl)),
      waitMillis: Duration.toMillis(duration(component, "lock.wait", lock.wait)),
      onTimeout: lock.onTimeout ?? "load"
    },
    earlyRecomputeBeta: beta,
    tags: options.tags,
    versionWindowMillis: options.versionWindow === undefined
      ? DEFAULT_VERSION_WINDOW_MILLIS
      : Duration.toMillis(duration(component, "versionWindow", options.versionWindow)),
    versioned: options.versioned === true,
    negative: negative === undefined ? undefined : negativeOf(component, negative)
  }
}

/** The failures a `negative` option caches: those its Schema recognises and `when` accepts, never a `CacheError`. */
const negativeOf = (component: string, negative: AnyNegative): Pipeline.Negative => {
  const ttlMillis = Duration.toMillis(duration(component, "negative.ttl", negative.ttl))
  const is = Schema.is(negative.error)
  const when = negative.when
  return {
    ttlMillis,
    schema: negative.error,
    when: (error) => !isCacheError(error) && is(error) && (when === undefined || when(error as never) === true)
  }
}

/** A pipeline over the store in context whose background work lives in the current scope. @internal */
export const makeScoped = <A, I>(
  resolved: Pipeline.PipelineOptions<A, I>
): Effect.Effect<Pipeline.Pipeline<A>, never, CacheStore | Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* CacheStore
    const clock = yield* Effect.clock
    const scope = yield* Effect.scope
    const fork = yield* Pipeline.forkerIn(scope)
    const pipeline = Pipeline.make(store, clock, fork, resolved)
    yield* pipeline.ready
    return pipeline
  })

/** Whether two option sets make the same pipeline (same Schema, TTL, windows and policies). */
const sameOptions = <A, I>(a: Pipeline.PipelineOptions<A, I>, b: Pipeline.PipelineOptions<A, I>): boolean =>
  a.schema === b.schema && a.schemaVersion === b.schemaVersion &&
  (a.ttl === b.ttl ||
    (a.ttl !== undefined && b.ttl !== undefined && a.ttl._tag === "Fixed" && b.ttl._tag === "Fixed" &&
      a.ttl.nominalMillis === b.ttl.nominalMillis)) &&
  a.staleWhileRevalidateMillis === b.staleWhileRevalidateMillis &&
  a.refreshConcurrency === b.refreshConcurrency &&
  a.failSafe?.maxStaleMillis === b.failSafe?.maxStaleMillis &&
  a.failSafe?.throttleMillis === b.failSafe?.throttleMillis && a.onStoreError === b.onStoreError &&
  a.loadTimeoutMillis === b.loadTimeoutMillis && a.softTimeoutMillis === b.softTimeoutMillis &&
  a.earlyRecomputeBeta === b.earlyRecomputeBeta && a.tags === b.tags &&
  a.lock?.ttlMillis === b.lock?.ttlMillis && a.lock?.waitMillis === b.lock?.waitMillis &&
  a.lock?.onTimeout === b.lock?.onTimeout &&
  a.versionWindowMillis === b.versionWindowMillis && a.versioned === b.versioned && a.negative === b.negative

const forkers = new WeakMap<CacheStoreNs.Service, Pipeline.Forker>()

/**
 * Where a store-less combinator's background work runs: in the store's scope when the store has
 * one (it stops when the store closes), else in daemon fibers that end with the work.
 */
const forkerOf = (store: CacheStoreNs.Service): Pipeline.Forker => {
  let fork = forkers.get(store)
  if (fork === undefined) {
    fork = store.scope === undefined ? Pipeline.daemonForker : Effect.runSync(Pipeline.forkerIn(store.scope))
    forkers.set(store, fork)
  }
  return fork
}

/** Most pipelines kept per store and namespace for combinators whose options differ. */
const MAX_VARIANTS = 16

interface Variant {
  readonly options: Pipeline.PipelineOptions<unknown, unknown>
  /** The pipeline, once it is ready (`Pipeline.ready`). */
  get: Effect.Effect<Pipeline.Pipeline<unknown>>
}

const registry = new WeakMap<CacheStoreNs.Service, Map<string, Array<Variant>>>()

/**
 * The pipeline of a store-less combinator (`Cache.cached`, `Cache.cachedFunction`) over the store
 * in context: one per store, namespace and set of options, so that concurrent misses of one key
 * share one load even when the combinator is built anew for each call. Combinators whose options
 * differ (another Schema or TTL) get pipelines of their own: none ever runs with another's
 * options. Their background work (stale refreshes) belongs to the store's scope when it has one.
 * @internal
 */
export const shared = <A, I>(
  resolved: Pipeline.PipelineOptions<A, I>
): Effect.Effect<Pipeline.Pipeline<A>, never, CacheStore> =>
  Effect.flatMap(CacheStore, (store) =>
    Effect.clockWith((clock) =>
      Effect.suspend(() => {
        let byNamespace = registry.get(store)
        if (byNamespace === undefined) {
          byNamespace = new Map()
          registry.set(store, byNamespace)
        }
        let variants = byNamespace.get(resolved.namespace)
        if (variants === undefined) {
          variants = []
          byNamespace.set(resolved.namespace, variants)
        }
        for (const variant of variants) {
          if (sameOptions(variant.options, resolved as Pipeline.PipelineOptions<unknown, unknown>)) {
            return variant.get as Effect.Effect<Pipeline.Pipeline<A>>
          }
        }
        const pipeline = Pipeline.make(store, clock, forkerOf(store), resolved) as Pipeline.Pipeline<unknown>
        const ready = Effect.succeed(pipeline)
        const variant: Variant = {
          options: resolved as Pipeline.PipelineOptions<unknown, unknown>,
          // the first callers wait until it is ready; the later ones take it at once
          get: Effect.as(Effect.ensuring(pipeline.ready, Effect.sync(() => variant.get = ready)), pipeline)
        }
        variants.push(variant)
        // losing a variant only loses the sharing of its loads, never a value
        if (variants.length > MAX_VARIANTS) variants.shift()
        return variant.get as Effect.Effect<Pipeline.Pipeline<A>>
      })
    ))

/**
 * The default way a strategy's key becomes a string: strings as they are, numbers, bigints and
 * booleans by `String`, anything else by `JSON.stringify`.
 * @internal
 */
export const defaultKey = (key: unknown): string => {
  switch (typeof key) {
    case "string":
      return key
    case "number":
    case "bigint":
    case "boolean":
      return String(key)
    default:
      return JSON.stringify(key) ?? String(key)
  }
}

/**
 * The services a strategy's source operations (loader, save) run with: those of the context its
 * `make` ran in, without the parent span, so that each call is a child of the read or write that
 * started it, not of whatever span was open when the cache was made.
 * @internal
 */
export const sourceContext = <R>(): Effect.Effect<Context.Context<R>, never, R> =>
  Effect.map(Effect.context<R>(), (context) => Context.omit(Tracer.ParentSpan)(context) as Context.Context<R>)

/**
 * A strategy's `read`: read-through on `load` when there is one (its value, cached), else the
 * cache only.
 * @internal
 */
export const readOrLoad = <K, A, E>(
  pipeline: Pipeline.Pipeline<A>,
  key: string,
  arg: K,
  load: ((key: K) => Effect.Effect<A, E>) | undefined
): Effect.Effect<Option.Option<A>, E | CacheError> =>
  load === undefined ? pipeline.read(key) : Effect.map(pipeline.getOrLoad(key, arg, load), Option.some)
