/**
 * Late-write protection on a real Redis: seeded interleavings through two independent RedisStore
 * clients (each with its own connection, key order and single flight, as two processes have),
 * clears and pattern invalidations among them, and the same race between two real OS processes.
 */
import { Effect } from "effect"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import { fixture } from "./harness/fixture.js"
import { lateWriteSuite } from "./harness/lateWritesSuite.js"
import { redisServer } from "./harness/redis.js"

const env = fixture(redisServer())

lateWriteSuite({
  name: "Redis",
  store: (prefix) =>
    Effect.flatMap(
      Redis.make({ port: env().port }),
      (client) => Effect.provideService(RedisStore.make({ prefix }), Redis.RedisClient, client)
    ),
  worker: () => ({ kind: "redis", port: env().port }),
  purges: true
})
