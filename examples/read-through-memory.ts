/**
 * A ReadThrough over the in-memory store: the loader runs on a miss, once per key at a time,
 * and its typed error passes through untouched.
 *
 * Run: npx tsx examples/read-through-memory.ts
 */
import { Context, Effect, Layer, Schema } from "effect"
import { MemoryStore, ReadThrough, Ttl } from "effect-cachekit"

class User extends Schema.Class<User>("User")({
  id: Schema.String,
  name: Schema.String,
  joined: Schema.DateFromString
}) {}

class UserNotFound extends Schema.TaggedError<UserNotFound>()("UserNotFound", { id: Schema.String }) {}

/** A stand-in for a database call. */
const findUser = (id: string): Effect.Effect<User, UserNotFound> =>
  id === "0"
    ? Effect.fail(new UserNotFound({ id }))
    : Effect.succeed(new User({ id, name: `user ${id}`, joined: new Date("2024-01-01T00:00:00Z") })).pipe(
      Effect.delay("20 millis")
    )

class Users extends Context.Tag("example/Users")<Users, ReadThrough.ReadThrough<string, User, UserNotFound>>() {}

const UsersLive = Layer.scoped(
  Users,
  ReadThrough.make({
    namespace: "user",
    value: User,
    lookup: findUser,
    ttl: Ttl.jittered("5 minutes", { spread: 0.1 }),
    staleWhileRevalidate: "1 minute"
  })
)

const program = Effect.gen(function*() {
  const users = yield* Users
  const first = yield* users.get("42") // miss: runs findUser
  const second = yield* users.get("42") // hit
  const missing = yield* users.get("0").pipe(
    Effect.catchTag("UserNotFound", (e) => Effect.succeed(`no user ${e.id}`))
  )
  const stats = yield* users.stats
  yield* Effect.log(`${first.name} / ${second.name} / ${missing}`)
  yield* Effect.log(`hits ${stats.hits}, misses ${stats.misses}, loads ${stats.loads}`)
})

program.pipe(
  Effect.provide(UsersLive),
  Effect.provide(MemoryStore.layer({ capacity: 10_000 })),
  Effect.runPromise
)
