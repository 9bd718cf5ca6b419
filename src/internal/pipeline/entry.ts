/**
 * An entry: a cached value with its metadata, as a live store keeps it and as a byte store's
 * envelope (`envelope.ts`) holds it, with the fence token that makes each write unique.
 */
import { randomBytes } from "node:crypto"
import { SizeHint, VersionHint } from "../store.js"

/** This process's part of every fence token: 72 random bits, 12 characters (drawn at first use). */
let processTag: string | undefined
let written = 0

/**
 * A fence token no other write has: this process's tag and a counter, 22 characters. Unique, not
 * random: what it must never do is repeat, in this process or another.
 * @internal
 */
export const freshFenceToken = (): string =>
  (processTag ??= randomBytes(9).toString("base64url")) + (written++).toString(36).padStart(10, "0")

/**
 * A cached value with its metadata. Live stores keep this object as it is; byte stores get its
 * JSON envelope (`toBytes`).
 * @internal
 */
export class Entry<A> {
  readonly [SizeHint]: number
  /** The version a versioned write gave the value; 0 for a value written without one. */
  readonly [VersionHint]: number
  /**
   * Clock millis when this process last extended the entry's life in the store (a sliding TTL),
   * or its write time: process-local bookkeeping for the debounce, never stored.
   */
  slidAt: number
  /** A cached failure (negative caching): `value` is the loader's error, not a value. */
  readonly failed: boolean
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
    size: number,
    version = 0,
    /** What makes this write unique: the fence token at the start of its bytes. */
    readonly token: string = freshFenceToken()
  ) {
    this[SizeHint] = size
    this[VersionHint] = version
    this.slidAt = createdAt
    this.failed = fingerprint.startsWith(FAILURE)
  }
}

/**
 * The same entry with another end of freshness (made stale, or kept by fail-safe's throttle); a
 * copy that is written again is a write of its own, and gets a fresh fence token.
 * @internal
 */
export const withFreshUntil = <A>(entry: Entry<A>, freshUntil: number, token: string = entry.token): Entry<A> =>
  new Entry(
    entry.value,
    entry.createdAt,
    freshUntil,
    entry.staleUntil,
    entry.loadTime,
    entry.tags,
    entry.versions,
    entry.fingerprint,
    entry[SizeHint],
    entry[VersionHint],
    token
  )

/**
 * The start of a cached failure's fingerprint (no Schema's fingerprint starts so): a reader
 * without negative caching, or of another version, sees "another schema", a miss.
 * @internal
 */
export const FAILURE = "n:"
