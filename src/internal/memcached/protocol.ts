/**
 * The memcached meta protocol (memcached >= 1.6): a typed request/response model, the encoder and
 * an incremental response parser. Nothing here does I/O.
 */
import type { WireKey } from "./keys.js"

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/** `mg`: meta get. @internal */
export interface MetaGet {
  readonly _tag: "mg"
  readonly key: WireKey
  /** `v`: return the value. */
  readonly value?: boolean
  /** `t`: return the remaining TTL in seconds (-1: none). */
  readonly ttl?: boolean
  /** `c`: return the CAS token. */
  readonly cas?: boolean
  /** `f`: return the client flags. */
  readonly clientFlags?: boolean
  /** `k`: return the key. */
  readonly returnKey?: boolean
  /** `s`: return the item size. */
  readonly size?: boolean
  /** `h`: return whether the item was hit before. */
  readonly hit?: boolean
  /** `l`: return the seconds since the last access. */
  readonly lastAccess?: boolean
  /** `u`: do not bump the item in the LRU. */
  readonly noBump?: boolean
  /** `q`: suppress the `EN` of a miss. */
  readonly quiet?: boolean
  /** `N<ttl>`: on a miss, create an empty stub with this TTL and answer `W` (won the recache). */
  readonly vivify?: number
  /** `R<ttl>`: answer `W` when the remaining TTL is below this. */
  readonly recache?: number
  /** `T<ttl>`: update the TTL on a hit (touch). */
  readonly touch?: number
}

/** The `ms` modes (`M` flag). @internal */
export type SetMode = "set" | "add" | "replace" | "append" | "prepend"

/** `ms`: meta set. @internal */
export interface MetaSet {
  readonly _tag: "ms"
  readonly key: WireKey
  readonly value: Uint8Array
  readonly mode?: SetMode
  /** `T<ttl>`. */
  readonly ttl?: number
  /** `F<flags>`: 32-bit client flags. */
  readonly clientFlags?: number
  /** `C<cas>`: store only if the CAS matches. */
  readonly compareCas?: bigint
  /** `I`: with `C`, accept an older CAS but mark the item stale. */
  readonly invalidate?: boolean
  /** `c`: return the new CAS. */
  readonly returnCas?: boolean
  /** `k`: return the key. */
  readonly returnKey?: boolean
  /** `q`: suppress `HD`. */
  readonly quiet?: boolean
}

/** `md`: meta delete. @internal */
export interface MetaDelete {
  readonly _tag: "md"
  readonly key: WireKey
  readonly compareCas?: bigint
  /** `I`: mark stale instead of removing. */
  readonly invalidate?: boolean
  /** `T<ttl>`: with `I`, the TTL of the stale item. */
  readonly ttl?: number
  readonly returnKey?: boolean
  /** `q`: suppress `HD` (a `NF` is still answered). */
  readonly quiet?: boolean
}

/** `ma`: meta arithmetic. @internal */
export interface MetaArithmetic {
  readonly _tag: "ma"
  readonly key: WireKey
  readonly mode?: "incr" | "decr"
  /** `D<delta>`, default 1. */
  readonly delta?: bigint | number
  /** `N<ttl>`: create the item on a miss, with this TTL. */
  readonly vivify?: number
  /** `J<initial>`: the value of an item created by `N`. */
  readonly initial?: bigint | number
  /** `T<ttl>`: update the TTL on success. */
  readonly ttl?: number
  readonly compareCas?: bigint
  /** `v`: return the new value. */
  readonly returnValue?: boolean
  readonly returnTtl?: boolean
  readonly returnCas?: boolean
  readonly quiet?: boolean
}

/** `mn`: no-op; answers `MN`, which closes a pipelined batch. @internal */
export interface MetaNoop {
  readonly _tag: "mn"
}

/** `me`: meta debug, a human-readable dump of an item's metadata. @internal */
export interface MetaDebug {
  readonly _tag: "me"
  readonly key: WireKey
}

/** @internal */
export type Request = MetaGet | MetaSet | MetaDelete | MetaArithmetic | MetaNoop | MetaDebug

/** @internal */
export const noop: MetaNoop = { _tag: "mn" }

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/** The flags a response may carry. @internal */
export interface ResponseFlags {
  /** `O`: the opaque token copied back. */
  readonly opaque?: string
  /** `k`: the key (base64 when `base64` is set). */
  readonly key?: string
  /** `b`: the returned key is base64. */
  readonly base64?: boolean
  /** `t`: remaining TTL in seconds, -1 for none. */
  readonly ttl?: number
  /** `c`: CAS token. */
  readonly cas?: bigint
  /** `f`: client flags. */
  readonly clientFlags?: number
  /** `s`: item size. */
  readonly size?: number
  /** `h`: hit before. */
  readonly hit?: boolean
  /** `l`: seconds since last access. */
  readonly lastAccess?: number
  /** `W`: this client won the right to recache. */
  readonly win?: boolean
  /** `X`: the item is stale. */
  readonly stale?: boolean
  /** `Z`: another client already received the win. */
  readonly winSent?: boolean
}

/** `VA`: a value. @internal */
export interface ValueResponse {
  readonly _tag: "VA"
  readonly value: Uint8Array
  readonly flags: ResponseFlags
}

/** `HD` success, `EN` miss, `NS` not stored, `EX` CAS mismatch, `NF` not found. @internal */
export interface StatusResponse {
  readonly _tag: "HD" | "EN" | "NS" | "EX" | "NF"
  readonly flags: ResponseFlags
}

/** `MN`: the answer to `mn`. @internal */
export interface NoopResponse {
  readonly _tag: "MN"
}

/** `ME`: the answer to `me`. @internal */
export interface DebugResponse {
  readonly _tag: "ME"
  readonly key: string
  readonly fields: Readonly<Record<string, string>>
}

/** @internal */
export type Response = ValueResponse | StatusResponse | NoopResponse | DebugResponse

/** `ERROR`, `CLIENT_ERROR …`, `SERVER_ERROR …`. @internal */
export interface ErrorLine {
  readonly _tag: "Error"
  readonly kind: "ERROR" | "CLIENT_ERROR" | "SERVER_ERROR"
  readonly message: string
}

/**
 * The marks a value or miss may carry besides its opaque token, as bits (see `FastAnswers`):
 * `W` (won the recache), `X` (stale), `Z` (the win was already sent).
 * @internal
 */
export const MARK_WIN = 1
/** @internal */
export const MARK_STALE = 2
/** @internal */
export const MARK_WIN_SENT = 4

/** The marks of a response's flags, as bits. @internal */
export const marksOf = (flags: ResponseFlags): number =>
  (flags.win === true ? MARK_WIN : 0) | (flags.stale === true ? MARK_STALE : 0) |
  (flags.winSent === true ? MARK_WIN_SENT : 0)

/**
 * Where the parser hands the common answers of a read, `VA <size> O<n>` with its value and
 * `EN O<n>`, when their flags are no more than a decimal opaque token and the marks `W`/`X`/`Z`:
 * no response object, no flags object, no string. `opaque` is the token's number (-1 without
 * one). Returns false when the answer is not what the oldest request in flight waits for in
 * this form; the parser then emits it as a `Response`, like every other answer. The value is a
 * view into the chunk it arrived in: a reader that keeps it copies it.
 * @internal
 */
export interface FastAnswers {
  readonly value: (value: Uint8Array, opaque: number, marks: number) => boolean
  readonly miss: (opaque: number) => boolean
  /**
   * The header of a classic `get` line's hit, `VALUE <key> <flags> <size>`, whose line is
   * `buf[…, end)` with the key at `start`: finds the read this key answers. Returns where the key
   * ends (at a space), or -1 when no read of the line waits for this key. The value follows
   * through `value`, with `opaque` set to `CLASSIC`; the reads of the line before the one it
   * answers had no hit, and are settled as misses then.
   */
  readonly keyed?: (buf: Uint8Array, start: number, end: number) => number
  /** A classic `get` line's `END`: its reads not answered so far are misses. False when none is due. */
  readonly end?: () => boolean
}

/**
 * The opaque number the parser hands `FastAnswers.value` for a classic `get` line's value, which
 * carries no token (the reads of such a line are matched by key instead).
 * @internal
 */
export const CLASSIC = -3

/** The number of a decimal opaque token of at most 10 digits, else -2 (equal to no request's). @internal */
export const opaqueNumber = (token: string): number => {
  if (token.length === 0 || token.length > 10) return -2
  let n = 0
  for (let i = 0; i < token.length; i++) {
    const d = token.charCodeAt(i) - 0x30
    if (d < 0 || d > 9) return -2
    n = n * 10 + d
  }
  return n
}

/** What a suppressed (`q`) answer stands for. @internal */
export const quietDefault = (request: Request): Response | undefined => {
  switch (request._tag) {
    case "mg":
      return request.quiet === true ? missResponse : undefined
    case "ms":
    case "md":
    case "ma":
      return request.quiet === true ? storedResponse : undefined
    default:
      return undefined
  }
}

const emptyFlags: ResponseFlags = {}
const missResponse: StatusResponse = { _tag: "EN", flags: emptyFlags }
const storedResponse: StatusResponse = { _tag: "HD", flags: emptyFlags }

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/** A request that cannot be encoded safely; it is never sent. @internal */
export class EncodingProblem {
  constructor(readonly detail: string) {}
}

const int = (name: string, n: number): string => {
  if (!Number.isSafeInteger(n)) throw new EncodingProblem(`${name} must be an integer, got ${n}`)
  return String(n)
}

const u64 = (name: string, n: bigint | number): string => {
  const v = typeof n === "bigint" ? n : Number.isSafeInteger(n) ? BigInt(n) : -1n
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new EncodingProblem(`${name} must be an unsigned 64-bit integer`)
  return v.toString()
}

const u32 = (name: string, n: number): string => {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) {
    throw new EncodingProblem(`${name} must be an unsigned 32-bit integer`)
  }
  return String(n)
}

const modeToken = { set: "S", add: "E", replace: "R", append: "A", prepend: "P" } as const

/** Opaque tokens are short decimal strings; the protocol allows up to 32 bytes. @internal */
export const isOpaque = (s: string): boolean => /^[0-9A-Za-z]{1,32}$/.test(s)

/**
 * The command line of a request (without `\r\n`), with the opaque token appended. Throws
 * `EncodingProblem` for a number that does not fit its field; keys are already safe by type.
 * @internal
 */
export const encodeLine = (request: Request, opaque: string | undefined): string => {
  let line: string
  switch (request._tag) {
    case "mg": {
      line = "mg " + request.key.token
      if (request.key.base64) line += " b"
      if (request.value === true) line += " v"
      if (request.ttl === true) line += " t"
      if (request.cas === true) line += " c"
      if (request.clientFlags === true) line += " f"
      if (request.returnKey === true) line += " k"
      if (request.size === true) line += " s"
      if (request.hit === true) line += " h"
      if (request.lastAccess === true) line += " l"
      if (request.noBump === true) line += " u"
      if (request.vivify !== undefined) line += " N" + int("N", request.vivify)
      if (request.recache !== undefined) line += " R" + int("R", request.recache)
      if (request.touch !== undefined) line += " T" + int("T", request.touch)
      if (request.quiet === true) line += " q"
      break
    }
    case "ms": {
      line = "ms " + request.key.token + " " + request.value.byteLength
      if (request.key.base64) line += " b"
      if (request.mode !== undefined && request.mode !== "set") line += " M" + modeToken[request.mode]
      if (request.ttl !== undefined) line += " T" + int("T", request.ttl)
      if (request.clientFlags !== undefined) line += " F" + u32("F", request.clientFlags)
      // an empty value is told from a lease's stub (empty, flags 0) by a classic `get`
      else if (request.value.byteLength === 0) line += " F1"
      if (request.compareCas !== undefined) line += " C" + u64("C", request.compareCas)
      if (request.invalidate === true) line += " I"
      if (request.returnCas === true) line += " c"
      if (request.returnKey === true) line += " k"
      if (request.quiet === true) line += " q"
      break
    }
    case "md": {
      line = "md " + request.key.token
      if (request.key.base64) line += " b"
      if (request.compareCas !== undefined) line += " C" + u64("C", request.compareCas)
      if (request.invalidate === true) line += " I"
      if (request.ttl !== undefined) line += " T" + int("T", request.ttl)
      if (request.returnKey === true) line += " k"
      if (request.quiet === true) line += " q"
      break
    }
    case "ma": {
      line = "ma " + request.key.token
      if (request.key.base64) line += " b"
      if (request.mode === "decr") line += " MD"
      if (request.delta !== undefined) line += " D" + u64("D", request.delta)
      if (request.vivify !== undefined) line += " N" + int("N", request.vivify)
      if (request.initial !== undefined) line += " J" + u64("J", request.initial)
      if (request.ttl !== undefined) line += " T" + int("T", request.ttl)
      if (request.compareCas !== undefined) line += " C" + u64("C", request.compareCas)
      if (request.returnValue === true) line += " v"
      if (request.returnTtl === true) line += " t"
      if (request.returnCas === true) line += " c"
      if (request.quiet === true) line += " q"
      break
    }
    case "me": {
      line = "me " + request.key.token
      if (request.key.base64) line += " b"
      // `me` takes no opaque: it is matched by order alone.
      return line
    }
    case "mn":
      return "mn"
  }
  if (opaque !== undefined) line += " O" + opaque
  return line
}

/** Whether the server answers this request with an opaque token (every meta command but `me`/`mn`). @internal */
export const carriesOpaque = (request: Request): boolean => request._tag !== "mn" && request._tag !== "me"

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/** Bytes of a response line the parser accepts before calling the stream garbage. @internal */
export const MAX_LINE_BYTES = 8192

/** The stream did not follow the protocol; the connection must be dropped. @internal */
export class ProtocolViolation {
  constructor(readonly detail: string) {}
}

type MutableFlags = { -readonly [K in keyof ResponseFlags]: ResponseFlags[K] }

/**
 * Reads the flags of a response line straight from its bytes, `buf[from, end)`: tokens split by
 * spaces, each a flag character and an optional token. Only the tokens that carry a value are
 * turned into strings, so the common answer (`VA 5 O1a`) costs one small string.
 */
const parseFlags = (buf: Buffer, from: number, end: number): ResponseFlags => {
  let flags: MutableFlags | undefined
  let i = from
  while (i < end) {
    if (buf[i] === 0x20) {
      i++
      continue
    }
    let j = i + 1
    while (j < end && buf[j] !== 0x20) j++
    flags ??= {}
    switch (buf[i]) {
      case 0x4f: // O
        flags.opaque = buf.toString("latin1", i + 1, j)
        break
      case 0x6b: // k
        flags.key = buf.toString("latin1", i + 1, j)
        break
      case 0x62: // b
        flags.base64 = true
        break
      case 0x74: // t
        flags.ttl = Number(buf.toString("latin1", i + 1, j))
        break
      case 0x63: { // c
        const rest = buf.toString("latin1", i + 1, j)
        flags.cas = /^[0-9]+$/.test(rest) ? BigInt(rest) : 0n
        break
      }
      case 0x66: // f
        flags.clientFlags = Number(buf.toString("latin1", i + 1, j))
        break
      case 0x73: // s
        flags.size = Number(buf.toString("latin1", i + 1, j))
        break
      case 0x68: // h
        flags.hit = buf[i + 1] === 0x31
        break
      case 0x6c: // l
        flags.lastAccess = Number(buf.toString("latin1", i + 1, j))
        break
      case 0x57: // W
        flags.win = true
        break
      case 0x58: // X
        flags.stale = true
        break
      case 0x5a: // Z
        flags.winSent = true
        break
      default:
        // Flags this client did not ask for are ignored, as the protocol allows new ones.
        break
    }
    i = j
  }
  return flags ?? emptyFlags
}

const statusCodes: Record<string, StatusResponse["_tag"]> = { HD: "HD", EN: "EN", NS: "NS", EX: "EX", NF: "NF" }

/**
 * An incremental parser of the server's byte stream. `feed` takes each chunk as it arrives and
 * calls `emit` for every complete response, in order; a value split across chunks is assembled
 * without copying the chunks more than once.
 * @internal
 */
export class Parser {
  constructor(
    /** Takes the common answers of reads without objects (see `FastAnswers`); optional. */
    private readonly fast?: FastAnswers | undefined
  ) {}
  private buf: Buffer = Buffer.alloc(0)
  private pos = 0
  /** The flags and size of a `VA` header whose data block has not fully arrived (two fields: no object per value). */
  private pending: ResponseFlags | undefined = undefined
  private pendingSize = 0
  /** The opaque number and marks of a pending `VA` read the fast way (`pending` is then `FAST`). */
  private pendingOpaque = -1
  private pendingMarks = 0
  /** Set by `scanFast`: the opaque number of the line it accepted (-1: none). */
  private scannedOpaque = -1
  /** Chunks of a large data block, joined once when complete. */
  private parts: Array<Buffer> = []
  private partsBytes = 0

  reset(): void {
    this.buf = Buffer.alloc(0)
    this.pos = 0
    this.pending = undefined
    this.parts = []
    this.partsBytes = 0
  }

  /**
   * Consumes a chunk. Returns a `ProtocolViolation` when the stream cannot be parsed; the parser
   * is then unusable until `reset`.
   */
  feed(chunk: Uint8Array, emit: (response: Response | ErrorLine) => void): ProtocolViolation | undefined {
    const data = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (this.pending !== undefined && this.parts.length > 0) {
      this.parts.push(data)
      this.partsBytes += data.length
      if (this.partsBytes < this.pendingSize + 2) return undefined
      this.buf = Buffer.concat(this.parts, this.partsBytes)
      this.pos = 0
      this.parts = []
      this.partsBytes = 0
    } else if (this.pos >= this.buf.length) {
      this.buf = data
      this.pos = 0
    } else {
      this.buf = Buffer.concat([this.buf.subarray(this.pos), data])
      this.pos = 0
    }
    const buf = this.buf
    while (true) {
      if (this.pending !== undefined) {
        const need = this.pendingSize + 2
        const available = buf.length - this.pos
        if (available < need) {
          // Keep what there is and gather the rest of the block before joining.
          this.parts = [buf.subarray(this.pos)]
          this.partsBytes = available
          this.buf = Buffer.alloc(0)
          this.pos = 0
          return undefined
        }
        const end = this.pos + this.pendingSize
        if (buf[end] !== 0x0d || buf[end + 1] !== 0x0a) {
          return new ProtocolViolation("a data block is not followed by \\r\\n")
        }
        const flags = this.pending
        const from = this.pos
        this.pending = undefined
        this.pos = end + 2
        // The short way hands a view: its reader copies what it keeps (see `FastAnswers`). Any
        // other answer gets a copy, so a value never pins the whole socket chunk it arrived in.
        if (flags === FAST && this.fast!.value(buf.subarray(from, end), this.pendingOpaque, this.pendingMarks)) {
          continue
        }
        const value = Buffer.allocUnsafe(this.pendingSize)
        buf.copy(value, 0, from, end)
        emit({ _tag: "VA", value, flags: flags === FAST ? fastFlags(this.pendingOpaque, this.pendingMarks) : flags })
        continue
      }
      const nl = buf.indexOf(0x0a, this.pos)
      if (nl === -1) {
        if (buf.length - this.pos > MAX_LINE_BYTES) {
          return new ProtocolViolation(`a response line is longer than ${MAX_LINE_BYTES} bytes`)
        }
        if (this.pos >= buf.length) {
          this.buf = Buffer.alloc(0)
          this.pos = 0
        }
        return undefined
      }
      if (nl === this.pos || buf[nl - 1] !== 0x0d) {
        return new ProtocolViolation("a response line does not end in \\r\\n")
      }
      const start = this.pos
      this.pos = nl + 1
      const result = this.line(buf, start, nl - 1, emit)
      if (result !== undefined) return result
    }
  }

  /** One response line, `buf[start, end)` without its `\r\n`. */
  private line(
    buf: Buffer,
    start: number,
    end: number,
    emit: (response: Response | ErrorLine) => void
  ): ProtocolViolation | undefined {
    const length = end - start
    if (length < 2 || (length > 2 && buf[start + 2] !== 0x20)) {
      if (this.fast?.keyed !== undefined) {
        const classic = this.classic(buf, start, end)
        if (classic !== false) return classic
      }
      const line = buf.toString("latin1", start, end)
      if (line.startsWith("CLIENT_ERROR")) {
        emit({ _tag: "Error", kind: "CLIENT_ERROR", message: line.slice(13) })
        return undefined
      }
      if (line.startsWith("SERVER_ERROR")) {
        emit({ _tag: "Error", kind: "SERVER_ERROR", message: line.slice(13) })
        return undefined
      }
      if (line === "ERROR") {
        emit({ _tag: "Error", kind: "ERROR", message: "unknown command" })
        return undefined
      }
      return new ProtocolViolation(`unexpected response line ${JSON.stringify(line.slice(0, 80))}`)
    }
    const c0 = buf[start]!
    const c1 = buf[start + 1]!
    if (c0 === 0x56 && c1 === 0x41) { // VA <size> <flags>*
      let i = start + 3
      let size = 0
      const digits = i
      while (i < end && buf[i]! >= 0x30 && buf[i]! <= 0x39) size = size * 10 + buf[i++]! - 0x30
      if (i === digits || i - digits > 10 || (i < end && buf[i] !== 0x20)) {
        return new ProtocolViolation(
          `bad VA line ${JSON.stringify(buf.toString("latin1", start, Math.min(end, start + 80)))}`
        )
      }
      const marks = this.fast === undefined ? -1 : this.scanFast(buf, i, end)
      if (marks >= 0) {
        this.pending = FAST
        this.pendingOpaque = this.scannedOpaque
        this.pendingMarks = marks
      } else {
        this.pending = parseFlags(buf, i, end)
      }
      this.pendingSize = size
      return undefined
    }
    if (c0 === 0x45 && c1 === 0x4e && this.fast !== undefined) { // EN, the miss of a read
      const marks = this.scanFast(buf, start + 2, end)
      if (marks === 0 && this.fast.miss(this.scannedOpaque)) return undefined
      if (marks >= 0) {
        emit({ _tag: "EN", flags: fastFlags(this.scannedOpaque, marks) })
        return undefined
      }
    }
    const code = String.fromCharCode(c0, c1)
    const status = statusCodes[code]
    if (status !== undefined) {
      emit({ _tag: status, flags: length === 2 ? emptyFlags : parseFlags(buf, start + 3, end) })
      return undefined
    }
    if (code === "MN" && length === 2) {
      emit({ _tag: "MN" })
      return undefined
    }
    if (code === "ME") {
      const tokens = buf.toString("latin1", start, end).split(" ")
      const fields: Record<string, string> = {}
      for (let i = 2; i < tokens.length; i++) {
        const eq = tokens[i]!.indexOf("=")
        if (eq > 0) fields[tokens[i]!.slice(0, eq)] = tokens[i]!.slice(eq + 1)
      }
      emit({ _tag: "ME", key: tokens[1] ?? "", fields })
      return undefined
    }
    return new ProtocolViolation(
      `unexpected response line ${JSON.stringify(buf.toString("latin1", start, Math.min(end, start + 80)))}`
    )
  }

  /**
   * The answers to a classic `get` line: `VALUE <key> <flags> <size>[ <cas>]` (a hit, whose data
   * block follows) and `END`. Returns false for any other line, undefined when the line was
   * taken, and a violation when it cannot be what a read in flight waits for. An empty item with
   * client flags 0 is a lease's stub (the store writes an empty value with flags 1): it is handed
   * over with the `Z` mark, as `mg` reports a stub.
   */
  private classic(buf: Buffer, start: number, end: number): ProtocolViolation | false | undefined {
    const fast = this.fast!
    if (end - start === 3 && buf[start] === 0x45 && buf[start + 1] === 0x4e && buf[start + 2] === 0x44) { // END
      return fast.end!() ? undefined : new ProtocolViolation("END arrived with no get line in flight")
    }
    if (
      end - start < 11 || buf[start] !== 0x56 || buf[start + 1] !== 0x41 || buf[start + 2] !== 0x4c ||
      buf[start + 3] !== 0x55 || buf[start + 4] !== 0x45 || buf[start + 5] !== 0x20
    ) return false
    const keyStart = start + 6
    // the key is matched against the reads in flight first, so it is scanned once; nothing is
    // settled until the value has arrived
    const keyEnd = fast.keyed!(buf, keyStart, end)
    if (keyEnd === -1) {
      return new ProtocolViolation(
        `a value for a key no read in flight asked for: ${
          JSON.stringify(buf.toString("latin1", keyStart, Math.min(end, keyStart + 80)))
        }`
      )
    }
    let i = keyEnd
    let flags = 0
    let size = 0
    let digits = ++i
    while (i < end && buf[i]! >= 0x30 && buf[i]! <= 0x39) flags = flags * 10 + buf[i++]! - 0x30
    const flagsOk = i > digits && i - digits <= 10 && buf[i] === 0x20
    digits = ++i
    while (i < end && buf[i]! >= 0x30 && buf[i]! <= 0x39) size = size * 10 + buf[i++]! - 0x30
    if (keyEnd === keyStart || !flagsOk || i === digits || i - digits > 10 || (i < end && buf[i] !== 0x20)) {
      return new ProtocolViolation(
        `bad VALUE line ${JSON.stringify(buf.toString("latin1", start, Math.min(end, start + 80)))}`
      )
    }
    this.pending = FAST
    this.pendingOpaque = CLASSIC
    this.pendingMarks = size === 0 && flags === 0 ? MARK_WIN_SENT : 0
    this.pendingSize = size
    return undefined
  }

  /**
   * The flags of a line, `buf[from, end)`, when they are no more than a decimal opaque token of
   * at most 10 digits and the marks `W`, `X`, `Z`: returns the marks (the opaque number in
   * `scannedOpaque`, -1 without one), or -1 when the flags need `parseFlags`.
   */
  private scanFast(buf: Buffer, from: number, end: number): number {
    let marks = 0
    let opaque = -1
    let i = from
    while (i < end) {
      const c = buf[i]!
      if (c === 0x20) {
        i++
        continue
      }
      if (c === 0x4f) { // O<digits>
        if (opaque !== -1) return -1
        let j = i + 1
        let n = 0
        while (j < end && buf[j] !== 0x20) {
          const d = buf[j]! - 0x30
          if (d < 0 || d > 9 || j - i > 10) return -1
          n = n * 10 + d
          j++
        }
        if (j === i + 1) return -1
        opaque = n
        i = j
        continue
      }
      if (i + 1 < end && buf[i + 1] !== 0x20) return -1
      if (c === 0x57) marks |= MARK_WIN // W
      else if (c === 0x58) marks |= MARK_STALE // X
      else if (c === 0x5a) marks |= MARK_WIN_SENT // Z
      else return -1
      i++
    }
    this.scannedOpaque = opaque
    return marks
  }
}

/** The `pending` of a `VA` header read by `scanFast`: its opaque and marks are in fields of their own. */
const FAST: ResponseFlags = {}

/** The flags object of an answer read by `scanFast`, for the answers that go out as a `Response`. */
const fastFlags = (opaque: number, marks: number): ResponseFlags => {
  const flags: MutableFlags = {}
  if (opaque >= 0) flags.opaque = String(opaque)
  if ((marks & MARK_WIN) !== 0) flags.win = true
  if ((marks & MARK_STALE) !== 0) flags.stale = true
  if ((marks & MARK_WIN_SENT) !== 0) flags.winSent = true
  return flags.opaque === undefined && marks === 0 ? emptyFlags : flags
}
