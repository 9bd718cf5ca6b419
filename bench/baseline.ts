/**
 * Before and after, side by side in one process: the built package against a build of an
 * earlier version of it, over the same Redis and memcached servers (started by the bench itself,
 * free loopback ports, stopped by PID), in the interleaved rounds of `lib.ts`:
 *
 * - `getMany` of 100 keys, concurrency 1: raw ioredis `MGET`, the same `MGET` with its replies
 *   decoded as a ReadThrough decodes them, and `RedisStore.getMany` / `ReadThrough.getMany` of
 *   both builds;
 * - `ReadThrough.get` of a warm key over RedisStore and over MemcachedStore, both builds, at
 *   concurrency 1, 64 and 1,024 (the shape of `stores.ts`).
 *
 * The earlier build is a `dist/` directory given in `CACHEKIT_BASELINE`: build the earlier
 * revision (`tsc -p tsconfig.build.json`) in a checkout that resolves the same `effect` and
 * `ioredis` packages as this one (a shared `node_modules`), so both builds run on one runtime.
 *
 * Run: `CACHEKIT_BASELINE=<dir>/dist npm run bench -- baseline`
 */
import { Effect, Layer, ManagedRuntime, Schema, Scope } from "effect"
import * as CacheStoreNow from "effect-cachekit/CacheStore"
import * as MemcachedStoreNow from "effect-cachekit/MemcachedStore"
import * as ReadThroughNow from "effect-cachekit/ReadThrough"
import * as RedisNow from "effect-cachekit/Redis"
import * as RedisStoreNow from "effect-cachekit/RedisStore"
import { Redis as IoRedis } from "ioredis"
import * as os from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { startMemcached } from "../test/harness/memcached.js"
import { redisServer } from "../test/harness/redis.js"
import { compare, cpuRatioOf, effectPool, promisePool, ratio } from "./lib.js"
import type { Contender } from "./lib.js"
import {
  assertWarm,
  batch,
  fullKeys,
  ids,
  key,
  Product,
  product,
  storeKeys,
  warmUp,
  withServers
} from "./redis-common.js"

interface Build {
  readonly CacheStore: typeof CacheStoreNow
  readonly MemcachedStore: typeof MemcachedStoreNow
  readonly ReadThrough: typeof ReadThroughNow
  readonly Redis: typeof RedisNow
  readonly RedisStore: typeof RedisStoreNow
}

const baselineDir = process.env.CACHEKIT_BASELINE
if (baselineDir === undefined || baselineDir === "") {
  console.log("CACHEKIT_BASELINE is not set (the dist/ directory of an earlier build): nothing to compare")
  process.exit(0)
}
const from = (module: string) => import(pathToFileURL(join(baselineDir, `${module}.js`)).href)
const before: Build = {
  CacheStore: await from("CacheStore"),
  MemcachedStore: await from("MemcachedStore"),
  ReadThrough: await from("ReadThrough"),
  Redis: await from("Redis"),
  RedisStore: await from("RedisStore")
}
const after: Build = {
  CacheStore: CacheStoreNow,
  MemcachedStore: MemcachedStoreNow,
  ReadThrough: ReadThroughNow,
  Redis: RedisNow,
  RedisStore: RedisStoreNow
}

const cpuRatio = (results: Parameters<typeof cpuRatioOf>[0], a: string, b: string) =>
  `${cpuRatioOf(results, a, b).toFixed(2)}×`

const servers = Effect.all({ redis: redisServer(), memcached: startMemcached({ memoryMb: 64 }) })

await withServers(servers, async ({ memcached, redis }, scope) => {
  const runtime = ManagedRuntime.make(Layer.empty)
  const inScope = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) => runtime.runPromise(Scope.extend(effect, scope))

  const setUp = async (build: Build) => {
    // the 2 s command timeout of the other scenarios: a busy machine must not trip a breaker
    const redisStore = await inScope(Effect.flatMap(
      build.Redis.make({ port: redis.port, commandTimeout: "2 seconds" }),
      (client) =>
        Effect.provideService(
          build.RedisStore.make({ prefix: "bench", commandTimeout: "2 seconds" }),
          build.Redis.RedisClient,
          client
        )
    ))
    const memcachedStore = await inScope(
      build.MemcachedStore.make({ servers: [memcached.address], prefix: "bench", timeout: "2 seconds" })
    )
    const readThrough = (store: CacheStoreNow.Service) =>
      inScope(
        build.ReadThrough.make({
          namespace: "product",
          value: Product,
          ttl: "10 minutes",
          lookup: (id: string) => Effect.succeed(product(id))
        }).pipe(Effect.provideService(build.CacheStore.CacheStore, store))
      )
    const overRedis = await readThrough(redisStore)
    const overMemcached = await readThrough(memcachedStore)
    for (const rt of [overRedis, overMemcached]) await runtime.runPromise(rt.getMany(ids))
    return { redisStore, overRedis, overMemcached }
  }
  const was = await setUp(before)
  const now = await setUp(after)

  const raw = new IoRedis({ port: redis.port, host: "127.0.0.1" })
  await raw.ping()
  console.log(
    `# before (${baselineDir}) and after, one process; Node ${process.version}, load average at start: ${
      os.loadavg().map((l) => l.toFixed(1)).join(", ")
    }`
  )

  // the raw side of a ReadThrough's getMany: each reply is the entry's JSON, its value decoded
  const decodeProduct = Schema.decodeUnknownEither(Product)
  const utf8 = new TextDecoder("utf-8", { fatal: true })
  const decodeAll = (replies: ReadonlyArray<Buffer | null>) =>
    replies.map((reply) => {
      if (reply === null) return undefined
      const decoded = decodeProduct((JSON.parse(utf8.decode(reply)) as { v: unknown }).v)
      if (decoded._tag === "Left") throw new Error("a stored entry does not decode")
      return decoded.right
    })

  const many: Array<Contender> = [
    { name: "raw MGET", run: (n) => promisePool(n, 1, (i) => raw.mgetBuffer(batch(i).map((k) => fullKeys[k]!))) },
    {
      name: "raw MGET + decode",
      run: (n) => promisePool(n, 1, (i) => raw.mgetBuffer(batch(i).map((k) => fullKeys[k]!)).then(decodeAll))
    }
  ]
  for (const [label, b] of [["before", was], ["after", now]] as const) {
    many.push(
      {
        name: `RedisStore.getMany, ${label}`,
        run: (n) => effectPool(n, 1, (i) => b.redisStore.getMany(batch(i).map((k) => storeKeys[k]!)), runtime)
      },
      {
        name: `ReadThrough.getMany, ${label}`,
        run: (n) => effectPool(n, 1, (i) => b.overRedis.getMany(batch(i).map((k) => ids[k]!)), runtime)
      }
    )
  }
  await warmUp(1000, many.map((c) => () => Promise.resolve(c.run(32))))
  const manyResults = await compare("getMany of 100 keys, concurrency 1 (ops = batches)", many, {
    minBatch: 16,
    versus: ["raw MGET", "raw MGET + decode"],
    cpu: true
  })
  for (const label of ["before", "after"]) {
    const store = `RedisStore.getMany, ${label}`
    const rt = `ReadThrough.getMany, ${label}`
    console.log(
      `\n${label}: RedisStore.getMany × raw MGET ${ratio(manyResults, store, "raw MGET")} (by CPU ${
        cpuRatio(manyResults, store, "raw MGET")
      }); ReadThrough.getMany × raw MGET + decode ${ratio(manyResults, rt, "raw MGET + decode")} (by CPU ${
        cpuRatio(manyResults, rt, "raw MGET + decode")
      })`
    )
  }

  const gets = (concurrency: number): Array<Contender> =>
    [["before", was], ["after", now]].flatMap(([label, b]) => [
      {
        name: `over Redis, ${label as string}`,
        run: (n: number) => effectPool(n, concurrency, (i) => (b as typeof now).overRedis.get(key(i)), runtime)
      },
      {
        name: `over memcached, ${label as string}`,
        run: (n: number) => effectPool(n, concurrency, (i) => (b as typeof now).overMemcached.get(key(i)), runtime)
      }
    ])
  await warmUp(2000, gets(64).map((c) => () => Promise.resolve(c.run(512))))
  for (const concurrency of [1, 64, 1024]) {
    const results = await compare(`ReadThrough.get hit, concurrency ${concurrency}`, gets(concurrency), {
      minBatch: concurrency * 32,
      versus: ["over Redis, before", "over Redis, after"],
      cpu: true
    })
    for (const label of ["before", "after"]) {
      const mc = `over memcached, ${label}`
      const rd = `over Redis, ${label}`
      console.log(
        `\n${label}: over memcached × over Redis ${ratio(results, mc, rd)} (by CPU ${cpuRatio(results, mc, rd)})`
      )
    }
  }

  for (const b of [was, now]) {
    for (const rt of [b.overRedis, b.overMemcached]) {
      assertWarm((await runtime.runPromise(rt.stats)).storeErrors, "closed")
    }
  }
  raw.disconnect()
  await runtime.dispose()
})
