/**
 * A miniature LRU that replays a sample of the requests a W-TinyLFU cache sees, so the policy can
 * tell, on the same requests, whether plain LRU would have hit more often than it does.
 *
 * Sampling is by key hash (spatial sampling): a key is either always or never in the sample, so
 * an LRU of `maximum × rate` entries over the sampled keys sees the reuse pattern an LRU of
 * `maximum` entries would see over all keys. The sample is sized for about `TARGET_ENTRIES` keys:
 * large enough to be a fair LRU, small enough that a sampled request is rare in a large cache.
 * @internal
 */

/** The shadow holds about this many keys (between this and twice it). */
const TARGET_ENTRIES = 128
/** Bits of the key hash that pick the sample; bits 0–19 choose sketch counters, so these are above. */
const SAMPLE_SHIFT = 20
const MAX_SAMPLE_BITS = 12

/** @internal */
export class LruShadow {
  /** Sampled key hashes in recency order (a Set iterates in insertion order: the oldest first). */
  private readonly keys = new Set<number>()
  private capacity = 1
  /** A request is sampled when `((hash >>> 20) & mask) === 0`. */
  mask = 0
  /** Sampled requests, and how many of them the shadow LRU and the real cache hit, since `reset`. */
  requests = 0
  lruHits = 0
  ownHits = 0

  /** Sizes the sample for a cache that holds `maximum` entries. */
  configure(maximum: number): void {
    if (!(maximum >= 1) || maximum === Infinity) {
      this.mask = 0
      this.capacity = Infinity
      return
    }
    const bits = Math.min(MAX_SAMPLE_BITS, Math.max(0, Math.floor(Math.log2(maximum / TARGET_ENTRIES))))
    this.mask = (1 << bits) - 1
    this.capacity = Math.max(1, Math.round(maximum / (1 << bits)))
    while (this.keys.size > this.capacity) this.evictOldest()
  }

  /** Whether a request for this key hash belongs to the sample. */
  sampled(hash: number): boolean {
    return ((hash >>> SAMPLE_SHIFT) & this.mask) === 0
  }

  /** Replays a sampled request; `hit` says whether the real cache had the key. */
  access(hash: number, hit: boolean): void {
    this.requests++
    if (hit) this.ownHits++
    if (this.keys.delete(hash)) this.lruHits++
    else if (this.keys.size >= this.capacity) this.evictOldest()
    this.keys.add(hash)
  }

  /** Starts a new comparison period (the shadow's contents stay). */
  reset(): void {
    this.requests = 0
    this.lruHits = 0
    this.ownHits = 0
  }

  clear(): void {
    this.keys.clear()
    this.reset()
  }

  private evictOldest(): void {
    for (const oldest of this.keys) {
      this.keys.delete(oldest)
      return
    }
  }
}
