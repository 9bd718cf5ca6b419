/**
 * The writes of a load's outcome, through the store's key order: loaded values (and, with
 * negative caching, the failures its options accept) are stored only while their loads are still
 * current, i.e. no write or invalidation of their keys came since.
 */
import * as Effect from "effect/Effect"
import type { CacheError } from "../../CacheError.js"
import type { Fenced } from "./fence.js"
import type { KeyOrder, Superseding } from "./keyOrder.js"
import type { Negative } from "./types.js"
import type { Writer } from "./write.js"

/**
 * Stores loaded values, and with negative caching the failures its options accept, whose loads
 * are still current (no write or invalidation of their keys came since), in the key order of the
 * store.
 * @internal
 */
export const makeLoadedWrites = <A>(order: KeyOrder, writer: Writer<A>, negative: Negative | undefined) => ({
  storeLoaded: (
    loaded: ReadonlyArray<{ readonly load: Superseding & Fenced; readonly key: string; readonly value: A }>,
    elapsed: number
  ): Effect.Effect<void, CacheError> =>
    order.writeLoaded(
      loaded,
      (current) =>
        writer.writeLoaded(
          current.map((l) => ({ key: l.key, full: l.load.full, value: l.value, load: l.load })),
          elapsed
        )
    ),
  storeFailed: negative === undefined ? undefined : (
    load: Superseding & Fenced,
    key: string,
    error: unknown,
    elapsed: number
  ): Effect.Effect<void, CacheError> =>
    negative.when(error)
      ? order.writeLoaded(
        [{ load }],
        () => writer.writeFailure(key, load.full, error, negative.ttlMillis, elapsed, load)
      )
      : Effect.void
})
