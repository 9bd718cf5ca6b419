/**
 * The order of writes to one store key, across every pipeline over that store (two handles on
 * one namespace, `Cache.cached` variants): a write, an invalidation or a clear supersedes every
 * load of the key under way, whichever pipeline runs it, and waits for a loaded value already
 * being written. So once it returns, no loaded value older than it can land after it.
 *
 * A loaded value is written only while its load is still current: the check and the claim of
 * the key happen in one synchronous step, and the claim is held until the store has the value.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type * as CacheStore from "../../CacheStore.js"

/** What a load under way exposes to the key's writers. @internal */
export interface Superseding {
  readonly full: string
  superseded: boolean
}

interface KeyState {
  readonly loads: Set<Superseding>
  writing: Deferred.Deferred<void> | undefined
}

/** @internal */
export interface KeyOrder {
  /** A load of a key started: writes and invalidations from now on supersede it. */
  readonly register: (load: Superseding) => void
  /** A load ended. */
  readonly unregister: (load: Superseding) => void
  /**
   * A write or invalidation of a key: supersedes every load of it under way, then waits for a
   * loaded value already being written, so that what the caller sends next lands after it.
   */
  readonly supersede: (full: string) => Effect.Effect<void>
  /** `supersede` for every key that starts with `prefix` (a namespace's clear). */
  readonly supersedePrefix: (prefix: string) => Effect.Effect<void>
  /**
   * Writes the loaded values of the loads that are still current and whose keys no other loaded
   * write holds; the others are skipped (their values are only cache fills).
   */
  readonly writeLoaded: <T extends { readonly load: Superseding }, E>(
    items: ReadonlyArray<T>,
    write: (current: ReadonlyArray<T>) => Effect.Effect<void, E>
  ) => Effect.Effect<void, E>
}

const make = (): KeyOrder => {
  const keys = new Map<string, KeyState>()
  const stateOf = (full: string): KeyState => {
    let state = keys.get(full)
    if (state === undefined) {
      state = { loads: new Set(), writing: undefined }
      keys.set(full, state)
    }
    return state
  }
  const tidy = (full: string, state: KeyState) => {
    if (state.loads.size === 0 && state.writing === undefined) keys.delete(full)
  }
  const markAndWait = (states: ReadonlyArray<KeyState>): Effect.Effect<void> => {
    const pending: Array<Deferred.Deferred<void>> = []
    for (const state of states) {
      for (const load of state.loads) load.superseded = true
      if (state.writing !== undefined) pending.push(state.writing)
    }
    return pending.length === 0 ? Effect.void : Effect.forEach(pending, Deferred.await, { discard: true })
  }
  return {
    register: (load) => void stateOf(load.full).loads.add(load),
    unregister: (load) => {
      const state = keys.get(load.full)
      if (state === undefined) return
      state.loads.delete(load)
      tidy(load.full, state)
    },
    supersede: (full) =>
      Effect.suspend(() => {
        const state = keys.get(full)
        return state === undefined ? Effect.void : markAndWait([state])
      }),
    supersedePrefix: (prefix) =>
      Effect.suspend(() => {
        const states: Array<KeyState> = []
        for (const [full, state] of keys) if (full.startsWith(prefix)) states.push(state)
        return markAndWait(states)
      }),
    writeLoaded: <T extends { readonly load: Superseding }, E>(
      items: ReadonlyArray<T>,
      write: (current: ReadonlyArray<T>) => Effect.Effect<void, E>
    ): Effect.Effect<void, E> =>
      Effect.suspend(() => {
        const latch = Deferred.unsafeMake<void>(FiberId.none)
        const claimed: Array<T> = []
        for (const item of items) {
          if (item.load.superseded) continue
          const state = stateOf(item.load.full)
          if (state.writing !== undefined) continue
          state.writing = latch
          claimed.push(item)
        }
        if (claimed.length === 0) return Effect.void
        return Effect.ensuring(
          write(claimed),
          Effect.sync(() => {
            for (const item of claimed) {
              const state = keys.get(item.load.full)
              if (state === undefined || state.writing !== latch) continue
              state.writing = undefined
              tidy(item.load.full, state)
            }
            Deferred.unsafeDone(latch, Exit.void)
          })
        )
      })
  }
}

const byStore = new WeakMap<CacheStore.Service, KeyOrder>()

/** The key order of a store, shared by every pipeline over it. @internal */
export const keyOrderOf = (store: CacheStore.Service): KeyOrder => {
  let order = byStore.get(store)
  if (order === undefined) {
    order = make()
    byStore.set(store, order)
  }
  return order
}
