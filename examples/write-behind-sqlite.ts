/**
 * A WriteBehind over SQLite: writes are answered from the cache at once and saved in batches;
 * writes to one key between flushes coalesce into one row. Closing the scope flushes the rest.
 *
 * Run: npx tsx examples/write-behind-sqlite.ts
 */
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Effect, Layer, Schedule, Schema, Stream } from "effect"
import { MemoryStore, WriteBehind } from "effect-cachekit"

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE score (player TEXT PRIMARY KEY, points INTEGER NOT NULL)`
  let statements = 0

  const summary = yield* Effect.scoped(Effect.gen(function*() {
    const scores = yield* WriteBehind.make({
      namespace: "score",
      value: Schema.Number,
      ttl: "1 hour",
      flush: "200 millis",
      batchSize: 500,
      maxPending: 10_000,
      retry: Schedule.exponential("50 millis").pipe(Schedule.intersect(Schedule.recurs(5))),
      saveBatch: (batch: ReadonlyArray<readonly [string, number]>) =>
        Effect.zipRight(
          Effect.sync(() => statements++),
          sql`INSERT INTO score ${sql.insert(batch.map(([player, points]) => ({ player, points })))}
              ON CONFLICT (player) DO UPDATE SET points = excluded.points`
        )
    })
    // report failures as they happen (none here)
    yield* Effect.forkScoped(Stream.runForEach(scores.failures, (f) => Effect.logWarning(`write-behind: ${f._tag}`)))

    // 50,000 writes over 200 players, in bursts of 1,000 a few milliseconds apart
    for (let i = 0; i < 50_000; i++) {
      yield* scores.write(`player-${i % 200}`, i)
      if (i % 1000 === 999) yield* Effect.sleep("5 millis")
    }
    yield* scores.flush
    return yield* scores.stats
  })) // the scope closes here: anything still pending is flushed

  const [row] = yield* sql<{ n: number }>`SELECT count(*) AS n FROM score`
  yield* Effect.log(
    `writes accepted: 50000, rows in SQLite: ${row?.n}, rows written: ${summary.flushed}, ` +
      `coalesced: ${summary.coalesced}, INSERT statements: ${statements}`
  )
})

program.pipe(
  Effect.provide(Layer.merge(SqliteClient.layer({ filename: ":memory:" }), MemoryStore.layer())),
  Effect.runPromise
)
