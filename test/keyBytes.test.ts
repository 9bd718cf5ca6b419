import { describe, expect, it } from "@effect/vitest"
import * as KeyBytes from "../src/internal/keyBytes.js"

/** Strings of random UTF-16 code units, unpaired surrogates frequent among them (seeded). */
const randomStrings = (count: number, seed: number): Array<string> => {
  let state = seed
  const next = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0)
  const units = [0x41, 0x7f, 0xe9, 0x7ff, 0x800, 0xd7ff, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0xfffd, 0xffff]
  return Array.from({ length: count }, () => {
    const length = next() % 6
    let s = ""
    for (let i = 0; i < length; i++) {
      s += String.fromCharCode(next() % 2 === 0 ? units[next() % units.length]! : next() % 0x10000)
    }
    return s
  })
}

describe("key bytes (WTF-8)", () => {
  it("well-formed strings are their UTF-8 bytes", () => {
    for (const s of ["", "plain", "ключ/🔑/中文", "\u0000\r\n", "x\uD800\uDC00"]) {
      expect(KeyBytes.isWellFormed(s)).toBe(true)
      expect(KeyBytes.wire(s)).toBe(s)
      expect(KeyBytes.encode(s).equals(Buffer.from(s, "utf8"))).toBe(true)
    }
  })

  it("unpaired surrogates have bytes of their own, and decode gives every string back", () => {
    expect(KeyBytes.encode("x\uD800").toString("hex")).toBe("78eda080")
    expect(KeyBytes.encode("x\uDC00\uD800").toString("hex")).toBe("78edb080eda080")
    const strings = [...new Set(randomStrings(20_000, 42))]
    const seen = new Map<string, string>()
    for (const s of strings) {
      const hex = KeyBytes.encode(s).toString("hex")
      expect(seen.get(hex), JSON.stringify(s)).toBeUndefined()
      seen.set(hex, s)
      expect(KeyBytes.decode(KeyBytes.encode(s))).toBe(s)
    }
  })

  it("bytes that no string encodes to decode to nothing", () => {
    for (
      const hex of [
        "ff", // never in UTF-8
        "c0af", // overlong
        "e080af", // overlong
        "eda080edb080", // a pair written as two halves: encode writes it as four bytes
        "e282", // truncated
        "f4908080" // past U+10FFFF
      ]
    ) {
      expect(KeyBytes.decode(Buffer.from(hex, "hex")), hex).toBeUndefined()
    }
  })
})
