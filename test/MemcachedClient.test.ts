/**
 * The meta-protocol client against real memcached processes: every command and answer form,
 * quiet pipelines and opaque matching, 20,000 requests in flight on one connection, and what
 * happens when the stream goes wrong (error lines, forged answers, silence, a refused port).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, Schedule } from "effect"
import type { Scope } from "effect"
import type { StoreError } from "../src/CacheError.js"
import * as Connection from "../src/internal/memcached/connection.js"
import * as Keys from "../src/internal/memcached/keys.js"
import * as Protocol from "../src/internal/memcached/protocol.js"
import { bytes } from "../src/internal/testing/bytes.js"
import { fixture } from "./harness/fixture.js"
import { startMemcacheds } from "./harness/memcached.js"
import { startMemcached } from "./harness/memcached.js"
import { eventually } from "./harness/process.js"
import { freePort } from "./harness/process.js"
import { tcpProxy } from "./harness/proxy.js"
import { wallClockSteppedBack } from "./utils.js"

const servers = fixture(startMemcacheds(1))

const connect = (
  port: number,
  options: Partial<Connection.ConnectionOptions> = {}
): Effect.Effect<Connection.Connection, never, Scope.Scope> =>
  Connection.make({
    host: "127.0.0.1",
    port,
    timeout: "5 seconds",
    connectTimeout: "1 second",
    reconnect: Schedule.spaced("20 millis"),
    label: `127.0.0.1:${port}`,
    ...options
  })

let run = 0
/** Keys unique to one test, so tests sharing the server never see each other's items. */
const keys = () => {
  const id = `t${process.pid}-${Date.now().toString(36)}-${run++}`
  return (name: string) => Keys.wireKey(`${id}:${name}`)!
}
/** A value read through `readValue`, as an Effect. */
const valueOf = (c: Connection.Connection, key: Keys.WireKey, view: boolean) =>
  Effect.async<Uint8Array | null, StoreError>((resume) =>
    c.readValue(
      key,
      "get",
      undefined,
      (_, value, __, error) => resume(error === undefined ? Effect.succeed(value) : Effect.fail(error)),
      view
    )
  )
/** A value read through `readValue` as text (`<miss>` for a miss), decoded before the reply returns, with its marks. */
const textOf = (c: Connection.Connection, key: Keys.WireKey, view: boolean) =>
  Effect.async<{ readonly text: string; readonly marks: number }, StoreError>((resume) =>
    c.readValue(
      key,
      "get",
      undefined,
      (_, value, marks, error) =>
        resume(
          error !== undefined
            ? Effect.fail(error)
            : Effect.succeed({ text: value === null ? "<miss>" : new TextDecoder().decode(value), marks })
        ),
      view
    )
  )
const text = (r: Protocol.Response) => r._tag === "VA" ? new TextDecoder().decode(r.value) : `<${r._tag}>`

describe("meta protocol client", () => {
  it.scopedLive("mg: misses, values and the flags t c f k s h l u, opaque echoed", () =>
    Effect.gen(function*() {
      const c = yield* connect(servers()[0]!.port)
      const k = keys()
      const miss = yield* c.execute({ _tag: "mg", key: k("nope"), value: true }, "test")
      expect(miss._tag).toBe("EN")
      expect(yield* c.execute({ _tag: "ms", key: k("a"), value: bytes("hello"), clientFlags: 42 }, "test"))
        .toMatchObject({
          _tag: "HD"
        })
      const hit = yield* c.execute(
        { _tag: "mg", key: k("a"), value: true, ttl: true, cas: true, clientFlags: true, returnKey: true, size: true },
        "test"
      )
      expect(hit._tag).toBe("VA")
      expect(text(hit)).toBe("hello")
      const flags = (hit as Protocol.ValueResponse).flags
      expect(flags.ttl).toBe(-1)
      expect(typeof flags.cas).toBe("bigint")
      expect(flags.cas! > 0n).toBe(true)
      expect(flags.clientFlags).toBe(42)
      expect(flags.key).toBe(k("a").token)
      expect(flags.size).toBe(5)
      expect(flags.opaque).toMatch(/^[0-9a-z]+$/)
      // h/l report the state before this access; u leaves it alone
      const fresh = yield* c.execute({ _tag: "ms", key: k("h"), value: bytes("x") }, "test")
      expect(fresh._tag).toBe("HD")
      const untouched = yield* c.execute({ _tag: "mg", key: k("h"), hit: true, noBump: true }, "test")
      expect(untouched).toMatchObject({ _tag: "HD", flags: { hit: false } })
      const first = yield* c.execute({ _tag: "mg", key: k("h"), hit: true, lastAccess: true }, "test")
      expect(first).toMatchObject({ _tag: "HD", flags: { hit: false } })
      expect(typeof (first as Protocol.StatusResponse).flags.lastAccess).toBe("number")
      const second = yield* c.execute({ _tag: "mg", key: k("h"), hit: true }, "test")
      expect(second).toMatchObject({ _tag: "HD", flags: { hit: true } })
    }))

  it.scopedLive("mg: T touches, N vivifies (W then Z), R wins a recache, and invalidated items are stale (X)", () =>
    Effect.gen(function*() {
      const c = yield* connect(servers()[0]!.port)
      const k = keys()
      yield* c.execute({ _tag: "ms", key: k("t"), value: bytes("v") }, "test")
      expect((yield* c.execute({ _tag: "mg", key: k("t"), touch: 100 }, "test"))._tag).toBe("HD")
      const ttl = (yield* c.execute({ _tag: "mg", key: k("t"), ttl: true }, "test")) as Protocol.StatusResponse
      expect(ttl.flags.ttl).toBeGreaterThan(95)
      expect(ttl.flags.ttl).toBeLessThanOrEqual(100)
      expect((yield* c.execute({ _tag: "mg", key: k("absent"), touch: 100 }, "test"))._tag).toBe("EN")

      const won = yield* c.execute({ _tag: "mg", key: k("viv"), value: true, vivify: 30 }, "test")
      expect(won).toMatchObject({ _tag: "VA", flags: { win: true } })
      expect((won as Protocol.ValueResponse).value.byteLength).toBe(0)
      const lost = yield* c.execute({ _tag: "mg", key: k("viv"), value: true, vivify: 30 }, "test")
      expect(lost).toMatchObject({ _tag: "VA", flags: { winSent: true } })
      expect((lost as Protocol.ValueResponse).flags.win).toBeUndefined()

      yield* c.execute({ _tag: "ms", key: k("r"), value: bytes("r"), ttl: 10 }, "test")
      expect(yield* c.execute({ _tag: "mg", key: k("r"), value: true, recache: 30 }, "test")).toMatchObject({
        flags: { win: true }
      })
      expect(yield* c.execute({ _tag: "mg", key: k("r"), value: true, recache: 30 }, "test")).toMatchObject({
        flags: { winSent: true }
      })

      yield* c.execute({ _tag: "ms", key: k("s"), value: bytes("old") }, "test")
      expect((yield* c.execute({ _tag: "md", key: k("s"), invalidate: true, ttl: 30 }, "test"))._tag).toBe("HD")
      const stale = yield* c.execute({ _tag: "mg", key: k("s"), value: true, ttl: true }, "test")
      expect(stale).toMatchObject({ _tag: "VA", flags: { stale: true, win: true, ttl: 30 } })
      expect(text(stale)).toBe("old")
    }))

  it.scopedLive("ms: the modes set, add, replace, append, prepend; CAS compare (EX, NF) and invalidate", () =>
    Effect.gen(function*() {
      const c = yield* connect(servers()[0]!.port)
      const k = keys()
      const set = (request: Omit<Protocol.MetaSet, "_tag" | "key" | "value">, key: string, value: string) =>
        c.execute({ _tag: "ms", key: k(key), value: bytes(value), ...request }, "test")
      const get = (key: string) =>
        Effect.map(c.execute({ _tag: "mg", key: k(key), value: true, cas: true }, "test"), text)

      expect((yield* set({ mode: "replace" }, "m", "r"))._tag).toBe("NS")
      expect((yield* set({ mode: "add" }, "m", "first"))._tag).toBe("HD")
      expect((yield* set({ mode: "add" }, "m", "second"))._tag).toBe("NS")
      expect(yield* get("m")).toBe("first")
      expect((yield* set({ mode: "append" }, "m", ">"))._tag).toBe("HD")
      expect((yield* set({ mode: "prepend" }, "m", "<"))._tag).toBe("HD")
      expect(yield* get("m")).toBe("<first>")
      expect((yield* set({ mode: "replace" }, "m", "replaced"))._tag).toBe("HD")
      expect((yield* set({ mode: "set" }, "m", "set"))._tag).toBe("HD")
      expect((yield* set({ mode: "append" }, "missing", "x"))._tag).toBe("NS")

      const stored = yield* set({ returnCas: true, returnKey: true }, "cas", "v1")
      expect(stored).toMatchObject({ _tag: "HD", flags: { key: k("cas").token } })
      const cas = (stored as Protocol.StatusResponse).flags.cas!
      expect((yield* set({ compareCas: cas + 1000n }, "cas", "nope"))._tag).toBe("EX")
      expect((yield* set({ compareCas: 1n }, "never-stored", "nope"))._tag).toBe("NF")
      expect((yield* set({ compareCas: cas }, "cas", "v2"))._tag).toBe("HD")
      expect(yield* get("cas")).toBe("v2")
      // an older CAS with I is accepted, and the item is marked stale
      expect((yield* set({ compareCas: 1n, invalidate: true }, "cas", "v3"))._tag).toBe("HD")
      expect(yield* c.execute({ _tag: "mg", key: k("cas"), value: true }, "test")).toMatchObject({
        flags: { stale: true }
      })

      expect((yield* set({ ttl: 100, clientFlags: 7 }, "ft", "x"))._tag).toBe("HD")
      expect(yield* c.execute({ _tag: "mg", key: k("ft"), ttl: true, clientFlags: true }, "test")).toMatchObject({
        flags: { clientFlags: 7 }
      })
    }))

  it.scopedLive("md and ma: delete, CAS, invalidate; incr, decr (floored at 0), vivify with an initial value", () =>
    Effect.gen(function*() {
      const c = yield* connect(servers()[0]!.port)
      const k = keys()
      yield* c.execute({ _tag: "ms", key: k("d"), value: bytes("x") }, "test")
      expect((yield* c.execute({ _tag: "md", key: k("d"), compareCas: 1n }, "test"))._tag).toBe("EX")
      expect(yield* c.execute({ _tag: "md", key: k("d"), returnKey: true }, "test")).toMatchObject({
        _tag: "HD",
        flags: { key: k("d").token }
      })
      expect((yield* c.execute({ _tag: "md", key: k("d") }, "test"))._tag).toBe("NF")

      expect((yield* c.execute({ _tag: "ma", key: k("n") }, "test"))._tag).toBe("NF")
      const created = yield* c.execute(
        { _tag: "ma", key: k("n"), vivify: 0, initial: 5, returnValue: true, returnTtl: true, returnCas: true },
        "test"
      )
      expect(text(created)).toBe("5")
      expect(created).toMatchObject({ flags: { ttl: -1 } })
      expect(text(yield* c.execute({ _tag: "ma", key: k("n"), delta: 10n, returnValue: true }, "test"))).toBe("15")
      expect(text(yield* c.execute({ _tag: "ma", key: k("n"), mode: "decr", delta: 100, returnValue: true }, "test")))
        .toBe("0")
      expect(yield* c.execute({ _tag: "ma", key: k("n"), ttl: 50, returnTtl: true }, "test")).toMatchObject({
        _tag: "HD",
        flags: { ttl: 50 }
      })
      const big = yield* c.execute(
        { _tag: "ma", key: k("big"), vivify: 0, initial: 0xffff_ffff_ffff_fffen, returnValue: true },
        "test"
      )
      expect(text(big)).toBe("18446744073709551614")
    }))

  it.scopedLive("mn and me: the no-op, and the debug dump of an item", () =>
    Effect.gen(function*() {
      const c = yield* connect(servers()[0]!.port)
      const k = keys()
      expect(yield* c.execute(Protocol.noop, "test")).toEqual({ _tag: "MN" })
      expect((yield* c.execute({ _tag: "me", key: k("none") }, "test"))._tag).toBe("EN")
      yield* c.execute({ _tag: "ms", key: k("dbg"), value: bytes("12345"), ttl: 100 }, "test")
      const dump = yield* c.execute({ _tag: "me", key: k("dbg") }, "test")
      expect(dump._tag).toBe("ME")
      const fields = (dump as Protocol.DebugResponse).fields
      // memcached's own rendering of the expiry; only "-1" would mean none
      expect(Number.isInteger(Number(fields["exp"]))).toBe(true)
      expect(fields["exp"]).not.toBe("-1")
      expect(fields["fetch"]).toBe("no")
      expect(Object.keys(fields)).toEqual(expect.arrayContaining(["exp", "la", "cas", "fetch", "cls", "size"]))
    }))

  it.scopedLive("binary keys travel base64 with the b flag and come back marked as such", () =>
    Effect.gen(function*() {
      const c = yield* connect(servers()[0]!.port)
      const key = Keys.wireKey(`bin ${Date.now()}\r\n\u0000ключ`)!
      expect(key.base64).toBe(true)
      yield* c.execute({ _tag: "ms", key, value: bytes("binary") }, "test")
      const got = yield* c.execute({ _tag: "mg", key, value: true, returnKey: true }, "test")
      expect(text(got)).toBe("binary")
      expect(got).toMatchObject({ flags: { base64: true, key: key.token } })
      const raw = Keys.wireKeyFromBytes(new Uint8Array([0, 1, 2, 255, 32, 10]))!
      expect(raw.base64).toBe(true)
      yield* c.execute({ _tag: "ms", key: raw, value: bytes("bytes") }, "test")
      expect(text(yield* c.execute({ _tag: "mg", key: raw, value: true }, "test"))).toBe("bytes")
    }))

  it.scopedLive("quiet pipelines: suppressed answers stand for their defaults, the rest match by opaque", () =>
    Effect.gen(function*() {
      const c = yield* connect(servers()[0]!.port)
      const k = keys()
      yield* c.pipeline(
        Array.from(
          { length: 50 },
          (_, i) => ({ _tag: "ms", key: k(`p${i}`), value: bytes(`v${i}`), quiet: true }) as const
        ),
        "test"
      )
      // hits and misses interleaved, quiet and loud requests mixed
      const requests: Array<Protocol.Request> = []
      for (let i = 0; i < 100; i++) {
        requests.push({ _tag: "mg", key: k(`p${i}`), value: true, quiet: i % 3 !== 0 })
      }
      requests.push({ _tag: "ms", key: k("p0"), value: bytes("add"), mode: "add", quiet: true })
      requests.push({ _tag: "md", key: k("nothing"), quiet: true })
      requests.push({ _tag: "md", key: k("p1"), quiet: true })
      requests.push({ _tag: "me", key: k("p2") })
      const answers = yield* c.pipeline(requests, "test")
      expect(answers.length).toBe(requests.length)
      for (let i = 0; i < 100; i++) {
        expect(text(answers[i]!)).toBe(i < 50 ? `v${i}` : "<EN>")
      }
      expect(answers[100]!._tag).toBe("NS") // add on an existing key is not suppressed
      expect(answers[101]!._tag).toBe("NF") // a miss on delete is not suppressed
      expect(answers[102]!._tag).toBe("HD") // the suppressed success
      expect(answers[103]!._tag).toBe("ME")
      expect(yield* c.pipeline([], "test")).toEqual([])
      // value reads sent in the same burst as quiet requests whose answers the server suppresses:
      // each read's answer reaches it past the quiet ones, hit or miss
      const valueRead = (name: string) => Effect.map(textOf(c, k(name), false), (got) => got.text)
      const mixed = yield* Effect.all([
        c.pipeline([
          { _tag: "ms", key: k("p3"), value: bytes("three"), quiet: true },
          { _tag: "mg", key: k("p4"), value: true, quiet: true }
        ], "test"),
        valueRead("p3"),
        c.pipeline([{ _tag: "md", key: k("p5"), quiet: true }, { _tag: "mg", key: k("p60"), quiet: true }], "test"),
        valueRead("p5"),
        valueRead("p6")
      ], { concurrency: "unbounded" })
      expect(mixed.slice(1).filter((x) => typeof x === "string")).toEqual(["three", "<miss>", "v6"])
    }))

  it.scopedLive("value reads share classic get lines: hits, misses, repeats, stubs and other requests in between", () =>
    Effect.gen(function*() {
      const c = yield* connect(servers()[0]!.port)
      const k = keys()
      const n = 5_000
      // every third key absent; a few empty values; one lease stub; base64 keys among plain ones
      const name = (i: number) => i % 97 === 0 ? `b ${i}` : `g${i}`
      yield* c.pipeline(
        Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 !== 0).map((i) =>
          ({
            _tag: "ms",
            key: k(name(i)),
            value: i % 50 === 1 ? new Uint8Array(0) : bytes(`value-${i}`.repeat(1 + (i % 7))),
            quiet: true
          }) as const
        ),
        "test"
      )
      const stub = yield* c.execute({ _tag: "mg", key: k("stub"), value: true, vivify: 30 }, "test")
      expect(stub).toMatchObject({ _tag: "VA", flags: { win: true } })
      const expected = (i: number) => i % 3 === 0 ? "<miss>" : i % 50 === 1 ? "" : `value-${i}`.repeat(1 + (i % 7))
      // half the reads take views into the socket's chunk
      const valueRead = (key: string) => textOf(c, k(key), key.length % 2 === 0)
      // reads of each key twice in a row, in a shuffled order, with other requests in between
      const order = Array.from({ length: n }, (_, i) => (i * 7919) % n)
      const results = yield* Effect.forEach(
        order,
        (i) =>
          i % 500 === 0
            ? Effect.zipWith(
              c.execute({ _tag: "mg", key: k(name(i)), value: true }, "test"),
              valueRead(name(i)),
              (_, got) => [got, got] as const
            )
            : Effect.all([valueRead(name(i)), valueRead(name(i))], { concurrency: "unbounded" }),
        { concurrency: "unbounded" }
      )
      let wrong = 0
      for (let j = 0; j < n; j++) {
        const want = expected(order[j]!)
        for (const got of results[j]!) if (got.text !== want || got.marks !== 0) wrong++
      }
      expect(wrong).toBe(0)
      // a lease's stub (an empty item with flags 0) is told from a stored empty value (flags 1)
      const stubRead = yield* valueRead("stub")
      expect(stubRead).toEqual({ text: "", marks: Protocol.MARK_WIN_SENT })
      expect(yield* valueRead(name(1))).toEqual({ text: "", marks: 0 })
      // a quiet request the server says nothing for, then a line: the line's answer settles it
      const [quiet, after] = yield* Effect.all([
        c.execute({ _tag: "ms", key: k("quiet"), value: bytes("q"), quiet: true }, "test"),
        valueRead("quiet")
      ], { concurrency: "unbounded" })
      expect(quiet._tag).toBe("HD")
      expect(after).toEqual({ text: "q", marks: 0 })
      expect(c.inFlight()).toBe(0)
      // a value larger than a socket read, the classic way
      const big = new Uint8Array(300 * 1000).map((_, i) => (i * 31) % 256)
      yield* c.execute({ _tag: "ms", key: k("big"), value: big }, "test")
      const [kept, viewed] = yield* Effect.all([valueOf(c, k("big"), false), valueOf(c, k("big"), true)], {
        concurrency: "unbounded"
      })
      expect(kept === null ? null : new Uint8Array(kept)).toEqual(big)
      expect(viewed === null ? null : new Uint8Array(viewed)).toEqual(big)
      // a value kept is a copy of its own, not a view into the chunk it arrived in
      expect(kept!.buffer.byteLength).toBe(big.byteLength)
    }))

  it.scopedLive("20,000 concurrent gets on one connection each get their own value", () =>
    Effect.gen(function*() {
      const c = yield* connect(servers()[0]!.port)
      const k = keys()
      const n = 20_000
      const ids = Array.from({ length: n }, (_, i) => i)
      yield* c.pipeline(
        ids.map((i) => ({ _tag: "ms", key: k(`c${i}`), value: bytes(`value-${i}`), quiet: true }) as const),
        "test"
      )
      const got = yield* Effect.forEach(
        ids,
        (i) => Effect.map(c.execute({ _tag: "mg", key: k(`c${i}`), value: true }, "test"), text),
        { concurrency: "unbounded" }
      )
      let wrong = 0
      for (let i = 0; i < n; i++) if (got[i] !== `value-${i}`) wrong++
      expect(wrong).toBe(0)
      expect(c.inFlight()).toBe(0)
    }))

  it.scopedLive("values are binary-safe in both directions, from empty to 1 MB split over many reads", () =>
    Effect.gen(function*() {
      const c = yield* connect(servers()[0]!.port)
      const k = keys()
      const big = new Uint8Array(1000 * 1000)
      for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 13) % 256
      const tricky = bytes("VA 3 O1\r\nEN\r\nMN\r\n\r\n")
      const answers = yield* c.pipeline(
        [
          { _tag: "ms", key: k("big"), value: big },
          { _tag: "ms", key: k("empty"), value: new Uint8Array(0) },
          { _tag: "ms", key: k("tricky"), value: tricky },
          { _tag: "mg", key: k("big"), value: true },
          { _tag: "mg", key: k("empty"), value: true },
          { _tag: "mg", key: k("tricky"), value: true }
        ],
        "test"
      )
      expect(answers.slice(0, 3).map((a) => a._tag)).toEqual(["HD", "HD", "HD"])
      expect(Buffer.compare((answers[3] as Protocol.ValueResponse).value, big)).toBe(0)
      expect((answers[4] as Protocol.ValueResponse).value.byteLength).toBe(0)
      expect(Buffer.compare((answers[5] as Protocol.ValueResponse).value, tricky)).toBe(0)
    }))

  it.scopedLive("an error line fails the requests in flight with typed errors and the connection recovers", () =>
    Effect.gen(function*() {
      const c = yield* connect(servers()[0]!.port)
      const k = keys()
      yield* c.execute({ _tag: "ms", key: k("num"), value: bytes("not a number") }, "test")
      yield* c.execute({ _tag: "ms", key: k("ok"), value: bytes("fine") }, "test")
      // incrementing a non-number makes memcached answer CLIENT_ERROR; the gets behind it share the connection
      const results = yield* Effect.forEach(
        [
          c.execute({ _tag: "ma", key: k("num") }, "incr"),
          ...Array.from({ length: 5 }, () => c.execute({ _tag: "mg", key: k("ok"), value: true }, "get"))
        ],
        Effect.either,
        { concurrency: "unbounded" }
      )
      const first = results[0]!
      expect(Either.isLeft(first) && first.left).toMatchObject({
        _tag: "StoreError",
        reason: "command",
        operation: "incr"
      })
      expect(Either.isLeft(first) && first.left.detail).toContain("CLIENT_ERROR")
      for (const r of results.slice(1)) {
        // each either got its own answer, or failed with a typed error: never the other's answer
        if (Either.isRight(r)) expect(text(r.right)).toBe("fine")
        else expect(r.left).toMatchObject({ _tag: "StoreError", reason: "connection" })
      }
      yield* eventually(
        "the connection to reopen",
        Effect.map(c.execute({ _tag: "mg", key: k("ok"), value: true }, "get"), (r) => text(r) === "fine")
      )
      // a value over the server's item size limit: SERVER_ERROR, same recovery
      const tooBig = yield* Effect.either(
        c.execute({ _tag: "ms", key: k("huge"), value: new Uint8Array(2 * 1024 * 1024) }, "set")
      )
      expect(Either.isLeft(tooBig) && tooBig.left).toMatchObject({ reason: "command" })
      expect(Either.isLeft(tooBig) && tooBig.left.detail).toContain("SERVER_ERROR")
      yield* eventually(
        "the connection to reopen",
        Effect.map(c.execute({ _tag: "mg", key: k("ok"), value: true }, "get"), (r) => text(r) === "fine")
      )
    }))

  it.scopedLive("a forged answer with a foreign opaque is caught: in-flight requests fail, none reads another's answer", () =>
    Effect.gen(function*() {
      const proxy = yield* tcpProxy({ host: "127.0.0.1", port: servers()[0]!.port })
      const c = yield* connect(proxy.port)
      const k = keys()
      yield* c.execute({ _tag: "ms", key: k("x"), value: bytes("real") }, "test")
      proxy.setMode("hold-replies")
      const fiber = yield* Effect.fork(
        Effect.forEach(
          Array.from({ length: 10 }, (_, i) => i),
          () => Effect.either(c.execute({ _tag: "mg", key: k("x"), value: true }, "get")),
          {
            concurrency: "unbounded"
          }
        )
      )
      yield* eventually("10 requests in flight", Effect.sync(() => c.inFlight() === 10))
      proxy.inject("VA 6 Ozzzz\r\nforged\r\n")
      proxy.setMode("forward")
      const results = yield* Fiber.join(fiber)
      expect(results.length).toBe(10)
      for (const r of results) {
        expect(Either.isLeft(r) && r.left).toMatchObject({ _tag: "StoreError", reason: "protocol" })
      }
      expect(Either.isLeft(results[0]!) && results[0]!.left.detail).toContain("opaque mismatch")
      yield* eventually(
        "a fresh connection",
        Effect.map(c.execute({ _tag: "mg", key: k("x"), value: true }, "get"), (r) => text(r) === "real")
      )
      // forged answers to value reads (the short way): every read in flight fails, none takes it
      const forgedReads = (names: ReadonlyArray<string>, forgery: string, detail: string) =>
        Effect.gen(function*() {
          proxy.setMode("hold-replies")
          const reads = yield* Effect.fork(Effect.forEach(
            names,
            (name) => Effect.either(valueOf(c, k(name), false)),
            { concurrency: "unbounded" }
          ))
          yield* eventually("the value reads in flight", Effect.sync(() => c.inFlight() === names.length))
          proxy.inject(forgery)
          proxy.setMode("forward")
          const forged = yield* Fiber.join(reads)
          for (const r of forged) {
            expect(Either.isLeft(r) && r.left).toMatchObject({ _tag: "StoreError", reason: "protocol" })
          }
          expect(Either.isLeft(forged[0]!) && forged[0]!.left.detail).toContain(detail)
          yield* eventually(
            "a fresh connection",
            Effect.map(c.execute({ _tag: "mg", key: k("x"), value: true }, "get"), (r) => text(r) === "real")
          )
        })
      // ten reads on one get line, answered as if by opaque number
      yield* forgedReads(Array(10).fill("x"), "VA 6 O999999\r\nforged\r\n", "where a get line's answer was due")
      // a value for a key that no read of the line asked for
      yield* forgedReads(["x", "y"], `VALUE ${k("z").token} 0 6\r\nforged\r\nEND\r\n`, "no read in flight asked for")
      // a stray END (a get line's answer carries no opaque token): it may answer a line with
      // misses, but never hands the next line the answer meant for the one before
      const direct = yield* connect(servers()[0]!.port)
      yield* direct.execute({ _tag: "ms", key: k("s"), value: bytes("older") }, "test")
      proxy.setMode("hold-replies")
      const first = yield* Effect.fork(Effect.either(valueOf(c, k("s"), false)))
      yield* eventually("the first line in flight", Effect.sync(() => c.inFlight() === 1))
      yield* direct.execute({ _tag: "ms", key: k("s"), value: bytes("newer") }, "test")
      const second = yield* Effect.fork(Effect.either(valueOf(c, k("s"), false)))
      yield* eventually("both lines in flight", Effect.sync(() => c.inFlight() === 2))
      proxy.inject("END\r\n")
      proxy.setMode("forward")
      const stray = [yield* Fiber.join(first), yield* Fiber.join(second)]
      for (const r of stray) {
        if (Either.isRight(r)) expect(r.right).toBeNull()
        else expect(r.left).toMatchObject({ _tag: "StoreError", reason: "protocol" })
      }
      expect(Either.isLeft(stray[1]!)).toBe(true)
      yield* eventually(
        "a fresh connection",
        Effect.map(c.execute({ _tag: "mg", key: k("x"), value: true }, "get"), (r) => text(r) === "real")
      )
      // an unexpected line is caught the same way
      proxy.setMode("hold-replies")
      const unexpected = yield* Effect.fork(Effect.either(c.execute({ _tag: "mg", key: k("x"), value: true }, "get")))
      yield* eventually("a request in flight", Effect.sync(() => c.inFlight() === 1))
      proxy.inject("VALUE x 0 6\r\nforged\r\nEND\r\n")
      proxy.setMode("forward")
      const r = yield* Fiber.join(unexpected)
      expect(Either.isLeft(r) && r.left).toMatchObject({ reason: "protocol" })
      yield* eventually(
        "a fresh connection",
        Effect.map(c.execute({ _tag: "mg", key: k("x"), value: true }, "get"), (r) => text(r) === "real")
      )
    }))

  it.scopedLive("a server that stops answering: requests fail with reason timeout, then a new connection serves", () =>
    Effect.gen(function*() {
      const proxy = yield* tcpProxy({ host: "127.0.0.1", port: servers()[0]!.port })
      const c = yield* connect(proxy.port, { timeout: "300 millis" })
      const k = keys()
      yield* c.execute({ _tag: "ms", key: k("x"), value: bytes("v") }, "test")
      proxy.setMode("hold-replies")
      const results = yield* Effect.forEach(
        Array.from({ length: 5 }, () => c.execute({ _tag: "mg", key: k("x"), value: true }, "get")),
        Effect.either,
        { concurrency: "unbounded" }
      )
      for (const r of results) expect(Either.isLeft(r) && r.left).toMatchObject({ reason: "timeout" })
      proxy.setMode("forward")
      yield* eventually(
        "a fresh connection",
        Effect.map(c.execute({ _tag: "mg", key: k("x"), value: true }, "get"), (r) => text(r) === "v")
      )
    }))

  it.scopedLive("a wall clock stepped back 30 s does not hold the timeout back: the request fails on time", () =>
    Effect.gen(function*() {
      const proxy = yield* tcpProxy({ host: "127.0.0.1", port: servers()[0]!.port })
      const c = yield* connect(proxy.port, { timeout: "300 millis" })
      const k = keys()
      yield* c.execute({ _tag: "ms", key: k("x"), value: bytes("v") }, "test")
      proxy.setMode("blackhole")
      const fiber = yield* Effect.fork(Effect.either(c.execute({ _tag: "mg", key: k("x"), value: true }, "get")))
      yield* eventually("a request in flight", Effect.sync(() => c.inFlight() === 1))
      yield* wallClockSteppedBack(30_000)
      const result = yield* Fiber.join(fiber).pipe(
        // a liveness guard, far above the 300 ms timeout and far below the 30 s step
        Effect.timeoutFail({
          duration: "5 seconds",
          onTimeout: () => new Error("the timeout waited for the wall clock")
        })
      )
      expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "StoreError", reason: "timeout" })
      proxy.setMode("forward")
    }))

  it.scopedLive("a refused port fails fast with reason connection; the connection comes up with the server", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const c = yield* connect(port)
      const down = yield* Effect.either(c.execute(Protocol.noop, "probe"))
      expect(Either.isLeft(down) && down.left).toMatchObject({ _tag: "StoreError", reason: "connection" })
      yield* startMemcached({ port })
      yield* eventually("the connection to open", Effect.map(c.execute(Protocol.noop, "probe"), (r) => r._tag === "MN"))
      expect(c.state()).toBe("open")
    }))

  it.scopedLive("a request that cannot be encoded fails alone, before anything is sent", () =>
    Effect.gen(function*() {
      const c = yield* connect(servers()[0]!.port)
      const k = keys()
      const bad = yield* Effect.either(c.execute({ _tag: "ms", key: k("x"), value: bytes("v"), ttl: 1.5 }, "set"))
      expect(Either.isLeft(bad) && bad.left).toMatchObject({ reason: "command" })
      const negative = yield* Effect.either(c.execute({ _tag: "ma", key: k("x"), delta: -1 }, "incr"))
      expect(Either.isLeft(negative) && negative.left).toMatchObject({ reason: "command" })
      expect((yield* c.execute({ _tag: "ms", key: k("x"), value: bytes("v") }, "set"))._tag).toBe("HD")
    }))
})

describe("meta protocol parser", () => {
  const stream = Buffer.from(
    "VA 5 O1 t-1\r\nab\r\nc\r\nHD O2 c77\r\nEN\r\nNS O3\r\nEX\r\nNF O4 kkey b\r\nMN\r\n" +
      "ME k exp=-1 la=3 cas=2 fetch=no cls=1 size=63\r\nVA 0 W\r\n\r\nSERVER_ERROR out of memory\r\n",
    "latin1"
  )
  const parse = (chunks: ReadonlyArray<Uint8Array>) => {
    const parser = new Protocol.Parser()
    const out: Array<Protocol.Response | Protocol.ErrorLine> = []
    for (const chunk of chunks) {
      const problem = parser.feed(chunk, (r) => out.push(r))
      if (problem !== undefined) throw new Error(problem.detail)
    }
    return out
  }
  const whole = parse([stream])

  it("reads every answer form", () => {
    expect(whole.map((r) => r._tag)).toEqual(["VA", "HD", "EN", "NS", "EX", "NF", "MN", "ME", "VA", "Error"])
    expect(new TextDecoder().decode((whole[0] as Protocol.ValueResponse).value)).toBe("ab\r\nc")
    expect(whole[0]).toMatchObject({ flags: { opaque: "1", ttl: -1 } })
    expect(whole[1]).toMatchObject({ flags: { opaque: "2", cas: 77n } })
    expect(whole[5]).toMatchObject({ flags: { opaque: "4", key: "key", base64: true } })
    expect(whole[7]).toMatchObject({ key: "k", fields: { exp: "-1", size: "63" } })
    expect(whole[8]).toMatchObject({ flags: { win: true } })
    expect(whole[9]).toEqual({ _tag: "Error", kind: "SERVER_ERROR", message: "out of memory" })
  })

  it("gives the same answers however the stream is split", () => {
    for (let cut = 1; cut < stream.length; cut++) {
      expect(parse([stream.subarray(0, cut), stream.subarray(cut)])).toEqual(whole)
    }
    expect(parse(Array.from(stream, (b) => Uint8Array.of(b)))).toEqual(whole)
  })

  it("hands the common answers of reads over the short way, and every other answer as before", () => {
    const taken: Array<string> = []
    // the short way takes only opaque numbers it expects (here: below 100)
    const fast: Protocol.FastAnswers = {
      value: (value, opaque, marks) => {
        if (opaque >= 100) return false
        taken.push(`VA ${new TextDecoder().decode(value)} O${opaque} m${marks}`)
        return true
      },
      miss: (opaque) => {
        if (opaque >= 100) return false
        taken.push(`EN O${opaque}`)
        return true
      }
    }
    const input = Buffer.from(
      "VA 3 O5 W\r\nabc\r\nEN O6\r\nVA 0 O7 Z\r\n\r\nVA 2 O8 t5\r\nxy\r\nVA 2 O123\r\nzz\r\n" +
        "EN O124\r\nEN O9 W\r\nHD O10\r\nVA 1 Oab\r\nq\r\n",
      "latin1"
    )
    for (const chunks of [[input], Array.from(input, (b) => Uint8Array.of(b))]) {
      taken.length = 0
      const parser = new Protocol.Parser(fast)
      const out: Array<Protocol.Response | Protocol.ErrorLine> = []
      for (const chunk of chunks) expect(parser.feed(chunk, (r) => out.push(r))).toBeUndefined()
      expect(taken).toEqual([
        `VA abc O5 m${Protocol.MARK_WIN}`,
        "EN O6",
        `VA  O7 m${Protocol.MARK_WIN_SENT}`
      ])
      // other flags, opaque numbers the reader refused, a miss with a mark, other answers and
      // opaque tokens that are no number come as responses, with their flags as they were sent
      expect(out).toMatchObject([
        { _tag: "VA", flags: { opaque: "8", ttl: 5 } },
        { _tag: "VA", flags: { opaque: "123" } },
        { _tag: "EN", flags: { opaque: "124" } },
        { _tag: "EN", flags: { opaque: "9", win: true } },
        { _tag: "HD", flags: { opaque: "10" } },
        { _tag: "VA", flags: { opaque: "ab" } }
      ])
    }
  })

  it("reads a classic get line's answers: each hit by key, a stub by its empty flags-0 item, then END", () => {
    const taken: Array<string> = []
    const wanted = ["k1", "k2", "k3", "q"]
    const fast: Protocol.FastAnswers = {
      value: (value, opaque, marks) => {
        taken.push(
          `value ${new TextDecoder().decode(value)} ${opaque === Protocol.CLASSIC ? "classic" : opaque} m${marks}`
        )
        return true
      },
      miss: () => false,
      keyed: (buf, start, end) => {
        let stop = start
        while (stop < end && buf[stop] !== 0x20) stop++
        const key = Buffer.from(buf.subarray(start, stop)).toString("latin1")
        taken.push(`key ${key}`)
        return wanted.includes(key) ? stop : -1
      },
      end: () => {
        taken.push("END")
        return true
      }
    }
    const input = Buffer.from(
      "VALUE k1 0 3\r\nabc\r\nVALUE k2 0 0\r\n\r\nVALUE k3 1 0\r\n\r\nVALUE k1 7 2 99\r\nxy\r\nVALUE q 0 1\r\nz\r\nEND\r\n",
      "latin1"
    )
    for (const chunks of [[input], Array.from(input, (b) => Uint8Array.of(b))]) {
      taken.length = 0
      const parser = new Protocol.Parser(fast)
      for (const chunk of chunks) expect(parser.feed(chunk, () => expect.unreachable())).toBeUndefined()
      expect(taken).toEqual([
        "key k1",
        "value abc classic m0",
        "key k2",
        `value  classic m${Protocol.MARK_WIN_SENT}`,
        "key k3",
        "value  classic m0",
        "key k1",
        "value xy classic m0",
        "key q",
        "value z classic m0",
        "END"
      ])
    }
    const rejected = ["VALUE k9 0 1\r\nx\r\n", "VALUE k1 x 1\r\nx\r\n", "VALUE k1 0\r\n", "VALUE  0 1\r\n"]
    for (const line of rejected) {
      expect(new Protocol.Parser(fast).feed(Buffer.from(line, "latin1"), () => {})).toBeInstanceOf(
        Protocol.ProtocolViolation
      )
    }
    // without a reader of get lines, they are not the protocol
    expect(new Protocol.Parser().feed(Buffer.from("END\r\n", "latin1"), () => {})).toBeInstanceOf(
      Protocol.ProtocolViolation
    )
  })

  it("rejects what is not the protocol", () => {
    const problems = ["HELLO\r\n", "VA x\r\n", "VA 3\r\nabcXY", "HD\n", "MN O1\r\n", "x".repeat(9000)].map((s) => {
      const parser = new Protocol.Parser()
      return parser.feed(Buffer.from(s, "latin1"), () => {})
    })
    for (const p of problems) expect(p).toBeInstanceOf(Protocol.ProtocolViolation)
  })
})
