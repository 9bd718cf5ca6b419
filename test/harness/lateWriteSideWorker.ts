/**
 * The other process of the cross-process late-write interleavings (lateWritesProcesses.ts),
 * started with `startChild`. It opens the same Redis (two store clients and a client for the
 * source) and plays its side (lateWriteSide.ts) of every interleaving, deriving each from its seed
 * as the parent does. It prints `READY <pid>`, then answers commands on stdin, one JSON object a
 * line, `{"seed":s,"step":…}`, with one JSON line on stdout that begins `{"seed":s,"step":…`,
 * once that step is done (steps of different seeds run concurrently):
 *
 * - `prepare` → `prepared`; `act` → `acted` (this process writes)
 * - `load` → `loading`; `finish` → `finished` with `loaded` and `value` (this process loads)
 * - `read` → `value` with `value`
 *
 * A failed step prints `{"seed":s,"step":"error","error":…}`.
 */
import { Effect } from "effect"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import { Redis as IoRedis } from "ioredis"
import type { Action } from "./lateWrites.js"
import type { Side } from "./lateWriteSide.js"
import { makeSide } from "./lateWriteSide.js"
import { runWorker, serveLines } from "./worker.js"

export interface SideWorkerOptions {
  readonly port: number
  readonly prefix: string
  readonly actions: ReadonlyArray<Action>
  readonly withoutFence: boolean
  readonly withoutPurges: boolean
}

/** A command: a step of a seed. */
export interface SideCommand {
  readonly seed: number
  readonly step: "prepare" | "act" | "load" | "finish" | "read"
}

const options = JSON.parse(process.argv[2]!) as SideWorkerOptions
const print = (answer: object) => void process.stdout.write(`${JSON.stringify(answer)}\n`)

const db = new IoRedis({ port: options.port, host: "127.0.0.1" })

const store = Effect.flatMap(
  Redis.make({ port: options.port, host: "127.0.0.1" }),
  (client) => Effect.provideService(RedisStore.make({ prefix: options.prefix }), Redis.RedisClient, client)
)

const answer = (side: Side, { seed, step }: SideCommand): Effect.Effect<object> => {
  switch (step) {
    case "prepare":
      return Effect.as(side.prepare(seed), { seed, step: "prepared" })
    case "act":
      return Effect.as(side.act(seed), { seed, step: "acted" })
    case "load":
      return Effect.as(side.load(seed), { seed, step: "loading" })
    case "finish":
      return Effect.map(side.finish(seed), ({ loaded, value }) => ({ seed, step: "finished", loaded, value }))
    case "read":
      return Effect.map(side.read(seed), (value) => ({ seed, step: "value", value }))
  }
}

const program = Effect.gen(function*() {
  const side = yield* makeSide({
    loading: yield* store,
    writing: yield* store,
    db,
    prefix: options.prefix,
    actions: options.actions,
    withoutFence: options.withoutFence,
    withoutPurges: options.withoutPurges
  })
  process.stdout.write(`READY ${process.pid}\n`)
  yield* serveLines(
    (line) => Effect.map(answer(side, JSON.parse(line) as SideCommand), print),
    (line, cause) =>
      Effect.sync(() => print({ seed: (JSON.parse(line) as SideCommand).seed, step: "error", error: String(cause) }))
  )
}).pipe(Effect.scoped)

runWorker(program, () => db.disconnect())
