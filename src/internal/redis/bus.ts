/**
 * The invalidation bus over Redis pub/sub: messages are published on a channel with the client
 * in context, and received on a subscriber connection of the bus's own (a subscribed connection
 * can run no other command). A subscriber that lost its connection reconnects on a `Schedule`;
 * what was published meanwhile is lost, so once back it delivers `Missed`.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as PubSub from "effect/PubSub"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Redis } from "ioredis"
import type * as InvalidationBus from "../../InvalidationBus.js"
import type { RedisClientService } from "../../Redis.js"
import { disconnections, MessageJson } from "../invalidationBus.js"
import type { Message } from "../invalidationBus.js"

/** @internal */
export interface BusOptions {
  readonly channel?: string | undefined
  readonly reconnect?: Schedule.Schedule<unknown, unknown> | undefined
}

/** @internal */
export const DEFAULT_CHANNEL = "effect-cachekit:invalidation"

/** From 50 ms, doubling, at most 5 s apart, for ever. @internal */
export const defaultReconnect: Schedule.Schedule<unknown, unknown> = Schedule.union(
  Schedule.exponential("50 millis"),
  Schedule.spaced("5 seconds")
)

const missed: Message = { origin: "", event: { _tag: "Missed" } }
const decode = Schema.decodeUnknownEither(MessageJson)
const encode = Schema.encodeSync(MessageJson)

/** @internal */
export const make = (
  redis: RedisClientService,
  options: BusOptions
): Effect.Effect<InvalidationBus.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const channel = options.channel ?? DEFAULT_CHANNEL
    const reconnect = options.reconnect ?? defaultReconnect
    const hub = yield* Effect.acquireRelease(PubSub.unbounded<Message>(), PubSub.shutdown)
    const labels = { backend: `redis ${redis.mode}` }

    /** A subscriber connection, subscribed; it ends (fails) when its connection does. */
    const open = Effect.acquireRelease(
      Effect.tryPromise(async () => {
        // a Cluster propagates PUBLISH to every node: one node's connection hears every message
        const base = redis.mode === "cluster" ? redis.masters()[0] : (redis.client as Redis)
        if (base === undefined) throw new Error("no master is connected")
        const connection = base.duplicate({
          lazyConnect: true,
          retryStrategy: () => null,
          autoResubscribe: false,
          maxRetriesPerRequest: 0
        })
        connection.on("error", () => {})
        connection.on("message", (_channel: string, text: string) => {
          const message = decode(text)
          // a message this bus did not write is not an event
          if (Either.isRight(message)) Effect.runSync(PubSub.publish(hub, message.right))
        })
        try {
          await connection.connect()
          await connection.subscribe(channel)
        } catch (error) {
          connection.disconnect()
          throw error
        }
        return connection
      }),
      (connection) => Effect.sync(() => connection.disconnect())
    )
    const ended = (connection: Redis) =>
      Effect.async<void>((resume) => {
        const done = () => resume(Effect.void)
        if (connection.status === "end" || connection.status === "close") return done()
        connection.once("close", done)
        connection.once("end", done)
      })

    /** A connection's life: until it ends, then counted and logged. */
    const lifeOf = (connection: Redis) =>
      Effect.zipRight(
        ended(connection),
        Effect.zipRight(
          Effect.sync(() => disconnections.unsafeUpdate(1, [])),
          Effect.logWarning("invalidation bus subscriber disconnected; reconnecting").pipe(Effect.annotateLogs(labels))
        )
      )
    /** Reconnects on the schedule; once subscribed again, tells that messages may have been missed. */
    const reconnecting = Effect.forever(Effect.scoped(Effect.gen(function*() {
      const connection = yield* Effect.retry(open, reconnect)
      yield* PubSub.publish(hub, missed)
      yield* lifeOf(connection)
    })))
    // the first subscription is made before the bus is handed out, so nothing published after
    // that is lost; if it fails, the bus subscribes in the background and delivers Missed then
    const first = yield* Effect.either(open)
    yield* Effect.forkScoped(
      Either.isRight(first) ? Effect.zipRight(lifeOf(first.right), reconnecting) : reconnecting
    )

    return {
      publish: (message) =>
        Effect.ignoreLogged(redis.use("publish", (client) => client.publish(channel, encode(message)))),
      subscribe: Effect.map(PubSub.subscribe(hub), (queue) => Stream.fromQueue(queue))
    }
  })
