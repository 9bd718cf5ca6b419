import { createHash } from "node:crypto"
import * as KeyBytes from "../keyBytes.js"

/**
 * A key in the form it goes on the wire: either printable ASCII sent as is, or the key's bytes
 * sent base64-encoded with the `b` flag (memcached decodes them and stores the same bytes).
 * Only `wireKey` builds one, so nothing else can put an unchecked key into a command line.
 * @internal
 */
export interface WireKey {
  readonly _brand: "WireKey"
  /** The token written after the command name. */
  readonly token: string
  /** Whether `token` is base64 (the command carries the `b` flag). */
  readonly base64: boolean
  /** The bytes memcached stores as the key (a plain token stands for its own ASCII bytes); what the ring hashes. */
  readonly hashInput: string | Uint8Array
  /** The start of this key's value read, `mg <token>[ b] v O`, made by its first read (see `connection`). */
  readLine: Uint8Array | undefined
  /** Where the key falls on a ketama ring (the MD5 of `hashInput`), made by its first routing. */
  point: number | undefined
}

/** memcached's key length limit, in bytes. @internal */
export const MAX_KEY_BYTES = 250

/** The longest byte string whose base64 form fits in 250 characters. @internal */
export const MAX_BASE64_KEY_BYTES = 186

/** Printable ASCII without space: the only bytes a raw key token may hold. @internal */
export const isPlainToken = (s: string): boolean => {
  if (s.length === 0 || s.length > MAX_KEY_BYTES) return false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c <= 0x20 || c >= 0x7f) return false
  }
  return true
}

/**
 * The wire form of a key, or `undefined` when the key cannot be sent without changing it (over
 * 250 bytes in plain form, over 186 bytes when it needs base64, or empty). Never truncates. A key
 * that is not plain goes as its WTF-8 bytes (see `keyBytes`), so unpaired surrogates stay distinct.
 * @internal
 */
export const wireKey = (key: string): WireKey | undefined => {
  if (isPlainToken(key)) return plainKey(key)
  const bytes = KeyBytes.encode(key)
  if (bytes.length === 0 || bytes.length > MAX_BASE64_KEY_BYTES) return undefined
  return binaryKey(bytes)
}

/** The wire form of raw key bytes (binary keys), or `undefined` when they do not fit. @internal */
export const wireKeyFromBytes = (bytes: Uint8Array): WireKey | undefined => {
  if (bytes.length === 0 || bytes.length > MAX_BASE64_KEY_BYTES) return undefined
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i]! <= 0x20 || bytes[i]! >= 0x7f) return binaryKey(bytes)
  }
  return plainKey(Buffer.from(bytes).toString("latin1"))
}

/** A checked plain token as a wire key: sent as it is. */
const plainKey = (token: string): WireKey =>
  ({ token, base64: false, hashInput: token, readLine: undefined, point: undefined }) as unknown as WireKey

/** Checked key bytes as a wire key: sent base64-encoded with the `b` flag. */
const binaryKey = (bytes: Uint8Array): WireKey =>
  ({
    token: Buffer.from(bytes).toString("base64"),
    base64: true,
    hashInput: bytes,
    readLine: undefined,
    point: undefined
  }) as unknown as WireKey

/** SHA-256 of a string's WTF-8 bytes, base64url without padding (43 characters). @internal */
export const sha256 = (s: string): string => createHash("sha256").update(KeyBytes.wire(s)).digest("base64url")

/**
 * Escapes a store prefix so that it never contains the `:` that separates it from the generation,
 * which keeps the key spaces of two prefixes disjoint ("a" and "a:1" cannot collide).
 * @internal
 */
export const escapePrefix = (prefix: string): string => prefix.replace(/%/g, "%25").replace(/:/g, "%3A")

/** Longest prefix (escaped, in UTF-8 bytes) a store accepts, so a hashed key always fits. @internal */
export const MAX_PREFIX_BYTES = 100

/** The mark that starts the hashed form of a user key. @internal */
export const HASHED_MARK = "#"

/**
 * The memcached key of a user key under `base` (`<escaped prefix>:<generation>:`).
 *
 * The user key goes in as is when the whole key fits (250 bytes plain, 186 bytes when it needs
 * base64). Otherwise, or when the user key itself starts with `#`, it is replaced by `#` and the
 * SHA-256 of the user key: keys that fit keep their readable form, and no plain key can ever be
 * mistaken for a hashed one.
 * @internal
 */
export const dataKey = (base: string, key: string): WireKey => {
  if (key.charCodeAt(0) !== 0x23 /* # */) {
    const direct = wireKey(base + key)
    if (direct !== undefined) return direct
  }
  return wireKey(base + HASHED_MARK + sha256(key))!
}
