/**
 * Cache metrics as Effect `Metric`s, tagged with the cache namespace and the store name, plus the
 * per-cache `Stats` snapshot that strategies return from `stats`.
 *
 * Every metric is an ordinary Effect metric: export them with `@effect/opentelemetry`, serve them
 * as Prometheus text with `prometheus`, or read one cache's counters with `snapshot`.
 *
 * Reading a counter with `Metric.value` needs its tags in the exact order the metric was
 * updated with (`namespace`, then `store`): tags given in another order name another, empty
 * metric. `snapshot` and `storeSnapshot` match tags by name, in any order, and never register a
 * metric.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import type * as MetricPair from "effect/MetricPair"
import * as internal from "./internal/metrics.js"

/**
 * Reads that found a fresh entry.
 *
 * @since 0.1.0
 * @category metrics
 */
export const hits = Metric.counter(internal.names.hits, {
  description: "Cache reads served from a fresh entry",
  incremental: true
})

/**
 * Reads that found no usable entry.
 *
 * @since 0.1.0
 * @category metrics
 */
export const misses = Metric.counter(internal.names.misses, {
  description: "Cache reads that found no usable entry",
  incremental: true
})

/**
 * Reads served from a stale entry while it is refreshed in the background.
 *
 * @since 0.1.0
 * @category metrics
 */
export const staleHits = Metric.counter(internal.names.staleHits, {
  description: "Cache reads served from a stale entry (stale-while-revalidate)",
  incremental: true
})

/**
 * Loader runs (one per key per flight: concurrent misses share one).
 *
 * @since 0.1.0
 * @category metrics
 */
export const loads = Metric.counter(internal.names.loads, {
  description: "Loader runs",
  incremental: true
})

/**
 * Loader runs that failed (their error went back to the callers and nothing was cached).
 *
 * @since 0.1.0
 * @category metrics
 */
export const loadFailures = Metric.counter(internal.names.loadFailures, {
  description: "Loader runs that failed",
  incremental: true
})

/**
 * Entries whose bytes no longer decode with the namespace's Schema (treated as misses).
 *
 * @since 0.1.0
 * @category metrics
 */
export const decodeFailures = Metric.counter(internal.names.decodeFailures, {
  description: "Stored entries that failed to decode and were dropped",
  incremental: true
})

/**
 * Values that could not be encoded for the store.
 *
 * @since 0.1.0
 * @category metrics
 */
export const encodeFailures = Metric.counter(internal.names.encodeFailures, {
  description: "Values that could not be encoded and were not cached",
  incremental: true
})

/**
 * Store operations that failed (the pipeline fell back to the loader, or removed the entry a refused write was meant to replace).
 *
 * @since 0.1.0
 * @category metrics
 */
export const storeErrors = Metric.counter(internal.names.storeErrors, {
  description: "Failed store operations",
  incremental: true
})

/**
 * Background refreshes (stale-while-revalidate, early recompute) that failed: the entry they were
 * refreshing stays as it was, and the failure is logged and counted here, never raised.
 *
 * @since 0.1.0
 * @category metrics
 */
export const refreshFailures = Metric.counter(internal.names.refreshFailures, {
  description: "Background refreshes that failed (the entry was kept)",
  incremental: true
})

/**
 * Loader failures answered with a value kept past its expiry by `failSafe` (the error is logged).
 *
 * @since 0.1.0
 * @category metrics
 */
export const failSafeServes = Metric.counter(internal.names.failSafeServes, {
  description: "Loader failures answered with a value kept by failSafe",
  incremental: true
})

/**
 * Reads answered with a value kept by `failSafe` because the load passed the soft timeout (the
 * load went on in the background).
 *
 * @since 0.1.0
 * @category metrics
 */
export const softTimeouts = Metric.counter(internal.names.softTimeouts, {
  description: "Reads answered with a kept value after the soft timeout",
  incremental: true
})

/**
 * Leases of keys granted to a cache with `lock`: one per load this process ran (or took over)
 * under the distributed lock.
 *
 * @since 0.1.0
 * @category metrics
 */
export const locksAcquired = Metric.counter(internal.names.locksAcquired, {
  description: "Key leases granted to loads under the lock",
  incremental: true
})

/**
 * Loads under `lock` that found their key's lease held by another loader (another process, or
 * another cache over the same store) and waited for it instead of loading. Each wait ends with the
 * holder's value, a takeover (`lockTakeovers`) or a timeout (`lockTimeouts`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const lockWaits = Metric.counter(internal.names.lockWaits, {
  description: "Loads that waited for another holder of their key's lease",
  incremental: true
})

/**
 * Waits for a key's lease that reached the lock's `wait` without the holder's value: answered
 * with a kept value, by loading anyway (`onTimeout: "load"`) or with `LockTimeout`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const lockTimeouts = Metric.counter(internal.names.lockTimeouts, {
  description: "Lease waits that ended at the lock's wait without the holder's value",
  incremental: true
})

/**
 * Waits that took the key's lease over and loaded: the holder's lease ended (it lapsed, its
 * process having died or stalled, or was released after a failed load) with no value written.
 *
 * @since 0.1.0
 * @category metrics
 */
export const lockTakeovers = Metric.counter(internal.names.lockTakeovers, {
  description: "Lease waits that took the lease over and loaded, its holder gone without a value",
  incremental: true
})

/**
 * Entries evicted by a bounded store to make room.
 *
 * @since 0.1.0
 * @category metrics
 */
export const evictions = Metric.counter(internal.names.evictions, {
  description: "Entries evicted to make room",
  incremental: true
})

/**
 * Entries held by a memory store.
 *
 * @since 0.1.0
 * @category metrics
 */
export const entries = Metric.gauge(internal.names.entries, {
  description: "Entries held by an in-memory store"
})

/**
 * Approximate bytes held by a memory store.
 *
 * @since 0.1.0
 * @category metrics
 */
export const bytes = Metric.gauge(internal.names.bytes, {
  description: "Approximate bytes held by an in-memory store"
})

/**
 * Write-behind writes held (queued or being saved), tagged by namespace.
 *
 * @since 0.1.0
 * @category metrics
 */
export const writeBehindPending = Metric.gauge(internal.names.writeBehindPending, {
  description: "Write-behind writes queued or being saved"
})

/**
 * Write-behind writes saved to the source by `saveBatch`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const writeBehindFlushed = Metric.counter(internal.names.writeBehindFlushed, {
  description: "Write-behind writes saved to the source",
  incremental: true
})

/**
 * Write-behind writes replaced by a newer write of their key before they were saved: source
 * statements saved by coalescing.
 *
 * @since 0.1.0
 * @category metrics
 */
export const writeBehindCoalesced = Metric.counter(internal.names.writeBehindCoalesced, {
  description: "Write-behind writes replaced by a newer write of their key before saving",
  incremental: true
})

/**
 * Write-behind writes tried again after a failed save, on the `retry` schedule.
 *
 * @since 0.1.0
 * @category metrics
 */
export const writeBehindRetried = Metric.counter(internal.names.writeBehindRetried, {
  description: "Write-behind writes retried after a failed save",
  incremental: true
})

/**
 * Write-behind writes whose retries ran out (they stay queued) or that were still unsaved when the
 * shutdown deadline passed.
 *
 * @since 0.1.0
 * @category metrics
 */
export const writeBehindFailed = Metric.counter(internal.names.writeBehindFailed, {
  description: "Write-behind writes whose retries ran out, or unsaved at shutdown",
  incremental: true
})

/**
 * Write-behind writes dead-lettered after `maxAttempts` failed saves of their own.
 *
 * @since 0.1.0
 * @category metrics
 */
export const writeBehindDeadLettered = Metric.counter(internal.names.writeBehindDeadLettered, {
  description: "Write-behind writes dead-lettered",
  incremental: true
})

/**
 * How long loader runs take, in seconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const loadDuration = Metric.histogram(
  internal.names.loadDuration,
  MetricBoundaries.exponential({ start: 0.0005, factor: 2, count: 16 }),
  "Loader run time in seconds"
)

/**
 * A snapshot of one cache's counters since it was made.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  readonly namespace: string
  readonly store: string
  readonly hits: number
  readonly staleHits: number
  readonly misses: number
  readonly loads: number
  readonly loadFailures: number
  readonly decodeFailures: number
  readonly encodeFailures: number
  readonly storeErrors: number
  /** Background refreshes that failed; the entry they refreshed was kept. */
  readonly refreshFailures: number
  /** Loader failures answered with a value kept by `failSafe`. */
  readonly failSafeServes: number
  /** Reads answered with a kept value after the soft timeout, while the load went on. */
  readonly softTimeouts: number
  /** Key leases granted to loads under `lock`. */
  readonly locksAcquired: number
  /** Loads under `lock` that found their key's lease held and waited for its holder. */
  readonly lockWaits: number
  /** Lease waits that reached `wait` without the holder's value. */
  readonly lockTimeouts: number
  /** Lease waits that took the lease over and loaded, the holder gone without a value. */
  readonly lockTakeovers: number
  /** (hits + stale hits) / reads, 0 when nothing was read. */
  readonly hitRate: number
}

/**
 * Labels that pick one cache: its namespace and the name of its store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Labels {
  readonly namespace: string
  readonly store: string
}

/**
 * The counters of one namespace over one store, read from the process-wide metrics: the sums of
 * every cache of the program with these labels since the process started (where `stats` on a
 * handle counts that handle alone since it was made). A namespace nothing has counted yet reads
 * as zeros.
 *
 * @since 0.1.0
 * @category reading
 * @example
 * ```ts
 * import { CacheMetrics, MemoryStore, ReadThrough } from "effect-cachekit"
 * import { Effect, Schema } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const users = yield* ReadThrough.make({
 *     namespace: "user",
 *     value: Schema.String,
 *     lookup: (id: string) => Effect.succeed(`user ${id}`),
 *     ttl: "5 minutes"
 *   })
 *   yield* users.get("1")
 *   yield* users.get("1")
 *   const stats = yield* CacheMetrics.snapshot({ namespace: "user", store: "memory" })
 *   return stats.hitRate // 0.5: one miss, then one hit
 * })
 *
 * Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(MemoryStore.layer())))
 * ```
 */
export const snapshot = (labels: Labels): Effect.Effect<Stats> =>
  Effect.map(Metric.snapshot, (pairs) => {
    const counts = internal.sumFields(pairs, internal.namespaceFields, [
      ["namespace", labels.namespace],
      ["store", labels.store]
    ])
    const reads = counts.hits + counts.staleHits + counts.misses
    return {
      namespace: labels.namespace,
      store: labels.store,
      ...counts,
      hitRate: reads === 0 ? 0 : (counts.hits + counts.staleHits) / reads
    }
  })

/**
 * What a bounded in-memory store reports about itself.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoreStats {
  readonly store: string
  /** Entries evicted to make room since the process started. */
  readonly evictions: number
  /** Entries held now. */
  readonly entries: number
  /** Approximate bytes held now. */
  readonly bytes: number
}

/**
 * The store-level metrics of one store name (`evictions`, `entries`, `bytes`; the memory store
 * reports them). A store that reported nothing reads as zeros.
 *
 * @since 0.1.0
 * @category reading
 * @example
 * ```ts
 * import { CacheMetrics } from "effect-cachekit"
 * import { Effect } from "effect"
 *
 * const report = Effect.map(CacheMetrics.storeSnapshot("memory"), (s) => `${s.entries} entries, ${s.bytes} bytes`)
 * ```
 */
export const storeSnapshot = (store: string): Effect.Effect<StoreStats> =>
  Effect.map(
    Metric.snapshot,
    (pairs) => ({ store, ...internal.sumFields(pairs, internal.storeFields, [["store", store]]) })
  )

/**
 * Renders metric pairs (from `Metric.snapshot`) in the Prometheus text exposition format
 * (version 0.0.4, served as `text/plain; version=0.0.4`): a `# HELP` and `# TYPE` header per
 * metric name, one sample per label set, sorted. Histograms give cumulative `_bucket` lines
 * (ending with `le="+Inf"`), `_sum` and `_count`; summaries their quantiles, `_sum` and `_count`;
 * frequencies become counters with one sample per occurrence, labelled `key`. Names and label
 * names outside Prometheus's alphabet have the other characters replaced by `_`; label values
 * are escaped.
 *
 * Use it to serve every metric of the program, the package's and your own, from one endpoint.
 *
 * @since 0.1.0
 * @category exporting
 * @example
 * ```ts
 * import { CacheMetrics } from "effect-cachekit"
 * import { Effect, Metric } from "effect"
 *
 * const everything: Effect.Effect<string> = Effect.map(Metric.snapshot, CacheMetrics.formatPrometheus)
 * ```
 */
export const formatPrometheus: (pairs: Iterable<MetricPair.MetricPair.Untyped>) => string = internal.formatPrometheus

/**
 * Every metric of effect-cachekit (names starting `effect_cachekit_`) as Prometheus text: what a
 * `/metrics` endpoint serves.
 *
 * @since 0.1.0
 * @category exporting
 * @example
 * ```ts
 * import { HttpServerResponse } from "@effect/platform"
 * import { CacheMetrics } from "effect-cachekit"
 * import { Effect } from "effect"
 *
 * const metricsResponse = Effect.map(
 *   CacheMetrics.prometheus,
 *   (text) => HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4" })
 * )
 * ```
 */
export const prometheus: Effect.Effect<string> = Effect.map(
  Metric.snapshot,
  (pairs) => internal.formatPrometheus(pairs.filter((pair) => pair.metricKey.name.startsWith(internal.PREFIX)))
)
