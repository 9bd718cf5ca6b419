import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { CacheError } from "effect-cachekit"

describe("CacheError", () => {
  it("isCacheError recognises every error of the union, InvalidOptions included, and nothing else", () => {
    const errors: ReadonlyArray<CacheError.CacheError> = [
      new CacheError.StoreError({ store: "s", operation: "get", reason: "timeout", detail: "d" }),
      new CacheError.EncodeError({ namespace: "n", key: "k", detail: "d" }),
      new CacheError.InvalidKey({ store: "s", key: "k", detail: "d" }),
      new CacheError.ValueTooLarge({ store: "s", key: "k", size: 2, limit: 1 }),
      new CacheError.UnsupportedCapability({ store: "s", capability: "keys", detail: "d" }),
      new CacheError.LoadTimeout({ namespace: "n", key: "k", timeoutMillis: 1 }),
      new CacheError.LockTimeout({ namespace: "n", key: "k", waitMillis: 1 }),
      new CacheError.BatchMismatch({ namespace: "n", detail: "answered twice for k" }),
      new CacheError.InvalidOptions({ component: "c", option: "o", detail: "d" })
    ]
    for (const error of errors) expect(CacheError.isCacheError(error), error._tag).toBe(true)
    expect(CacheError.isCacheError(new Error("StoreError"))).toBe(false)
    expect(CacheError.isCacheError({ _tag: "DecodeError" })).toBe(false)
    expect(CacheError.isCacheError(null)).toBe(false)
  })

  it("the CacheError schema encodes every error and decodes it back to its class", () => {
    const error = new CacheError.InvalidOptions({ component: "c", option: "o", detail: "d" })
    const decoded = Schema.decodeUnknownSync(CacheError.CacheError)(Schema.encodeSync(CacheError.CacheError)(error))
    expect(decoded).toBeInstanceOf(CacheError.InvalidOptions)
    expect(decoded).toEqual(error)
  })
})
