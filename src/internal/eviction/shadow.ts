/**
 * A miniature LRU that replays a sample of the requests a W-TinyLFU cache sees, so the policy can
 * tell, on the same requests, whether plain LRU would have hit more often than it does.
 *
 * Sampling is by key hash (spatial sampling): a key is either always or never in the sample, so
 * an LRU of `maximum × rate` entries over the sampled keys sees the reuse pattern an LRU of
 * `maximum` entries would see over all keys. The sample is sized for about `TARGET_ENTRIES` keys:
 * large enough to be a fair LRU, small enough that a sampled request is rare in a large cache.
 *
 * The LRU lives in fixed typed arrays (a linked list of slots, and an open-addressing index from
 * key hash to slot), so replaying a request allocates nothing and touches a few words.
 * @internal
 */

/** The shadow holds about this many keys (between this and twice it). */
const TARGET_ENTRIES = 128
/**
 * Bits of the key hash that pick the sample, and the most of them used; bits 0–19 choose sketch
 * counters, so these are above.
 * @internal
 */
export const SAMPLE_SHIFT = 20
/** @internal */
export const MAX_SAMPLE_BITS = 12
/** A `sampleBits` that no key reaches: nothing is sampled. @internal */
export const UNSAMPLED = 16
/** Fibonacci hashing's multiplier: the index slot is the top bits of `hash × GOLDEN`. */
const GOLDEN = 0x9e3779b1 | 0

/** Smallest power of two ≥ n (n ≥ 1). */
const ceilPow2 = (n: number): number => (n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n)))

/** @internal */
export class LruShadow {
  /** Slot 0 is the list's sentinel: `next[0]` is the least recent slot, `prev[0]` the most recent. */
  private hashes = new Int32Array(1)
  private prev = new Int32Array(1)
  private next = new Int32Array(1)
  /** Open addressing with linear probing, from key hash to slot; slots start at 1, so 0 is empty. */
  private index = new Int32Array(2)
  private indexShift = 31
  private capacity = 0
  private size = 0
  /**
   * A request belongs to the sample when the low `sampleBits` bits of `hash >>> SAMPLE_SHIFT` are
   * zero; `UNSAMPLED` while the cache's size is not known.
   */
  sampleBits = UNSAMPLED
  /** Sampled requests, and how many of them the shadow LRU and the real cache hit, since `reset`. */
  requests = 0
  lruHits = 0
  ownHits = 0

  /** Sizes the sample for a cache that holds `maximum` entries; keeps the most recent keys that fit. */
  configure(maximum: number): void {
    if (!(maximum >= 1) || maximum === Infinity) {
      this.sampleBits = UNSAMPLED
      this.rebuild(0)
      return
    }
    const bits = Math.min(MAX_SAMPLE_BITS, Math.max(0, Math.floor(Math.log2(maximum / TARGET_ENTRIES))))
    this.sampleBits = bits
    const capacity = Math.max(1, Math.round(maximum / (1 << bits)))
    if (capacity !== this.capacity) this.rebuild(capacity)
  }

  /** Replays a sampled request; `hit` says whether the real cache had the key. */
  access(hash: number, hit: boolean): void {
    if (hit) this.ownHits++
    this.requests++
    const h = hash | 0
    const index = this.index
    const hashes = this.hashes
    const mask = index.length - 1
    let i = Math.imul(h, GOLDEN) >>> this.indexShift
    let slot = index[i]!
    while (slot !== 0) {
      if (hashes[slot] === h) {
        this.lruHits++
        this.touch(slot)
        return
      }
      i = (i + 1) & mask
      slot = index[i]!
    }
    this.insert(h, i)
  }

  /** Moves a slot to the most recent end. */
  private touch(slot: number): void {
    const prev = this.prev
    const next = this.next
    const last = prev[0]!
    if (last === slot) return
    const p = prev[slot]!
    const n = next[slot]!
    next[p] = n
    prev[n] = p
    prev[slot] = last
    next[slot] = 0
    next[last] = slot
    prev[0] = slot
  }

  /** Adds a key the shadow does not hold at index position `i`, evicting the least recent if full. */
  private insert(h: number, i: number): void {
    if (this.capacity === 0) return
    const index = this.index
    let slot: number
    if (this.size < this.capacity) {
      slot = ++this.size
    } else {
      slot = this.next[0]!
      this.unlink(slot)
      this.unindex(slot)
      // The removal may have shifted entries back into the probe sequence: find the free slot again.
      const mask = index.length - 1
      i = Math.imul(h, GOLDEN) >>> this.indexShift
      while (index[i] !== 0) i = (i + 1) & mask
    }
    this.hashes[slot] = h
    index[i] = slot
    this.append(slot)
  }

  /** Starts a new comparison period (the shadow's contents stay). */
  reset(): void {
    this.requests = 0
    this.lruHits = 0
    this.ownHits = 0
  }

  clear(): void {
    this.size = 0
    this.prev[0] = 0
    this.next[0] = 0
    this.index.fill(0)
    this.reset()
  }

  /** New arrays for `capacity` keys, refilled with the most recent keys of the old ones. */
  private rebuild(capacity: number): void {
    const kept: Array<number> = []
    for (let slot = this.prev[0]!; slot !== 0 && kept.length < capacity; slot = this.prev[slot]!) {
      kept.push(this.hashes[slot]!)
    }
    const words = ceilPow2(capacity * 2 + 2)
    this.capacity = capacity
    this.hashes = new Int32Array(capacity + 1)
    this.prev = new Int32Array(capacity + 1)
    this.next = new Int32Array(capacity + 1)
    this.index = new Int32Array(words)
    this.indexShift = 32 - Math.log2(words)
    this.size = 0
    const requests = this.requests
    const lruHits = this.lruHits
    const ownHits = this.ownHits
    // Least recent first, so the order is kept; replaying them is not a request.
    for (let k = kept.length - 1; k >= 0; k--) this.access(kept[k]!, false)
    this.requests = requests
    this.lruHits = lruHits
    this.ownHits = ownHits
  }

  /** Appends at the most recent end. */
  private append(slot: number): void {
    const last = this.prev[0]!
    this.prev[slot] = last
    this.next[slot] = 0
    this.next[last] = slot
    this.prev[0] = slot
  }

  private unlink(slot: number): void {
    const p = this.prev[slot]!
    const n = this.next[slot]!
    this.next[p] = n
    this.prev[n] = p
  }

  /** Removes a slot from the index, shifting later entries of its probe run back (no tombstones). */
  private unindex(slot: number): void {
    const index = this.index
    const mask = index.length - 1
    let i = Math.imul(this.hashes[slot]!, GOLDEN) >>> this.indexShift
    while (index[i] !== slot) i = (i + 1) & mask
    let hole = i
    for (let j = (hole + 1) & mask; index[j] !== 0; j = (j + 1) & mask) {
      const home = Math.imul(this.hashes[index[j]!]!, GOLDEN) >>> this.indexShift
      // Move j into the hole unless its home lies cyclically in (hole, j].
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j
      if (!between) {
        index[hole] = index[j]!
        hole = j
      }
    }
    index[hole] = 0
  }
}
