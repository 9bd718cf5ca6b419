/**
 * One pipelined connection to one memcached server, over an `@effect/platform` Socket.
 *
 * The socket is a `NodeSocket.fromDuplex` over a `net.Socket` opened here the way
 * `NodeSocket.makeNet` opens one: the platform Socket reads, times out the open, reports errors
 * and closes; requests are written straight to the `net.Socket`, in the caller's turn. (Through
 * the Socket's writer every write is a fiber of its own, which cost about 10 µs per request at
 * concurrency 1.)
 *
 * Requests are written in batches (everything requested while answers are due goes out in one
 * write at the end of the event loop's turn, encoded straight into one buffer) and answered
 * strictly in order; the opaque token each request carries (a decimal sequence number) is checked
 * against the answer, so a connection that loses track is detected instead of handing one caller
 * another caller's value. The common read, `mg <key> v`, goes the short way both ways: its line
 * is the key's remembered bytes and the number, and its answer (`VA …`/`EN`) is matched and handed
 * over by the parser without a response object (see `Protocol.FastAnswers`). Any error line,
 * unparseable byte or opaque mismatch drops the connection: every request in flight on it fails
 * with a `StoreError`, and a fresh connection is opened, so no later request can ever read an
 * earlier request's answer.
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as Socket from "@effect/platform/Socket"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import { StoreError } from "../../CacheError.js"
import * as Timer from "../timer.js"
import type { WireKey } from "./keys.js"
import * as Protocol from "./protocol.js"

/** @internal */
export type ConnectionState = "connecting" | "open" | "down" | "closed"

/** @internal */
export interface ConnectionOptions {
  readonly host: string
  readonly port: number
  /** How long a request may wait for its answer before the connection is declared stuck. */
  readonly timeout: Duration.DurationInput
  readonly connectTimeout: Duration.DurationInput
  /** Delays between failed connection attempts. */
  readonly reconnect: Schedule.Schedule<unknown, unknown>
  /** Name used in errors, logs and metric labels, e.g. `127.0.0.1:11211`. */
  readonly label: string
  /** The store's name, for the errors' `store` field. Default `"memcached"`. */
  readonly store?: string | undefined
}

/** @internal */
export interface Connection {
  readonly label: string
  readonly state: () => ConnectionState
  /** Requests written or queued and not yet answered. */
  readonly inFlight: () => number
  /** How many answers this connection has received so far (any answer shows the server is up). */
  readonly answered: () => number
  /** Sends one request and waits for its answer. */
  readonly execute: (request: Protocol.Request, operation: string) => Effect.Effect<Protocol.Response, StoreError>
  /**
   * `execute`, with the answer turned into what the caller wants as it arrives, and a failure
   * handed to `recover` (run in the caller's fiber), which saves the caller a `catchAll` step.
   */
  readonly executeWith: <A>(
    request: Protocol.Request,
    operation: string,
    decode: (response: Protocol.Response) => A,
    recover?: (error: StoreError) => Effect.Effect<never, StoreError>
  ) => Effect.Effect<A, StoreError>
  /**
   * `execute` without an Effect: `reply` is called once, with the answer or the failure, from the
   * callback that completes the request (at once when it cannot be sent). No step of any fiber
   * runs for it, so a caller can decide what the answer means right there and resume once.
   */
  readonly read: (request: Protocol.Request, operation: string, reply: Reply) => void
  /**
   * `read` of a key's value, the short way: no request object, and `reply` gets `context` back
   * with the value (`null` for a miss), its marks (`Protocol.MARK_*`) or the failure, so a caller
   * needs no closure per read either. Reads of plain keys made in a row share one classic `get`
   * line (see `GetLine`); a base64 key is read with `mg <key> b v`. With `view`, the value may
   * be a view into the socket's chunk, for a caller that is done with it when `reply` returns;
   * otherwise it is a copy of its own.
   */
  readonly readValue: <C>(key: WireKey, operation: string, context: C, reply: ValueReply<C>, view: boolean) => void
  /**
   * Sends the requests back to back followed by `mn`, in one write, and returns their answers in
   * order; the answers that `q` suppressed are filled in (`EN` for `mg`, `HD` otherwise).
   */
  readonly pipeline: (
    requests: ReadonlyArray<Protocol.Request>,
    operation: string
  ) => Effect.Effect<Array<Protocol.Response>, StoreError>
}

/**
 * Errors given to requests that merely shared a connection with the one that went wrong: the
 * event already counts once against the server (or not at all, after an error line), so these
 * must not count again in the circuit breaker.
 * @internal
 */
const collateral = new WeakSet<StoreError>()

/** @internal */
export const isCollateral = (error: StoreError): boolean => collateral.has(error)

const reconnects = Metric.counter("effect_cachekit_memcached_reconnects", {
  description: "Connections to a memcached server that were (re)opened",
  incremental: true
})
const drops = Metric.counter("effect_cachekit_memcached_connection_drops", {
  description: "Connections dropped on purpose after an error line, a protocol violation or a timeout",
  incremental: true
})

/** How `read` hands over an answer: the response, or the failure (then the response is undefined). @internal */
export type Reply = (response: Protocol.Response | undefined, error: StoreError | undefined) => void

/**
 * How `readValue` hands over an answer: the caller's context, then the value (`null` for a miss
 * or a failure), the marks of the answer (`Protocol.MARK_*`) and the failure, if any.
 * @internal
 */
export type ValueReply<C> = (
  context: C,
  value: Uint8Array | null,
  marks: number,
  error: StoreError | undefined
) => void

interface Job {
  readonly operation: string
  readonly results: Array<Protocol.Response> | undefined
  remaining: number
  done: boolean
  /** Hands the outcome to the caller: the answer (one response, or a pipeline's array), or the failure. */
  complete(answer: unknown, error: StoreError | undefined): void
}

/** What an entry in flight is: a request's command, or a classic `get` line. */
type Kind = Protocol.Request["_tag"] | "get"

interface Entry {
  /** The opaque number the answer must carry; -1 for `mn` and `me`, `Protocol.CLASSIC` for a `get` line. */
  readonly seq: number
  /** The answer a `q` request stands for when the server says nothing. */
  readonly quiet: Protocol.Response | undefined
  readonly kind: Kind
  readonly job: Job
  /** Position in `job.results`; -1 for the closing `mn` of a pipeline. */
  readonly index: number
  readonly at: number
}

/**
 * A single request is its own job and its own entry: one allocation per request, not two. Its
 * entry fields are set as it is queued.
 */
abstract class Single implements Job, Entry {
  readonly results = undefined
  readonly index = 0
  remaining = 1
  done = false
  readonly job: Job
  seq = -1
  quiet: Protocol.Response | undefined = undefined
  kind: Kind = "mn"
  at = 0
  constructor(readonly operation: string) {
    this.job = this
  }
  abstract complete(answer: unknown, error: StoreError | undefined): void
}

/** A single request whose caller waits in `Effect.async`: it resumes with the decoded answer. */
class Resumed extends Single {
  constructor(
    operation: string,
    /** What the answer is turned into before the caller gets it. */
    readonly decode: ((response: Protocol.Response) => unknown) | undefined,
    /** What a failure becomes in the caller's fiber; undefined: the failure as is. */
    readonly recover: ((error: StoreError) => Effect.Effect<never, StoreError>) | undefined,
    readonly resume: (effect: Effect.Effect<unknown, StoreError>) => void
  ) {
    super(operation)
  }
  complete(answer: unknown, error: StoreError | undefined): void {
    this.resume(
      error === undefined
        ? Effect.succeed(this.decode === undefined ? answer : this.decode(answer as Protocol.Response))
        : failure(error, this.recover)
    )
  }
}

/** A single request whose caller gave a callback (`read`). */
class Replied extends Single {
  constructor(operation: string, readonly reply: Reply) {
    super(operation)
  }
  complete(answer: unknown, error: StoreError | undefined): void {
    this.reply(answer as Protocol.Response | undefined, error)
  }
}

/** A value read of a base64 key (`readValue`): its reply gets the caller's context back, and the value itself. */
class ValueRead extends Single {
  constructor(
    operation: string,
    /** Whether the value may be handed over as a view (see `readValue`). */
    readonly view: boolean,
    readonly context: unknown,
    readonly reply: ValueReply<unknown>,
    /** The failure of an answer a value read cannot have (anything but `VA` and `EN`). */
    private readonly unexpected: (operation: string, tag: string) => StoreError
  ) {
    super(operation)
  }
  /** An answer that came the long way (after quiet answers, say), or a failure. */
  complete(answer: unknown, error: StoreError | undefined): void {
    if (error !== undefined) return this.reply(this.context, null, 0, error)
    const response = answer as Protocol.Response
    // the parser copied the value of an answer that came this way
    if (response._tag === "VA") this.reply(this.context, response.value, Protocol.marksOf(response.flags), undefined)
    else if (response._tag === "EN") this.reply(this.context, null, 0, undefined)
    else this.reply(this.context, null, 0, this.unexpected(this.operation, response._tag))
  }
}

/** The job of the `mn` that closes each get line: it has no caller. */
const lineSync: Job = { operation: "get", results: undefined, remaining: 0, done: true, complete: () => {} }

/** A value as a copy of its own: a value read that keeps it must not pin the socket's chunk. */
const copyOf = (view: Uint8Array): Uint8Array => {
  // from Node's buffer pool (values under 4 KiB share its 8 KiB slabs): a fresh backing store
  // per value cost 0.5–0.8 µs against 0.2 µs
  const value = Buffer.allocUnsafe(view.byteLength)
  value.set(view)
  return value
}

/**
 * A classic `get` line in flight, `get <key> <key> …`, one entry of the connection's queue for
 * all its reads: the reads are kept in parallel arrays (no object per read), answered in order
 * from `next`. Its answer names each hit's key, in the order asked, and ends with `END`; a read
 * whose key the answer skips had no hit.
 */
class GetLine implements Job, Entry {
  readonly seq = Protocol.CLASSIC
  readonly quiet = undefined
  readonly kind = "get"
  readonly index = 0
  readonly results = undefined
  readonly job: Job = this
  remaining = 1
  done = false
  readonly keys: Array<WireKey> = []
  readonly contexts: Array<unknown> = []
  readonly replies: Array<ValueReply<unknown>> = []
  readonly views: Array<boolean> = []
  /** The first read not answered yet. */
  next = 0
  operation = "get"
  at = 0
  /** Starts a line (a fresh one, or one answered in full, whose arrays keep their capacity). */
  begin(operation: string, at: number): this {
    this.operation = operation
    this.at = at
    this.done = false
    this.next = 0
    return this
  }
  /** Lets go of the reads of a line answered in full, so it can be begun again. */
  clear(): void {
    this.keys.length = 0
    this.contexts.length = 0
    this.replies.length = 0
    this.views.length = 0
  }
  add(key: WireKey, context: unknown, reply: ValueReply<unknown>, view: boolean): void {
    this.keys.push(key)
    this.contexts.push(context)
    this.replies.push(reply)
    this.views.push(view)
  }
  /** Where the read of the key `buf[start, …)` (up to a space) is, from `next` on; -1 if none. */
  find(buf: Uint8Array, start: number, end: number): number {
    for (let i = this.next; i < this.keys.length; i++) {
      const line = this.keys[i]!.readLine!
      const n = line.length - TOKEN_AT - 4 // `mg ` + token + ` v O`
      if (start + n >= end || buf[start + n] !== 0x20) continue
      let j = 0
      while (j < n && line[TOKEN_AT + j] === buf[start + j]) j++
      if (j === n) return i
    }
    return -1
  }
  /** Answers the reads before `until` as misses. */
  missUntil(until: number): void {
    while (this.next < until) {
      const i = this.next++
      this.replies[i]!(this.contexts[i], null, 0, undefined)
    }
  }
  /** Answers the read at `next` with its value. */
  hit(value: Uint8Array, marks: number): void {
    const i = this.next++
    this.replies[i]!(this.contexts[i], this.views[i] ? value : copyOf(value), marks, undefined)
  }
  /** Fails the reads not answered yet: the first with `error`, the others with what `others` makes. */
  complete(_: unknown, error: StoreError | undefined): void {
    this.failFrom(error!, () => error!)
  }
  failFrom(first: StoreError, others: () => StoreError): void {
    for (let i = this.next; i < this.keys.length; i++) {
      this.replies[i]!(this.contexts[i], null, 0, i === this.next ? first : others())
    }
    this.next = this.keys.length
  }
}

/** What a failure becomes in the caller's fiber: `recover`'s effect, or the failure as is. */
const failure = (
  error: StoreError,
  recover: ((error: StoreError) => Effect.Effect<never, StoreError>) | undefined
): Effect.Effect<never, StoreError> => recover === undefined ? Effect.fail(error) : Effect.suspend(() => recover(error))

/** A FIFO over an array with a moving head, compacted as it drains. */
class Fifo<A> {
  private items: Array<A | undefined> = []
  private head = 0
  get length(): number {
    return this.items.length - this.head
  }
  push(a: A): void {
    this.items.push(a)
  }
  peek(): A | undefined {
    return this.items[this.head]
  }
  shift(): A | undefined {
    const a = this.items[this.head]
    this.items[this.head++] = undefined
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return a
  }
  drain(): Array<A> {
    const out = this.items.slice(this.head) as Array<A>
    this.items = []
    this.head = 0
    return out
  }
}

/**
 * The first capacity of the buffer a burst of requests is encoded into, and the most kept after a
 * flush. Each burst takes a new buffer (the one written may still be held by the socket); below
 * half of `Buffer.poolSize` (4 KiB) `Buffer.allocUnsafe` slices Node's shared pool instead of
 * allocating an `ArrayBuffer`, about 0.2 µs against 1.8 µs for 4 KiB of its own: a read at
 * concurrency 1 is a burst of one line.
 */
const OUT_MIN = 2048
const OUT_KEEP = 64 * 1024

/** Writes `n` (a non-negative integer) in decimal at `pos`; returns the position after it. */
const writeDecimal = (buf: Buffer, pos: number, n: number): number => {
  let digits = 1
  for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++
  let at = pos + digits
  for (let m = n; at > pos; m = Math.floor(m / 10)) buf[--at] = 0x30 + (m % 10)
  return pos + digits
}

/** The bytes of a value read's line up to its opaque number: `mg <token>[ b] v O`. */
const readLineOf = (key: WireKey): Uint8Array =>
  key.readLine ??= Buffer.from(`mg ${key.token}${key.base64 ? " b" : ""} v O`, "latin1")

/** Where a key's token starts in its `readLineOf` bytes. */
const TOKEN_AT = 3

/**
 * The most keys one classic `get` line carries (a burst of more reads writes several lines): a
 * bound on the line memcached buffers whole, and on the reads one `END` settles.
 */
const GET_LINE_KEYS = 128

/** @internal */
export const make = (options: ConnectionOptions): Effect.Effect<Connection, never, Scope.Scope> =>
  Effect.gen(function*() {
    // Request ages are measured on a monotonic clock: a wall clock stepped back must not hold
    // the watchdog back.
    const clockNow = Timer.fromClock(yield* Effect.clock).now
    const timeoutMillis = Duration.toMillis(Duration.decode(options.timeout))
    const labels = [MetricLabel.make("server", options.label)]

    let state: ConnectionState = "connecting"
    const pending = new Fifo<Entry>()
    /** The bytes waiting for the writer, `out[0, outLen)`; allocated by the first request after a flush. */
    let out: Buffer | undefined
    let outLen = 0
    let outSize = OUT_MIN
    /**
     * The classic `get` line being written at the end of `out`, if any. Value reads of plain keys
     * made in a row share one line, `get <key> <key> …`: memcached parses one command for them
     * instead of one `mg` each, which halves its CPU per read in bursts.
     */
    let line: GetLine | undefined
    /** A line answered in full, kept for the next one (its arrays keep their capacity). */
    let spare: GetLine | undefined
    /**
     * How many more requests are in flight than there are entries in the queue: a line's entry
     * counts as its reads not answered yet (see `inFlight`).
     */
    let lineExtra = 0
    let seq = 0
    /** Completes to end the current socket; undefined once it has been dropped. */
    let kill: Deferred.Deferred<void, StoreError> | undefined
    /** Set when the current socket's stream can no longer be trusted: later bytes are ignored. */
    let broken = false
    /** Writes a buffer to the current socket; set while a socket is open and trusted. */
    let writeNow: ((buffer: Uint8Array) => void) | undefined

    const storeError = (operation: string, reason: StoreError["reason"], detail: string, cause?: unknown) =>
      new StoreError({
        store: options.store ?? "memcached",
        operation,
        reason,
        detail: `${options.label}: ${detail}`,
        ...(cause === undefined ? {} : { cause })
      })

    const finish = (job: Job, answer: unknown, error: StoreError | undefined) => {
      if (job.done) return
      job.done = true
      job.complete(answer, error)
    }

    const fail = (job: Job, error: StoreError) => finish(job, undefined, error)

    /**
     * Fails every request in flight, as one event: the oldest gets `first` when given (the request
     * an error line most likely answered), and all the others are marked collateral, so that one
     * dropped connection counts once against the server, however many requests it carried.
     */
    const failAll = (
      reason: StoreError["reason"],
      detail: string,
      first?: { readonly reason: StoreError["reason"]; readonly detail: string }
    ) => {
      const entries = pending.drain()
      out = undefined
      outLen = 0
      line = undefined
      lastLine = undefined
      lineExtra = 0
      let isFirst = true
      for (const entry of entries) {
        if (entry.job.done) continue
        if (entry instanceof GetLine) {
          if (entry.next === entry.keys.length) {
            // answered, but for its END: what went wrong most likely answered the line itself
            isFirst = false
            continue
          }
          const error = isFirst && first !== undefined
            ? storeError(entry.operation, first.reason, first.detail)
            : storeError(entry.operation, reason, detail)
          if (!isFirst) collateral.add(error)
          isFirst = false
          entry.done = true
          entry.failFrom(error, () => {
            const other = storeError(entry.operation, reason, detail)
            collateral.add(other)
            return other
          })
          continue
        }
        const error = isFirst && first !== undefined
          ? storeError(entry.job.operation, first.reason, first.detail)
          : storeError(entry.job.operation, reason, detail)
        if (!isFirst) collateral.add(error)
        isFirst = false
        fail(entry.job, error)
      }
    }

    /**
     * Drops the live socket on purpose, after its requests have been failed. Requests made from
     * now on queue for the next connection, which the supervisor opens at once.
     */
    const drop = (error: StoreError) => {
      broken = true
      writeNow = undefined
      const stop = kill
      kill = undefined
      if (state === "open") state = "connecting"
      drops.unsafeUpdate(1, labels)
      if (stop !== undefined) Deferred.unsafeDone(stop, Exit.fail(error))
    }

    let answered = 0
    const resolve = (entry: Entry, response: Protocol.Response) => {
      answered++
      const job = entry.job
      if (job.done) return
      if (entry.index >= 0) {
        if (job.results === undefined) {
          finish(job, response, undefined)
          return
        }
        job.results[entry.index] = response
      }
      if (--job.remaining === 0) finish(job, job.results, undefined)
    }

    const violation = (detail: string) => {
      const error = storeError("read", "protocol", detail)
      failAll("protocol", `connection dropped: ${detail}`)
      drop(error)
    }

    /** Matches one answer to the oldest request(s) in flight. Returns false when the stream is broken. */
    const onResponse = (response: Protocol.Response | Protocol.ErrorLine): boolean => {
      if (response._tag === "Error") {
        const detail = `${response.kind}${response.message ? ` ${response.message}` : ""}`
        failAll(
          "connection",
          `connection dropped after the server answered an earlier request with ${detail}`,
          { reason: "command", detail }
        )
        drop(storeError("read", "command", detail))
        return false
      }
      const opaque = response._tag === "MN" || response._tag === "ME" ? undefined : response.flags.opaque
      const opaqueSeq = opaque === undefined ? -1 : Protocol.opaqueNumber(opaque)
      while (true) {
        const head = pending.peek()
        if (head === undefined) {
          violation(`an answer (${response._tag}) arrived with no request in flight`)
          return false
        }
        if (head.quiet !== undefined) {
          if (opaque !== undefined && opaqueSeq === head.seq) {
            pending.shift()
            resolve(head, response)
            return true
          }
          // The server said nothing for this quiet request: it stands for its default answer.
          pending.shift()
          resolve(head, head.quiet)
          continue
        }
        if (head instanceof GetLine) {
          violation(`answer ${response._tag} arrived where a get line's answer was due`)
          return false
        }
        if (response._tag === "MN" ? head.kind !== "mn" : head.kind === "mn") {
          violation(`answer ${response._tag} does not fit request ${head.kind}`)
          return false
        }
        if (response._tag === "ME" ? head.kind !== "me" : false) {
          violation(`answer ME does not fit request ${head.kind}`)
          return false
        }
        if (head.seq !== -1 && opaque !== undefined && opaqueSeq !== head.seq) {
          violation(`opaque mismatch: expected O${head.seq}, got O${opaque}`)
          return false
        }
        pending.shift()
        // a get line's closing `mn` is not counted in flight (see `closeLine`)
        if (head.job === lineSync) lineExtra++
        resolve(head, response)
        return true
      }
    }

    /**
     * The oldest entry in flight once the quiet requests before it are settled: an answer that
     * reaches past them means the server said nothing for them (as in `onResponse`).
     */
    const headPastQuiet = (): Entry | undefined => {
      let head = pending.peek()
      while (head !== undefined && head.quiet !== undefined) {
        pending.shift()
        resolve(head, head.quiet)
        head = pending.peek()
      }
      return head
    }
    /**
     * The common answers of a value read, straight from the parser: taken when the oldest request
     * in flight is a value read with this opaque number; anything else goes through `onResponse`.
     */
    const answer = (value: Uint8Array | null, opaque: number, marks: number): boolean => {
      if (broken) return true
      const head = pending.peek()
      if (opaque === Protocol.CLASSIC) {
        // the value of the hit `keyed` found: the reads before it had none
        const at = found
        found = -1
        if (!(head instanceof GetLine) || head.done || at < head.next) return false
        answered += at - head.next + 1
        lineExtra -= at - head.next + 1
        head.missUntil(at)
        head.hit(value!, marks)
        return true
      }
      if (!(head instanceof ValueRead && head.seq === opaque)) return false
      pending.shift()
      answered++
      if (!head.done) {
        head.done = true
        head.reply(head.context, value === null || head.view ? value : copyOf(value), marks, undefined)
      }
      return true
    }
    /** The read of the oldest get line that the `VALUE` header being parsed answers (-1: none). */
    let found = -1
    /**
     * A classic `get` line's hit for the key at `buf[start, …)`: finds the read it answers (left
     * in `found` for the value). Returns where the key ends, or -1 when no read of the line has
     * this key: the stream is broken, and every read in flight fails, none answered.
     */
    const keyed = (buf: Uint8Array, start: number, end: number): number => {
      if (broken) return -1
      const head = headPastQuiet()
      if (!(head instanceof GetLine) || head.done) return -1
      const at = head.find(buf, start, end)
      if (at === -1) return -1
      found = at
      return start + head.keys[at]!.readLine!.length - TOKEN_AT - 4
    }
    /** A classic `get` line's `END`: its reads not answered yet had no hit. */
    const endLine = (): boolean => {
      if (broken) return false
      const head = headPastQuiet()
      // (a line still being written has not been sent: no END can be its answer)
      if (!(head instanceof GetLine) || head.done || head === line) return false
      pending.shift()
      head.done = true
      answered += head.keys.length - head.next + 1
      // the line leaves the queue: its reads no longer count in flight, nor does it
      lineExtra -= head.keys.length - head.next - 1
      head.missUntil(head.keys.length)
      // answered in full and no longer referenced: the next line reuses it
      head.clear()
      spare = head
      return true
    }
    const fast: Protocol.FastAnswers = {
      value: answer,
      miss: (opaque) => answer(null, opaque, 0),
      keyed,
      end: endLine
    }
    const parser = new Protocol.Parser(fast)

    const onData = (chunk: Uint8Array): void => {
      if (broken) return
      const problem = parser.feed(chunk, (response) => {
        if (!broken && !onResponse(response)) broken = true
      })
      if (problem !== undefined && !broken) {
        broken = true
        violation(problem.detail)
      }
    }

    /**
     * Writes what is queued, once per burst: the write waits for `process.nextTick`, which runs
     * only after the microtask queue has drained, i.e. after every fiber that is ready to run
     * (typically all those one batch of answers resumed) has made its requests. That is one write
     * per burst at no measurable latency. With no open socket, the next one writes the queue when
     * it opens.
     */
    let flushScheduled = false
    /**
     * The time requests are stamped with for the watchdog: read once per burst (when its flush is
     * scheduled), not once per request; a burst is written within the same turn.
     */
    let burstAt = 0
    const now = (): number => flushScheduled ? burstAt : (burstAt = clockNow())
    const flush = () => {
      flushScheduled = false
      if (writeNow === undefined) return
      const buffer = takeOut()
      if (buffer !== undefined) writeNow(buffer)
    }
    const scheduleFlush = () => {
      if (writeNow === undefined || flushScheduled) return
      flushScheduled = true
      process.nextTick(flush)
    }

    /** The opaque number of a request, or -1 for one that carries none. */
    const nextOpaque = (request: Protocol.Request): number =>
      Protocol.carriesOpaque(request) ? (seq = (seq + 1) & 0x7fffffff) : -1
    const opaqueToken = (n: number): string | undefined => n === -1 ? undefined : String(n)

    /**
     * Encodes every request before queueing any, so a request that cannot be encoded fails the
     * call alone and nothing is half-queued. Returns the lines, or the error.
     */
    const encodeAll = (
      requests: ReadonlyArray<Protocol.Request>,
      opaques: Array<number>,
      operation: string
    ): Array<string> | StoreError => {
      const lines: Array<string> = new Array(requests.length)
      try {
        for (let i = 0; i < requests.length; i++) {
          lines[i] = Protocol.encodeLine(requests[i]!, opaqueToken(opaques[i]!))
        }
      } catch (e) {
        if (e instanceof Protocol.EncodingProblem) return storeError(operation, "command", e.detail)
        throw e
      }
      return lines
    }

    const enqueue = (
      request: Protocol.Request,
      line: string,
      opaque: number,
      job: Job,
      index: number,
      at: number
    ): void => {
      queue({ seq: opaque, quiet: Protocol.quietDefault(request), kind: request._tag, job, index, at })
      write(request, line)
    }

    /** Room for `n` more bytes in `out`; returns it. */
    const reserve = (n: number): Buffer => {
      if (out === undefined) {
        out = Buffer.allocUnsafe(Math.max(outSize, n))
      } else if (outLen + n > out.length) {
        const grown = Buffer.allocUnsafe(Math.max(out.length * 2, outLen + n))
        out.copy(grown, 0, 0, outLen)
        out = grown
      }
      return out
    }

    /** Ends the open `get` line, if any: before any other request is queued, and before a flush. */
    const closeLine = (): void => {
      if (line === undefined) return
      line = undefined
      const buf = reserve(2)
      buf[outLen++] = 0x0d
      buf[outLen++] = 0x0a
    }

    /**
     * The newest entry queued, when it is a get line. A get line's answer carries no opaque
     * token: a line queued right behind another one still in flight is preceded by an `mn`, whose
     * `MN` must come right after the first line's `END`, so that a stray `END` (from a proxy or a
     * faulty server) cannot be taken as the first line's and shift every later line's answers
     * onto the line after (which would hand its reads the values read before). Any other request
     * between two lines checks the same, by its own answer.
     */
    let lastLine: GetLine | undefined
    const syncAfterLine = (): void => {
      if (lastLine === undefined || lastLine.done) return
      const buf = reserve(4)
      buf[outLen++] = 0x6d // m
      buf[outLen++] = 0x6e // n
      buf[outLen++] = 0x0d
      buf[outLen++] = 0x0a
      pending.push({ seq: -1, quiet: undefined, kind: "mn", job: lineSync, index: -1, at: now() })
      lineExtra--
    }

    /** Queues a request other than a get line's read: it ends the open line, and checks the one before it. */
    const queue = (entry: Entry): void => {
      closeLine()
      pending.push(entry)
      lastLine = undefined
    }

    /** Queues a value read of a plain key on the open `get` line (opening one when none is). */
    const writeGet = (key: WireKey, operation: string, context: unknown, reply: ValueReply<unknown>, view: boolean) => {
      let open = line
      if (open !== undefined && (open.keys.length === GET_LINE_KEYS || open.operation !== operation)) {
        closeLine()
        open = undefined
      }
      const opening = open === undefined
      if (opening) {
        syncAfterLine()
        open = line = lastLine = (spare ?? new GetLine()).begin(operation, now())
        spare = undefined
        pending.push(open)
        lineExtra--
      }
      const bytes = readLineOf(key)
      const n = bytes.length - TOKEN_AT - 4
      const buf = reserve(n + 4)
      let pos = outLen
      if (opening) {
        buf[pos++] = 0x67 // g
        buf[pos++] = 0x65 // e
        buf[pos++] = 0x74 // t
      }
      open!.add(key, context, reply, view)
      lineExtra++
      buf[pos++] = 0x20
      for (let i = 0; i < n; i++) buf[pos + i] = bytes[TOKEN_AT + i]!
      outLen = pos + n
    }

    /** Queues a request's bytes for the next flush. */
    const write = (request: Protocol.Request, line: string): void => {
      const value = request._tag === "ms" ? request.value : undefined
      const buf = reserve(line.length + 2 + (value === undefined ? 0 : value.byteLength + 2))
      let pos = outLen + buf.write(line, outLen, "latin1")
      buf[pos++] = 0x0d
      buf[pos++] = 0x0a
      if (value !== undefined) {
        buf.set(value, pos)
        pos += value.byteLength
        buf[pos++] = 0x0d
        buf[pos++] = 0x0a
      }
      outLen = pos
    }

    /** Queues `mg <key> v O<opaque>`: the key's remembered bytes, then the number. */
    const writeRead = (key: WireKey, opaque: number): void => {
      const line = readLineOf(key)
      const n = line.length
      const buf = reserve(n + 12)
      let pos = outLen
      for (let i = 0; i < n; i++) buf[pos + i] = line[i]!
      pos = writeDecimal(buf, pos + n, opaque)
      buf[pos++] = 0x0d
      buf[pos++] = 0x0a
      outLen = pos
    }

    const unavailable = (operation: string) =>
      storeError(
        operation,
        "connection",
        state === "closed" ? "connection closed" : "not connected (reconnecting)"
      )

    /** Queues a single request, or fails it at once when it cannot be sent. */
    const submit = (request: Protocol.Request, job: Single): void => {
      if (state === "down" || state === "closed") return fail(job, unavailable(job.operation))
      const opaque = nextOpaque(request)
      let line: string
      try {
        line = Protocol.encodeLine(request, opaqueToken(opaque))
      } catch (e) {
        if (e instanceof Protocol.EncodingProblem) return fail(job, storeError(job.operation, "command", e.detail))
        throw e
      }
      job.seq = opaque
      job.quiet = Protocol.quietDefault(request)
      job.kind = request._tag
      job.at = now()
      queue(job)
      write(request, line)
      scheduleFlush()
    }

    const execute = (request: Protocol.Request, operation: string): Effect.Effect<Protocol.Response, StoreError> =>
      Effect.async<Protocol.Response, StoreError>((resume) =>
        submit(request, new Resumed(operation, undefined, undefined, resume as Resumed["resume"]))
      )

    const executeWith = <A>(
      request: Protocol.Request,
      operation: string,
      decode: (response: Protocol.Response) => A,
      recover?: (error: StoreError) => Effect.Effect<never, StoreError>
    ): Effect.Effect<A, StoreError> =>
      Effect.async<A, StoreError>((resume) =>
        submit(
          request,
          new Resumed(operation, decode as Resumed["decode"], recover, resume as Resumed["resume"])
        )
      )

    const read = (request: Protocol.Request, operation: string, reply: Reply): void =>
      submit(request, new Replied(operation, reply))

    const unexpected = (operation: string, tag: string) => storeError(operation, "protocol", `unexpected answer ${tag}`)

    const readValue = <C>(
      key: WireKey,
      operation: string,
      context: C,
      reply: ValueReply<C>,
      view: boolean
    ): void => {
      if (state === "down" || state === "closed") return reply(context, null, 0, unavailable(operation))
      if (!key.base64) {
        writeGet(key, operation, context, reply as ValueReply<unknown>, view)
      } else {
        // a classic `get` has no base64 keys: `mg <key> b v`, matched by its opaque number
        const job = new ValueRead(operation, view, context, reply as ValueReply<unknown>, unexpected)
        const opaque = seq = (seq + 1) & 0x7fffffff
        job.seq = opaque
        job.kind = "mg"
        job.at = now()
        queue(job)
        writeRead(key, opaque)
      }
      scheduleFlush()
    }

    const pipeline = (
      requests: ReadonlyArray<Protocol.Request>,
      operation: string
    ): Effect.Effect<Array<Protocol.Response>, StoreError> =>
      Effect.async<Array<Protocol.Response>, StoreError>((resume) => {
        if (requests.length === 0) return resume(Effect.succeed([]))
        if (state === "down" || state === "closed") return resume(Effect.fail(unavailable(operation)))
        const opaques = requests.map(nextOpaque)
        const lines = encodeAll(requests, opaques, operation)
        if (!Array.isArray(lines)) return resume(Effect.fail(lines))
        const job: Job = {
          operation,
          results: new Array(requests.length),
          remaining: requests.length + 1,
          done: false,
          complete: (answer, error) =>
            resume(error === undefined ? Effect.succeed(answer as Array<Protocol.Response>) : Effect.fail(error))
        }
        const at = now()
        for (let i = 0; i < requests.length; i++) enqueue(requests[i]!, lines[i]!, opaques[i]!, job, i, at)
        enqueue(Protocol.noop, "mn", -1, job, -1, at)
        scheduleFlush()
      })

    /** Everything queued, as one buffer (handed over: the next request starts a new one). */
    const takeOut = (): Buffer | undefined => {
      closeLine()
      if (out === undefined || outLen === 0) return undefined
      const buffer = out.subarray(0, outLen)
      // the next burst starts with room for one like this, within bounds
      outSize = Math.min(OUT_KEEP, Math.max(OUT_MIN, outLen))
      out = undefined
      outLen = 0
      return buffer
    }

    /** One connection attempt: resolves when the socket is gone, telling whether it ever opened. */
    interface Ended {
      readonly opened: boolean
      readonly dropped: boolean
      readonly reason: StoreError["reason"]
      readonly detail: string
    }
    const attempt: Effect.Effect<Ended> = Effect.scoped(
      Effect.gen(function*() {
        const stop = yield* Deferred.make<void, StoreError>()
        kill = stop
        broken = false
        parser.reset()
        let opened = false
        // `run` opens the socket through `open`; the `net.Socket` is kept for direct writes. The
        // finalizer comes first so that a connect given up on (open timeout) is destroyed too.
        let conn: Net.Socket | undefined
        const open = Effect.zipRight(
          Effect.addFinalizer(() => Effect.sync(() => conn?.destroy())),
          Effect.async<Net.Socket, Socket.SocketError>((resume) => {
            const c = Net.createConnection({ host: options.host, port: options.port, noDelay: true })
            conn = c
            c.once("connect", () => resume(Effect.succeed(c)))
            // Stays attached for the socket's life, so a late error never goes unhandled.
            c.on("error", (cause) => resume(Effect.fail(new Socket.SocketGenericError({ reason: "Open", cause }))))
          })
        )
        const socket = yield* NodeSocket.fromDuplex(open, { openTimeout: options.connectTimeout })
        const writeBuffer = (buffer: Uint8Array) => {
          // A failed write surfaces as the socket's error, which ends `run` below.
          conn?.write(buffer)
        }
        const exit = yield* Effect.exit(
          Effect.raceFirst(
            socket.run(onData, {
              onOpen: Effect.sync(() => {
                opened = true
                state = "open"
                reconnects.unsafeUpdate(1, labels)
                writeNow = writeBuffer
                flush()
              })
            }),
            Deferred.await(stop)
          )
        )
        writeNow = undefined
        const dropped = kill !== stop
        kill = undefined
        if (Exit.isSuccess(exit)) {
          return { opened, dropped, reason: "connection", detail: "the server closed the connection" }
        }
        const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        if (failure instanceof StoreError) return { opened, dropped, reason: failure.reason, detail: failure.detail }
        const why = failure !== undefined && "cause" in failure && failure.cause instanceof Error
          ? `: ${failure.cause.message}`
          : ""
        return {
          opened,
          dropped,
          reason: "connection",
          detail: (opened ? "connection lost" : "could not connect") + why
        }
      })
    )

    const supervisor = Effect.gen(function*() {
      const driver = yield* Schedule.driver(options.reconnect)
      while (true) {
        state = "connecting"
        const ended = yield* attempt
        // A deliberate drop already failed its requests; what is pending now waits for the next socket.
        if (!ended.dropped) failAll(ended.reason, ended.detail)
        if (ended.opened) {
          // It was up, so reconnect at once (requests queue meanwhile) and start backing off anew.
          yield* driver.reset
          continue
        }
        state = "down"
        yield* Effect.logDebug("memcached connection attempt failed").pipe(
          Effect.annotateLogs({ server: options.label, error: ended.detail })
        )
        yield* Effect.catchAll(driver.next(undefined), () => Effect.sleep(Duration.seconds(1)))
      }
    })

    /** Declares the connection stuck when its oldest request has waited longer than the timeout. */
    const tick = Math.min(250, Math.max(5, Math.floor(timeoutMillis / 4)))
    const watchdog = Effect.forever(
      Effect.zipRight(
        Effect.sleep(Duration.millis(tick)),
        Effect.sync(() => {
          const head = pending.peek()
          if (head === undefined || clockNow() - head.at <= timeoutMillis) return
          const detail = `no answer within ${timeoutMillis} ms`
          failAll("timeout", `${detail} (an earlier request on the same connection timed out)`, {
            reason: "timeout",
            detail
          })
          if (state === "open") drop(storeError("read", "timeout", detail))
        })
      )
    )

    yield* Effect.forkScoped(supervisor)
    yield* Effect.forkScoped(watchdog)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        state = "closed"
        failAll("connection", "connection closed")
      })
    )

    return {
      label: options.label,
      state: () => state,
      inFlight: () => pending.length + lineExtra,
      answered: () => answered,
      execute,
      executeWith,
      read,
      readValue,
      pipeline
    } satisfies Connection
  })
