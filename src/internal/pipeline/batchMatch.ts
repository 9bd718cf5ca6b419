/**
 * The batch loader's contract: its answer names each value's key, and is matched to the keys
 * asked for by those names, never by position. A key it did not return is not found; a key it
 * was not asked for, or returned twice, fails the batch with `BatchMismatch`.
 */
import * as Effect from "effect/Effect"
import { BatchMismatch } from "../../CacheError.js"
import type { Slot } from "./slot.js"
import { absent } from "./slot.js"
import type { Absent } from "./slot.js"

/**
 * Loads the keys at the given indices of a batch read in one call, answering with each value
 * under its caller's key (a `Map` or pairs).
 * @internal
 */
export type BatchLoader<A, E, R> = (
  indices: ReadonlyArray<number>
) => Effect.Effect<Iterable<readonly [key: string, value: A]>, E, R>

/** Matches a batch loader's answer to its slots: each slot's value, or `absent`. @internal */
export const matchAnswer = <A, E>(
  namespace: string,
  slots: ReadonlyArray<Slot<A, E>>,
  answer: Iterable<readonly [string, A]>
): Effect.Effect<Array<A | Absent>, BatchMismatch> => {
  const position = new Map<string, number>()
  for (let j = 0; j < slots.length; j++) position.set(slots[j]!.key, j)
  const values = new Array<A | Absent>(slots.length).fill(absent)
  for (const [key, value] of answer) {
    const j = position.get(key)
    if (j === undefined) {
      return Effect.fail(
        new BatchMismatch({ namespace, detail: `returned the key ${JSON.stringify(key)}, not asked for` })
      )
    }
    if (values[j] !== absent) {
      return Effect.fail(new BatchMismatch({ namespace, detail: `returned the key ${JSON.stringify(key)} twice` }))
    }
    values[j] = value
  }
  return Effect.succeed(values)
}
