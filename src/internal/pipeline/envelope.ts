/**
 * The envelope: a cached value with its metadata, kept as an object by live stores and as JSON
 * bytes by byte stores. The JSON form is lossless for every value a Schema can encode to
 * (`undefined`, `NaN`, `±Infinity`, `-0`, `Date`, `bigint` included), and a malformed envelope
 * never decodes: a read of one is a miss.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { hashString } from "../eviction/policy.js"
import { SizeHint } from "../store.js"

/**
 * A cached value with its metadata. Live stores keep this object as it is; byte stores get its
 * JSON envelope (`toBytes`).
 * @internal
 */
export class Entry<A> {
  readonly [SizeHint]: number
  constructor(
    readonly value: A,
    /** Clock millis when the value was written. */
    readonly createdAt: number,
    /** Clock millis until which the value is fresh (Infinity: forever). */
    readonly freshUntil: number,
    /** Clock millis until which a stale value may still be served while it is refreshed. */
    readonly staleUntil: number,
    /** How long the load that produced the value took, in millis. */
    readonly loadTime: number,
    readonly tags: ReadonlyArray<string>,
    /**
     * The versions of the tags when the value was written, two per tag in the order of `tags`:
     * the hard one (a change makes the entry a miss) and the soft one (a change makes it stale).
     */
    readonly versions: ReadonlyArray<string>,
    /** Fingerprint of the Schema the value was encoded with. */
    readonly fingerprint: string,
    size: number
  ) {
    this[SizeHint] = size
  }
}

/** The same entry with another end of freshness (made stale, or kept by fail-safe's throttle). @internal */
export const withFreshUntil = <A>(entry: Entry<A>, freshUntil: number): Entry<A> =>
  new Entry(
    entry.value,
    entry.createdAt,
    freshUntil,
    entry.staleUntil,
    entry.loadTime,
    entry.tags,
    entry.versions,
    entry.fingerprint,
    entry[SizeHint]
  )

/** @internal */
export interface Codec<A> {
  readonly fingerprint: string
  /**
   * Encodes the value with its Schema into the value field of the envelope (`"v":…` or `"x":…`),
   * or an error message when the value cannot be stored.
   */
  readonly encode: (value: A) => Either.Either<string, string>
  /**
   * What a byte store gives back for a value: its encoding decoded again. Live stores keep this
   * instead of the caller's object, so a value comes back the same from every store (properties
   * the Schema does not declare dropped alike) and a caller's later mutation does not reach it.
   */
  readonly normalize: (value: A) => Either.Either<A, string>
  readonly toBytes: (entry: Entry<A>, encodedField: string) => Uint8Array
  readonly fromBytes: (bytes: Uint8Array) => Either.Either<Entry<A>, string>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: true })

/**
 * Envelope format version, bumped when the byte layout changes. 2: the value is either plain
 * JSON (`"v"`) or tagged JSON (`"x"`) for what plain JSON cannot say. 3: the versions of the
 * entry's tags (`"g"`, two per tag) are stored with them.
 */
const FORMAT = 3

const finiteOrNull = (n: number): number | null => Number.isFinite(n) ? n : null

// -------------------------------------------------------------------------------------------------
// lossless JSON

/** Whether plain `JSON.stringify` keeps this value exactly (the common case, checked first). */
const isPlainJson = (u: unknown): boolean => {
  switch (typeof u) {
    case "string":
    case "boolean":
      return true
    case "number":
      return Number.isFinite(u) && !Object.is(u, -0)
    case "object": {
      if (u === null) return true
      if (Array.isArray(u)) {
        for (let i = 0; i < u.length; i++) {
          if (!(i in u) || !isPlainJson(u[i])) return false
        }
        return true
      }
      const proto = Object.getPrototypeOf(u)
      if (proto !== Object.prototype && proto !== null) return false
      if ("toJSON" in u) return false
      for (const key in u) {
        if (!isPlainJson((u as Record<string, unknown>)[key])) return false
      }
      return true
    }
    default:
      return false
  }
}

/** Marks an array of the tagged form, and a special value. */
const ARRAY = "#"
const SPECIAL = "$"

class Unstorable extends Error {}

/** Sets a property as data, `__proto__` included (an assignment would set the prototype). */
const define = (target: Record<string, unknown>, key: string, value: unknown): void => {
  if (key === "__proto__") {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  } else {
    target[key] = value
  }
}

/**
 * The tagged form: every array starts with `"#"`, and what plain JSON cannot say is an array
 * starting with `"$"` (`["$","undefined"]`, `["$","number","NaN"]`, `["$","date",ms]`, …).
 */
const tag = (u: unknown): unknown => {
  switch (typeof u) {
    case "string":
    case "boolean":
      return u
    case "number":
      return Number.isFinite(u) && !Object.is(u, -0) ? u : [SPECIAL, "number", String(u === 0 ? "-0" : u)]
    case "undefined":
      return [SPECIAL, "undefined"]
    case "bigint":
      return [SPECIAL, "bigint", u.toString()]
    case "object": {
      if (u === null) return null
      if (Array.isArray(u)) {
        const out: Array<unknown> = [ARRAY]
        for (let i = 0; i < u.length; i++) out.push(tag(u[i]))
        return out
      }
      if (u instanceof Date) return [SPECIAL, "date", finiteOrNull(u.getTime())]
      const proto = Object.getPrototypeOf(u)
      if (proto !== Object.prototype && proto !== null) {
        throw new Unstorable(`a ${proto?.constructor?.name ?? "object"} cannot be stored (only plain data can)`)
      }
      const out: Record<string, unknown> = {}
      for (const key of Object.keys(u)) define(out, key, tag((u as Record<string, unknown>)[key]))
      return out
    }
    default:
      throw new Unstorable(`a ${typeof u} cannot be stored`)
  }
}

const special = (parts: ReadonlyArray<unknown>): unknown => {
  switch (parts[1]) {
    case "undefined":
      return undefined
    case "number":
      switch (parts[2]) {
        case "NaN":
          return NaN
        case "Infinity":
          return Infinity
        case "-Infinity":
          return -Infinity
        case "-0":
          return -0
      }
      break
    case "bigint":
      if (typeof parts[2] === "string" && /^-?\d+$/.test(parts[2])) return BigInt(parts[2])
      break
    case "date":
      if (parts[2] === null) return new Date(NaN)
      if (typeof parts[2] === "number") return new Date(parts[2])
      break
  }
  throw new Unstorable("malformed tagged value")
}

const untag = (u: unknown): unknown => {
  if (typeof u !== "object" || u === null) return u
  if (Array.isArray(u)) {
    if (u[0] === ARRAY) {
      const out = new Array<unknown>(u.length - 1)
      for (let i = 1; i < u.length; i++) out[i - 1] = untag(u[i])
      return out
    }
    if (u[0] === SPECIAL) return special(u)
    throw new Unstorable("malformed tagged array")
  }
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(u)) define(out, key, untag((u as Record<string, unknown>)[key]))
  return out
}

/** The value field of an envelope for an encoded value. */
const valueField = (encoded: unknown): Either.Either<string, string> => {
  try {
    return isPlainJson(encoded)
      ? Either.right(`"v":${JSON.stringify(encoded)}`)
      : Either.right(`"x":${JSON.stringify(tag(encoded))}`)
  } catch (e) {
    return Either.left(
      `the encoded value cannot be stored: ${e instanceof Error ? e.message : String(e)}`
    )
  }
}

// -------------------------------------------------------------------------------------------------
// the codec

/**
 * What a namespace's entries are checked against: the user's `schemaVersion` when given, else a
 * hash of the Schema's structure (its type and its encoded side).
 * @internal
 */
export const fingerprintOf = (schema: Schema.Schema.Any, schemaVersion?: string | number): string =>
  schemaVersion !== undefined
    ? `v:${schemaVersion}`
    : hashString(String(schema.ast)).toString(36) + hashString(String(Schema.encodedSchema(schema).ast)).toString(36)

interface Envelope {
  readonly f?: unknown
  readonly h?: unknown
  readonly c?: unknown
  readonly u?: unknown
  readonly s?: unknown
  readonly l?: unknown
  readonly t?: unknown
  readonly g?: unknown
  readonly v?: unknown
  readonly x?: unknown
}

const isTime = (u: unknown): u is number | null => u === null || (typeof u === "number" && !Number.isNaN(u))

/** Checks the fields of a parsed envelope; the reason it is malformed, or undefined. */
const malformed = (env: Envelope): string | undefined => {
  if (typeof env.c !== "number" || Number.isNaN(env.c)) return "its write time is missing"
  if (!isTime(env.u) || !isTime(env.s)) return "its freshness fields are missing or not numbers"
  if (typeof env.l !== "number" || Number.isNaN(env.l)) return "its load time is missing"
  if (!Array.isArray(env.t) || !env.t.every((t) => typeof t === "string")) return "its tags are malformed"
  if (
    !Array.isArray(env.g) || env.g.length !== 2 * env.t.length || !env.g.every((g) => typeof g === "string")
  ) return "its tag versions are malformed"
  if (("v" in env) === ("x" in env)) return "it holds no value, or two"
  return undefined
}

/** @internal */
export const makeCodec = <A, I>(schema: Schema.Schema<A, I, never>, schemaVersion?: string | number): Codec<A> => {
  const fingerprint = fingerprintOf(schema, schemaVersion)
  const encodeValue = Schema.encodeEither(schema)
  const decodeValue = Schema.decodeUnknownEither(schema)
  return {
    fingerprint,
    encode: (value) => {
      const encoded = encodeValue(value)
      if (Either.isLeft(encoded)) return Either.left(ParseResult.TreeFormatter.formatErrorSync(encoded.left))
      return valueField(encoded.right)
    },
    normalize: (value) => {
      const encoded = encodeValue(value)
      if (Either.isLeft(encoded)) return Either.left(ParseResult.TreeFormatter.formatErrorSync(encoded.left))
      const decoded = decodeValue(encoded.right)
      return Either.isLeft(decoded)
        ? Either.left(ParseResult.TreeFormatter.formatErrorSync(decoded.left))
        : Either.right(decoded.right)
    },
    toBytes: (entry, field) =>
      encoder.encode(
        `{"f":${FORMAT},"h":${JSON.stringify(entry.fingerprint)},"c":${entry.createdAt},"u":${
          JSON.stringify(finiteOrNull(entry.freshUntil))
        },"s":${JSON.stringify(finiteOrNull(entry.staleUntil))},"l":${entry.loadTime},"t":${
          JSON.stringify(entry.tags)
        },"g":${JSON.stringify(entry.versions)},${field}}`
      ),
    fromBytes: (bytes) => {
      let raw: unknown
      try {
        raw = JSON.parse(decoder.decode(bytes))
      } catch (e) {
        return Either.left(`not an entry envelope: ${e instanceof Error ? e.message : String(e)}`)
      }
      if (typeof raw !== "object" || raw === null || (raw as Envelope).f !== FORMAT) {
        return Either.left("not an entry envelope of this format")
      }
      const env = raw as Envelope
      if (env.h !== fingerprint) return Either.left("written with a different schema")
      const problem = malformed(env)
      if (problem !== undefined) return Either.left(`a malformed envelope: ${problem}`)
      let encoded: unknown
      try {
        encoded = "v" in env ? env.v : untag(env.x)
      } catch (e) {
        return Either.left(`a malformed envelope: ${e instanceof Error ? e.message : String(e)}`)
      }
      const decoded = decodeValue(encoded)
      if (Either.isLeft(decoded)) return Either.left(ParseResult.TreeFormatter.formatErrorSync(decoded.left))
      return Either.right(
        new Entry(
          decoded.right,
          env.c as number,
          env.u === null ? Infinity : env.u as number,
          env.s === null ? Infinity : env.s as number,
          env.l as number,
          env.t as Array<string>,
          env.g as Array<string>,
          fingerprint,
          bytes.byteLength
        )
      )
    }
  }
}
