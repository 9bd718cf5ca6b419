/**
 * Redis Cluster, side by side in one process against one 3-master cluster that the bench starts
 * itself (test harness, free loopback ports, stopped by PID at the end):
 *
 * - `getMany` of 100 keys spread over every slot: RedisStore (grouped by slot) vs raw per-key
 *   ioredis gets (a raw cross-slot MGET is refused by the cluster), with and without ioredis
 *   auto-pipelining, and ReadThrough.getMany;
 * - single `get` hits at concurrency 64: RedisStore and ReadThrough vs raw ioredis.
 *
 * Run: `npm run bench -- redis-cluster` (builds first; measures the built package)
 */
import { Effect, Layer, ManagedRuntime, Scope } from "effect"
import { CacheStore } from "effect-cachekit/CacheStore"
import * as ReadThrough from "effect-cachekit/ReadThrough"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import { Cluster } from "ioredis"
import { redisCluster } from "../test/harness/redis.js"
import { compare, effectPool, promisePool, ratio } from "./lib.js"
import {
  assertWarm,
  batch,
  fullKey,
  fullKeys,
  ids,
  key,
  KEYS,
  Product,
  product,
  storeKey,
  storeKeys,
  warmUp,
  withServers
} from "./redis-common.js"

await withServers(redisCluster(), async (cluster, scope) => {
  const runtime = ManagedRuntime.make(Layer.empty)

  // A 2 s command timeout: on a shared, busy machine a 500 ms one can fire while this process is
  // merely slow, trip the breaker and measure the fallback path instead of the hit path.
  const store = await runtime.runPromise(Scope.extend(
    Effect.flatMap(
      Redis.makeCluster({ nodes: cluster.startupNodes, commandTimeout: "2 seconds" }),
      (client) =>
        Effect.provideService(
          RedisStore.make({ prefix: "bench", commandTimeout: "2 seconds" }),
          Redis.RedisClient,
          client
        )
    ),
    scope
  ))
  const products = await runtime.runPromise(Scope.extend(
    ReadThrough.make({
      namespace: "product",
      value: Product,
      ttl: "10 minutes",
      lookup: (id: string) => Effect.succeed(product(id))
    }).pipe(Effect.provideService(CacheStore, store)),
    scope
  ))
  await runtime.runPromise(products.getMany(ids))
  const warm = await runtime.runPromise(products.stats)
  assertWarm(warm.storeErrors, store.breakerState())

  const raw = new Cluster(cluster.startupNodes.map((n) => ({ ...n })))
  const rawAuto = new Cluster(cluster.startupNodes.map((n) => ({ ...n })), { enableAutoPipelining: true })
  await Promise.all(fullKeys.map((k) => raw.getBuffer(k)))
  await Promise.all(fullKeys.map((k) => rawAuto.getBuffer(k)))
  console.log(`# Redis Cluster, 3 masters + 3 replicas, ${KEYS} warm keys`)

  // The Effect paths reach their steady speed only after a few seconds of JIT warm-up, far longer
  // than the shared warm-up of `compare`: warm every path first.
  await warmUp(2000, [
    () => promisePool(64, 4, (i) => Promise.all(batch(i).map((k) => raw.getBuffer(fullKeys[k]!)))),
    () => promisePool(64, 4, (i) => Promise.all(batch(i).map((k) => rawAuto.getBuffer(fullKeys[k]!)))),
    () => effectPool(64, 4, (i) => store.getMany(batch(i).map((k) => storeKeys[k]!)), runtime),
    () => effectPool(64, 4, (i) => products.getMany(batch(i).map((k) => ids[k]!)), runtime),
    () => promisePool(512, 64, (i) => raw.getBuffer(fullKey(i))),
    () => promisePool(512, 64, (i) => rawAuto.getBuffer(fullKey(i))),
    () => effectPool(512, 64, (i) => store.get(storeKey(i)), runtime),
    () => effectPool(512, 64, (i) => products.get(key(i)), runtime)
  ])
  for (const concurrency of [1, 16]) {
    const results = await compare(
      `cluster getMany of 100 keys across slots, concurrency ${concurrency} (ops = batches)`,
      [
        {
          name: "raw ioredis: 100 getBuffer in parallel",
          run: (n) => promisePool(n, concurrency, (i) => Promise.all(batch(i).map((k) => raw.getBuffer(fullKeys[k]!))))
        },
        {
          name: "raw ioredis, auto-pipelining: 100 getBuffer in parallel",
          run: (n) =>
            promisePool(n, concurrency, (i) => Promise.all(batch(i).map((k) => rawAuto.getBuffer(fullKeys[k]!))))
        },
        {
          name: "RedisStore.getMany (per-slot MGET)",
          run: (n) => effectPool(n, concurrency, (i) => store.getMany(batch(i).map((k) => storeKeys[k]!)), runtime)
        },
        {
          name: "ReadThrough.getMany",
          run: (n) => effectPool(n, concurrency, (i) => products.getMany(batch(i).map((k) => ids[k]!)), runtime)
        }
      ],
      { minBatch: concurrency * 16 } // every worker of the pool gets many batches per run
    )
    console.log(
      `\nRedisStore.getMany vs raw parallel gets: ${
        ratio(results, "RedisStore.getMany (per-slot MGET)", "raw ioredis: 100 getBuffer in parallel")
      }; vs auto-pipelined: ${
        ratio(results, "RedisStore.getMany (per-slot MGET)", "raw ioredis, auto-pipelining: 100 getBuffer in parallel")
      }`
    )
  }

  const results = await compare("cluster get hit, concurrency 64", [
    { name: "raw ioredis getBuffer", run: (n) => promisePool(n, 64, (i) => raw.getBuffer(fullKey(i))) },
    {
      name: "raw ioredis getBuffer, auto-pipelining",
      run: (n) => promisePool(n, 64, (i) => rawAuto.getBuffer(fullKey(i)))
    },
    {
      name: "RedisStore.get (coalesced per slot)",
      run: (n) => effectPool(n, 64, (i) => store.get(storeKey(i)), runtime)
    },
    { name: "ReadThrough.get", run: (n) => effectPool(n, 64, (i) => products.get(key(i)), runtime) }
  ], { minBatch: 64 * 32 }) // every worker of the pool gets many reads per run
  console.log(
    `\nRedisStore.get vs raw: ${ratio(results, "RedisStore.get (coalesced per slot)", "raw ioredis getBuffer")}`
  )

  const stats = await runtime.runPromise(products.stats)
  console.log(`\nReadThrough: ${stats.hits} hits, ${stats.misses} misses, ${stats.storeErrors} store errors`)
  raw.disconnect()
  rawAuto.disconnect()
  await runtime.dispose()
})
