/**
 * Text ↔ bytes for tests of byte stores: the conformance suite and the project's own tests write
 * strings as UTF-8 bytes and read them back as strings.
 *
 * @internal
 */
import { Option } from "effect"
import type * as CacheStore from "../../CacheStore.js"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** A string's UTF-8 bytes. @internal */
export const bytes = (s: string): Uint8Array => encoder.encode(s)

/** A stored value read back as UTF-8 text (the value must be bytes). @internal */
export const text = (value: Option.Option<CacheStore.Value>): Option.Option<string> =>
  Option.map(value, (b) => decoder.decode(b as Uint8Array))
