/**
 * Cache metrics as Effect `Metric`s, tagged with the cache namespace and the store name, plus the
 * per-cache `Stats` snapshot that strategies return from `stats`.
 *
 * Every metric is an ordinary Effect metric: export them with `@effect/opentelemetry` or read
 * them with `Metric.value`.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

/**
 * Reads that found a fresh entry.
 *
 * @since 0.1.0
 * @category metrics
 */
export const hits = Metric.counter("effect_cachekit_hits_total", {
  description: "Cache reads served from a fresh entry",
  incremental: true
})

/**
 * Reads that found no usable entry.
 *
 * @since 0.1.0
 * @category metrics
 */
export const misses = Metric.counter("effect_cachekit_misses_total", {
  description: "Cache reads that found no usable entry",
  incremental: true
})

/**
 * Reads served from a stale entry while it is refreshed in the background.
 *
 * @since 0.1.0
 * @category metrics
 */
export const staleHits = Metric.counter("effect_cachekit_stale_hits_total", {
  description: "Cache reads served from a stale entry (stale-while-revalidate)",
  incremental: true
})

/**
 * Loader runs (one per key per flight: concurrent misses share one).
 *
 * @since 0.1.0
 * @category metrics
 */
export const loads = Metric.counter("effect_cachekit_loads_total", {
  description: "Loader runs",
  incremental: true
})

/**
 * Loader runs that failed (their error went back to the callers and nothing was cached).
 *
 * @since 0.1.0
 * @category metrics
 */
export const loadFailures = Metric.counter("effect_cachekit_load_failures_total", {
  description: "Loader runs that failed",
  incremental: true
})

/**
 * Entries whose bytes no longer decode with the namespace's Schema (treated as misses).
 *
 * @since 0.1.0
 * @category metrics
 */
export const decodeFailures = Metric.counter("effect_cachekit_decode_failures_total", {
  description: "Stored entries that failed to decode and were dropped",
  incremental: true
})

/**
 * Values that could not be encoded for the store.
 *
 * @since 0.1.0
 * @category metrics
 */
export const encodeFailures = Metric.counter("effect_cachekit_encode_failures_total", {
  description: "Values that could not be encoded and were not cached",
  incremental: true
})

/**
 * Store operations that failed (the pipeline fell back to the loader or skipped the write).
 *
 * @since 0.1.0
 * @category metrics
 */
export const storeErrors = Metric.counter("effect_cachekit_store_errors_total", {
  description: "Failed store operations",
  incremental: true
})

/**
 * Entries evicted by a bounded store to make room.
 *
 * @since 0.1.0
 * @category metrics
 */
export const evictions = Metric.counter("effect_cachekit_evictions_total", {
  description: "Entries evicted to make room",
  incremental: true
})

/**
 * Entries held by a memory store.
 *
 * @since 0.1.0
 * @category metrics
 */
export const entries = Metric.gauge("effect_cachekit_entries", {
  description: "Entries held by an in-memory store"
})

/**
 * Approximate bytes held by a memory store.
 *
 * @since 0.1.0
 * @category metrics
 */
export const bytes = Metric.gauge("effect_cachekit_bytes", {
  description: "Approximate bytes held by an in-memory store"
})

/**
 * How long loader runs take, in seconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const loadDuration = Metric.histogram(
  "effect_cachekit_load_duration_seconds",
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
  /** (hits + stale hits) / reads, 0 when nothing was read. */
  readonly hitRate: number
}
