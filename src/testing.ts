/**
 * The test kit: what the tests of a program that caches, or of a new store, reach for.
 *
 * - `storeSuite(runner, name, options)`: the conformance suite of the `CacheStore` contract, the
 *   one every store of this package passes, to run against a store of your own.
 * - `faulty(store)` / `layerFaulty`: a store wrapper that injects latency, typed failures or
 *   calls that never answer, per operation and switchable while the test runs, so fail-open
 *   paths can be tested over `MemoryStore` without a real server. Latency is `Effect.sleep`:
 *   `TestClock.adjust` moves it.
 *
 * A deep import (`effect-cachekit/testing`), kept out of the main entry point. It depends on no
 * test runner: `storeSuite` takes the runner's `describe`, `it` and `expect` as its first
 * argument, so vitest, `@effect/vitest` and jest work as they are, and nothing of a test runner
 * is loaded by the package.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { StoreErrorReason } from "./CacheError.js"
import { CacheStore } from "./CacheStore.js"
import type * as CacheStoreModule from "./CacheStore.js"
import * as faultyStore from "./internal/testing/faultyStore.js"
import * as suite from "./internal/testing/storeSuite.js"

// -------------------------------------------------------------------------------------------------
// the store conformance suite

/**
 * The matchers of an `expect` the suite uses; `expect` of vitest and of jest has them.
 *
 * @since 0.1.0
 * @category conformance suite
 */
export interface Matchers {
  /** `Object.is` equality. */
  toBe(expected: unknown): void
  /** Deep equality. */
  toEqual(expected: unknown): void
  /** Strict equality with `undefined`. */
  toBeUndefined(): void
}

/**
 * The parts of a test runner the suite registers its cases with. Pass vitest's (or
 * `@effect/vitest`'s, or jest's) `describe`, `it` and `expect` as they are; `import * as vitest
 * from "vitest"` is one. `it` receives a function that returns a promise, rejected with the
 * case's own error when the case fails.
 *
 * @since 0.1.0
 * @category conformance suite
 */
export interface StoreSuiteRunner {
  readonly describe: (name: string, body: () => void) => void
  readonly it: (name: string, body: () => Promise<void>) => void
  readonly expect: (actual: unknown) => Matchers
}

/**
 * The cases of the suite, by id, in the order they run.
 *
 * | id | what it checks |
 * | --- | --- |
 * | `missing-key` | a missing key reads as none |
 * | `round-trip` | set then get round-trips bytes, and set overwrites |
 * | `binary-values` | every byte value, CR LF and NUL |
 * | `empty-value` | an empty value is a hit, not a miss |
 * | `large-value` | a large value (512 KiB by default) |
 * | `hostile-keys` | unicode, whitespace, control characters, 10,000-character keys |
 * | `empty-key` | the empty key |
 * | `unpaired-surrogates` | keys that differ only in unpaired surrogates (`"x\ud800"`, `"x\udc00"`, `"x\ufffd"`) stay distinct, or are refused with `InvalidKey` |
 * | `get-many` | `getMany` aligned with its keys, misses and duplicates included |
 * | `many-keys` | `setMany`, `getMany`, `deleteMany` over 1,000 keys |
 * | `set-if-absent` | `setIfAbsent` writes only when absent |
 * | `set-if-absent-race` | of 100 concurrent `setIfAbsent`, exactly one wins |
 * | `delete` | `delete` and `deleteMany` report what existed |
 * | `ttl` | entries expire after their TTL, entries without one do not |
 * | `zero-ttl` | a TTL of zero or less removes the key |
 * | `max-ttl` | a TTL over `CacheStore.maxTtl` (365 days) is clamped to it, on every write and on `expire` |
 * | `invalid-ttl` | a TTL that is no duration (`NaN`, an unreadable string) fails with `StoreError` reason `"command"` and writes nothing |
 * | `expire` | `expire` sets a TTL on existing keys only |
 * | `clear` | `clear` removes its prefix's keys and no other prefix's, or fails with `UnsupportedCapability` |
 * | `keys` | `keys(pattern)` lists matching keys, or fails with `UnsupportedCapability` |
 * | `glob` | `keys(pattern)` matches with Redis's glob rules (a table of patterns a real Redis agrees with); the patterns every store refuses fail with `StoreError` reason `"command"` |
 * | `direct-read` | a direct read reads exactly what `get` reads |
 * | `live-values` | live stores keep objects by reference; byte stores refuse them with `EncodeError` |
 * | `versioned` | a store with versioned writes (`versioned`): `setIfNewer` writes only over an absent key or a lower version (`CacheStore.versionOf`; a value written without one is version 0) and says which version is kept; a TTL of zero or less writes nothing; of 100 concurrent writes the highest version stays. A store without them: `setVersioned` fails with `UnsupportedCapability` |
 * | `lease` | a store that grants leases (`lease`): one holder at a time (of 100 concurrent acquisitions, one wins), lapsing after its TTL unless extended, extended and released only by its token (an old token never touches the next holder's lease), never read or listed as an entry; kept apart from the entry (a write, delete or clear leaves it), or, with `endsOnWrite`, ended by a write of the key and released without changing the entry; a lease that is no finite positive duration fails with `StoreError` reason `"command"`. A store without leases: a cache asking for the `lock` fails with `UnsupportedCapability` |
 * | `fence` | a store with a fence (`fence`): `setIf` writes on nothing or on a value that begins with the expected bytes (a live store: the very object), atomically (of 100 concurrent writes expecting one value, one lands), with its TTL; `swap` leaves its value for its TTL and gives back what the key held; with an `epoch`, a write made under the epoch before a `clear` is refused. A store without a fence: loaded values are written with `set` |
 *
 * @since 0.1.0
 * @category conformance suite
 */
export type StoreSuiteCase =
  | "missing-key"
  | "round-trip"
  | "binary-values"
  | "empty-value"
  | "large-value"
  | "hostile-keys"
  | "empty-key"
  | "unpaired-surrogates"
  | "get-many"
  | "many-keys"
  | "set-if-absent"
  | "set-if-absent-race"
  | "delete"
  | "ttl"
  | "zero-ttl"
  | "max-ttl"
  | "invalid-ttl"
  | "expire"
  | "clear"
  | "keys"
  | "glob"
  | "direct-read"
  | "live-values"
  | "lease"
  | "versioned"
  | "fence"

/**
 * Every case of the suite, in the order they run.
 *
 * @since 0.1.0
 * @category conformance suite
 */
export const storeSuiteCases: ReadonlyArray<StoreSuiteCase> = suite.cases

/**
 * Options of the conformance suite.
 *
 * @since 0.1.0
 * @category conformance suite
 */
export interface StoreSuiteOptions {
  /**
   * Builds the store under test with the given key prefix, in the scope of one case. Every case
   * gets a prefix of its own (`clear` checks that neighbouring prefixes are left alone), so the
   * cases can share one backend, and several processes can too.
   */
  readonly make: (prefix: string) => Effect.Effect<CacheStoreModule.Service, unknown, Scope.Scope>
  /**
   * `"test"`: the store reads Effect's `Clock` (as the memory store does); the cases run on
   * `TestClock` and move it. `"real"`: the backend keeps time (Redis, memcached); the cases wait.
   */
  readonly clock: "test" | "real"
  /** The TTL of the expiry cases (default 200 millis); a backend counting whole seconds needs more. */
  readonly shortTtl?: Duration.DurationInput | undefined
  /** How long the expiry cases wait for `shortTtl` to pass (default `shortTtl` + 150 millis). */
  readonly shortTtlWait?: Duration.DurationInput | undefined
  /** The size of the `large-value` case, in bytes (default 512 KiB). */
  readonly largeValueBytes?: number | undefined
  /** The cases to run (default: all of them). */
  readonly cases?: ReadonlyArray<StoreSuiteCase> | undefined
}

/**
 * Registers the `CacheStore` conformance suite, the one every store of this package passes,
 * with a test runner: one `describe` named after `name`, one `it` per case. Each case runs as an
 * Effect with its own scope (on `TestContext` when `clock` is `"test"`), and fails with the
 * runner's assertion error.
 *
 * Nonsense options (an unknown case, a non-positive duration or size) throw
 * `CacheError.InvalidOptions` when `storeSuite` is called.
 *
 * @since 0.1.0
 * @category conformance suite
 * @example
 * ```ts
 * import { MemoryStore } from "effect-cachekit"
 * import * as Testing from "effect-cachekit/testing"
 * import { describe, expect, it } from "vitest"
 *
 * // a store reading Effect's Clock; a remote store passes clock: "real"
 * Testing.storeSuite({ describe, expect, it }, "my memory store", {
 *   make: () => MemoryStore.make({ capacity: 100_000 }),
 *   clock: "test"
 * })
 * ```
 */
export const storeSuite: (runner: StoreSuiteRunner, name: string, options: StoreSuiteOptions) => void = suite.storeSuite

// -------------------------------------------------------------------------------------------------
// fault injection

/**
 * The operations of a store a fault can be set on.
 *
 * @since 0.1.0
 * @category fault injection
 */
export type Operation =
  | "get"
  | "getMany"
  | "set"
  | "setMany"
  | "setIfAbsent"
  | "delete"
  | "deleteMany"
  | "expire"
  | "clear"
  | "keys"
  | "lease"

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
export type Fault =
  | { readonly _tag: "Healthy" }
  | { readonly _tag: "Latency"; readonly latency: Duration.Duration }
  | {
    readonly _tag: "Failure"
    readonly reason: StoreErrorReason
    readonly after: Duration.Duration
    readonly detail: string
  }
  | { readonly _tag: "BlackHole" }

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
 * read), so every read of a strategy goes through `get` and meets the fault. It passes on the
 * wrapped store's leases, whose acquisitions, extensions and releases are the operation `"lease"`.
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
