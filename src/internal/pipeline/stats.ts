/**
 * What a pipeline counts: a local counter per outcome for `stats`, and the same numbers as Effect
 * metrics tagged by namespace and store for exporters.
 */
import * as Effect from "effect/Effect"
import type * as Metric from "effect/Metric"
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
  /** The lock (`lock`): a key's lease granted to this cache. */
  readonly lockAcquired: () => void
  /** The lock: a load that found its key's lease held by another and waited for its holder. */
  readonly lockWait: () => void
  /** The lock: a wait that ended at `wait` without the holder's value. */
  readonly lockTimeout: () => void
  /** The lock: a waiter that took the lease over and loaded, its holder gone without a value. */
  readonly lockTakeover: () => void
  readonly stats: Effect.Effect<CacheMetrics.Stats>
}

/** A local count and its Effect metric, moved together. */
interface Tally {
  count: number
  readonly add: (n: number) => void
}

/** @internal */
export const makeCounters = (namespace: string, store: string): Counters => {
  const labels = [MetricLabel.make("namespace", namespace), MetricLabel.make("store", store)]
  const tally = (metric: Metric.Metric.Counter<number>): Tally => {
    const t: Tally = {
      count: 0,
      add: (n) => {
        t.count += n
        metric.unsafeUpdate(n, labels)
      }
    }
    return t
  }
  const hits = tally(CacheMetrics.hits)
  const staleHits = tally(CacheMetrics.staleHits)
  const misses = tally(CacheMetrics.misses)
  const loads = tally(CacheMetrics.loads)
  const loadFailures = tally(CacheMetrics.loadFailures)
  const decodeFailures = tally(CacheMetrics.decodeFailures)
  const encodeFailures = tally(CacheMetrics.encodeFailures)
  const storeErrors = tally(CacheMetrics.storeErrors)
  const refreshFailures = tally(CacheMetrics.refreshFailures)
  const failSafeServes = tally(CacheMetrics.failSafeServes)
  const softTimeouts = tally(CacheMetrics.softTimeouts)
  const locksAcquired = tally(CacheMetrics.locksAcquired)
  const lockWaits = tally(CacheMetrics.lockWaits)
  const lockTimeouts = tally(CacheMetrics.lockTimeouts)
  const lockTakeovers = tally(CacheMetrics.lockTakeovers)
  const one = (t: Tally) => () => t.add(1)
  return {
    hits: hits.add,
    staleHits: staleHits.add,
    misses: misses.add,
    load: one(loads),
    loadEnded: (millis, failed) => {
      if (failed) loadFailures.add(1)
      CacheMetrics.loadDuration.unsafeUpdate(millis / 1000, labels)
    },
    decodeFailure: one(decodeFailures),
    encodeFailure: one(encodeFailures),
    storeError: one(storeErrors),
    refreshFailure: one(refreshFailures),
    failSafeServe: one(failSafeServes),
    softTimeout: one(softTimeouts),
    lockAcquired: one(locksAcquired),
    lockWait: one(lockWaits),
    lockTimeout: one(lockTimeouts),
    lockTakeover: one(lockTakeovers),
    stats: Effect.sync((): CacheMetrics.Stats => {
      const reads = hits.count + staleHits.count + misses.count
      return {
        namespace,
        store,
        hits: hits.count,
        staleHits: staleHits.count,
        misses: misses.count,
        loads: loads.count,
        loadFailures: loadFailures.count,
        decodeFailures: decodeFailures.count,
        encodeFailures: encodeFailures.count,
        storeErrors: storeErrors.count,
        refreshFailures: refreshFailures.count,
        failSafeServes: failSafeServes.count,
        softTimeouts: softTimeouts.count,
        locksAcquired: locksAcquired.count,
        lockWaits: lockWaits.count,
        lockTimeouts: lockTimeouts.count,
        lockTakeovers: lockTakeovers.count,
        hitRate: reads === 0 ? 0 : (hits.count + staleHits.count) / reads
      }
    })
  }
}
