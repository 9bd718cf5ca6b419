/**
 * effect-cachekit: caching strategies, stores and stampede protection for Effect.
 *
 * Drivers with optional peer dependencies are deep imports and are not re-exported here:
 * `effect-cachekit/RedisStore`, `effect-cachekit/Redis`, `effect-cachekit/MemcachedStore`.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Cache from "./Cache.js"

/**
 * @since 0.1.0
 */
export * as CacheAside from "./CacheAside.js"

/**
 * @since 0.1.0
 */
export * as CacheError from "./CacheError.js"

/**
 * @since 0.1.0
 */
export * as CacheMetrics from "./CacheMetrics.js"

/**
 * @since 0.1.0
 */
export * as CacheStore from "./CacheStore.js"

/**
 * @since 0.1.0
 */
export * as HashRing from "./HashRing.js"

/**
 * @since 0.1.0
 */
export * as Invalidation from "./Invalidation.js"

/**
 * @since 0.1.0
 */
export * as InvalidationBus from "./InvalidationBus.js"

/**
 * @since 0.1.0
 */
export * as MemoryStore from "./MemoryStore.js"

/**
 * @since 0.1.0
 */
export * as NoopStore from "./NoopStore.js"

/**
 * @since 0.1.0
 */
export * as ReadThrough from "./ReadThrough.js"

/**
 * @since 0.1.0
 */
export * as Stampede from "./Stampede.js"

/**
 * @since 0.1.0
 */
export * as Ttl from "./Ttl.js"

/**
 * @since 0.1.0
 */
export * as WriteBehind from "./WriteBehind.js"

/**
 * @since 0.1.0
 */
export * as WriteThrough from "./WriteThrough.js"
