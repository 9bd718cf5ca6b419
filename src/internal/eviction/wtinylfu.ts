import type { Node, Policy } from "./policy.js"
import { LruShadow } from "./shadow.js"
import { FrequencySketch } from "./sketch.js"

/**
 * Window TinyLFU (Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache Admission
 * Policy", ACM Transactions on Storage, 2017), with the adaptive window popularised by Caffeine.
 *
 * New entries enter a small LRU window. An entry pushed out of the window becomes a candidate for
 * the main area, a segmented LRU (probation + protected). When the cache is full, the candidate
 * competes with the probation queue's least recent entry: the one the frequency sketch has seen
 * less often is evicted. A hit in probation promotes to protected; protected overflow falls back
 * to probation. A hill climber resizes the window: recency-biased workloads want a large window,
 * frequency-biased and looping ones a small one.
 */

/**
 * Queue tags stored in `Node.queue`: none (not linked), window, probation, protected.
 * @internal
 */
export const QUEUE_NONE = 0
/** @internal */
export const QUEUE_WINDOW = 1
/** @internal */
export const QUEUE_PROBATION = 2
/** @internal */
export const QUEUE_PROTECTED = 3

/** The window starts at 1 % of the capacity, the paper's and Caffeine's default. */
const INITIAL_WINDOW_SHARE = 0.01
/** Protected's share of the main area (window excluded), as in segmented LRU; probation has the rest. */
const PROTECTED_SHARE = 0.8
/**
 * The window may grow to the whole cache but one entry: on purely recency-driven traffic the best
 * W-TinyLFU can do is to become an LRU. (Caffeine stops near 80 %; a window fixed at 99 % still
 * measured up to 0.56 points below LRU on the recency workloads of docs/eviction.md, one at all but
 * one entry within 0.06.)
 */
const MAX_WINDOW_SHARE = 1
/** The sketch starts this small and grows with the entry count, so a large empty cache costs little. */
const INITIAL_SKETCH_ENTRIES = 1024
/** Requests per entry of capacity between two agings of the sketch (the paper's W = 10 × C). */
const SAMPLE_FACTOR = 10
/**
 * A candidate at least this warm that ties or loses is still admitted one time in 128: otherwise
 * an attacker who can aim hash collisions could keep a victim pinned by inflating its counters.
 */
const WARM_CANDIDATE = 6
const RANDOM_ADMIT_MASK = 127
/**
 * The climber's short sample: a shadow comparison every `maximum` requests (at least 1,000).
 */
const SHADOW_SAMPLE_FACTOR = 1
const MIN_SAMPLE = 1000
/** The hill climber judges its steps over this many requests per entry: short samples are noisy. */
const CLIMB_SAMPLE_FACTOR = 10
/** Long samples ignored after the cache first fills, while its contents still reflect the fill order. */
const CLIMB_WARMUP_SAMPLES = 2
/** First (and restart) step of the window size, as a share of the capacity. */
const CLIMB_STEP = 0.0625
/** Step bounds: the climber never stops exploring entirely, and never jumps by more than a quarter. */
const CLIMB_MIN_STEP = 0.01
const CLIMB_MAX_STEP = 0.25
/** A step that paid off grows the next one; one that cost hits is reversed and halved, so the window settles. */
const CLIMB_GROW = 1.25
const CLIMB_SHRINK = 0.5
/** A hit-rate change this large means the workload changed: the step is at least a full one again. */
const CLIMB_RESTART = 0.05
/**
 * A long sample's hit rate moving by less than this (0.2 points) is no evidence either way: the
 * climber keeps its direction and its step, where before any non-negative change grew the step,
 * so on a flat or drifting workload the window no longer wandered off in ever larger strides.
 */
const CLIMB_NOISE = 0.002
/** The shadow LRU must lead by more than this share of the sampled requests to move the window. */
const SHADOW_MARGIN = 0.01
/** A shadow-driven step grows the window by 3 × the lead (at least one step, at most half the cache). */
const SHADOW_GAIN = 3
const SHADOW_MAX_JUMP = 0.5
/**
 * A shadow-driven step after which the hit rate fell by this much was a misjudgement (hash
 * sampling can misread a loop just over the capacity): the shadow is ignored for a while, 8 short
 * samples the first time and four times longer each time after.
 */
const SHADOW_MISJUDGED = 0.02
const SHADOW_FIRST_MUTE = 8
const SHADOW_MUTE_GROWTH = 4
/** Fewer sampled requests than this in a short sample say nothing. */
const MIN_SHADOW_REQUESTS = 32
/**
 * The shadow costs a little on every sampled hit, so it rests while it has nothing to say: after
 * this many short samples in a row without a shadow-driven step it stops sampling for 8 short
 * samples, then twice as long each time it still had nothing to say, up to 64.
 */
const SHADOW_CALM_SAMPLES = 4
const SHADOW_FIRST_QUIET = 8
const SHADOW_MAX_QUIET = 64
/**
 * A resting shadow wakes early when a short sample's hit rate moved this much from the one it went
 * quiet on (the workload changed). Its first sample after waking only refreshes its contents.
 */
const SHADOW_WAKE_CHANGE = 0.05

const sentinel = (): Node => {
  const s: Node = { key: "", hash: 0, size: 0, prev: undefined, next: undefined, queue: QUEUE_NONE }
  s.prev = s
  s.next = s
  return s
}

/** Appends at the most recent end (the sentinel's `prev`). */
const append = (list: Node, node: Node): void => {
  const last = list.prev!
  node.prev = last
  node.next = list
  last.next = node
  list.prev = node
}

/** Unlinks without clearing the node's links: it is about to be appended elsewhere. */
const detach = (node: Node): void => {
  node.prev!.next = node.next
  node.next!.prev = node.prev
}

/**
 * W-TinyLFU eviction: near-optimal hit rates on frequency-biased, looping and scanning workloads
 * where LRU collapses. O(1) per operation (amortised: aging and window resizing are spread over
 * many requests) and no allocation on hits.
 *
 * Rejecting a new entry at admission is expressed through the ordinary contract: `evict()` then
 * returns the candidate rather than the probation victim.
 * @internal
 */
export class WTinyLfuPolicy implements Policy {
  readonly name = "w-tinylfu" as const
  private readonly capacity: number
  /** The entry count the cache holds when full: `capacity`, or lower when a byte bound bites first. */
  private maximum: number
  private windowShare = INITIAL_WINDOW_SHARE
  private windowMax = 1
  private protectedMax = 0
  private sketchCeiling = 0

  private readonly window = sentinel()
  private readonly probation = sentinel()
  private readonly protected = sentinel()
  private windowCount = 0
  private probationCount = 0
  private protectedCount = 0
  private count = 0

  private readonly sketch: FrequencySketch
  private readonly shadow = new LruShadow()
  /**
   * The shadow's sample mask, kept here so a hit tests it with one field read; all ones (nothing
   * but the hash 0 is sampled) until the cache is first full and while the shadow rests.
   */
  private shadowMask = -1
  /** Short samples in a row without a shadow-driven step. */
  private calm = 0
  /** Short samples left before a resting shadow samples again, and the next rest's length. */
  private quietLeft = 0
  private quietLength = SHADOW_FIRST_QUIET
  /** The hit rate of the short sample on which the shadow went to rest. */
  private quietHitRate = 0
  /** The shadow just woke: its contents are stale, so its next short sample is not judged. */
  private shadowWarming = false
  /** The last entry moved from the window into probation: the one that has to earn its place. */
  private candidate: Node | undefined = undefined
  /** A read miss already counted this hash; the insert that usually follows must not count it twice. */
  private pendingHash = 0
  private hasPending = false

  /** Sketch increments between agings, and how many are left before the next one. */
  private samplePeriod = 0
  private agingLeft = 0
  /** Increments left before the next event (an aging or the end of a climber sample). */
  private sampleLeft = 0
  /** What `sampleLeft` counted down from, so finished spans can be added up without a hit counter. */
  private sampleSpan = 0

  /**
   * The climber's short sample: increments in finished spans, and among them read misses and
   * inserts that no miss announced. Hits are what remains, so a hit only decrements `sampleLeft`.
   */
  private increments = 0
  private misses = 0
  private unannounced = 0
  /** Requests in a short sample. */
  private climbPeriod = Infinity
  private full = false
  private warm = false
  private previousHitRate = 0
  private step = CLIMB_STEP
  private direction = 1
  private warmups = 0
  /** The last short sample moved the window on the shadow's word. */
  private shadowStepped = false
  /** Short samples left during which the shadow is ignored. */
  private muted = 0
  private muteLength = SHADOW_FIRST_MUTE
  /** The hill climber's long sample, added up from short ones. */
  private longHits = 0
  private longRequests = 0

  private random: number

  /**
   * @param capacity the most entries the store keeps (`Infinity` when only bytes are bounded; the
   *   policy then learns the entry count the first time it is asked to evict).
   * @param seed seeds the generator behind the rare random admissions, so runs are reproducible.
   */
  constructor(capacity: number, seed = 0x9e3779b9) {
    this.capacity = capacity >= 1 ? Math.floor(capacity) : 1
    this.maximum = this.capacity
    this.sketch = new FrequencySketch(Math.min(this.capacity, INITIAL_SKETCH_ENTRIES))
    // Scrambled so that neighbouring seeds start far apart; xorshift must not start at zero.
    const mixed = Math.imul(seed ^ (seed >>> 16), 0x7feb352d)
    this.random = (mixed ^ (mixed >>> 15)) >>> 0 || 1
    this.resize()
  }

  onHit(node: Node): void {
    this.sketch.increment(node.hash)
    // Protected and window hits (nearly all hits in a warm cache: protected when the window is
    // small, the window when recency made it large) only refresh the node within its queue.
    const queue = node.queue
    if (queue === QUEUE_PROTECTED || queue === QUEUE_WINDOW) {
      const list = queue === QUEUE_PROTECTED ? this.protected : this.window
      if (list.prev !== node) {
        detach(node)
        append(list, node)
      }
    } else if (queue === QUEUE_PROBATION) {
      this.promote(node)
    }
    if ((node.hash & this.shadowMask) === 0) this.shadow.access(node.hash, true)
    if (--this.sampleLeft === 0) this.endSample()
  }

  onMiss(hash: number): void {
    this.sketch.increment(hash)
    if ((hash & this.shadowMask) === 0) this.shadow.access(hash, false)
    // Compared as signed 32-bit integers, so a caller may pass `hashString` or `hashKey` values.
    this.pendingHash = hash | 0
    this.hasPending = true
    this.misses++
    if (--this.sampleLeft === 0) this.endSample()
  }

  onAdd(node: Node): void {
    if (!this.hasPending || this.pendingHash !== (node.hash | 0)) {
      this.sketch.increment(node.hash)
      this.unannounced++
      if (--this.sampleLeft === 0) this.endSample()
    }
    this.hasPending = false
    append(this.window, node)
    node.queue = QUEUE_WINDOW
    this.windowCount++
    if (++this.count > this.sketch.entries && this.sketch.entries < this.sketchCeiling) this.growSketch()
    if (this.windowCount > this.windowMax) this.candidate = this.windowToProbation()
  }

  onRemove(node: Node): void {
    // Unlinked nodes (already evicted, never added) are ignored, so a double removal is harmless.
    if (node.prev === undefined || node.queue === QUEUE_NONE) return
    this.unlink(node)
  }

  evict(): Node | undefined {
    // Being asked to evict means the cache is full: the entry count it holds is what fits.
    const fits = Math.min(this.capacity, this.count - 1)
    if (fits >= 1 && fits !== this.maximum) {
      this.maximum = fits
      this.resize()
    }
    if (!this.full) {
      this.full = true
      this.armShadow()
    }
    let victim: Node | undefined
    if (this.probationCount > 0) {
      victim = this.probation.next!
      const candidate = this.candidate
      if (candidate !== undefined && candidate !== victim && candidate.queue === QUEUE_PROBATION) {
        if (!this.admit(candidate.hash, victim.hash)) {
          victim = candidate
          this.candidate = undefined
        }
      } else if (candidate === victim) {
        this.candidate = undefined
      }
    } else if (this.protectedCount > 0) {
      victim = this.protected.next!
    } else if (this.windowCount > 0) {
      victim = this.window.next!
    } else {
      return undefined
    }
    this.unlink(victim)
    return victim
  }

  clear(): void {
    for (const list of [this.window, this.probation, this.protected]) {
      let node = list.next!
      while (node !== list) {
        const next = node.next!
        node.prev = undefined
        node.next = undefined
        node.queue = QUEUE_NONE
        node = next
      }
      list.prev = list
      list.next = list
    }
    this.windowCount = 0
    this.probationCount = 0
    this.protectedCount = 0
    this.count = 0
    this.candidate = undefined
    this.hasPending = false
    this.sketch.clear()
    this.shadow.clear()
    this.maximum = this.capacity
    this.windowShare = INITIAL_WINDOW_SHARE
    this.increments = 0
    this.misses = 0
    this.unannounced = 0
    this.full = false
    this.warm = false
    this.previousHitRate = 0
    this.step = CLIMB_STEP
    this.direction = 1
    this.warmups = 0
    this.shadowStepped = false
    this.muted = 0
    this.muteLength = SHADOW_FIRST_MUTE
    this.calm = 0
    this.quietLeft = 0
    this.quietLength = SHADOW_FIRST_QUIET
    this.shadowWarming = false
    this.longHits = 0
    this.longRequests = 0
    this.resize()
    this.agingLeft = this.samplePeriod
    this.sampleLeft = 1
    this.sampleSpan = 1
    this.rearm()
  }

  /** Entries per queue, for tests and diagnostics. */
  get sizes(): { readonly window: number; readonly probation: number; readonly protected: number } {
    return { window: this.windowCount, probation: this.probationCount, protected: this.protectedCount }
  }

  /** Current queue limits in entries, for tests and diagnostics. */
  get limits(): {
    readonly window: number
    readonly protected: number
    readonly maximum: number
    readonly samplePeriod: number
  } {
    return {
      window: this.windowMax,
      protected: this.protectedMax,
      maximum: this.maximum,
      samplePeriod: this.samplePeriod
    }
  }

  /** The sketch's estimate for a key hash, for tests and diagnostics. */
  frequency(hash: number): number {
    return this.sketch.frequency(hash)
  }

  /** A hit in probation: a second look earns protection. */
  private promote(node: Node): void {
    detach(node)
    this.probationCount--
    append(this.protected, node)
    node.queue = QUEUE_PROTECTED
    this.protectedCount++
    if (node === this.candidate) this.candidate = undefined
    if (this.protectedCount > this.protectedMax) this.demote()
  }

  /** The admission test: does the candidate deserve the victim's place? */
  private admit(candidateHash: number, victimHash: number): boolean {
    const candidate = this.sketch.frequency(candidateHash)
    const victim = this.sketch.frequency(victimHash)
    if (candidate > victim) return true
    if (candidate < WARM_CANDIDATE) return false
    return (this.nextRandom() & RANDOM_ADMIT_MASK) === 0
  }

  /** xorshift32: cheap, deterministic from the seed, good enough for a 1-in-128 coin. */
  private nextRandom(): number {
    let x = this.random
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.random = x >>> 0
    return this.random
  }

  private unlink(node: Node): void {
    detach(node)
    switch (node.queue) {
      case QUEUE_WINDOW:
        this.windowCount--
        break
      case QUEUE_PROBATION:
        this.probationCount--
        break
      case QUEUE_PROTECTED:
        this.protectedCount--
        break
    }
    if (node === this.candidate) this.candidate = undefined
    node.prev = undefined
    node.next = undefined
    node.queue = QUEUE_NONE
    this.count--
  }

  /** The window's oldest entry moves to probation, where it will face admission; returns it. */
  private windowToProbation(): Node {
    return this.oldestToProbation(true)
  }

  /** Protected overflow goes back to probation (most recent end): it keeps a second chance. */
  private demote(): void {
    this.oldestToProbation(false)
  }

  private oldestToProbation(fromWindow: boolean): Node {
    const oldest = (fromWindow ? this.window : this.protected).next!
    detach(oldest)
    if (fromWindow) this.windowCount--
    else this.protectedCount--
    append(this.probation, oldest)
    oldest.queue = QUEUE_PROBATION
    this.probationCount++
    return oldest
  }

  private growSketch(): void {
    this.sketch.ensureCapacity(Math.min(this.sketchCeiling, this.sketch.entries * 2))
    this.syncSamplePeriod()
  }

  /**
   * The aging period follows the entries the sketch can tell apart: while a large cache is still
   * filling, its small sketch must age sooner or every counter would saturate.
   */
  private syncSamplePeriod(): void {
    const period = SAMPLE_FACTOR * Math.min(this.maximum, this.sketch.entries)
    if (period === this.samplePeriod) return
    this.agingLeft += period - this.samplePeriod
    this.samplePeriod = period
    this.rearm()
  }

  /**
   * Books the increments counted down so far and sets the countdown to the next event: the next
   * aging or the end of the climber's sample, whichever comes first.
   */
  private rearm(): void {
    const done = this.sampleSpan - this.sampleLeft
    this.increments += done
    this.agingLeft -= done
    const climbLeft = this.climbPeriod - (this.increments - this.unannounced)
    const span = Math.max(1, Math.min(this.agingLeft, climbLeft))
    this.sampleSpan = span
    this.sampleLeft = span
  }

  /**
   * Ages the sketch. As in the paper, the sample count is halved rather than reset, so later
   * agings come every half period; the hill climber takes a step when its own sample is complete.
   */
  private endSample(): void {
    this.increments += this.sampleSpan
    this.agingLeft -= this.sampleSpan
    this.sampleSpan = 0
    this.sampleLeft = 0
    if (this.agingLeft <= 0) {
      this.sketch.age()
      this.agingLeft = Math.max(1, this.samplePeriod >>> 1)
    }
    const requests = this.increments - this.unannounced
    if (!this.full) {
      // Hit rates while the cache is filling say nothing about the window size.
      if (requests >= this.climbPeriod) {
        this.increments = 0
        this.misses = 0
        this.unannounced = 0
      }
    } else if (requests >= this.climbPeriod) {
      this.climb(requests - this.misses, requests)
      this.increments = 0
      this.misses = 0
      this.unannounced = 0
    }
    this.rearm()
  }

  /**
   * Recomputes the queue limits from `maximum` and the window share, then moves entries so the
   * queues respect them. Runs when the hill climber steps or the effective capacity changes, so
   * the moves are spread over many requests.
   */
  private resize(): void {
    const m = this.maximum
    this.sketchCeiling = Math.min(m, FrequencySketch.maxEntries)
    this.climbPeriod = Math.max(MIN_SAMPLE, m * SHADOW_SAMPLE_FACTOR)
    this.shadow.configure(m)
    this.armShadow()
    if (m === Infinity) {
      // Nothing is known about the size yet: keep everything in one LRU until the first eviction.
      this.windowMax = Infinity
      this.protectedMax = 0
      this.syncSamplePeriod()
      return
    }
    this.sketch.ensureCapacity(Math.min(m, Math.max(this.count, this.sketch.entries)))
    this.syncSamplePeriod()
    this.windowMax = Math.max(1, Math.min(Math.floor(m * this.windowShare), m - 1))
    this.protectedMax = Math.floor((m - this.windowMax) * PROTECTED_SHARE)
    while (this.protectedCount > this.protectedMax) this.demote()
    while (this.windowCount > this.windowMax) this.windowToProbation()
    // A larger window takes main's least recent entries, giving them one more round in the window.
    while (this.windowCount < this.windowMax && this.probationCount + this.protectedCount > 0) {
      const fromProbation = this.probationCount > 0
      const oldest = fromProbation ? this.probation.next! : this.protected.next!
      detach(oldest)
      if (fromProbation) this.probationCount--
      else this.protectedCount--
      append(this.window, oldest)
      oldest.queue = QUEUE_WINDOW
      this.windowCount++
    }
  }

  /**
   * Runs at the end of every short sample. First the shadow: when plain LRU would have hit more
   * often on the sampled keys, the window (the LRU part of the cache) grows at once, by more the
   * larger LRU's lead. Otherwise the hill climber adds the sample to its long one and, when that
   * is complete, keeps moving the window size in the direction that raised the hit rate, turns
   * around when it fell, and grows or halves its step accordingly.
   */
  private climb(sampleHits: number, sampleRequests: number): void {
    let hitRate = sampleHits / sampleRequests
    const lead = this.shadowLead(hitRate)
    if (this.shadowStepped && hitRate - this.previousHitRate < -SHADOW_MISJUDGED) {
      this.muted = this.muteLength
      this.muteLength *= SHADOW_MUTE_GROWTH
    }
    this.shadowStepped = false
    if (lead > SHADOW_MARGIN && this.muted === 0 && this.windowShare < MAX_WINDOW_SHARE) {
      this.shadowStepped = true
      this.warm = true
      this.warmups = CLIMB_WARMUP_SAMPLES
      this.direction = 1
      this.step = CLIMB_STEP
      this.previousHitRate = hitRate
      this.longHits = 0
      this.longRequests = 0
      this.calm = 0
      this.quietLength = SHADOW_FIRST_QUIET
      this.setWindowShare(this.windowShare + Math.min(SHADOW_MAX_JUMP, Math.max(CLIMB_STEP, lead * SHADOW_GAIN)))
      return
    }
    if (this.quietLeft === 0 && !this.shadowWarming && ++this.calm >= SHADOW_CALM_SAMPLES) {
      this.calm = 0
      this.quietLeft = this.quietLength
      this.quietLength = Math.min(SHADOW_MAX_QUIET, this.quietLength * 2)
      this.quietHitRate = hitRate
      this.armShadow()
    }
    if (this.muted > 0) this.muted--
    this.longHits += sampleHits
    this.longRequests += sampleRequests
    if (this.longRequests < CLIMB_SAMPLE_FACTOR * this.maximum) return
    hitRate = this.longHits / this.longRequests
    this.longHits = 0
    this.longRequests = 0
    if (this.warmups < CLIMB_WARMUP_SAMPLES) {
      this.warmups++
      this.previousHitRate = hitRate
      return
    }
    if (!this.warm) {
      // The first full sample is the baseline.
      this.warm = true
      this.previousHitRate = hitRate
      return
    }
    const change = hitRate - this.previousHitRate
    this.previousHitRate = hitRate
    if (change < -CLIMB_NOISE) {
      this.direction = -this.direction
      this.step *= CLIMB_SHRINK
    } else if (change > CLIMB_NOISE) {
      this.step *= CLIMB_GROW
    }
    if (Math.abs(change) >= CLIMB_RESTART) this.step = Math.max(this.step, CLIMB_STEP)
    this.step = Math.min(CLIMB_MAX_STEP, Math.max(CLIMB_MIN_STEP, this.step))
    // At a bound the step cannot be taken: explore the other way next time.
    if (!this.setWindowShare(this.windowShare + this.direction * this.step)) this.direction = -this.direction
  }

  /**
   * The shadow LRU's lead over the real cache in the short sample that just ended, as a share of
   * the sampled requests; 0 while the shadow rests or refreshes after a rest.
   */
  private shadowLead(hitRate: number): number {
    const shadow = this.shadow
    const lead = shadow.requests >= MIN_SHADOW_REQUESTS ? (shadow.lruHits - shadow.ownHits) / shadow.requests : 0
    shadow.reset()
    if (this.quietLeft > 0) {
      const changed = Math.abs(hitRate - this.quietHitRate) >= SHADOW_WAKE_CHANGE
      if (changed) this.quietLength = SHADOW_FIRST_QUIET
      this.quietLeft = changed ? 0 : this.quietLeft - 1
      if (this.quietLeft === 0) {
        this.shadowWarming = true
        this.armShadow()
      }
      return 0
    }
    if (this.shadowWarming) {
      this.shadowWarming = false
      return 0
    }
    return lead
  }

  /** Samples into the shadow only once the cache has filled, and not while the shadow rests. */
  private armShadow(): void {
    this.shadowMask = this.full && this.quietLeft === 0 ? this.shadow.sampleMask : -1
  }

  /** Moves the window share within its bounds; false when it is already at the bound asked for. */
  private setWindowShare(share: number): boolean {
    const bounded = Math.min(MAX_WINDOW_SHARE, Math.max(0, share))
    if (bounded === this.windowShare) return false
    this.windowShare = bounded
    this.resize()
    return true
  }
}
