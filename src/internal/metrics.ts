import type * as MetricLabel from "effect/MetricLabel"
import type * as MetricPair from "effect/MetricPair"
import * as MetricState from "effect/MetricState"

/** The prefix of every metric name of the package. @internal */
export const PREFIX = "effect_cachekit_"

/**
 * The names of the package's metrics, by the field of `Stats` / `StoreStats` each one is read
 * into: the one place a metric's name is spelled.
 * @internal
 */
export const names = {
  hits: "effect_cachekit_hits_total",
  staleHits: "effect_cachekit_stale_hits_total",
  misses: "effect_cachekit_misses_total",
  loads: "effect_cachekit_loads_total",
  loadFailures: "effect_cachekit_load_failures_total",
  decodeFailures: "effect_cachekit_decode_failures_total",
  encodeFailures: "effect_cachekit_encode_failures_total",
  storeErrors: "effect_cachekit_store_errors_total",
  refreshFailures: "effect_cachekit_refresh_failures_total",
  failSafeServes: "effect_cachekit_fail_safe_serves_total",
  softTimeouts: "effect_cachekit_soft_timeouts_total",
  locksAcquired: "effect_cachekit_locks_acquired_total",
  lockWaits: "effect_cachekit_lock_waits_total",
  lockTimeouts: "effect_cachekit_lock_timeouts_total",
  lockTakeovers: "effect_cachekit_lock_takeovers_total",
  evictions: "effect_cachekit_evictions_total",
  entries: "effect_cachekit_entries",
  bytes: "effect_cachekit_bytes",
  loadDuration: "effect_cachekit_load_duration_seconds",
  writeBehindPending: "effect_cachekit_write_behind_pending",
  writeBehindFlushed: "effect_cachekit_write_behind_flushed_total",
  writeBehindCoalesced: "effect_cachekit_write_behind_coalesced_total",
  writeBehindRetried: "effect_cachekit_write_behind_retried_total",
  writeBehindFailed: "effect_cachekit_write_behind_failed_total",
  writeBehindDeadLettered: "effect_cachekit_write_behind_dead_lettered_total"
} as const

/** The counters tagged `namespace` and `store`. @internal */
export type NamespaceField =
  | "hits"
  | "staleHits"
  | "misses"
  | "loads"
  | "loadFailures"
  | "decodeFailures"
  | "encodeFailures"
  | "storeErrors"
  | "refreshFailures"
  | "failSafeServes"
  | "softTimeouts"
  | "locksAcquired"
  | "lockWaits"
  | "lockTimeouts"
  | "lockTakeovers"

/** The metrics tagged `store` alone. @internal */
export type StoreField = "evictions" | "entries" | "bytes"

const fieldsOf = <F extends keyof typeof names>(fields: ReadonlyArray<F>): ReadonlyMap<string, F> =>
  new Map(fields.map((field) => [names[field], field]))

/** @internal */
export const namespaceFields: ReadonlyMap<string, NamespaceField> = fieldsOf<NamespaceField>([
  "hits",
  "staleHits",
  "misses",
  "loads",
  "loadFailures",
  "decodeFailures",
  "encodeFailures",
  "storeErrors",
  "refreshFailures",
  "failSafeServes",
  "softTimeouts",
  "locksAcquired",
  "lockWaits",
  "lockTimeouts",
  "lockTakeovers"
])

/** @internal */
export const storeFields: ReadonlyMap<string, StoreField> = fieldsOf<StoreField>(["evictions", "entries", "bytes"])

/**
 * Sums, per field, the counters and gauges among `pairs` named in `fields` whose tags carry
 * every one of `wanted`. @internal
 */
export const sumFields = <F extends string>(
  pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>,
  fields: ReadonlyMap<string, F>,
  wanted: ReadonlyArray<readonly [string, string]>
): Record<F, number> => {
  const sums = {} as Record<F, number>
  for (const field of fields.values()) sums[field] = 0
  for (const pair of pairs) {
    const field = fields.get(pair.metricKey.name)
    if (field === undefined || !hasLabels(pair.metricKey.tags, wanted)) continue
    sums[field] += numberOf(pair.metricState) ?? 0
  }
  return sums
}

/** Whether `tags` carry every one of `wanted` (name and value), in any order and among others. @internal */
export const hasLabels = (
  tags: ReadonlyArray<MetricLabel.MetricLabel>,
  wanted: ReadonlyArray<readonly [string, string]>
): boolean => {
  for (const [key, value] of wanted) {
    if (!tags.some((tag) => tag.key === key && tag.value === value)) return false
  }
  return true
}

/** The number a counter or gauge holds. @internal */
export const numberOf = (state: MetricState.MetricState.Untyped): number | undefined => {
  if (MetricState.isCounterState(state)) return Number(state.count)
  if (MetricState.isGaugeState(state)) return Number(state.value)
  return undefined
}

// -------------------------------------------------------------------------------------------------
// Prometheus text exposition format (version 0.0.4)

const validName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const validLabel = /^[a-zA-Z_][a-zA-Z0-9_]*$/

const metricName = (name: string): string =>
  validName.test(name) ? name : name.replace(/[^a-zA-Z0-9_:]/g, "_")
    .replace(/^[0-9]/, "_$&")
const labelName = (name: string): string =>
  validLabel.test(name) ? name : name.replace(/[^a-zA-Z0-9_]/g, "_")
    .replace(/^[0-9]/, "_$&")

const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const number = (n: number): string =>
  Number.isNaN(n) ? "NaN" : n === Infinity ? "+Inf" : n === -Infinity ? "-Inf" : String(n)

const labelSet = (labels: ReadonlyArray<readonly [string, string]>): string =>
  labels.length === 0 ? "" : `{${labels.map(([k, v]) => `${labelName(k)}="${escapeLabelValue(v)}"`).join(",")}}`

interface Family {
  readonly type: "counter" | "gauge" | "histogram" | "summary"
  readonly help: string | undefined
  readonly samples: Array<{ readonly order: string; readonly lines: Array<string> }>
}

/**
 * Renders metric pairs in the Prometheus text format: one `# HELP` / `# TYPE` header per metric
 * name, then one sample per label set, sorted by name and labels so that the output is stable.
 * Counters and gauges give one line each; histograms their cumulative `_bucket` lines (ending
 * with one `le="+Inf"`), `_sum` and `_count`; summaries their `quantile` lines, `_sum` and `_count`;
 * frequencies become counters with one sample per occurrence, labelled `key`.
 * @internal
 */
export const formatPrometheus = (pairs: Iterable<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  for (const pair of pairs) {
    const key = pair.metricKey
    const state = pair.metricState
    const name = metricName(key.name)
    const labels: Array<readonly [string, string]> = key.tags.map((tag) => [tag.key, tag.value] as const)
    const order = labelSet(labels)
    const lines: Array<string> = []
    let type: Family["type"]
    if (MetricState.isCounterState(state)) {
      type = "counter"
      lines.push(`${name}${order} ${number(Number(state.count))}`)
    } else if (MetricState.isGaugeState(state)) {
      type = "gauge"
      lines.push(`${name}${order} ${number(Number(state.value))}`)
    } else if (MetricState.isHistogramState(state)) {
      type = "histogram"
      // Effect's boundaries usually end with Infinity already; the +Inf bucket is written once
      for (const [bound, count] of state.buckets) {
        if (bound !== Infinity) lines.push(`${name}_bucket${labelSet([...labels, ["le", number(bound)]])} ${count}`)
      }
      lines.push(`${name}_bucket${labelSet([...labels, ["le", "+Inf"]])} ${state.count}`)
      lines.push(`${name}_sum${order} ${number(state.sum)}`)
      lines.push(`${name}_count${order} ${state.count}`)
    } else if (MetricState.isSummaryState(state)) {
      type = "summary"
      for (const [quantile, value] of state.quantiles) {
        if (value._tag === "Some") {
          lines.push(`${name}${labelSet([...labels, ["quantile", number(quantile)]])} ${number(value.value)}`)
        }
      }
      lines.push(`${name}_sum${order} ${number(state.sum)}`)
      lines.push(`${name}_count${order} ${state.count}`)
    } else if (MetricState.isFrequencyState(state)) {
      type = "counter"
      const occurrences = [...state.occurrences].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
      for (const [occurrence, count] of occurrences) {
        lines.push(`${name}${labelSet([...labels, ["key", occurrence]])} ${count}`)
      }
    } else {
      continue
    }
    let family = families.get(name)
    if (family === undefined) {
      family = {
        type,
        help: key.description._tag === "Some" ? key.description.value : undefined,
        samples: []
      }
      families.set(name, family)
    }
    family.samples.push({ order, lines })
  }
  const out: Array<string> = []
  for (const name of [...families.keys()].sort()) {
    const family = families.get(name)!
    if (family.help !== undefined) out.push(`# HELP ${name} ${escapeHelp(family.help)}`)
    out.push(`# TYPE ${name} ${family.type}`)
    family.samples.sort((a, b) => a.order < b.order ? -1 : a.order > b.order ? 1 : 0)
    for (const sample of family.samples) {
      for (const line of sample.lines) out.push(line)
    }
  }
  return out.length === 0 ? "" : out.join("\n") + "\n"
}
