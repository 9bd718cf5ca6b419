/**
 * One process of the cross-process late-write test, started with `startChild`.
 *
 * It builds a read-through cache over a Redis or memcached store (from its JSON argument) and gets
 * one key. Its loader reads the source (a file standing in for a database), prints
 * `READ <value>`, and waits for `GO` on stdin before it returns `v<value>`: a slow load that read
 * the source before the parent wrote. Then it prints `DONE <value>` and exits.
 */
import type { Layer } from "effect"
import { Effect, Schema } from "effect"
import type { CacheStore } from "effect-cachekit/CacheStore"
import * as MemcachedStore from "effect-cachekit/MemcachedStore"
import * as ReadThrough from "effect-cachekit/ReadThrough"
import * as RedisStore from "effect-cachekit/RedisStore"
import * as fs from "node:fs"
import { awaitGo, runWorker } from "./worker.js"

/** Where the worker's store is. */
export type WorkerStore =
  | { readonly kind: "redis"; readonly port: number }
  | { readonly kind: "memcached"; readonly servers: ReadonlyArray<string> }

export interface WorkerOptions {
  readonly store: WorkerStore
  readonly prefix: string
  readonly key: string
  /** The source's file. */
  readonly source: string
}

{
  const options = JSON.parse(process.argv[2]!) as WorkerOptions
  const go = awaitGo()
  const lookup = (_: string) =>
    Effect.gen(function*() {
      const read = fs.readFileSync(options.source, "utf8")
      process.stdout.write(`READ ${read}\n`)
      yield* Effect.promise(() => go)
      return `v${read}`
    })
  const store: Layer.Layer<CacheStore, unknown> = options.store.kind === "redis"
    ? RedisStore.layer({ port: options.store.port, prefix: options.prefix })
    : MemcachedStore.layer({ servers: options.store.servers, prefix: options.prefix })
  const program = Effect.gen(function*() {
    const cache = yield* ReadThrough.make({ namespace: "late", value: Schema.String, lookup, ttl: "1 minute" })
    process.stdout.write(`READY ${process.pid}\n`)
    const value = yield* cache.get(options.key)
    process.stdout.write(`DONE ${value}\n`)
  }).pipe(Effect.scoped, Effect.provide(store))
  runWorker(program)
}
