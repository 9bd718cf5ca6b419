/**
 * Shared pieces of the Redis benchmarks: JIT warm-up, the servers' lifetime, and the server's own
 * ceiling from `redis-benchmark`.
 */
import { Effect, Exit, Scope } from "effect"
import { execFile } from "node:child_process"

/** Runs each body repeatedly for `ms` (JIT warm-up before any measurement). */
export const warmUp = async (ms: number, bodies: ReadonlyArray<() => Promise<unknown>>) => {
  for (const body of bodies) {
    const end = performance.now() + ms
    while (performance.now() < end) await body()
  }
}

/** `redis-benchmark` against a server, for scale; undefined when the binary is missing. */
export const redisBenchmark = (port: number, args: ReadonlyArray<string>): Promise<string | undefined> =>
  new Promise((resolve) => {
    execFile(
      "redis-benchmark",
      ["-h", "127.0.0.1", "-p", String(port), "-q", ...args],
      { timeout: 120_000 },
      (error, stdout) => resolve(error ? undefined : stdout.trim().split("\r").pop()?.trim())
    )
  })

/**
 * Acquires the servers of a benchmark in a scope, runs `body`, and always closes the scope — on
 * success, on an exception, and on Ctrl-C / SIGTERM — so no server outlives the run.
 */
export const withServers = async <A, E>(
  acquire: Effect.Effect<A, E, Scope.Scope>,
  body: (servers: A, scope: Scope.Scope) => Promise<void>
): Promise<void> => {
  const scope = Effect.runSync(Scope.make())
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
  const onSignal = (signal: NodeJS.Signals) => {
    void close().finally(() => process.exit(signal === "SIGINT" ? 130 : 143))
  }
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)
  try {
    await body(await Effect.runPromise(Scope.extend(acquire, scope)), scope)
  } finally {
    await close()
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
  }
}
