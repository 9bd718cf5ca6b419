/**
 * Writes per second into a cache whose source of truth is SQLite (a file in a temp dir, WAL, the
 * defaults of `@effect/sql-sqlite-node`), side by side in one process:
 *
 * - write-behind over MemoryStore; over RedisStore; over MemoryStore in durable mode (a Redis
 *   Stream journal); each saving batches of upserts on a 100 ms flush;
 * - write-through over MemoryStore (one upsert per write, then the cache);
 * - a bare upsert per write into SQLite, no cache (the baseline: writing through directly).
 *
 * Writes are spread uniformly over 1,000 keys, from 64 fibers at a time. After the comparison, the
 * queue's counters tell how many upserts coalescing saved.
 *
 * Run: `npm run bench -- write-behind` (builds first; measures the built package)
 */
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Effect, Exit, Layer, ManagedRuntime, Schema, Scope } from "effect"
import { CacheStore } from "effect-cachekit/CacheStore"
import type { Service as StoreService } from "effect-cachekit/CacheStore"
import * as MemoryStore from "effect-cachekit/MemoryStore"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import * as WriteBehind from "effect-cachekit/WriteBehind"
import * as WriteThrough from "effect-cachekit/WriteThrough"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { redisServer } from "../test/harness/redis.js"
import { compare, effectPool, ratio, seeded } from "./lib.js"
import { withServers } from "./redis-common.js"

const KEYS = 1000
const CONCURRENCY = 64

const Score = Schema.Struct({ player: Schema.String, points: Schema.Number })
type Score = typeof Score.Type

const macrotask = () => new Promise<void>((resolve) => setImmediate(resolve))

const dir = mkdtempSync(join(tmpdir(), "bench-write-behind-"))

await withServers(redisServer(), async (server) => {
  // the caches' scope: closed (their queues flushed) before the database closes
  const scope = Effect.runSync(Scope.make())
  const runtime = ManagedRuntime.make(
    SqliteClient.layer({ filename: join(dir, "bench.sqlite") }).pipe(Layer.orDie)
  )
  const run = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient | Scope.Scope>) =>
    runtime.runPromise(Scope.extend(effect, scope))

  const sql = await runtime.runPromise(SqlClient.SqlClient)
  await runtime.runPromise(sql`CREATE TABLE IF NOT EXISTS score (player TEXT PRIMARY KEY, points REAL NOT NULL)`)
  const upsert = (player: string, score: Score) =>
    sql`INSERT INTO score (player, points) VALUES (${player}, ${score.points})
        ON CONFLICT (player) DO UPDATE SET points = excluded.points`
  const upsertMany = (batch: ReadonlyArray<readonly [string, Score]>) =>
    sql`INSERT INTO score ${sql.insert(batch.map(([player, s]) => ({ player, points: s.points })))}
        ON CONFLICT (player) DO UPDATE SET points = excluded.points`

  const memory = await run(MemoryStore.make())
  const redis = await run(Redis.make({ port: server.port }))
  const redisStore = await run(Effect.provideService(RedisStore.make(), Redis.RedisClient, redis))

  const writeBehind = (store: StoreService, namespace: string, durable: boolean) =>
    run(
      Effect.gen(function*() {
        const journal = durable
          ? yield* Effect.provideService(Redis.journal({ stream: `bench:${namespace}` }), Redis.RedisClient, redis)
          : undefined
        return yield* WriteBehind.make({
          namespace,
          value: Score,
          ttl: "10 minutes",
          flush: "100 millis",
          batchSize: 1000,
          maxPending: 100_000,
          journal,
          saveBatch: upsertMany
        }).pipe(Effect.provideService(CacheStore, store))
      })
    )

  const behindMemory = await writeBehind(memory, "wb-memory", false)
  const behindRedis = await writeBehind(redisStore, "wb-redis", false)
  const behindDurable = await writeBehind(memory, "wb-durable", true)
  const through = await run(
    WriteThrough.make({ namespace: "wt", value: Score, ttl: "10 minutes", save: upsert }).pipe(
      Effect.provideService(CacheStore, memory)
    )
  )

  let seq = 0
  const next = () => {
    const i = seq++
    const player = `player-${(i * 7919) % KEYS}`
    return [player, { player, points: i }] as const
  }
  const contender = (name: string, write: (player: string, score: Score) => Effect.Effect<unknown, unknown>) => ({
    name,
    run: async (n: number) => {
      await effectPool(n, CONCURRENCY, () => {
        const [player, score] = next()
        return write(player, score)
      })
      // a turn of the event loop between batches, as a server gets between requests: the flush
      // timers run (a loop of synchronous fibers alone would hold them off)
      await macrotask()
    }
  })

  const results = await compare(`writes/s, ${KEYS} keys, concurrency ${CONCURRENCY}, SQLite file (WAL)`, [
    contender("SQLite upsert per write (no cache)", upsert),
    contender("WriteThrough over MemoryStore", through.write),
    contender("WriteBehind over MemoryStore", behindMemory.write),
    contender("WriteBehind over RedisStore", behindRedis.write),
    contender("WriteBehind over MemoryStore, durable (Redis Stream)", behindDurable.write)
  ], { rounds: 5, minBatch: 256, versus: ["SQLite upsert per write (no cache)"] })

  for (
    const [name, cache] of [
      ["MemoryStore", behindMemory],
      ["RedisStore", behindRedis],
      ["durable", behindDurable]
    ] as const
  ) {
    await runtime.runPromise(cache.flush)
    const stats = await runtime.runPromise(cache.stats)
    const accepted = stats.flushed + stats.coalesced + stats.pending
    console.log(
      `write-behind ${name}: ${accepted} writes accepted, ${stats.flushed} rows written in ${stats.batches} ` +
        `statements; ${stats.coalesced} rows (${((stats.coalesced / accepted) * 100).toFixed(1)} %) saved by ` +
        `coalescing; ${(accepted / Math.max(1, stats.batches)).toFixed(0)} writes per statement`
    )
  }
  // a fixed workload with hot keys (a few keys take most writes, as counters and sessions do):
  // upserts issued with write-behind vs one per write
  const skewed = await writeBehind(memory, "wb-skewed", false)
  const random = seeded(7)
  const WRITES = 100_000
  const started = performance.now()
  for (let slice = 0; slice < WRITES / 1000; slice++) {
    await effectPool(1000, CONCURRENCY, (i) => {
      const player = `player-${Math.floor(KEYS * random() ** 3)}`
      return skewed.write(player, { player, points: slice * 1000 + i })
    })
    await macrotask()
  }
  await runtime.runPromise(skewed.flush)
  const elapsed = performance.now() - started
  const skewedStats = await runtime.runPromise(skewed.stats)
  console.log(
    `\nhot keys (key = ${KEYS}·u³): ${WRITES} writes in ${(elapsed / 1000).toFixed(2)} s ` +
      `(${(WRITES / (elapsed / 1000) / 1000).toFixed(1)} k/s, flushes included): ${skewedStats.flushed} rows in ` +
      `${skewedStats.batches} statements instead of ${WRITES}; ${skewedStats.coalesced} writes ` +
      `(${((skewedStats.coalesced / WRITES) * 100).toFixed(1)} %) coalesced`
  )
  console.log(
    `\nWriteBehind over MemoryStore vs upsert per write: ${
      ratio(results, "WriteBehind over MemoryStore", "SQLite upsert per write (no cache)")
    }`
  )
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await runtime.dispose()
})
rmSync(dir, { recursive: true, force: true })
