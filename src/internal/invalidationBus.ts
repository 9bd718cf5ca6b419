/**
 * The bus as the rest of the package sees it: the publisher attached to a store (invalidations
 * over the store announce themselves through it after acting locally), and the listener that
 * applies other processes' events to what this process keeps of the store's versions.
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import type * as CacheStore from "../CacheStore.js"
import { hardTagKey, namespaceKey, softTagKey, versionsOf } from "./versions.js"

// Not marked internal: the public `InvalidationBus.Event` and `Message` are declared from these,
// so their declarations must stay in the published types.

/** The events of the bus: what was invalidated, never a value. */
export const Event = Schema.Union(
  Schema.TaggedStruct("Keys", { namespace: Schema.String, keys: Schema.Array(Schema.String) }),
  Schema.TaggedStruct("Tags", { tags: Schema.Array(Schema.String), hard: Schema.Boolean }),
  Schema.TaggedStruct("Pattern", { namespace: Schema.String, pattern: Schema.String }),
  Schema.TaggedStruct("Version", { namespace: Schema.String }),
  Schema.TaggedStruct("Clear", { namespace: Schema.String }),
  Schema.TaggedStruct("Missed", {})
)

/** An event of the bus. */
export type Event = typeof Event.Type

/** An event with the process that published it. */
export const Message = Schema.Struct({ origin: Schema.String, event: Event })

/** A message of the bus. */
export type Message = typeof Message.Type

/** @internal */
export const MessageJson = Schema.parseJson(Message)

const publishers = new WeakMap<CacheStore.Service, (event: Event) => Effect.Effect<void>>()

/** Attaches a publisher to a store until the returned effect runs. @internal */
export const attach = (
  store: CacheStore.Service,
  publish: (event: Event) => Effect.Effect<void>
): Effect.Effect<void> => {
  publishers.set(store, publish)
  return Effect.sync(() => {
    if (publishers.get(store) === publish) publishers.delete(store)
  })
}

/** Tells other processes of an invalidation made here, when a bus is attached to the store. @internal */
export const announce = (store: CacheStore.Service, event: Event): Effect.Effect<void> =>
  Effect.suspend(() => publishers.get(store)?.(event) ?? Effect.void)

/**
 * Applies another process's event to this process's copy of the store's versions: the versions
 * it changed are forgotten, so the next read reads them from the store. After `Missed` (the bus
 * may have lost events) every version is forgotten. Keys, patterns and clears act on the shared
 * store itself: nothing of them is kept here.
 * @internal
 */
export const apply = (store: CacheStore.Service, event: Event): void => {
  const versions = versionsOf(store)
  switch (event._tag) {
    case "Tags":
      return versions.forget(event.tags.map(event.hard ? hardTagKey : softTagKey))
    case "Version":
      return versions.forget([namespaceKey(event.namespace)])
    case "Missed":
      return versions.forget()
    default:
      return
  }
}

/** Disconnections of bus subscribers (each one followed by `Missed` once reconnected). @internal */
export const disconnections = Metric.counter("effect_cachekit_bus_disconnections", {
  description: "Disconnections of invalidation bus subscribers; each is followed by Missed once reconnected",
  incremental: true
})
