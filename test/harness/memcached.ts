/**
 * Real memcached servers for tests and benchmarks, started from the `memcached` binary on free
 * loopback ports (TCP only) and stopped by PID when their scope closes. Free of vitest, so the
 * benchmarks use it too; the per-file test fixture is in `memcached-fixture.ts`.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import * as net from "node:net"
import { freePort, spawnServer } from "./process.js"
import type { ServerProcess } from "./process.js"

const HOST = "127.0.0.1"

export interface MemcachedOptions {
  /** A fixed port (to restart a server where it was); a free one otherwise. */
  readonly port?: number
  /** Memory limit in MB (`-m`). Default 64. */
  readonly memoryMb?: number
  /** Item size limit (`-I`), e.g. "1m". Default memcached's (1 MB). */
  readonly itemSize?: string
}

/** A memcached process the harness started. */
export interface Memcached {
  readonly port: number
  /** `127.0.0.1:<port>`, as the store's `servers` option takes it. */
  readonly address: string
  readonly process: ServerProcess
}

export const memcachedArgs = (port: number, options: MemcachedOptions = {}): Array<string> => {
  const args = ["-p", String(port), "-l", HOST, "-U", "0", "-m", String(options.memoryMb ?? 64), "-t", "2"]
  if (options.itemSize !== undefined) args.push("-I", options.itemSize)
  // memcached refuses to run as root unless told which user to run as.
  if (typeof process.getuid === "function" && process.getuid() === 0) args.push("-u", "root")
  return args
}

/** Starts one server; fails loudly (with its output) when it does not come up. */
export const startMemcached = (options: MemcachedOptions = {}): Effect.Effect<Memcached, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const port = options.port ?? (yield* freePort)
    const server = yield* spawnServer({ command: "memcached", args: memcachedArgs(port, options), port })
    return { port, address: `${HOST}:${port}`, process: server }
  })

/** Starts `n` servers side by side. */
export const startMemcacheds = (
  n: number,
  options: MemcachedOptions = {}
): Effect.Effect<Array<Memcached>, Error, Scope.Scope> =>
  Effect.forEach(Array.from({ length: n }, (_, i) => i), () => startMemcached(options), { concurrency: n })

/**
 * A plain TCP client for checks behind the store's back: sends raw protocol text and returns
 * everything the server answers until `until` appears.
 */
export const rawCommand = (port: number, text: string, until = "\r\n"): Effect.Effect<string, Error> =>
  Effect.async<string, Error>((resume) => {
    const socket = net.connect({ host: HOST, port })
    let data = ""
    const timer = setTimeout(() => {
      socket.destroy()
      resume(
        Effect.fail(new Error(`no complete answer from ${port} to ${JSON.stringify(text)}: ${JSON.stringify(data)}`))
      )
    }, 5000)
    socket.on("data", (chunk: Buffer) => {
      data += chunk.toString("latin1")
      if (data.endsWith(until)) {
        clearTimeout(timer)
        socket.destroy()
        resume(Effect.succeed(data))
      }
    })
    socket.on("error", (e) => {
      clearTimeout(timer)
      resume(Effect.fail(e))
    })
    socket.write(text)
  })
