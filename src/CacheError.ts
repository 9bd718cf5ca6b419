/**
 * The typed errors of effect-cachekit. Every error is a `Schema.TaggedError`, so it can be
 * matched with `Effect.catchTag`, serialised across process boundaries and logged with its fields.
 *
 * A loader's own error type is never wrapped: a strategy's `get` fails with `E | CacheError`.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * Why a store operation failed.
 *
 * - `connection`: the backend could not be reached (refused, reset, closed).
 * - `timeout`: the backend did not answer within the command timeout.
 * - `command`: the backend answered with an error for this command.
 * - `protocol`: the backend answered with something the client could not understand.
 * - `unavailable`: the store is skipped on purpose (circuit breaker open).
 * - `auth`: the backend refused the credentials (a wrong password or user, or none given).
 *
 * @since 0.1.0
 * @category models
 */
export const StoreErrorReason = Schema.Literal("connection", "timeout", "command", "protocol", "unavailable", "auth")

/**
 * @since 0.1.0
 * @category models
 */
export type StoreErrorReason = typeof StoreErrorReason.Type

/**
 * A backend failed to carry out an operation.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>("effect-cachekit/StoreError")("StoreError", {
  store: Schema.String,
  operation: Schema.String,
  reason: StoreErrorReason,
  detail: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.store}: ${this.operation} failed (${this.reason}): ${this.detail}`
  }
}

/**
 * A value could not be encoded with its namespace's Schema (or is of a form the store cannot
 * hold). Nothing was written: the previous entry, if any, is untouched.
 *
 * @since 0.1.0
 * @category errors
 */
export class EncodeError extends Schema.TaggedError<EncodeError>("effect-cachekit/EncodeError")("EncodeError", {
  namespace: Schema.String,
  key: Schema.String,
  detail: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `cannot encode the value of ${this.namespace}:${this.key}: ${this.detail}`
  }
}

/**
 * A key that a store cannot hold and cannot make safe.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidKey extends Schema.TaggedError<InvalidKey>("effect-cachekit/InvalidKey")("InvalidKey", {
  store: Schema.String,
  key: Schema.String,
  detail: Schema.String
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.store}: invalid key ${JSON.stringify(this.key)}: ${this.detail}`
  }
}

/**
 * A value larger than the store accepts (memcached's item size limit, a memory store's `maxBytes`).
 *
 * @since 0.1.0
 * @category errors
 */
export class ValueTooLarge extends Schema.TaggedError<ValueTooLarge>("effect-cachekit/ValueTooLarge")("ValueTooLarge", {
  store: Schema.String,
  key: Schema.String,
  size: Schema.Number,
  limit: Schema.Number
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.store}: value of ${this.key} is ${this.size} bytes, over the limit of ${this.limit}`
  }
}

/**
 * The store does not offer an optional capability (a key scan on memcached, for example).
 *
 * @since 0.1.0
 * @category errors
 */
export class UnsupportedCapability
  extends Schema.TaggedError<UnsupportedCapability>("effect-cachekit/UnsupportedCapability")("UnsupportedCapability", {
    store: Schema.String,
    capability: Schema.String,
    detail: Schema.String
  })
{
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.store} does not support ${this.capability}: ${this.detail}`
  }
}

/**
 * A load did not complete within the strategy's `loadTimeout`.
 *
 * @since 0.1.0
 * @category errors
 */
export class LoadTimeout extends Schema.TaggedError<LoadTimeout>("effect-cachekit/LoadTimeout")("LoadTimeout", {
  namespace: Schema.String,
  key: Schema.String,
  timeoutMillis: Schema.Number
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `loading ${this.namespace}:${this.key} took longer than ${this.timeoutMillis} ms`
  }
}

/**
 * A load waited for the lease of its key (`lock`) longer than `lock.wait`, while another holder
 * loaded it, and `lock.onTimeout` is `"fail"`. Nothing was loaded or written by this caller.
 *
 * @since 0.1.0
 * @category errors
 */
export class LockTimeout extends Schema.TaggedError<LockTimeout>("effect-cachekit/LockTimeout")("LockTimeout", {
  namespace: Schema.String,
  key: Schema.String,
  waitMillis: Schema.Number
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `waited ${this.waitMillis} ms for the lock of ${this.namespace}:${this.key}, held by another loader`
  }
}

/**
 * A batch loader (`lookupMany`) answered with a key that was not asked for, or with one key
 * twice. Nothing of that batch is cached; the keys it did not return are simply not found.
 *
 * @since 0.1.0
 * @category errors
 */
export class BatchMismatch extends Schema.TaggedError<BatchMismatch>("effect-cachekit/BatchMismatch")("BatchMismatch", {
  namespace: Schema.String,
  detail: Schema.String
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.namespace}: the batch loader ${this.detail}`
  }
}

/**
 * Options that make no sense (a capacity of 0, a negative TTL, an unknown policy). Thrown when
 * `make`, `layer`, a `Ttl` constructor or `HashRing.make` is called, never at the first read or
 * write; a `layerConfig` reports it as a `ConfigError` at the option's path instead.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptions
  extends Schema.TaggedError<InvalidOptions>("effect-cachekit/InvalidOptions")("InvalidOptions", {
    component: Schema.String,
    /** The option at fault, as a path: `"capacity"`, `"circuitBreaker.resetAfter"`. */
    option: Schema.String,
    detail: Schema.String
  })
{
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.component}: invalid options: ${this.detail}`
  }
}

/**
 * Every error of effect-cachekit, as one Schema: the union of the tagged errors above.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CacheError = Schema.Union(
  StoreError,
  EncodeError,
  InvalidKey,
  ValueTooLarge,
  UnsupportedCapability,
  LoadTimeout,
  LockTimeout,
  BatchMismatch,
  InvalidOptions
)

/**
 * Every error of effect-cachekit.
 *
 * @since 0.1.0
 * @category models
 */
export type CacheError = typeof CacheError.Type

/**
 * The errors a `CacheStore` operation can fail with: every `CacheError` but those of loading
 * (`LoadTimeout`, `LockTimeout`, `BatchMismatch`) and of construction (`InvalidOptions`).
 *
 * @since 0.1.0
 * @category models
 */
export type StoreFailure = Exclude<CacheError, LoadTimeout | LockTimeout | BatchMismatch | InvalidOptions>

/**
 * Whether an unknown value is one of the errors of this module.
 *
 * @since 0.1.0
 * @category guards
 */
export const isCacheError: (u: unknown) => u is CacheError = Schema.is(CacheError)
