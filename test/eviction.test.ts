import { describe, expect, it } from "@effect/vitest"
import { evictionKinds, makePolicy } from "../src/internal/eviction/index.js"
import type { EvictionKind } from "../src/internal/eviction/index.js"
import { LruPolicy } from "../src/internal/eviction/lru.js"
import type { Policy } from "../src/internal/eviction/policy.js"
import { hashKey, hashString, NO_SLOT } from "../src/internal/eviction/policy.js"
import { LruShadow } from "../src/internal/eviction/shadow.js"
import { FrequencySketch } from "../src/internal/eviction/sketch.js"
import {
  QUEUE_NONE,
  QUEUE_PROBATION,
  QUEUE_PROTECTED,
  QUEUE_WINDOW,
  WTinyLfuPolicy
} from "../src/internal/eviction/wtinylfu.js"

/**
 * What the memory store does with a policy, in miniature: a map from key to slot, freed slots
 * reused, bounded by entries and optionally by bytes. Reads count hits; a miss inserts the key
 * (read-through).
 */
class Sim {
  readonly map = new Map<string, number>()
  /** Keys evicted, in order. */
  readonly evicted: Array<string> = []
  private readonly keys: Array<string | undefined> = []
  private readonly sizes: Array<number> = []
  private readonly free: Array<number> = []
  bytes = 0
  hits = 0
  requests = 0

  constructor(
    readonly policy: Policy,
    readonly capacity: number,
    readonly maxBytes = Infinity
  ) {}

  /** The slot of a key the store holds. */
  slot(key: string): number {
    const slot = this.map.get(key)
    if (slot === undefined) throw new Error(`${key} is not stored`)
    return slot
  }

  /** A read, followed on a miss by an insert of the loaded value. */
  access(key: string, size = 1): boolean {
    this.requests++
    const found = this.map.get(key)
    if (found !== undefined) {
      this.hits++
      this.policy.onHit(found)
      return true
    }
    this.policy.onMiss(hashKey(key))
    this.insert(key, size)
    return false
  }

  insert(key: string, size: number): void {
    const slot = this.free.pop() ?? this.keys.length
    this.policy.grow(slot + 1)
    this.keys[slot] = key
    this.sizes[slot] = size
    this.map.set(key, slot)
    this.bytes += size
    this.policy.onAdd(slot, hashKey(key))
    while (this.map.size > this.capacity || this.bytes > this.maxBytes) {
      const victim = this.policy.evict()
      if (victim === NO_SLOT) break
      const victimKey = this.keys[victim]
      expect(victimKey).toBeDefined()
      expect(this.map.get(victimKey!)).toBe(victim)
      this.map.delete(victimKey!)
      this.release(victim)
      this.evicted.push(victimKey!)
    }
  }

  remove(key: string): void {
    const found = this.map.get(key)
    if (found === undefined) return
    this.map.delete(key)
    this.policy.onRemove(found)
    this.release(found)
  }

  get hitRate(): number {
    return this.hits / this.requests
  }

  private release(slot: number): void {
    this.bytes -= this.sizes[slot]!
    this.keys[slot] = undefined
    this.free.push(slot)
  }
}

/** Evicts until the policy reports empty; the slots are checked by the caller. */
const drain = (policy: Policy, limit: number): Array<number> => {
  const out: Array<number> = []
  for (let victim = policy.evict(); victim !== NO_SLOT; victim = policy.evict()) {
    out.push(victim)
    // A broken list would cycle forever; fail instead of hanging.
    if (out.length > limit) throw new Error(`evict() returned more than ${limit} slots`)
  }
  return out
}

describe("FrequencySketch", () => {
  it("counts increments and never estimates below the true count", () => {
    const sketch = new FrequencySketch(1024)
    const truth = new Map<number, number>()
    for (let i = 0; i < 500; i++) {
      const hash = hashString(`key-${i}`)
      const times = i % 13
      for (let t = 0; t < times; t++) sketch.increment(hash)
      truth.set(hash, times)
    }
    let exact = 0
    for (const [hash, times] of truth) {
      const estimate = sketch.frequency(hash)
      expect(estimate).toBeGreaterThanOrEqual(times)
      if (estimate === times) exact++
    }
    // Half full, a count-min sketch of this width is rarely wrong.
    expect(exact).toBeGreaterThan(truth.size * 0.9)
  })

  it("saturates at 15", () => {
    const sketch = new FrequencySketch(1024)
    const hash = hashString("hot")
    for (let i = 0; i < 14; i++) sketch.increment(hash)
    expect(sketch.frequency(hash)).toBe(14)
    for (let i = 0; i < 100; i++) sketch.increment(hash)
    expect(sketch.frequency(hash)).toBe(15)
  })

  it("an unseen key estimates zero in an empty sketch", () => {
    const sketch = new FrequencySketch(64)
    expect(sketch.frequency(hashString("never"))).toBe(0)
  })

  it("age() halves every counter", () => {
    const sketch = new FrequencySketch(1024)
    const a = hashString("a")
    const b = hashString("b")
    const c = hashString("c")
    for (let i = 0; i < 12; i++) sketch.increment(a)
    for (let i = 0; i < 5; i++) sketch.increment(b)
    sketch.increment(c)
    sketch.age()
    expect([sketch.frequency(a), sketch.frequency(b), sketch.frequency(c)]).toEqual([6, 2, 0])
  })

  it("keeps every estimate when it grows", () => {
    const sketch = new FrequencySketch(64)
    const hashes = Array.from({ length: 200 }, (_, i) => hashString(`g-${i}`))
    hashes.forEach((hash, i) => {
      for (let t = 0; t < i % 7; t++) sketch.increment(hash)
    })
    const before = hashes.map((hash) => sketch.frequency(hash))
    const countersBefore = sketch.counters
    sketch.ensureCapacity(4096)
    expect(sketch.counters).toBeGreaterThan(countersBefore)
    expect(sketch.entries).toBe(4096)
    expect(hashes.map((hash) => sketch.frequency(hash))).toEqual(before)
  })

  it("clear() forgets everything", () => {
    const sketch = new FrequencySketch(64)
    const hash = hashString("x")
    sketch.increment(hash)
    sketch.clear()
    expect(sketch.frequency(hash)).toBe(0)
  })
})

describe("WTinyLfuPolicy", () => {
  /** Capacity 10: a window of 1, protected up to 7 of the 9 main entries. */
  const tenFull = () => {
    const policy = new WTinyLfuPolicy(10)
    const sim = new Sim(policy, 10)
    const nodes = Array.from({ length: 10 }, (_, i) => {
      sim.access(`v${i}`)
      return sim.slot(`v${i}`)
    })
    return { policy, sim, nodes }
  }

  it("sizes the window at 1 % and protected at 80 % of the rest", () => {
    const policy = new WTinyLfuPolicy(1000)
    expect(policy.limits).toEqual({ window: 10, protected: 792, maximum: 1000, samplePeriod: 10_000 })
    const tiny = new WTinyLfuPolicy(10)
    expect(tiny.limits).toEqual({ window: 1, protected: 7, maximum: 10, samplePeriod: 100 })
  })

  it("ages the sketch after ten requests per entry, then every half period", () => {
    const policy = new WTinyLfuPolicy(16)
    expect(policy.limits.samplePeriod).toBe(160)
    const hot = hashString("hot")
    for (let i = 0; i < 10; i++) policy.onMiss(hot)
    for (let i = 0; i < 149; i++) policy.onMiss(hashString(`cold-${i}`))
    const before = policy.frequency(hot)
    expect(before).toBeGreaterThanOrEqual(10)
    policy.onMiss(hashString("cold-149")) // the 160th request
    const once = policy.frequency(hot)
    // Halved (the last request may have collided with one of hot's counters first).
    expect(once).toBeLessThanOrEqual(Math.ceil((before + 1) / 2))
    expect(once).toBeGreaterThanOrEqual(5)
    for (let i = 0; i < 79; i++) policy.onMiss(hashString(`later-${i}`))
    // Collisions in this tiny sketch may raise it, but nothing halves it before half a period.
    const mid = policy.frequency(hot)
    expect(mid).toBeGreaterThanOrEqual(once)
    policy.onMiss(hashString("later-79")) // 80 more: half a period
    const twice = policy.frequency(hot)
    expect(twice).toBeLessThanOrEqual(Math.ceil((mid + 1) / 2))
    expect(twice).toBeLessThan(mid)
  })

  it("counts a read miss and the insert that follows it once", () => {
    const policy = new WTinyLfuPolicy(100)
    policy.grow(2)
    policy.onMiss(hashKey("a"))
    policy.onAdd(0, hashKey("a"))
    expect(policy.frequency(hashKey("a"))).toBe(1)
    policy.onAdd(1, hashKey("b"))
    expect(policy.frequency(hashKey("b"))).toBe(1)
    policy.onHit(1)
    expect(policy.frequencyOf(1)).toBe(2)
  })

  it("counts hits on the entry, and hands them to the sketch when the entry leaves", () => {
    // Capacity 100: a window of one entry.
    const policy = new WTinyLfuPolicy(100)
    policy.grow(2)
    policy.onAdd(0, hashKey("a"))
    for (let i = 0; i < 3; i++) policy.onHit(0)
    expect(policy.queueOf(0)).toBe(QUEUE_WINDOW)
    expect(policy.frequencyOf(0)).toBe(4)
    // Still only on the entry: the sketch has seen the insert.
    expect(policy.frequency(hashKey("a"))).toBe(1)
    policy.onAdd(1, hashKey("b"))
    expect(policy.queueOf(0)).toBe(QUEUE_PROBATION)
    expect(policy.frequencyOf(0)).toBe(4)
    policy.onHit(0)
    expect(policy.queueOf(0)).toBe(QUEUE_PROTECTED)
    expect(policy.frequencyOf(0)).toBe(5)
    policy.onRemove(0)
    expect(policy.queueOf(0)).toBe(QUEUE_NONE)
    expect(policy.frequency(hashKey("a"))).toBe(5)
  })

  it("halves the hits pending on an entry when it ages the sketch", () => {
    const policy = new WTinyLfuPolicy(16)
    policy.grow(1)
    policy.onAdd(0, hashKey("a"))
    for (let i = 0; i < 10; i++) policy.onHit(0)
    const before = policy.frequencyOf(0)
    expect(before).toBeGreaterThanOrEqual(11)
    // 160 requests make a sample: the insert, 10 hits and 149 misses.
    for (let i = 0; i < 148; i++) policy.onMiss(hashString(`cold-${i}`))
    expect(policy.frequencyOf(0)).toBeGreaterThanOrEqual(before)
    policy.onMiss(hashString("cold-148"))
    const after = policy.frequencyOf(0)
    expect(after).toBeGreaterThanOrEqual(5)
    expect(after).toBeLessThanOrEqual(Math.ceil((before + 1) / 2))
  })

  it("treats hashString and hashKey values of a key alike", () => {
    const policy = new WTinyLfuPolicy(100)
    const key = "some-key-with-a-high-hash"
    policy.grow(1)
    policy.onMiss(hashString(key))
    policy.onAdd(0, hashKey(key))
    expect(policy.frequency(hashKey(key))).toBe(1)
    expect(policy.frequency(hashString(key))).toBe(1)
    expect(hashKey(key) >>> 0).toBe(hashString(key))
  })

  it("new entries enter the window; window overflow goes to probation", () => {
    const { nodes, policy } = tenFull()
    expect(policy.queueOf(nodes[9]!)).toBe(QUEUE_WINDOW)
    for (const n of nodes.slice(0, 9)) expect(policy.queueOf(n)).toBe(QUEUE_PROBATION)
    expect(policy.sizes).toEqual({ window: 1, probation: 9, protected: 0 })
  })

  it("keeps a frequent probation victim against a one-hit wonder", () => {
    const { nodes, policy, sim } = tenFull()
    // v0 is the probation queue's least recent entry; reads before it was cached made it popular.
    for (let i = 0; i < 4; i++) policy.onMiss(hashKey("v0"))
    sim.access("x")
    // x pushed v9 (seen once) out of the window: v9 is the candidate and loses to v0.
    expect(sim.evicted).toEqual(["v9"])
    expect(policy.queueOf(nodes[0]!)).toBe(QUEUE_PROBATION)
    expect(sim.map.get("v0")).toBe(nodes[0])
    expect(policy.queueOf(sim.slot("x"))).toBe(QUEUE_WINDOW)
  })

  it("lets a frequent candidate displace a rare victim", () => {
    const { nodes, policy, sim } = tenFull()
    for (let i = 0; i < 4; i++) policy.onMiss(hashKey("v9"))
    sim.access("x")
    expect(sim.evicted).toEqual(["v0"])
    expect(policy.queueOf(nodes[9]!)).toBe(QUEUE_PROBATION)
    expect(sim.map.has("v0")).toBe(false)
    expect(policy.queueOf(sim.slot("x"))).toBe(QUEUE_WINDOW)
  })

  it("rejects a cold candidate that ties, and admits a warm one that ties only rarely", () => {
    const trials = 2000
    let coldAdmitted = 0
    let warmAdmitted = 0
    for (let seed = 1; seed <= trials; seed++) {
      for (const warmth of [1, 8]) {
        const policy = new WTinyLfuPolicy(10, seed)
        const sim = new Sim(policy, 10)
        for (let i = 0; i < 10; i++) sim.access(`v${i}`)
        const victim = hashKey("v0")
        const candidate = hashKey("v9")
        for (let i = 1; i < warmth; i++) {
          policy.onMiss(victim)
          policy.onMiss(candidate)
        }
        expect(policy.frequency(victim)).toBe(policy.frequency(candidate))
        sim.access("x")
        const admitted = sim.evicted[0] === "v0"
        if (warmth === 1) coldAdmitted += admitted ? 1 : 0
        else warmAdmitted += admitted ? 1 : 0
      }
    }
    expect(coldAdmitted).toBe(0)
    // About one in 128: enough to defeat hash flooding, rare enough not to churn.
    expect(warmAdmitted).toBeGreaterThan(trials / 128 / 4)
    expect(warmAdmitted).toBeLessThan((trials / 128) * 4)
  })

  it("promotes a probation hit to protected and demotes protected overflow to probation", () => {
    const { nodes, policy, sim } = tenFull()
    policy.onHit(nodes[3]!)
    expect(policy.queueOf(nodes[3]!)).toBe(QUEUE_PROTECTED)
    expect(policy.sizes).toEqual({ window: 1, probation: 8, protected: 1 })
    // Protected holds 7 (the eighth promotion will push its least recent entry back).
    for (const i of [0, 1, 2, 4, 5, 6]) policy.onHit(nodes[i]!)
    expect(policy.sizes).toEqual({ window: 1, probation: 2, protected: 7 })
    policy.onHit(nodes[3]!) // marks v3: it gets a second chance, so v0 is the first to go back
    policy.onHit(nodes[7]!)
    expect(policy.queueOf(nodes[7]!)).toBe(QUEUE_PROTECTED)
    // A hit moves one entry: protected runs one over until the next insert or eviction.
    expect(policy.sizes).toEqual({ window: 1, probation: 1, protected: 8 })
    sim.access("x")
    expect(policy.queueOf(nodes[0]!)).toBe(QUEUE_PROBATION)
    expect(policy.queueOf(nodes[3]!)).toBe(QUEUE_PROTECTED)
    expect(sim.evicted).toEqual(["v9"])
    expect(policy.sizes).toEqual({ window: 1, probation: 2, protected: 7 })
  })

  it("a protected hit only marks the entry: the least recent unmarked one is demoted, marks are spent once", () => {
    const { nodes, policy, sim } = tenFull()
    // Protected, least recent first: v0 … v6 (full at 7).
    for (const i of [0, 1, 2, 3, 4, 5, 6]) policy.onHit(nodes[i]!)
    for (const i of [0, 1, 2]) policy.onHit(nodes[i]!)
    policy.onHit(nodes[7]!) // the eighth promotion: protected runs one over
    sim.access("x")
    // v0, v1 and v2 were hit since they last moved: each gets a second chance, and v3 goes back.
    expect([0, 1, 2, 3].map((i) => policy.queueOf(nodes[i]!))).toEqual([
      QUEUE_PROTECTED,
      QUEUE_PROTECTED,
      QUEUE_PROTECTED,
      QUEUE_PROBATION
    ])
    expect(policy.sizes.protected).toBe(7)
    // Their marks are spent: the next overflow demotes by recency again (v4, then v5), not v0.
    policy.onHit(nodes[3]!)
    sim.access("y")
    expect(policy.queueOf(nodes[4]!)).toBe(QUEUE_PROBATION)
    expect(policy.queueOf(nodes[0]!)).toBe(QUEUE_PROTECTED)
    expect(policy.sizes.protected).toBe(7)
  })

  it("a hit in the window keeps the entry in the window", () => {
    const { nodes, policy } = tenFull()
    policy.onHit(nodes[9]!)
    expect(policy.queueOf(nodes[9]!)).toBe(QUEUE_WINDOW)
    expect(policy.sizes.window).toBe(1)
  })

  it("onRemove keeps every queue consistent", () => {
    const { nodes, policy, sim } = tenFull()
    policy.onHit(nodes[2]!)
    policy.onHit(nodes[4]!)
    // One node in each queue goes: protected (v2), probation (v5), window (v9).
    sim.remove("v2")
    sim.remove("v5")
    sim.remove("v9")
    for (const i of [2, 5, 9]) expect(policy.queueOf(nodes[i]!)).toBe(QUEUE_NONE)
    expect(policy.sizes).toEqual({ window: 0, probation: 6, protected: 1 })
    // Removing twice is harmless.
    policy.onRemove(nodes[5]!)
    expect(policy.sizes).toEqual({ window: 0, probation: 6, protected: 1 })
    const rest = drain(policy, 20)
    expect(new Set(rest)).toEqual(new Set(nodes.filter((_, i) => ![2, 5, 9].includes(i))))
    expect(rest).toHaveLength(7)
  })

  it("clear() empties every queue and unlinks the nodes", () => {
    const { nodes, policy } = tenFull()
    policy.onHit(nodes[1]!)
    policy.clear()
    expect(policy.sizes).toEqual({ window: 0, probation: 0, protected: 0 })
    expect(policy.evict()).toBe(NO_SLOT)
    for (const n of nodes) expect(policy.queueOf(n)).toBe(QUEUE_NONE)
    expect(policy.frequency(hashKey("v1"))).toBe(0)
    // Usable again afterwards.
    policy.onAdd(4, hashKey("again"))
    expect(policy.queueOf(4)).toBe(QUEUE_WINDOW)
    expect(policy.evict()).toBe(4)
    expect(policy.evict()).toBe(NO_SLOT)
  })

  it("works when only bytes are bounded (capacity Infinity)", () => {
    const policy = new WTinyLfuPolicy(Infinity)
    // Each entry is 10 bytes and 1,000 bytes fit: the policy must learn that 100 entries fit.
    const sim = new Sim(policy, Infinity, 1000)
    for (let round = 0; round < 30; round++) {
      for (let i = 0; i < 150; i++) sim.access(`k${i}`, 10)
      expect(sim.bytes).toBeLessThanOrEqual(1000)
    }
    expect(policy.limits.maximum).toBe(100)
    expect(policy.limits.window).toBeGreaterThanOrEqual(1)
    const sizes = policy.sizes
    expect(sizes.window + sizes.probation + sizes.protected).toBe(sim.map.size)
    // A loop of 1.5× what fits: plain LRU would get nothing.
    expect(sim.hitRate).toBeGreaterThan(0.3)
  })

  it("copes with a capacity of one", () => {
    const policy = new WTinyLfuPolicy(1)
    const sim = new Sim(policy, 1)
    for (let i = 0; i < 20; i++) sim.access(`k${i % 3}`)
    expect(sim.map.size).toBe(1)
    expect(sim.evicted).toHaveLength(19)
  })
})

describe.each(evictionKinds)("%s policy contract", (kind: EvictionKind) => {
  it("evict() returns every node once, then nothing", () => {
    const policy = makePolicy(kind, 100)
    const sim = new Sim(policy, 100)
    for (let i = 0; i < 60; i++) sim.access(`k${i}`)
    for (let i = 0; i < 200; i++) sim.access(`k${(i * 7) % 60}`)
    const drained = drain(policy, 200)
    expect(drained).toHaveLength(60)
    expect(new Set(drained).size).toBe(60)
    expect(new Set(drained)).toEqual(new Set(sim.map.values()))
    expect(policy.evict()).toBe(NO_SLOT)
  })

  it("keeps the store at its capacity and evicts only stored nodes", () => {
    const policy = makePolicy(kind, 50)
    const sim = new Sim(policy, 50)
    let state = 12345
    for (let i = 0; i < 5000; i++) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0
      sim.access(`k${state % 200}`)
      if (i % 97 === 0) sim.remove(`k${(state >>> 8) % 200}`)
      expect(sim.map.size).toBeLessThanOrEqual(50)
    }
    const drained = drain(policy, 100)
    expect(new Set(drained)).toEqual(new Set(sim.map.values()))
  })

  it("makePolicy builds the policy it is asked for", () => {
    const policy = makePolicy(kind, 10)
    expect(policy.name).toBe(kind)
    expect(policy instanceof (kind === "lru" ? LruPolicy : WTinyLfuPolicy)).toBe(true)
  })
})

describe("hit rate", () => {
  const loop = (policy: Policy, capacity: number): number => {
    const sim = new Sim(policy, capacity)
    const keys = Math.round(capacity * 1.5)
    for (let pass = 0; pass < 60; pass++) {
      for (let i = 0; i < keys; i++) sim.access(`loop-${i}`)
    }
    return sim.hitRate
  }

  it("on a loop over 1.5× the capacity, LRU gets nothing and W-TinyLFU a large share", () => {
    const lru = loop(new LruPolicy(), 200)
    const tiny = loop(new WTinyLfuPolicy(200), 200)
    expect(lru).toBe(0)
    // The optimum is about two thirds; W-TinyLFU keeps most of the main area across passes.
    expect(tiny).toBeGreaterThan(0.4)
  })

  it("on skewed traffic with one-off scans, W-TinyLFU beats LRU clearly", () => {
    const run = (policy: Policy) => {
      const sim = new Sim(policy, 100)
      let state = 99
      let scan = 0
      for (let block = 0; block < 40; block++) {
        for (let i = 0; i < 1000; i++) {
          state = (Math.imul(state, 1664525) + 1013904223) >>> 0
          // A steep skew: squaring a uniform draw favours small key numbers.
          const u = state / 4294967296
          sim.access(`hot-${Math.floor(u * u * 1000)}`)
        }
        for (let i = 0; i < 300; i++) sim.access(`scan-${scan++}`)
      }
      return sim.hitRate
    }
    const lru = run(new LruPolicy())
    const tiny = run(new WTinyLfuPolicy(100))
    expect(tiny).toBeGreaterThan(lru + 0.05)
  })
})

describe("WTinyLfuPolicy window climber", () => {
  /** xorshift32 from a fixed seed: every run replays the same requests. */
  const generator = (seed: number) => {
    let x = seed >>> 0 || 1
    return () => {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      x >>>= 0
      return x / 4294967296
    }
  }

  const CAPACITY = 200

  /** Recency phase: a new key a quarter of the time, else the key of d requests ago (d log-uniform in 1..300). */
  const recencyPhase = (sim: Sim, requests: number, seed: number) => {
    const random = generator(seed)
    const history: Array<string> = []
    for (let i = 0; i < requests; i++) {
      const key = history.length === 0 || random() < 0.25
        ? `r${seed}-${i}`
        : history[history.length - Math.min(history.length, Math.floor(Math.exp(random() * Math.log(300))))]!
      history.push(key)
      sim.access(key)
    }
  }

  it("keeps every stored key in exactly one queue while the window moves, entries leave and protected hits are marked", () => {
    const policy = new WTinyLfuPolicy(CAPACITY)
    const sim = new Sim(policy, CAPACITY)
    const windows = new Set<number>()
    const check = () => {
      const { probation, protected: prot, window } = policy.sizes
      expect(window + probation + prot).toBe(sim.map.size)
      for (const slot of sim.map.values()) expect(policy.queueOf(slot)).not.toBe(QUEUE_NONE)
      windows.add(policy.limits.window)
    }
    const random = generator(11)
    for (let phase = 0; phase < 8; phase++) {
      if (phase % 2 === 0) recencyPhase(sim, 8_000, phase + 1)
      else frequencyPhase(sim, 8_000, phase + 1)
      // some entries leave on their own (invalidations), wherever they are
      for (const key of [...sim.map.keys()]) if (random() < 0.1) sim.remove(key)
      check()
    }
    // the climber moved the window back and forth, so resizes ran over marked entries
    expect(windows.size).toBeGreaterThan(3)
    const stored = new Set(sim.map.values())
    const drained = drain(policy, CAPACITY + 1)
    expect(new Set(drained)).toEqual(stored)
    expect(drained.length).toBe(stored.size)
  })

  it("grows the window on a recency phase", () => {
    const policy = new WTinyLfuPolicy(CAPACITY)
    const sim = new Sim(policy, CAPACITY)
    expect(policy.limits.window).toBe(2)
    recencyPhase(sim, 40_000, 1)
    expect(policy.limits.window).toBeGreaterThan(CAPACITY * 0.4)
  })

  /** Frequency phase: keys drawn log-uniformly from 20,000 (Zipf-like, s ≈ 1): popularity, not recency, pays. */
  const frequencyPhase = (sim: Sim, requests: number, seed: number) => {
    const random = generator(seed)
    for (let i = 0; i < requests; i++) sim.access(`f${Math.floor(Math.exp(random() * Math.log(20_000)))}`)
  }

  it("shrinks the window again on a frequency phase that follows a recency phase", () => {
    const policy = new WTinyLfuPolicy(CAPACITY)
    const sim = new Sim(policy, CAPACITY)
    recencyPhase(sim, 40_000, 1)
    const afterRecency = policy.limits.window
    expect(afterRecency).toBeGreaterThan(CAPACITY * 0.4)
    frequencyPhase(sim, 40_000, 3)
    const afterFrequency = policy.limits.window
    expect(afterFrequency).toBeLessThan(CAPACITY * 0.25)
    expect(afterFrequency).toBeLessThan(afterRecency / 2)
    // And it grows again when recency returns.
    recencyPhase(sim, 40_000, 5)
    expect(policy.limits.window).toBeGreaterThan(CAPACITY * 0.4)
  })

  it("settles on a stationary workload: late moves stay small", () => {
    const policy = new WTinyLfuPolicy(CAPACITY)
    const sim = new Sim(policy, CAPACITY)
    const random = generator(3)
    // A steep skew over 2,000 keys, the same distribution throughout.
    const draw = () => `z${Math.floor(Math.pow(random(), 3) * 2000)}`
    for (let i = 0; i < 100_000; i++) sim.access(draw())
    const windows: Array<number> = []
    for (let sample = 0; sample < 40; sample++) {
      for (let i = 0; i < CAPACITY * 10; i++) sim.access(draw())
      windows.push(policy.limits.window)
    }
    const spread = Math.max(...windows) - Math.min(...windows)
    // Over 40 long samples the window wanders by less than a tenth of the cache.
    expect(spread).toBeLessThanOrEqual(CAPACITY * 0.1)
  })
})

describe("WTinyLfuPolicy window climber, settling", () => {
  const CAPACITY = 200

  it("stays at the top on pure recency instead of exploring back down", () => {
    const policy = new WTinyLfuPolicy(CAPACITY)
    const sim = new Sim(policy, CAPACITY)
    // Each key is requested three times within ~150 requests, then never again: frequency says
    // nothing, and an LRU of the whole cache is the best policy.
    let state = 41
    const next = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296
    const due = new Map<number, Array<number>>()
    const run = (from: number, to: number, each: () => void) => {
      for (let t = from; t < to; t++) {
        sim.access(`n${t}`)
        for (const delay of [10 + Math.floor(next() * 120), 20 + Math.floor(next() * 130)]) {
          const list = due.get(t + delay)
          if (list === undefined) due.set(t + delay, [t])
          else list.push(t)
        }
        for (const key of due.get(t) ?? []) sim.access(`n${key}`)
        due.delete(t)
        each()
      }
    }
    run(0, 30_000, () => {})
    expect(policy.limits.window).toBeGreaterThan(CAPACITY * 0.9)
    let lowest = policy.limits.window
    run(30_000, 90_000, () => {
      lowest = Math.min(lowest, policy.limits.window)
    })
    expect(lowest).toBeGreaterThan(CAPACITY * 0.9)
  })

  it("does not move the window while every request hits", () => {
    const policy = new WTinyLfuPolicy(CAPACITY)
    const sim = new Sim(policy, CAPACITY)
    // One key more than fits, once, so the cache has been full; then only stored keys are read.
    for (let i = 0; i <= CAPACITY; i++) sim.access(`s${i}`)
    const stored = [...sim.map.keys()]
    const window = policy.limits.window
    let state = 5
    for (let i = 0; i < 200_000; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0
      const u = state / 4294967296
      expect(sim.access(stored[Math.floor(u * u * stored.length)]!)).toBe(true)
    }
    expect(policy.limits.window).toBe(window)
  })

  it("comes to rest on a stationary workload: the window stops moving", () => {
    const policy = new WTinyLfuPolicy(CAPACITY)
    const sim = new Sim(policy, CAPACITY)
    let state = 9
    const draw = () => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0
      return `z${Math.floor(Math.pow(state / 4294967296, 3) * 2000)}`
    }
    for (let i = 0; i < 200_000; i++) sim.access(draw())
    const windows = new Set<number>()
    for (let sample = 0; sample < 30; sample++) {
      for (let i = 0; i < CAPACITY * 10; i++) sim.access(draw())
      windows.add(policy.limits.window)
    }
    expect(windows.size).toBe(1)
  })
})

describe("LruShadow", () => {
  it("replays sampled requests exactly like an LRU of its size, across evictions and resizes", () => {
    const shadow = new LruShadow()
    // 128 × 4 entries: one key in four is sampled, into a shadow of 128 keys.
    shadow.configure(512)
    const reference = new Map<number, true>()
    let capacity = 128
    let state = 7
    let expectedHits = 0
    let requests = 0
    for (let i = 0; i < 60_000; i++) {
      if (i === 30_000) {
        // A cache of 255: every key is sampled, and the shadow grows to 255 keys, keeping its own.
        shadow.configure(255)
        capacity = 255
      }
      if (i === 45_000) {
        // A smaller one again: the shadow keeps its most recent keys, as the reference does.
        shadow.configure(200)
        capacity = 200
        while (reference.size > capacity) reference.delete(reference.keys().next().value!)
      }
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0
      // 600 distinct hashes whose sample bits are clear, some of them colliding in the index.
      const hash = ((state >>> 8) % 600) * 0x1003 & 0xfffff
      requests++
      if (reference.delete(hash)) expectedHits++
      else if (reference.size >= capacity) reference.delete(reference.keys().next().value!)
      reference.set(hash, true)
      shadow.access(hash, false)
    }
    expect(shadow.requests).toBe(requests)
    expect(shadow.lruHits).toBe(expectedHits)
    expect(expectedHits).toBeGreaterThan(requests * 0.2)
  })
})
