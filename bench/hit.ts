/**
 * The memory hit path: a read of a warm key, side by side with the caches people would otherwise
 * use. Two settings: inside one Effect loop (the cost a service pays per read), and from Promise
 * land (one `Effect.runPromise` per read, the cost for code that is not written in Effect).
 */
import { BentoCache, bentostore } from "bentocache"
import { memoryDriver } from "bentocache/drivers/memory"
import { createCache } from "cache-manager"
import { Cache as EffectCache, Duration, Effect, Layer, ManagedRuntime, Schema } from "effect"
import { MemoryStore, ReadThrough } from "effect-cachekit"
import { LRUCache } from "lru-cache"
import { compare, ratio } from "./lib.js"

const KEYS = 1000
const keys = Array.from({ length: KEYS }, (_, i) => `key-${i}`)
const Product = Schema.Struct({ id: Schema.String, price: Schema.Number })
const product = (id: string) => ({ id, price: id.length * 1.5 })

// lru-cache, raw
const lru = new LRUCache<string, { id: string; price: number }>({ max: 10_000, ttl: 300_000 })
for (const k of keys) lru.set(k, product(k))

// Effect's own Cache
const effectCache = Effect.runSync(
  EffectCache.make({
    capacity: 10_000,
    timeToLive: Duration.minutes(5),
    lookup: (k: string) => Effect.succeed(product(k))
  })
)
Effect.runSync(Effect.forEach(keys, (k) => effectCache.get(k), { discard: true }))

// ours: a ReadThrough over MemoryStore, as a layer in a runtime that lives for the whole bench
const Products = ReadThrough.Tag<string, typeof Product.Type>("bench/Products")
const runtime = ManagedRuntime.make(
  Layer.scoped(
    Products,
    ReadThrough.make({
      namespace: "product",
      value: Product,
      lookup: (k: string) => Effect.succeed(product(k)),
      ttl: "5 minutes"
    })
  ).pipe(Layer.provide(MemoryStore.layer({ capacity: 10_000 })))
)
const products = await runtime.runPromise(Products)
await runtime.runPromise(Effect.forEach(keys, (k) => products.get(k), { discard: true }))

// bentocache, memory driver
const bento = new BentoCache({
  default: "memory",
  stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: 10_000 })) }
})
for (const k of keys) await bento.getOrSet({ key: k, factory: () => product(k), ttl: "5m" })

// cache-manager (keyv memory store underneath)
const manager = createCache({ ttl: 300_000 })
for (const k of keys) await manager.wrap(k, async () => product(k))

let sink = 0

const inEffectLoop = await compare("Hit inside one Effect loop (one `Effect.runPromise` for a batch of reads)", [
  {
    name: "ReadThrough.get (effect-cachekit)",
    run: (n) =>
      runtime.runPromise(Effect.gen(function*() {
        for (let i = 0; i < n; i++) sink += (yield* products.get(keys[i % KEYS]!)).price
      }))
  },
  {
    name: "Effect Cache.get",
    run: (n) =>
      Effect.runPromise(Effect.gen(function*() {
        for (let i = 0; i < n; i++) sink += (yield* effectCache.get(keys[i % KEYS]!)).price
      }))
  },
  {
    name: "lru-cache get (sync, no Effect)",
    run: (n) => {
      for (let i = 0; i < n; i++) sink += lru.get(keys[i % KEYS]!)!.price
    }
  }
], { cpu: true })

const fromPromises = await compare("Hit from Promise land (one await per read)", [
  {
    name: "ReadThrough.get via Effect.runPromise (effect-cachekit)",
    run: async (n) => {
      for (let i = 0; i < n; i++) sink += (await Effect.runPromise(products.get(keys[i % KEYS]!))).price
    }
  },
  {
    name: "bentocache getOrSet (memory)",
    run: async (n) => {
      for (let i = 0; i < n; i++) {
        const k = keys[i % KEYS]!
        sink += (await bento.getOrSet({ key: k, factory: () => product(k), ttl: "5m" })).price
      }
    }
  },
  {
    name: "cache-manager wrap",
    run: async (n) => {
      for (let i = 0; i < n; i++) {
        const k = keys[i % KEYS]!
        sink += (await manager.wrap(k, async () => product(k))).price
      }
    }
  },
  {
    name: "Effect Cache.get via Effect.runPromise",
    run: async (n) => {
      for (let i = 0; i < n; i++) sink += (await Effect.runPromise(effectCache.get(keys[i % KEYS]!))).price
    }
  },
  {
    // the floor of this setting: running any effect at all from a Promise
    name: "floor: Effect.runPromise(Effect.succeed) (no cache)",
    run: async (n) => {
      for (let i = 0; i < n; i++) sink += await Effect.runPromise(Effect.succeed(i))
    }
  }
], { cpu: true })

console.log("\nSummary")
console.log(
  `- in one Effect loop: ReadThrough.get is ${
    ratio(inEffectLoop, "ReadThrough.get (effect-cachekit)", "Effect Cache.get")
  } Effect Cache.get`
)
console.log(
  `- from Promise land: ReadThrough.get is ${
    ratio(fromPromises, "ReadThrough.get via Effect.runPromise (effect-cachekit)", "bentocache getOrSet (memory)")
  } bentocache, ${
    ratio(fromPromises, "ReadThrough.get via Effect.runPromise (effect-cachekit)", "cache-manager wrap")
  } cache-manager, ${
    ratio(
      fromPromises,
      "ReadThrough.get via Effect.runPromise (effect-cachekit)",
      "floor: Effect.runPromise(Effect.succeed) (no cache)"
    )
  } of the bare runPromise floor`
)
if (sink === 42) console.log("")
await bento.disconnectAll()
await runtime.dispose()
