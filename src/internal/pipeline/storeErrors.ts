/**
 * The store-failure policy: by default a failed store operation is counted and logged and the
 * caller goes on without the cache; `onStoreError: "fail"` makes it fail the call.
 */
import * as Effect from "effect/Effect"
import type { CacheError, StoreFailure } from "../../CacheError.js"
import type { Counters } from "./stats.js"

/** @internal */
export type StoreErrorMode = "fallback" | "fail"

/** What to do when a store operation failed: the fallback value, or the error in strict mode. @internal */
export type OnStoreFailure = <X>(operation: string, error: StoreFailure, fallback: X) => Effect.Effect<X, CacheError>

/** @internal */
export const makeOnStoreFailure = (
  mode: StoreErrorMode,
  namespace: string,
  store: string,
  counters: Counters
): OnStoreFailure =>
<X>(operation: string, error: StoreFailure, fallback: X): Effect.Effect<X, CacheError> => {
  counters.storeError()
  if (mode === "fail") return Effect.fail(error)
  return Effect.as(
    Effect.logDebug(`cache ${operation} failed, continuing without the cache`).pipe(
      Effect.annotateLogs({ namespace, store, error: error.message })
    ),
    fallback
  )
}
