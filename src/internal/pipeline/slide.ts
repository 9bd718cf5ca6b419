/**
 * Sliding TTLs (`Ttl.sliding`): a fresh hit extends the entry's life in the store to
 * `now + slide`, never past its `staleUntil` (the cap, plus the windows that keep it after), when
 * that moves its expiry by more than the debounce. The entry's `freshUntil` is its cap and never
 * moves: whether an entry is still alive is the store's to say (an idle entry is gone), whether
 * it is still fresh the envelope's, so a slid entry reads fresh in every process.
 *
 * A store that reads and extends in one command (`getAndExpire`) extends within the read itself;
 * the others extend after the hit: at once in an in-process store, in the background otherwise.
 */
import * as Effect from "effect/Effect"
import * as CacheStore from "../../CacheStore.js"
import type { Sliding } from "../ttl.js"
import type { Entry } from "./envelope.js"
import type { Forker } from "./fork.js"

/** @internal */
export interface Slider {
  readonly slideMillis: number
  /** Whether a hit at `t` should extend the entry (its debounce has passed). */
  readonly due: (entry: Entry<unknown>, t: number) => boolean
  /** The TTL, in millis, an extension at `t` gives the entry in the store. */
  readonly ttlAt: (entry: Entry<unknown>, t: number) => number
  /**
   * A fresh hit at `t`: when its extension is due, queues it (to run with `flush`) and records
   * it on the entry; true when one was queued. Synchronous and allocation-free when not due.
   */
  readonly hit: (full: string, entry: Entry<unknown>, t: number) => boolean
  /** Sends the queued extensions: `expire`, inline on an in-process store, else in the background. */
  readonly flush: Effect.Effect<void>
}

/** The store TTL of an entry written at `t` that slides: its slide, or less near its end. @internal */
export const writtenTtl = (sliding: Sliding, t: number, staleUntil: number): number =>
  Math.min(sliding.slideMillis, staleUntil - t)

/** @internal */
export const makeSlider = (
  store: CacheStore.Service,
  sliding: Sliding | undefined,
  fork: Forker
): Slider | undefined => {
  if (sliding === undefined) return undefined
  const { debounceMillis, slideMillis } = sliding
  const inProcess = CacheStore.directReadOf(store)?._tag === "Sync"
  /** Store keys and TTLs, in pairs. */
  const pending: Array<string | number> = []
  const due = (entry: Entry<unknown>, t: number) => t - entry.slidAt > debounceMillis
  const ttlAt = (entry: Entry<unknown>, t: number) => Math.min(slideMillis, entry.staleUntil - t)
  const flush: Effect.Effect<void> = Effect.suspend(() => {
    if (pending.length === 0) return Effect.void
    const queued = pending.splice(0, pending.length)
    const run = Effect.forEach(
      Array.from({ length: queued.length / 2 }, (_, i) => i * 2),
      // a failed extension is harmless: the entry lives its slide from the last one that worked
      (i) => Effect.ignore(store.expire(queued[i] as string, Math.max(1, Math.ceil(queued[i + 1] as number)))),
      { discard: true }
    )
    return inProcess ? run : Effect.asVoid(fork(run))
  })
  return {
    slideMillis,
    due,
    ttlAt,
    hit: (full, entry, t) => {
      if (!due(entry, t)) return false
      const ttl = ttlAt(entry, t)
      if (!(ttl > 0)) return false
      entry.slidAt = t
      pending.push(full, ttl)
      return true
    },
    flush
  }
}
