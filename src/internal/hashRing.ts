import { createHash } from "node:crypto"
import { check } from "./options.js"

/**
 * libmemcached's ketama constants: 160 points per server of average weight, made of 40 MD5 digests
 * that each yield 4 points.
 * @internal
 */
export const POINTS_PER_SERVER = 160
/** @internal */
export const POINTS_PER_HASH = 4

/** @internal */
export interface Member<N> {
  readonly name: string
  readonly node: N
  readonly weight: number
}

/** @internal */
export interface Continuum {
  /** Sorted point values (unsigned 32-bit). */
  readonly points: Uint32Array
  /** For each point, the index of its member. */
  readonly owners: Uint32Array
}

/** @internal */
export const md5 = (input: string | Uint8Array): Buffer => createHash("md5").update(input).digest()

/**
 * The 32-bit ketama value of one MD5 digest: bytes `4a .. 4a+3`, little-endian, as
 * libmemcached's `ketama_server_hash(key, len, alignment)`.
 * @internal
 */
export const digestPoint = (digest: Uint8Array, alignment: number): number => {
  const o = alignment * 4
  return ((digest[o + 3]! << 24) | (digest[o + 2]! << 16) | (digest[o + 1]! << 8) | digest[o]!) >>> 0
}

/**
 * The ketama hash of a key: the first four bytes of its MD5 digest, little-endian (libmemcached's
 * `hashkit_md5`).
 * @internal
 */
export const hashKey = (key: string | Uint8Array): number => digestPoint(md5(key), 0)

/**
 * How many points a member gets. libmemcached computes this in single-precision floats, and the
 * rounding matters: in doubles, 7 servers of equal weight would get 39 digests each instead of 40.
 * `Math.fround` reproduces each float operation of
 * `floor((float)(pct * 160 / 4 * (float)live + 0.0000000001)) * 4`.
 * @internal
 */
export const pointsFor = (weight: number, totalWeight: number, liveServers: number): number => {
  const f = Math.fround
  const pct = f(f(weight) / f(totalWeight))
  const perHashGroups = f(f(f(pct * POINTS_PER_SERVER) / POINTS_PER_HASH) * f(liveServers))
  return Math.floor(f(perHashGroups + 0.0000000001)) * POINTS_PER_HASH
}

/** @internal */
export const validateMembers = <N>(members: ReadonlyArray<Member<N>>): void => {
  const names = new Set<string>()
  for (const member of members) {
    check(typeof member.name === "string", "HashRing", "name", "a member name must be a string")
    check(
      Number.isInteger(member.weight) && member.weight >= 1 && member.weight <= 0xffff_ffff,
      "HashRing",
      "weight",
      `the weight of ${JSON.stringify(member.name)} must be a positive integer, got ${member.weight}`
    )
    check(!names.has(member.name), "HashRing", "name", `duplicate member ${JSON.stringify(member.name)}`)
    names.add(member.name)
  }
}

/**
 * Builds the continuum exactly as libmemcached's weighted ketama does: for member `m` with `p`
 * points, the digests of `"<name>-0" … "<name>-(p/4 - 1)"`, 4 points from each, all sorted by value.
 * @internal
 */
export const buildContinuum = <N>(members: ReadonlyArray<Member<N>>): Continuum => {
  const total = members.reduce((sum, m) => sum + m.weight, 0)
  const counts = members.map((m) => pointsFor(m.weight, total, members.length))
  const size = counts.reduce((a, b) => a + b, 0)
  const values = new Uint32Array(size)
  const owners = new Uint32Array(size)
  let at = 0
  for (let m = 0; m < members.length; m++) {
    const name = members[m]!.name
    const groups = counts[m]! / POINTS_PER_HASH
    for (let i = 0; i < groups; i++) {
      const digest = md5(`${name}-${i}`)
      for (let a = 0; a < POINTS_PER_HASH; a++) {
        values[at] = digestPoint(digest, a)
        owners[at] = m
        at++
      }
    }
  }
  // Sort point indices by value; ties (rare: 32-bit values) fall back to member order so the
  // ring does not depend on the sort's stability.
  const order = Array.from({ length: size }, (_, i) => i)
  order.sort((x, y) => (values[x]! - values[y]!) || (owners[x]! - owners[y]!))
  const points = new Uint32Array(size)
  const sortedOwners = new Uint32Array(size)
  for (let i = 0; i < size; i++) {
    points[i] = values[order[i]!]!
    sortedOwners[i] = owners[order[i]!]!
  }
  return { points, owners: sortedOwners }
}

/**
 * Index of the member owning `hash`: the first point whose value is `>= hash`, wrapping to the
 * first point past the end (libmemcached's `dispatch_host`). Binary search, O(log n). -1 when empty.
 * @internal
 */
export const lookup = (continuum: Continuum, hash: number): number => {
  const points = continuum.points
  const n = points.length
  if (n === 0) return -1
  let lo = 0
  let hi = n
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (points[mid]! < hash) lo = mid + 1
    else hi = mid
  }
  return continuum.owners[lo === n ? 0 : lo]!
}

/**
 * The name libmemcached hashes for a server's points: the host alone on the default port 11211,
 * `host:port` otherwise.
 * @internal
 */
export const serverName = (host: string, port: number): string => port === 11211 ? host : `${host}:${port}`
