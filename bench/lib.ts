/**
 * A small benchmark kit: time a body for a fixed wall-clock budget after a warm-up, report ops/s,
 * and print ratios against a baseline. Every contender of a scenario runs in the same process,
 * one after another, in rounds, so that they share the machine's state.
 */

export interface Contender {
  readonly name: string
  /** Runs `n` operations; resolves when they are done. */
  readonly run: (n: number) => Promise<void> | void
}

export interface Result {
  readonly name: string
  readonly opsPerSec: number
}

const nowNs = () => process.hrtime.bigint()

const measure = async (contender: Contender, budgetMs: number, minBatch = 1): Promise<number> => {
  // find a batch size that takes ~10 ms (and is at least minBatch)
  let batch = minBatch
  for (;;) {
    const start = nowNs()
    await contender.run(batch)
    const ms = Number(nowNs() - start) / 1e6
    if (ms > 10 || batch > 1e8) break
    batch *= 2
  }
  let ops = 0
  const start = nowNs()
  let elapsedMs = 0
  while (elapsedMs < budgetMs) {
    await contender.run(batch)
    ops += batch
    elapsedMs = Number(nowNs() - start) / 1e6
  }
  return ops / (elapsedMs / 1000)
}

/** Runs every contender `rounds` times (interleaved) and keeps each one's median. */
export const compare = async (
  title: string,
  contenders: ReadonlyArray<Contender>,
  options: {
    readonly budgetMs?: number
    readonly rounds?: number
    /**
     * Smallest batch of operations one `run` call gets. A pool of N workers started per call
     * should get many operations per worker, or the pool's start-up is what gets measured.
     */
    readonly minBatch?: number
  } = {}
): Promise<Array<Result>> => {
  const budget = options.budgetMs ?? 700
  const rounds = options.rounds ?? 3
  const minBatch = options.minBatch ?? 1
  const samples = new Map<string, Array<number>>()
  for (const c of contenders) await measure(c, 150, minBatch) // warm-up: JIT, caches
  for (let r = 0; r < rounds; r++) {
    for (const c of contenders) {
      const list = samples.get(c.name) ?? []
      list.push(await measure(c, budget, minBatch))
      samples.set(c.name, list)
    }
  }
  const results = contenders.map((c) => {
    const list = [...samples.get(c.name)!].sort((a, b) => a - b)
    return { name: c.name, opsPerSec: list[Math.floor(list.length / 2)]! }
  })
  print(title, results)
  return results
}

export const formatOps = (ops: number): string =>
  ops >= 1e6 ? `${(ops / 1e6).toFixed(2)} M` : ops >= 1e3 ? `${(ops / 1e3).toFixed(1)} k` : ops.toFixed(0)

export const print = (title: string, results: ReadonlyArray<Result>): void => {
  const base = results[0]!
  console.log(`\n### ${title}\n`)
  console.log("| contender | ops/s | ratio to first |")
  console.log("| --- | ---: | ---: |")
  for (const r of results) {
    console.log(`| ${r.name} | ${formatOps(r.opsPerSec)} | ${(r.opsPerSec / base.opsPerSec).toFixed(2)}× |`)
  }
}

/** `a / b` as a ratio string. */
export const ratio = (results: ReadonlyArray<Result>, a: string, b: string): string => {
  const x = results.find((r) => r.name === a)!
  const y = results.find((r) => r.name === b)!
  return `${(x.opsPerSec / y.opsPerSec).toFixed(2)}×`
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
