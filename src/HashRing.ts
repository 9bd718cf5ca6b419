/**
 * Consistent hashing compatible with libmemcached's ketama: the same key lands on the same server
 * as in any libmemcached-based client configured for ketama, and adding or removing one of N
 * members moves only about 1/N of the keys.
 *
 * The ring is generic over its node type, so it routes keys to memcached servers, to whole
 * `CacheStore`s, or to anything else that has a stable name. Rings are immutable values: `add`
 * and `remove` return a new ring.
 *
 * @since 0.1.0
 */
import { dual } from "effect/Function"
import * as Inspectable from "effect/Inspectable"
import * as Option from "effect/Option"
import type { Pipeable } from "effect/Pipeable"
import { pipeArguments } from "effect/Pipeable"
import * as internal from "./internal/hashRing.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-cachekit/HashRing") as never

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * One member of a ring. `name` is what the ring hashes to place the member's points (for
 * memcached, libmemcached's server name, see {@link serverName}); it is also the member's identity
 * for `remove` and `has`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Member<N> {
  readonly name: string
  readonly node: N
  /** A positive integer; a member of weight 2 gets twice the points (and keys) of weight 1. */
  readonly weight: number
}

/**
 * A member as given to `make` and `add`; the weight defaults to 1.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemberInput<N> {
  readonly name: string
  readonly node: N
  readonly weight?: number | undefined
}

/**
 * An immutable ketama continuum over members of type `N`.
 *
 * @since 0.1.0
 * @category models
 */
export interface HashRing<N> extends Pipeable, Inspectable.Inspectable {
  readonly [TypeId]: TypeId
  /** The members, in the order they were added. */
  readonly members: ReadonlyArray<Member<N>>
  /** Total number of points on the continuum (160 per member of average weight). */
  readonly size: number
}

class HashRingImpl<N> implements HashRing<N> {
  readonly [TypeId]: TypeId = TypeId
  readonly continuum: internal.Continuum
  constructor(readonly members: ReadonlyArray<Member<N>>) {
    this.continuum = internal.buildContinuum(members)
  }
  get size(): number {
    return this.continuum.points.length
  }
  pipe() {
    return pipeArguments(this, arguments)
  }
  toJSON() {
    return {
      _id: "HashRing",
      members: this.members.map((m) => ({ name: m.name, weight: m.weight })),
      size: this.size
    }
  }
  toString() {
    return Inspectable.format(this.toJSON())
  }
  [Inspectable.NodeInspectSymbol]() {
    return this.toJSON()
  }
}

const impl = <N>(ring: HashRing<N>): HashRingImpl<N> => ring as HashRingImpl<N>

const normalise = <N>(input: MemberInput<N>): Member<N> => ({
  name: input.name,
  node: input.node,
  weight: input.weight ?? 1
})

/**
 * Whether a value is a `HashRing`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isHashRing = (u: unknown): u is HashRing<unknown> => typeof u === "object" && u !== null && TypeId in u

/**
 * Builds a ring. Throws `InvalidOptions` for a duplicate name or a weight that is not a positive
 * integer.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import * as HashRing from "effect-cachekit/HashRing"
 *
 * const ring = HashRing.make([
 *   { name: "10.0.0.1", node: "a" },
 *   { name: "10.0.0.2:11212", node: "b", weight: 2 }
 * ])
 * HashRing.get(ring, "user:42") // Option.some("a") or Option.some("b")
 * ```
 */
export const make = <N>(members: Iterable<MemberInput<N>>): HashRing<N> => {
  const list = Array.from(members, normalise)
  internal.validateMembers(list)
  return new HashRingImpl(list)
}

/**
 * A ring with no members; every lookup is `None`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const empty = <N = never>(): HashRing<N> => new HashRingImpl<N>([])

/**
 * Adds a member, or replaces the member of the same name.
 *
 * @since 0.1.0
 * @category combinators
 */
export const add: {
  <N>(member: MemberInput<N>): (self: HashRing<N>) => HashRing<N>
  <N>(self: HashRing<N>, member: MemberInput<N>): HashRing<N>
} = dual(2, <N>(self: HashRing<N>, member: MemberInput<N>): HashRing<N> => {
  const next = normalise(member)
  const index = self.members.findIndex((m) => m.name === next.name)
  const members = index === -1
    ? [...self.members, next]
    : self.members.map((m, i) => i === index ? next : m)
  internal.validateMembers(members)
  return new HashRingImpl(members)
})

/**
 * Removes the member of that name (the ring is returned unchanged when there is none). Its keys
 * move to the members that follow its points on the continuum; no other key moves.
 *
 * @since 0.1.0
 * @category combinators
 */
export const remove: {
  (name: string): <N>(self: HashRing<N>) => HashRing<N>
  <N>(self: HashRing<N>, name: string): HashRing<N>
} = dual(2, <N>(self: HashRing<N>, name: string): HashRing<N> => {
  if (!self.members.some((m) => m.name === name)) return self
  return new HashRingImpl(self.members.filter((m) => m.name !== name))
})

/**
 * Whether a member of that name is on the ring.
 *
 * @since 0.1.0
 * @category getters
 */
export const has: {
  (name: string): <N>(self: HashRing<N>) => boolean
  <N>(self: HashRing<N>, name: string): boolean
} = dual(2, <N>(self: HashRing<N>, name: string): boolean => self.members.some((m) => m.name === name))

/**
 * The ketama hash of a key: the first four bytes of its MD5 digest, read little-endian. Strings
 * are hashed as UTF-8.
 *
 * @since 0.1.0
 * @category hashing
 */
export const hash: (key: string | Uint8Array) => number = internal.hashKey

/**
 * The member that owns a precomputed {@link hash}.
 *
 * @since 0.1.0
 * @category getters
 */
export const getMemberByHash: {
  (hash: number): <N>(self: HashRing<N>) => Option.Option<Member<N>>
  <N>(self: HashRing<N>, hash: number): Option.Option<Member<N>>
} = dual(2, <N>(self: HashRing<N>, hash: number): Option.Option<Member<N>> => {
  const index = internal.lookup(impl(self).continuum, hash >>> 0)
  return index === -1 ? Option.none() : Option.some(self.members[index]!)
})

/**
 * The member that owns a key.
 *
 * @since 0.1.0
 * @category getters
 */
export const getMember: {
  (key: string | Uint8Array): <N>(self: HashRing<N>) => Option.Option<Member<N>>
  <N>(self: HashRing<N>, key: string | Uint8Array): Option.Option<Member<N>>
} = dual(
  2,
  <N>(self: HashRing<N>, key: string | Uint8Array): Option.Option<Member<N>> =>
    getMemberByHash(self, internal.hashKey(key))
)

/**
 * The node that owns a key, `None` on an empty ring.
 *
 * @since 0.1.0
 * @category getters
 */
export const get: {
  (key: string | Uint8Array): <N>(self: HashRing<N>) => Option.Option<N>
  <N>(self: HashRing<N>, key: string | Uint8Array): Option.Option<N>
} = dual(
  2,
  <N>(self: HashRing<N>, key: string | Uint8Array): Option.Option<N> =>
    Option.map(getMemberByHash(self, internal.hashKey(key)), (m) => m.node)
)

/**
 * The point values a member holds on the continuum, ascending (empty for an unknown name).
 * Useful to check the layout against another ketama implementation.
 *
 * @since 0.1.0
 * @category getters
 */
export const points: {
  (name: string): <N>(self: HashRing<N>) => ReadonlyArray<number>
  <N>(self: HashRing<N>, name: string): ReadonlyArray<number>
} = dual(2, <N>(self: HashRing<N>, name: string): ReadonlyArray<number> => {
  const index = self.members.findIndex((m) => m.name === name)
  if (index === -1) return []
  const { owners, points } = impl(self).continuum
  const out: Array<number> = []
  for (let i = 0; i < points.length; i++) if (owners[i] === index) out.push(points[i]!)
  return out
})

/**
 * The name libmemcached hashes for a memcached server: the host alone on the default port 11211,
 * `host:port` on any other port. Use it as the member name to get the same key placement as
 * libmemcached-based clients (PHP's Memcached, pylibmc, …).
 *
 * @since 0.1.0
 * @category hashing
 */
export const serverName: (host: string, port: number) => string = internal.serverName
