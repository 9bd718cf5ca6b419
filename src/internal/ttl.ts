import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import type * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleIntervals from "effect/ScheduleIntervals"
import { InvalidOptions } from "../CacheError.js"
import type * as Ttl from "../Ttl.js"
import * as Options from "./options.js"

/** @internal */
export const TypeId: Ttl.TypeId = Symbol.for("effect-cachekit/Ttl") as Ttl.TypeId

/** @internal */
export type TtlPolicy<A> = Ttl.Ttl<A>

/** @internal */
export type Sliding = Ttl.Sliding

/** @internal */
export const toMillisOrUndefined = (duration: Duration.Duration): number | undefined =>
  Duration.isFinite(duration) ? Duration.toMillis(duration) : undefined

/** @internal */
export const fixed = (input: Duration.DurationInput): TtlPolicy<unknown> => {
  const millis = toMillisOrUndefined(Options.duration("Ttl.fixed", "ttl", input, true))
  const result = Effect.succeed(millis)
  return { [TypeId]: TypeId, _tag: "Fixed", nominalMillis: millis, compute: () => result, sliding: undefined }
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
  return { [TypeId]: TypeId, _tag: "Jittered", nominalMillis: millis, compute: () => draw, sliding: undefined }
}

/**
 * The share of the slide by which an extension must move an entry's expiry, when no `debounce`
 * is given: a key read a thousand times a second is extended at most once per tenth of its slide.
 * @internal
 */
export const DEFAULT_DEBOUNCE_SHARE = 0.1

const isZeroDuration = (input: Duration.DurationInput): boolean => {
  if (typeof input === "number") return input === 0
  try {
    return Duration.isZero(Duration.decode(input))
  } catch {
    return false
  }
}

/** @internal */
export const sliding = (
  input: Duration.DurationInput,
  options: { readonly max: Duration.DurationInput; readonly debounce?: Duration.DurationInput | undefined }
): TtlPolicy<unknown> => {
  const component = "Ttl.sliding"
  const slideMillis = Duration.toMillis(Options.duration(component, "slide", input))
  Options.check(typeof options === "object" && options !== null, component, "max", "max is required")
  Options.check(options.max !== undefined, component, "max", "max is required (Duration.infinity: no cap)")
  const max = toMillisOrUndefined(Options.duration(component, "max", options.max, true))
  Options.check(
    max === undefined || max >= slideMillis,
    component,
    "max",
    `max (the cap) must be at least the slide (${slideMillis} ms), got ${max} ms`
  )
  let debounceMillis = slideMillis * DEFAULT_DEBOUNCE_SHARE
  if (options.debounce !== undefined) {
    // zero is allowed here (every hit that moves the expiry at all extends it); the rest as usual
    debounceMillis = isZeroDuration(options.debounce)
      ? 0
      : Duration.toMillis(Options.duration(component, "debounce", options.debounce))
    Options.check(
      debounceMillis < slideMillis,
      component,
      "debounce",
      `debounce must be shorter than the slide (${slideMillis} ms), got ${debounceMillis} ms`
    )
  }
  const result = Effect.succeed(max)
  return {
    [TypeId]: TypeId,
    _tag: "Sliding",
    nominalMillis: max,
    compute: () => result,
    sliding: { slideMillis, debounceMillis }
  }
}

/** @internal */
export const fromValue = <A>(f: (value: A, key: string) => Duration.DurationInput): TtlPolicy<A> => ({
  [TypeId]: TypeId,
  _tag: "FromValue",
  nominalMillis: undefined,
  sliding: undefined,
  compute: (value, key) =>
    Effect.sync(() => {
      const input = f(value, key)
      const duration = Duration.decode(input)
      return Duration.isFinite(duration) ? Math.max(0, Duration.toMillis(duration)) : undefined
    })
})

/** @internal */
export const fromSchedule = <A>(schedule: Schedule.Schedule<unknown, A>): TtlPolicy<A> => {
  Options.check(
    typeof schedule === "object" && schedule !== null && typeof schedule.step === "function",
    "Ttl.fromSchedule",
    "schedule",
    "schedule must be an Effect Schedule"
  )
  return {
    [TypeId]: TypeId,
    _tag: "FromSchedule",
    nominalMillis: undefined,
    sliding: undefined,
    compute: (value) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) =>
          Effect.map(schedule.step(now, value, schedule.initial), ([, , decision]) =>
            ScheduleDecision.isDone(decision)
              ? 0
              : Math.max(0, ScheduleIntervals.start(decision.intervals) - now))
      )
  }
}

/** @internal */
export const tiered = <A>(
  tiers: Readonly<Record<string, TtlPolicy<A> | Duration.DurationInput>>,
  options: {
    readonly kind: string | ((value: A, key: string) => string | undefined)
    readonly fallback: TtlPolicy<A> | Duration.DurationInput
  }
): TtlPolicy<A> => {
  const component = "Ttl.tiered"
  Options.check(typeof tiers === "object" && tiers !== null, component, "tiers", "tiers must be an object of TTLs")
  const names = Object.keys(tiers)
  Options.check(names.length > 0, component, "tiers", "tiers must name at least one kind")
  const policies = new Map<string, TtlPolicy<A>>()
  const policyOf = (option: string, input: TtlPolicy<A> | Duration.DurationInput | undefined): TtlPolicy<A> => {
    Options.check(input !== undefined, component, option, `${option} is required`)
    try {
      return fromInput(component, input)!
    } catch (e) {
      if (e instanceof InvalidOptions) throw new InvalidOptions({ component, option, detail: `${option}: ${e.detail}` })
      throw e
    }
  }
  for (const name of names) policies.set(name, policyOf(`tiers.${name}`, tiers[name]))
  const fallback = policyOf("fallback", options?.fallback)
  const kind = options.kind
  if (typeof kind === "string") {
    const policy = policies.get(kind)
    Options.check(
      policy !== undefined,
      component,
      "kind",
      `kind ${JSON.stringify(kind)} is not one of the tiers (${names.map((n) => JSON.stringify(n)).join(", ")})`
    )
    return {
      [TypeId]: TypeId,
      _tag: "Tiered",
      nominalMillis: policy!.nominalMillis,
      compute: policy!.compute,
      sliding: policy!.sliding
    }
  }
  Options.check(typeof kind === "function", component, "kind", "kind must be a tier name or a function")
  // a slide belongs to the whole namespace (its reads extend before they know the value)
  for (const [name, policy] of [...policies, ["fallback", fallback] as const]) {
    Options.check(
      policy.sliding === undefined,
      component,
      name === "fallback" ? "fallback" : `tiers.${name}`,
      `a sliding TTL needs a fixed kind: with a kind chosen per value, ${
        name === "fallback" ? "fallback" : `tier ${JSON.stringify(name)}`
      } cannot slide`
    )
  }
  return {
    [TypeId]: TypeId,
    _tag: "Tiered",
    nominalMillis: undefined,
    sliding: undefined,
    compute: (value, key) => {
      const name = kind(value, key)
      const policy = name === undefined ? fallback : (policies.get(name) ?? fallback)
      return policy.compute(value, key)
    }
  }
}

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
