import type { Policy } from "./policy.js"
import { NO_SLOT } from "./policy.js"

/** Node 0 is the list's sentinel; the entry in slot s is node s + 1. */
const FIRST = 1
/** An unlinked node's links. */
const UNLINKED = -1

/**
 * Least recently used: one circular doubly-linked list through a sentinel, most recent at its
 * `prev` end, kept in one `Int32Array` of (prev, next) pairs indexed by node. O(1) per operation,
 * 8 bytes per entry, no allocation.
 * @internal
 */
export class LruPolicy implements Policy {
  readonly name = "lru" as const
  private links = new Int32Array(2)

  grow(slots: number): void {
    const nodes = slots + FIRST
    const old = this.links
    if (nodes * 2 <= old.length) return
    const links = new Int32Array(nodes * 2).fill(UNLINKED)
    links.set(old)
    this.links = links
  }

  onHit(slot: number): void {
    const links = this.links
    const n = slot + FIRST
    const last = links[0]!
    if (last === n) return
    const p = links[n << 1]!
    const x = links[(n << 1) + 1]!
    links[(p << 1) + 1] = x
    links[x << 1] = p
    links[n << 1] = last
    links[(n << 1) + 1] = 0
    links[(last << 1) + 1] = n
    links[0] = n
  }

  onMiss(_hash: number): void {}

  onAdd(slot: number, _hash: number): void {
    const links = this.links
    const n = slot + FIRST
    const last = links[0]!
    links[n << 1] = last
    links[(n << 1) + 1] = 0
    links[(last << 1) + 1] = n
    links[0] = n
  }

  onRemove(slot: number): void {
    const n = slot + FIRST
    if (n << 1 >= this.links.length || this.links[n << 1] === UNLINKED) return
    this.unlink(n)
  }

  evict(): number {
    const victim = this.links[1]!
    if (victim === 0) return NO_SLOT
    this.unlink(victim)
    return victim - FIRST
  }

  clear(): void {
    this.links.fill(UNLINKED)
    this.links[0] = 0
    this.links[1] = 0
  }

  private unlink(n: number): void {
    const links = this.links
    const p = links[n << 1]!
    const x = links[(n << 1) + 1]!
    links[(p << 1) + 1] = x
    links[x << 1] = p
    links[n << 1] = UNLINKED
    links[(n << 1) + 1] = UNLINKED
  }
}
