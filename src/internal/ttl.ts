import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import { InvalidOptions } from "../CacheError.js"
import type * as Ttl from "../Ttl.js"
import * as Options from "./options.js"

/** @internal */
export const TypeId: Ttl.TypeId = Symbol.for("effect-cachekit/Ttl") as Ttl.TypeId

/** @internal */
export type TtlPolicy<A> = Ttl.Ttl<A>

/** @internal */
export const toMillisOrUndefined = (duration: Duration.Duration): number | undefined =>
  Duration.isFinite(duration) ? Duration.toMillis(duration) : undefined

/** @internal */
export const fixed = (input: Duration.DurationInput): TtlPolicy<unknown> => {
  const millis = toMillisOrUndefined(Options.duration("Ttl.fixed", "ttl", input, true))
  const result = Effect.succeed(millis)
  return { [TypeId]: TypeId, _tag: "Fixed", nominalMillis: millis, compute: () => result }
}

/** @internal */
export const jittered = (input: Duration.DurationInput, spread: number): TtlPolicy<unknown> => {
  const millis = Duration.toMillis(Options.duration("Ttl.jittered", "ttl", input))
  Options.check(
    Number.isFinite(spread) && spread >= 0 && spread < 1,
    "Ttl.jittered",
    "spread",
    `spread must be in [0, 1), got ${spread}`
  )
  const low = millis * (1 - spread)
  const high = millis * (1 + spread)
  // Random.nextRange draws from [low, high): the TTL stays inside [d·(1−spread), d·(1+spread)].
  const draw = spread === 0 ? Effect.succeed(millis) : Random.nextRange(low, high)
  return { [TypeId]: TypeId, _tag: "Jittered", nominalMillis: millis, compute: () => draw }
}

/** @internal */
export const fromValue = <A>(f: (value: A, key: string) => Duration.DurationInput): TtlPolicy<A> => ({
  [TypeId]: TypeId,
  _tag: "FromValue",
  nominalMillis: undefined,
  compute: (value, key) =>
    Effect.sync(() => {
      const input = f(value, key)
      const duration = Duration.decode(input)
      return Duration.isFinite(duration) ? Math.max(0, Duration.toMillis(duration)) : undefined
    })
})

/** @internal */
export const isTtl = (u: unknown): u is TtlPolicy<unknown> => typeof u === "object" && u !== null && TypeId in u

/** @internal */
export const fromInput = <A>(
  component: string,
  input: TtlPolicy<A> | Duration.DurationInput | undefined
): TtlPolicy<A> | undefined => {
  if (input === undefined) return undefined
  if (isTtl(input)) return input as TtlPolicy<A>
  try {
    return fixed(input as Duration.DurationInput)
  } catch (e) {
    if (e instanceof InvalidOptions) throw new InvalidOptions({ component, option: e.option, detail: e.detail })
    throw e
  }
}
