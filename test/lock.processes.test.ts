/**
 * The distributed lock across real OS processes, on one real Redis and on a ring of three real
 * memcached servers: four child processes (the worker in harness/lockWorker.ts) each run 250
 * concurrent gets of one key, cold or kept past its expiry by failSafe.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Schema } from "effect"
import type { Scope } from "effect"
import { CacheAside } from "effect-cachekit"
import * as RedisStore from "effect-cachekit/RedisStore"
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"
import { fixture } from "./harness/fixture.js"
import { startMemcacheds } from "./harness/memcached.js"
import { redisCli, redisServer } from "./harness/redis.js"

const env = fixture(redisServer())
const ring = fixture(startMemcacheds(3))

const workerScript = fileURLToPath(new URL("./harness/lockWorker.ts", import.meta.url))
const root = fileURLToPath(new URL("..", import.meta.url))

const PROCESSES = 4
const GETS = 250

interface GetResult {
  readonly value?: string
  readonly error?: string
  readonly millis: number
}

interface Worker {
  readonly pid: number
  readonly child: ChildProcess
  readonly ready: Deferred.Deferred<void, Error>
  /** Its results, or an error when it exited without printing them (killed, crashed). */
  readonly result: Deferred.Deferred<ReadonlyArray<GetResult>, Error>
  /** The loader calls it started, by their number across every process. */
  readonly loads: Array<number>
  readonly go: Effect.Effect<void>
  readonly kill: Effect.Effect<void>
}

let run = 0

/** Starts one worker process; it is killed when the scope closes if it is still running. */
const startWorker = (options: object, onLoad: (worker: Worker, n: number) => void) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const ready = yield* Deferred.make<void, Error>()
      const result = yield* Deferred.make<ReadonlyArray<GetResult>, Error>()
      // node itself with tsx's loader (not the tsx command, which runs the script in a child of
      // its own): the PID killed is the PID of the process that loads
      const child = spawn(process.execPath, ["--import", "tsx", workerScript, JSON.stringify(options)], {
        cwd: root,
        stdio: ["pipe", "pipe", "pipe"]
      })
      let output = ""
      let errors = ""
      const worker: Worker = {
        pid: child.pid!,
        child,
        ready,
        result,
        loads: [],
        go: Effect.sync(() => void child.stdin!.write("GO\n")),
        kill: Effect.sync(() => void child.kill("SIGKILL"))
      }
      child.stdout!.on("data", (chunk: Buffer) => {
        output += chunk.toString()
        let newline = output.indexOf("\n")
        while (newline >= 0) {
          const line = output.slice(0, newline)
          output = output.slice(newline + 1)
          if (line === `READY ${child.pid}`) Deferred.unsafeDone(ready, Effect.void)
          else if (line.startsWith("LOAD ")) {
            const n = Number(line.slice(5))
            worker.loads.push(n)
            onLoad(worker, n)
          } else if (line.startsWith("RESULT ")) {
            Deferred.unsafeDone(result, Effect.succeed(JSON.parse(line.slice(7)) as ReadonlyArray<GetResult>))
          }
          newline = output.indexOf("\n")
        }
      })
      child.stderr!.on("data", (chunk: Buffer) => {
        if (errors.length < 10_000) errors += chunk.toString()
      })
      child.once("exit", (code, signal) => {
        const failure = Effect.fail(new Error(`worker ${worker.pid} exited (${code ?? signal}): ${errors}`))
        Deferred.unsafeDone(ready, failure)
        Deferred.unsafeDone(result, failure)
      })
      return worker
    }),
    (worker) => Effect.sync(() => void (worker.child.exitCode === null && worker.child.kill("SIGKILL")))
  )

/**
 * Runs `PROCESSES` workers to their results; `onLoad` sees every loader call as it starts, and
 * `prepare` runs (with the workers' key prefix) before they start.
 */
const stampede = (
  options: object,
  onLoad: (worker: Worker, n: number) => void = () => {},
  store: "redis" | "memcached" = "redis",
  prepare: (prefix: string) => Effect.Effect<void, unknown, Scope.Scope> = () => Effect.void
): Effect.Effect<
  { readonly workers: ReadonlyArray<Worker>; readonly loaderCalls: number; readonly prefix: string },
  Error,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const prefix = `lock-${process.pid}-${run++}`
    const port = store === "redis" ? env().port : undefined
    const memcached = store === "memcached" ? ring().map((server) => server.address) : undefined
    const all = { port, memcached, prefix, key: "hot", gets: GETS, ...options }
    yield* Effect.orDie(prepare(prefix))
    const workers = yield* Effect.forEach(
      Array.from({ length: PROCESSES }),
      () => startWorker(all, onLoad),
      { concurrency: "unbounded" }
    )
    yield* Effect.forEach(workers, (w) => Deferred.await(w.ready), { discard: true })
    yield* Effect.forEach(workers, (w) => w.go, { discard: true })
    yield* Effect.forEach(workers, (w) => Effect.either(Deferred.await(w.result)), { concurrency: "unbounded" })
    // over Redis, the calls counted in Redis; over memcached, the calls the processes told of
    const calls = port === undefined
      ? workers.reduce((sum, w) => sum + w.loads.length, 0)
      : Number((yield* redisCli(port, "GET", `${prefix}-loader-calls`)).trim())
    return { workers, loaderCalls: calls, prefix }
  })

const resultsOf = (worker: Worker) => Effect.orDie(Deferred.await(worker.result))

describe("lock across 4 OS processes on one Redis", () => {
  it.scoped(
    "4 processes × 250 concurrent cold gets: 4 loader calls without the lock (single flight only)",
    () =>
      Effect.gen(function*() {
        const { loaderCalls, workers } = yield* stampede({ loadMillis: 1_000, hangFirst: false })
        expect(loaderCalls).toBe(PROCESSES)
        for (const worker of workers) {
          const results = yield* resultsOf(worker)
          expect(results.length).toBe(GETS)
          // each process answers all its gets with its own load
          expect(new Set(results.map((r) => r.value))).toEqual(new Set([`hot loaded by ${worker.pid}`]))
        }
      }),
    120_000
  )

  it.scoped(
    "4 processes × 250 concurrent cold gets with lock: 1 loader call, every get answered with its value",
    () =>
      Effect.gen(function*() {
        const { loaderCalls, workers } = yield* stampede({
          loadMillis: 1_000,
          hangFirst: false,
          lock: { ttl: 3_000, wait: 20_000 }
        })
        expect(loaderCalls).toBe(1)
        const holder = workers.find((w) => w.loads.length > 0)!
        const values = new Set<string | undefined>()
        for (const worker of workers) {
          const results = yield* resultsOf(worker)
          expect(results.length).toBe(GETS)
          for (const r of results) values.add(r.value)
        }
        expect(values).toEqual(new Set([`hot loaded by ${holder.pid}`]))
      }),
    120_000
  )

  it.scoped(
    "the lock holder SIGKILLed mid-load: another process takes over after the lease, every waiter returns by its deadline",
    () =>
      Effect.gen(function*() {
        const wait = 15_000
        const ttl = 2_000
        let killed: Worker | undefined
        const { loaderCalls, workers } = yield* stampede(
          { loadMillis: 200, hangFirst: true, lock: { ttl, wait } },
          (worker, n) => {
            if (n === 1) {
              killed = worker
              worker.child.kill("SIGKILL")
            }
          }
        )
        expect(killed).toBeDefined()
        // the killed holder's call, then the one of the process that took over
        expect(loaderCalls).toBe(2)
        const survivors = workers.filter((w) => w !== killed)
        const taker = survivors.find((w) => w.loads.includes(2))!
        expect(taker).toBeDefined()
        for (const worker of survivors) {
          const results = yield* resultsOf(worker)
          expect(results.length).toBe(GETS)
          expect(new Set(results.map((r) => r.value))).toEqual(new Set([`hot loaded by ${taker.pid}`]))
          // answered once the dead holder's lease lapsed, well before the waiters' deadline
          expect(Math.max(...results.map((r) => r.millis))).toBeLessThan(wait)
        }
        expect(Effect.runSync(Deferred.isDone(killed!.result))).toBe(true)
      }),
    120_000
  )

  it.scoped(
    "the lock holder SIGKILLed, onTimeout \"fail\": every waiter fails with LockTimeout at its deadline, before the lease lapses",
    () =>
      Effect.gen(function*() {
        const wait = 1_500
        const ttl = 20_000
        let killed: Worker | undefined
        const { loaderCalls, workers } = yield* stampede(
          { loadMillis: 200, hangFirst: true, lock: { ttl, wait, onTimeout: "fail" } },
          (worker, n) => {
            if (n === 1) {
              killed = worker
              worker.child.kill("SIGKILL")
            }
          }
        )
        expect(loaderCalls).toBe(1)
        for (const worker of workers.filter((w) => w !== killed)) {
          const results = yield* resultsOf(worker)
          expect(results.length).toBe(GETS)
          expect(new Set(results.map((r) => r.error))).toEqual(new Set(["LockTimeout"]))
          // none waited for the lease (20 s): each gave up at its own deadline
          expect(Math.max(...results.map((r) => r.millis))).toBeLessThan(ttl / 2)
          expect(Math.min(...results.map((r) => r.millis))).toBeGreaterThanOrEqual(wait - 1)
        }
      }),
    120_000
  )
})

describe("lock across 4 OS processes on one Redis, with a kept stale value (failSafe)", () => {
  it.scopedLive(
    "the lock holder SIGKILLed mid-load, a value kept by failSafe: every waiter is answered with it at its deadline, no takeover",
    () =>
      Effect.gen(function*() {
        const wait = 1_500
        const ttl = 20_000
        const failSafe = { maxStale: 3_600_000, throttle: 1_000 }
        let killed: Worker | undefined
        // the value the workers find: written as they would have, then left to expire (kept by
        // failSafe for an hour): every get is a miss with a kept value, and loads under the lease
        const prime = (prefix: string) =>
          Effect.gen(function*() {
            const cache = yield* CacheAside.make({ namespace: "stampede", value: Schema.String, ttl: 50, failSafe })
            yield* cache.set("hot", "hot kept")
            yield* Effect.sleep("100 millis")
          }).pipe(Effect.provide(RedisStore.layer({ host: "127.0.0.1", port: env().port, prefix })))
        const { loaderCalls, workers } = yield* stampede(
          { loadMillis: 200, hangFirst: true, lock: { ttl, wait }, failSafe },
          (worker, n) => {
            if (n === 1) {
              killed = worker
              worker.child.kill("SIGKILL")
            }
          },
          "redis",
          prime
        )
        expect(killed).toBeDefined()
        // only the killed holder's call: no waiter loaded, neither by taking over (the lease lasts
        // 20 s) nor by the "load" policy (the kept value answers first)
        expect(loaderCalls).toBe(1)
        const survivors = workers.filter((w) => w !== killed)
        expect(survivors.length).toBe(PROCESSES - 1)
        for (const worker of survivors) {
          const results = yield* resultsOf(worker)
          expect(results.length).toBe(GETS)
          expect(new Set(results.map((r) => r.value ?? r.error))).toEqual(new Set(["hot kept"]))
          // none waited for the lease (20 s): each was answered at its own deadline
          expect(Math.max(...results.map((r) => r.millis))).toBeLessThan(ttl / 2)
          expect(Math.min(...results.map((r) => r.millis))).toBeGreaterThanOrEqual(wait - 1)
        }
        expect(Effect.runSync(Deferred.isDone(killed!.result))).toBe(true)
      }),
    120_000
  )
})

describe("lock across 4 OS processes on a ring of three memcached servers (the native lease)", () => {
  it.scoped(
    "4 processes × 250 concurrent cold gets: 4 loader calls without the lock, 1 with it",
    () =>
      Effect.gen(function*() {
        const without = yield* stampede({ loadMillis: 1_000, hangFirst: false }, undefined, "memcached")
        expect(without.loaderCalls).toBe(PROCESSES)
        // memcached counts a stub's TTL in whole seconds (a 3 s lease may lapse after 2 s), and four
        // starting processes can hold the holder's watchdog back: the lease leaves a wide margin
        const locked = yield* stampede(
          { loadMillis: 1_000, hangFirst: false, lock: { ttl: 10_000, wait: 20_000 } },
          undefined,
          "memcached"
        )
        expect(locked.loaderCalls).toBe(1)
        const holder = locked.workers.find((w) => w.loads.length > 0)!
        for (const worker of locked.workers) {
          const results = yield* resultsOf(worker)
          expect(results.length).toBe(GETS)
          expect(new Set(results.map((r) => r.value))).toEqual(new Set([`hot loaded by ${holder.pid}`]))
        }
      }),
    120_000
  )
})
