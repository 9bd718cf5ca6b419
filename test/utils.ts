import { Effect } from "effect"
import { CacheStore, MemoryStore } from "effect-cachekit"

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
