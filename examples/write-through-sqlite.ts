/**
 * A WriteThrough over SQLite: each write goes to the database first and then to the cache, reads
 * are read-through, and a write the database refuses leaves the cache as it was.
 *
 * Run: npx tsx examples/write-through-sqlite.ts
 */
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Effect, Layer, Option, Schema } from "effect"
import { MemoryStore, WriteThrough } from "effect-cachekit"

const Account = Schema.Struct({ id: Schema.String, balance: Schema.Number })
type Account = typeof Account.Type

class AccountNotFound extends Schema.TaggedError<AccountNotFound>()("AccountNotFound", { id: Schema.String }) {}

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE account (id TEXT PRIMARY KEY, balance REAL NOT NULL CHECK (balance >= 0))`

  const accounts = yield* WriteThrough.make({
    namespace: "account",
    value: Account,
    ttl: "10 minutes",
    save: (id: string, account: Account) =>
      sql`INSERT INTO account (id, balance) VALUES (${id}, ${account.balance})
          ON CONFLICT (id) DO UPDATE SET balance = excluded.balance`,
    load: (id: string) =>
      sql<Account>`SELECT id, balance FROM account WHERE id = ${id}`.pipe(
        Effect.flatMap((rows) =>
          rows.length === 0 ? Effect.fail(new AccountNotFound({ id })) : Effect.succeed(rows[0]!)
        )
      ),
    remove: (id: string) => sql`DELETE FROM account WHERE id = ${id}`
  })

  yield* accounts.write("ada", { id: "ada", balance: 100 })
  const cached = yield* accounts.read("ada") // from the cache: no query
  yield* Effect.log(`ada: ${Option.getOrThrow(cached).balance}`)

  // the CHECK constraint refuses a negative balance: the error is ours, the cache keeps 100
  const refused = yield* Effect.either(accounts.write("ada", { id: "ada", balance: -5 }))
  yield* Effect.log(
    `refused: ${refused._tag === "Left"}, cached balance still ${
      Option.getOrThrow(yield* accounts.read("ada")).balance
    }`
  )

  yield* accounts.delete("ada")
  const gone = yield* accounts.read("ada").pipe(
    Effect.catchTag("AccountNotFound", (e) => Effect.succeed(`no account ${e.id}`))
  )
  const stats = yield* accounts.stats
  yield* Effect.log(`${String(gone)}; hits ${stats.hits}, misses ${stats.misses}, loads ${stats.loads}`)
})

program.pipe(
  Effect.scoped,
  Effect.provide(Layer.merge(SqliteClient.layer({ filename: ":memory:" }), MemoryStore.layer())),
  Effect.runPromise
)
