/**
 * Invalidation beyond one key, over the `CacheStore` in context: by tag and by namespace version;
 * and the escaping of user input for the handles' `invalidatePattern`.
 *
 * Tags work by versions, not by sets of members: each entry records, when it is written, the
 * current version (a random token) of each of its tags, and a read compares them with the
 * current ones. `invalidateTag` replaces a tag's version, so every entry that carries the tag —
 * a million of them, on as many Cluster slots — is a miss from then on, for one write to the
 * store. `expireTag` replaces the tag's other version, which makes the entries stale instead:
 * stale-while-revalidate and fail-safe may still serve them while they are refreshed. A version
 * that is lost (evicted, deleted) reads as a fresh token no entry carries, so it can only make
 * entries miss, never bring them back. See docs/invalidation.md.
 *
 * The handles (`ReadThrough`, `CacheAside`, `Cache.cached`) have the same verbs.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type { CacheError } from "./CacheError.js"
import { CacheStore } from "./CacheStore.js"
import * as internal from "./internal/invalidation.js"
import { escapeGlob } from "./internal/store.js"

/**
 * The invalidation verbs every cache handle has (`ReadThrough`, `CacheAside`), for keys of type `K`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Invalidating<in K> {
  /** Removes a key's entry; true when there was one. */
  readonly invalidate: (key: K) => Effect.Effect<boolean, CacheError>
  /**
   * Makes a key's entry stale (true when it was fresh): served while stale-while-revalidate or
   * fail-safe allow (a read-through cache refreshes it).
   */
  readonly expire: (key: K) => Effect.Effect<boolean, CacheError>
  /** `Invalidation.invalidateTag` over this cache's store: every entry of the tags, in every namespace, misses. */
  readonly invalidateTag: (tags: string | Iterable<string>) => Effect.Effect<void, CacheError>
  /** `Invalidation.expireTag` over this cache's store: every entry of the tags, in every namespace, is stale. */
  readonly expireTag: (tags: string | Iterable<string>) => Effect.Effect<void, CacheError>
  /**
   * `Invalidation.bumpVersion` of this cache's namespace: with `versioned: true`, every entry of
   * the namespace misses from then on.
   */
  readonly bumpVersion: Effect.Effect<void, CacheError>
  /**
   * Removes this cache's entries whose keys match a glob pattern (`*`, `?`, `[…]`, `\` escapes),
   * and nothing of another namespace; how many there were. Put user input through
   * `Invalidation.escapePattern` so that it matches literally. Needs a store that can scan keys
   * (memory, Redis: SCAN on every master, never KEYS); on Memcached it fails with
   * `UnsupportedCapability`.
   */
  readonly invalidatePattern: (pattern: string) => Effect.Effect<number, CacheError>
  /**
   * Removes every entry of this namespace and nothing else; how many there were. Needs a store
   * that can list keys (memory, Redis); on Memcached it fails with `UnsupportedCapability`.
   */
  readonly clear: Effect.Effect<number, CacheError>
}

/**
 * Makes every entry of the tags a miss, in every namespace over the store in context: one write
 * to the store per tag. This process sees it at once; others within their `versionWindow`.
 * Loads under way in this process answer their callers but do not store their values.
 *
 * @since 0.1.0
 * @category invalidation
 * @example
 * ```ts
 * import { Invalidation, MemoryStore, ReadThrough } from "effect-cachekit"
 * import { Effect, Schema } from "effect"
 *
 * const Post = Schema.Struct({ id: Schema.String, author: Schema.String })
 *
 * const program = Effect.gen(function*() {
 *   const posts = yield* ReadThrough.make({
 *     namespace: "post",
 *     value: Post,
 *     lookup: (id: string) => Effect.succeed({ id, author: "ada" }),
 *     ttl: "1 hour",
 *     tags: (post) => [`author:${post.author}`]
 *   })
 *   yield* posts.get("p1")
 *   yield* Invalidation.invalidateTag("author:ada") // the next get of p1 loads again
 * })
 *
 * Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(MemoryStore.layer())))
 * ```
 */
export const invalidateTag = (tags: string | Iterable<string>): Effect.Effect<void, CacheError, CacheStore> =>
  Effect.flatMap(CacheStore, (store) => internal.tags(store, internal.tagList(tags), true))

/**
 * Makes every entry of the tags stale, in every namespace over the store in context: while
 * inside their stale-while-revalidate window they are served once more and refreshed in the
 * background, and fail-safe may answer a failed load with them. One write per tag.
 *
 * @since 0.1.0
 * @category invalidation
 */
export const expireTag = (tags: string | Iterable<string>): Effect.Effect<void, CacheError, CacheStore> =>
  Effect.flatMap(CacheStore, (store) => internal.tags(store, internal.tagList(tags), false))

/**
 * Gives a namespace a new version, over the store in context: every entry of the caches made
 * with `versioned: true` on that namespace is a miss from then on — one write to the store,
 * however many entries, on every store. The version is part of every key of such a cache, so the
 * old entries are never read again and leave with their TTL (or the store's eviction). A lost
 * version reads as a fresh one: it can only make entries miss. This process sees the bump at
 * once, others within their `versionWindow`.
 *
 * @since 0.1.0
 * @category invalidation
 * @example
 * ```ts
 * import { Invalidation, MemoryStore, ReadThrough } from "effect-cachekit"
 * import { Effect, Schema } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const prices = yield* ReadThrough.make({
 *     namespace: "price",
 *     value: Schema.Number,
 *     lookup: (sku: string) => Effect.succeed(9.99),
 *     ttl: "1 hour",
 *     versioned: true
 *   })
 *   yield* prices.get("sku-1")
 *   yield* Invalidation.bumpVersion("price") // every price loads again
 * })
 *
 * Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(MemoryStore.layer())))
 * ```
 */
export const bumpVersion = (namespace: string): Effect.Effect<void, CacheError, CacheStore> =>
  Effect.flatMap(CacheStore, (store) => internal.bumpVersion(store, namespace))

/**
 * Escapes text for a glob pattern (`invalidatePattern`, `CacheStore.keys`): `*`, `?`, `[`, `]` and
 * `\` are preceded by `\`, so the text matches only itself. Use it for every part of a pattern
 * that comes from outside.
 *
 * @since 0.1.0
 * @category utils
 * @example
 * ```ts
 * import { Invalidation } from "effect-cachekit"
 *
 * const userId = "a*b" // from a request
 * const pattern = `user:${Invalidation.escapePattern(userId)}:*` // "user:a\\*b:*"
 * ```
 */
export const escapePattern = (text: string): string => escapeGlob(text)
