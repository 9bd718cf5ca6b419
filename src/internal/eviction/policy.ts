/**
 * The contract between the memory store and its eviction policy. The store owns the key → slot
 * map, the entries (kept by slot in parallel arrays) and the size accounting; the policy owns the
 * order in which slots leave, in typed arrays of its own indexed by slot, so that no entry costs an
 * object and a hit allocates nothing.
 */

/** What `Policy.evict` returns when there is nothing to evict. @internal */
export const NO_SLOT = -1

/** @internal */
export interface Policy {
  readonly name: "lru" | "w-tinylfu"
  /** Makes room for slots `0 … slots − 1`; called before the store first uses a slot beyond them. */
  grow(slots: number): void
  /** A read found the entry in this slot. Must not allocate. */
  onHit(slot: number): void
  /** A read found nothing for this key hash (frequency policies count it). */
  onMiss(hash: number): void
  /** A new entry was stored in this slot; `hash` is `hashKey` of its key. */
  onAdd(slot: number, hash: number): void
  /** The store removed the entry in this slot (delete, expiry, clear): unlink it. */
  onRemove(slot: number): void
  /** Chooses the slot to evict and unlinks it, or returns `NO_SLOT`; the store then drops it. */
  evict(): number
  /** Drops all state. */
  clear(): void
}

/**
 * The length to grow a slot array to so that it holds `slots` slots: doubling (so growth costs
 * O(1) per slot), capped at `limit`, the most slots the store can ever use.
 * @internal
 */
export const grownLength = (current: number, slots: number, limit: number): number =>
  Math.max(slots, Math.min(limit, Math.max(16, current * 2)))

/**
 * A 32-bit FNV-1a hash of a string, spread with a final mix. Used for sketches and sharding.
 * @internal
 */
export const hashString = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * The key hash to pass to `Policy.onAdd` and `Policy.onMiss`: `hashString` as a signed 32-bit
 * integer. Same bits, but it fits the policies' `Int32Array`s, and it stays a small integer in V8
 * where an unsigned hash ≥ 2^31 (half of them) would become a heap number.
 * @internal
 */
export const hashKey = (s: string): number => hashString(s) | 0
