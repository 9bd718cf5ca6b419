/**
 * The one contract every backend implements. Strategies, invalidation and stampede protection are
 * written against this tag only, so swapping Redis for Memcached for memory is swapping one layer.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { UnsupportedCapability } from "./CacheError.js"
import type { StoreFailure } from "./CacheError.js"
import * as internal from "./internal/store.js"

/**
 * What a store holds. Every store holds bytes (`Uint8Array`). A store whose
 * `capabilities.live` is true also keeps any other object by reference, without serialising it:
 * that is how the in-memory store serves hits with no encoding work at all.
 *
 * @since 0.1.0
 * @category models
 */
export type Value = Uint8Array | object

/**
 * An object stored in a live store may carry its approximate encoded size under this symbol, so a
 * byte-bounded memory store can account for it without serialising it.
 *
 * @since 0.1.0
 * @category symbols
 */
export const SizeHint: unique symbol = internal.SizeHint

/**
 * @since 0.1.0
 * @category symbols
 */
export type SizeHint = typeof SizeHint

/**
 * The version a value was written with (`setVersioned`), for a live store's objects; a byte value
 * carries it in its first members (`versionOf` reads both).
 *
 * @since 0.1.0
 * @category symbols
 */
export const VersionHint: unique symbol = internal.VersionHint

/**
 * @since 0.1.0
 * @category symbols
 */
export type VersionHint = typeof VersionHint

/**
 * The version a stored value was written with by a versioned write, 0 when it was written
 * without one: for bytes, the `"n"` member right after the format and the entry's fence token
 * (`{"f":4,"k":"<token>","n":7,…`; also read right after the format, `{"f":3,"n":7,…`), for a
 * live object its `VersionHint`. A store implementing `versioned` compares with it.
 *
 * @since 0.1.0
 * @category utils
 */
export const versionOf: (value: Value) => number = internal.versionOf

/**
 * Optional capability: writes that carry a version number and never replace a newer one (the
 * strategies' `setVersioned`). The compare and the write are one atomic step across every
 * process sharing the store: a Lua script on Redis, a compare-and-swap on memcached, a synchronous
 * step on the memory store.
 *
 * @since 0.1.0
 * @category models
 */
export interface VersionedWrites {
  /**
   * Writes `value` (which carries `version`, see `versionOf`) when the key is absent or holds a
   * lower version: none when written, else the version the key holds (equal or higher).
   */
  readonly setIfNewer: (
    key: string,
    value: Value,
    version: number,
    ttl?: Duration.DurationInput
  ) => Effect.Effect<Option.Option<number>, StoreFailure>
}

/**
 * What a store can do beyond the required operations.
 *
 * @since 0.1.0
 * @category models
 */
export interface Capabilities {
  /** Keeps non-byte values by reference (no serialisation on reads or writes). */
  readonly live: boolean
  /** `keys(pattern)` lists keys by glob pattern (Redis SCAN, a memory walk). */
  readonly scan: boolean
  /** `clear` removes every key of the store's prefix. */
  readonly clear: boolean
  /** Largest value in bytes the store accepts, if it has a limit. */
  readonly maxValueBytes?: number | undefined
}

/**
 * A lease: the right, held by one caller across every process sharing the store, to load one key
 * for a while. A store that can grant leases offers this optional capability as `lease`; the
 * load pipeline's `lock` option uses it without knowing the driver.
 *
 * Keys are the store's keys (without prefix), the same as the entry's: one lease per key, never
 * one shared by several keys. Where the lease lives is the store's choice (a lock key of its own
 * next to the entry on Redis, an in-process table on the memory store, the entry itself on
 * memcached); it is never listed by `keys` and never read as the entry. A store whose leases live
 * in the entry says so with `endsOnWrite`: there a write, delete or `clear` of the key ends it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Lease {
  /**
   * Takes the lease of `key` for `ttl` when nobody holds it: the holder's token, or none while
   * another holder's lease runs. Atomic: of concurrent callers, in any process, one gets a token.
   */
  readonly acquire: (key: string, ttl: Duration.DurationInput) => Effect.Effect<Option.Option<string>, StoreFailure>
  /** Makes the lease last `ttl` from now, when `token` still holds it; false when it lapsed or passed on. */
  readonly extend: (key: string, token: string, ttl: Duration.DurationInput) => Effect.Effect<boolean, StoreFailure>
  /** Ends the lease, when `token` still holds it (false otherwise: a lapsed lease is never taken from its new holder). */
  readonly release: (key: string, token: string) => Effect.Effect<boolean, StoreFailure>
  /** The lease lives in the entry: writing, deleting or clearing the key ends it (memcached). */
  readonly endsOnWrite?: boolean | undefined
}

/**
 * Compare-and-set against what a read found: the capability that keeps a loaded value from
 * landing after a newer write or invalidation made by another process (late-write protection).
 * A store that offers it as `fence` lets the load pipeline write a loaded value only while the
 * key still holds what the load's read found when it started; without it, a loaded value is
 * written with `set`, as a value of this process alone is kept in order.
 *
 `setIf` writes when the key holds nothing (a lease's stub, which `get` reads as nothing, counts
 * as nothing: the entry expired or was never written, and no write or invalidation came since,
 * for an invalidation leaves a marker) or holds what `expected` says of the value the read found:
 * - `undefined`: nothing else;
 * - bytes: bytes that begin with these bytes (the writer makes the first bytes of every value it
 *   writes unique: its fence token);
 * - an object: this very object (live stores).
 *
 * `fenceHolds` tells whether a stored value (none: `undefined`) lets `setIf` write.
 *
 * @since 0.1.0
 * @category models
 */
export interface Fence {
  /**
   * Writes `value` when the key holds nothing or what `expected` says, atomically; true when it
   * wrote. With an `epoch` (what `epoch()` said when the load began), it is refused (false) once
   * the store's keys resolve elsewhere than they did then.
   */
  readonly setIf: (
    key: string,
    expected: Value | undefined,
    value: Value,
    ttl?: Duration.DurationInput,
    epoch?: unknown
  ) => Effect.Effect<boolean, StoreFailure>
  /**
   * Where the store's keys resolve now, for a store where that can change under a running load
   * (memcached: the prefix's generation, which a `clear` or a server's return moves, and the
   * ring). A key that holds nothing in a new place says nothing of what was written in the old
   * one, so a load that began before the change must not write there. Stores whose keys always
   * resolve to the same place leave it out.
   */
  readonly epoch?: (() => unknown) | undefined
  /**
   * Replaces what the key holds with `value` for `ttl` (an invalidation's marker), and gives back
   * what it held before, if anything.
   */
  readonly swap: (
    key: string,
    value: Value,
    ttl: Duration.DurationInput
  ) => Effect.Effect<Option.Option<Value>, StoreFailure>
}

/**
 * Whether a fenced write may replace a stored value (`undefined`: none): nothing is there, or what
 * `expected` says (see `Fence`).
 *
 * @since 0.1.0
 * @category utils
 */
export const fenceHolds: (current: Value | undefined, expected: Value | undefined) => boolean = internal.fenceHolds

/**
 * One entry for `setMany`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SetEntry {
  readonly key: string
  readonly value: Value
  readonly ttl?: Duration.DurationInput | undefined
}

/**
 * A cache backend. Keys are given without the store's prefix: a store adds its own prefix, so
 * `clear` only ever touches the keys of that prefix.
 *
 * TTLs: `undefined` (or an infinite duration) means no expiry; a TTL of zero or less means the
 * entry is already expired, so `set` removes the key; a TTL over `maxTtl` is clamped to it; a TTL
 * that is no duration (`NaN`) fails with a `StoreError` of reason `"command"`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** A short name for logs, spans and metrics ("memory", "redis", "memcached", …). */
  readonly name: string
  /** Optional capabilities. */
  readonly capabilities: Capabilities
  /** Reads one key. */
  readonly get: (key: string) => Effect.Effect<Option.Option<Value>, StoreFailure>
  /** Reads many keys at once; the result is aligned with `keys`. */
  readonly getMany: (keys: ReadonlyArray<string>) => Effect.Effect<Array<Option.Option<Value>>, StoreFailure>
  /** Writes one key, replacing what was there. */
  readonly set: (key: string, value: Value, ttl?: Duration.DurationInput) => Effect.Effect<void, StoreFailure>
  /** Writes many keys. */
  readonly setMany: (entries: ReadonlyArray<SetEntry>) => Effect.Effect<void, StoreFailure>
  /** Writes the key only when it is absent (add / SET NX); true when this call wrote it. Atomic. */
  readonly setIfAbsent: (
    key: string,
    value: Value,
    ttl?: Duration.DurationInput
  ) => Effect.Effect<boolean, StoreFailure>
  /** Removes one key; true when it existed. */
  readonly delete: (key: string) => Effect.Effect<boolean, StoreFailure>
  /** Removes many keys; how many existed (stores that cannot tell report how many were asked). */
  readonly deleteMany: (keys: ReadonlyArray<string>) => Effect.Effect<number, StoreFailure>
  /** Sets a new TTL on an existing key (touch); true when the key existed. */
  readonly expire: (key: string, ttl: Duration.DurationInput) => Effect.Effect<boolean, StoreFailure>
  /** Removes every key of this store's prefix, and nothing else. */
  readonly clear: Effect.Effect<void, StoreFailure>
  /**
   * Lists the keys (without prefix) that match a glob pattern, with Redis's semantics on every
   * store (`*`, `?` for one byte, `[abc]`, `[^a]`, `[a-z]`, `\` escapes; see docs/stores.md).
   */
  readonly keys: (pattern: string) => Effect.Effect<ReadonlyArray<string>, StoreFailure>
  /**
   * Removes the keys (without prefix) that match a glob pattern, as `keys` lists them; how many
   * there were. Optional: a store that has no faster way (Redis deletes each page of its SCAN as
   * it comes, never holding every key) gets `keys` then `deleteMany` in batches
   * (`deleteMatchingOf`). Fails with `UnsupportedCapability` where `keys` does.
   */
  readonly deleteMatching?: ((pattern: string) => Effect.Effect<number, StoreFailure>) | undefined
  /**
   * Optional fast path: a read that answers without an Effect round trip, with the same effect as
   * `get`. The strategies use it on every read when it belongs to this store's `get`.
   */
  readonly directRead?: DirectRead | undefined
  /**
   * Optional capability: a read that also sets the key's TTL, in one command (Redis `GETEX`,
   * memcached `mg … T`), used by sliding TTLs (`Ttl.sliding`). Without it, a sliding hit that
   * extends reads with `get` and sends `expire` in the background: two commands instead of one.
   */
  readonly getAndExpire?: GetAndExpire | undefined
  /**
   * Optional capability: leases on keys, for one loader per key across processes (the `lock`
   * option of the strategies). Absent on stores that cannot grant them.
   */
  readonly lease?: Lease | undefined
  /**
   * Optional capability: versioned writes that never replace a newer version, atomically.
   * Absent on stores that cannot make the compare and the write one step.
   */
  readonly versioned?: VersionedWrites | undefined
  /**
   * Optional capability: compare-and-set against what a read found, so that a loaded value never
   * lands after a newer write or invalidation from another process. Absent: loaded values are
   * written with `set`.
   */
  readonly fence?: Fence | undefined
  /**
   * The scope the store lives in, when it has one (the store layers of this package set it).
   * Background work done on the store's behalf by combinators that have no scope of their own
   * (`Cache.cached`'s stale refreshes) belongs to it and stops when the store closes.
   */
  readonly scope?: Scope.Scope | undefined
}

/**
 * How a direct read reports its outcome: the value (`null` for a miss) or the failure, from the
 * callback that completed the read. `before`, when given, must run before the outcome is acted
 * on (log lines a store defers to the reader's fiber).
 *
 * The value is the reader's to read only until `reply` returns: a store may hand a view into a
 * buffer it reads into again (MemcachedStore hands a view into the socket's chunk, saving a
 * copy per read). A reader that keeps the bytes copies them; the strategies decode them at once.
 *
 * @since 0.1.0
 * @category models
 */
export type DirectReply = (
  value: Value | null,
  error: StoreFailure | undefined,
  before: Effect.Effect<void> | undefined
) => void

/**
 * A read a store can answer without an Effect round trip, declared next to `get`:
 *
 * - `Sync`: an in-process store returns the value at once (`undefined` for a miss), with the
 *   same effect as `get` (expiry, eviction bookkeeping). A hit then costs no Effect step at all.
 * - `Callback`: a remote store registers the read and calls `reply` once, from the callback that
 *   completes it (for a store that batches reads, the one that completes the whole batch). The
 *   reader decides there and resumes in one step, instead of the several a `get` costs.
 *
 * `get` names the `get` this read belongs to: a wrapper that copies a store and replaces its
 * `get` (to add faults, say) is never bypassed, because the strategies use a direct read only
 * while it belongs to the store's own `get` (see `directReadOf`).
 *
 * @since 0.1.0
 * @category models
 */
export type DirectRead =
  | {
    readonly _tag: "Sync"
    readonly get: Service["get"]
    readonly read: (key: string) => Value | undefined
  }
  | {
    readonly _tag: "Callback"
    readonly get: Service["get"]
    readonly read: (key: string, reply: DirectReply) => void
  }

/**
 * A read that sets the key's TTL in the same command, declared next to `get` as a direct read
 * is: `read(key, ttl)` has the effect of `get(key)` followed by `expire(key, ttl)` when the key
 * exists, with one round trip. `get` names the `get` it belongs to, so a wrapper that replaces
 * the store's `get` is never bypassed (see `getAndExpireOf`).
 *
 * @since 0.1.0
 * @category models
 */
export interface GetAndExpire {
  readonly get: Service["get"]
  readonly read: (key: string, ttl: Duration.DurationInput) => Effect.Effect<Option.Option<Value>, StoreFailure>
}

/**
 * The read-and-extend of a store, when it has one that belongs to its `get`.
 *
 * @since 0.1.0
 * @category utils
 */
export const getAndExpireOf = (store: Service): GetAndExpire | undefined => {
  const touch = store.getAndExpire
  return touch !== undefined && touch.get === store.get ? touch : undefined
}

/**
 * The direct read of a store, when it has one that belongs to its `get`.
 *
 * @since 0.1.0
 * @category utils
 */
export const directReadOf = (store: Service): DirectRead | undefined => {
  const direct = store.directRead
  return direct !== undefined && direct.get === store.get ? direct : undefined
}

/**
 * How a store removes the keys that match a pattern: its own `deleteMatching` when it has one,
 * else `keys` then `deleteMany` in batches of 1,000.
 *
 * @since 0.1.0
 * @category utils
 */
export const deleteMatchingOf = (store: Service): (pattern: string) => Effect.Effect<number, StoreFailure> =>
  store.deleteMatching ?? ((pattern) =>
    Effect.flatMap(store.keys(pattern), (keys) => {
      const batches: Array<ReadonlyArray<string>> = []
      for (let i = 0; i < keys.length; i += internal.DELETE_BATCH) {
        batches.push(keys.slice(i, i + internal.DELETE_BATCH))
      }
      return Effect.map(
        Effect.forEach(batches, store.deleteMany),
        (counts) => counts.reduce((a, b) => a + b, 0)
      )
    }))

/**
 * The `CacheStore` tag. Provide one store layer (`MemoryStore.layer()`, `RedisStore.layer(…)`,
 * `MemcachedStore.layer(…)`) and every strategy in the program uses it.
 *
 * @since 0.1.0
 * @category tags
 */
export class CacheStore extends Context.Tag("effect-cachekit/CacheStore")<CacheStore, Service>() {}

/**
 * What a backend must implement; `make` derives the rest.
 *
 * @since 0.1.0
 * @category models
 */
export interface MakeOptions {
  readonly name: string
  readonly capabilities?: Partial<Capabilities>
  readonly get: Service["get"]
  readonly set: Service["set"]
  readonly setIfAbsent: Service["setIfAbsent"]
  readonly delete: Service["delete"]
  readonly expire: Service["expire"]
  readonly getMany?: Service["getMany"]
  readonly setMany?: Service["setMany"]
  readonly deleteMany?: Service["deleteMany"]
  readonly clear?: Service["clear"]
  readonly keys?: Service["keys"]
  readonly deleteMatching?: Service["deleteMatching"]
  readonly directRead?: Service["directRead"]
  readonly getAndExpire?: Service["getAndExpire"]
  readonly lease?: Service["lease"]
  readonly versioned?: Service["versioned"]
  readonly fence?: Service["fence"]
  readonly scope?: Service["scope"]
}

/**
 * Builds a store from the operations a backend implements natively, deriving the others:
 * `getMany`, `setMany` and `deleteMany` run the single-key operations concurrently; `clear` and
 * `keys` fail with `UnsupportedCapability` when not given.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { CacheStore } from "effect-cachekit"
 * import { Effect, Option } from "effect"
 *
 * const map = new Map<string, CacheStore.Value>()
 * const store = CacheStore.make({
 *   name: "map",
 *   get: (key) => Effect.sync(() => Option.fromNullable(map.get(key))),
 *   set: (key, value) => Effect.sync(() => void map.set(key, value)),
 *   setIfAbsent: (key, value) => Effect.sync(() => map.has(key) ? false : (map.set(key, value), true)),
 *   delete: (key) => Effect.sync(() => map.delete(key)),
 *   expire: (key) => Effect.sync(() => map.has(key))
 * })
 * ```
 */
export const make = (options: MakeOptions): Service => {
  const capabilities: Capabilities = {
    live: options.capabilities?.live ?? false,
    scan: options.capabilities?.scan ?? options.keys !== undefined,
    clear: options.capabilities?.clear ?? options.clear !== undefined,
    maxValueBytes: options.capabilities?.maxValueBytes
  }
  const unsupported = (capability: string) =>
    Effect.fail(
      new UnsupportedCapability({
        store: options.name,
        capability,
        detail: `the ${options.name} store has no ${capability}`
      })
    )
  return {
    name: options.name,
    capabilities,
    get: options.get,
    set: options.set,
    setIfAbsent: options.setIfAbsent,
    delete: options.delete,
    expire: options.expire,
    getMany: options.getMany ??
      ((keys) => Effect.forEach(keys, options.get, { concurrency: "unbounded" })),
    setMany: options.setMany ??
      ((entries) =>
        Effect.forEach(entries, (e) => options.set(e.key, e.value, e.ttl), {
          concurrency: "unbounded",
          discard: true
        })),
    deleteMany: options.deleteMany ??
      ((keys) =>
        Effect.map(
          Effect.forEach(keys, options.delete, { concurrency: "unbounded" }),
          (results) => results.filter(Boolean).length
        )),
    clear: options.clear ?? unsupported("clear"),
    keys: options.keys ?? (() => unsupported("keys")),
    deleteMatching: options.deleteMatching,
    directRead: options.directRead,
    getAndExpire: options.getAndExpire,
    lease: options.lease,
    versioned: options.versioned,
    fence: options.fence,
    scope: options.scope
  }
}

/**
/**
 * The longest TTL a store keeps an entry for: 365 days. Every store of this package clamps a
 * longer finite TTL to it (Redis refuses deadlines past 64 bits, memcached's end in 2038), and
 * refuses a TTL that is no duration (`NaN`) with a `StoreError` of reason `"command"`.
 *
 * @since 0.1.0
 * @category utils
 */
export const maxTtl: Duration.Duration = Duration.millis(internal.MAX_TTL_MILLIS)

/**
 * Whether a value is bytes (as every store accepts) rather than a live object.
 *
 * @since 0.1.0
 * @category guards
 */
export const isBytes = (value: Value): value is Uint8Array => value instanceof Uint8Array

/**
 * Reads one key from the store in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const get = (key: string): Effect.Effect<Option.Option<Value>, StoreFailure, CacheStore> =>
  Effect.flatMap(CacheStore, (store) => store.get(key))

/**
 * Writes one key to the store in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const set = (
  key: string,
  value: Value,
  ttl?: Duration.DurationInput
): Effect.Effect<void, StoreFailure, CacheStore> => Effect.flatMap(CacheStore, (store) => store.set(key, value, ttl))
