/**
 * Versioned reads and writes of one namespace's keys: a write carries a version number and never
 * replaces a newer one (the store's atomic `versioned.setIfNewer`), a read returns the value with
 * its version, or nothing below a minimum. Apart from the hot path: plain reads never come here.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { GetVersionedOptions, Versioned, VersionedWrite } from "../../Cache.js"
import { InvalidOptions, UnsupportedCapability } from "../../CacheError.js"
import type { CacheError } from "../../CacheError.js"
import type * as CacheStore from "../../CacheStore.js"
import { VersionHint } from "../store.js"
import type { GenerationView } from "./invalidation.js"
import type { KeyOrder } from "./keyOrder.js"
import type { OnStoreFailure } from "./storeErrors.js"
import type { TagChecks } from "./tags.js"
import { traced } from "./tracing.js"
import type { Writer } from "./write.js"

/** @internal */
export interface VersionedOptions<A> {
  readonly namespace: string
  readonly store: CacheStore.Service
  readonly now: () => number
  readonly order: KeyOrder
  readonly writer: Writer<A>
  readonly tagChecks: TagChecks
  /** The store-failure policy of reads. */
  readonly onStoreFailure: OnStoreFailure
  readonly spanAttributes: Record<string, string>
  readonly withGeneration: <B, E, R>(
    f: (g: GenerationView<A>) => Effect.Effect<B, E, R>
  ) => Effect.Effect<B, E | CacheError, R>
}

const written: VersionedWrite = { _tag: "Written" }

/** @internal */
export const makeVersioned = <A>(options: VersionedOptions<A>) => {
  const { namespace, now, onStoreFailure, order, spanAttributes, store, tagChecks, withGeneration, writer } = options

  const invalidVersion = (option: string, version: number) =>
    new InvalidOptions({
      component: namespace,
      option,
      detail: `a version is a whole number from 1 to ${Number.MAX_SAFE_INTEGER}, not ${version}`
    })
  const validVersion = (version: number) => Number.isSafeInteger(version) && version >= 1

  /** The fresh value of a key with its version, if its version is at least `minVersion`. */
  const getVersioned = (
    key: string,
    getOptions?: GetVersionedOptions
  ): Effect.Effect<Option.Option<Versioned<A>>, CacheError> => {
    const min = getOptions?.minVersion ?? 0
    if (min !== 0 && !validVersion(min)) return Effect.fail(invalidVersion("minVersion", min))
    return withGeneration((g) => {
      const full = g.prefix + key
      return Effect.catchAll(store.get(full), (error) => onStoreFailure("read", error, Option.none())).pipe(
        Effect.flatMap((stored) => {
          const entry = stored._tag === "Some" ? g.reader.entryOf(key, full, stored.value) : undefined
          const t = now()
          if (entry === undefined || t >= entry.freshUntil) return Effect.as(g.reader.flushDrops, Option.none())
          const checked = entry.tags.length === 0
            ? Effect.succeed([entry])
            // the tags' versions cannot be read: the entry cannot be vouched for
            : Effect.catchAll(tagChecks.checkAll([entry], t), (error) => onStoreFailure("read", error, [undefined]))
          return Effect.map(checked, ([current]) =>
            // invalidated, made stale, or older than the reader has seen: nothing to return
            current === undefined || t >= current.freshUntil || current[VersionHint] < min
              ? Option.none()
              : Option.some({ value: current.value, version: current[VersionHint] }))
        })
      )
    }).pipe(traced("cachekit.getVersioned", spanAttributes))
  }

  /** Writes the value with its version, unless the key holds a version at least as high. */
  const setVersioned = (
    key: string,
    value: A,
    version: number,
    tags?: ReadonlyArray<string>
  ): Effect.Effect<VersionedWrite, CacheError> => {
    if (!validVersion(version)) return Effect.fail(invalidVersion("version", version))
    const versioned = store.versioned
    if (versioned === undefined) {
      return Effect.fail(
        new UnsupportedCapability({
          store: store.name,
          capability: "versioned writes",
          detail: `the ${store.name} store cannot compare versions and write in one atomic step`
        })
      )
    }
    return withGeneration((g) => {
      const full = g.prefix + key
      // loads under way would store a value of no version over this one: they do not store
      return order.supersede(full).pipe(
        Effect.zipRight(writer.prepare(key, full, value, tags, version)),
        Effect.flatMap((prepared) =>
          // a TTL policy that says "already expired" caches nothing: the key's entry goes
          prepared.stored === undefined
            ? Effect.as(store.delete(full), written)
            : Effect.map(
              versioned.setIfNewer(full, prepared.stored, version, prepared.ttl),
              (current): VersionedWrite =>
                current._tag === "None" ? written : { _tag: "Outdated", current: current.value }
            )
        )
      )
    }).pipe(traced("cachekit.setVersioned", spanAttributes))
  }

  return { getVersioned, setVersioned }
}
