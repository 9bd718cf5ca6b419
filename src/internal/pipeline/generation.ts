/**
 * The namespace's version, for `versioned` namespaces: the keys of each version are a generation
 * of their own, made anew when the version changes. The version is trusted for a window once
 * read; when the store cannot tell it, the last version known is kept, or, before any, a version
 * of this process alone, where nothing is found.
 */
import * as Effect from "effect/Effect"
import type { CacheError } from "../../CacheError.js"
import type { Versions } from "../versions.js"
import { freshToken, namespaceKey } from "../versions.js"
import type { OnStoreFailure } from "./storeErrors.js"

/** @internal */
export interface GenerationOptions<G> {
  readonly namespace: string
  readonly versioned: boolean
  readonly versions: Versions
  readonly now: () => number
  /** How long a version read from the store is trusted. */
  readonly windowMillis: number
  readonly onStoreFailure: OnStoreFailure
  /** The generation of a version (undefined: the unversioned namespace's one). */
  readonly make: (token: string | undefined) => G
}

/** @internal */
export interface Generations<G> {
  /** The generation last known. */
  readonly current: () => G
  /** Runs `f` with the current generation: no work for an unversioned namespace. */
  readonly with: <B, E, R>(f: (g: G) => Effect.Effect<B, E, R>) => Effect.Effect<B, E | CacheError, R>
}

/** @internal */
export const makeGenerations = <G extends { readonly token: string | undefined }>(
  options: GenerationOptions<G>
): Generations<G> => {
  const { make, now, onStoreFailure, versioned, versions, windowMillis } = options
  let gen = make(undefined)
  const versionKey = namespaceKey(options.namespace)

  /** The generation of the namespace's version known here within the window, if any. */
  const known = (): G | undefined => {
    const token = versions.known(versionKey, now(), windowMillis)
    if (token === undefined) return undefined
    if (token !== gen.token) gen = make(token)
    return gen
  }
  /** The generation of the namespace's current version, read from the store when not known here. */
  const fetched: Effect.Effect<G, CacheError> = Effect.matchEffect(
    Effect.suspend(() => versions.fetch([versionKey], now())),
    {
      onFailure: (error) =>
        Effect.zipRight(
          onStoreFailure("read", error, undefined),
          gen.token !== undefined ? Effect.succeed(gen) : Effect.map(freshToken, (token) => (gen = make(token)))
        ),
      onSuccess: ([token]) => Effect.sync(() => token === gen.token ? gen : (gen = make(token!)))
    }
  )
  return {
    current: () => gen,
    with: <B, E, R>(f: (g: G) => Effect.Effect<B, E, R>): Effect.Effect<B, E | CacheError, R> => {
      if (!versioned) return f(gen)
      const found = known()
      return found !== undefined ? f(found) : Effect.flatMap(fetched, f)
    }
  }
}
