/**
 * The glob patterns of `CacheStore.keys`, with Redis's semantics (those of SCAN MATCH), so that
 * every store that scans lists the same keys for the same pattern. Matching is over bytes: the
 * key's UTF-8 bytes (WTF-8 for unpaired surrogates, see `keyBytes`) against the pattern's.
 *
 * - `*` matches any run of bytes, the empty one included.
 * - `?` matches one byte. A character outside ASCII is two to four bytes, so `?` does not match
 *   `é` and `??` does.
 * - `[…]` matches one byte of a set: bytes, ranges `a-z` (either way round: `[z-a]` is `[a-z]`)
 *   and `\x` for the byte x itself. `[^…]` is the complement; `!` is an ordinary byte. A `]`
 *   first in the set closes it (`[]` matches nothing, `[^]` any byte). A `-` between two bytes
 *   makes a range even when the second is `]` (`[a-]` is the range from `]` to `a`, and the set
 *   goes on). A `[` without its `]` takes the rest of the pattern as its set.
 * - `\x` outside a set matches x itself; a `\` that ends the pattern matches `\`.
 *
 * Refused, with the reason: a range whose end is not ASCII (Redis compares such bytes as signed
 * or unsigned by platform), and more than `MAX_STARS` `*` (each one costs Redis a level of
 * recursion, and past a depth it stops matching).
 * @internal
 */
import { StoreError } from "../CacheError.js"
import * as KeyBytes from "./keyBytes.js"

/** Most `*` a pattern may hold. @internal */
export const MAX_STARS = 100

const STAR = -1
const ANY = -2

/** A pattern element: a byte (0..255), `STAR`, `ANY`, or a set of bytes (256 flags). */
type Token = number | Uint8Array

/** A compiled pattern. @internal */
export interface Glob {
  readonly tokens: ReadonlyArray<Token>
}

const BACKSLASH = 0x5c

/** Compiles a pattern, or says why it is refused. @internal */
export const compile = (pattern: string): Glob | string => {
  const p = KeyBytes.encode(pattern)
  const n = p.length
  const tokens: Array<Token> = []
  let stars = 0
  let i = 0
  while (i < n) {
    const c = p[i]!
    if (c === 0x2a /* * */) {
      while (i < n && p[i] === 0x2a) i++
      if (++stars > MAX_STARS) return `more than ${MAX_STARS} '*'`
      tokens.push(STAR)
    } else if (c === 0x3f /* ? */) {
      tokens.push(ANY)
      i++
    } else if (c === 0x5b /* [ */) {
      i++
      const negate = i < n && p[i] === 0x5e /* ^ */
      if (negate) i++
      const set = new Uint8Array(256)
      while (i < n) {
        if (p[i] === BACKSLASH && i + 1 < n) {
          set[p[i + 1]!] = 1
          i += 2
        } else if (p[i] === 0x5d /* ] */) {
          i++
          break
        } else if (i + 2 < n && p[i + 1] === 0x2d /* - */) {
          const a = p[i]!
          const b = p[i + 2]!
          if (a >= 0x80 || b >= 0x80) return `the range in a [...] set ends in a byte outside ASCII`
          for (let x = Math.min(a, b); x <= Math.max(a, b); x++) set[x] = 1
          i += 3
        } else {
          set[p[i]!] = 1
          i++
        }
      }
      if (negate) { for (let x = 0; x < 256; x++) set[x] = set[x]! ^ 1 }
      tokens.push(set)
    } else if (c === BACKSLASH && i + 1 < n) {
      tokens.push(p[i + 1]!)
      i += 2
    } else {
      tokens.push(c)
      i++
    }
  }
  return { tokens }
}

const fits = (token: Token, byte: number): boolean =>
  typeof token === "number" ? token === ANY || token === byte : token[byte] === 1

/**
 * Whether a key matches. Each `*` is retried from the last one only: when the rest of a pattern
 * cannot match after a `*`, consuming more bytes with an earlier `*` cannot help.
 * @internal
 */
export const matches = (glob: Glob, key: string): boolean => {
  const tokens = glob.tokens
  const s = KeyBytes.encode(key)
  let t = 0
  let i = 0
  let starAt = -1
  let resumeAt = 0
  while (i < s.length) {
    const token = tokens[t]
    if (token === STAR) {
      starAt = t++
      resumeAt = i
    } else if (token !== undefined && fits(token, s[i]!)) {
      t++
      i++
    } else if (starAt >= 0) {
      t = starAt + 1
      i = ++resumeAt
    } else {
      return false
    }
  }
  while (tokens[t] === STAR) t++
  return t === tokens.length
}

/** The error of `keys` for a refused pattern. @internal */
export const refused = (store: string, pattern: string, reason: string): StoreError =>
  new StoreError({
    store,
    operation: "keys",
    reason: "command",
    detail: `cannot use the pattern ${JSON.stringify(pattern)}: ${reason}`
  })
