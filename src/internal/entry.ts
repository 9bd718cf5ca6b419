import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { hashString } from "./eviction/policy.js"
import { SizeHint } from "./store.js"

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
    /** Fingerprint of the Schema the value was encoded with. */
    readonly fingerprint: string,
    size: number
  ) {
    this[SizeHint] = size
  }
}

/** @internal */
export interface Codec<A> {
  readonly fingerprint: string
  /** Encodes the value with its Schema: the JSON text of the encoded form, or an error message. */
  readonly encode: (value: A) => Either.Either<string, string>
  readonly toBytes: (entry: Entry<A>, encodedJson: string) => Uint8Array
  readonly fromBytes: (bytes: Uint8Array) => Either.Either<Entry<A>, string>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: true })

/** Envelope format version, bumped if the byte layout changes. */
const FORMAT = 1

const finiteOrNull = (n: number): number | null => Number.isFinite(n) ? n : null
const fromNullable = (n: unknown): number => typeof n === "number" ? n : Infinity

/** @internal */
export const fingerprintOf = (schema: Schema.Schema.Any): string =>
  hashString(String(schema.ast)).toString(36) + hashString(String(Schema.encodedSchema(schema).ast)).toString(36)

/** @internal */
export const makeCodec = <A, I>(schema: Schema.Schema<A, I, never>): Codec<A> => {
  const fingerprint = fingerprintOf(schema)
  const encodeValue = Schema.encodeEither(schema)
  const decodeValue = Schema.decodeUnknownEither(schema)
  return {
    fingerprint,
    encode: (value) => {
      const encoded = encodeValue(value)
      if (Either.isLeft(encoded)) return Either.left(ParseResult.TreeFormatter.formatErrorSync(encoded.left))
      try {
        const json = JSON.stringify(encoded.right)
        // undefined encodes to no JSON at all; keep it representable
        return Either.right(json === undefined ? "null" : json)
      } catch (e) {
        return Either.left(`the encoded value is not JSON-serialisable: ${e instanceof Error ? e.message : String(e)}`)
      }
    },
    toBytes: (entry, encodedJson) =>
      encoder.encode(
        `{"f":${FORMAT},"h":${JSON.stringify(entry.fingerprint)},"c":${entry.createdAt},"u":${
          JSON.stringify(finiteOrNull(entry.freshUntil))
        },"s":${JSON.stringify(finiteOrNull(entry.staleUntil))},"l":${entry.loadTime},"t":${
          JSON.stringify(entry.tags)
        },"v":${encodedJson}}`
      ),
    fromBytes: (bytes) => {
      let raw: unknown
      try {
        raw = JSON.parse(decoder.decode(bytes))
      } catch (e) {
        return Either.left(`not an entry envelope: ${e instanceof Error ? e.message : String(e)}`)
      }
      if (typeof raw !== "object" || raw === null || (raw as { f?: unknown }).f !== FORMAT) {
        return Either.left("not an entry envelope of this format")
      }
      const env = raw as { h?: unknown; c?: unknown; u?: unknown; s?: unknown; l?: unknown; t?: unknown; v?: unknown }
      if (env.h !== fingerprint) return Either.left("written with a different schema")
      const decoded = decodeValue(env.v === null && !("v" in env) ? undefined : env.v)
      if (Either.isLeft(decoded)) return Either.left(ParseResult.TreeFormatter.formatErrorSync(decoded.left))
      const tags = Array.isArray(env.t) ? env.t.filter((t): t is string => typeof t === "string") : []
      return Either.right(
        new Entry(
          decoded.right,
          typeof env.c === "number" ? env.c : 0,
          fromNullable(env.u),
          fromNullable(env.s),
          typeof env.l === "number" ? env.l : 0,
          tags,
          fingerprint,
          bytes.byteLength
        )
      )
    }
  }
}
