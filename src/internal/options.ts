/**
 * How options are checked, for every public constructor and layer, and how a bad option is
 * reported:
 *
 * - `make(options)`, `layer(options)`, the `Ttl` constructors and `HashRing.make` throw
 *   `InvalidOptions` when they are called, before anything is built or opened;
 * - `layerConfig(config)` reads the options, runs that same constructor, and fails the layer with a
 *   `ConfigError` whose path is the option (`InvalidData`), never with a defect.
 *
 * Each component lists its own rules with the checks below, next to the constants they use.
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { InvalidOptions } from "../CacheError.js"

/** Throws `InvalidOptions` for `option` of `component` when `ok` is false. @internal */
export const check = (ok: boolean, component: string, option: string, detail: string): void => {
  if (!ok) throw new InvalidOptions({ component, option, detail })
}

/**
 * Decodes a duration given by a user, rejecting what makes no sense: unparsable input, NaN, zero
 * and negative durations, and infinity unless allowed.
 * @internal
 */
export const duration = (
  component: string,
  option: string,
  input: Duration.DurationInput,
  allowInfinite = false
): Duration.Duration => {
  check(!(typeof input === "number" && Number.isNaN(input)), component, option, `${option} is NaN`)
  let decoded: Duration.Duration
  try {
    decoded = Duration.decode(input)
  } catch {
    throw new InvalidOptions({ component, option, detail: `${option} is not a duration: ${String(input)}` })
  }
  if (!Duration.isFinite(decoded)) {
    check(allowInfinite, component, option, `${option} must be finite`)
    return decoded
  }
  check(
    Duration.greaterThan(decoded, Duration.zero),
    component,
    option,
    `${option} must be greater than zero, got ${String(input)}`
  )
  return decoded
}

/** Rejects an option that, when given, is not a finite, positive duration. @internal */
export const optionalDuration = (
  component: string,
  option: string,
  input: Duration.DurationInput | undefined
): void => {
  if (input !== undefined) duration(component, option, input)
}

/** Rejects an option that, when given, is not an integer in `[min, max]`. @internal */
export const optionalInteger = (
  component: string,
  option: string,
  value: number | undefined,
  min: number,
  max = Number.MAX_SAFE_INTEGER
): void => {
  if (value === undefined) return
  check(
    Number.isInteger(value) && value >= min && value <= max,
    component,
    option,
    max === Number.MAX_SAFE_INTEGER
      ? `${option} must be an integer ≥ ${min}, got ${value}`
      : `${option} must be an integer from ${min} to ${max}, got ${value}`
  )
}

/**
 * The `layerConfig` of a `layer`: reads the options from `Config` and builds the layer with
 * `layer`, whose checks are the same as for options given directly. A rejected option fails with
 * a `ConfigError` at the option's path (`circuitBreaker.resetAfter` → `["circuitBreaker",
 * "resetAfter"]`) that carries the `InvalidOptions` message.
 * @internal
 */
export const layerConfig = <A, L>(
  config: Config.Config.Wrap<A>,
  layer: (options: A) => L
): Effect.Effect<L, ConfigError.ConfigError> =>
  Effect.flatMap(Config.unwrap(config), (options) =>
    Effect.suspend(() => {
      try {
        return Effect.succeed(layer(options))
      } catch (error) {
        return error instanceof InvalidOptions ? Effect.fail(toConfigError(error)) : Effect.die(error)
      }
    }))

/** @internal */
export const toConfigError = (error: InvalidOptions): ConfigError.ConfigError =>
  ConfigError.InvalidData(error.option.split("."), error.message)
