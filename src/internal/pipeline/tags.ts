/**
 * Tag checks: what an entry with tags is worth once the versions it was written with are compared
 * with the current ones, and the versions a write records. An entry without tags is never
 * looked at here: its hit costs nothing more than before.
 *
 * A changed hard version (`invalidateTag`) makes the entry a miss; a changed soft version
 * (`expireTag`) makes it stale from now on, so stale-while-revalidate and fail-safe may serve it.
 * Current versions come from the store's local copy while it is younger than `window`; the ones
 * that are older or unknown are read in one `getMany` for a whole read or batch.
 */
import * as Effect from "effect/Effect"
import type { StoreFailure } from "../../CacheError.js"
import { hardTagKey, softTagKey } from "../versions.js"
import type { Versions } from "../versions.js"
import type { Entry } from "./envelope.js"
import { withFreshUntil } from "./envelope.js"

/** Some versions an entry needs are not known locally: they have to be read first. @internal */
export const UNKNOWN: unique symbol = Symbol("effect-cachekit/tags/unknown")

/** @internal */
export interface TagChecks {
  /**
   * An entry with tags checked against the versions known locally: itself, a stale copy (a
   * soft version changed), undefined (a hard version changed), or `UNKNOWN`.
   */
  readonly check: <A>(entry: Entry<A>, now: number) => Entry<A> | undefined | typeof UNKNOWN
  /** Checks entries, reading the versions not known locally in one round trip. */
  readonly checkAll: <A>(
    entries: ReadonlyArray<Entry<A> | undefined>,
    now: number
  ) => Effect.Effect<Array<Entry<A> | undefined>, StoreFailure>
  /** The versions a write of an entry with these tags records (two per tag: hard, soft). */
  readonly stamp: (tags: ReadonlyArray<string>, now: number) => Effect.Effect<Array<string>, StoreFailure>
}

/** An entry made stale now: its value kept, its freshness ended. */
const staled = <A>(entry: Entry<A>, now: number): Entry<A> =>
  now >= entry.freshUntil ? entry : withFreshUntil(entry, now)

/** @internal */
export const makeTagChecks = (versions: Versions, window: number): TagChecks => {
  const verdict = <A>(
    entry: Entry<A>,
    now: number,
    current: (key: string) => string | undefined
  ): Entry<A> | undefined | typeof UNKNOWN => {
    const { tags } = entry
    let soft = false
    let unknown = false
    for (let i = 0; i < tags.length; i++) {
      const hard = current(hardTagKey(tags[i]!))
      if (hard === undefined) unknown = true
      else if (hard !== entry.versions[2 * i]) return undefined
      const s = current(softTagKey(tags[i]!))
      if (s === undefined) unknown = true
      else if (s !== entry.versions[2 * i + 1]) soft = true
    }
    return unknown ? UNKNOWN : soft ? staled(entry, now) : entry
  }

  const checkAll = <A>(
    entries: ReadonlyArray<Entry<A> | undefined>,
    now: number
  ): Effect.Effect<Array<Entry<A> | undefined>, StoreFailure> =>
    Effect.suspend(() => {
      const local = (key: string) => versions.known(key, now, window)
      const out = new Array<Entry<A> | undefined>(entries.length)
      const pending: Array<number> = []
      const wanted = new Set<string>()
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i]
        const checked = entry === undefined || entry.tags.length === 0 ? entry : verdict(entry, now, local)
        if (checked !== UNKNOWN) {
          out[i] = checked
          continue
        }
        pending.push(i)
        for (const tag of entry!.tags) {
          const hard = hardTagKey(tag)
          const soft = softTagKey(tag)
          if (local(hard) === undefined) wanted.add(hard)
          if (local(soft) === undefined) wanted.add(soft)
        }
      }
      if (pending.length === 0) return Effect.succeed(out)
      const keys = Array.from(wanted)
      return Effect.map(versions.fetch(keys, now), (tokens) => {
        const read = new Map<string, string>()
        for (let j = 0; j < keys.length; j++) read.set(keys[j]!, tokens[j]!)
        const current = (key: string) => read.get(key) ?? local(key)
        for (const i of pending) {
          const checked = verdict(entries[i]!, now, current)
          // a version forgotten locally between the read and now: the entry cannot be vouched for
          out[i] = checked === UNKNOWN ? undefined : checked
        }
        return out
      })
    })

  const stamp = (tags: ReadonlyArray<string>, now: number): Effect.Effect<Array<string>, StoreFailure> =>
    Effect.suspend(() => {
      const keys: Array<string> = []
      for (const tag of tags) keys.push(hardTagKey(tag), softTagKey(tag))
      const out = keys.map((key) => versions.known(key, now, window))
      const missing: Array<number> = []
      for (let i = 0; i < out.length; i++) if (out[i] === undefined) missing.push(i)
      if (missing.length === 0) return Effect.succeed(out as Array<string>)
      return Effect.map(versions.fetch(missing.map((i) => keys[i]!), now), (tokens) => {
        for (let j = 0; j < missing.length; j++) out[missing[j]!] = tokens[j]!
        return out as Array<string>
      })
    })

  return {
    check: (entry, now) => verdict(entry, now, (key) => versions.known(key, now, window)),
    checkAll,
    stamp
  }
}
