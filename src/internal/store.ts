import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { StoreError } from "../CacheError.js"
import type * as CacheStore from "../CacheStore.js"

/** @internal */
export const SizeHint: CacheStore.SizeHint = Symbol.for("effect-cachekit/CacheStore/SizeHint") as CacheStore.SizeHint

/** @internal */
export const VersionHint: CacheStore.VersionHint = Symbol.for(
  "effect-cachekit/CacheStore/VersionHint"
) as CacheStore.VersionHint

const OPEN_BRACE = 0x7b
const QUOTE = 0x22
const COMMA = 0x2c
const COLON = 0x3a

/** Reads the digits at `i`; [value, index after them], or undefined when there are none. */
const digitsAt = (bytes: Uint8Array, i: number): readonly [number, number] | undefined => {
  let n = 0
  const start = i
  while (i < bytes.length && bytes[i]! >= 0x30 && bytes[i]! <= 0x39 && i - start < 16) n = n * 10 + bytes[i++]! - 0x30
  return i === start ? undefined : [n, i]
}

/** Whether `bytes` hold `"<name>":` at `i`. */
const fieldAt = (bytes: Uint8Array, i: number, name: number): boolean =>
  bytes[i] === QUOTE && bytes[i + 1] === name && bytes[i + 2] === QUOTE && bytes[i + 3] === COLON

/**
 * The version a value was written with: for bytes, the `"n"` member that follows the format and,
 * when there is one, the fence token (`{"f":<format>,"k":"<token>","n":<version>,…`, or
 * `{"f":<format>,"n":<version>,…`), for a live value its `VersionHint`; 0 for a value written
 * without one. @internal
 */
export const versionOf = (value: CacheStore.Value): number => {
  if (value instanceof Uint8Array) {
    if (value[0] !== OPEN_BRACE || !fieldAt(value, 1, 0x66)) return 0
    const format = digitsAt(value, 5)
    if (format === undefined || value[format[1]] !== COMMA) return 0
    let at = format[1] + 1
    if (fieldAt(value, at, 0x6b) && value[at + 4] === QUOTE) {
      // the fence token: a string without quotes, then a comma
      const end = value.indexOf(QUOTE, at + 5)
      if (end < 0 || value[end + 1] !== COMMA) return 0
      at = end + 2
    }
    if (!fieldAt(value, at, 0x6e)) return 0
    const version = digitsAt(value, at + 4)
    return version === undefined || value[version[1]] !== COMMA ? 0 : version[0]
  }
  const hint = (value as { [VersionHint]?: unknown })[VersionHint]
  return typeof hint === "number" ? hint : 0
}

/**
 * The longest TTL a store keeps an entry for: 365 days. Redis refuses a PX whose deadline does not
 * fit in 64 bits and memcached's deadlines end in 2038, so no TTL can mean the same on every store
 * without a bound; within a year, all of them can.
 * @internal
 */
export const MAX_TTL_MILLIS = 365 * 24 * 60 * 60 * 1000

/**
 * A TTL as every store applies it: `undefined` for no expiry (none given, or an infinite one),
 * zero or less for already expired, otherwise milliseconds, at most `MAX_TTL_MILLIS` (a longer TTL
 * is clamped to it). `NaN` when the input is no duration (`NaN`, a `[NaN, n]` pair, a string
 * `Duration` cannot read): stores refuse it with `invalidTtl`.
 * @internal
 */
export const ttlMillis = (ttl: Duration.DurationInput | undefined): number | undefined => {
  if (ttl === undefined) return undefined
  if (typeof ttl === "number") {
    if (ttl === Infinity) return undefined
    return ttl > MAX_TTL_MILLIS ? MAX_TTL_MILLIS : ttl === -Infinity ? 0 : ttl
  }
  if (Array.isArray(ttl) && (Number.isNaN(ttl[0]) || Number.isNaN(ttl[1]))) return NaN
  let duration: Duration.Duration
  try {
    duration = Duration.decode(ttl)
  } catch {
    return NaN
  }
  if (!Duration.isFinite(duration)) return undefined
  const millis = Duration.toMillis(duration)
  return millis > MAX_TTL_MILLIS ? MAX_TTL_MILLIS : millis
}

/**
 * The error of a store operation given a TTL that is no duration (`ttlMillis` gave `NaN`).
 * @internal
 */
export const invalidTtl = (store: string, operation: string, ttl: Duration.DurationInput | undefined): StoreError =>
  new StoreError({
    store,
    operation,
    reason: "command",
    detail: `the TTL ${Array.isArray(ttl) ? `[${ttl.join(", ")}]` : String(ttl)} is not a duration`
  })

/**
 * The length of a lease in whole milliseconds (rounded up), or the `StoreError` of reason
 * `"command"` that refuses it: a lease must end, and must last some time.
 * @internal
 */
export const leaseMillis = (
  store: string,
  operation: string,
  ttl: Duration.DurationInput
): number | StoreError => {
  const millis = ttlMillis(ttl)
  if (millis === undefined || Number.isNaN(millis) || millis <= 0) {
    return new StoreError({
      store,
      operation,
      reason: "command",
      detail: `a lease lasts a finite time greater than zero, got ${
        Array.isArray(ttl) ? `[${ttl.join(", ")}]` : String(ttl)
      }`
    })
  }
  return Math.ceil(millis)
}
/**
 * Whether a fenced write may replace a stored value: nothing is there, or bytes beginning with the
 * expected bytes, or the very object expected.
 * @internal
 */
export const fenceHolds = (current: CacheStore.Value | undefined, expected: CacheStore.Value | undefined): boolean => {
  if (current === undefined) return true
  if (expected === undefined) return false
  if (!(expected instanceof Uint8Array)) return current === expected
  return current instanceof Uint8Array && expected.byteLength > 0 && bytesAt(current, expected, 0)
}

/** Whether `bytes` holds `part` at offset `at`. @internal */
export const bytesAt = (bytes: Uint8Array, part: Uint8Array, at: number): boolean => {
  if (at < 0 || at + part.byteLength > bytes.byteLength) return false
  for (let i = 0; i < part.byteLength; i++) if (bytes[at + i] !== part[i]) return false
  return true
}

/** Keys per `deleteMany` when a store deletes what `keys` listed. @internal */
export const DELETE_BATCH = 1000

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

/**
 * The key prefix of a name (a store's prefix, a namespace): its own `:` and `\` escaped, then
 * `:`. A name's part of a key ends at its first unescaped `:`, so no key, however it is written,
 * reaches into another name's keys (`a` + `b:k` is `a:b:k`, `a:b` + `k` is `a\:b:k`).
 * @internal
 */
export const prefixOf = (name: string): string => name.replace(/[\\:]/g, "\\$&") + ":"
