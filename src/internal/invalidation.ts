/**
 * Invalidations that act on a whole store rather than on one pipeline's keys: by tag (a new
 * version of the tag) and by namespace version. Each supersedes the loads under way in this
 * process that it may concern, so none of them stores a value read before it, then replaces the
 * versions: one write however many entries they cover.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type { StoreFailure } from "../CacheError.js"
import type * as CacheStore from "../CacheStore.js"
import type { Invalidating } from "../Invalidation.js"
import { announce } from "./invalidationBus.js"
import type { Pipeline } from "./pipeline/index.js"
import { versionedBase } from "./pipeline/key.js"
import { keyOrderOf } from "./pipeline/keyOrder.js"
import { hardTagKey, namespaceKey, softTagKey, versionsOf } from "./versions.js"

/**
 * Gives tags new versions: their entries, in every namespace over the store, become misses
 * (`hard`) or stale (soft). A tag's entries are known only once loaded, so every load under way
 * in this process is superseded: it answers its callers but does not store its value.
 * @internal
 */
export const tags = (
  store: CacheStore.Service,
  tags: ReadonlyArray<string>,
  hard: boolean
): Effect.Effect<void, StoreFailure> =>
  tags.length === 0 ? Effect.void : Effect.zipRight(
    keyOrderOf(store).supersedePrefix(""),
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      versionsOf(store).bump(tags.map(hard ? hardTagKey : softTagKey), now))
  ).pipe(Effect.zipRight(announce(store, { _tag: "Tags", tags, hard })))

/**
 * Gives a namespace a new version: every entry of its versioned handles is a miss from then on,
 * for one write. Loads under way in this process for the namespace do not store their values.
 * @internal
 */
export const bumpVersion = (store: CacheStore.Service, namespace: string): Effect.Effect<void, StoreFailure> =>
  Effect.zipRight(
    keyOrderOf(store).supersedePrefix(versionedBase(namespace)),
    Effect.flatMap(Clock.currentTimeMillis, (now) => versionsOf(store).bump([namespaceKey(namespace)], now))
  ).pipe(Effect.zipRight(announce(store, { _tag: "Version", namespace })))

/** Tags given as one or many. @internal */
export const tagList = (tags: string | Iterable<string>): ReadonlyArray<string> =>
  typeof tags === "string" ? [tags] : Array.from(tags)

/**
 * The invalidation verbs of a handle (`Invalidation.Invalidating`) over its pipeline, its keys
 * made store keys by `keyOf`.
 * @internal
 */
export const verbsOf = <K, A>(pipeline: Pipeline<A>, keyOf: (key: K) => string): Invalidating<K> => ({
  invalidate: (key) => pipeline.invalidate(keyOf(key)),
  expire: (key) => pipeline.expire(keyOf(key)),
  invalidateTag: (given) => tags(pipeline.store, tagList(given), true),
  expireTag: (given) => tags(pipeline.store, tagList(given), false),
  bumpVersion: bumpVersion(pipeline.store, pipeline.namespace),
  invalidatePattern: pipeline.invalidatePattern,
  clear: pipeline.clear
})
