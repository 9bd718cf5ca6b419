/**
 * Starting and stopping real server processes for tests: free loopback ports, temp dirs, PIDs.
 * Every process is started by the harness and stopped by its PID in a scope finalizer; nothing
 * here ever touches a process it did not start.
 */
import { Clock, Effect, Schedule } from "effect"
import type { Scope } from "effect"
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** Real time for the harness, even inside tests that run on the TestClock. */
const defaultClock = Clock.make()

/** A free TCP port on 127.0.0.1, as the kernel hands it out. */
export const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.unref()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Several distinct free ports. */
export const freePorts = (n: number): Effect.Effect<Array<number>> =>
  Effect.gen(function*() {
    const ports = new Set<number>()
    while (ports.size < n) ports.add(yield* freePort)
    return [...ports]
  })

/** Whether something accepts connections on 127.0.0.1:port. */
export const isListening = (port: number, host = "127.0.0.1"): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const socket = net.connect({ port, host })
    const done = (ok: boolean) => {
      socket.destroy()
      resume(Effect.succeed(ok))
    }
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
    socket.setTimeout(1000, () => done(false))
  })

/** Waits (real time) until the port accepts connections, or fails after `timeoutMs`. */
export const waitForPort = (port: number, timeoutMs = 10_000): Effect.Effect<void, Error> =>
  isListening(port).pipe(
    Effect.filterOrFail((ok) => ok, () => new Error(`port ${port} is not listening`)),
    Effect.retry(Schedule.spaced("25 millis").pipe(Schedule.upTo(`${timeoutMs} millis`))),
    Effect.asVoid,
    Effect.withClock(defaultClock)
  )

/** Waits (real time) until nothing listens on the port any more. */
export const waitForPortClosed = (port: number, timeoutMs = 10_000): Effect.Effect<void, Error> =>
  isListening(port).pipe(
    Effect.filterOrFail((ok) => !ok, () => new Error(`port ${port} is still listening`)),
    Effect.retry(Schedule.spaced("25 millis").pipe(Schedule.upTo(`${timeoutMs} millis`))),
    Effect.asVoid,
    Effect.withClock(defaultClock)
  )

/** Polls `check` in real time until it holds, failing with `what` after `timeoutMs`. */
export const eventually = <E, R>(
  what: string,
  check: Effect.Effect<boolean, E, R>,
  timeoutMs = 20_000
): Effect.Effect<void, Error, R> =>
  check.pipe(
    Effect.catchAll(() => Effect.succeed(false)),
    Effect.filterOrFail((ok) => ok, () => new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
    Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo(`${timeoutMs} millis`))),
    Effect.asVoid,
    Effect.withClock(defaultClock)
  )

/** A temp dir, removed when the scope closes. */
export const tempDir = (prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), `cachekit-${prefix}-`))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/**
 * PIDs of the servers still running. If the test process exits without closing their scopes
 * (a crash, an uncaught error), they are killed on the way out instead of being left behind.
 */
const livePids = new Set<number>()
process.once("exit", () => {
  for (const pid of livePids) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
})

/** A process the harness started. */
export interface ServerProcess {
  readonly pid: number
  readonly port: number
  readonly child: ChildProcess
  /** Stops it with SIGKILL (a crash) and waits for the port to close. */
  readonly kill: Effect.Effect<void, Error>
  /** Freezes it with SIGSTOP: the port stays open, nothing answers. */
  readonly freeze: Effect.Effect<void>
  /** Resumes a frozen process with SIGCONT. */
  readonly thaw: Effect.Effect<void>
  /** Whether the process is still running. */
  readonly alive: () => boolean
}

/**
 * Spawns `command args` expecting it to listen on `port`; stops it by PID when the scope closes.
 * Fails loudly (with the process's output) when it does not start.
 */
export const spawnServer = (options: {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly port: number
  readonly cwd?: string
  readonly startTimeoutMs?: number
}): Effect.Effect<ServerProcess, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const child = spawn(options.command, [...options.args], {
        cwd: options.cwd,
        stdio: ["ignore", "pipe", "pipe"],
        detached: false
      })
      let output = ""
      child.stdout?.on("data", (d: Buffer) => {
        if (output.length < 20_000) output += d.toString()
      })
      child.stderr?.on("data", (d: Buffer) => {
        if (output.length < 20_000) output += d.toString()
      })
      const spawnError = yield* Effect.async<Error | undefined>((resume) => {
        child.once("spawn", () => resume(Effect.succeed(undefined)))
        child.once("error", (e) => resume(Effect.succeed(e)))
      })
      if (spawnError !== undefined || child.pid === undefined) {
        return yield* Effect.fail(
          new Error(`could not start ${options.command}: ${spawnError?.message ?? "no pid"}`)
        )
      }
      const pid = child.pid
      livePids.add(pid)
      let exited = false
      child.once("exit", () => {
        exited = true
        livePids.delete(pid)
      })
      yield* waitForPort(options.port, options.startTimeoutMs ?? 10_000).pipe(
        Effect.mapError(() =>
          new Error(`${options.command} ${options.args.join(" ")} did not listen on ${options.port}:\n${output}`)
        )
      )
      const signal = (sig: NodeJS.Signals) =>
        Effect.sync(() => {
          if (!exited) {
            try {
              process.kill(pid, sig)
            } catch {
              // already gone
            }
          }
        })
      const server: ServerProcess = {
        pid,
        port: options.port,
        child,
        kill: Effect.zipRight(signal("SIGKILL"), waitForPortClosed(options.port)),
        freeze: signal("SIGSTOP"),
        thaw: signal("SIGCONT"),
        alive: () => !exited
      }
      return server
    }),
    (server) =>
      Effect.gen(function*() {
        if (!server.alive()) return
        yield* server.thaw
        yield* Effect.sync(() => process.kill(server.pid, "SIGTERM"))
        yield* waitForPortClosed(server.port, 5000).pipe(
          Effect.catchAll(() => Effect.sync(() => process.kill(server.pid, "SIGKILL")))
        )
      }).pipe(Effect.catchAllDefect(() => Effect.void), Effect.ignore)
  )
