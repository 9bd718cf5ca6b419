/**
 * Redis hit path, side by side in one process against one Redis server that the bench starts
 * itself (test harness, free loopback port, stopped by PID at the end):
 *
 * - ReadThrough `get` of a warm key over RedisStore, vs raw ioredis `getBuffer` with and without
 *   auto-pipelining, at concurrency 1, 64 and 1,024; also the bare store `get`, and the store (and
 *   a ReadThrough over it) with its get-coalescing turned off and ioredis auto-pipelining every
 *   GET instead, which is the alternative design;
 * - `getMany` of 100 keys vs a raw `MGET`, and vs a raw `MGET` whose replies are decoded as the
 *   ReadThrough decodes them (the entry's JSON parsed, its value decoded with the same Schema):
 *   the raw side of `ReadThrough.getMany`, which returns values, not bytes;
 * - `redis-benchmark` against the same server, for the ceiling.
 *
 * Run: `npm run bench -- redis` (builds first; measures the built package)
 */
import { Effect, Layer, ManagedRuntime, Schema, Scope } from "effect"
import { CacheStore } from "effect-cachekit/CacheStore"
import type { Service as StoreService } from "effect-cachekit/CacheStore"
import * as ReadThrough from "effect-cachekit/ReadThrough"
import * as Redis from "effect-cachekit/Redis"
import * as RedisStore from "effect-cachekit/RedisStore"
import { Redis as IoRedis } from "ioredis"
import { redisServer } from "../test/harness/redis.js"
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
  redisBenchmark,
  storeKey,
  storeKeys,
  warmUp,
  withServers
} from "./redis-common.js"

await withServers(redisServer(), async (server, scope) => {
  const runtime = ManagedRuntime.make(Layer.empty)

  const makeStore = (options: RedisStore.Options & Redis.Options) =>
    runtime.runPromise(Scope.extend(
      Effect.flatMap(
        Redis.make({ port: server.port, ...options }),
        (client) => Effect.provideService(RedisStore.make(options), Redis.RedisClient, client)
      ),
      scope
    ))

  const makeReadThrough = (store: StoreService, namespace: string) =>
    runtime.runPromise(Scope.extend(
      ReadThrough.make({
        namespace,
        value: Product,
        ttl: "10 minutes",
        lookup: (id: string) => Effect.succeed(product(id))
      }).pipe(Effect.provideService(CacheStore, store)),
      scope
    ))

  // A 2 s command timeout: on a shared, busy machine a 500 ms one can fire while this process is
  // merely slow, trip the breaker and measure the fallback path instead of the hit path.
  // the default: concurrent gets coalesced into MGETs by the store; the client auto-pipelines the rest
  const store = await makeStore({ prefix: "bench", commandTimeout: "2 seconds" })
  // the alternative design: no coalescing, every get its own GET, ioredis auto-pipelining them
  const storeAuto = await makeStore({
    prefix: "bench",
    batchGets: false,
    autoPipelining: true,
    commandTimeout: "2 seconds"
  })
  const products = await makeReadThrough(store, "product")
  const productsAuto = await makeReadThrough(storeAuto, "product-alt")
  await runtime.runPromise(products.getMany(ids))
  await runtime.runPromise(productsAuto.getMany(ids))
  const warm = await runtime.runPromise(products.stats)
  assertWarm(warm.storeErrors, store.breakerState())

  const raw = new IoRedis({ port: server.port, host: "127.0.0.1" })
  const rawAuto = new IoRedis({ port: server.port, host: "127.0.0.1", enableAutoPipelining: true })
  await raw.ping()
  await rawAuto.ping()
  const stored = await raw.getBuffer(fullKeys[0]!)
  console.log(
    `# Redis ${
      (await raw.info("server")).match(/redis_version:(\S+)/)?.[1]
    }, value ${stored?.byteLength} bytes, ${KEYS} warm keys`
  )

  // The Effect paths (the ReadThrough above all) reach their steady speed only after a few seconds of
  // JIT warm-up — in one measurement the same ReadThrough ran at 25 k/s in its first second and
  // 58 k/s five seconds later — far longer than the shared warm-up of `compare`. Warm every path first.
  await warmUp(2000, [
    () => promisePool(512, 64, (i) => raw.getBuffer(fullKey(i))),
    () => promisePool(512, 64, (i) => rawAuto.getBuffer(fullKey(i))),
    () => effectPool(512, 64, (i) => products.get(key(i)), runtime),
    () => effectPool(512, 64, (i) => productsAuto.get(key(i)), runtime),
    () => effectPool(512, 64, (i) => store.get(storeKey(i)), runtime),
    () => effectPool(512, 64, (i) => storeAuto.get(storeKey(i)), runtime),
    () => effectPool(64, 4, (i) => store.getMany(batch(i).map((k) => storeKeys[k]!)), runtime),
    () => effectPool(64, 4, (i) => products.getMany(batch(i).map((k) => ids[k]!)), runtime)
  ])

  for (const concurrency of [1, 64, 1024]) {
    const results = await compare(`get hit, concurrency ${concurrency}`, [
      { name: "raw ioredis getBuffer", run: (n) => promisePool(n, concurrency, (i) => raw.getBuffer(fullKey(i))) },
      {
        name: "raw ioredis getBuffer, auto-pipelining",
        run: (n) => promisePool(n, concurrency, (i) => rawAuto.getBuffer(fullKey(i)))
      },
      {
        name: "ReadThrough.get over RedisStore (MGET coalescing)",
        run: (n) => effectPool(n, concurrency, (i) => products.get(key(i)), runtime)
      },
      {
        name: "ReadThrough.get over RedisStore (auto-pipelining only)",
        run: (n) => effectPool(n, concurrency, (i) => productsAuto.get(key(i)), runtime)
      },
      {
        name: "RedisStore.get (MGET coalescing)",
        run: (n) => effectPool(n, concurrency, (i) => store.get(storeKey(i)), runtime)
      },
      {
        name: "RedisStore.get (auto-pipelining only)",
        run: (n) => effectPool(n, concurrency, (i) => storeAuto.get(storeKey(i)), runtime)
      }
    ], { minBatch: concurrency * 32, versus: ["raw ioredis getBuffer", "raw ioredis getBuffer, auto-pipelining"] })
    console.log(
      `\nReadThrough vs raw (no auto-pipelining): ${
        ratio(results, "ReadThrough.get over RedisStore (MGET coalescing)", "raw ioredis getBuffer")
      }; vs raw auto-pipelining: ${
        ratio(results, "ReadThrough.get over RedisStore (MGET coalescing)", "raw ioredis getBuffer, auto-pipelining")
      }`
    )
  }

  // The raw side of a ReadThrough read: each reply is the entry's JSON; its value is decoded with
  // the ReadThrough's Schema, and every value is returned (a miss as undefined).
  const decodeProduct = Schema.decodeUnknownEither(Product)
  const utf8 = new TextDecoder("utf-8", { fatal: true })
  const decodeAll = (replies: ReadonlyArray<Buffer | null>): Array<typeof Product.Type | undefined> =>
    replies.map((reply) => {
      if (reply === null) return undefined
      const decoded = decodeProduct((JSON.parse(utf8.decode(reply)) as { v: unknown }).v)
      if (decoded._tag === "Left") throw new Error("a stored entry does not decode")
      return decoded.right
    })
  if (decodeAll([stored])[0]?.id !== ids[0]) throw new Error("the decoding contender does not read what was stored")
  await warmUp(1000, [
    () => promisePool(64, 4, (i) => raw.mgetBuffer(batch(i).map((k) => fullKeys[k]!)).then(decodeAll))
  ])

  for (const concurrency of [1, 16]) {
    const results = await compare(`getMany of 100 keys, concurrency ${concurrency} (ops = batches)`, [
      {
        name: "raw ioredis mgetBuffer",
        run: (n) => promisePool(n, concurrency, (i) => raw.mgetBuffer(batch(i).map((k) => fullKeys[k]!)))
      },
      {
        name: "raw ioredis mgetBuffer + Schema decode",
        run: (n) =>
          promisePool(n, concurrency, (i) => raw.mgetBuffer(batch(i).map((k) => fullKeys[k]!)).then(decodeAll))
      },
      {
        name: "RedisStore.getMany",
        run: (n) => effectPool(n, concurrency, (i) => store.getMany(batch(i).map((k) => storeKeys[k]!)), runtime)
      },
      {
        name: "ReadThrough.getMany",
        run: (n) => effectPool(n, concurrency, (i) => products.getMany(batch(i).map((k) => ids[k]!)), runtime)
      }
    ], {
      minBatch: concurrency * 16, // every worker of the pool gets many batches per run
      versus: ["raw ioredis mgetBuffer", "raw ioredis mgetBuffer + Schema decode"]
    })
    console.log(
      `\nRedisStore.getMany vs raw MGET: ${ratio(results, "RedisStore.getMany", "raw ioredis mgetBuffer")}; ` +
        `ReadThrough.getMany vs raw MGET + Schema decode: ${
          ratio(results, "ReadThrough.getMany", "raw ioredis mgetBuffer + Schema decode")
        }`
    )
  }

  console.log("\n### redis-benchmark against the same server (GET, 100k requests)\n")
  for (const args of [["-c", "1"], ["-c", "64"], ["-c", "64", "-P", "16"]]) {
    const out = await redisBenchmark(server.port, ["-t", "get", "-n", "100000", ...args])
    console.log(`- \`redis-benchmark ${args.join(" ")}\`: ${out ?? "redis-benchmark not installed"}`)
  }

  for (const [name, rt] of [["MGET coalescing", products], ["auto-pipelining only", productsAuto]] as const) {
    const stats = await runtime.runPromise(rt.stats)
    console.log(
      `\nReadThrough (${name}): ${stats.hits} hits, ${stats.misses} misses, ${stats.storeErrors} store errors`
    )
  }
  raw.disconnect()
  rawAuto.disconnect()
  await runtime.dispose()
})
