import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Effect, Layer, Option } from "effect"

/**
 * A real SQLite database in memory with one key-value table, the source of truth of the
 * write-strategy tests. Every layer build is a new, empty database.
 */
export const SqliteTest = Layer.effectDiscard(
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)`)
).pipe(Layer.provideMerge(SqliteClient.layer({ filename: ":memory:" })), Layer.orDie)

/** Upserts one row. */
export const upsert = (key: string, value: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`INSERT INTO kv (key, value) VALUES (${key}, ${value})
        ON CONFLICT (key) DO UPDATE SET value = excluded.value`.pipe(Effect.asVoid))

/** Upserts many rows in one statement (one transaction). */
export const upsertMany = (rows: ReadonlyArray<readonly [string, string]>) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      rows.length === 0 ?
        Effect.void :
        sql`INSERT INTO kv ${
          sql.insert(rows.map(([key, value]) => ({ key, value })))
        } ON CONFLICT (key) DO UPDATE SET value = excluded.value`.pipe(Effect.asVoid)
  )

/** The value of one row, if any. */
export const select = (key: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ value: string }>`SELECT value FROM kv WHERE key = ${key}`,
      (rows) => Option.fromNullable(rows[0]?.value)
    ))

/** Every row, as a map. */
export const allRows = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.map(
    sql<{ key: string; value: string }>`SELECT key, value FROM kv`,
    (rows) => new Map(rows.map((r) => [r.key, r.value]))
  ))

/** Removes one row. */
export const removeRow = (key: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DELETE FROM kv WHERE key = ${key}`.pipe(Effect.asVoid))

/** Makes the database refuse writes to `kv` (a trigger that RAISEs) whenever `when`, SQL over `NEW`, holds. */
export const refuseWrites = (name: string, when: string, on: "INSERT" | "UPDATE" = "INSERT") =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql.unsafe(`CREATE TRIGGER ${name} BEFORE ${on} ON kv WHEN ${when} BEGIN SELECT RAISE(ABORT, '${name}'); END`)
        .pipe(Effect.asVoid)
  )

/** A database outage: every insert fails until `end` runs. */
export const outage = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE down (x INTEGER)`
  yield* sql`INSERT INTO down VALUES (1)`
  yield* refuseWrites("outage", "EXISTS (SELECT 1 FROM down)")
  return { end: Effect.asVoid(sql`DELETE FROM down`) }
})
