import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import { InvalidOptions } from "../CacheError.js"
import type * as Ttl from "../Ttl.js"

/** @internal */
export const TypeId: Ttl.TypeId = Symbol.for("effect-cachekit/Ttl") as Ttl.TypeId

/** @internal */
export type TtlPolicy<A> = Ttl.Ttl<A>

/**
 * Decodes a duration given by a user, rejecting what makes no sense: unparsable input, NaN,
 * zero and negative durations, and infinity unless allowed.
 * @internal
 */
export const decodePositive = (
  component: string,
  what: string,
  input: Duration.DurationInput,
  allowInfinite = false
): Duration.Duration => {
  if (typeof input === "number" && Number.isNaN(input)) {
    throw new InvalidOptions({ component, detail: `${what} is NaN` })
  }
  let duration: Duration.Duration
  try {
    duration = Duration.decode(input)
  } catch {
    throw new InvalidOptions({ component, detail: `${what} is not a duration: ${String(input)}` })
  }
  if (!Duration.isFinite(duration)) {
    if (allowInfinite) return duration
    throw new InvalidOptions({ component, detail: `${what} must be finite` })
  }
  if (!Duration.greaterThan(duration, Duration.zero)) {
    throw new InvalidOptions({ component, detail: `${what} must be greater than zero, got ${String(input)}` })
  }
  return duration
}

/** Rejects an option that, when given, is not a finite, positive duration. @internal */
export const assertPositiveDuration = (
  component: string,
  what: string,
  input: Duration.DurationInput | undefined
): void => {
  if (input !== undefined) decodePositive(component, what, input)
}

/** @internal */
export const toMillisOrUndefined = (duration: Duration.Duration): number | undefined =>
  Duration.isFinite(duration) ? Duration.toMillis(duration) : undefined

/** @internal */
export const fixed = (input: Duration.DurationInput): TtlPolicy<unknown> => {
  const millis = toMillisOrUndefined(decodePositive("Ttl.fixed", "ttl", input, true))
  const result = Effect.succeed(millis)
  return { [TypeId]: TypeId, _tag: "Fixed", nominalMillis: millis, compute: () => result }
}

/** @internal */
export const jittered = (input: Duration.DurationInput, spread: number): TtlPolicy<unknown> => {
  const millis = Duration.toMillis(decodePositive("Ttl.jittered", "ttl", input))
  if (!(Number.isFinite(spread) && spread >= 0 && spread < 1)) {
    throw new InvalidOptions({ component: "Ttl.jittered", detail: `spread must be in [0, 1), got ${spread}` })
  }
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
    if (e instanceof InvalidOptions) throw new InvalidOptions({ component, detail: e.detail })
    throw e
  }
}
