import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type { StoreFailure } from "../CacheError.js"
import type { Service, Value } from "../CacheStore.js"

/** @internal */
export const SizeHint: unique symbol = Symbol.for("effect-cachekit/CacheStore/SizeHint") as never

/** @internal */
export const ttlMillis = (ttl: Duration.DurationInput | undefined): number | undefined => {
  if (ttl === undefined) return undefined
  if (typeof ttl === "number") return Number.isFinite(ttl) ? ttl : (ttl > 0 ? undefined : 0)
  const duration = Duration.decode(ttl)
  if (!Duration.isFinite(duration)) return undefined
  return Duration.toMillis(duration)
}

/** @internal */
export const globToRegExp = (pattern: string): RegExp => {
  let out = "^"
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === "\\" && i + 1 < pattern.length) {
      out += escapeRegExp(pattern[++i]!)
    } else if (c === "*") {
      out += "[\\s\\S]*"
    } else if (c === "?") {
      out += "[\\s\\S]"
    } else if (c === "[") {
      const end = pattern.indexOf("]", i + 1)
      if (end === -1) {
        out += "\\["
      } else {
        let body = pattern.slice(i + 1, end)
        const negate = body.startsWith("^") || body.startsWith("!")
        if (negate) body = body.slice(1)
        out += `[${negate ? "^" : ""}${body.replace(/\\/g, "\\\\").replace(/\]/g, "\\]")}]`
        i = end
      }
    } else {
      out += escapeRegExp(c)
    }
  }
  return new RegExp(out + "$")
}

/** @internal */
export const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&")

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
 * A lower-level read that remote stores may offer next to `get`: it registers a read and calls
 * `callback` once with the outcome, from the callback that completes the read (for a store that
 * coalesces reads, the one that completes a whole batch). The load pipeline uses it to decide a
 * hit or a miss right there and resume the reading fiber with its answer: one Effect step per
 * read instead of the several a `get` followed by a continuation costs.
 *
 * `before`, when given, must run before the outcome is acted upon (log lines of the store's
 * circuit breaker, emitted in the reader's fiber).
 * @internal
 */
export type ReadCallback = (
  value: Value | null,
  error: StoreFailure | undefined,
  before: Effect.Effect<void> | undefined
) => void

/** @internal */
export const ReadWith: unique symbol = Symbol.for("effect-cachekit/ReadWith")

/** @internal */
export interface HasReadWith {
  readonly [ReadWith]: {
    /** The `get` this read belongs to. */
    readonly get: Service["get"]
    readonly read: (key: string, callback: ReadCallback) => void
  }
}

/**
 * The callback read of a store, when it has one and it belongs to the store's own `get` (a
 * wrapper that copies a store and replaces `get` must not be bypassed). @internal
 */
export const readWithOf = (store: Service): ((key: string, callback: ReadCallback) => void) | undefined => {
  const member = (store as Partial<HasReadWith>)[ReadWith]
  return member !== undefined && member.get === store.get ? member.read : undefined
}
