/**
 * Invalidation events across processes. Tag and namespace versions are shared through the store,
 * but each process trusts its copy of them for `versionWindow`; with a bus, an invalidation made
 * in one process reaches the others as an event, and they drop their copy at once instead of
 * waiting for the window to pass.
 *
 * - `InvalidationBus` is the transport: `publish` a message, `subscribe` to the messages as a
 *   `Stream`. Messages are Schema-encoded invalidation events (keys, tags, pattern, version bump,
 *   clear), never values.
 * - `layerMemory` is a bus inside one process (an Effect `PubSub`); the Redis pub/sub bus is
 *   `Redis.layerInvalidationBus` (a deep import, so that a memory-only program never loads ioredis).
 * - `connect` attaches a bus to the `CacheStore` in context: invalidations over the store act
 *   locally, then publish; events from other processes are applied here; this process's own
 *   events are not applied twice.
 *
 * A bus that may have lost messages (a subscriber that reconnected) delivers `Missed`: the
 * listener then assumes it missed events and drops every version it keeps, so the next reads
 * read them from the store. See docs/invalidation.md.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { CacheStore } from "./CacheStore.js"
import * as internal from "./internal/invalidationBus.js"
import { freshToken } from "./internal/versions.js"

/**
 * An invalidation event: `Keys`, `Tags` (hard or soft), `Pattern`, `Version` (a namespace's
 * bump), `Clear`, and `Missed` (the bus may have lost events since the last message).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Event: Schema.Schema<internal.Event, internal.Event> = internal.Event

/**
 * @since 0.1.0
 * @category models
 */
export type Event = internal.Event

/**
 * What travels on the bus: an event and the listener that published it (`origin`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Message: Schema.Schema<internal.Message, internal.Message> = internal.Message

/**
 * @since 0.1.0
 * @category models
 */
export type Message = internal.Message

/**
 * A transport for invalidation messages.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Sends a message to every subscriber, in this process and others. */
  readonly publish: (message: Message) => Effect.Effect<void>
  /**
   * Subscribes now, for the life of the scope: the stream gives every message published from
   * then on, `Missed` included when some may have been lost.
   */
  readonly subscribe: Effect.Effect<Stream.Stream<Message>, never, Scope.Scope>
}

/**
 * The invalidation bus in context.
 *
 * @since 0.1.0
 * @category tags
 */
export class InvalidationBus extends Context.Tag("effect-cachekit/InvalidationBus")<InvalidationBus, Service>() {}

/**
 * A bus inside one process, over an Effect `PubSub`: for tests, and for several stores of one
 * process that must hear each other.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<Service> = Effect.map(PubSub.unbounded<Message>(), (hub) => ({
  publish: (message) => Effect.asVoid(PubSub.publish(hub, message)),
  subscribe: Effect.map(PubSub.subscribe(hub), (queue) => Stream.fromQueue(queue))
}))

/**
 * A bus inside one process, over an Effect `PubSub`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<InvalidationBus> = Layer.effect(InvalidationBus, makeMemory)

/**
 * Attaches the bus in context to the `CacheStore` in context, for the life of the scope:
 * invalidations over the store publish their events after acting locally, and a fiber applies
 * the events of other processes (dropping the versions they changed; all of them after
 * `Missed`). Its own events it skips: they were applied when they were made.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { InvalidationBus, MemoryStore } from "effect-cachekit"
 * import { Layer } from "effect"
 *
 * const CacheLive = InvalidationBus.connect.pipe(
 *   Layer.provideMerge(MemoryStore.layer()),
 *   Layer.provideMerge(InvalidationBus.layerMemory)
 * )
 * ```
 */
export const connect: Layer.Layer<never, never, CacheStore | InvalidationBus> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const store = yield* CacheStore
    const bus = yield* InvalidationBus
    const origin = yield* freshToken
    // subscribed before the store is announced to, so no event of another process from now on is lost
    const messages = yield* bus.subscribe
    yield* messages.pipe(
      Stream.runForEach((message) =>
        Effect.sync(() => {
          if (message.origin !== origin) internal.apply(store, message.event)
        })
      ),
      Effect.forkScoped
    )
    yield* Effect.acquireRelease(
      Effect.sync(() => internal.attach(store, (event) => bus.publish({ origin, event }))),
      (detach) => detach
    )
  })
)

/**
 * Disconnections of bus subscribers (Redis pub/sub), each followed by `Missed` once reconnected.
 *
 * @since 0.1.0
 * @category metrics
 */
export const disconnections = internal.disconnections
