/**
 * What a pipeline counts: a local counter per outcome for `stats`, and the same numbers as Effect
 * metrics tagged by namespace and store for exporters.
 */
import * as Effect from "effect/Effect"
import * as MetricLabel from "effect/MetricLabel"
import * as CacheMetrics from "../../CacheMetrics.js"

/** @internal */
export interface Counters {
  readonly hits: (n: number) => void
  readonly staleHits: (n: number) => void
  readonly misses: (n: number) => void
  readonly load: () => void
  /** A load ended: its duration goes to the histogram, whether it succeeded or failed. */
  readonly loadEnded: (millis: number, failed: boolean) => void
  readonly decodeFailure: () => void
  readonly encodeFailure: () => void
  readonly storeError: () => void
  readonly refreshFailure: () => void
  readonly failSafeServe: () => void
  readonly softTimeout: () => void
  readonly stats: Effect.Effect<CacheMetrics.Stats>
}

/** @internal */
export const makeCounters = (namespace: string, store: string): Counters => {
  const labels = [MetricLabel.make("namespace", namespace), MetricLabel.make("store", store)]
  let hits = 0
  let staleHits = 0
  let misses = 0
  let loads = 0
  let loadFailures = 0
  let decodeFailures = 0
  let encodeFailures = 0
  let storeErrors = 0
  let refreshFailures = 0
  let failSafeServes = 0
  let softTimeouts = 0
  return {
    hits: (n) => {
      hits += n
      CacheMetrics.hits.unsafeUpdate(n, labels)
    },
    staleHits: (n) => {
      staleHits += n
      CacheMetrics.staleHits.unsafeUpdate(n, labels)
    },
    misses: (n) => {
      misses += n
      CacheMetrics.misses.unsafeUpdate(n, labels)
    },
    load: () => {
      loads++
      CacheMetrics.loads.unsafeUpdate(1, labels)
    },
    loadEnded: (millis, failed) => {
      if (failed) {
        loadFailures++
        CacheMetrics.loadFailures.unsafeUpdate(1, labels)
      }
      CacheMetrics.loadDuration.unsafeUpdate(millis / 1000, labels)
    },
    decodeFailure: () => {
      decodeFailures++
      CacheMetrics.decodeFailures.unsafeUpdate(1, labels)
    },
    encodeFailure: () => {
      encodeFailures++
      CacheMetrics.encodeFailures.unsafeUpdate(1, labels)
    },
    storeError: () => {
      storeErrors++
      CacheMetrics.storeErrors.unsafeUpdate(1, labels)
    },
    refreshFailure: () => {
      refreshFailures++
      CacheMetrics.refreshFailures.unsafeUpdate(1, labels)
    },
    failSafeServe: () => {
      failSafeServes++
      CacheMetrics.failSafeServes.unsafeUpdate(1, labels)
    },
    softTimeout: () => {
      softTimeouts++
      CacheMetrics.softTimeouts.unsafeUpdate(1, labels)
    },
    stats: Effect.sync((): CacheMetrics.Stats => {
      const reads = hits + staleHits + misses
      return {
        namespace,
        store,
        hits,
        staleHits,
        misses,
        loads,
        loadFailures,
        decodeFailures,
        encodeFailures,
        storeErrors,
        refreshFailures,
        failSafeServes,
        softTimeouts,
        hitRate: reads === 0 ? 0 : (hits + staleHits) / reads
      }
    })
  }
}
