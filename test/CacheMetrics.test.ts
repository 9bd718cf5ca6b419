import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries, Schema, TestClock } from "effect"
import { CacheMetrics, MemoryStore, ReadThrough } from "effect-cachekit"

// Metrics are process-wide: each test uses its own namespace and store name.

const reads = (namespace: string, store: string) =>
  Effect.gen(function*() {
    const values = yield* ReadThrough.make({
      namespace,
      value: Schema.String,
      lookup: (key: string) =>
        key.startsWith("bad") ? Effect.fail("not found" as const) : Effect.as(Effect.sleep("2 millis"), `v-${key}`),
      ttl: "1 minute"
    }).pipe(Effect.provide(MemoryStore.layer({ name: store, capacity: 2 })))
    return values
  })

describe("CacheMetrics", () => {
  it.scoped("snapshot reads every counter of a namespace and store, and matches the handle's stats", () =>
    Effect.gen(function*() {
      const values = yield* reads("snap-ns", "snap-store")
      yield* Effect.fork(values.get("a"))
      yield* TestClock.adjust("2 millis")
      yield* values.get("a")
      yield* values.get("a")
      yield* Effect.flip(values.get("bad"))
      const snap = yield* CacheMetrics.snapshot({ namespace: "snap-ns", store: "snap-store" })
      expect(snap).toEqual({
        namespace: "snap-ns",
        store: "snap-store",
        hits: 2,
        staleHits: 0,
        misses: 2,
        loads: 2,
        loadFailures: 1,
        decodeFailures: 0,
        encodeFailures: 0,
        storeErrors: 0,
        refreshFailures: 0,
        failSafeServes: 0,
        softTimeouts: 0,
        locksAcquired: 0,
        lockWaits: 0,
        lockTimeouts: 0,
        lockTakeovers: 0,
        hitRate: 0.5
      })
      expect(yield* values.stats).toEqual(snap)
      // Metric.value finds the counter only with the tags in the order the caches update it with
      const inOrder = CacheMetrics.hits.pipe(
        Metric.tagged("namespace", "snap-ns"),
        Metric.tagged("store", "snap-store")
      )
      const reversed = CacheMetrics.hits.pipe(
        Metric.tagged("store", "snap-store"),
        Metric.tagged("namespace", "snap-ns")
      )
      expect((yield* Metric.value(inOrder)).count).toBe(2)
      expect((yield* Metric.value(reversed)).count).toBe(0)
      // and the empty metric that lookup created does not disturb the snapshot
      expect(yield* CacheMetrics.snapshot({ namespace: "snap-ns", store: "snap-store" })).toEqual(snap)
    }))

  it.scoped("snapshot sums the caches that share labels and keeps other labels apart", () =>
    Effect.gen(function*() {
      const one = yield* reads("shared-ns", "shared-store")
      const two = yield* reads("shared-ns", "shared-store")
      const other = yield* reads("shared-ns", "other-store")
      yield* Effect.flip(one.get("bad-1"))
      yield* Effect.flip(two.get("bad-2"))
      yield* Effect.flip(other.get("bad-3"))
      const shared = yield* CacheMetrics.snapshot({ namespace: "shared-ns", store: "shared-store" })
      expect([shared.misses, shared.loads, shared.loadFailures]).toEqual([2, 2, 2])
      const apart = yield* CacheMetrics.snapshot({ namespace: "shared-ns", store: "other-store" })
      expect([apart.misses, apart.loads, apart.loadFailures]).toEqual([1, 1, 1])
    }))

  it.effect("snapshot of labels nothing counted is all zeros and registers no metric", () =>
    Effect.gen(function*() {
      const before = (yield* Metric.snapshot).length
      const snap = yield* CacheMetrics.snapshot({ namespace: "never-used", store: "nowhere" })
      expect(snap).toMatchObject({ hits: 0, misses: 0, loads: 0, storeErrors: 0, hitRate: 0 })
      expect((yield* Metric.snapshot).length).toBe(before)
    }))

  it.scoped("storeSnapshot reads a memory store's evictions, entries and bytes", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ name: "store-snap", capacity: 2 })
      for (const key of ["a", "b", "c", "d"]) yield* store.set(key, new Uint8Array(10))
      const snap = yield* CacheMetrics.storeSnapshot("store-snap")
      expect(snap.store).toBe("store-snap")
      expect(snap.evictions).toBe(2)
      expect(snap.entries).toBe(2)
      expect(snap.bytes).toBeGreaterThan(0)
    }))

  it.scoped("prometheus renders the package's counters, gauges and histogram", () =>
    Effect.gen(function*() {
      const values = yield* reads("prom-ns", "prom-store")
      yield* Effect.fork(values.get("a"))
      yield* TestClock.adjust("2 millis")
      yield* values.get("a")
      const text = yield* CacheMetrics.prometheus
      const lines = text.split("\n")
      const labels = `{namespace="prom-ns",store="prom-store"}`
      expect(lines).toContain(`effect_cachekit_hits_total${labels} 1`)
      expect(lines).toContain(`effect_cachekit_misses_total${labels} 1`)
      expect(lines).toContain(`effect_cachekit_loads_total${labels} 1`)
      expect(lines).toContain(`effect_cachekit_entries{store="prom-store"} 1`)
      expect(lines).toContain("# TYPE effect_cachekit_hits_total counter")
      expect(lines).toContain("# HELP effect_cachekit_hits_total Cache reads served from a fresh entry")
      expect(lines).toContain("# TYPE effect_cachekit_entries gauge")
      expect(lines).toContain("# TYPE effect_cachekit_load_duration_seconds histogram")
      // one load of 2 ms: in the buckets from 0.002 up, not in the ones below
      const bucket = (le: string) =>
        lines.find((l) =>
          l.startsWith(
            `effect_cachekit_load_duration_seconds_bucket{namespace="prom-ns",store="prom-store",le="${le}"}`
          )
        )
      expect(bucket("0.001")).toMatch(/ 0$/)
      expect(bucket("0.002")).toMatch(/ 1$/)
      expect(bucket("+Inf")).toMatch(/ 1$/)
      const buckets = lines.filter((l) =>
        l.startsWith(`effect_cachekit_load_duration_seconds_bucket{namespace="prom-ns",store="prom-store",`)
      )
      expect(buckets.length).toBe(16) // 15 finite boundaries, then +Inf
      expect(buckets.filter((l) => l.includes("le=\"+Inf\"")).length).toBe(1)
      expect(lines).toContain(`effect_cachekit_load_duration_seconds_count${labels} 1`)
      expect(lines).toContain(`effect_cachekit_load_duration_seconds_sum${labels} 0.002`)
      // every header once, and nothing that is not the package's
      const types = lines.filter((l) => l.startsWith("# TYPE "))
      expect(new Set(types).size).toBe(types.length)
      expect(lines.filter((l) => l !== "" && !l.startsWith("#")).every((l) => l.startsWith("effect_cachekit_"))).toBe(
        true
      )
      expect(text.endsWith("\n")).toBe(true)
    }))

  it.effect("formatPrometheus escapes label values and help, renames what Prometheus cannot name", () =>
    Effect.gen(function*() {
      const counter = Metric.counter("app.requests-total", { description: "line one\nback\\slash" }).pipe(
        Metric.tagged("route", "a \"quoted\" \\ path\nnext"),
        Metric.tagged("9th-label", "x")
      )
      yield* Metric.increment(counter)
      const gauge = Metric.gauge("app_temperature").pipe(Metric.tagged("room", "b"))
      yield* Metric.set(gauge, -1.5)
      const latency = Metric.histogram("app_latency", MetricBoundaries.fromIterable([1, 2]))
      yield* Metric.update(latency, 1.5)
      yield* Metric.update(latency, 5)
      const text = CacheMetrics.formatPrometheus(yield* Metric.snapshot)
      const lines = text.split("\n")
      expect(lines).toContain("# HELP app_requests_total line one\\nback\\\\slash")
      expect(lines).toContain("app_requests_total{route=\"a \\\"quoted\\\" \\\\ path\\nnext\",_9th_label=\"x\"} 1")
      expect(lines).toContain("app_temperature{room=\"b\"} -1.5")
      expect(lines).toContain("app_latency_bucket{le=\"1\"} 0")
      expect(lines).toContain("app_latency_bucket{le=\"2\"} 1")
      expect(lines).toContain("app_latency_bucket{le=\"+Inf\"} 2")
      expect(lines.filter((l) => l.startsWith("app_latency_bucket")).length).toBe(3)
      expect(lines).toContain("app_latency_sum 6.5")
      expect(lines).toContain("app_latency_count 2")
      expect(CacheMetrics.formatPrometheus([])).toBe("")
    }))
})
