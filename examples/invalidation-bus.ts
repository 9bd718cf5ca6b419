/**
 * The invalidation bus over Redis pub/sub: two views of one Redis, as two processes would have
 * them (each its own client, store, bus subscriber and cache). Their `versionWindow` is an hour:
 * without the bus, B would serve the invalidated post for an hour; with it, B's next read after
 * the event misses and loads the new title.
 *
 * Run it against your server:
 *
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/invalidation-bus.ts
 */
import { Config, Effect, Layer, Schema } from "effect"
import { CacheStore, InvalidationBus, ReadThrough } from "effect-cachekit"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"

const Post = Schema.Struct({ id: Schema.String, title: Schema.String })

/** A stand-in for the database both processes read. */
const titles = new Map<string, string>([["p1", "Hello"]])
const findPost = (id: string) => Effect.sync(() => ({ id, title: titles.get(id) ?? "" }))

/** What one process builds: its connection, its store attached to its bus, its cache of posts. */
const processView = (url: string) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      InvalidationBus.connect.pipe(
        Layer.provideMerge(Layer.scoped(CacheStore.CacheStore, RedisStore.make({ prefix: "example-bus" }))),
        Layer.provideMerge(Redis.layerInvalidationBus({ channel: "example-bus" })),
        Layer.provideMerge(Redis.layer({ url }))
      )
    )
    return yield* ReadThrough.make({
      namespace: "post",
      value: Post,
      lookup: findPost,
      ttl: "1 hour",
      tags: (post) => [`post:${post.id}`],
      versionWindow: "1 hour"
    }).pipe(Effect.provide(context))
  })

const program = Effect.gen(function*() {
  const url = yield* Config.string("REDIS_URL")
  const a = yield* processView(url)
  const b = yield* processView(url)
  yield* Effect.log(`B reads: ${(yield* b.get("p1")).title}`)

  titles.set("p1", "Hello, edited")
  const start = performance.now()
  yield* a.invalidateTag("post:p1")
  // the event travels through Redis; B's reads miss as soon as it has arrived
  let post = yield* b.get("p1")
  while (post.title !== "Hello, edited") {
    yield* Effect.sleep("1 millis")
    post = yield* b.get("p1")
  }
  yield* Effect.log(`B reads: ${post.title}, ${(performance.now() - start).toFixed(1)} ms after A invalidated`)
})

program.pipe(Effect.scoped, Effect.runPromise)
