/**
 * A small benchmark kit. Every contender of a scenario runs in the same process, against the
 * same servers, in interleaved rounds: in each round every contender runs once for a fixed
 * wall-clock budget, in a rotating order, so a change in the machine's background load hits all
 * of them alike. Ratios are taken within each round (contenders measured moments apart) and the
 * median of those per-round ratios is reported, with each contender's median ops/s and range.
 */
import { Effect } from "effect"
import type { ManagedRuntime } from "effect"

export interface Contender {
  readonly name: string
  /** Runs `n` operations; resolves when they are done. */
  readonly run: (n: number) => Promise<void> | void
}

export interface Result {
  readonly name: string
  /** Median ops/s over the rounds. */
  readonly opsPerSec: number
  /** ops/s of each round, in round order. */
  readonly samples: ReadonlyArray<number>
  /** CPU time of the whole process per operation (µs) in each round, in round order. */
  readonly cpuSamples: ReadonlyArray<number>
}

export interface CompareOptions {
  /** Time each contender runs per round (ms). */
  readonly budgetMs?: number
  readonly rounds?: number
  /**
   * Smallest batch of operations one `run` call gets. A pool of N workers started per call
   * should get many operations per worker, or the pool's start-up is what gets measured.
   */
  readonly minBatch?: number
  /** A batch is grown until one `run` takes at least this long (ms). */
  readonly batchMs?: number
  /** Contenders to show ratios against, by name (the first contender when omitted). */
  readonly versus?: ReadonlyArray<string>
  /**
   * Also print CPU time per operation and the ratios by it (the median of per-round ratios of
   * CPU µs per operation, as speeds: above 1 is less CPU). On a machine shared with other work,
   * the wall clock of a round moves with the others' load; the CPU a process spends per operation
   * moves far less.
   */
  readonly cpu?: boolean
}

const nowMs = () => performance.now()

/** With `--expose-gc`, each measurement starts from a collected heap, not the previous contender's garbage. */
const collect = (globalThis as { gc?: () => void }).gc ?? (() => {})

const batchSize = async (contender: Contender, minBatch: number, batchMs: number): Promise<number> => {
  let batch = minBatch
  for (;;) {
    const start = nowMs()
    await contender.run(batch)
    if (nowMs() - start > batchMs || batch > 1e8) return batch
    batch *= 2
  }
}

/** ops/s and the process's CPU µs per operation of one measurement. */
const measure = async (contender: Contender, batch: number, budgetMs: number): Promise<readonly [number, number]> => {
  collect()
  let ops = 0
  const cpu = process.cpuUsage()
  const start = nowMs()
  let elapsed = 0
  while (elapsed < budgetMs) {
    await contender.run(batch)
    ops += batch
    elapsed = nowMs() - start
  }
  const used = process.cpuUsage(cpu)
  return [ops / (elapsed / 1000), (used.user + used.system) / ops]
}

export const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Runs every contender `rounds` times, interleaved in a rotating order, and prints the table. */
export const compare = async (
  title: string,
  contenders: ReadonlyArray<Contender>,
  options: CompareOptions = {}
): Promise<Array<Result>> => {
  const budget = options.budgetMs ?? 400
  const rounds = options.rounds ?? 9
  const batches = new Map<string, number>()
  for (const c of contenders) { // warm-up (JIT, caches), and each contender's batch size
    const batch = await batchSize(c, options.minBatch ?? 1, options.batchMs ?? 10)
    batches.set(c.name, batch)
    await measure(c, batch, 150)
  }
  const samples = new Map<string, Array<number>>(contenders.map((c) => [c.name, []]))
  const cpuSamples = new Map<string, Array<number>>(contenders.map((c) => [c.name, []]))
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(r + k) % contenders.length]!
      const [ops, cpu] = await measure(c, batches.get(c.name)!, budget)
      samples.get(c.name)!.push(ops)
      cpuSamples.get(c.name)!.push(cpu)
    }
  }
  const results = contenders.map((c) => ({
    name: c.name,
    opsPerSec: median(samples.get(c.name)!),
    samples: samples.get(c.name)!,
    cpuSamples: cpuSamples.get(c.name)!
  }))
  print(title, results, options.versus ?? [contenders[0]!.name], options.cpu ?? false)
  return results
}

export const formatOps = (ops: number): string =>
  ops >= 1e6 ? `${(ops / 1e6).toFixed(2)} M` : ops >= 1e3 ? `${(ops / 1e3).toFixed(1)} k` : ops.toFixed(0)

/** The median of the per-round ratios `a / b`. */
export const ratioOf = (results: ReadonlyArray<Result>, a: string, b: string): number => {
  const x = results.find((r) => r.name === a)!
  const y = results.find((r) => r.name === b)!
  return median(x.samples.map((s, i) => s / y.samples[i]!))
}

/** `a / b` (median of per-round ratios) as a ratio string. */
export const ratio = (results: ReadonlyArray<Result>, a: string, b: string): string =>
  `${ratioOf(results, a, b).toFixed(2)}×`

/** The median of the per-round ratios of CPU per operation, `b / a`: how much less CPU `a` spends than `b`. */
export const cpuRatioOf = (results: ReadonlyArray<Result>, a: string, b: string): number => {
  const x = results.find((r) => r.name === a)!
  const y = results.find((r) => r.name === b)!
  return median(x.cpuSamples.map((s, i) => y.cpuSamples[i]! / s))
}

export const print = (
  title: string,
  results: ReadonlyArray<Result>,
  versus: ReadonlyArray<string>,
  cpu = false
): void => {
  console.log(`\n### ${title}\n`)
  const cpuHead = cpu ? ` | CPU µs/op | ${versus.map((v) => `× ${v}, by CPU`).join(" | ")}` : ""
  const cpuRule = cpu ? ` | ---: | ${versus.map(() => "---:").join(" | ")}` : ""
  console.log(`| contender | ops/s, median | min – max | ${versus.map((v) => `× ${v}`).join(" | ")}${cpuHead} |`)
  console.log(`| --- | ---: | ---: | ${versus.map(() => "---:").join(" | ")}${cpuRule} |`)
  for (const r of results) {
    const range = `${formatOps(Math.min(...r.samples))} – ${formatOps(Math.max(...r.samples))}`
    const cpuCells = cpu
      ? ` | ${median(r.cpuSamples).toFixed(1)} | ${
        versus.map((v) => `${cpuRatioOf(results, r.name, v).toFixed(2)}×`).join(" | ")
      }`
      : ""
    console.log(
      `| ${r.name} | ${formatOps(r.opsPerSec)} | ${range} | ${
        versus.map((v) => ratio(results, r.name, v)).join(" | ")
      }${cpuCells} |`
    )
  }
}

/** Runs `n` calls of `op` with `concurrency` of them in flight at any time. */
export const promisePool = async (n: number, concurrency: number, op: (i: number) => Promise<unknown>) => {
  let next = 0
  const worker = async () => {
    while (next < n) await op(next++)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker))
}

/** The same pool for Effect code: `concurrency` fibers pulling from one counter. */
export const effectPool = <E>(
  n: number,
  concurrency: number,
  op: (i: number) => Effect.Effect<unknown, E>,
  runtime?: ManagedRuntime.ManagedRuntime<never, never>
): Promise<void> => {
  let next = 0
  // the Effect counterpart of `promisePool`'s `while … await` loop: no generator step per operation
  const worker = Effect.whileLoop({ while: () => next < n, body: () => op(next++), step: () => {} })
  const all = Effect.orDie(Effect.all(Array.from({ length: Math.min(concurrency, n) }, () => worker), {
    concurrency: "unbounded",
    discard: true
  }))
  return runtime === undefined ? Effect.runPromise(all) : runtime.runPromise(all)
}

/** mulberry32: a tiny seeded generator, so every run replays the same workload. */
export const seeded = (seed: number): () => number => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
