/**
 * Shared pieces of the Redis benchmarks: the workload (keys, values, the order they are read in),
 * JIT warm-up, the check that a warm-up met no store error, the servers' lifetime, and the
 * server's own ceiling from `redis-benchmark`.
 */
import { Effect, Exit, Schema, Scope } from "effect"
import { execFile } from "node:child_process"

/** Warm keys of every scenario. */
export const KEYS = 1000
/** The ReadThrough's keys. */
export const ids = Array.from({ length: KEYS }, (_, i) => `p${i}`)
export const Product = Schema.Struct({ id: Schema.String, name: Schema.String, price: Schema.Number })
export const product = (id: string) => ({ id, name: `product ${id}`, price: id.length * 1.25 })
/** The keys as Redis holds them (store prefix `bench`, namespace `product`), built once. */
export const fullKeys = ids.map((id) => `bench:product:${id}`)
/** The store's own keys (the ReadThrough adds its namespace itself), built once like the raw ones. */
export const storeKeys = ids.map((id) => `product:${id}`)
/** The i-th read of a run, spread over the warm keys. */
const at = (i: number) => (i * 7919) % KEYS
export const key = (i: number) => ids[at(i)]!
export const fullKey = (i: number) => fullKeys[at(i)]!
export const storeKey = (i: number) => storeKeys[at(i)]!
/** The i-th `getMany` of a run: indices of 100 keys. */
export const batch = (i: number) => Array.from({ length: 100 }, (_, j) => (i * 100 + j * 13) % KEYS)

/** Refuses a run whose warm-up met store errors: it would measure the fallback path, not hits. */
export const assertWarm = (storeErrors: number, breakerState: string) => {
  if (storeErrors > 0 || breakerState !== "closed") {
    throw new Error(`the warm-up met ${storeErrors} store errors (breaker ${breakerState}): no valid run`)
  }
}

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
