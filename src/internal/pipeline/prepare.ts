/**
 * What a write stores: the TTL of a value, its Schema encoding, its tags with the versions they
 * have now, and its envelope (an entry for a live store, bytes for a byte store), with the time
 * the store keeps it.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { EncodeError } from "../../CacheError.js"
import type { StoreFailure } from "../../CacheError.js"
import type * as CacheStore from "../../CacheStore.js"
import type { TtlPolicy } from "../ttl.js"
import type { Codec } from "./envelope.js"
import { Entry } from "./envelope.js"
import type { Fencing } from "./fence.js"
import { lifetime } from "./freshness.js"
import { writtenTtl } from "./slide.js"
import type { Counters } from "./stats.js"
import type { OnStoreFailure } from "./storeErrors.js"
import type { TagChecks } from "./tags.js"

/** @internal */
export interface WriteOptions<A> {
  readonly namespace: string
  readonly store: CacheStore.Service
  readonly codec: Codec<A>
  readonly now: () => number
  readonly ttl: TtlPolicy<A> | undefined
  readonly staleWindowMillis: number
  readonly tags: ((value: A, key: string) => ReadonlyArray<string>) | undefined
  readonly tagChecks: TagChecks
  readonly counters: Counters
  readonly onStoreFailure: OnStoreFailure
  /** Late-write protection, on stores that offer a fence. */
  readonly fencing: Fencing | undefined
}

/** What a write sends to the store: an entry with its TTL, or a delete (a TTL of zero or less). @internal */
export type Prepared =
  | { readonly full: string; readonly stored: CacheStore.Value; readonly ttl: number | undefined }
  | { readonly full: string; readonly stored: undefined; readonly ttl: 0 }

const noVersions: ReadonlyArray<string> = []

/**
 * The preparation of a namespace's writes: a value, the load time it took, tags besides the
 * namespace's and a version (0: none) in; what to send to the store out, or why it cannot be stored.
 * @internal
 */
export const makePrepare = <A>(options: WriteOptions<A>) => {
  const { codec, counters, fencing, namespace, now, store } = options
  const live = store.capabilities.live
  const sliding = options.ttl?.sliding

  /** The tags of a value and the versions it records of them (none: no work). */
  const tagsOf = (
    key: string,
    value: A,
    extra: ReadonlyArray<string> | undefined,
    t: number
  ): Effect.Effect<readonly [ReadonlyArray<string>, ReadonlyArray<string>], StoreFailure> => {
    const own = options.tags === undefined ? noVersions : options.tags(value, key)
    const tags = extra === undefined || extra.length === 0 ? own : own.length === 0 ? extra : [...own, ...extra]
    return tags.length === 0
      ? Effect.succeed([tags, noVersions] as const)
      : Effect.map(options.tagChecks.stamp(tags, t), (versions) => [tags, versions] as const)
  }

  const prepare = (
    key: string,
    full: string,
    value: A,
    loadTime: number,
    extraTags?: ReadonlyArray<string>,
    version = 0
  ): Effect.Effect<Prepared, EncodeError | StoreFailure> =>
    Effect.flatMap(
      options.ttl === undefined ? Effect.succeed(undefined) : options.ttl.compute(value, key),
      (ttl): Effect.Effect<Prepared, EncodeError | StoreFailure> => {
        if (ttl !== undefined && ttl <= 0) return Effect.succeed({ full, stored: undefined, ttl: 0 as const })
        const encoded = codec.encode(value)
        // a live store keeps what a byte store would give back, not the caller's object
        const kept = live && Either.isRight(encoded) ? codec.normalize(value) : Either.right(value)
        if (Either.isLeft(encoded) || Either.isLeft(kept)) {
          counters.encodeFailure()
          const detail = Either.isLeft(encoded)
            ? encoded.left
            : `the encoded value does not decode back: ${Either.isLeft(kept) ? kept.left : ""}`
          return Effect.fail(new EncodeError({ namespace, key, detail }))
        }
        const t = now()
        return Effect.map(tagsOf(key, value, extraTags, t), ([tags, versions]): Prepared => {
          const { freshUntil, staleUntil } = lifetime(t, ttl, options.staleWindowMillis)
          const entry = new Entry(
            kept.right,
            t,
            freshUntil,
            staleUntil,
            loadTime,
            tags,
            versions,
            codec.fingerprint,
            encoded.right.length,
            version
          )
          const stored = live ? entry : codec.toBytes(entry, encoded.right)
          // a sliding entry lives its slide in the store (its freshUntil is its cap); otherwise, with
          // a fence, an entry outlives its end by the window, as a miss that holds its token
          const storeTtl = sliding !== undefined
            ? writtenTtl(sliding, t, staleUntil)
            : staleUntil === Infinity
            ? undefined
            : staleUntil - t + (fencing?.windowMillis ?? 0)
          return { full, stored, ttl: storeTtl }
        })
      }
    )

  return prepare
}
