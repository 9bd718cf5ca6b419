import { Effect, Ref } from "effect"
import { CacheError, CacheStore, MemoryStore } from "effect-cachekit"

/**
 * A real memory store behind a switch: while `failing` is true every operation fails with a
 * connection StoreError, as a remote store does while its server is down.
 */
export const faultyStoreOver = <R>(make: Effect.Effect<CacheStore.Service, never, R>) =>
  Effect.gen(function*() {
    const inner = yield* make
    const failing = yield* Ref.make(false)
    const guard = <A, E>(operation: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E | CacheError.StoreError> =>
      Effect.flatMap(Ref.get(failing), (down): Effect.Effect<A, E | CacheError.StoreError> =>
        down
          ? Effect.fail(
            new CacheError.StoreError({ store: "faulty", operation, reason: "connection", detail: "switched off" })
          )
          : effect)
    const store = CacheStore.make({
      name: "faulty",
      capabilities: inner.capabilities,
      get: (key) => guard("get", inner.get(key)),
      getMany: (keys) => guard("getMany", inner.getMany(keys)),
      set: (key, value, ttl) => guard("set", inner.set(key, value, ttl)),
      setMany: (entries) => guard("setMany", inner.setMany(entries)),
      setIfAbsent: (key, value, ttl) => guard("setIfAbsent", inner.setIfAbsent(key, value, ttl)),
      delete: (key) => guard("delete", inner.delete(key)),
      deleteMany: (keys) => guard("deleteMany", inner.deleteMany(keys)),
      expire: (key, ttl) => guard("expire", inner.expire(key, ttl)),
      clear: guard("clear", inner.clear),
      keys: (pattern) => guard("keys", inner.keys(pattern))
    })
    return { store, failing }
  })

/** `faultyStoreOver` a fresh memory store. */
export const faultyStore = faultyStoreOver(MemoryStore.make())

/**
 * A real memory store that declares itself a byte store: the strategies then encode entries to
 * bytes and decode them on every read, as they do over Redis or Memcached.
 */
export const bytesOnlyStore = Effect.map(MemoryStore.make(), (inner) =>
  CacheStore.make({
    name: "bytes-only",
    capabilities: { ...inner.capabilities, live: false },
    get: inner.get,
    getMany: inner.getMany,
    set: inner.set,
    setMany: inner.setMany,
    setIfAbsent: inner.setIfAbsent,
    delete: inner.delete,
    deleteMany: inner.deleteMany,
    expire: inner.expire,
    clear: inner.clear,
    keys: inner.keys
  }))
