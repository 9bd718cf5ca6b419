/**
 * A test worker in a child OS process that speaks in lines: commands on its stdin, answers on its
 * stdout. It is node itself with tsx's loader (not the tsx command, which runs the script in a
 * child of its own), so the PID signalled is the PID of the process that works. It is killed by
 * its PID when the scope closes if it is still running.
 */
import { Deferred, Effect } from "effect"
import type { Scope } from "effect"
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))

/** A worker process. */
export interface Child {
  readonly pid: number
  readonly child: ChildProcess
  /** Every line it printed so far. */
  readonly lines: ReadonlyArray<string>
  /** Sends one command, and waits for the first line printed after it that `answer` accepts. */
  readonly request: (
    command: string,
    answer: (line: string) => boolean,
    timeoutMs?: number
  ) => Effect.Effect<string, Error>
  /** Sends one command without waiting. */
  readonly send: (command: string) => Effect.Effect<void>
  /** Waits for the first line printed from index `from` on that `answer` accepts. */
  readonly waitFor: (
    answer: (line: string) => boolean,
    from?: number,
    timeoutMs?: number
  ) => Effect.Effect<string, Error>
  /** SIGSTOP: the process is frozen, its sockets stay open. */
  readonly freeze: Effect.Effect<void>
  /** SIGCONT. */
  readonly thaw: Effect.Effect<void>
}

/**
 * Starts `script` (a path relative to this folder) with its options as a JSON argument, and waits
 * until it prints `READY <pid>`.
 */
export const startChild = (script: string, options: object): Effect.Effect<Child, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", fileURLToPath(new URL(script, import.meta.url)), JSON.stringify(options)],
        { cwd: root, stdio: ["pipe", "pipe", "pipe"] }
      )
      const lines: Array<string> = []
      const waiters = new Set<() => void>()
      let exited: Error | undefined
      let output = ""
      let errors = ""
      child.stdout!.on("data", (chunk: Buffer) => {
        output += chunk.toString()
        let newline = output.indexOf("\n")
        while (newline >= 0) {
          lines.push(output.slice(0, newline))
          output = output.slice(newline + 1)
          newline = output.indexOf("\n")
        }
        for (const wake of waiters) wake()
      })
      child.stderr!.on("data", (chunk: Buffer) => {
        if (errors.length < 10_000) errors += chunk.toString()
      })
      child.once("exit", (code, signal) => {
        exited = new Error(`worker ${child.pid} exited (${code ?? signal}): ${errors}`)
        for (const wake of waiters) wake()
      })
      const waitFor = (answer: (line: string) => boolean, from = 0, timeoutMs = 60_000) =>
        Effect.gen(function*() {
          const found = yield* Deferred.make<string, Error>()
          let next = from
          const check = () => {
            for (; next < lines.length; next++) {
              if (answer(lines[next]!)) return Deferred.unsafeDone(found, Effect.succeed(lines[next]!))
            }
            if (exited !== undefined) Deferred.unsafeDone(found, Effect.fail(exited))
          }
          waiters.add(check)
          check()
          return yield* Deferred.await(found).pipe(
            Effect.timeoutFail({
              duration: timeoutMs,
              onTimeout: () => new Error(`worker ${child.pid}: no answer within ${timeoutMs} ms`)
            }),
            Effect.ensuring(Effect.sync(() => waiters.delete(check)))
          )
        })
      const send = (command: string) => Effect.sync(() => void child.stdin!.write(`${command}\n`))
      const self: Child = {
        pid: child.pid!,
        child,
        lines,
        send,
        waitFor,
        request: (command, answer, timeoutMs) =>
          Effect.suspend(() => {
            const from = lines.length
            return Effect.zipRight(send(command), waitFor(answer, from, timeoutMs))
          }),
        freeze: Effect.sync(() => void child.kill("SIGSTOP")),
        thaw: Effect.sync(() => void child.kill("SIGCONT"))
      }
      yield* waitFor((line) => line === `READY ${child.pid}`).pipe(
        Effect.tapError(() => Effect.sync(() => void child.kill("SIGKILL")))
      )
      return self
    }),
    (worker) =>
      Effect.sync(() => {
        if (worker.child.exitCode === null && worker.child.signalCode === null) {
          worker.child.kill("SIGCONT")
          worker.child.kill("SIGKILL")
        }
      })
  )
