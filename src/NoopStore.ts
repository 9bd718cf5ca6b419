/**
 * A store that caches nothing: every read misses, every write succeeds and keeps nothing. It is
 * the "cache off" switch of a program (every strategy then calls its loader on every read, as if
 * there were no cache) and the store for tests of the uncached path.
 *
 * What each operation answers, as a store that holds no key would:
 *
 * - `get`, `getMany` and the direct read: nothing; `keys`: an empty list.
 * - `set`, `setMany`, `clear`: succeed.
 * - `setIfAbsent`: `true` (the key was absent); `lease`: every acquisition gets a token, and
 *   extensions and releases succeed, so a lock over this store is always acquired and every
 *   process loads for itself.
 * - `delete`, `expire`: `false`; `deleteMany`: `0`.
 *
 * The store declares itself live (`capabilities.live`), so the strategies do not encode values
 * they are about to drop.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { CacheStore } from "./CacheStore.js"
import type * as CacheStoreModule from "./CacheStore.js"
import { check } from "./internal/options.js"

let leases = 0
const held = Effect.succeed(true)
const lease: CacheStoreModule.Lease = {
  acquire: () => Effect.sync(() => Option.some(`noop-${++leases}`)),
  extend: () => held,
  release: () => held
}

/**
 * Options of the no-op store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Name in metrics, spans and errors (default `"noop"`). */
  readonly name?: string | undefined
}

const miss: Effect.Effect<Option.Option<CacheStoreModule.Value>> = Effect.succeed(Option.none())
const get = (): Effect.Effect<Option.Option<CacheStoreModule.Value>> => miss
// a synchronous direct read: the strategies decide a miss without an Effect step
const directRead: CacheStoreModule.DirectRead = { _tag: "Sync", get, read: () => undefined }
const done = Effect.void
const absent = Effect.succeed(true)
const existed = Effect.succeed(false)
const none = Effect.succeed(0)
const noKeys: Effect.Effect<ReadonlyArray<string>> = Effect.succeed([])

/**
 * Builds a store that keeps nothing. A `name` that is not a non-empty string throws
 * `CacheError.InvalidOptions`.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { NoopStore } from "effect-cachekit"
 * import { Effect, Option } from "effect"
 *
 * const store = NoopStore.make()
 * const program = Effect.gen(function*() {
 *   yield* store.set("k", new Uint8Array([1]))
 *   return Option.isNone(yield* store.get("k")) // true: nothing was kept
 * })
 * ```
 */
export const make = (options: Options = {}): CacheStoreModule.Service => {
  const name = options.name ?? "noop"
  check(typeof name === "string" && name.length > 0, "NoopStore", "name", "name must be a non-empty string")
  return {
    name,
    capabilities: { live: true, scan: true, clear: true, maxValueBytes: undefined },
    get,
    directRead,
    getMany: (keys) => Effect.succeed(Array.from(keys, () => Option.none())),
    set: () => done,
    setMany: () => done,
    setIfAbsent: () => absent,
    delete: () => existed,
    deleteMany: () => none,
    expire: () => existed,
    clear: done,
    keys: () => noKeys,
    lease
  }
}

/**
 * The no-op store as the program's `CacheStore`: caching switched off in one line.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { MemoryStore, NoopStore } from "effect-cachekit"
 * import { Config, Effect, Layer } from "effect"
 *
 * // CACHE_ENABLED=false turns every cache of the program off
 * const StoreLive = Layer.unwrapEffect(
 *   Effect.map(
 *     Config.withDefault(Config.boolean("CACHE_ENABLED"), true),
 *     (enabled) => enabled ? MemoryStore.layer() : NoopStore.layer
 *   )
 * )
 * ```
 */
export const layer: Layer.Layer<CacheStore> = Layer.sync(CacheStore, () => make())
