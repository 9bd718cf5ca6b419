import type { Node, Policy } from "./policy.js"

/**
 * Least recently used: one intrusive doubly-linked list, most recent at the head. O(1) per
 * operation, no allocation.
 * @internal
 */
export class LruPolicy implements Policy {
  readonly name = "lru" as const
  private head: Node | undefined = undefined
  private tail: Node | undefined = undefined

  onHit(node: Node): void {
    if (this.head === node) return
    this.unlink(node)
    this.pushHead(node)
  }

  onMiss(_hash: number): void {}

  onAdd(node: Node): void {
    this.pushHead(node)
  }

  onRemove(node: Node): void {
    this.unlink(node)
  }

  evict(): Node | undefined {
    const victim = this.tail
    if (victim !== undefined) this.unlink(victim)
    return victim
  }

  clear(): void {
    this.head = undefined
    this.tail = undefined
  }

  private pushHead(node: Node): void {
    node.prev = undefined
    node.next = this.head
    if (this.head !== undefined) this.head.prev = node
    this.head = node
    if (this.tail === undefined) this.tail = node
  }

  private unlink(node: Node): void {
    const { next, prev } = node
    if (prev !== undefined) prev.next = next
    else if (this.head === node) this.head = next
    if (next !== undefined) next.prev = prev
    else if (this.tail === node) this.tail = prev
    node.prev = undefined
    node.next = undefined
  }
}
