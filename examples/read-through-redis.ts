/**
 * Read-through caching over Redis: a slow "database" lookup cached by `ReadThrough`, with the
 * Redis connection read from the environment by `RedisStore.layerConfig`.
 *
 * Run it against your server:
 *
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/read-through-redis.ts
 *
 * (`REDIS_URL` may carry credentials, `redis://user:pass@host:port/db`, or `rediss://` for TLS;
 * it is read as a `Redacted` value so it never shows up in logs. `CACHE_PREFIX` defaults to
 * `example`, `REDIS_COMMAND_TIMEOUT` to `500 millis`.)
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, Context, Effect, Layer, Option, Schema } from "effect"
import { ReadThrough } from "effect-cachekit"
import * as RedisStore from "effect-cachekit/RedisStore"

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

const StoreLive = RedisStore.layerConfig({
  url: Config.redacted("REDIS_URL"),
  prefix: Config.string("CACHE_PREFIX").pipe(Config.withDefault("example")),
  commandTimeout: Config.duration("REDIS_COMMAND_TIMEOUT").pipe(Config.withDefault("500 millis"))
})

const program = Effect.gen(function*() {
  const users = yield* Users
  const db = yield* Database

  // 100 concurrent readers of one key: one query at most, and their Redis reads share one MGET.
  const [first] = yield* Effect.all(Array.from({ length: 100 }, () => users.get("42")), { concurrency: "unbounded" })
  yield* Effect.log(`user 42: ${JSON.stringify(first)}; queries so far: ${db.queries()}`)

  // A batch: one MGET for all the keys, the misses loaded and written back.
  const batch = yield* users.getMany(["1", "2", "3", "42"])
  yield* Effect.log(
    `batch: ${
      batch.map((u) => Option.match(u, { onNone: () => "none", onSome: (u) => u.name })).join(", ")
    }; queries so far: ${db.queries()}`
  )

  // Read again: everything is served by Redis now.
  const again = yield* users.getMany(["1", "2", "3", "42"])
  yield* Effect.log(`again: ${again.length} users; queries so far: ${db.queries()}`)

  yield* users.invalidate("42")
  yield* Effect.log(`stats: ${JSON.stringify(yield* users.stats)}`)
})

const MainLive = UsersLive.pipe(Layer.provide(StoreLive), Layer.provideMerge(Database.layer))

program.pipe(Effect.provide(MainLive), NodeRuntime.runMain)
