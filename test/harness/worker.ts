/**
 * The side of a test worker (see `child`) that runs in the child process: its commands arrive as
 * lines on stdin, and it exits with its program's outcome.
 */
import type { Cause } from "effect"
import { Effect } from "effect"
import * as readline from "node:readline"

/**
 * Serves the parent's commands: each stdin line runs in a fiber of its own, and a failure is
 * handed to `onFailure` (which prints it). Ends when stdin closes.
 */
export const serveLines = (
  run: (line: string) => Effect.Effect<void, unknown>,
  onFailure: (line: string, cause: Cause.Cause<unknown>) => Effect.Effect<void>
): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const lines = readline.createInterface({ input: process.stdin })
    lines.on("line", (line) => {
      Effect.runFork(Effect.catchAllCause(Effect.suspend(() => run(line)), (cause) => onFailure(line, cause)))
    })
    lines.once("close", () => resume(Effect.void))
  })

/** Resolves once the parent sends `GO` on stdin. */
export const awaitGo = (): Promise<void> =>
  new Promise<void>((resolve) => {
    const lines = readline.createInterface({ input: process.stdin })
    lines.on("line", (line) => {
      if (line.trim() === "GO") resolve()
    })
  })

/** Runs the worker's program, then exits: 0 once it ends, 1 with its error on stderr; `cleanup` first. */
export const runWorker = (program: Effect.Effect<void, unknown>, cleanup?: () => void): void => {
  Effect.runPromise(program).then(
    () => {
      cleanup?.()
      process.exit(0)
    },
    (error) => {
      process.stderr.write(`${String(error)}\n`)
      process.exit(1)
    }
  )
}
