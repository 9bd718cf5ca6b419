/**
 * A resource shared by every test of a file: acquired once before the first test (a failure
 * fails the file loudly), released after the last one.
 */
import { afterAll, beforeAll } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"

export const fixture = <A, E>(acquire: Effect.Effect<A, E, Scope.Scope>): () => A => {
  const scope = Effect.runSync(Scope.make())
  let value: { readonly current: A } | undefined
  beforeAll(async () => {
    value = { current: await Effect.runPromise(Scope.extend(acquire, scope)) }
  })
  afterAll(async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })
  return () => {
    if (value === undefined) throw new Error("the shared test resource was not acquired")
    return value.current
  }
}
