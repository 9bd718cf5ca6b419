/**
 * Invalidation over the in-memory store: tags (hard and soft), a namespace version and a pattern.
 * The same program runs unchanged over Redis or Memcached (patterns excepted on Memcached).
 *
 * Run: npx tsx examples/invalidation-tags.ts
 */
import { Effect, Schema } from "effect"
import { CacheAside, Invalidation, MemoryStore, ReadThrough } from "effect-cachekit"

const Post = Schema.Struct({ id: Schema.String, author: Schema.String, title: Schema.String })

/** A stand-in for a database: titles change when posts are edited. */
const titles = new Map<string, string>([["p1", "Hello"], ["p2", "Caching"], ["p3", "Effect"]])
const authors = new Map<string, string>([["p1", "ada"], ["p2", "ada"], ["p3", "grace"]])
let loads = 0
const findPost = (id: string) =>
  Effect.sync(() => {
    loads++
    return { id, author: authors.get(id) ?? "nobody", title: titles.get(id) ?? "" }
  })

const program = Effect.gen(function*() {
  const posts = yield* ReadThrough.make({
    namespace: "post",
    value: Post,
    lookup: findPost,
    ttl: "1 hour",
    staleWhileRevalidate: "5 minutes",
    tags: (post) => [`author:${post.author}`]
  })
  yield* posts.getMany(["p1", "p2", "p3"])
  yield* Effect.log(`three posts cached, ${loads} loads`)

  // ada renamed herself: her posts must not be served again (one write, however many posts)
  titles.set("p1", "Hello again")
  yield* Invalidation.invalidateTag("author:ada")
  const [p1] = yield* posts.getMany(["p1", "p3"])
  yield* Effect.log(`after invalidateTag: ${p1?._tag === "Some" ? p1.value.title : "?"}, ${loads} loads`)

  // a soft expiry: ada's posts are served once more while they are refreshed in the background
  titles.set("p1", "Hello, revised")
  yield* Invalidation.expireTag("author:ada")
  const stale = yield* posts.get("p1")
  yield* Effect.sleep("10 millis")
  const fresh = yield* posts.get("p1")
  yield* Effect.log(`after expireTag: "${stale.title}" then "${fresh.title}"`)

  // a namespace version: every session misses after one write
  const sessions = yield* CacheAside.make({
    namespace: "session",
    value: Schema.String,
    ttl: "30 minutes",
    versioned: true
  })
  yield* sessions.set("ada:s1", "token-1")
  yield* sessions.set("grace:s1", "token-2")
  yield* Invalidation.bumpVersion("session")
  yield* Effect.log(`after bumpVersion: ${(yield* sessions.get("ada:s1"))._tag}`)

  // a pattern, with user input escaped: only ada's sessions go
  yield* sessions.set("ada:s2", "token-3")
  yield* sessions.set("grace:s2", "token-4")
  const user = "ada"
  const removed = yield* sessions.invalidatePattern(`${Invalidation.escapePattern(user)}:*`)
  yield* Effect.log(`invalidatePattern removed ${removed}; grace's: ${(yield* sessions.get("grace:s2"))._tag}`)
})

program.pipe(Effect.scoped, Effect.provide(MemoryStore.layer()), Effect.runPromise)
