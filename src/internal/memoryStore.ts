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
import type { Node, Policy } from "./eviction/policy.js"
import { hashKey } from "./eviction/policy.js"
import * as Glob from "./glob.js"
import { approximateSize, fenceHolds, invalidTtl, leaseMillis, ttlMillis } from "./store.js"

/** @internal */
export interface MemNode extends Node {
  value: CacheStore.Value
  /** Absolute expiry in Clock milliseconds; Infinity for none. */
  expiresAt: number
}

/** @internal */
export interface CoreOptions {
  readonly capacity: number
  readonly maxBytes: number
  readonly eviction: EvictionKind
  readonly onEvict?: ((count: number) => void) | undefined
}

/**
 * The synchronous heart of the memory store: a Map of intrusive nodes, an eviction policy and
 * size accounting. Time is passed in, so the store can read it from Effect's Clock.
 * @internal
 */
export class MemoryCore {
  readonly map = new Map<string, MemNode>()
  readonly policy: Policy
  bytes = 0
  /**
   * No entry expires before this (Infinity: none expires). A lower bound, kept exact by `sweep`:
   * writes only ever lower it, so an entry removed or rewritten since may have expired later.
   */
  earliestExpiry = Infinity

  constructor(readonly options: CoreOptions) {
    this.policy = makePolicy(options.eviction, options.capacity)
  }

  get size(): number {
    return this.map.size
  }

  /** The live node for a key, or undefined (expired nodes are dropped on the way). */
  lookup(key: string, now: number): MemNode | undefined {
    const node = this.map.get(key)
    if (node === undefined) {
      this.policy.onMiss(hashKey(key))
      return undefined
    }
    if (node.expiresAt <= now) {
      this.remove(node)
      this.policy.onMiss(node.hash)
      return undefined
    }
    this.policy.onHit(node)
    return node
  }

  /** Whether a live node exists, without counting it as an access. */
  peek(key: string, now: number): MemNode | undefined {
    const node = this.map.get(key)
    if (node === undefined) return undefined
    if (node.expiresAt <= now) {
      this.remove(node)
      return undefined
    }
    return node
  }

  /** Writes a value; the caller has checked its size against maxBytes. */
  write(key: string, value: CacheStore.Value, size: number, expiresAt: number): void {
    if (expiresAt < this.earliestExpiry) this.earliestExpiry = expiresAt
    const existing = this.map.get(key)
    if (existing !== undefined) {
      this.bytes += size - existing.size
      existing.value = value
      existing.size = size
      existing.expiresAt = expiresAt
      this.policy.onHit(existing)
    } else {
      const node: MemNode = {
        key,
        hash: hashKey(key),
        size,
        prev: undefined,
        next: undefined,
        queue: 0,
        value,
        expiresAt
      }
      this.map.set(key, node)
      this.bytes += size
      this.policy.onAdd(node)
    }
    this.evictOverflow()
  }

  remove(node: MemNode): void {
    if (this.map.get(node.key) !== node) return
    this.map.delete(node.key)
    this.bytes -= node.size
    this.policy.onRemove(node)
  }

  delete(key: string): boolean {
    const node = this.map.get(key)
    if (node === undefined) return false
    this.remove(node)
    return true
  }

  /** Gives a live node a new expiry. */
  retime(node: MemNode, expiresAt: number): void {
    if (expiresAt < this.earliestExpiry) this.earliestExpiry = expiresAt
    node.expiresAt = expiresAt
  }

  clear(): void {
    this.map.clear()
    this.policy.clear()
    this.bytes = 0
    this.earliestExpiry = Infinity
  }

  /** Drops expired nodes; returns how many. Leaves `earliestExpiry` exact. */
  sweep(now: number): number {
    let dropped = 0
    let earliest = Infinity
    for (const node of this.map.values()) {
      if (node.expiresAt <= now) {
        this.remove(node)
        dropped++
      } else if (node.expiresAt < earliest) {
        earliest = node.expiresAt
      }
    }
    this.earliestExpiry = earliest
    return dropped
  }

  private evictOverflow(): void {
    const { capacity, maxBytes } = this.options
    let evicted = 0
    while (this.map.size > capacity || this.bytes > maxBytes) {
      const victim = this.policy.evict() as MemNode | undefined
      if (victim === undefined) break
      this.map.delete(victim.key)
      this.bytes -= victim.size
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

    const getSync = (key: string): CacheStore.Value | undefined => core.lookup(key, now())?.value

    const get = (key: string) =>
      Effect.sync(() => {
        const node = core.lookup(key, now())
        return node === undefined ? Option.none() : Option.some(node.value)
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
          if (!fenceHolds(core.peek(key, now())?.value, expected)) return Effect.succeed(false)
          apply(key, value, millis)
          report()
          return Effect.succeed(true)
        }),
      swap: (key, value, ttl) =>
        Effect.suspend(() => {
          const millis = ttlMillis(ttl)
          const error = refusal("swap", key, value, ttl, millis)
          if (error !== undefined) return Effect.fail(error)
          const before = core.peek(key, now())?.value
          apply(key, value, millis)
          report()
          return Effect.succeed(Option.fromNullable(before))
        })
    }

    const store: CacheStore.Service = {
      name: options.name,
      lease,
      fence,
      capabilities: { live: true, scan: true, clear: true, maxValueBytes: options.maxBytes },
      get,
      directRead: { _tag: "Sync", get, read: getSync },
      getMany: (keys) =>
        Effect.sync(() => {
          const t = now()
          return keys.map((key) => {
            const node = core.lookup(key, t)
            return node === undefined ? Option.none() : Option.some(node.value)
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
          if (core.peek(key, now()) !== undefined) return Effect.succeed(false)
          apply(key, value, millis)
          report()
          return Effect.succeed(true)
        }),
      delete: (key) =>
        Effect.sync(() => {
          const existed = core.peek(key, now()) !== undefined
          core.delete(key)
          report()
          return existed
        }),
      deleteMany: (keys) =>
        Effect.sync(() => {
          const t = now()
          let count = 0
          for (const key of keys) {
            if (core.peek(key, t) !== undefined) count++
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
          const node = core.peek(key, t)
          if (node === undefined) return Effect.succeed(false)
          const expiresAt = millis === undefined ? Infinity : t + millis
          if (expiresAt <= t) core.remove(node)
          else {
            core.retime(node, expiresAt)
            expiresSoonerMaybe(expiresAt)
          }
          report()
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
          for (const node of core.map.values()) {
            if (node.expiresAt > t && Glob.matches(glob, node.key)) out.push(node.key)
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
