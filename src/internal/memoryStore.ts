import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { ValueTooLarge } from "../CacheError.js"
import type { StoreFailure } from "../CacheError.js"
import * as CacheMetrics from "../CacheMetrics.js"
import type * as CacheStore from "../CacheStore.js"
import { makePolicy } from "./eviction/index.js"
import type { EvictionKind } from "./eviction/index.js"
import type { Policy } from "./eviction/policy.js"
import { grownLength, hashKey, NO_SLOT } from "./eviction/policy.js"
import * as Glob from "./glob.js"
import { approximateSize, fenceHolds, invalidTtl, leaseMillis, ttlMillis, versionOf } from "./store.js"

/** @internal */
export interface CoreOptions {
  readonly capacity: number
  readonly maxBytes: number
  readonly eviction: EvictionKind
  readonly onEvict?: ((count: number) => void) | undefined
}

/** What `MemoryCore.peek` returns when no live entry has the key. @internal */
export const ABSENT = -1

/**
 * The synchronous heart of the memory store: a Map from key to slot, the entries in parallel
 * arrays indexed by slot, an eviction policy and size accounting. Time is passed in, so the store
 * can read it from Effect's Clock.
 *
 * An entry costs no object of its own: its key and value sit in two arrays, its expiry and size
 * in two `Float64Array`s, and the policy keeps its links in typed arrays of its own. Freed slots
 * are reused; the arrays grow by doubling up to `capacity + 1` slots (the store holds one entry
 * more than its capacity between a write and the eviction that follows).
 * @internal
 */
export class MemoryCore {
  /** Key → slot of every entry held (live or expired but not yet dropped). */
  readonly map = new Map<string, number>()
  readonly policy: Policy
  bytes = 0
  /**
   * No entry expires before this (Infinity: none expires). A lower bound, kept exact by `sweep`:
   * writes only ever lower it, so an entry removed or rewritten since may have expired later.
   * Reads rely on it: before it, no entry's own expiry needs reading.
   */
  earliestExpiry = Infinity
  /** Per slot: the key (undefined for a free slot), the value, the absolute expiry in Clock milliseconds (Infinity for none), the size. */
  private keys: Array<string | undefined> = []
  private values: Array<CacheStore.Value | undefined> = []
  private expiries = new Float64Array(0)
  private sizes = new Float64Array(0)
  /** Slots handed out so far; freed ones wait in `free` to be reused. */
  private used = 0
  private readonly free: Array<number> = []
  private readonly slotLimit: number

  constructor(readonly options: CoreOptions) {
    this.policy = makePolicy(options.eviction, options.capacity)
    this.slotLimit = options.capacity + 1
  }

  get size(): number {
    return this.map.size
  }

  /** The live value for a key, or undefined (an expired entry is dropped on the way). */
  lookup(key: string, now: number): CacheStore.Value | undefined {
    const slot = this.map.get(key)
    if (slot === undefined) {
      this.policy.onMiss(hashKey(key))
      return undefined
    }
    // Before `earliestExpiry` nothing has expired: a hit need not read its entry's expiry, one
    // memory access fewer in a large cache (all of them while no entry has a TTL).
    if (now >= this.earliestExpiry && this.expiries[slot]! <= now) {
      this.remove(slot)
      this.policy.onMiss(hashKey(key))
      return undefined
    }
    this.policy.onHit(slot)
    return this.values[slot]
  }

  /** The slot of a live entry, or `ABSENT`, without counting it as an access. */
  peek(key: string, now: number): number {
    const slot = this.map.get(key)
    if (slot === undefined) return ABSENT
    if (now >= this.earliestExpiry && this.expiries[slot]! <= now) {
      this.remove(slot)
      return ABSENT
    }
    return slot
  }

  /** The value of a live slot. */
  valueAt(slot: number): CacheStore.Value {
    return this.values[slot]!
  }

  /** The key of a live slot. */
  keyOf(slot: number): string {
    return this.keys[slot]!
  }

  /** The expiry of a live slot, in Clock milliseconds. */
  expiryOf(slot: number): number {
    return this.expiries[slot]!
  }

  /** Writes a value; the caller has checked its size against maxBytes. */
  write(key: string, value: CacheStore.Value, size: number, expiresAt: number): void {
    if (expiresAt < this.earliestExpiry) this.earliestExpiry = expiresAt
    const existing = this.map.get(key)
    if (existing !== undefined) {
      this.bytes += size - this.sizes[existing]!
      this.values[existing] = value
      this.sizes[existing] = size
      this.expiries[existing] = expiresAt
      this.policy.onHit(existing)
    } else {
      const slot = this.allocate()
      this.keys[slot] = key
      this.values[slot] = value
      this.sizes[slot] = size
      this.expiries[slot] = expiresAt
      this.map.set(key, slot)
      this.bytes += size
      this.policy.onAdd(slot, hashKey(key))
    }
    this.evictOverflow()
  }

  /** Removes the entry in a live slot. */
  remove(slot: number): void {
    const key = this.keys[slot]
    if (key === undefined) return
    this.map.delete(key)
    this.policy.onRemove(slot)
    this.release(slot)
  }

  delete(key: string): boolean {
    const slot = this.map.get(key)
    if (slot === undefined) return false
    this.remove(slot)
    return true
  }

  /** Gives a live slot a new expiry. */
  retime(slot: number, expiresAt: number): void {
    if (expiresAt < this.earliestExpiry) this.earliestExpiry = expiresAt
    this.expiries[slot] = expiresAt
  }

  clear(): void {
    this.map.clear()
    this.policy.clear()
    this.keys.fill(undefined)
    this.values.fill(undefined)
    this.used = 0
    this.free.length = 0
    this.bytes = 0
    this.earliestExpiry = Infinity
  }

  /** Drops expired entries; returns how many. Leaves `earliestExpiry` exact. */
  sweep(now: number): number {
    let dropped = 0
    let earliest = Infinity
    const expiries = this.expiries
    for (let slot = 0; slot < this.used; slot++) {
      if (this.keys[slot] === undefined) continue
      const expiresAt = expiries[slot]!
      if (expiresAt <= now) {
        this.remove(slot)
        dropped++
      } else if (expiresAt < earliest) {
        earliest = expiresAt
      }
    }
    this.earliestExpiry = earliest
    return dropped
  }

  /** A free slot: a released one, or the next new one (growing the arrays when they are full). */
  private allocate(): number {
    const reused = this.free.pop()
    if (reused !== undefined) return reused
    const slot = this.used++
    if (slot >= this.expiries.length) this.grow(grownLength(this.expiries.length, slot + 1, this.slotLimit))
    return slot
  }

  /** Forgets a slot's key and value (so they can be collected) and makes it free. */
  private release(slot: number): void {
    this.bytes -= this.sizes[slot]!
    this.keys[slot] = undefined
    this.values[slot] = undefined
    this.free.push(slot)
  }

  private grow(length: number): void {
    // Filled, so the arrays stay in V8's fast (holey) element kind at any length.
    const keys = new Array<string | undefined>(length).fill(undefined)
    const values = new Array<CacheStore.Value | undefined>(length).fill(undefined)
    for (let slot = 0; slot < this.keys.length; slot++) {
      keys[slot] = this.keys[slot]
      values[slot] = this.values[slot]
    }
    const expiries = new Float64Array(length)
    expiries.set(this.expiries)
    const sizes = new Float64Array(length)
    sizes.set(this.sizes)
    this.keys = keys
    this.values = values
    this.expiries = expiries
    this.sizes = sizes
    this.policy.grow(length)
  }

  private evictOverflow(): void {
    const { capacity, maxBytes } = this.options
    let evicted = 0
    while (this.map.size > capacity || this.bytes > maxBytes) {
      const victim = this.policy.evict()
      if (victim === NO_SLOT) break
      this.map.delete(this.keys[victim]!)
      this.release(victim)
      evicted++
    }
    if (evicted > 0) this.options.onEvict?.(evicted)
  }
}

/** The longest single sleep of the sweeper: 24 days, under the 2^31 - 1 ms a timer accepts. */
const MAX_SLEEP_MILLIS = 24 * 24 * 60 * 60 * 1000

/** A sweeper waiting for its next sweep. */
interface Sweeper {
  /** A write that expires before this brings the sweep forward. */
  readonly wakeAt: number
  readonly expiresSooner: () => void
}

/** @internal */
export interface MakeOptions {
  readonly name: string
  readonly capacity: number
  readonly maxBytes: number
  readonly eviction: EvictionKind
  readonly sweepInterval: Duration.Duration | undefined
}

/** @internal */
export const make = (options: MakeOptions): Effect.Effect<CacheStore.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    // The clock is captured once: hits read time without a service lookup, and under TestClock
    // the store still follows the test's time.
    const clock: Clock.Clock = yield* Effect.clock
    const tags = [MetricLabel.make("store", options.name)]
    const core = new MemoryCore({
      capacity: options.capacity,
      maxBytes: options.maxBytes,
      eviction: options.eviction,
      onEvict: (count) => CacheMetrics.evictions.unsafeUpdate(count, tags)
    })
    const report = () => {
      CacheMetrics.entries.unsafeUpdate(core.size, tags)
      CacheMetrics.bytes.unsafeUpdate(core.bytes, tags)
    }
    const now = () => clock.unsafeCurrentTimeMillis()

    /** Tells a sweeper waiting past `earliestExpiry` to come sooner; set while one is waiting. */
    let sweepWaiting: Sweeper | undefined

    /** Wakes a waiting sweeper when an entry now expires before the sweep it waits for. */
    const expiresSoonerMaybe = (expiresAt: number): void => {
      if (sweepWaiting !== undefined && expiresAt < sweepWaiting.wakeAt) sweepWaiting.expiresSooner()
    }

    const sizeOf = (key: string, value: CacheStore.Value) => approximateSize(value) + key.length * 2

    /** Why a write must be refused, decided before anything changes; `millis` is `ttlMillis(ttl)`. */
    const refusal = (
      operation: string,
      key: string,
      value: CacheStore.Value,
      ttl: Duration.DurationInput | undefined,
      millis: number | undefined
    ): StoreFailure | undefined => {
      if (Number.isNaN(millis)) return invalidTtl(options.name, operation, ttl)
      if (millis !== undefined && millis <= 0) return undefined // removes the key: no size to check
      const size = sizeOf(key, value)
      return size > options.maxBytes
        ? new ValueTooLarge({ store: options.name, key, size, limit: options.maxBytes })
        : undefined
    }

    /** Applies a write that `refusal` let through. */
    const apply = (key: string, value: CacheStore.Value, millis: number | undefined): void => {
      const t = now()
      const expiresAt = millis === undefined ? Infinity : t + millis
      if (expiresAt <= t) {
        core.delete(key)
        return
      }
      core.write(key, value, sizeOf(key, value), expiresAt)
      expiresSoonerMaybe(expiresAt)
    }

    const writeSync = (
      operation: string,
      key: string,
      value: CacheStore.Value,
      ttl: Duration.DurationInput | undefined
    ): StoreFailure | undefined => {
      const millis = ttlMillis(ttl)
      const error = refusal(operation, key, value, ttl, millis)
      if (error === undefined) apply(key, value, millis)
      return error
    }

    /** Gives a live entry's slot the TTL `millis` (`ttlMillis` of a TTL) from `t`; zero or less removes it. */
    const retime = (slot: number, millis: number | undefined, t: number): void => {
      const expiresAt = millis === undefined ? Infinity : t + millis
      if (expiresAt <= t) {
        core.remove(slot)
        report()
      } else {
        core.retime(slot, expiresAt)
        expiresSoonerMaybe(expiresAt)
      }
    }

    const getSync = (key: string): CacheStore.Value | undefined => core.lookup(key, now())

    const get = (key: string) =>
      Effect.sync(() => {
        const value = core.lookup(key, now())
        return value === undefined ? Option.none() : Option.some(value)
      })

    const set = (key: string, value: CacheStore.Value, ttl?: Duration.DurationInput) =>
      Effect.suspend(() => {
        const error = writeSync("set", key, value, ttl)
        report()
        return error === undefined ? Effect.void : Effect.fail(error)
      })

    // Leases live in a table of their own: never evicted, never listed by `keys`, never read as
    // entries. A lapsed lease stays in the table until its key is leased again or released.
    const leases = new Map<string, { readonly token: string; expiresAt: number }>()
    let leaseCount = 0
    const heldBy = (key: string, token: string) => {
      const held = leases.get(key)
      return held !== undefined && held.token === token && held.expiresAt > now() ? held : undefined
    }
    const lease: CacheStore.Lease = {
      acquire: (key, ttl) =>
        Effect.suspend(() => {
          const millis = leaseMillis(options.name, "lease", ttl)
          if (typeof millis !== "number") return Effect.fail(millis)
          const t = now()
          const held = leases.get(key)
          if (held !== undefined && held.expiresAt > t) return Effect.succeed(Option.none())
          const token = `${++leaseCount}`
          leases.set(key, { token, expiresAt: t + millis })
          return Effect.succeed(Option.some(token))
        }),
      extend: (key, token, ttl) =>
        Effect.suspend(() => {
          const millis = leaseMillis(options.name, "lease", ttl)
          if (typeof millis !== "number") return Effect.fail(millis)
          const held = heldBy(key, token)
          if (held === undefined) return Effect.succeed(false)
          held.expiresAt = now() + millis
          return Effect.succeed(true)
        }),
      release: (key, token) =>
        Effect.sync(() => {
          const held = heldBy(key, token)
          if (held === undefined) return false
          leases.delete(key)
          return true
        })
    }

    // compare-and-set in process: the compare and the write are one synchronous step
    const fence: CacheStore.Fence = {
      setIf: (key, expected, value, ttl) =>
        Effect.suspend(() => {
          const millis = ttlMillis(ttl)
          const error = refusal("setIf", key, value, ttl, millis)
          if (error !== undefined) return Effect.fail(error)
          const held = core.peek(key, now())
          if (!fenceHolds(held === ABSENT ? undefined : core.valueAt(held), expected)) return Effect.succeed(false)
          apply(key, value, millis)
          report()
          return Effect.succeed(true)
        }),
      swap: (key, value, ttl) =>
        Effect.suspend(() => {
          const millis = ttlMillis(ttl)
          const error = refusal("swap", key, value, ttl, millis)
          if (error !== undefined) return Effect.fail(error)
          const slot = core.peek(key, now())
          const before = slot === ABSENT ? undefined : core.valueAt(slot)
          apply(key, value, millis)
          report()
          return Effect.succeed(Option.fromNullable(before))
        })
    }

    const store: CacheStore.Service = {
      name: options.name,
      lease,
      // one synchronous step: nothing runs between the compare and the write
      versioned: {
        setIfNewer: (key, value, version, ttl) =>
          Effect.suspend(() => {
            const millis = ttlMillis(ttl)
            const error = refusal("setIfNewer", key, value, ttl, millis)
            if (error !== undefined) return Effect.fail(error)
            const held = core.peek(key, now())
            const current = held === ABSENT ? 0 : versionOf(core.valueAt(held))
            if (held !== ABSENT && current >= version) return Effect.succeed(Option.some(current))
            apply(key, value, millis)
            report()
            return Effect.succeed(Option.none())
          })
      },
      fence,
      capabilities: { live: true, scan: true, clear: true, maxValueBytes: options.maxBytes },
      get,
      directRead: { _tag: "Sync", get, read: getSync },
      getAndExpire: {
        get,
        read: (key, ttl) =>
          Effect.suspend(() => {
            const millis = ttlMillis(ttl)
            if (Number.isNaN(millis)) return Effect.fail(invalidTtl(options.name, "getAndExpire", ttl))
            const t = now()
            // a read (counted as an access), then the retiming of the entry it found
            const value = core.lookup(key, t)
            if (value === undefined) return Effect.succeed(Option.none())
            retime(core.peek(key, t), millis, t)
            return Effect.succeed(Option.some(value))
          })
      },
      getMany: (keys) =>
        Effect.sync(() => {
          const t = now()
          return keys.map((key) => {
            const value = core.lookup(key, t)
            return value === undefined ? Option.none() : Option.some(value)
          })
        }),
      set,
      setMany: (entries) =>
        Effect.suspend(() => {
          // Every entry is checked before any is written: a bad one fails the call with nothing written.
          const millis = entries.map((entry) => ttlMillis(entry.ttl))
          for (let i = 0; i < entries.length; i++) {
            const { key, ttl, value } = entries[i]!
            const error = refusal("setMany", key, value, ttl, millis[i])
            if (error !== undefined) return Effect.fail(error)
          }
          for (let i = 0; i < entries.length; i++) apply(entries[i]!.key, entries[i]!.value, millis[i])
          report()
          return Effect.void
        }),
      setIfAbsent: (key, value, ttl) =>
        Effect.suspend(() => {
          const millis = ttlMillis(ttl)
          const error = refusal("setIfAbsent", key, value, ttl, millis)
          if (error !== undefined) return Effect.fail(error)
          if (core.peek(key, now()) !== ABSENT) return Effect.succeed(false)
          apply(key, value, millis)
          report()
          return Effect.succeed(true)
        }),
      delete: (key) =>
        Effect.sync(() => {
          const existed = core.peek(key, now()) !== ABSENT
          core.delete(key)
          report()
          return existed
        }),
      deleteMany: (keys) =>
        Effect.sync(() => {
          const t = now()
          let count = 0
          for (const key of keys) {
            if (core.peek(key, t) !== ABSENT) count++
            core.delete(key)
          }
          report()
          return count
        }),
      expire: (key, ttl) =>
        Effect.suspend(() => {
          const millis = ttlMillis(ttl)
          if (Number.isNaN(millis)) return Effect.fail(invalidTtl(options.name, "expire", ttl))
          const t = now()
          const slot = core.peek(key, t)
          if (slot === ABSENT) return Effect.succeed(false)
          retime(slot, millis, t)
          return Effect.succeed(true)
        }),
      clear: Effect.sync(() => {
        core.clear()
        report()
      }),
      keys: (pattern) =>
        Effect.suspend(() => {
          const glob = Glob.compile(pattern)
          if (typeof glob === "string") return Effect.fail(Glob.refused(options.name, pattern, glob))
          const t = now()
          const out: Array<string> = []
          for (const [key, slot] of core.map) {
            if (core.expiryOf(slot) > t && Glob.matches(glob, key)) out.push(key)
          }
          return Effect.succeed(out)
        })
    }

    if (options.sweepInterval !== undefined) {
      // The sweeper sleeps until the earliest entry expires, and at least `sweepInterval` past the
      // previous sweep; while nothing expires it waits for a write. A sweep on a fixed period would
      // wake 1,440 times a day of test time, which makes `TestClock.adjust` over days crawl.
      const intervalMillis = Duration.toMillis(options.sweepInterval)
      let lastSweep = now()
      const sweeper = Effect.gen(function*() {
        while (true) {
          const due = Math.max(core.earliestExpiry, lastSweep + intervalMillis)
          const waited = yield* waitUntil(due)
          if (!waited) continue // a write expires sooner, or a long wait goes on: compute the time again
          lastSweep = now()
          const dropped = core.sweep(lastSweep)
          if (dropped > 0) report()
        }
      })
      /** Sleeps until `due` (true), or until a write makes the sweep due sooner (false). */
      const waitUntil = (due: number): Effect.Effect<boolean> => {
        const sooner = Effect.async<boolean>((resume) => {
          const waiting: Sweeper = {
            // When the interval, not an expiry, sets `due`, no write can bring the sweep forward.
            wakeAt: due > lastSweep + intervalMillis ? due : -Infinity,
            expiresSooner: () => {
              sweepWaiting = undefined
              resume(Effect.succeed(false))
            }
          }
          sweepWaiting = waiting
          return Effect.sync(() => {
            if (sweepWaiting === waiting) sweepWaiting = undefined
          })
        })
        if (due === Infinity) return sooner
        // Whole milliseconds, rounded up: a fraction (jittered TTLs have them) could round down to
        // a sleep that ends just short of `due`, and then to sleeps of zero that never suspend.
        // A timer cannot be set further than 2^31 - 1 ms ahead: longer waits are taken in steps.
        const ms = Math.max(0, Math.ceil(due - now()))
        const step = Math.min(ms, MAX_SLEEP_MILLIS)
        return Effect.raceFirst(Effect.as(Effect.sleep(Duration.millis(step)), step === ms), sooner)
      }
      yield* sweeper.pipe(Effect.forkScoped, Effect.interruptible)
    }

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        leases.clear()
        core.clear()
        report()
      })
    )
    return store
  })
