import { describe, expect, it } from "@effect/vitest"
import { Clock, Config, ConfigProvider, Context, Effect, Exit, Layer, Metric, Option, TestClock } from "effect"
import { CacheMetrics, CacheStore, MemoryStore } from "effect-cachekit"
import * as Testing from "effect-cachekit/testing"
import { ABSENT, MemoryCore } from "../src/internal/memoryStore.js"
import { bytes } from "../src/internal/testing/bytes.js"

Testing.storeSuite({ describe, expect, it }, "MemoryStore (lru)", {
  make: () => MemoryStore.make({ eviction: "lru" }),
  clock: "test"
})
Testing.storeSuite({ describe, expect, it }, "MemoryStore (w-tinylfu)", {
  make: () => MemoryStore.make({ eviction: "w-tinylfu" }),
  clock: "test"
})

/** The clock in context (the TestClock in `it.effect`), with every `sleep` made through it counted. */
const countingSleeps = Effect.map(Effect.clock, (inner) => {
  const counter = { sleeps: 0 }
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => inner.unsafeCurrentTimeMillis(),
    unsafeCurrentTimeNanos: () => inner.unsafeCurrentTimeNanos(),
    currentTimeMillis: inner.currentTimeMillis,
    currentTimeNanos: inner.currentTimeNanos,
    sleep: (duration) => {
      counter.sleeps++
      return inner.sleep(duration)
    }
  }
  return { clock, counter }
})

/** Builds a store layer in the test's scope, with `clock` as the clock its fibers see. */
const buildWith = (layer: Layer.Layer<CacheStore.CacheStore>, clock: Clock.Clock) =>
  Effect.map(Effect.withClock(Layer.build(layer), clock), (context) => Context.get(context, CacheStore.CacheStore))

describe("MemoryStore", () => {
  it.scoped("evicts the least recently used entry when over capacity", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ capacity: 3, eviction: "lru" })
      yield* store.set("a", bytes("1"))
      yield* store.set("b", bytes("2"))
      yield* store.set("c", bytes("3"))
      yield* store.get("a") // a is now the most recent
      yield* store.set("d", bytes("4"))
      const present = (yield* store.getMany(["a", "b", "c", "d"])).map(Option.isSome)
      expect(present).toEqual([true, false, true, true])
    }))

  it.scoped("keeps the approximate byte size under maxBytes", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ maxBytes: 1000, capacity: Infinity })
      for (let i = 0; i < 50; i++) yield* store.set(`k${i}`, new Uint8Array(100))
      const present = (yield* store.getMany(Array.from({ length: 50 }, (_, i) => `k${i}`))).filter(Option.isSome)
      expect(present.length).toBeGreaterThan(0)
      expect(present.length).toBeLessThanOrEqual(9)
      // the most recent writes are the ones kept
      expect(Option.isSome(yield* store.get("k49"))).toBe(true)
    }))

  it.scoped("a value larger than maxBytes fails with ValueTooLarge and leaves the old entry", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ maxBytes: 100 })
      yield* store.set("k", bytes("small"))
      const result = yield* Effect.either(store.set("k", new Uint8Array(1000)))
      expect(result._tag === "Left" && result.left._tag).toBe("ValueTooLarge")
      expect(Option.getOrThrow(yield* store.get("k"))).toEqual(bytes("small"))
    }))

  it.scoped("the sweep fiber drops expired entries on the TestClock", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ sweepInterval: "10 seconds", name: "sweepy" })
      yield* store.set("a", bytes("1"), "5 seconds")
      yield* store.set("b", bytes("2"))
      const entries = CacheMetrics.entries.pipe(Metric.tagged("store", "sweepy"))
      expect((yield* Metric.value(entries)).value).toBe(2)
      yield* TestClock.adjust("11 seconds")
      // no read happened: only the sweep can have removed it
      expect((yield* Metric.value(entries)).value).toBe(1)
    }))

  it.scoped("with the default layer, moving the TestClock by a year wakes the sweep only when entries expire", () =>
    Effect.gen(function*() {
      const { clock, counter } = yield* countingSleeps
      const entries = CacheMetrics.entries.pipe(Metric.tagged("store", "memory"))
      const store = yield* buildWith(MemoryStore.layer(), clock)
      {
        yield* store.set("short", bytes("1"), "5 minutes")
        yield* store.set("forever", bytes("2"))
        // a sweep on a fixed period would sleep 1,440 times in a day of test time
        yield* TestClock.adjust("1 day")
        expect(counter.sleeps).toBeLessThanOrEqual(2)
        expect((yield* Metric.value(entries)).value).toBe(1)
        // nothing expires any more: a year passes without a single wake-up
        yield* TestClock.adjust("365 days")
        expect(counter.sleeps).toBeLessThanOrEqual(2)
        // an entry written after the idle year is swept when it expires
        yield* store.set("later", bytes("3"), "1 hour")
        expect((yield* Metric.value(entries)).value).toBe(2)
        yield* TestClock.adjust("2 hours")
        expect((yield* Metric.value(entries)).value).toBe(1)
        expect(counter.sleeps).toBeLessThanOrEqual(4)
        expect(Option.isSome(yield* store.get("forever"))).toBe(true)
      }
    }))

  it.scoped("a write that expires sooner than the sweep is scheduled brings the sweep forward", () =>
    Effect.gen(function*() {
      const { clock, counter } = yield* countingSleeps
      const entries = CacheMetrics.entries.pipe(Metric.tagged("store", "forward"))
      const store = yield* buildWith(MemoryStore.layer({ name: "forward" }), clock)
      {
        yield* store.set("late", bytes("1"), "10 days")
        yield* TestClock.adjust("1 hour")
        yield* store.set("soon", bytes("2"), "5 minutes")
        yield* TestClock.adjust("6 minutes")
        // no read happened: only the sweep can have removed it, four days before "late" expires
        expect((yield* Metric.value(entries)).value).toBe(1)
        yield* TestClock.adjust("10 days")
        expect((yield* Metric.value(entries)).value).toBe(0)
        expect(counter.sleeps).toBeLessThanOrEqual(4)
      }
    }))

  it.scoped("a TTL with a fraction of a millisecond (as jittered TTLs have) is swept, without a spin", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ sweepInterval: "1 millis", name: "fractional" })
      const entries = CacheMetrics.entries.pipe(Metric.tagged("store", "fractional"))
      // 1000.0000004 ms is 1,000,000,000 ns once rounded: a sleep for it ends just short of the expiry
      yield* store.set("a", bytes("1"), 1000.0000004)
      yield* store.set("b", bytes("2"), 1500.0000004)
      yield* TestClock.adjust("2 seconds")
      expect((yield* Metric.value(entries)).value).toBe(0)
    }))

  it.scoped("counts evictions in a metric tagged by store name", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ capacity: 2, name: "evicting" })
      for (let i = 0; i < 5; i++) yield* store.set(`k${i}`, bytes("v"))
      const evictions = CacheMetrics.evictions.pipe(Metric.tagged("store", "evicting"))
      expect((yield* Metric.value(evictions)).count).toBe(3)
    }))

  it("rejects nonsense options at construction", () => {
    const nonsense: ReadonlyArray<MemoryStore.Options> = [
      { capacity: 0 },
      { capacity: -1 },
      { capacity: 1.5 },
      { capacity: Number.NaN },
      { maxBytes: 0 },
      { maxBytes: -10 },
      { sweepInterval: "-1 seconds" },
      { sweepInterval: 0 },
      { eviction: "fifo" as never },
      { name: "" }
    ]
    for (const options of nonsense) {
      expect(() => MemoryStore.layer(options), JSON.stringify(options)).toThrow(/MemoryStore: invalid options/)
    }
  })

  it.effect("layerConfig reads options from Config and rejects nonsense with a ConfigError", () =>
    Effect.gen(function*() {
      const layer = MemoryStore.layerConfig({ capacity: Config.integer("CAPACITY") })
      const ok = yield* CacheStore.CacheStore.pipe(
        Effect.map((store) => store.name),
        Effect.provide(layer),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["CAPACITY", "5"]])))
      )
      expect(ok).toBe("memory")
      const bad = yield* CacheStore.CacheStore.pipe(
        Effect.provide(layer),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["CAPACITY", "0"]]))),
        Effect.exit
      )
      expect(Exit.isFailure(bad)).toBe(true)
      expect(String(bad)).toMatch(/capacity must be a positive integer/)
    }))

  it.effect("closing the layer's scope drops the entries", () =>
    Effect.gen(function*() {
      const layer = MemoryStore.layer({ name: "scoped" })
      yield* Effect.scoped(
        Effect.gen(function*() {
          const store = yield* CacheStore.CacheStore
          yield* store.set("k", bytes("v"))
        }).pipe(Effect.provide(layer))
      )
      const entries = CacheMetrics.entries.pipe(Metric.tagged("store", "scoped"))
      expect((yield* Metric.value(entries)).value).toBe(0)
    }))

  it.scoped("a layer built twice gives two independent stores", () =>
    Effect.gen(function*() {
      const one = yield* Layer.build(MemoryStore.layer())
      const two = yield* Layer.build(MemoryStore.layer())
      const a = CacheStore.CacheStore.pipe(Effect.provide(one))
      const b = CacheStore.CacheStore.pipe(Effect.provide(two))
      yield* Effect.flatMap(a, (s) => s.set("k", bytes("v")))
      expect(Option.isNone(yield* Effect.flatMap(b, (s) => s.get("k")))).toBe(true)
    }))
})

describe.each(["lru", "w-tinylfu"] as const)("MemoryCore (%s): slots are reused", (eviction) => {
  it("never returns a value that is not the key's last write, nor one past its expiry", () => {
    // A small store under random writes, reads, deletes, re-expiries and sweeps, next to a plain
    // model of what was written: entries move through freed slots all the time, and the arrays
    // grow from their first size, so a slot mix-up would surface as another key's value.
    const capacity = 37
    const core = new MemoryCore({ capacity, maxBytes: 600, eviction })
    const model = new Map<string, { readonly value: Uint8Array; expiresAt: number }>()
    let state = 2024
    const next = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0)
    let now = 0
    let hits = 0
    for (let i = 0; i < 40_000; i++) {
      const key = `k${next() % 120}`
      const op = next() % 10
      if (op < 4) {
        const value = bytes(`${key}@${i}`)
        const expiresAt = next() % 4 === 0 ? Infinity : now + 1 + (next() % 50)
        core.write(key, value, 8 + (next() % 20), expiresAt)
        model.set(key, { value, expiresAt })
      } else if (op < 8) {
        const found = core.lookup(key, now)
        if (found !== undefined) {
          hits++
          const written = model.get(key)
          expect(written).toBeDefined()
          expect(found).toBe(written!.value)
          expect(written!.expiresAt).toBeGreaterThan(now)
        }
      } else if (op === 8) {
        core.delete(key)
        model.delete(key)
      } else {
        const slot = core.peek(key, now)
        if (slot !== ABSENT) {
          const expiresAt = now + 1 + (next() % 50)
          core.retime(slot, expiresAt)
          model.get(key)!.expiresAt = expiresAt
        }
      }
      if (i % 1000 === 999) core.sweep(now)
      now += next() % 3
      expect(core.size).toBeLessThanOrEqual(capacity)
      expect(core.bytes).toBeLessThanOrEqual(600)
    }
    expect(hits).toBeGreaterThan(1000)
    // Every key the map holds sits in its own slot.
    for (const [key, slot] of core.map) expect(core.keyOf(slot)).toBe(key)
    expect(new Set(core.map.values()).size).toBe(core.size)
  })

  it("reads an entry's expiry once any entry may have expired, whatever lowered the bound", () => {
    // A hit skips its entry's expiry while the clock is before `earliestExpiry`; every way an
    // expiry can come sooner (a write, a retime after a sweep made the bound exact) must lower it.
    const core = new MemoryCore({ capacity: 10, maxBytes: Infinity, eviction })
    core.write("forever", bytes("f"), 8, Infinity)
    core.write("later", bytes("l"), 8, 100)
    expect(core.sweep(0)).toBe(0)
    expect(core.earliestExpiry).toBe(100)
    core.retime(core.peek("later", 0), 50)
    expect(core.lookup("later", 49)).toBeDefined()
    expect(core.lookup("later", 50)).toBeUndefined()
    core.write("soon", bytes("s"), 8, 20)
    expect(core.lookup("soon", 19)).toBeDefined()
    expect(core.peek("soon", 20)).toBe(ABSENT)
    expect(core.lookup("forever", 1e12)).toBeDefined()
  })
})
