/**
 * Who owns the fibers a pipeline forks (shared loads, background refreshes): the scope of the
 * layer that made the cache, so closing it stops them.
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"

/** How background work and shared loads are forked. @internal */
export type Forker = <X, E, R>(effect: Effect.Effect<X, E, R>) => Effect.Effect<Fiber.RuntimeFiber<X, E>, never, R>

/**
 * A forker whose fibers belong to a scope: closing the scope interrupts the ones still running,
 * and a fork after it closed runs nothing. Cheaper than `Effect.forkIn` per fork (no child scope
 * per load): the fibers are kept in a set that one finalizer of the scope interrupts.
 * @internal
 */
export const forkerIn = (scope: Scope.Scope): Effect.Effect<Forker> =>
  Effect.gen(function*() {
    const running = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
    let closed = false
    yield* Scope.addFinalizer(
      scope,
      Effect.suspend(() => {
        closed = true
        const fibers = Array.from(running)
        running.clear()
        return Fiber.interruptAll(fibers)
      })
    )
    return <X, E, R>(effect: Effect.Effect<X, E, R>) =>
      Effect.map(Effect.forkDaemon(closed ? Effect.interrupt : effect), (fiber) => {
        if (closed) return fiber
        running.add(fiber as Fiber.RuntimeFiber<unknown, unknown>)
        fiber.addObserver(() => running.delete(fiber as Fiber.RuntimeFiber<unknown, unknown>))
        return fiber
      })
  })

/** A forker for pipelines with no scope of their own (`Cache.cached`): daemon fibers. @internal */
export const daemonForker: Forker = (effect) => Effect.forkDaemon(effect)
