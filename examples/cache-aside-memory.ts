/**
 * Cache-aside over the in-memory store: the program reads, writes and invalidates; `getOrLoad`
 * shares one load among concurrent callers of a cold key.
 *
 * Run: npx tsx examples/cache-aside-memory.ts
 */
import { Effect, Option, Schema } from "effect"
import { CacheAside, MemoryStore } from "effect-cachekit"

const Session = Schema.Struct({ user: Schema.String, roles: Schema.Array(Schema.String) })

const program = Effect.gen(function*() {
  const sessions = yield* CacheAside.make({ namespace: "session", value: Session, ttl: "30 minutes" })

  yield* sessions.set("s-1", { user: "ada", roles: ["admin"] })
  const found = yield* sessions.get("s-1")
  yield* Effect.log(`found: ${Option.map(found, (s) => s.user).pipe(Option.getOrElse(() => "nothing"))}`)

  // 100 concurrent callers, one load
  let loads = 0
  const load = Effect.sync(() => {
    loads++
    return { user: "grace", roles: [] as ReadonlyArray<string> }
  }).pipe(Effect.delay("10 millis"))
  yield* Effect.forEach(Array.from({ length: 100 }), () => sessions.getOrLoad("s-2", load), {
    concurrency: "unbounded"
  })
  yield* Effect.log(`loads for 100 concurrent callers: ${loads}`)

  yield* sessions.invalidate("s-1")
  yield* Effect.log(`after invalidate: ${Option.isNone(yield* sessions.get("s-1")) ? "gone" : "still there"}`)
})

program.pipe(Effect.scoped, Effect.provide(MemoryStore.layer()), Effect.runPromise)
