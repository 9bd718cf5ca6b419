/**
 * The frequency sketch behind W-TinyLFU admission: a count-min sketch of 4-bit counters that
 * estimates how often a key hash was seen recently.
 *
 * Layout: the table is split into 64-byte blocks of sixteen 32-bit words, each word holding eight
 * 4-bit counters. A hash picks one block, then one counter in each quarter of that block, so the
 * four probes of a key touch one cache line. Counters saturate at 15: admission only needs to
 * tell "rare" from "popular", and small counters keep the sketch at a few bytes per entry.
 *
 * Hashing: the key hash is already well mixed (`hashString` ends in a finaliser), so its low 20
 * bits choose the four counters directly, and one multiply (Fibonacci hashing) spreads all of
 * its bits into the block index. That is the cheapest mix we measured that kept hit rates: a
 * single multiply that fed the counter positions instead (positions from the product, block from
 * the raw low bits) fell from 48 % to 9 % on the looping trace at 500 entries.
 *
 * Aging: `age()` halves every counter, so that popularity that is no longer current fades instead
 * of pinning old keys in the cache forever. The owner decides when: the W-TinyLFU policy ages the
 * sketch once per sample of ten requests per entry, and already counts requests for its hill
 * climber, so keeping that count out of `increment` keeps a hit as cheap as possible.
 */

/** Words per block: 16 × 32 bits = 64 bytes, one cache line. */
const BLOCK_SHIFT = 4
/** Counters per entry of capacity: with 16 counters (8 bytes) the estimate stays tight. */
const COUNTERS_PER_ENTRY = 16
/** Each 32-bit word holds eight 4-bit counters. */
const COUNTERS_PER_WORD = 8
/** Halves each counter of a word at once (the shift moves a bit across nibbles; the mask drops it). */
const HALF_MASK = 0x77777777
/** The sketch never grows beyond this many entries (2^22 entries → 32 MiB of counters). */
const MAX_ENTRIES = 1 << 22

/** Smallest power of two ≥ n (n ≥ 1, n ≤ 2^30). */
const ceilPow2 = (n: number): number => (n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n)))

/** Fibonacci hashing's multiplier, 2^32 / φ: the product's top bits depend on every bit of the hash. */
const GOLDEN = 0x9e3779b1

/**
 * A 4-bit count-min sketch with aging by halving, sized in proportion to the cache's capacity and
 * grown on demand.
 * @internal
 */
export class FrequencySketch {
  /** The most entries a sketch is ever sized for: beyond it, estimates just get a little coarser. */
  static readonly maxEntries = MAX_ENTRIES
  private table: Uint32Array
  /** 32 − log2(blocks): the block index is the top bits of `hash × GOLDEN`. */
  private blockShift: number
  private capacity: number

  /**
   * @param entries how many entries the cache holds; the table is sized for
   *   `min(entries, 2^22)` rounded to a power of two, and `ensureCapacity` grows it later.
   */
  constructor(entries: number) {
    this.capacity = FrequencySketch.clampEntries(entries)
    this.table = new Uint32Array(FrequencySketch.wordsFor(this.capacity))
    this.blockShift = FrequencySketch.shiftFor(this.table.length)
  }

  /** The number of entries the table is currently sized for. */
  get entries(): number {
    return this.capacity
  }

  /** Counter slots in the table (8 per 32-bit word). */
  get counters(): number {
    return this.table.length * COUNTERS_PER_WORD
  }

  /**
   * Makes room for `entries` distinct keys. Growing by a factor f turns block b into blocks
   * f·b … f·b + f − 1 (the block index gains low bits), and each of them starts as a copy of b,
   * so no estimate changes and nothing is forgotten.
   */
  ensureCapacity(entries: number): void {
    const wanted = FrequencySketch.clampEntries(entries)
    if (wanted <= this.capacity) return
    const words = FrequencySketch.wordsFor(wanted)
    if (words > this.table.length) {
      const old = this.table
      const next = new Uint32Array(words)
      const factor = words / old.length
      const blockWords = 1 << BLOCK_SHIFT
      for (let from = 0, to = 0; from < old.length; from += blockWords) {
        const block = old.subarray(from, from + blockWords)
        for (let copy = 0; copy < factor; copy++, to += blockWords) next.set(block, to)
      }
      this.table = next
      this.blockShift = FrequencySketch.shiftFor(words)
    }
    this.capacity = wanted
  }

  /** Records one occurrence of the key hash: each of its four counters below 15 goes up by one. */
  increment(hash: number): void {
    const table = this.table
    const base = (Math.imul(hash, GOLDEN) >>> this.blockShift) << BLOCK_SHIFT
    // Four probes: one word in each quarter of the block (2 bits), one nibble in it (3 bits).
    const i0 = base + (hash & 3)
    const s0 = ((hash >>> 2) & 7) << 2
    const i1 = base + 4 + ((hash >>> 5) & 3)
    const s1 = ((hash >>> 7) & 7) << 2
    const i2 = base + 8 + ((hash >>> 10) & 3)
    const s2 = ((hash >>> 12) & 7) << 2
    const i3 = base + 12 + ((hash >>> 15) & 3)
    const s3 = ((hash >>> 17) & 7) << 2
    const w0 = table[i0]!
    const w1 = table[i1]!
    const w2 = table[i2]!
    const w3 = table[i3]!
    // Branch-free saturation: ((c + 1) >>> 4) is 1 only for c = 15, so the step is 0 there, else 1.
    // The four words are distinct (one per quarter), so reading all before writing is safe.
    table[i0] = w0 + (((((w0 >>> s0) & 15) + 1) >>> 4 ^ 1) << s0)
    table[i1] = w1 + (((((w1 >>> s1) & 15) + 1) >>> 4 ^ 1) << s1)
    table[i2] = w2 + (((((w2 >>> s2) & 15) + 1) >>> 4 ^ 1) << s2)
    table[i3] = w3 + (((((w3 >>> s3) & 15) + 1) >>> 4 ^ 1) << s3)
  }

  /**
   * Records `times` occurrences at once (1–15), as `times` increments would: each of the key's four
   * counters goes up by `times`, stopping at 15. Lets an owner count hits where it is cheap and
   * bring them here later.
   */
  add(hash: number, times: number): void {
    const table = this.table
    const base = (Math.imul(hash, GOLDEN) >>> this.blockShift) << BLOCK_SHIFT
    for (let probe = 0; probe < 4; probe++) {
      const bits = hash >>> (probe * 5)
      const i = base + (probe << 2) + (bits & 3)
      const shift = ((bits >>> 2) & 7) << 2
      const word = table[i]!
      const counter = (word >>> shift) & 15
      table[i] = word + (Math.min(15 - counter, times) << shift)
    }
  }

  /** The estimated number of recent occurrences of the key hash (0–15, never below the truth before aging). */
  frequency(hash: number): number {
    const table = this.table
    const base = (Math.imul(hash, GOLDEN) >>> this.blockShift) << BLOCK_SHIFT
    let f = (table[base + (hash & 3)]! >>> (((hash >>> 2) & 7) << 2)) & 15
    let c = (table[base + 4 + ((hash >>> 5) & 3)]! >>> (((hash >>> 7) & 7) << 2)) & 15
    if (c < f) f = c
    c = (table[base + 8 + ((hash >>> 10) & 3)]! >>> (((hash >>> 12) & 7) << 2)) & 15
    if (c < f) f = c
    c = (table[base + 12 + ((hash >>> 15) & 3)]! >>> (((hash >>> 17) & 7) << 2)) & 15
    return c < f ? c : f
  }

  /** Halves every counter (the fraction is dropped). */
  age(): void {
    const table = this.table
    for (let i = 0; i < table.length; i++) table[i] = (table[i]! >>> 1) & HALF_MASK
  }

  /** Forgets everything (the table keeps its size). */
  clear(): void {
    this.table.fill(0)
  }

  private static clampEntries(entries: number): number {
    if (!(entries >= 1)) return 1
    return Math.min(Math.ceil(entries), MAX_ENTRIES)
  }

  private static wordsFor(entries: number): number {
    const words = ceilPow2(Math.ceil((entries * COUNTERS_PER_ENTRY) / COUNTERS_PER_WORD))
    // At least two blocks: a shift of 32 would be a shift of 0 in JavaScript.
    return Math.max(words, 2 << BLOCK_SHIFT)
  }

  private static shiftFor(words: number): number {
    return 32 - Math.log2(words >>> BLOCK_SHIFT)
  }
}
