/**
 * TTL policies over the in-memory store, driven by the TestClock so the minutes pass at once:
 * a sliding session (kept while used, never past its cap) and negative caching of "not found".
 * The same program runs unchanged over Redis (GETEX) or Memcached (mg … T).
 *
 * Run: npx tsx examples/ttl-policies.ts
 */
import { Effect, Schema, TestClock, TestContext } from "effect"
import { CacheAside, MemoryStore, ReadThrough, Ttl } from "effect-cachekit"

const Session = Schema.Struct({ id: Schema.String, user: Schema.String })

class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { id: Schema.String }) {}

let sessionLoads = 0
let userLoads = 0

const program = Effect.gen(function*() {
  // a session lives 5 minutes after its last use, and 30 minutes at most
  const sessions = yield* ReadThrough.make({
    namespace: "session",
    value: Session,
    ttl: Ttl.sliding("5 minutes", { max: "30 minutes" }),
    lookup: (id: string) => Effect.sync(() => (sessionLoads++, { id, user: "ada" }))
  })
  yield* sessions.get("s1")
  for (let minute = 4; minute <= 28; minute += 4) {
    yield* TestClock.adjust("4 minutes")
    yield* sessions.get("s1")
  }
  yield* Effect.log(`read every 4 minutes for 28 minutes: ${sessionLoads} load`)
  yield* TestClock.adjust("4 minutes")
  yield* sessions.get("s1")
  yield* Effect.log(`at 32 minutes, past the 30-minute cap: ${sessionLoads} loads`)
  yield* TestClock.adjust("6 minutes")
  yield* sessions.get("s1")
  yield* Effect.log(`idle for 6 minutes (more than the slide): ${sessionLoads} loads`)

  // "no such user" is remembered for 30 seconds; the loader is not asked again meanwhile
  const users = yield* CacheAside.make({
    namespace: "user",
    value: Schema.String,
    ttl: "5 minutes",
    negative: { ttl: "30 seconds", error: NotFound }
  })
  const find = (id: string) => Effect.suspend(() => (userLoads++, Effect.fail(new NotFound({ id }))))
  for (let i = 0; i < 3; i++) yield* Effect.either(users.getOrLoad("ghost", find("ghost")))
  const cached = yield* Effect.either(users.get("ghost"))
  yield* Effect.log(
    `three reads of a missing user: ${userLoads} load; get says ${cached._tag} (${
      cached._tag === "Left" ? cached.left._tag : "a value"
    })`
  )
  yield* TestClock.adjust("30 seconds")
  yield* Effect.either(users.getOrLoad("ghost", find("ghost")))
  yield* Effect.log(`30 seconds later: ${userLoads} loads`)
})

program.pipe(
  Effect.scoped,
  Effect.provide(MemoryStore.layer()),
  Effect.provide(TestContext.TestContext),
  Effect.runPromise
)
