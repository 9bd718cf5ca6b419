import { LruPolicy } from "./lru.js"
import type { Policy } from "./policy.js"
import { WTinyLfuPolicy } from "./wtinylfu.js"

/**
 * The eviction policies a memory store can use: `"lru"` (least recently used) or `"w-tinylfu"`
 * (a small LRU window in front of a frequency-filtered segmented LRU; see docs/eviction.md).
 * @internal
 */
export type EvictionKind = "lru" | "w-tinylfu"

/**
 * Every accepted `EvictionKind`, for validating options that arrive untyped.
 * @internal
 */
export const evictionKinds: ReadonlyArray<EvictionKind> = ["lru", "w-tinylfu"]

/**
 * Creates a fresh policy for a store that holds at most `capacity` entries (`Infinity` when only
 * bytes are bounded).
 * @internal
 */
export const makePolicy = (kind: EvictionKind, capacity: number): Policy =>
  kind === "lru" ? new LruPolicy() : new WTinyLfuPolicy(capacity)
