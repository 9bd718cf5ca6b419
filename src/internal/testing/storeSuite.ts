import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as TestContext from "effect/TestContext"
import { randomUUID } from "node:crypto"
import * as Cache from "../../Cache.js"
import * as CacheAside from "../../CacheAside.js"
import * as CacheStore from "../../CacheStore.js"
import type { Value } from "../../CacheStore.js"
import type { StoreSuiteCase, StoreSuiteOptions, StoreSuiteRunner } from "../../testing.js"
import { check, optionalDuration } from "../options.js"
import { bytes, text } from "./bytes.js"

// a record, so that the compiler checks the list against the `StoreSuiteCase` type, both ways
const everyCase: Record<StoreSuiteCase, true> = {
  "missing-key": true,
  "round-trip": true,
  "binary-values": true,
  "empty-value": true,
  "large-value": true,
  "hostile-keys": true,
  "empty-key": true,
  "unpaired-surrogates": true,
  "get-many": true,
  "many-keys": true,
  "set-if-absent": true,
  "set-if-absent-race": true,
  "delete": true,
  "ttl": true,
  "zero-ttl": true,
  "max-ttl": true,
  "invalid-ttl": true,
  "expire": true,
  "clear": true,
  "keys": true,
  "glob": true,
  "direct-read": true,
  "live-values": true,
  "lease": true,
  "versioned": true,
  "fence": true
}

/** The case ids, in the order the cases run. @internal */
export const cases = Object.keys(everyCase) as ReadonlyArray<StoreSuiteCase>

const COMPONENT = "testing.storeSuite"

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

/** Keys for the glob table: one to four bytes in UTF-8, and every character a pattern treats specially. */
const globKeys = [
  "",
  "a",
  "b",
  "z",
  "A",
  "ab",
  "abc",
  "a]",
  "a\\",
  "é", // 2 bytes
  "日", // 3 bytes
  "🔑", // 4 bytes
  "x\uD800", // 4 bytes: x and an unpaired surrogate (WTF-8)
  "!",
  "]",
  "[",
  "-",
  "^",
  "_",
  "`",
  "\\",
  "*",
  "?"
]
const singleBytes = globKeys.filter((k) => k.length === 1 && k.charCodeAt(0) < 0x80)

/**
 * Patterns and the keys of `globKeys` they match, as Redis's SCAN MATCH answers them: matching is
 * over bytes (UTF-8), `?` and `[…]` match one byte, `[^…]` negates and `!` does not, ranges may be
 * written either way round, `\` escapes, and an unterminated `[` runs to the end of the pattern.
 */
const globTable: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
  ["*", globKeys],
  ["?*", globKeys.filter((k) => k !== "")],
  ["?", singleBytes],
  ["??", ["ab", "a]", "a\\", "é"]],
  ["???", ["abc", "日"]],
  ["????", ["🔑", "x\uD800"]],
  ["x*", ["x\uD800"]],
  ["a*", ["a", "ab", "abc", "a]", "a\\"]],
  ["*c", ["abc"]],
  ["a?", ["ab", "a]", "a\\"]],
  ["[ab]", ["a", "b"]],
  ["[a-c]", ["a", "b"]],
  ["[z-a]", ["a", "b", "z"]],
  ["[^a]", singleBytes.filter((k) => k !== "a")],
  ["[!a]", ["!", "a"]],
  ["[\\]]", ["]"]],
  ["[a-]", ["]", "^", "_", "`", "a"]],
  ["[-a]", ["-", "a"]],
  ["[]a]", []],
  ["[^]", singleBytes],
  ["[", []],
  ["[ab", ["a", "b"]],
  ["[é]", []],
  ["\\*", ["*"]],
  ["\\?", ["?"]],
  ["\\\\", ["\\"]],
  ["a\\", ["a\\"]],
  ["a[\\]]", ["a]"]],
  ["[A-Z]", ["A"]]
]

/** Patterns every store refuses with a StoreError of reason `command`. */
const badGlobs = [
  "[a-é]", // a range whose end is not ASCII: Redis compares such bytes as signed or unsigned chars by platform
  "*a".repeat(101) // more than 100 `*`
]

/** The longest TTL a store keeps an entry for (`CacheStore.maxTtl`); longer ones are clamped to it. */
const maxTtl = CacheStore.maxTtl

// Prefixes must differ between the processes that run the suite against one backend at the same
// time, so each run of this module draws its own random id (not from Effect's test Random, which
// every process seeds alike); a counter keeps the cases of one run apart.
const runId = randomUUID().slice(0, 8)
let counter = 0
const uniquePrefix = (name: string) => `suite-${runId}-${counter++}-${name}`

/** Runs one case as a promise that rejects with the case's own error (an assertion error, say). @internal */
const runCase = (effect: Effect.Effect<void, unknown, Scope.Scope>, clock: "test" | "real"): Promise<void> =>
  Effect.runPromiseExit(
    clock === "test" ? Effect.provide(Effect.scoped(effect), TestContext.TestContext) : Effect.scoped(effect)
  ).then((exit) => {
    if (Exit.isSuccess(exit)) return
    const error = Cause.squash(exit.cause)
    throw error instanceof Error ? error : new Error(Cause.pretty(exit.cause))
  })

const validate = (options: StoreSuiteOptions): ReadonlySet<StoreSuiteCase> => {
  check(typeof options.make === "function", COMPONENT, "make", "make is required")
  check(
    options.clock === "test" || options.clock === "real",
    COMPONENT,
    "clock",
    `clock must be "test" or "real", got ${String(options.clock)}`
  )
  optionalDuration(COMPONENT, "shortTtl", options.shortTtl)
  optionalDuration(COMPONENT, "shortTtlWait", options.shortTtlWait)
  const size = options.largeValueBytes
  check(
    size === undefined || (Number.isSafeInteger(size) && size > 0),
    COMPONENT,
    "largeValueBytes",
    `largeValueBytes must be a positive integer, got ${size}`
  )
  const selected = options.cases ?? cases
  for (const id of selected) {
    check(Object.hasOwn(everyCase, id), COMPONENT, "cases", `unknown case ${JSON.stringify(id)}`)
  }
  return new Set(selected)
}

/** @internal */
export const storeSuite = (runner: StoreSuiteRunner, name: string, options: StoreSuiteOptions): void => {
  const selected = validate(options)
  const { expect } = runner
  const live = options.clock === "real"
  const shortTtl = options.shortTtl ?? "200 millis"
  const wait = options.shortTtlWait ?? Duration.sum(Duration.decode(shortTtl), "150 millis")
  const advance = (d: Duration.DurationInput) => live ? Effect.sleep(d) : TestClock.adjust(d)
  const withStore = <A, E>(
    label: string,
    body: (store: CacheStore.Service) => Effect.Effect<A, E>
  ) => Effect.scoped(Effect.flatMap(options.make(uniquePrefix(label)), body))

  const registered: Array<
    {
      readonly id: StoreSuiteCase
      readonly title: string
      readonly run: () => Effect.Effect<void, unknown, Scope.Scope>
    }
  > = []
  const add = <A, E>(id: StoreSuiteCase, title: string, run: () => Effect.Effect<A, E, Scope.Scope>) => {
    registered.push({ id, title, run: () => Effect.asVoid(run()) })
  }

  add("missing-key", "a missing key reads as none", () =>
    withStore("missing", (store) =>
      Effect.gen(function*() {
        expect(Option.isNone(yield* store.get("nope"))).toBe(true)
      })))

  add(
    "round-trip",
    "set then get round-trips bytes, and set overwrites",
    () =>
      withStore("roundtrip", (store) =>
        Effect.gen(function*() {
          yield* store.set("k", bytes("one"))
          expect(text(yield* store.get("k"))).toEqual(Option.some("one"))
          yield* store.set("k", bytes("two"))
          expect(text(yield* store.get("k"))).toEqual(Option.some("two"))
        }))
  )

  add(
    "binary-values",
    "values are binary-safe: every byte value, CR LF and NUL included",
    () =>
      withStore("binary", (store) =>
        Effect.gen(function*() {
          const all = new Uint8Array(512)
          for (let i = 0; i < all.length; i++) all[i] = i % 256
          const tricky = bytes("\r\nEND\r\nVALUE x 0 1\r\n\u0000")
          yield* store.set("all", all)
          yield* store.set("tricky", tricky)
          const got = yield* store.get("all")
          expect(Array.from(Option.getOrThrow(got) as Uint8Array)).toEqual(Array.from(all))
          expect(Array.from(Option.getOrThrow(yield* store.get("tricky")) as Uint8Array)).toEqual(Array.from(tricky))
        }))
  )

  add(
    "empty-value",
    "an empty value is stored and read back as empty, not as a miss",
    () =>
      withStore("empty", (store) =>
        Effect.gen(function*() {
          yield* store.set("e", new Uint8Array(0))
          const got = yield* store.get("e")
          expect(Option.isSome(got)).toBe(true)
          expect((Option.getOrThrow(got) as Uint8Array).byteLength).toBe(0)
        }))
  )

  add("large-value", "a large value round-trips", () =>
    withStore("large", (store) =>
      Effect.gen(function*() {
        const size = options.largeValueBytes ?? 512 * 1024
        const big = new Uint8Array(size)
        for (let i = 0; i < size; i++) big[i] = (i * 31) % 251
        yield* store.set("big", big)
        const got = Option.getOrThrow(yield* store.get("big")) as Uint8Array
        expect(got.byteLength).toBe(size)
        expect(got[size - 1]).toBe(big[size - 1])
        expect(sameBytes(got, big)).toBe(true)
      })))

  add(
    "hostile-keys",
    "unicode, spaces, control characters and long keys round-trip",
    () =>
      withStore("keys", (store) =>
        Effect.gen(function*() {
          const keys = [
            "ключ/🔑/中文",
            "a key with spaces",
            "tab\tand\nnewline\r\nkey",
            "nul\u0000byte",
            "glob*chars?[x]",
            "k".repeat(10_000)
          ]
          for (const [i, key] of keys.entries()) yield* store.set(key, bytes(`v${i}`))
          for (const [i, key] of keys.entries()) expect(text(yield* store.get(key))).toEqual(Option.some(`v${i}`))
          // keys that differ only past a truncation point stay distinct
          yield* store.set("k".repeat(10_000) + "x", bytes("other"))
          expect(text(yield* store.get("k".repeat(10_000)))).toEqual(Option.some("v5"))
        }))
  )

  add("empty-key", "the empty key round-trips", () =>
    withStore("emptykey", (store) =>
      Effect.gen(function*() {
        yield* store.set("", bytes("empty-key"))
        expect(text(yield* store.get(""))).toEqual(Option.some("empty-key"))
      })))

  add(
    "unpaired-surrogates",
    "keys that differ only in unpaired surrogates stay distinct, or fail with InvalidKey",
    () =>
      withStore("surrogates", (store) =>
        Effect.gen(function*() {
          // strings JSON.parse can produce; encoded as UTF-8 the unpaired halves all become U+FFFD
          const variants = ["x\uD800", "x\uDBFF", "x\uDC00", "x\uFFFD", "x\uD800\uDC00", "x\uDC00\uD800", "\uD800"]
          const keys = [...variants, ...variants.map((k) => "k".repeat(300) + k)]
          const valueOf = (key: string) => `v${keys.indexOf(key)}`
          const written: Array<string> = []
          for (const key of keys) {
            const result = yield* Effect.either(store.set(key, bytes(valueOf(key))))
            if (Either.isRight(result)) written.push(key)
            else expect(result.left._tag).toBe("InvalidKey")
          }
          for (const key of keys) {
            const read = yield* Effect.either(store.get(key))
            // a key the store refused reads as a miss or is refused again
            const expected = written.includes(key) ? Option.some(valueOf(key)) : Option.none()
            expect(Either.isRight(read) ? text(read.right) : read.left._tag === "InvalidKey" && Option.none())
              .toEqual(expected)
          }
          expect((yield* store.getMany(written)).map(text)).toEqual(written.map((key) => Option.some(valueOf(key))))
          if (store.capabilities.scan) expect([...(yield* store.keys("*"))].sort()).toEqual([...written].sort())
          if (written.length > 0) {
            expect(yield* store.delete(written[0]!)).toBe(true)
            expect(Option.isNone(yield* store.get(written[0]!))).toBe(true)
            const rest = written.slice(1)
            expect((yield* store.getMany(rest)).map(text)).toEqual(rest.map((key) => Option.some(valueOf(key))))
          }
        }))
  )

  add(
    "get-many",
    "getMany is aligned with its keys, misses included",
    () =>
      withStore("getmany", (store) =>
        Effect.gen(function*() {
          yield* store.set("a", bytes("A"))
          yield* store.set("c", bytes("C"))
          const got = yield* store.getMany(["a", "b", "c", "a"])
          expect(got.map(text)).toEqual([Option.some("A"), Option.none(), Option.some("C"), Option.some("A")])
          expect(yield* store.getMany([])).toEqual([])
        }))
  )

  add("many-keys", "setMany and getMany over 1,000 keys", () =>
    withStore("many", (store) =>
      Effect.gen(function*() {
        const entries = Array.from({ length: 1000 }, (_, i) => ({ key: `key:${i}`, value: bytes(`value:${i}`) }))
        yield* store.setMany(entries)
        const got = yield* store.getMany(entries.map((e) => e.key))
        expect(got.map(text)).toEqual(entries.map((_, i) => Option.some(`value:${i}`)))
        expect(yield* store.deleteMany(entries.map((e) => e.key))).toBe(1000)
        const after = yield* store.getMany(entries.map((e) => e.key))
        expect(after.every(Option.isNone)).toBe(true)
      })))

  add(
    "set-if-absent",
    "setIfAbsent writes only when absent and keeps the first value",
    () =>
      withStore("nx", (store) =>
        Effect.gen(function*() {
          expect(yield* store.setIfAbsent("lock", bytes("first"))).toBe(true)
          expect(yield* store.setIfAbsent("lock", bytes("second"))).toBe(false)
          expect(text(yield* store.get("lock"))).toEqual(Option.some("first"))
        }))
  )

  add(
    "set-if-absent-race",
    "setIfAbsent race: of 100 concurrent fibers exactly one wins",
    () =>
      withStore("race", (store) =>
        Effect.gen(function*() {
          const results = yield* Effect.forEach(
            Array.from({ length: 100 }, (_, i) => i),
            (i) => store.setIfAbsent("contended", bytes(`fiber-${i}`)),
            { concurrency: "unbounded" }
          )
          expect(results.filter(Boolean).length).toBe(1)
          const winner = results.indexOf(true)
          expect(text(yield* store.get("contended"))).toEqual(Option.some(`fiber-${winner}`))
        }))
  )

  add(
    "delete",
    "delete and deleteMany report what existed",
    () =>
      withStore("delete", (store) =>
        Effect.gen(function*() {
          yield* store.set("x", bytes("1"))
          yield* store.set("y", bytes("2"))
          expect(yield* store.delete("x")).toBe(true)
          expect(yield* store.delete("x")).toBe(false)
          expect(Option.isNone(yield* store.get("x"))).toBe(true)
          yield* store.set("z", bytes("3"))
          expect(yield* store.deleteMany(["y", "z"])).toBe(2)
          expect(Option.isNone(yield* store.get("y"))).toBe(true)
        }))
  )

  add(
    "ttl",
    "entries expire after their TTL; entries without a TTL do not",
    () =>
      withStore("ttl", (store) =>
        Effect.gen(function*() {
          yield* store.set("short", bytes("s"), shortTtl)
          yield* store.set("forever", bytes("f"))
          expect(text(yield* store.get("short"))).toEqual(Option.some("s"))
          yield* advance(wait)
          expect(Option.isNone(yield* store.get("short"))).toBe(true)
          expect(text(yield* store.get("forever"))).toEqual(Option.some("f"))
          expect((yield* store.getMany(["short", "forever"])).map(Option.isSome)).toEqual([false, true])
        }))
  )

  add("zero-ttl", "a TTL of zero or less removes the key", () =>
    withStore("zero", (store) =>
      Effect.gen(function*() {
        yield* store.set("k", bytes("v"))
        yield* store.set("k", bytes("w"), 0)
        expect(Option.isNone(yield* store.get("k"))).toBe(true)
      })))

  add(
    "max-ttl",
    "a TTL beyond the maximum (365 days) is clamped to it, never dropped or refused",
    () =>
      withStore("ttl-max", (store) =>
        Effect.gen(function*() {
          const huge: ReadonlyArray<Duration.DurationInput> = [
            1e19,
            Number.MAX_VALUE,
            Duration.days(400),
            "1000000 days"
          ]
          for (const [i, ttl] of huge.entries()) {
            yield* store.set(`set${i}`, bytes("v"), ttl)
            expect(yield* store.setIfAbsent(`nx${i}`, bytes("v"), ttl)).toBe(true)
            yield* store.setMany([{ key: `many${i}`, value: bytes("v"), ttl }])
            yield* store.set(`touch${i}`, bytes("v"))
            expect(yield* store.expire(`touch${i}`, ttl)).toBe(true)
          }
          const keys = huge.flatMap((_, i) => [`set${i}`, `nx${i}`, `many${i}`, `touch${i}`])
          expect((yield* store.getMany(keys)).map(text)).toEqual(keys.map(() => Option.some("v")))
          if (!live) {
            // the entries live exactly the maximum
            yield* TestClock.adjust(Duration.subtract(maxTtl, Duration.seconds(1)))
            expect((yield* store.getMany(keys)).every(Option.isSome)).toBe(true)
            yield* TestClock.adjust(Duration.seconds(1))
            expect((yield* store.getMany(keys)).every(Option.isNone)).toBe(true)
          }
        }))
  )

  add(
    "invalid-ttl",
    "a TTL that is no duration (NaN, an unreadable string) fails with a typed error and changes nothing",
    () =>
      withStore("ttl-nan", (store) =>
        Effect.gen(function*() {
          yield* store.set("k", bytes("old"))
          const bad: ReadonlyArray<Duration.DurationInput> = [
            Number.NaN,
            [Number.NaN, 0],
            "soon" as Duration.DurationInput
          ]
          for (const ttl of bad) {
            const attempts = {
              set: store.set("k", bytes("new"), ttl),
              setIfAbsent: store.setIfAbsent("fresh", bytes("new"), ttl),
              setMany: store.setMany([{ key: "other", value: bytes("new") }, { key: "k", value: bytes("new"), ttl }]),
              expire: store.expire("k", ttl)
            }
            for (const [operation, attempt] of Object.entries(attempts)) {
              const result = yield* Effect.either(attempt as Effect.Effect<unknown, { readonly _tag: string }>)
              const refused = Either.isLeft(result) && result.left._tag === "StoreError" &&
                (result.left as { readonly reason?: unknown }).reason
              expect({ ttl: String(ttl), operation, refused }).toEqual({
                ttl: String(ttl),
                operation,
                refused: "command"
              })
            }
          }
          expect(text(yield* store.get("k"))).toEqual(Option.some("old"))
          expect((yield* store.getMany(["fresh", "other"])).every(Option.isNone)).toBe(true)
          if (!live) {
            yield* TestClock.adjust("1000 days")
            expect(text(yield* store.get("k"))).toEqual(Option.some("old"))
          }
        }))
  )

  add(
    "expire",
    "expire sets a new TTL on existing keys only",
    () =>
      withStore("expire", (store) =>
        Effect.gen(function*() {
          yield* store.set("k", bytes("v"))
          expect(yield* store.expire("k", shortTtl)).toBe(true)
          expect(yield* store.expire("missing", shortTtl)).toBe(false)
          expect(text(yield* store.get("k"))).toEqual(Option.some("v"))
          yield* advance(wait)
          expect(Option.isNone(yield* store.get("k"))).toBe(true)
        }))
  )

  add(
    "clear",
    "clear removes this prefix's keys and leaves other prefixes alone",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const base = uniquePrefix("clear")
        const mine = yield* options.make(base)
        // a prefix that the first one is a textual prefix of, and one with glob characters
        const other = yield* options.make(base + "x")
        const globby = yield* options.make(base + "*")
        if (!mine.capabilities.clear) {
          const result = yield* Effect.either(mine.clear)
          expect(result._tag === "Left" && result.left._tag).toBe("UnsupportedCapability")
          return
        }
        yield* mine.set("a", bytes("1"))
        yield* mine.set("b", bytes("2"))
        yield* other.set("a", bytes("other"))
        yield* globby.set("a", bytes("globby"))
        yield* mine.clear
        expect((yield* mine.getMany(["a", "b"])).every(Option.isNone)).toBe(true)
        expect(text(yield* other.get("a"))).toEqual(Option.some("other"))
        expect(text(yield* globby.get("a"))).toEqual(Option.some("globby"))
        yield* globby.clear
        expect(text(yield* other.get("a"))).toEqual(Option.some("other"))
        yield* other.clear
      }))
  )

  add(
    "keys",
    "keys(pattern) lists matching keys, or fails with UnsupportedCapability",
    () =>
      withStore("scan", (store) =>
        Effect.gen(function*() {
          if (!store.capabilities.scan) {
            const result = yield* Effect.either(store.keys("*"))
            expect(result._tag === "Left" && result.left._tag).toBe("UnsupportedCapability")
            return
          }
          yield* store.setMany(["user:1", "user:2", "user:10", "order:1", "us*r:x"].map((key) => ({
            key,
            value: bytes(key)
          })))
          expect([...(yield* store.keys("user:*"))].sort()).toEqual(["user:1", "user:10", "user:2"])
          expect([...(yield* store.keys("user:?"))].sort()).toEqual(["user:1", "user:2"])
          expect([...(yield* store.keys("us\\*r:*"))]).toEqual(["us*r:x"])
          expect([...(yield* store.keys("*"))].length).toBe(5)
        }))
  )

  add(
    "glob",
    "keys(pattern) has one glob semantics, Redis's, on every store that scans",
    () =>
      withStore("glob", (store) =>
        Effect.gen(function*() {
          if (!store.capabilities.scan) return
          yield* store.setMany(globKeys.map((key) => ({ key, value: bytes("v") })))
          for (const [pattern, expected] of globTable) {
            const found = [...(yield* store.keys(pattern))].sort()
            expect({ pattern, found }).toEqual({ pattern, found: [...expected].sort() })
          }
          for (const pattern of badGlobs) {
            const result = yield* Effect.either(store.keys(pattern))
            const refused = Either.isLeft(result) && result.left._tag === "StoreError" && result.left.reason
            expect({ pattern, refused }).toEqual({ pattern, refused: "command" })
          }
        }))
  )

  add(
    "direct-read",
    "a direct read, where a store declares one, reads exactly what get reads",
    () =>
      withStore("direct", (store) =>
        Effect.gen(function*() {
          const direct = CacheStore.directReadOf(store)
          if (direct === undefined) {
            // a declared direct read must belong to the store's own get, or it is never used
            expect(store.directRead).toBeUndefined()
            return
          }
          const read = (key: string): Effect.Effect<Value | undefined, unknown> =>
            direct._tag === "Sync"
              ? Effect.sync(() => direct.read(key))
              : Effect.async((resume) =>
                direct.read(
                  key,
                  // the bytes are the reader's only until the reply returns: a copy is kept
                  (value, error) =>
                    resume(
                      error === undefined
                        ? Effect.succeed(value instanceof Uint8Array ? new Uint8Array(value) : value ?? undefined)
                        : Effect.fail(error)
                    )
                )
              )
          yield* store.set("k", bytes("v"), shortTtl)
          expect(new TextDecoder().decode((yield* read("k")) as Uint8Array)).toBe("v")
          expect(yield* read("missing")).toBeUndefined()
          yield* advance(wait)
          expect(yield* read("k")).toBeUndefined()
          expect(Option.isNone(yield* store.get("k"))).toBe(true)
        }))
  )

  add(
    "live-values",
    "live stores keep objects by reference; byte stores refuse them with a typed error",
    () =>
      withStore("live", (store) =>
        Effect.gen(function*() {
          const obj = { hello: "world" }
          if (store.capabilities.live) {
            yield* store.set("obj", obj)
            expect(Option.getOrThrow(yield* store.get("obj"))).toBe(obj)
          } else {
            const result = yield* Effect.either(store.set("obj", obj))
            expect(result._tag === "Left" && result.left._tag).toBe("EncodeError")
          }
        }))
  )

  add(
    "lease",
    "a lease has one holder, lapses after its TTL, is extended and released only by its token, and is no entry",
    () =>
      withStore("lease", (store) =>
        Effect.gen(function*() {
          const lease = store.lease
          if (lease === undefined) {
            // an optional capability: without it, a cache that asks for the lock is refused, typed
            const locked = Cache.cached({
              namespace: "n",
              key: "k",
              value: Schema.String,
              ttl: "1 minute",
              lock: { ttl: "1 second", wait: "1 second" }
            })
            const result = yield* Effect.either(
              Effect.provideService(locked(Effect.succeed("v")), CacheStore.CacheStore, store)
            )
            expect(Either.isLeft(result) && result.left._tag).toBe("UnsupportedCapability")
            return
          }
          const token = Option.getOrThrow(yield* lease.acquire("k", "10 seconds"))
          expect(Option.isNone(yield* lease.acquire("k", "10 seconds"))).toBe(true)
          // another key has a lease of its own (tokens are unique per key, not across keys)
          expect(Option.isSome(yield* lease.acquire("k2", "10 seconds"))).toBe(true)
          expect(yield* lease.extend("k", "not-the-token", "10 seconds")).toBe(false)
          expect(yield* lease.release("k", "not-the-token")).toBe(false)
          expect(Option.isNone(yield* lease.acquire("k", "10 seconds"))).toBe(true)
          expect(yield* lease.extend("k", token, "20 seconds")).toBe(true)
          // the lease is not an entry: not read, not listed
          expect(Option.isNone(yield* store.get("k"))).toBe(true)
          expect(Option.isNone((yield* store.getMany(["k"]))[0]!)).toBe(true)
          if (store.capabilities.scan) expect(yield* store.keys("*")).toEqual([])
          if (lease.endsOnWrite === true) {
            // the lease lives in the entry: a write of the key ends it
            yield* store.set("k", bytes("v"), "1 hour")
            expect(text(yield* store.get("k"))).toEqual(Option.some("v"))
            expect(yield* lease.release("k", token)).toBe(false)
            expect(yield* lease.extend("k", token, "10 seconds")).toBe(false)
            // a lease on an entry that exists: one holder; released, the entry is as it was
            const onEntry = Option.getOrThrow(yield* lease.acquire("k", "10 seconds"))
            expect(Option.isNone(yield* lease.acquire("k", "10 seconds"))).toBe(true)
            expect(text(yield* store.get("k"))).toEqual(Option.some("v"))
            expect(yield* lease.release("k", onEntry)).toBe(true)
            expect(text(yield* store.get("k"))).toEqual(Option.some("v"))
          } else {
            // the lease lives apart: a write, a delete or a clear of the key leaves it
            yield* store.set("k", bytes("v"))
            expect(text(yield* store.get("k"))).toEqual(Option.some("v"))
            expect(yield* store.delete("k")).toBe(true)
            if (store.capabilities.clear) yield* store.clear
            expect(Option.isNone(yield* lease.acquire("k", "10 seconds"))).toBe(true)
            expect(yield* lease.release("k", token)).toBe(true)
            expect(yield* lease.release("k", token)).toBe(false)
            expect(yield* lease.extend("k", token, "10 seconds")).toBe(false)
          }
          expect(Option.isSome(yield* lease.acquire("k", "10 seconds"))).toBe(true)
          for (const ttl of [0, -1, Duration.infinity, NaN, "soon"] as const) {
            const refused = yield* Effect.either(lease.acquire("bad", ttl as Duration.DurationInput))
            const reason = Either.isLeft(refused) && refused.left._tag === "StoreError" && refused.left.reason
            expect({ ttl: String(ttl), reason }).toEqual({ ttl: String(ttl), reason: "command" })
          }

          // a lease that is not extended lapses; the old token cannot touch the next holder's
          const old = Option.getOrThrow(yield* lease.acquire("short", shortTtl))
          const kept = Option.getOrThrow(yield* lease.acquire("kept", shortTtl))
          expect(yield* lease.extend("kept", kept, "10 seconds")).toBe(true)
          yield* advance(wait)
          expect(Option.isNone(yield* lease.acquire("kept", "10 seconds"))).toBe(true)
          const next = Option.getOrThrow(yield* lease.acquire("short", "10 seconds"))
          expect(next === old).toBe(false)
          expect(yield* lease.extend("short", old, "10 seconds")).toBe(false)
          expect(yield* lease.release("short", old)).toBe(false)
          expect(Option.isNone(yield* lease.acquire("short", "10 seconds"))).toBe(true)
          expect(yield* lease.release("short", next)).toBe(true)

          // of 100 concurrent acquisitions, exactly one gets a token
          const results = yield* Effect.forEach(
            Array.from({ length: 100 }),
            () => lease.acquire("contended", "10 seconds"),
            { concurrency: "unbounded" }
          )
          expect(results.filter(Option.isSome).length).toBe(1)
        }))
  )

  add(
    "versioned",
    "versioned writes: a lower or equal version never replaces a higher one; of 100 concurrent writes the highest stays",
    () =>
      withStore("versioned", (store) =>
        Effect.gen(function*() {
          const versioned = store.versioned
          if (versioned === undefined) {
            // an optional capability: without it, a versioned write is refused, typed
            const result = yield* Effect.provideService(
              CacheAside.make({ namespace: "n", value: Schema.String, ttl: "1 minute" }),
              CacheStore.CacheStore,
              store
            ).pipe(Effect.flatMap((docs) => Effect.either(docs.setVersioned("k", "v", 1))), Effect.scoped)
            expect(Either.isLeft(result) && result.left._tag).toBe("UnsupportedCapability")
            return
          }
          const at = (version: number) => bytes(`{"f":3,"n":${version},"b":"value ${version}"}`)
          const read = (key: string) => Effect.map(store.get(key), Option.map((v) => CacheStore.versionOf(v)))
          expect(yield* versioned.setIfNewer("k", at(5), 5)).toEqual(Option.none())
          expect(yield* read("k")).toEqual(Option.some(5))
          expect(yield* versioned.setIfNewer("k", at(3), 3)).toEqual(Option.some(5))
          expect(yield* versioned.setIfNewer("k", at(5), 5)).toEqual(Option.some(5))
          expect(yield* versioned.setIfNewer("k", at(8), 8)).toEqual(Option.none())
          expect(text(yield* store.get("k"))).toEqual(Option.some(`{"f":3,"n":8,"b":"value 8"}`))
          // a value written without a version holds version 0
          yield* store.set("plain", bytes("plain"))
          expect(yield* versioned.setIfNewer("plain", at(1), 1)).toEqual(Option.none())
          // an already-expired value is not kept
          expect(yield* versioned.setIfNewer("gone", at(1), 1, 0)).toEqual(Option.none())
          expect(yield* store.get("gone")).toEqual(Option.none())

          // 100 concurrent writes, highest and lowest alternating: version 100 stays
          const order = Array.from({ length: 100 }, (_, i) => i % 2 === 0 ? 100 - i / 2 : 1 + (i - 1) / 2)
          const results = yield* Effect.forEach(
            order,
            (version) =>
              Effect.map(versioned.setIfNewer("contended", at(version), version), (r) => [version, r] as const),
            { concurrency: "unbounded" }
          )
          expect(yield* read("contended")).toEqual(Option.some(100))
          for (const [version, result] of results) {
            if (Option.isSome(result)) expect(result.value >= version).toBe(true)
          }
        }))
  )

  add(
    "fence",
    "a fenced write lands only on nothing or on what its read found; a swap leaves a marker and gives back what was there",
    () =>
      withStore("fence", (store) =>
        Effect.gen(function*() {
          const fence = store.fence
          if (fence === undefined) {
            // an optional capability: without it, a cache writes loaded values with `set`
            const cached = Cache.cached({ namespace: "n", key: "k", value: Schema.String, ttl: "1 minute" })
            const run = (value: string) =>
              Effect.provideService(cached(Effect.succeed(value)), CacheStore.CacheStore, store)
            expect(yield* run("v")).toBe("v")
            expect(yield* run("w")).toBe("v")
            return
          }
          // expecting nothing: written on nothing only
          expect(yield* fence.setIf("k", undefined, bytes("A:one"), "1 hour")).toBe(true)
          expect(yield* fence.setIf("k", undefined, bytes("B:two"), "1 hour")).toBe(false)
          expect(text(yield* store.get("k"))).toEqual(Option.some("A:one"))
          // expecting bytes: written on a value that begins with them, or on nothing
          expect(yield* fence.setIf("k", bytes("B:"), bytes("C:three"), "1 hour")).toBe(false)
          expect(yield* fence.setIf("k", bytes("A:"), bytes("B:two"), "1 hour")).toBe(true)
          expect(yield* fence.setIf("k", bytes("A:"), bytes("C:three"), "1 hour")).toBe(false)
          expect(text(yield* store.get("k"))).toEqual(Option.some("B:two"))
          expect(yield* fence.setIf("gone", bytes("A:"), bytes("D:four"), "1 hour")).toBe(true)
          expect(text(yield* store.get("gone"))).toEqual(Option.some("D:four"))
          // a value shorter than the expected bytes is not what was read
          yield* store.set("short", bytes("A"))
          expect(yield* fence.setIf("short", bytes("A:"), bytes("E:five"), "1 hour")).toBe(false)
          // a swap leaves its marker for its TTL and gives back what the key held
          expect(text(yield* fence.swap("k", bytes("M:marker"), shortTtl))).toEqual(Option.some("B:two"))
          expect(text(yield* store.get("k"))).toEqual(Option.some("M:marker"))
          expect(yield* fence.setIf("k", bytes("B:"), bytes("F:six"), "1 hour")).toBe(false)
          expect(Option.isNone(yield* fence.swap("never", bytes("M:marker"), shortTtl))).toBe(true)
          // the TTL of a fenced write holds
          expect(yield* fence.setIf("brief", undefined, bytes("G:seven"), shortTtl)).toBe(true)
          yield* advance(wait)
          expect(Option.isNone(yield* store.get("brief"))).toBe(true)
          expect(Option.isNone(yield* store.get("k"))).toBe(true)
          if (store.capabilities.live) {
            // a live store compares objects by identity
            const read = { v: 1 }
            yield* store.set("obj", read)
            expect(yield* fence.setIf("obj", { v: 1 }, { v: 2 })).toBe(false)
            expect(yield* fence.setIf("obj", read, { v: 3 })).toBe(true)
            expect(Option.getOrThrow(yield* store.get("obj"))).toEqual({ v: 3 })
          }
          // of 100 concurrent writes expecting the same value, exactly one lands
          yield* store.set("contended", bytes("H:base"), "1 hour")
          const results = yield* Effect.forEach(
            Array.from({ length: 100 }, (_, i) => i),
            (i) => fence.setIf("contended", bytes("H:"), bytes(`I${i}:next`), "1 hour"),
            { concurrency: "unbounded" }
          )
          expect(results.filter(Boolean).length).toBe(1)
          if (fence.epoch !== undefined && store.capabilities.clear) {
            // a load that began before the keys moved (a clear, on a store with an epoch) does not land
            const before = fence.epoch()
            yield* store.clear
            expect(yield* fence.setIf("moved", undefined, bytes("J:late"), "1 hour", before)).toBe(false)
            expect(Option.isNone(yield* store.get("moved"))).toBe(true)
            expect(yield* fence.setIf("moved", undefined, bytes("K:now"), "1 hour", fence.epoch())).toBe(true)
          }
        }))
  )

  runner.describe(`CacheStore conformance: ${name}`, () => {
    for (const test of registered) {
      if (selected.has(test.id)) runner.it(test.title, () => runCase(Effect.suspend(test.run), options.clock))
    }
  })
}
