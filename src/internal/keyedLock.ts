/**
 * One lock per key: effects holding the lock of a key run one at a time, effects on different
 * keys run in parallel. A key's lock exists only while someone holds or waits for it, so the map
 * stays as small as the number of keys being written at this moment.
 */
import * as Effect from "effect/Effect"

interface Held {
  readonly semaphore: Effect.Semaphore
  users: number
}

/** @internal */
export interface KeyedLock {
  /** Runs `self` holding the lock of `key`. */
  readonly withLock: (key: string) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/** @internal */
export const make = (): KeyedLock => {
  const locks = new Map<string, Held>()
  return {
    withLock: (key) => (self) =>
      // the count taken and the release registered in one uninterruptible step: an interrupted
      // waiter never leaves a lock behind
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          let held = locks.get(key)
          if (held === undefined) {
            held = { semaphore: Effect.unsafeMakeSemaphore(1), users: 0 }
            locks.set(key, held)
          }
          held.users++
          const lock = held
          return Effect.ensuring(
            restore(lock.semaphore.withPermits(1)(self)),
            Effect.sync(() => {
              if (--lock.users === 0) locks.delete(key)
            })
          )
        })
      )
  }
}

const byOwner = new WeakMap<object, KeyedLock>()

/**
 * The keyed lock of an owner (a store): handles over one store that write the same namespaced
 * key take the same lock. @internal
 */
export const keyedLockOf = (owner: object): KeyedLock => {
  let lock = byOwner.get(owner)
  if (lock === undefined) {
    lock = make()
    byOwner.set(owner, lock)
  }
  return lock
}
