/**
 * One process of the cross-process late-write test, run with tsx as a child process.
 *
 * It builds a read-through cache over a Redis store (port and prefix from its JSON argument) and
 * gets one key. Its loader reads the source (a Redis key standing in for a database), prints
 * `READ <value>`, and waits for `GO` on stdin before it returns `v<value>`: a slow load that read
 * the source before the parent wrote. Then it prints `DONE <value>` and exits.
 */
import { Effect, Schema } from "effect"
import * as ReadThrough from "effect-cachekit/ReadThrough"
import * as RedisStore from "effect-cachekit/RedisStore"
import { Redis as IoRedis } from "ioredis"
import * as readline from "node:readline"

interface WorkerOptions {
  readonly port: number
  readonly prefix: string
  readonly key: string
}

const options = JSON.parse(process.argv[2]!) as WorkerOptions
const source = new IoRedis({ port: options.port, host: "127.0.0.1" })

const go = new Promise<void>((resolve) => {
  const lines = readline.createInterface({ input: process.stdin })
  lines.on("line", (line) => {
    if (line.trim() === "GO") resolve()
  })
})

const lookup = (_: string) =>
  Effect.gen(function*() {
    const read = yield* Effect.promise(() => source.get(`${options.prefix}-source`))
    process.stdout.write(`READ ${read}\n`)
    yield* Effect.promise(() => go)
    return `v${read}`
  })

const program = Effect.gen(function*() {
  const cache = yield* ReadThrough.make({ namespace: "late", value: Schema.String, lookup, ttl: "1 minute" })
  const value = yield* cache.get(options.key)
  process.stdout.write(`DONE ${value}\n`)
}).pipe(
  Effect.scoped,
  Effect.provide(RedisStore.layer({ port: options.port, prefix: options.prefix }))
)

Effect.runPromise(program).then(
  () => source.quit().then(() => process.exit(0)),
  (error) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  }
)
