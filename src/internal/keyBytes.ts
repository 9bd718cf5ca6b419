/**
 * The bytes of a key, for stores whose keys are bytes (Redis, memcached).
 *
 * A JavaScript string is UTF-16 and may hold unpaired surrogates (`JSON.parse` produces them from
 * `"\ud800"`). UTF-8 has no form for them: `Buffer.from` and `TextEncoder` write each as U+FFFD, so
 * `"x\ud800"`, `"x\udc00"` and `"x\ufffd"` would be one key. Keys are written in WTF-8 instead:
 * UTF-8 for every well-formed string (so the bytes are what any other client writes), and an
 * unpaired surrogate as the three bytes UTF-8 would give its code point, which no UTF-8 string
 * contains. Distinct strings give distinct bytes, and `decode` gives the string back.
 * @internal
 */

/** Whether a string has no unpaired surrogate (its UTF-8 form is then exact). Node 20 has it natively. @internal */
export const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed()

/** The WTF-8 bytes of a string. @internal */
export const encode = (s: string): Buffer => {
  if (isWellFormed(s)) return Buffer.from(s, "utf8")
  const out = Buffer.allocUnsafe(s.length * 3)
  let n = 0
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00)
        i++
      }
    }
    if (c < 0x80) {
      out[n++] = c
    } else if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6)
      out[n++] = 0x80 | (c & 0x3f)
    } else if (c < 0x10000) {
      out[n++] = 0xe0 | (c >> 12)
      out[n++] = 0x80 | ((c >> 6) & 0x3f)
      out[n++] = 0x80 | (c & 0x3f)
    } else {
      out[n++] = 0xf0 | (c >> 18)
      out[n++] = 0x80 | ((c >> 12) & 0x3f)
      out[n++] = 0x80 | ((c >> 6) & 0x3f)
      out[n++] = 0x80 | (c & 0x3f)
    }
  }
  return out.subarray(0, n)
}

/**
 * A key as a Redis or memcached client sends it: the string itself when its UTF-8 form is exact
 * (the client encodes it), its WTF-8 bytes otherwise.
 * @internal
 */
export const wire = (s: string): string | Buffer => isWellFormed(s) ? s : encode(s)

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/**
 * The string whose `encode` is these bytes, or `undefined` when there is none (bytes that are not
 * WTF-8: written by someone else, and no key of ours).
 * @internal
 */
export const decode = (bytes: Uint8Array): string | undefined => {
  try {
    return utf8.decode(bytes)
  } catch {
    // not UTF-8: WTF-8 with unpaired surrogates, or foreign bytes
  }
  let out = ""
  let i = 0
  let afterHigh = false
  while (i < bytes.length) {
    const b = bytes[i]!
    let c: number
    let size: number
    if (b < 0x80) {
      c = b
      size = 1
    } else if (b >= 0xc2 && b <= 0xdf) {
      c = b & 0x1f
      size = 2
    } else if (b >= 0xe0 && b <= 0xef) {
      c = b & 0x0f
      size = 3
    } else if (b >= 0xf0 && b <= 0xf4) {
      c = b & 0x07
      size = 4
    } else {
      return undefined
    }
    if (i + size > bytes.length) return undefined
    for (let j = 1; j < size; j++) {
      const t = bytes[i + j]!
      if ((t & 0xc0) !== 0x80) return undefined
      c = (c << 6) | (t & 0x3f)
    }
    // overlong forms and code points past U+10FFFF have no string
    if ((size === 3 && c < 0x800) || (size === 4 && (c < 0x10000 || c > 0x10ffff))) return undefined
    const isHigh = c >= 0xd800 && c <= 0xdbff
    // a high surrogate followed by a low one is a pair, which `encode` writes as four bytes
    if (afterHigh && c >= 0xdc00 && c <= 0xdfff) return undefined
    afterHigh = isHigh
    out += String.fromCodePoint(c)
    i += size
  }
  return out
}
