/**
 * The generation of a memcached store's prefix: a number that is part of every key, so that moving
 * to a new one (`clear`, or a server coming back into the ring) leaves every older entry unread.
 *
 * Every server holds a copy under `<prefix>:gen`, so that no single server leaving or coming back
 * decides it. Reading settles on the highest copy (and this process's own, which only ever moves
 * forward) and writes it back to the copies below it; a copy is only ever raised, by
 * compare-and-swap, so a concurrent higher one is never lowered.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { StoreError } from "../../CacheError.js"
import type { WireKey } from "./keys.js"
import type * as Protocol from "./protocol.js"

/** A generation copy as one server holds it. @internal */
export interface Copy {
  /** The generation; `undefined` when absent, or when what is there is not a generation. */
  readonly value: bigint | undefined
  /** The CAS token of what is there; `undefined` when nothing is. */
  readonly cas: bigint | undefined
}

const absent: Copy = { value: undefined, cas: undefined }

/** Reads a copy's bytes: decimal digits, or `undefined` for anything else. @internal */
export const parse = (bytes: Uint8Array): bigint | undefined => {
  const s = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1")
  return /^[0-9]{1,30}$/.test(s) ? BigInt(s) : undefined
}

const encode = (generation: bigint): Uint8Array => Buffer.from(generation.toString(), "latin1")

/** Sends one request to one server. @internal */
export type Run = (request: Protocol.Request) => Effect.Effect<Protocol.Response, StoreError>

/** Rounds of compare-and-swap before a copy that keeps changing under the writer is given up on. */
const RAISE_ROUNDS = 4

/** What `settle` found and wrote. @internal */
export interface Settled<S> {
  /** The generation to adopt: the highest seen, or the new one, or a higher one written meanwhile. */
  readonly generation: bigint
  /** The servers whose copy now holds the target generation or a higher one. */
  readonly holders: ReadonlyArray<S>
  /** The first failure met, if any server failed. */
  readonly error: StoreError | undefined
}

/** @internal */
export interface SettleOptions<S> {
  /** The servers whose copies are read and raised. */
  readonly servers: ReadonlyArray<S>
  readonly run: (server: S) => Run
  readonly key: WireKey
  /** This process's generation, if it has one. */
  readonly current: bigint | undefined
  /** Move to a generation above every one seen (`clear`, a server back in the ring). */
  readonly bump: boolean
  /** A first generation, when none is known anywhere: one above any earlier one (the clock, in ms). */
  readonly seed: () => bigint
  /** Fails a call that reached no server, or one whose answer is not what the command allows. */
  readonly fail: (reason: StoreError["reason"], detail: string) => StoreError
}

const readCopy = (run: Run, key: WireKey, fail: SettleOptions<unknown>["fail"]): Effect.Effect<Copy, StoreError> =>
  Effect.flatMap(run({ _tag: "mg", key, value: true, cas: true }), (r) =>
    r._tag === "VA"
      ? Effect.succeed<Copy>({ value: parse(r.value), cas: r.flags.cas ?? 0n })
      : r._tag === "EN"
      ? Effect.succeed(absent)
      : Effect.fail(fail("protocol", `unexpected answer ${r._tag} to a generation read`)))

/**
 * Makes one server's copy at least `target`: added when absent, swapped (CAS) when lower, re-read
 * and tried again when it changed in between. Returns what the copy holds then (`target`, or a
 * higher generation someone else wrote). With `adopt` (`target` is a first generation, made up
 * because none was found), a generation someone else added meanwhile is taken as it is, even a
 * lower one: processes that start together then settle on one generation, instead of the later
 * one raising the copies above what the earlier one already adopted.
 */
const raise = (
  run: Run,
  key: WireKey,
  target: bigint,
  seen: Copy,
  fail: SettleOptions<unknown>["fail"],
  adopt: boolean
): Effect.Effect<bigint, StoreError> =>
  Effect.gen(function*() {
    let copy = seen
    for (let round = 0; round < RAISE_ROUNDS; round++) {
      if (copy.value !== undefined && copy.value >= target) return copy.value
      const value = encode(target)
      const r = yield* run(
        copy.cas === undefined
          ? { _tag: "ms", key, value, mode: "add" }
          : { _tag: "ms", key, value, compareCas: copy.cas }
      )
      if (r._tag === "HD") return target
      if (r._tag !== "NS" && r._tag !== "EX" && r._tag !== "NF") {
        return yield* Effect.fail(fail("protocol", `unexpected answer ${r._tag} to a generation write`))
      }
      copy = yield* readCopy(run, key, fail)
      if (adopt && copy.value !== undefined) return copy.value
    }
    return yield* Effect.fail(fail("command", "the generation kept changing while it was being written"))
  })

/**
 * Reads the copies on `servers` (in parallel), picks the generation to adopt — the highest of
 * theirs and this process's, plus one when `bump` — and raises every copy below it. Fails only
 * when no server answered the read; the caller decides which holders it needs.
 * @internal
 */
export const settle = <S>(options: SettleOptions<S>): Effect.Effect<Settled<S>, StoreError> =>
  Effect.gen(function*() {
    const { fail, key, servers } = options
    const reads = yield* Effect.forEach(servers, (s) => Effect.either(readCopy(options.run(s), key, fail)), {
      concurrency: "unbounded"
    })
    let error: StoreError | undefined
    let highest = options.current
    const answered: Array<readonly [S, Copy]> = []
    for (let i = 0; i < reads.length; i++) {
      const read = reads[i]!
      if (Either.isLeft(read)) {
        error ??= read.left
        continue
      }
      answered.push([servers[i]!, read.right])
      const value = read.right.value
      if (value !== undefined && (highest === undefined || value > highest)) highest = value
    }
    if (answered.length === 0) return yield* Effect.fail(error ?? fail("unavailable", "no server to read it from"))
    const fresh = highest === undefined
    const target = highest === undefined ? options.seed() : options.bump ? highest + 1n : highest
    const raised = yield* Effect.forEach(
      answered,
      ([s, copy]) => Effect.either(raise(options.run(s), key, target, copy, fail, fresh)),
      { concurrency: "unbounded" }
    )
    // a first generation is what the copies hold now (another process's, when it came first)
    let generation: bigint | undefined = fresh ? undefined : target
    const holders: Array<S> = []
    for (let i = 0; i < raised.length; i++) {
      const r = raised[i]!
      if (Either.isLeft(r)) {
        error ??= r.left
        continue
      }
      holders.push(answered[i]![0])
      if (generation === undefined || r.right > generation) generation = r.right
    }
    return { generation: generation ?? target, holders, error }
  })
