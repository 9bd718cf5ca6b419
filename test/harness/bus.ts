/**
 * A Redis pub/sub invalidation bus made over a client and attached to a store, as one process
 * would have it: the bus of the tests that play several processes.
 */
import { Effect, Layer, Schedule } from "effect"
import type { Scope } from "effect"
import { CacheStore, InvalidationBus } from "effect-cachekit"
import * as Redis from "effect-cachekit/Redis"

/** Makes a bus on `channel` over `redis` (reconnecting `reconnectMillis` apart) and connects it to `store`. */
export const connectRedisBus = (
  redis: Redis.RedisClientService,
  store: CacheStore.Service,
  channel: string,
  reconnectMillis = 20
): Effect.Effect<InvalidationBus.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const bus = yield* Effect.provideService(
      Redis.makeInvalidationBus({ channel, reconnect: Schedule.spaced(`${reconnectMillis} millis`) }),
      Redis.RedisClient,
      redis
    )
    yield* Layer.build(
      InvalidationBus.connect.pipe(
        Layer.provide(Layer.succeed(CacheStore.CacheStore, store)),
        Layer.provide(Layer.succeed(InvalidationBus.InvalidationBus, bus))
      )
    )
    return bus
  })
