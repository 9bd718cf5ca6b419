/**
 * An HTTP service over a read-through cache, the shape most programs start from: a JSON API
 * (`@effect/platform`'s `HttpApi`, served by `@effect/platform-node`) whose reads go through a
 * `ReadThrough`, a `/metrics` endpoint in the Prometheus text format, and a store chosen by
 * configuration.
 *
 *   npx tsx examples/http-service.ts                                    # memory store, port 3000
 *   CACHE_STORE=redis REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/http-service.ts
 *   CACHE_STORE=memcached MEMCACHED_SERVERS=127.0.0.1:11211 npx tsx examples/http-service.ts
 *
 *   curl localhost:3000/users/42            # 200 and the user; the first call loads, later ones hit
 *   curl localhost:3000/users/0             # 404: there is no user 0
 *   curl -X DELETE localhost:3000/users/42  # drops the cached entry
 *   curl localhost:3000/metrics             # hits, misses, loads, load times, ...
 *
 * Configuration: `CACHE_STORE` (`memory`, the default, `redis` or `memcached`), `CACHE_PREFIX`
 * (default `example`), `CACHE_CAPACITY` (memory, default 10,000), `REDIS_URL` (a `Redacted`
 * value: it may carry a password), `MEMCACHED_SERVERS` (comma-separated `host:port`), `PORT`
 * (default 3000; 0 for any free port) and `DB_LATENCY` (the simulated database's latency, default 50 millis).
 *
 * The store drivers are imported only when chosen, so the memory store never loads ioredis.
 */
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiError,
  HttpApiGroup,
  HttpApiSchema,
  HttpMiddleware,
  HttpServer
} from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Config, Context, Effect, Layer, Schema } from "effect"
import { CacheError, CacheMetrics, MemoryStore, ReadThrough } from "effect-cachekit"
import { createServer } from "node:http"
import { fileURLToPath } from "node:url"

// ---------------------------------------------------------------------------------------------
// The domain: users in a slow database

export const User = Schema.Struct({ id: Schema.String, name: Schema.String, plan: Schema.Literal("free", "pro") })
export type User = typeof User.Type

export class UserNotFound extends Schema.TaggedError<UserNotFound>()(
  "UserNotFound",
  { id: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** Stands in for a database: `DB_LATENCY` per query; user ids are positive integers. */
export class Database extends Context.Tag("example/Database")<Database, {
  readonly getUser: (id: string) => Effect.Effect<User, UserNotFound>
}>() {
  static readonly layer = Layer.effect(
    Database,
    Effect.map(Config.withDefault(Config.duration("DB_LATENCY"), "50 millis"), (latency) => ({
      getUser: (id: string) =>
        Effect.delay(
          /^[1-9][0-9]*$/.test(id)
            ? Effect.succeed<User>({ id, name: `user ${id}`, plan: Number(id) % 2 === 0 ? "pro" : "free" })
            : Effect.fail(new UserNotFound({ id })),
          latency
        )
    }))
  )
}

// ---------------------------------------------------------------------------------------------
// The cache: a ReadThrough over whichever store the configuration names

export class Users extends Context.Tag("example/Users")<Users, ReadThrough.ReadThrough<string, User, UserNotFound>>() {}

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

const prefix = Config.withDefault(Config.string("CACHE_PREFIX"), "example")

/** The `CacheStore` named by `CACHE_STORE`. */
export const StoreLive = Layer.unwrapEffect(
  Effect.map(
    Config.withDefault(Config.literal("memory", "redis", "memcached")("CACHE_STORE"), "memory"),
    (kind) => {
      switch (kind) {
        case "memory":
          return MemoryStore.layerConfig({
            capacity: Config.withDefault(Config.integer("CACHE_CAPACITY"), 10_000)
          })
        case "redis":
          return Layer.unwrapEffect(
            Effect.map(
              Effect.promise(() => import("effect-cachekit/RedisStore")),
              (RedisStore) => RedisStore.layerConfig({ url: Config.redacted("REDIS_URL"), prefix })
            )
          )
        case "memcached":
          return Layer.unwrapEffect(
            Effect.map(
              Effect.promise(() => import("effect-cachekit/MemcachedStore")),
              (MemcachedStore) =>
                MemcachedStore.layerConfig({
                  servers: Config.array(Config.string(), "MEMCACHED_SERVERS"),
                  prefix
                })
            )
          )
      }
    }
  )
)

// ---------------------------------------------------------------------------------------------
// The HTTP API

const userId = HttpApiSchema.param("id", Schema.String)

export class Api extends HttpApi.make("example")
  .add(
    HttpApiGroup.make("users")
      .add(
        HttpApiEndpoint.get("get")`/users/${userId}`
          .addSuccess(User)
          .addError(UserNotFound)
          .addError(HttpApiError.ServiceUnavailable)
      )
      .add(
        HttpApiEndpoint.del("invalidate")`/users/${userId}`
          .addSuccess(Schema.Struct({ invalidated: Schema.Boolean }))
          .addError(HttpApiError.ServiceUnavailable)
      )
  )
  .add(
    HttpApiGroup.make("metrics").add(
      HttpApiEndpoint.get("prometheus", "/metrics")
        .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))
    )
  )
{}

/**
 * A cache error reaching a handler means the cache could not answer (the default `onStoreError`
 * already falls back to the database when the store is down): 503, with the cause in the log.
 */
const unavailable = <A, E, R>(self: Effect.Effect<A, E | CacheError.CacheError, R>) =>
  Effect.catchIf(
    self,
    CacheError.isCacheError,
    (error) =>
      Effect.zipRight(
        Effect.logWarning("cache error", error.message),
        Effect.fail(new HttpApiError.ServiceUnavailable())
      )
  )

const UsersApiLive = HttpApiBuilder.group(Api, "users", (handlers) =>
  Effect.map(Users, (users) =>
    handlers
      .handle("get", ({ path }) => unavailable(users.get(path.id)))
      .handle(
        "invalidate",
        ({ path }) => unavailable(Effect.map(users.invalidate(path.id), (invalidated) => ({ invalidated })))
      )))

const MetricsApiLive = HttpApiBuilder.group(
  Api,
  "metrics",
  (handlers) => handlers.handle("prometheus", () => CacheMetrics.prometheus)
)

/** The whole application, configured from the environment. */
export const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide([UsersApiLive, MetricsApiLive]),
  Layer.provide(UsersLive),
  Layer.provide([StoreLive, Database.layer])
)

/** The application served by whichever `HttpServer` is provided. */
export const HttpLive = HttpApiBuilder.serve(HttpMiddleware.logger).pipe(
  Layer.provide(ApiLive),
  HttpServer.withLogAddress
)

// Run as a program (the tests import the layers above and serve them on a port of their own).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  HttpLive.pipe(
    Layer.provide(NodeHttpServer.layerConfig(createServer, { port: Config.withDefault(Config.integer("PORT"), 3000) })),
    Layer.launch,
    NodeRuntime.runMain
  )
}
