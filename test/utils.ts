import { vi } from "@effect/vitest"
import { Effect } from "effect"
import { CacheStore, MemoryStore } from "effect-cachekit"
import type * as Testing from "effect-cachekit/testing"

/**
 * The cases of the store conformance suite that a store keeping nothing (`NoopStore`) passes: a
 * read of a key never written, a write with a TTL of zero, and versioned writes, which it has not
 * (so they are refused with `UnsupportedCapability`). Every other case reads back what it wrote;
 * test/testing.test.ts checks that exactly these pass over the no-op store.
 */
export const noopCases: ReadonlyArray<Testing.StoreSuiteCase> = ["missing-key", "zero-ttl", "versioned"]

/**
 * A real memory store that declares itself a byte store: the strategies then encode entries to
 * bytes and decode them on every read, as they do over Redis or Memcached. It grants the memory
 * store's leases, as those stores grant theirs, so the `lock` option runs over it too.
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
    keys: inner.keys,
    lease: inner.lease,
    scope: inner.scope
  }))

/**
 * Steps the wall clock back by `millis` until the scope closes, as NTP does: `Date.now` (which
 * Effect's live `Clock` reads for `currentTimeMillis`) jumps back; monotonic clocks
 * (`performance.now`, `process.hrtime`) and Node's timers go on as before.
 */
export const wallClockSteppedBack = (millis: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const real = Date.now.bind(Date)
      return vi.spyOn(Date, "now").mockImplementation(() => real() - millis)
    }),
    (spy) => Effect.sync(() => spy.mockRestore())
  )
