import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Cache from "../Cache.js"
import { assertOption } from "../CacheError.js"
import { CacheStore } from "../CacheStore.js"
import type * as CacheStoreNs from "../CacheStore.js"
import * as Pipeline from "./pipeline.js"
import { decodePositive, fromInput } from "./ttl.js"

/**
 * Validates the options every strategy shares; throws `InvalidOptions` on nonsense, before any
 * layer is built.
 * @internal
 */
export const resolve = <A, I>(component: string, options: Cache.Options<A, I>): Pipeline.PipelineOptions<A, I> => {
  assertOption(
    typeof options.namespace === "string" && options.namespace.length > 0,
    component,
    "namespace must be a non-empty string"
  )
  assertOption(
    typeof options.value === "function" || (typeof options.value === "object" && options.value !== null),
    component,
    "value must be a Schema"
  )
  assertOption(
    "ttl" in options && options.ttl !== undefined,
    component,
    "ttl is required (use Duration.infinity to keep entries until evicted)"
  )
  const onStoreError = options.onStoreError ?? "fallback"
  assertOption(
    onStoreError === "fallback" || onStoreError === "fail",
    component,
    `onStoreError must be "fallback" or "fail", got ${String(onStoreError)}`
  )
  return {
    namespace: options.namespace,
    schema: options.value,
    ttl: fromInput(component, options.ttl),
    staleWhileRevalidateMillis: options.staleWhileRevalidate === undefined
      ? 0
      : Duration.toMillis(decodePositive(component, "staleWhileRevalidate", options.staleWhileRevalidate)),
    onStoreError,
    loadTimeoutMillis: options.loadTimeout === undefined
      ? undefined
      : Duration.toMillis(decodePositive(component, "loadTimeout", options.loadTimeout)),
    tags: options.tags
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
    return Pipeline.make(store, clock, fork, resolved)
  })

const registry = new WeakMap<CacheStoreNs.Service, Map<string, Pipeline.Pipeline<unknown>>>()

/**
 * The pipeline of a namespace over a store, for the combinators that have no scope of their own.
 * One per store and namespace, so that concurrent misses of one key share one load.
 * @internal
 */
export const shared = <A, I>(
  resolved: Pipeline.PipelineOptions<A, I>
): Effect.Effect<Pipeline.Pipeline<A>, never, CacheStore> =>
  Effect.flatMap(CacheStore, (store) =>
    Effect.clockWith((clock) =>
      Effect.sync(() => {
        let byNamespace = registry.get(store)
        if (byNamespace === undefined) {
          byNamespace = new Map()
          registry.set(store, byNamespace)
        }
        let pipeline = byNamespace.get(resolved.namespace) as Pipeline.Pipeline<A> | undefined
        if (pipeline === undefined) {
          pipeline = Pipeline.make(store, clock, Pipeline.daemonForker, resolved)
          byNamespace.set(resolved.namespace, pipeline as Pipeline.Pipeline<unknown>)
        }
        return pipeline
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
