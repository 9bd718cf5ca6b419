/**
 * The loader stack, built once from the options and applied alike to a single `lookup` and a
 * batch `lookupMany`: the load timeout, the load counters and histogram (failed loads included),
 * and a span when a tracer is installed.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { LoadTimeout } from "../../CacheError.js"
import type { Counters } from "./stats.js"
import { traced } from "./tracing.js"

/** @internal */
export interface LoadOptions {
  readonly namespace: string
  readonly loadTimeoutMillis: number | undefined
  readonly now: () => number
  readonly counters: Counters
  readonly spanAttributes: Record<string, unknown>
}

/**
 * Runs a loader through the stack; `then` gets its value and how long it took (the δ that early
 * recompute and the envelope keep).
 * @internal
 */
export type RunLoad = <B, C, E, R, E2, R2>(
  keys: ReadonlyArray<string>,
  loader: Effect.Effect<B, E, R>,
  then: (value: B, elapsedMillis: number) => Effect.Effect<C, E2, R2>
) => Effect.Effect<C, E | E2 | LoadTimeout, R | R2>

const describeKeys = (keys: ReadonlyArray<string>): string =>
  keys.length === 1 ? keys[0]! : `${keys[0]} and ${keys.length - 1} more keys`

/** @internal */
export const makeRunLoad = (options: LoadOptions): RunLoad => {
  const { counters, namespace, now } = options
  const timeout = options.loadTimeoutMillis === undefined ? undefined : Duration.millis(options.loadTimeoutMillis)
  return <B, C, E, R, E2, R2>(
    keys: ReadonlyArray<string>,
    loader: Effect.Effect<B, E, R>,
    then: (value: B, elapsedMillis: number) => Effect.Effect<C, E2, R2>
  ): Effect.Effect<C, E | E2 | LoadTimeout, R | R2> => {
    const bounded: Effect.Effect<B, E | LoadTimeout, R> = timeout === undefined ? loader : Effect.timeoutFail(loader, {
      duration: timeout,
      onTimeout: () =>
        new LoadTimeout({ namespace, key: describeKeys(keys), timeoutMillis: options.loadTimeoutMillis! })
    })
    const attributes = keys.length === 1
      ? { ...options.spanAttributes, "cache.key": keys[0] }
      : { ...options.spanAttributes, "cache.keys": keys.length }
    return Effect.suspend(() => {
      counters.load()
      const start = now()
      return Effect.flatMap(
        Effect.onExit(bounded, (exit) => Effect.sync(() => counters.loadEnded(now() - start, Exit.isFailure(exit)))),
        (value) => then(value, now() - start)
      )
    }).pipe(traced(keys.length === 1 ? "cachekit.load" : "cachekit.loadMany", attributes))
  }
}
