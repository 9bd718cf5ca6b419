/**
 * Cross-process invalidation scenarios over the bus worker (busWorker.ts): processes that read
 * one tagged key, and one that invalidates the tag, with the times each saw it.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import { startChild } from "./child.js"
import type { Child } from "./child.js"

/** Where the workers connect: a standalone server's port, or a Cluster's nodes. */
export type Target =
  | { readonly port: number }
  | { readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }> }

/** Starts one bus worker. */
export const busWorker = (
  target: Target,
  options: {
    readonly prefix: string
    readonly name: string
    readonly bus: boolean
    readonly versionWindowMillis: number
    readonly reconnectMillis?: number
  }
): Effect.Effect<Child, Error, Scope.Scope> => startChild("./busWorker.ts", { ...target, ...options })

const fields = (line: string) => line.split(" ")

/** A round: the time from the start of the invalidation in `writer` to each reader's first read of the new value. */
export interface Round {
  readonly generation: number
  /** Per reader: milliseconds from the start of `invalidateTag` to its first read of the new value. */
  readonly delays: ReadonlyArray<number>
  /** Per reader: the generation that first read returned. */
  readonly seen: ReadonlyArray<number>
}

/**
 * `rounds` times: every reader reads the key in a loop (one read a millisecond), the writer
 * changes the database and invalidates the tag, and each reader reports its first read of a value
 * of the new generation.
 */
export const propagationRounds = (
  writer: Child,
  readers: ReadonlyArray<Child>,
  rounds: number
): Effect.Effect<ReadonlyArray<Round>, Error> =>
  Effect.gen(function*() {
    // warm: every reader holds the key and the tag's versions
    yield* Effect.forEach(readers, (r) => r.request("READ", (l) => l.startsWith("READ ")), { discard: true })
    const result: Array<Round> = []
    for (let round = 1; round <= rounds; round++) {
      const id = `r${round}`
      // the generation the writer will make is the next one; readers wait for at least it
      const current = Number(fields(yield* readers[0]!.request("READ", (l) => l.startsWith("READ ")))[3])
      const from = readers.map((r) => r.lines.length)
      yield* Effect.forEach(
        readers,
        (r) => r.request(`WATCH ${current + 1} ${id}`, (l) => l === `WATCHING ${id}`),
        { concurrency: "unbounded", discard: true }
      )
      const invalidated = fields(yield* writer.request(`INVALIDATE ${id}`, (l) => l.startsWith(`INVALIDATED ${id} `)))
      const start = Number(invalidated[3])
      const seen = yield* Effect.forEach(
        readers,
        (r, i) => Effect.map(r.waitFor((l) => l.startsWith(`SEEN ${id} `), from[i]), fields),
        { concurrency: "unbounded" }
      )
      result.push({
        generation: Number(invalidated[2]),
        delays: seen.map((s) => Number(s[2]) - start),
        seen: seen.map((s) => Number(s[3]))
      })
    }
    return result
  })

/** The median and the maximum of some numbers, in milliseconds with two decimals. */
export const summary = (values: ReadonlyArray<number>): string => {
  const sorted = [...values].sort((a, b) => a - b)
  const median = sorted.length % 2 === 1
    ? sorted[(sorted.length - 1) / 2]!
    : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2
  return `median ${median.toFixed(2)} ms, max ${sorted[sorted.length - 1]!.toFixed(2)} ms (n=${sorted.length})`
}

/** A read a worker printed: when it started and ended, and the generation of its value. */
export interface Read {
  readonly start: number
  readonly end: number
  readonly generation: number
}

/** The `READ` lines a worker printed from index `from` on. */
export const readsOf = (worker: Child, from = 0): ReadonlyArray<Read> =>
  worker.lines.slice(from).filter((l) => l.startsWith("READ ")).map((l) => {
    const f = fields(l)
    return { start: Number(f[1]), end: Number(f[2]), generation: Number(f[3]) }
  })

/** An invalidation a worker acknowledged: the generation it made, and when `invalidateTag` returned. */
export interface Invalidated {
  readonly generation: number
  readonly acknowledged: number
}

/** The `INVALIDATED` lines a worker printed. */
export const invalidationsOf = (worker: Child): ReadonlyArray<Invalidated> =>
  worker.lines.filter((l) => l.startsWith("INVALIDATED ")).map((l) => {
    const f = fields(l)
    return { generation: Number(f[2]), acknowledged: Number(f[4]) }
  })

/**
 * How old each read's value was: for a read that returned generation g, the time between the
 * acknowledgement of the first invalidation that replaced g and the read's start (0 when none was
 * acknowledged before the read started).
 */
export const agesOf = (reads: ReadonlyArray<Read>, invalidations: ReadonlyArray<Invalidated>): Array<number> =>
  reads.map((read) => {
    const replaced = invalidations.find((i) => i.generation > read.generation && i.acknowledged < read.start)
    return replaced === undefined ? 0 : read.start - replaced.acknowledged
  })
