/**
 * The envelope: a cached value with its metadata, kept as an object by live stores and as JSON
 * bytes by byte stores (the value in the lossless JSON form of `jsonForm.ts`). A malformed
 * envelope never decodes: a read of one is a miss.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as CacheStore from "../../CacheStore.js"
import { hashString } from "../eviction/policy.js"
import { bytesAt, VersionHint } from "../store.js"
import { Entry, FAILURE, freshFenceToken } from "./entry.js"
import { finiteOrNull, untag, valueField } from "./jsonForm.js"

export { Entry, freshFenceToken, withFreshUntil } from "./entry.js"

/** @internal */
export interface Codec<A> {
  readonly fingerprint: string
  /** The fingerprint of cached failures (negative caching), when the namespace caches them. */
  readonly failureFingerprint: string | undefined
  /** A failure as its envelope's value field and what a byte store would give back, or why it cannot be stored. */
  readonly encodeFailure: (error: unknown) => Either.Either<readonly [field: string, normalized: unknown], string>
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
 * entry's tags (`"g"`, two per tag) are stored with them. 4: every envelope begins with its fence
 * token (`{"f":4,"k":"<token>"`, always the same length), and an invalidation's marker (a
 * tombstone) is an envelope of its own. A versioned write's entry has its version (`"n"`) right
 * after the token, where a store's compare (a Lua pattern, `versionOf`) finds it without parsing
 * the rest.
 */
const FORMAT = 4

// -------------------------------------------------------------------------------------------------
// fence tokens and tombstones

const TOKEN_LENGTH = 22

const tokenHead = `{"f":${FORMAT},"k":"`

/** The bytes every envelope of one write begins with: what a fenced write compares. */
const fenceBytes = (token: string): Uint8Array => encoder.encode(tokenHead + token + "\"")

/** The fingerprint of a tombstone kept by a live store: read as a miss by every namespace. */
const TOMBSTONE = ""

/**
 * An invalidation's marker, as the entry a read finds: expired before it was written, so it is a
 * miss to every read, but it holds a fence token, so a load that read the key before the
 * invalidation cannot write over it.
 * @internal
 */
export const tombstone = <A>(fingerprint: string, token: string = freshFenceToken()): Entry<A> =>
  new Entry(undefined as A, 0, -Infinity, -Infinity, 0, noStrings, noStrings, fingerprint, 64, 0, token)

const noStrings: ReadonlyArray<string> = []

/** Whether an entry read from a live store is an invalidation's marker. @internal */
export const isTombstone = (entry: Entry<unknown>): boolean => entry.fingerprint === TOMBSTONE

/**
 * What a fenced write of a key expects to find there, given what the load's read found (an entry,
 * a tombstone, or nothing): the entry itself in a live store, the first bytes of its envelope in
 * a byte store.
 * @internal
 */
export const expectedOf = (found: Entry<unknown> | undefined, live: boolean): CacheStore.Value | undefined =>
  found === undefined ? undefined : live ? found : fenceBytes(found.token)

/**
 * What a fenced write expects to find of a value this process just stored (to take it back):
 * the entry itself in a live store, the first bytes of its envelope (up to its fence token's end)
 * in a byte store.
 * @internal
 */
export const expectedOfStored = (stored: CacheStore.Value, live: boolean): CacheStore.Value =>
  live || !(stored instanceof Uint8Array) ? stored : stored.subarray(0, FENCE_HEAD_BYTES)

const FENCE_HEAD_BYTES = tokenHead.length + TOKEN_LENGTH + 1

const tombstoneTail = `","d":1}`
const TOMBSTONE_BYTES = tokenHead.length + TOKEN_LENGTH + tombstoneTail.length

/** An invalidation's marker as a store keeps it: the entry in a live store, its bytes in a byte store. @internal */
export const tombstoneValue = (live: boolean): CacheStore.Value => {
  const marker = tombstone(TOMBSTONE)
  return live ? marker : encoder.encode(tokenHead + marker.token + tombstoneTail)
}

/** Whether a stored value is an invalidation's marker (as `tombstoneValue` makes them). @internal */
export const isTombstoneValue = (value: CacheStore.Value): boolean =>
  value instanceof Uint8Array
    ? value.byteLength === TOMBSTONE_BYTES && bytesAt(value, tokenHeadBytes, 0) &&
      bytesAt(value, tombstoneTailBytes, TOMBSTONE_BYTES - tombstoneTailBytes.byteLength)
    : value instanceof Entry && isTombstone(value)

const tokenHeadBytes = encoder.encode(tokenHead)
const tombstoneTailBytes = encoder.encode(tombstoneTail)

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
  readonly k?: unknown
  readonly d?: unknown
  readonly h?: unknown
  readonly c?: unknown
  readonly u?: unknown
  readonly s?: unknown
  readonly l?: unknown
  readonly t?: unknown
  readonly g?: unknown
  readonly n?: unknown
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
  if (env.n !== undefined && !(Number.isSafeInteger(env.n) && (env.n as number) > 0)) return "its version is malformed"
  if (("v" in env) === ("x" in env)) return "it holds no value, or two"
  return undefined
}

/** @internal */
export const makeCodec = <A, I>(
  schema: Schema.Schema<A, I, never>,
  schemaVersion?: string | number,
  errorSchema?: Schema.Schema.AnyNoContext
): Codec<A> => {
  const fingerprint = fingerprintOf(schema, schemaVersion)
  const encodeValue = Schema.encodeEither(schema)
  const decodeValue = Schema.decodeUnknownEither(schema)
  const failureFingerprint = errorSchema === undefined
    ? undefined
    : `${FAILURE}${fingerprintOf(errorSchema)}:${fingerprint}`
  const encodeError = errorSchema === undefined ? undefined : Schema.encodeEither(errorSchema)
  const decodeError = errorSchema === undefined ? undefined : Schema.decodeUnknownEither(errorSchema)
  return {
    fingerprint,
    failureFingerprint,
    encodeFailure: (error) => {
      if (encodeError === undefined) return Either.left("this namespace caches no failures")
      const encoded = encodeError(error)
      if (Either.isLeft(encoded)) return Either.left(ParseResult.TreeFormatter.formatErrorSync(encoded.left))
      const decoded = decodeError!(encoded.right)
      if (Either.isLeft(decoded)) return Either.left(ParseResult.TreeFormatter.formatErrorSync(decoded.left))
      return Either.map(valueField(encoded.right), (field) => [field, decoded.right] as const)
    },
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
        `${tokenHead}${entry.token}",${entry[VersionHint] > 0 ? `"n":${entry[VersionHint]},` : ""}"h":${
          JSON.stringify(entry.fingerprint)
        },"c":${entry.createdAt},"u":${JSON.stringify(finiteOrNull(entry.freshUntil))},"s":${
          JSON.stringify(finiteOrNull(entry.staleUntil))
        },"l":${entry.loadTime},"t":${JSON.stringify(entry.tags)},"g":${JSON.stringify(entry.versions)},${field}}`
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
      if (typeof env.k !== "string" || env.k.length !== TOKEN_LENGTH) return Either.left("its fence token is malformed")
      // an invalidation's marker: a miss that holds a fence token
      if (env.d !== undefined) return Either.right(tombstone(fingerprint, env.k))
      const failed = env.h === failureFingerprint && failureFingerprint !== undefined
      if (env.h !== fingerprint && !failed) return Either.left("written with a different schema")
      const problem = malformed(env)
      if (problem !== undefined) return Either.left(`a malformed envelope: ${problem}`)
      let encoded: unknown
      try {
        encoded = "v" in env ? env.v : untag(env.x)
      } catch (e) {
        return Either.left(`a malformed envelope: ${e instanceof Error ? e.message : String(e)}`)
      }
      const decoded: Either.Either<A, ParseResult.ParseError> = failed ? decodeError!(encoded) : decodeValue(encoded)
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
          failed ? failureFingerprint : fingerprint,
          bytes.byteLength,
          env.n === undefined ? 0 : env.n as number,
          env.k
        )
      )
    }
  }
}
