import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as CacheStore from "../CacheStore.js"

/** @internal */
export const SizeHint: CacheStore.SizeHint = Symbol.for("effect-cachekit/CacheStore/SizeHint") as CacheStore.SizeHint

/** @internal */
export const ttlMillis = (ttl: Duration.DurationInput | undefined): number | undefined => {
  if (ttl === undefined) return undefined
  if (typeof ttl === "number") return Number.isFinite(ttl) ? ttl : (ttl > 0 ? undefined : 0)
  const duration = Duration.decode(ttl)
  if (!Duration.isFinite(duration)) return undefined
  return Duration.toMillis(duration)
}

/** @internal */
export const escapeGlob = (s: string): string => s.replace(/[*?[\]\\]/g, "\\$&")

/** @internal */
export const approximateSize = (value: unknown): number => {
  if (value instanceof Uint8Array) return value.byteLength
  if (typeof value === "object" && value !== null && SizeHint in value) {
    const hint = (value as { [SizeHint]: unknown })[SizeHint]
    if (typeof hint === "number") return hint
  }
  return 64
}

/**
 * A store made in a scope, with that scope recorded on it (`Service.scope`), so work done on
 * its behalf by combinators without a scope of their own stops when it closes.
 * @internal
 */
export const inScope = <S extends { readonly scope?: Scope.Scope | undefined }, E, R>(
  make: Effect.Effect<S, E, R>
): Effect.Effect<S, E, R | Scope.Scope> => Effect.zipWith(make, Effect.scope, (store, scope) => ({ ...store, scope }))
