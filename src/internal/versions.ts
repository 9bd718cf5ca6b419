/**
 * Versions of tags and namespaces: a random token per version key, kept in the store as an
 * ordinary key (so it lives on one slot of a Cluster like any other key) and known locally for a
 * bounded window.
 *
 * An entry records the tokens of its tags when it is written; a read compares them with the
 * current ones. Invalidating a tag replaces its token with a fresh random one: one write, however
 * many entries carry the tag, on every store. A token that is missing (never written, evicted,
 * deleted) is read as a fresh random token, written if absent so that every process agrees on it:
 * no entry was ever written with it, so losing a version can only make entries miss, never bring
 * them back. Random tokens rather than clocks or counters: skew between machines cannot matter,
 * and two concurrent bumps cannot land on the same value.
 *
 * The local copy is shared by every pipeline over one store, so an invalidation made in this
 * process is seen by its next read at once; one made in another process is seen once the local
 * copy is older than the reader's window.
 */
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import type { StoreFailure } from "../CacheError.js"
import type * as CacheStore from "../CacheStore.js"

/**
 * Store keys of versions. Every key of a namespace starts with the namespace, whose own `:` is
 * escaped (see `prefixOf`), so no namespace's key starts with `:`: these keys are disjoint from
 * every entry.
 */
/** The version whose change makes the tag's entries miss (`invalidateTag`). @internal */
export const hardTagKey = (tag: string): string => ":th:" + tag
/** The version whose change makes the tag's entries stale (`expireTag`). @internal */
export const softTagKey = (tag: string): string => ":ts:" + tag
/** The version that is part of every key of a versioned namespace (`bumpVersion`). @internal */
export const namespaceKey = (namespace: string): string => ":nv:" + namespace

/**
 * The token a namespace's `clear` and `invalidatePattern` replace on stores shared between
 * processes: a loaded value written after it changed is taken back (see `fence.ts`).
 * @internal
 */
export const purgeKey = (namespace: string): string => ":np:" + namespace

/** Most version keys known locally per store; the oldest is forgotten first (and read again when needed). */
const MAX_KNOWN = 10_000

interface Known {
  readonly token: string
  /** Clock millis when the token was read or written. */
  readonly at: number
}

/** @internal */
export interface Versions {
  /** The token of a version key if it was read or written here less than `window` millis before `now`. */
  readonly known: (key: string, now: number, window: number) => string | undefined
  /**
   * Reads the tokens of version keys in one `getMany`; a missing one is given a fresh random
   * token, written only if still absent (another process's token wins the race).
   */
  readonly fetch: (keys: ReadonlyArray<string>, now: number) => Effect.Effect<Array<string>, StoreFailure>
  /**
   * Replaces the tokens of version keys with fresh random ones: known here at once, then written
   * to the store (one `setMany`).
   */
  readonly bump: (keys: ReadonlyArray<string>, now: number) => Effect.Effect<void, StoreFailure>
  /**
   * Forgets what is known here of version keys (all of them when none are given): the next read
   * that needs them reads them from the store. A read under way does not keep what it read.
   */
  readonly forget: (keys?: ReadonlyArray<string>) => void
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** A fresh token: 106 random bits from Effect's `Random`, in base 36. @internal */
export const freshToken: Effect.Effect<string> = Effect.zipWith(
  Random.nextIntBetween(0, Number.MAX_SAFE_INTEGER),
  Random.nextIntBetween(0, Number.MAX_SAFE_INTEGER),
  (a, b) => a.toString(36) + "." + b.toString(36)
)

const tokenOf = (value: CacheStore.Value): string | undefined => {
  if (!(value instanceof Uint8Array)) return undefined
  const token = decoder.decode(value)
  return token.length > 0 ? token : undefined
}

const make = (store: CacheStore.Service): Versions => {
  const known = new Map<string, Known>()
  /** Bumps and forgets made here so far: a read that overlapped one does not remember what it read. */
  let bumps = 0
  const remember = (key: string, token: string, at: number) => {
    known.delete(key)
    known.set(key, { token, at })
    if (known.size > MAX_KNOWN) known.delete(known.keys().next().value!)
  }

  /** A missing key's token: a fresh one written if absent, else the one another writer put there. */
  const settle = (key: string): Effect.Effect<string, StoreFailure> =>
    Effect.flatMap(
      freshToken,
      (fresh) =>
        Effect.flatMap(store.setIfAbsent(key, encoder.encode(fresh)), (written) =>
          written ? Effect.succeed(fresh) : Effect.map(store.get(key), (found) =>
            // gone again already (evicted): the fresh token, which no entry can carry, is safe
            (found._tag === "Some" ? tokenOf(found.value) : undefined) ?? fresh))
    )

  return {
    known: (key, now, window) => {
      const k = known.get(key)
      return k !== undefined && now - k.at < window ? k.token : undefined
    },
    fetch: (keys, now) =>
      Effect.suspend(() => {
        const before = bumps
        return Effect.flatMap(store.getMany(keys), (found) =>
          Effect.forEach(keys, (key, i) => {
            const f = found[i]
            const token = f !== undefined && f._tag === "Some" ? tokenOf(f.value) : undefined
            return Effect.map(token === undefined ? settle(key) : Effect.succeed(token), (t) => {
              // a bump made here while this read was under way may have landed after it: what
              // it read answers this read, which overlapped the bump, but is not kept
              if (bumps === before) remember(key, t, now)
              return t
            })
          }, { concurrency: "unbounded" }))
      }),
    forget: (keys) => {
      bumps++
      if (keys === undefined) known.clear()
      else for (const key of keys) known.delete(key)
    },
    bump: (keys, now) =>
      Effect.flatMap(
        Effect.forEach(keys, () => freshToken),
        (tokens) => {
          bumps++
          for (let i = 0; i < keys.length; i++) remember(keys[i]!, tokens[i]!, now)
          return store.setMany(keys.map((key, i) => ({ key, value: encoder.encode(tokens[i]!) })))
        }
      )
  }
}

const byStore = new WeakMap<CacheStore.Service, Versions>()

/** The versions of a store, shared by every pipeline and invalidation over it. @internal */
export const versionsOf = (store: CacheStore.Service): Versions => {
  let versions = byStore.get(store)
  if (versions === undefined) {
    versions = make(store)
    byStore.set(store, versions)
  }
  return versions
}
