/**
 * Spans, only when a tracer is installed: the tracer every fiber has unless the program installs
 * one (OpenTelemetry, DevTools) never exports a span, so the pipeline skips spans for it and a hit
 * costs no span at all.
 */
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type * as Tracer from "effect/Tracer"

let untraced: Tracer.Tracer | undefined

/** The tracer of a program that installed none (read on first use, not at import). @internal */
export const untracedTracer = (): Tracer.Tracer => untraced ??= Effect.runSync(Effect.tracer)

/** Whether a fiber runs with a tracer that exports spans. @internal */
export const isTraced = (fiber: Fiber.RuntimeFiber<unknown, unknown>, untracedTracer: Tracer.Tracer): boolean =>
  fiber.currentTracer !== untracedTracer

/** Runs an effect in a span when a tracer is installed. @internal */
export const traced =
  (name: string, attributes: Record<string, unknown>) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.tracerWith((tracer) =>
      tracer === untracedTracer() ? self : Effect.withSpan(self, name, { attributes, captureStackTrace: false })
    )

/** Records the outcome of a read on the current span, when a tracer is installed. @internal */
export const annotateOutcome = (outcome: "hit" | "miss" | "stale"): Effect.Effect<void> =>
  Effect.tracerWith((tracer) =>
    tracer === untracedTracer() ? Effect.void : Effect.annotateCurrentSpan("cache.outcome", outcome)
  )
