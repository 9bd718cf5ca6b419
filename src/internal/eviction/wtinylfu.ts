import type { Policy } from "./policy.js"
import { NO_SLOT } from "./policy.js"
import { LruShadow, MAX_SAMPLE_BITS, SAMPLE_SHIFT, UNSAMPLED } from "./shadow.js"
import { FrequencySketch } from "./sketch.js"

/**
 * Window TinyLFU (Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache Admission
 * Policy", ACM Transactions on Storage, 2017), with the adaptive window popularised by Caffeine.
 *
 * New entries enter a small LRU window. An entry pushed out of the window becomes a candidate for
 * the main area, a segmented LRU (probation + protected). When the cache is full, the candidate
 * competes with the probation queue's least recent entry: the one the frequency sketch has seen
 * less often is evicted. A hit in probation promotes to protected; protected overflow falls back
 * to probation at the next insert or eviction. Protected is ordered by CLOCK (second chance)
 * rather than strict LRU, so a protected hit writes one word and moves nothing. A hill climber
 * resizes the window: recency-biased workloads want a large window, frequency-biased and looping
 * ones a small one.
 */

/**
 * Queue tags, the low two bits of a node's meta word: none (not linked), window, probation,
 * protected. The code below uses module-private copies: V8 reads an exported binding through its
 * module cell, with a check that it is initialised, at every use, and folds a private constant.
 */
const UNQUEUED = 0
const WINDOW = 1
const PROBATION = 2
const PROTECTED = 3
/** @internal */
export const QUEUE_NONE = UNQUEUED
/** @internal */
export const QUEUE_WINDOW = WINDOW
/** @internal */
export const QUEUE_PROBATION = PROBATION
/** @internal */
export const QUEUE_PROTECTED = PROTECTED

/**
 * Layout: the nodes' links live in one `Int32Array` of (prev, next) pairs, as an LRU's do, 8 bytes
 * per node; each node's meta word in a `Uint16Array` (2 bytes) and its key hash in an `Int32Array`
 * that hits never read. Nodes 0, 1 and 2 are the sentinels of the window, probation and protected
 * lists (queue tag − 1); the entry in slot s is node s + 3. Links hold node numbers. Keeping the
 * links as dense as an LRU's matters in a large cache: a hit touches its node and both neighbours,
 * and the fewer bytes those take, the more of them stay in the CPU's cache.
 */
const PREV = 0
const NEXT = 1
const FIRST = 3
const NONE = 0
/**
 * The meta word: the queue tag in bits 0–1; in bits 2–5 the hits counted on the node that the
 * sketch has not seen yet (0–15, the sketch's own ceiling); in bit 6 the protected entry's mark,
 * hit since it last moved (see `oldest`); in bits 7–10 the key's sample level (see
 * `sampleLevel`). A hit only bumps the count, one write into the node's own word, instead of
 * four counters of the sketch; the count is halved whenever the sketch is aged, an admission adds
 * it to the sketch's estimate, and it is added to the sketch itself when the entry leaves, so that
 * the key's history is there if it comes back. Estimates are thus the ones counting every hit at
 * once would give (but for the rounding of halvings, and fewer collisions).
 */
const QUEUE_BITS = 3
const PENDING_SHIFT = 2
const PENDING_ONE = 1 << PENDING_SHIFT
const PENDING_BITS = 15 << PENDING_SHIFT
/** `(meta & (QUEUE_BITS | PENDING_BITS)) < PENDING_FULL` exactly when fewer than 15 hits are pending. */
const PENDING_FULL = 15 * PENDING_ONE
const REFERENCED = 1 << 6
const LEVEL_SHIFT = 7

/**
 * The shadow samples a key when the low `bits` of `hash >>> 20` are zero (its mask), that is
 * when their trailing zeros, the key's level, are at least `bits`; all twelve zero count as 15.
 * Kept in the node, the level lets a hit decide without reading the hash.
 */
const sampleLevel = (hash: number): number => {
  const x = (hash >>> SAMPLE_SHIFT) & ((1 << MAX_SAMPLE_BITS) - 1)
  return x === 0 ? 15 : 31 - Math.clz32(x & -x)
}

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
/**
 * Below this step the climber has settled and stops moving the window, until a restart (or the
 * shadow) sets it going again; it never jumps by more than a quarter of the cache.
 */
const CLIMB_MIN_STEP = 0.01
const CLIMB_MAX_STEP = 0.25
/**
 * A step that paid off grows the next one; one that cost hits is reversed and halved; one that
 * changed nothing measurable decays, so on a stationary workload the steps die out and the window
 * settles instead of wandering.
 */
const CLIMB_GROW = 1.25
const CLIMB_SHRINK = 0.5
const CLIMB_DECAY = 0.75
/** A hit-rate change this large means the workload changed: the climber restarts with a full step. */
const CLIMB_RESTART = 0.05
/**
 * A change of the long sample's hit rate counts as evidence only beyond this many standard errors
 * of a sample's hit rate (√(p(1 − p)/n) for n requests at hit rate p): smaller moves are noise.
 */
const CLIMB_NOISE_ERRORS = 2
/** After a shadow-driven step the climber only fine-tunes: its step starts this small. */
const CLIMB_TUNE_STEP = 0.02
/** The shadow LRU must lead by more than this share of the sampled requests to move the window. */
const SHADOW_MARGIN = 0.01
/** A shadow-driven step grows the window by 3 × the lead (at least one step, at most half the cache). */
const SHADOW_GAIN = 3
const SHADOW_MAX_JUMP = 0.5
/**
 * A shadow-driven step after which the hit rate fell by this much was a misjudgement (hash
 * sampling can misread a loop just over the capacity): the shadow is ignored for a while, 8 short
 * samples the first time and four times longer each time after. Not judged before the cache has
 * turned over its contents once since it filled: until then its hit rate still owes something to
 * the fill, when every key was admitted, and falls whatever the window does.
 */
const SHADOW_MISJUDGED = 0.02
const SHADOW_FIRST_MUTE = 8
const SHADOW_MUTE_GROWTH = 4
/**
 * With the window at its largest the cache is an LRU itself, so the shadow should see what the
 * cache sees; a lead this large in this many short samples in a row (one could be chance: near
 * the capacity an LRU's hit rate is steep in its size, and the shadow is a scaled-down one) means
 * the sample misrepresents the cache (a loop just over the capacity, for one): the shadow is muted
 * and the window explored downwards.
 */
const SHADOW_MISREAD = 0.05
const SHADOW_MISREAD_SAMPLES = 3
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
/**
 * Hits on sampled keys wait in a buffer of this many hashes and are replayed into the shadow, in
 * order, before anything else reaches it: the next sampled miss, the end of the countdown (which
 * never spans more requests than this, so the buffer cannot overflow) or a resize.
 */
const SAMPLED_HITS = 256

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

  /** Every node's links, meta word and hash (see `PREV`); the links start with the three sentinels. */
  private links = WTinyLfuPolicy.sentinels(new Int32Array(FIRST * 2))
  private meta = new Uint16Array(FIRST)
  private hashes = new Int32Array(FIRST)
  private windowCount = 0
  private probationCount = 0
  private protectedCount = 0
  private count = 0

  private readonly sketch: FrequencySketch
  private readonly shadow = new LruShadow()
  /**
   * The sample level from which a key is in the shadow's sample (its sample bits), kept here so a
   * hit tests it with one field read; `UNSAMPLED` until the cache is first full and while the
   * shadow rests.
   */
  private shadowFrom = UNSAMPLED
  /**
   * The nodes of sampled keys hit since the shadow last saw a request, one slot to spare: a hit
   * writes its node at `sampledCount` whether or not it is sampled, and only a sampled one moves
   * the count on (see `onHit`). Replayed before any node leaves, so each still holds its key.
   */
  private readonly sampledHits = new Int32Array(SAMPLED_HITS + 1)
  private sampledCount = 0
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
  private candidate = NONE
  /** A read miss already counted this hash; the insert that usually follows must not count it twice. */
  private pendingHash = 0
  private hasPending = false

  /** Sketch increments between agings, and how many are left before the next one. */
  private samplePeriod = 0
  private agingLeft = 0
  /**
   * Increments left before the next event (an aging, the end of a climber sample, or a full
   * buffer of sampled hits).
   */
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
  /** Short samples in a row in which the shadow misread the cache (see `SHADOW_MISREAD`). */
  private misreads = 0
  /** Misses since the cache filled, counted up to `maximum`: the cache has turned over once. */
  private turnover = 0
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

  grow(slots: number): void {
    const nodes = slots + FIRST
    if (nodes <= this.meta.length) return
    const links = new Int32Array(nodes * 2)
    links.set(this.links)
    this.links = links
    const meta = new Uint16Array(nodes)
    meta.set(this.meta)
    this.meta = meta
    const hashes = new Int32Array(nodes)
    hashes.set(this.hashes)
    this.hashes = hashes
  }

  onHit(slot: number): void {
    const node = slot + FIRST
    const metas = this.meta
    const meta = metas[node]!
    // Whether a hit is pending-saturated, or sampled by the shadow, depends on the key: as a
    // branch it would be mispredicted on every few hits. Both are computed as arithmetic instead.
    // One more pending hit unless 15 are (the difference is negative below that). A protected hit
    // (most hits in a warm cache whose window is small) only marks the node: it does not move,
    // and the mark gives it a second chance when it reaches the least recent end (`oldest`). A
    // window hit moves it: the window stays an exact LRU, as the recency-heavy workloads on which
    // it grows large need (a marked window measured up to 8 points below LRU on them). A
    // probation hit promotes.
    const updated = meta + (((meta & (QUEUE_BITS | PENDING_BITS)) - PENDING_FULL) >>> 31) * PENDING_ONE
    const queue = meta & QUEUE_BITS
    metas[node] = queue === PROTECTED ? updated | REFERENCED : updated
    if (queue === WINDOW) this.refresh(node)
    else if (queue === PROBATION) this.promote(node)
    // Buffered for the shadow: the difference is negative (1 after the shift and flip) exactly
    // when the key's level is below the sample's. The countdown ends before the buffer is full.
    const count = this.sampledCount
    this.sampledHits[count] = node
    this.sampledCount = count + ((((meta >>> LEVEL_SHIFT) - this.shadowFrom) >>> 31) ^ 1)
    if (--this.sampleLeft === 0) this.endSample()
  }

  /** A window hit moves the node to the window's most recent end: the window is an exact LRU. */
  private refresh(node: number): void {
    const links = this.links
    const last = links[((WINDOW - 1) << 1) + PREV]!
    if (last === node) return
    this.detach(node)
    this.append(WINDOW, node)
  }

  /**
   * A probation hit, a second look, earns protection. Protected may overflow for a while: its
   * oldest entries go back to probation at the next insert or eviction (`settle`), which is all
   * that can tell the difference, so that a hit moves one entry and not two.
   */
  private promote(node: number): void {
    this.probationCount--
    this.protectedCount++
    if (node === this.candidate) this.candidate = NONE
    this.move(node, PROTECTED)
  }

  onMiss(hash: number): void {
    this.sketch.increment(hash)
    if (sampleLevel(hash) >= this.shadowFrom) {
      if (this.sampledCount !== 0) this.replaySampledHits()
      this.shadow.access(hash, false)
    }
    // Compared as signed 32-bit integers, so a caller may pass `hashString` or `hashKey` values.
    this.pendingHash = hash | 0
    this.hasPending = true
    this.misses++
    if (--this.sampleLeft === 0) this.endSample()
  }

  onAdd(slot: number, hash: number): void {
    if (!this.hasPending || this.pendingHash !== (hash | 0)) {
      this.sketch.increment(hash)
      this.unannounced++
      if (--this.sampleLeft === 0) this.endSample()
    }
    this.hasPending = false
    const node = slot + FIRST
    this.hashes[node] = hash
    this.meta[node] = WINDOW | (sampleLevel(hash) << LEVEL_SHIFT)
    this.append(WINDOW, node)
    this.windowCount++
    if (++this.count > this.sketch.entries && this.sketch.entries < this.sketchCeiling) this.growSketch()
    this.settle()
    if (this.windowCount > this.windowMax) this.candidate = this.windowToProbation()
  }

  onRemove(slot: number): void {
    // Unlinked nodes (already evicted, never added) are ignored, so a double removal is harmless.
    const node = slot + FIRST
    if (node >= this.meta.length || this.queueOfNode(node) === UNQUEUED) return
    this.unlink(node)
  }

  evict(): number {
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
    this.settle()
    let victim: number
    if (this.probationCount > 0) {
      victim = this.oldest(PROBATION)
      const candidate = this.candidate
      if (candidate !== NONE && candidate !== victim && this.queueOfNode(candidate) === PROBATION) {
        if (!this.admit(candidate, victim)) {
          victim = candidate
          this.candidate = NONE
        }
      } else if (candidate === victim) {
        this.candidate = NONE
      }
    } else if (this.protectedCount > 0) {
      victim = this.oldest(PROTECTED)
    } else if (this.windowCount > 0) {
      victim = this.oldest(WINDOW)
    } else {
      return NO_SLOT
    }
    this.unlink(victim)
    return victim - FIRST
  }

  clear(): void {
    this.links.fill(0)
    WTinyLfuPolicy.sentinels(this.links)
    this.meta.fill(0)
    this.windowCount = 0
    this.probationCount = 0
    this.protectedCount = 0
    this.count = 0
    this.candidate = NONE
    this.hasPending = false
    this.sampledCount = 0
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
    this.turnover = 0
    this.misreads = 0
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

  /** The estimate for the entry in a slot, hits not yet in the sketch included, for tests and diagnostics. */
  frequencyOf(slot: number): number {
    return this.estimate(slot + FIRST)
  }

  /** The queue (`QUEUE_*`) of the entry in a slot, for tests and diagnostics. */
  queueOf(slot: number): number {
    const node = slot + FIRST
    return node < this.meta.length ? this.queueOfNode(node) : UNQUEUED
  }

  /** Three empty circular lists: each sentinel links to itself. */
  private static sentinels(links: Int32Array): Int32Array {
    for (let list = 0; list < FIRST; list++) {
      links[(list << 1) + PREV] = list
      links[(list << 1) + NEXT] = list
    }
    return links
  }

  private queueOfNode(node: number): number {
    return this.meta[node]! & QUEUE_BITS
  }

  /** How often a stored key was seen recently: the sketch's estimate plus the hits pending on its node. */
  private estimate(node: number): number {
    const pending = (this.meta[node]! & PENDING_BITS) >>> PENDING_SHIFT
    return Math.min(15, this.sketch.frequency(this.hashOf(node)) + pending)
  }

  private hashOf(node: number): number {
    return this.hashes[node]!
  }

  /**
   * A queue's least recent node that was not hit since it was last moved (the sentinel when the
   * queue is empty). Nodes passed over lose their mark and go to the most recent end: the second
   * chance of the CLOCK algorithm, which orders a queue nearly as an LRU would without moving a
   * node on every hit. Each mark is cleared once, so the work is bounded by the hits.
   */
  private oldest(queue: number): number {
    const links = this.links
    const metas = this.meta
    const at = ((queue - 1) << 1) + NEXT
    for (;;) {
      const node = links[at]!
      const meta = metas[node]!
      if ((meta & REFERENCED) === 0) return node
      metas[node] = meta & ~REFERENCED
      this.detach(node)
      this.append(queue, node)
    }
  }

  /** Appends at a queue's most recent end (its sentinel's prev). */
  private append(queue: number, node: number): void {
    const links = this.links
    const list = queue - 1
    const last = links[(list << 1) + PREV]!
    links[(node << 1) + PREV] = last
    links[(node << 1) + NEXT] = list
    links[(last << 1) + NEXT] = node
    links[(list << 1) + PREV] = node
  }

  /** Takes a node out of its list (its own links are left as they were). */
  private detach(node: number): void {
    const links = this.links
    const prev = links[(node << 1) + PREV]!
    const next = links[(node << 1) + NEXT]!
    links[(prev << 1) + NEXT] = next
    links[(next << 1) + PREV] = prev
  }

  /** Moves a node to another queue's most recent end; its pending hits go with it. */
  private move(node: number, queue: number): void {
    this.detach(node)
    this.meta[node] = (this.meta[node]! & ~(QUEUE_BITS | REFERENCED)) | queue
    this.append(queue, node)
  }

  /** Replays the buffered hits on sampled keys into the shadow, in the order they came. */
  private replaySampledHits(): void {
    const count = this.sampledCount
    this.sampledCount = 0
    for (let i = 0; i < count; i++) this.shadow.access(this.hashes[this.sampledHits[i]!]!, true)
  }

  /** Protected's overflow goes back to probation. */
  private settle(): void {
    while (this.protectedCount > this.protectedMax) this.demote()
  }

  /** The admission test: does the candidate deserve the victim's place? */
  private admit(candidateNode: number, victimNode: number): boolean {
    const candidate = this.estimate(candidateNode)
    const victim = this.estimate(victimNode)
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

  private unlink(node: number): void {
    this.detach(node)
    // A buffered hit may name this node: the shadow sees it while the node still holds its key.
    if (this.sampledCount !== 0) this.replaySampledHits()
    const meta = this.meta[node]!
    switch (meta & QUEUE_BITS) {
      case WINDOW:
        this.windowCount--
        break
      case PROBATION:
        this.probationCount--
        break
      case PROTECTED:
        this.protectedCount--
        break
    }
    // The key may come back: its hits stay on record.
    const pending = (meta & PENDING_BITS) >>> PENDING_SHIFT
    if (pending > 0) this.sketch.add(this.hashOf(node), pending)
    if (node === this.candidate) this.candidate = NONE
    this.meta[node] = UNQUEUED
    this.count--
  }

  /** The window's oldest entry moves to probation, where it will face admission; returns it. */
  private windowToProbation(): number {
    const oldest = this.oldest(WINDOW)
    this.move(oldest, PROBATION)
    this.windowCount--
    this.probationCount++
    return oldest
  }

  /** Protected overflow goes back to probation (most recent end): it keeps a second chance. */
  private demote(): void {
    this.move(this.oldest(PROTECTED), PROBATION)
    this.protectedCount--
    this.probationCount++
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
    const span = Math.max(1, Math.min(this.agingLeft, climbLeft, SAMPLED_HITS))
    this.sampleSpan = span
    this.sampleLeft = span
  }

  /**
   * Ages the sketch. As in the paper, the sample count is halved rather than reset, so later
   * agings come every half period; the hill climber takes a step when its own sample is complete.
   */
  private endSample(): void {
    if (this.sampledCount !== 0) this.replaySampledHits()
    this.increments += this.sampleSpan
    this.agingLeft -= this.sampleSpan
    this.sampleSpan = 0
    this.sampleLeft = 0
    if (this.agingLeft <= 0) {
      this.sketch.age()
      this.agePending()
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
    if (this.sampledCount !== 0) this.replaySampledHits()
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
    this.settle()
    while (this.windowCount > this.windowMax) this.windowToProbation()
    // A larger window takes main's least recent entries, giving them one more round in the window.
    while (this.windowCount < this.windowMax && this.probationCount + this.protectedCount > 0) {
      const fromProbation = this.probationCount > 0
      this.move(this.oldest(fromProbation ? PROBATION : PROTECTED), WINDOW)
      if (fromProbation) this.probationCount--
      else this.protectedCount--
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
    const turnedOver = this.turnover >= this.maximum
    if (!turnedOver) this.turnover += sampleRequests - sampleHits
    if (this.shadowStepped && turnedOver && hitRate - this.previousHitRate < -SHADOW_MISJUDGED) {
      this.muted = this.muteLength
      this.muteLength *= SHADOW_MUTE_GROWTH
    }
    this.shadowStepped = false
    const misread = lead > SHADOW_MISREAD && this.muted === 0 && this.windowShare >= MAX_WINDOW_SHARE
    this.misreads = misread ? this.misreads + 1 : 0
    if (this.misreads >= SHADOW_MISREAD_SAMPLES) {
      this.misreads = 0
      this.muted = this.muteLength
      this.muteLength *= SHADOW_MUTE_GROWTH
      this.restartClimb(-1, CLIMB_STEP)
      this.setWindowShare(this.windowShare - CLIMB_STEP)
      return
    }
    if (lead > SHADOW_MARGIN && this.muted === 0 && this.windowShare < MAX_WINDOW_SHARE) {
      this.shadowStepped = true
      this.restartClimb(1, CLIMB_TUNE_STEP)
      this.previousHitRate = hitRate
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
    if (this.longRequests < this.climbRequests()) return
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
    // Every request hit: no window can do better, and a move could only cost hits.
    if (hitRate === 1) return
    const noise = CLIMB_NOISE_ERRORS * Math.sqrt((hitRate * (1 - hitRate)) / this.climbRequests())
    if (Math.abs(change) >= CLIMB_RESTART) {
      // The workload changed: explore again, away from the last move if it cost hits.
      if (change < 0) this.direction = -this.direction
      this.step = Math.max(this.step, CLIMB_STEP)
    } else if (change < -noise) {
      this.direction = -this.direction
      this.step *= CLIMB_SHRINK
    } else if (change > noise) {
      this.step *= CLIMB_GROW
    } else {
      this.step *= CLIMB_DECAY
    }
    this.step = Math.min(CLIMB_MAX_STEP, this.step)
    // Settled: no move until the hit rate shifts enough to restart. At a bound the move is simply
    // not made: the direction only turns on evidence, so the window rests there while it pays.
    if (this.step >= CLIMB_MIN_STEP) this.setWindowShare(this.windowShare + this.direction * this.step)
  }

  /**
   * After the shadow moved the window: the climber goes on from there in `direction` with `step`,
   * and its next long sample is its new baseline (the short one is too noisy for it).
   */
  private restartClimb(direction: number, step: number): void {
    this.warm = false
    this.warmups = CLIMB_WARMUP_SAMPLES
    this.direction = direction
    this.step = step
    this.longHits = 0
    this.longRequests = 0
  }

  /** Requests in a long sample. */
  private climbRequests(): number {
    return CLIMB_SAMPLE_FACTOR * this.maximum
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
    this.shadowFrom = this.full && this.quietLeft === 0 ? this.shadow.sampleBits : UNSAMPLED
  }

  /** Halves the hits pending on every node, as `age()` halves the sketch's counters. */
  private agePending(): void {
    const metas = this.meta
    for (let node = FIRST; node < metas.length; node++) {
      const meta = metas[node]!
      if ((meta & PENDING_BITS) !== 0) {
        metas[node] = (meta & ~PENDING_BITS) | (((meta & PENDING_BITS) >>> 1) & PENDING_BITS)
      }
    }
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
