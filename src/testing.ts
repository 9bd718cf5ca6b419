/**
 * The test kit: what the tests of a program that caches, or of a new store, reach for.
 *
 * - `faulty(store)` / `layerFaulty`: a store wrapper that injects latency, typed failures or
 *   calls that never answer, per operation and switchable while the test runs, so fail-open
 *   paths can be tested over `MemoryStore` without a real server. Latency is `Effect.sleep`:
 *   `TestClock.adjust` moves it.
 *
 * A deep import (`effect-cachekit/testing`), kept out of the main entry point. It depends on no
 * test runner.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { StoreErrorReason } from "./CacheError.js"
import { CacheStore } from "./CacheStore.js"
import type * as CacheStoreModule from "./CacheStore.js"
import * as faultyStore from "./internal/testing/faultyStore.js"

/**
 * The operations of a store a fault can be set on.
 *
 * @since 0.1.0
 * @category fault injection
 */
export type Operation = faultyStore.Operation

/**
 * Every operation, in the order of the `CacheStore` contract.
 *
 * @since 0.1.0
 * @category fault injection
 */
export const operations: ReadonlyArray<Operation> = faultyStore.operations

/**
 * What an operation does when it is called. Made by `healthy`, `latency`, `failure` and
 * `blackHole`.
 *
 * @since 0.1.0
 * @category fault injection
 */
export type Fault = faultyStore.Fault

/**
 * No fault: the operation goes straight to the wrapped store.
 *
 * @since 0.1.0
 * @category fault injection
 */
export const healthy: Fault = faultyStore.healthy

/**
 * The operation waits this long (`Effect.sleep`, so on `TestClock` in tests) and then goes to the
 * wrapped store. A duration that is not finite and greater than zero throws
 * `CacheError.InvalidOptions`.
 *
 * @since 0.1.0
 * @category fault injection
 * @example
 * ```ts
 * import * as Testing from "effect-cachekit/testing"
 *
 * const slow = Testing.latency("2 seconds")
 * ```
 */
export const latency: (duration: Duration.DurationInput) => Fault = faultyStore.latency

/**
 * The operation fails with a `CacheError.StoreError` of this reason, naming the wrapped store
 * and the operation; with `after`, it waits that long first (as a timeout does). An unknown
 * reason or an `after` that is not finite and greater than zero throws `CacheError.InvalidOptions`.
 *
 * @since 0.1.0
 * @category fault injection
 * @example
 * ```ts
 * import * as Testing from "effect-cachekit/testing"
 *
 * const down = Testing.failure("connection")
 * const timingOut = Testing.failure("timeout", { after: "500 millis", detail: "no answer" })
 * ```
 */
export const failure: (
  reason: StoreErrorReason,
  options?: {
    /** How long the call waits before it fails (default: it fails at once). */
    readonly after?: Duration.DurationInput | undefined
    /** The error's `detail` (default `"injected fault"`). */
    readonly detail?: string | undefined
  }
) => Fault = faultyStore.failure

/**
 * The operation never answers (it can still be interrupted, by a timeout for example): a server
 * that accepted the connection and went silent.
 *
 * @since 0.1.0
 * @category fault injection
 */
export const blackHole: Fault = faultyStore.blackHole

/**
 * Switches the faults of a wrapped store while a test runs. A fault takes effect for the calls
 * that start after it is set, including calls of effects built before.
 *
 * @since 0.1.0
 * @category fault injection
 */
export interface FaultController {
  /** Sets a fault on the given operations (every operation when none are given), replacing theirs. */
  readonly inject: (fault: Fault, on?: Operation | Iterable<Operation>) => Effect.Effect<void>
  /** Removes the faults of the given operations (of every operation when none are given). */
  readonly heal: (on?: Operation | Iterable<Operation>) => Effect.Effect<void>
  /** The fault an operation has now. */
  readonly faultOf: (operation: Operation) => Effect.Effect<Fault>
  /** How many calls each operation received since the wrapper was made, faulted or not. */
  readonly calls: Effect.Effect<Readonly<Record<Operation, number>>>
}

/**
 * The controller of the faulty store that `layerFaulty` put in context.
 *
 * @since 0.1.0
 * @category fault injection
 */
export class Faults extends Context.Tag("effect-cachekit/testing/Faults")<Faults, FaultController>() {}

/**
 * A store wrapped by `faulty`, and the controller of its faults.
 *
 * @since 0.1.0
 * @category fault injection
 */
export interface Faulty {
  readonly store: CacheStoreModule.Service
  readonly faults: FaultController
}

/**
 * Wraps a store so that faults can be injected into its operations. The wrapper has the wrapped
 * store's name and capabilities, and starts healthy. It has no direct read (`directRead`) and
 * does not pass on the wrapped store's (the memory store's synchronous read, Redis's callback
 * read), so every read of a strategy goes through `get` and meets the fault.
 *
 * @since 0.1.0
 * @category fault injection
 * @example
 * ```ts
 * import { CacheStore, MemoryStore, ReadThrough } from "effect-cachekit"
 * import * as Testing from "effect-cachekit/testing"
 * import { Effect, Schema } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const { faults, store } = yield* Effect.flatMap(MemoryStore.make(), Testing.faulty)
 *   const users = yield* ReadThrough.make({
 *     namespace: "user",
 *     value: Schema.String,
 *     lookup: (id: string) => Effect.succeed(`user ${id}`),
 *     ttl: "5 minutes"
 *   }).pipe(Effect.provideService(CacheStore.CacheStore, store))
 *   yield* faults.inject(Testing.failure("connection"))
 *   return yield* users.get("1") // the store is down: the loader answers
 * })
 *
 * Effect.runPromise(Effect.scoped(program))
 * ```
 */
export const faulty = (store: CacheStoreModule.Service): Effect.Effect<Faulty> =>
  Effect.sync(() => faultyStore.make(store))

/**
 * Wraps the `CacheStore` in context with `faulty`, and provides the wrapper as the `CacheStore`
 * and its controller as `Faults`.
 *
 * @since 0.1.0
 * @category fault injection
 * @example
 * ```ts
 * import { MemoryStore } from "effect-cachekit"
 * import * as Testing from "effect-cachekit/testing"
 * import { Effect, Layer } from "effect"
 *
 * const StoreTest = Testing.layerFaulty.pipe(Layer.provide(MemoryStore.layer()))
 *
 * const outage = Effect.gen(function*() {
 *   const faults = yield* Testing.Faults
 *   yield* faults.inject(Testing.blackHole, ["get", "getMany"])
 * }).pipe(Effect.provide(StoreTest))
 * ```
 */
export const layerFaulty: Layer.Layer<CacheStore | Faults, never, CacheStore> = Layer.effectContext(
  Effect.map(CacheStore, (inner) => {
    const { faults, store } = faultyStore.make(inner)
    return Context.make(CacheStore, store).pipe(Context.add(Faults, faults))
  })
)
