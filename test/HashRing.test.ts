import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import * as HashRing from "effect-cachekit/HashRing"
import HashRingJs from "hashring"
import { createHash } from "node:crypto"

const KEYS = Array.from({ length: 100_000 }, (_, i) => `user:${i}:profile`)

interface Server {
  readonly host: string
  readonly port: number
  readonly weight: number
}
const address = (s: Server) => `${s.host}:${s.port}`

/** Our ring over memcached servers, named the way libmemcached names them. */
const ours = (servers: ReadonlyArray<Server>) =>
  HashRing.make(servers.map((s) => ({ name: HashRing.serverName(s.host, s.port), node: address(s), weight: s.weight })))

/**
 * The `hashring` package in its libketama configuration: 40 digests × 4 points per server of
 * average weight, MD5, and the host alone hashed on the default port 11211 (as libmemcached does).
 */
const theirs = (servers: ReadonlyArray<Server>) =>
  new HashRingJs(
    Object.fromEntries(servers.map((s) => [address(s), s.weight])),
    "md5",
    { compatibility: "ketama", "default port": 11211 }
  )

// Each key's hash once, so routing 100,000 keys through several rings stays quick.
const HASHES = KEYS.map((k) => HashRing.hash(k))
const assignments = (ring: HashRing.HashRing<string>) =>
  HASHES.map((h) => Option.getOrThrow(HashRing.getMemberByHash(ring, h)).node)

describe("HashRing", () => {
  const three: ReadonlyArray<Server> = [
    { host: "127.0.0.1", port: 11211, weight: 1 },
    { host: "127.0.0.1", port: 11212, weight: 1 },
    { host: "10.0.0.7", port: 11211, weight: 1 }
  ]
  // Weights whose share × 40 × count is exact in binary, where the package's double arithmetic and
  // libmemcached's float arithmetic agree on every server's point count.
  const weighted: ReadonlyArray<Server> = [
    { host: "10.0.0.1", port: 11211, weight: 1 },
    { host: "10.0.0.2", port: 11211, weight: 2 },
    { host: "10.0.0.3", port: 11311, weight: 3 },
    { host: "cache-4.internal", port: 11211, weight: 2 }
  ]

  it("hashes keys as ketama does: the first four MD5 bytes, little-endian", () => {
    expect(Option.getOrThrow(HashRing.get(ours(three), KEYS[7]!))).toBe(assignments(ours(three))[7])
    const digest = createHash("md5").update("foo").digest()
    expect(HashRing.hash("foo")).toBe(digest.readUInt32LE(0))
    expect(HashRing.hash(new TextEncoder().encode("ключ"))).toBe(HashRing.hash("ключ"))
  })

  it("places 160 points per server, the same points as the hashring package", () => {
    const ring = ours(three)
    const reference = theirs(three).points()
    expect(ring.size).toBe(480)
    for (const server of three) {
      const mine = HashRing.points(ring, HashRing.serverName(server.host, server.port))
      expect(mine.length).toBe(160)
      expect(mine).toEqual(reference[address(server)])
    }
  })

  it("assigns 100,000 keys exactly as the hashring package (3 servers, equal weights)", () => {
    const reference = theirs(three)
    const got = assignments(ours(three))
    const mismatches = KEYS.filter((k, i) => reference.get(k) !== got[i]).length
    expect(mismatches).toBe(0)
    // every server gets a share
    expect(new Set(got).size).toBe(3)
  })

  it("assigns 100,000 keys exactly as the hashring package (4 servers, weights 1:2:3:2)", () => {
    const reference = theirs(weighted)
    const ring = ours(weighted)
    expect(weighted.map((s) => HashRing.points(ring, HashRing.serverName(s.host, s.port)).length)).toEqual([
      80,
      160,
      240,
      160
    ])
    const got = assignments(ring)
    const mismatches = KEYS.filter((k, i) => reference.get(k) !== got[i]).length
    expect(mismatches).toBe(0)
    // shares follow the weights (within 25%)
    const counts = new Map<string, number>()
    for (const s of got) counts.set(s, (counts.get(s) ?? 0) + 1)
    for (const server of weighted) {
      const share = (counts.get(address(server)) ?? 0) / KEYS.length
      const expected = server.weight / 8
      expect(share).toBeGreaterThan(expected * 0.75)
      expect(share).toBeLessThan(expected * 1.25)
    }
  })

  it("computes point counts in single precision like libmemcached (where the hashring package differs)", () => {
    // libmemcached: floorf((float)(pct * 160 / 4 * (float)n + 1e-10)) * 4. With 7 equal servers the
    // float product is exactly 40, while in doubles (the hashring package) it is 39.999…, i.e. 39.
    const seven = Array.from({ length: 7 }, (_, i) => ({ name: `10.0.0.${i + 1}`, node: i }))
    const ring = HashRing.make(seven)
    expect(ring.size).toBe(7 * 160)
    const packageRing = new HashRingJs(seven.map((s) => `${s.name}:11211`), "md5", {
      compatibility: "ketama",
      "default port": 11211
    })
    expect(Object.values(packageRing.points()).map((p) => p.length)).toEqual(Array(7).fill(156))
  })

  it("removing one of 5 servers moves only the keys it held (about 1/5), and adding it back restores all", () => {
    const five = Array.from({ length: 5 }, (_, i) => ({ host: "10.1.0.1", port: 11300 + i, weight: 1 }))
    const ring = ours(five)
    const before = assignments(ring)
    const removed = address(five[2]!)
    const without = HashRing.remove(ring, HashRing.serverName("10.1.0.1", 11302))
    expect(HashRing.has(without, HashRing.serverName("10.1.0.1", 11302))).toBe(false)
    const after = assignments(without)
    let moved = 0
    let movedFromOthers = 0
    let stillOnRemoved = 0
    for (let i = 0; i < KEYS.length; i++) {
      if (before[i] !== after[i]) {
        moved++
        if (before[i] !== removed) movedFromOthers++
      }
      if (after[i] === removed) stillOnRemoved++
    }
    // only the removed server's keys move, and none stays on it
    expect(movedFromOthers).toBe(0)
    expect(stillOnRemoved).toBe(0)
    const held = before.filter((s) => s === removed).length
    expect(moved).toBe(held)
    expect(moved / KEYS.length).toBeGreaterThan(0.2 * 0.6)
    expect(moved / KEYS.length).toBeLessThan(0.2 * 1.4)
    // the moved keys spread over the remaining servers rather than piling on one
    expect(new Set(after.filter((_, i) => before[i] === removed)).size).toBe(4)
    // immutability: the original ring still routes as before, and adding the server back restores it
    expect(assignments(ring)).toEqual(before)
    const back = HashRing.add(without, { name: HashRing.serverName("10.1.0.1", 11302), node: removed })
    expect(assignments(back)).toEqual(before)
  })

  it("removing a server agrees with the hashring package's remove", () => {
    const reference = theirs(three).remove(address(three[1]!))
    const ring = HashRing.remove(ours(three), HashRing.serverName(three[1]!.host, three[1]!.port))
    const got = assignments(ring)
    expect(KEYS.filter((k, i) => reference.get(k) !== got[i]).length).toBe(0)
  })

  it("wraps past the last point to the first, and finds exact point values", () => {
    const ring = HashRing.make([{ name: "a", node: "A" }, { name: "b", node: "B" }])
    const all = [
      ...HashRing.points(ring, "a").map((p) => [p, "A"] as const),
      ...HashRing.points(ring, "b").map((p) => [p, "B"] as const)
    ]
      .sort((x, y) => x[0] - y[0])
    const [, lowestOwner] = all[0]!
    const [highest, highestOwner] = all[all.length - 1]!
    expect(Option.map(HashRing.getMemberByHash(ring, 0xffff_ffff), (m) => m.node)).toEqual(
      highest === 0xffff_ffff ? Option.some(highestOwner) : Option.some(lowestOwner)
    )
    expect(Option.map(HashRing.getMemberByHash(ring, 0), (m) => m.node)).toEqual(Option.some(lowestOwner))
    for (const [point, owner] of all.slice(0, 20)) {
      expect(Option.map(HashRing.getMemberByHash(ring, point), (m) => m.node)).toEqual(Option.some(owner))
    }
    // a hash just above a point belongs to the next point's owner
    const [p0] = all[0]!
    const [, nextOwner] = all[1]!
    expect(Option.map(HashRing.getMemberByHash(ring, p0 + 1), (m) => m.node)).toEqual(
      all[1]![0] >= p0 + 1 ? Option.some(nextOwner) : Option.none()
    )
  })

  it("is generic over its nodes, and an empty ring finds nothing", () => {
    const stores = [{ id: 1 }, { id: 2 }]
    const ring = HashRing.make(stores.map((s) => ({ name: `store-${s.id}`, node: s })))
    const owner = Option.getOrThrow(HashRing.get(ring, "k"))
    expect(stores).toContain(owner)
    expect(Option.isNone(HashRing.get(HashRing.empty<{ id: number }>(), "k"))).toBe(true)
    expect(Option.isNone(HashRing.get(HashRing.remove(HashRing.remove(ring, "store-1"), "store-2"), "k"))).toBe(true)
    expect(HashRing.isHashRing(ring)).toBe(true)
    expect(String(ring)).toContain("store-1")
  })

  it("rejects nonsense members with InvalidOptions", () => {
    expect(() => HashRing.make([{ name: "a", node: 1, weight: 0 }])).toThrow(/weight/)
    expect(() => HashRing.make([{ name: "a", node: 1, weight: 1.5 }])).toThrow(/weight/)
    expect(() => HashRing.make([{ name: "a", node: 1 }, { name: "a", node: 2 }])).toThrow(/duplicate/)
    try {
      HashRing.make([{ name: "a", node: 1, weight: -1 }])
      expect.unreachable()
    } catch (e) {
      expect((e as { _tag?: string })._tag).toBe("InvalidOptions")
    }
  })
})
