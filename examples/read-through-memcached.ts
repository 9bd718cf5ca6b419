/**
 * Read-through caching over memcached: a slow "database" lookup cached by `ReadThrough`, with the
 * memcached servers read from the environment.
 *
 * Run it against your servers:
 *
 *   MEMCACHED_SERVERS=127.0.0.1:11211,127.0.0.1:11212 npx tsx examples/read-through-memcached.ts
 *
 * (`MEMCACHED_SERVERS` defaults to `127.0.0.1:11211`; `CACHE_PREFIX` to `example`.)
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, Context, Effect, Layer, Option, Schema } from "effect"
import { ReadThrough } from "effect-cachekit"
import * as MemcachedStore from "effect-cachekit/MemcachedStore"

const User = Schema.Struct({ id: Schema.String, name: Schema.String, plan: Schema.Literal("free", "pro") })
type User = typeof User.Type

/** Stands in for a database: 50 ms per query, and it counts its queries. */
class Database extends Context.Tag("example/Database")<Database, {
  readonly getUser: (id: string) => Effect.Effect<User>
  readonly queries: () => number
}>() {
  static readonly layer = Layer.sync(Database, () => {
    let queries = 0
    return {
      getUser: (id) =>
        Effect.sync(() => {
          queries++
          return { id, name: `user ${id}`, plan: Number(id) % 2 === 0 ? "pro" : "free" } as const
        }).pipe(Effect.delay("50 millis")),
      queries: () => queries
    }
  })
}

class Users extends Context.Tag("example/Users")<Users, ReadThrough.ReadThrough<string, User>>() {}

const UsersLive = Layer.scoped(
  Users,
  Effect.flatMap(Database, (db) =>
    ReadThrough.make({
      namespace: "user",
      value: User,
      lookup: (id: string) => db.getUser(id),
      ttl: "5 minutes"
    }))
)

const StoreLive = MemcachedStore.layerConfig({
  servers: Config.array(Config.string(), "MEMCACHED_SERVERS").pipe(Config.withDefault(["127.0.0.1:11211"])),
  prefix: Config.string("CACHE_PREFIX").pipe(Config.withDefault("example"))
})

const program = Effect.gen(function*() {
  const users = yield* Users
  const db = yield* Database

  // 100 concurrent readers of one key: one query at most, however many ask at once.
  const [first] = yield* Effect.all(Array.from({ length: 100 }, () => users.get("42")), { concurrency: "unbounded" })
  yield* Effect.log(`user 42: ${JSON.stringify(first)}; queries so far: ${db.queries()}`)

  // A batch: one pipelined round trip per memcached server, the misses loaded together.
  const batch = yield* users.getMany(["1", "2", "3", "42"])
  yield* Effect.log(
    `batch: ${
      batch.map((u) => Option.match(u, { onNone: () => "none", onSome: (u) => u.name })).join(", ")
    }; queries so far: ${db.queries()}`
  )

  // Read again: everything is served by memcached now.
  const again = yield* users.getMany(["1", "2", "3", "42"])
  yield* Effect.log(`again: ${again.length} users; queries so far: ${db.queries()}`)

  yield* users.invalidate("42")
  yield* Effect.log(`stats: ${JSON.stringify(yield* users.stats)}`)
})

const MainLive = UsersLive.pipe(Layer.provide(StoreLive), Layer.provideMerge(Database.layer))

program.pipe(Effect.provide(MainLive), NodeRuntime.runMain)
