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
    return { [TypeId]: TypeId, _tag: "Tiered", nominalMillis: policy!.nominalMillis, compute: policy!.compute }
  }
  Options.check(typeof kind === "function", component, "kind", "kind must be a tier name or a function")
  return {
    [TypeId]: TypeId,
    _tag: "Tiered",
    nominalMillis: undefined,
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
