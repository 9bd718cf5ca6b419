/**
 * The contract between the memory store and its eviction policy. The store owns the key → node
 * map and the size accounting; the policy owns the order in which nodes leave.
 */

/**
 * A stored entry as the policy sees it. Policies keep their own links on the node (the fields
 * below) so that no per-operation allocation is needed.
 * @internal
 */
export interface Node {
  readonly key: string
  /**
   * A 32-bit hash of the key, computed once when the node is created. Prefer `hashKey`: policies
   * only use its bits, and a signed value stays a small integer in V8, which is cheaper to read.
   */
  readonly hash: number
  /** Approximate size in bytes. */
  size: number
  /** Doubly-linked list links, owned by the policy. */
  prev: Node | undefined
  next: Node | undefined
  /** Which queue the node is in (policy-defined small integer). */
  queue: number
}

/** @internal */
export interface Policy {
  readonly name: "lru" | "w-tinylfu"
  /** A read found this node. Must not allocate. */
  onHit(node: Node): void
  /** A read found nothing for this key hash (frequency policies count it). */
  onMiss(hash: number): void
  /** A new node was inserted into the store. */
  onAdd(node: Node): void
  /** A node was removed by the store (delete, expiry, clear): unlink it. */
  onRemove(node: Node): void
  /** Chooses the node to evict and unlinks it; the store then drops it. */
  evict(): Node | undefined
  /** Drops all state. */
  clear(): void
}

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
 * The key hash to store in `Node.hash` and pass to `Policy.onMiss`: `hashString` as a signed 32-bit
 * integer. Same bits, but V8 stores it inline as a small integer, while an unsigned hash ≥ 2^31
 * (half of them) becomes a separate heap number: 16 more bytes per node and one more pointer to
 * follow on every W-TinyLFU hit.
 * @internal
 */
export const hashKey = (s: string): number => hashString(s) | 0
