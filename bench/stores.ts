/**
 * Redis against memcached behind the same ReadThrough: `ReadThrough.get` of a warm key over
 * RedisStore and over MemcachedStore, side by side in one process, in the shape of the Redis
 * scenario (143-byte encoded values, 1,000 warm keys, concurrency 1, 64 and 1,024), with both
 * servers started by the bench itself (test harness, free loopback ports, stopped by PID). The
 * bare stores' `get` runs alongside, to tell what the store costs from what the pipeline adds.
 *
 * Run: `npm run bench -- stores` (builds first; measures the built package)
 */
import { Effect, Layer, ManagedRuntime, Scope } from "effect"
import { CacheStore } from "effect-cachekit/CacheStore"
import type { Service as StoreService } from "effect-cachekit/CacheStore"
import * as MemcachedStore from "effect-cachekit/MemcachedStore"
import * as ReadThrough from "effect-cachekit/ReadThrough"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import * as os from "node:os"
import { startMemcached } from "../test/harness/memcached.js"
import { redisServer } from "../test/harness/redis.js"
import { compare, effectPool, ratio } from "./lib.js"
import { assertWarm, ids, key, Product, product, storeKey, warmUp, withServers } from "./redis-common.js"

const servers = Effect.all({ redis: redisServer(), memcached: startMemcached({ memoryMb: 64 }) })

await withServers(servers, async ({ memcached, redis }, scope) => {
  const runtime = ManagedRuntime.make(Layer.empty)
  const inScope = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) => runtime.runPromise(Scope.extend(effect, scope))

  // the same 2 s command timeout as the Redis scenario (a busy shared machine must not trip a breaker)
  const redisStore = await inScope(Effect.flatMap(
    Redis.make({ port: redis.port, commandTimeout: "2 seconds" }),
    (client) =>
      Effect.provideService(
        RedisStore.make({ prefix: "bench", commandTimeout: "2 seconds" }),
        Redis.RedisClient,
        client
      )
  ))
  const memcachedStore = await inScope(
    MemcachedStore.make({ servers: [memcached.address], prefix: "bench", timeout: "2 seconds" })
  )

  const makeReadThrough = (store: StoreService) =>
    inScope(
      ReadThrough.make({
        namespace: "product",
        value: Product,
        ttl: "10 minutes",
        lookup: (id: string) => Effect.succeed(product(id))
      }).pipe(Effect.provideService(CacheStore, store))
    )
  const overRedis = await makeReadThrough(redisStore)
  const overMemcached = await makeReadThrough(memcachedStore)
  for (const rt of [overRedis, overMemcached]) {
    await runtime.runPromise(rt.getMany(ids))
  }

  console.log(
    `# ReadThrough.get over Redis and over memcached: ${ids.length} warm keys, Node ${process.version}, ` +
      `load average at start: ${os.loadavg().map((l) => l.toFixed(1)).join(", ")}`
  )

  await warmUp(2000, [
    () => effectPool(512, 64, (i) => overRedis.get(key(i)), runtime),
    () => effectPool(512, 64, (i) => overMemcached.get(key(i)), runtime),
    () => effectPool(512, 64, (i) => redisStore.get(storeKey(i)), runtime),
    () => effectPool(512, 64, (i) => memcachedStore.get(storeKey(i)), runtime)
  ])

  for (const concurrency of [1, 64, 1024]) {
    const results = await compare(`get hit, concurrency ${concurrency}`, [
      {
        name: "ReadThrough.get over RedisStore",
        run: (n) => effectPool(n, concurrency, (i) => overRedis.get(key(i)), runtime)
      },
      {
        name: "ReadThrough.get over MemcachedStore",
        run: (n) => effectPool(n, concurrency, (i) => overMemcached.get(key(i)), runtime)
      },
      {
        name: "RedisStore.get",
        run: (n) => effectPool(n, concurrency, (i) => redisStore.get(storeKey(i)), runtime)
      },
      {
        name: "MemcachedStore.get",
        run: (n) => effectPool(n, concurrency, (i) => memcachedStore.get(storeKey(i)), runtime)
      }
    ], { minBatch: concurrency * 32 })
    console.log(
      `\nReadThrough over memcached vs over Redis: ${
        ratio(results, "ReadThrough.get over MemcachedStore", "ReadThrough.get over RedisStore")
      }; MemcachedStore.get vs RedisStore.get: ${ratio(results, "MemcachedStore.get", "RedisStore.get")}`
    )
  }

  for (const [name, rt] of [["Redis", overRedis], ["memcached", overMemcached]] as const) {
    const stats = await runtime.runPromise(rt.stats)
    assertWarm(stats.storeErrors, "closed")
    console.log(
      `\nReadThrough over ${name}: ${stats.hits} hits, ${stats.misses} misses, ${stats.storeErrors} store errors`
    )
  }
  await runtime.dispose()
})
