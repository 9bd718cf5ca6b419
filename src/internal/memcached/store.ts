/**
 * The memcached `CacheStore`: routes each key to a server on a ketama ring, runs multi-key
 * operations as one pipelined batch per server, takes servers that keep failing out of the ring
 * and puts them back once a probe succeeds, and implements `clear` with a per-prefix generation.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberSet from "effect/FiberSet"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { EncodeError, StoreError, UnsupportedCapability, ValueTooLarge } from "../../CacheError.js"
import type { StoreFailure } from "../../CacheError.js"
import * as CacheStore from "../../CacheStore.js"
import * as HashRing from "../../HashRing.js"
import type * as PublicApi from "../../MemcachedStore.js"
import * as CircuitBreaker from "../circuitBreaker.js"
import { check, optionalDuration, optionalInteger } from "../options.js"
import { fenceHolds, invalidTtl, leaseMillis, ttlMillis, versionOf } from "../store.js"
import * as Connection from "./connection.js"
import * as Generation from "./generation.js"
import * as Keys from "./keys.js"
import * as Protocol from "./protocol.js"

/** @internal */
export type Options = PublicApi.Options

/** @internal */
export interface ServerAddress {
  readonly host: string
  readonly port: number
}

/**
 * memcached's per-item overhead on top of key and value: the item header (48 bytes, 56 with CAS),
 * the data block's `\r\n`, and a margin for the header's alignment.
 * @internal
 */
export const ITEM_OVERHEAD = 66

/** The default item size limit of memcached (`-I 1m`). @internal */
export const DEFAULT_ITEM_SIZE = 1024 * 1024

/** Wire keys remembered for reads (see `wireOf`). */
const WIRE_KEYS = 4096

/** Requests in flight on a connection before the pool spills over to the next one. @internal */
const SPILL_AFTER = 256

const NO_SERVER = "no memcached server is available: every server is out of the ring"

/** Relative TTLs above 30 days are read by memcached as unix times. @internal */
const MAX_RELATIVE_TTL = 60 * 60 * 24 * 30

/** memcached parses TTL tokens as signed 32-bit integers. @internal */
const MAX_EXPTIME = 0x7fff_ffff

/** A value read's answer as the store reads it: a lease's stub (empty, marked `W`/`Z`) is no entry. */
const entryValue = (value: Uint8Array | null, marks: number): Uint8Array | null =>
  value !== null && value.byteLength === 0 && (marks & (Protocol.MARK_WIN | Protocol.MARK_WIN_SENT)) !== 0
    ? null
    : value

/** `entryValue` of a response: null for a miss, a stub, or anything but a value. */
const entryOf = (r: Protocol.Response): Uint8Array | null =>
  r._tag === "VA" ? entryValue(r.value, Protocol.marksOf(r.flags)) : null

/** Whether a response is a lease's stub: an item that reads as no entry. */
const isStub = (r: Protocol.Response): boolean => r._tag === "VA" && entryOf(r) === null

/** `R` of a lease on an item that exists: any remaining TTL is below it, so the first asker wins. */
const RECACHE_ALWAYS = MAX_EXPTIME

/** A lease token: the CAS of the item it was won on. */
const casOf = (token: string): bigint | undefined => /^[0-9]{1,20}$/.test(token) ? BigInt(token) : undefined

/** Parses `host:port`, `host` (port 11211) and `[ipv6]:port`. @internal */
export const parseServer = (server: string): ServerAddress | undefined => {
  const s = server.trim()
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(s)
  const plain = /^([^:\s[\]]+)(?::(\d+))?$/.exec(s)
  const match = bracket ?? plain
  if (match === null) return undefined
  const port = match[2] === undefined ? 11211 : Number(match[2])
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined
  return { host: match[1]!, port }
}

/** Rejects nonsense options, synchronously. @internal */
export const validate = (options: Options): void => {
  const c = "MemcachedStore"
  check(
    typeof options === "object" && options !== null && Array.isArray(options.servers),
    c,
    "servers",
    "servers must be a list of \"host:port\" strings"
  )
  check(options.servers.length > 0, c, "servers", "servers must name at least one server")
  const seen = new Set<string>()
  for (const server of options.servers) {
    const address = typeof server === "string" ? parseServer(server) : undefined
    check(address !== undefined, c, "servers", `cannot read server ${JSON.stringify(server)} (expected "host:port")`)
    const label = `${address!.host}:${address!.port}`
    check(!seen.has(label), c, "servers", `server ${label} is listed twice`)
    seen.add(label)
  }
  if (options.weights !== undefined) {
    check(
      options.weights.length === options.servers.length,
      c,
      "weights",
      `weights must have one entry per server (${options.servers.length}), got ${options.weights.length}`
    )
    for (const w of options.weights) {
      check(Number.isInteger(w) && w >= 1, c, "weights", `weights must be positive integers, got ${w}`)
    }
  }
  if (options.prefix !== undefined) {
    check(typeof options.prefix === "string", c, "prefix", "prefix must be a string")
    check(
      Buffer.byteLength(Keys.escapePrefix(options.prefix)) <= Keys.MAX_PREFIX_BYTES,
      c,
      "prefix",
      `prefix must be at most ${Keys.MAX_PREFIX_BYTES} bytes`
    )
  }
  optionalInteger(c, "poolSize", options.poolSize, 1, 64)
  if (options.maxValueBytes !== undefined) {
    check(
      Number.isInteger(options.maxValueBytes) && options.maxValueBytes > ITEM_OVERHEAD + Keys.MAX_KEY_BYTES,
      c,
      "maxValueBytes",
      `maxValueBytes must be an integer above ${ITEM_OVERHEAD + Keys.MAX_KEY_BYTES} (memcached's item size limit, -I)`
    )
  }
  optionalDuration(c, "timeout", options.timeout)
  optionalDuration(c, "connectTimeout", options.connectTimeout)
  optionalDuration(c, "generationRefresh", options.generationRefresh)
  optionalDuration(c, "circuitBreaker.resetAfter", options.circuitBreaker?.resetAfter)
  optionalDuration(c, "reconnect.base", options.reconnect?.base)
  optionalDuration(c, "reconnect.max", options.reconnect?.max)
  optionalInteger(c, "circuitBreaker.failureThreshold", options.circuitBreaker?.failureThreshold, 1)
}

/**
 * The TTL token for a TTL in milliseconds (`undefined`: no expiry, `0`). Sub-second TTLs are
 * rounded up to 1 s, never down to 0 (which memcached reads as "forever"); TTLs over 30 days
 * are sent as unix time, which memcached requires, and end at the protocol's last second (2038)
 * at the latest: a TTL is shortened, never turned into "no expiry".
 * @internal
 */
export const exptime = (ttlMs: number | undefined, nowMs: number): number => {
  if (ttlMs === undefined) return 0
  const seconds = Math.max(1, Math.ceil(ttlMs / 1000))
  if (seconds <= MAX_RELATIVE_TTL) return seconds
  return Math.min(Math.floor(nowMs / 1000) + seconds, MAX_EXPTIME)
}

interface Server {
  readonly label: string
  readonly name: string
  readonly weight: number
  readonly connections: ReadonlyArray<Connection.Connection>
  readonly breaker: CircuitBreaker.CircuitBreaker
  inRing: boolean
  /** Answers received from the server (all connections) when the last failure was recorded. */
  answeredAtFailure: number
  /** Records a failed call while the breaker is closed (made once per server). */
  onFailure: (e: StoreError) => Effect.Effect<never, StoreError>
  /** Hands a value read's answer to a direct reader, while the breaker is closed (made once per server). */
  onRead: Connection.ValueReply<CacheStore.DirectReply>
  /** Resumes a `get` with a value read's answer, while the breaker is closed (made once per server). */
  onGet: Connection.ValueReply<(effect: Effect.Effect<Option.Option<CacheStore.Value>, StoreError>) => void>
}

const ringChanges = Metric.counter("effect_cachekit_memcached_ring_changes", {
  description: "Servers taken out of (change=removed) or put back into (change=restored) the memcached ring",
  incremental: true
})
const ringSize = Metric.gauge("effect_cachekit_memcached_ring_servers", {
  description: "memcached servers currently in the ring"
})

/** A memcached store with what the tests and the docs look at. @internal */
export interface MemcachedStore extends CacheStore.Service {
  readonly prefix: string
  /** Labels (`host:port`) of the servers currently in the ring. */
  readonly liveServers: () => ReadonlyArray<string>
  /** The label of the server a key is routed to now, if any. */
  readonly serverFor: (key: string) => Option.Option<string>
  /** The current namespace generation of the prefix (base 36), once read. */
  readonly generation: () => string | undefined
}

/** @internal */
export const make = (options: Options): Effect.Effect<MemcachedStore, never, Scope.Scope> =>
  Effect.gen(function*() {
    const name = options.name ?? "memcached"
    const prefix = options.prefix ?? "cachekit"
    const escaped = Keys.escapePrefix(prefix)
    const poolSize = options.poolSize ?? 2
    const maxItem = options.maxValueBytes ?? DEFAULT_ITEM_SIZE
    const failover = options.failover ?? true
    const resetAfter = options.circuitBreaker?.resetAfter ?? "2 seconds"
    const refresh = options.generationRefresh ?? "1 second"
    const reconnect = Schedule.exponential(options.reconnect?.base ?? "50 millis").pipe(
      Schedule.union(Schedule.spaced(options.reconnect?.max ?? "1 second"))
    )
    const clock = yield* Effect.clock
    const background = yield* FiberSet.make()
    const storeLabel = [MetricLabel.make("store", name)]

    const servers: Array<Server> = []
    for (const [i, spec] of options.servers.entries()) {
      const address = parseServer(spec)!
      const label = `${address.host}:${address.port}`
      const connections: Array<Connection.Connection> = []
      for (let c = 0; c < poolSize; c++) {
        connections.push(
          yield* Connection.make({
            host: address.host,
            port: address.port,
            timeout: options.timeout ?? "1 second",
            connectTimeout: options.connectTimeout ?? "1 second",
            reconnect,
            label,
            store: name
          })
        )
      }
      servers.push({
        label,
        name: HashRing.serverName(address.host, address.port),
        weight: options.weights?.[i] ?? 1,
        connections,
        breaker: yield* CircuitBreaker.make({
          name: `memcached ${label}`,
          failureThreshold: options.circuitBreaker?.failureThreshold ?? 3,
          resetAfter
        }),
        inRing: true,
        answeredAtFailure: 0,
        onFailure: undefined as never,
        onRead: undefined as never,
        onGet: undefined as never
      })
    }

    let ring = HashRing.make(servers.map((s) => ({ name: s.name, node: s, weight: s.weight })))
    let only: Server | undefined = servers.length === 1 ? servers[0] : undefined
    const ringMembers = () => servers.filter((s) => s.inRing)
    /** Moves whenever the ring's members change (part of the fence's epoch). */
    let ringVersion = 0
    const rebuild = () => {
      ringVersion++
      const live = ringMembers()
      ring = HashRing.make(live.map((s) => ({ name: s.name, node: s, weight: s.weight })))
      only = live.length === 1 ? live[0] : undefined
      ringSize.unsafeUpdate(live.length, storeLabel)
    }
    ringSize.unsafeUpdate(servers.length, storeLabel)

    const route = (key: Keys.WireKey): Server | undefined => {
      if (only !== undefined) return only
      // the key's point is the same on every ring: the MD5 is taken once per wire key
      const member = HashRing.getMemberByHash(ring, key.point ??= HashRing.hash(key.hashInput))
      return Option.isSome(member) ? member.value.node : undefined
    }

    /**
     * Fill first: requests stay on the first open connection, where they share writes, until it
     * has `SPILL_AFTER` requests in flight; past that they go to the least busy open connection.
     * With none open, a connecting one queues them; with none at all, the call fails fast.
     */
    const pick = (server: Server): Connection.Connection => {
      const connections = server.connections
      if (connections.length === 1) return connections[0]!
      let best: Connection.Connection | undefined
      let fallback: Connection.Connection | undefined
      for (const c of connections) {
        const state = c.state()
        if (state === "open") {
          const load = c.inFlight()
          if (load < SPILL_AFTER) return c
          if (best === undefined || load < best.inFlight()) best = c
        } else if (state === "connecting" && fallback === undefined) {
          fallback = c
        }
      }
      return best ?? fallback ?? connections[0]!
    }

    const storeError = (operation: string, reason: StoreError["reason"], detail: string) =>
      new StoreError({ store: name, operation, reason, detail })

    const noServer = (operation: string) => Effect.fail(storeError(operation, "unavailable", NO_SERVER))

    const countsAgainstServer = (e: StoreError): boolean =>
      (e.reason === "connection" || e.reason === "timeout" || e.reason === "protocol") && !Connection.isCollateral(e)

    // -------------------------------------------------------------------------------------------
    // Failover: a server whose breaker opens leaves the ring; a probe puts it back.
    // -------------------------------------------------------------------------------------------

    const probe = (server: Server): Effect.Effect<void, StoreError> =>
      Effect.asVoid(pick(server).execute({ _tag: "mn" }, "probe"))

    const rejoin = (server: Server): Effect.Effect<void> =>
      Effect.gen(function*() {
        while (true) {
          yield* Effect.sleep(resetAfter)
          const exit = yield* Effect.exit(server.breaker.run(probe(server), "probe", countsAgainstServer))
          if (exit._tag === "Success" && server.breaker.state() === "closed") {
            // back into the ring only together with a new generation (see `readmit`)
            const readmitted = yield* Effect.either(readmit(server))
            if (Either.isRight(readmitted)) break
            yield* Effect.logWarning("memcached server answered the probe but not the generation; it stays out").pipe(
              Effect.annotateLogs({ server: server.label, error: readmitted.left.message })
            )
          }
        }
        ringChanges.unsafeUpdate(1, [
          ...storeLabel,
          MetricLabel.make("server", server.label),
          MetricLabel.make("change", "restored")
        ])
        yield* Effect.logInfo("memcached server back in the ring, under a new generation").pipe(
          Effect.annotateLogs({
            server: server.label,
            servers: String(ringMembers().length),
            generation: generation ?? ""
          })
        )
      })

    const afterFailure = (server: Server): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (!failover || !server.inRing || server.breaker.state() !== "open") return Effect.void
        server.inRing = false
        rebuild()
        ringChanges.unsafeUpdate(1, [
          ...storeLabel,
          MetricLabel.make("server", server.label),
          MetricLabel.make("change", "removed")
        ])
        return Effect.zipRight(
          Effect.logWarning("memcached server taken out of the ring; its keys go to the next servers").pipe(
            Effect.annotateLogs({
              server: server.label,
              servers: String(ringMembers().length),
              retryAfter: Duration.format(Duration.decode(resetAfter))
            })
          ),
          FiberSet.run(background, rejoin(server))
        )
      }).pipe(Effect.asVoid)

    const answeredBy = (server: Server): number => {
      let n = 0
      for (const c of server.connections) n += c.answered()
      return n
    }

    for (const server of servers) {
      server.onFailure = (e) => {
        if (!countsAgainstServer(e)) return Effect.fail(e)
        // Successes are not reported one by one (that would cost every call a step): a failure
        // first tells the breaker whether the server answered anything since the previous one,
        // which is what resets a run of consecutive failures.
        const answered = answeredBy(server)
        const answeredSince = answered > server.answeredAtFailure
        server.answeredAtFailure = answered
        return (answeredSince
          ? Effect.zipRight(server.breaker.recordSuccess, server.breaker.recordFailure)
          : server.breaker.recordFailure).pipe(
            Effect.zipRight(afterFailure(server)),
            Effect.zipRight(Effect.fail(e))
          )
      }
      server.onRead = (reply, value, marks, error) => {
        if (error === undefined) reply(entryValue(value, marks), undefined, undefined)
        else reply(null, error, Effect.ignore(Effect.suspend(() => server.onFailure(error))))
      }
      server.onGet = (resume, value, marks, error) => {
        if (error !== undefined) return resume(Effect.suspend(() => server.onFailure(error)))
        const stored = entryValue(value, marks)
        resume(Effect.succeed(stored === null ? Option.none() : Option.some(stored)))
      }
    }

    /**
     * Runs a call against a server through its breaker. While the breaker is closed (the hot
     * path) only failures cost anything: they are recorded as they happen. Otherwise `run`
     * decides whether the call may go through as a probe. Callers are inside a suspended effect,
     * so the connection is picked when the call runs.
     */
    const guard = <A>(
      server: Server,
      operation: string,
      effect: Effect.Effect<A, StoreError>
    ): Effect.Effect<A, StoreError> =>
      server.breaker.state() === "closed"
        ? Effect.catchAll(effect, server.onFailure)
        : server.breaker.run(effect, operation, countsAgainstServer).pipe(Effect.tapError(() => afterFailure(server)))

    const execute = (server: Server, request: Protocol.Request, operation: string) =>
      guard(server, operation, pick(server).execute(request, operation))

    const pipeline = (server: Server, requests: ReadonlyArray<Protocol.Request>, operation: string) =>
      guard(server, operation, pick(server).pipeline(requests, operation))

    // -------------------------------------------------------------------------------------------
    // Generation: a per-prefix number that is part of every key. Every server holds a copy; this
    // process adopts only ever higher ones, and moves to a new one on `clear` and whenever a server
    // comes back into the ring (so that nothing it held before it left is read again).
    // -------------------------------------------------------------------------------------------

    const generationKey = Keys.wireKey(`${escaped}:gen`)!
    let current: bigint | undefined
    let base: string | undefined
    let generation: string | undefined
    /** Moves to `g` when it is ahead of the current generation; an older one is ignored. */
    const adopt = (g: bigint): void => {
      if (current !== undefined && g <= current) return
      current = g
      generation = g.toString(36)
      base = `${escaped}:${generation}:`
      wires = new Map()
    }

    /**
     * The wire keys of keys read recently under the current base, so a read of a key read before
     * builds no key string and scans none: a Map lookup on a string whose hash is usually known
     * already. Emptied when the base changes, and when full.
     */
    let wires = new Map<string, Keys.WireKey>()
    const wireOf = (b: string, key: string): Keys.WireKey => {
      if (b !== base) return Keys.dataKey(b, key)
      let wire = wires.get(key)
      if (wire === undefined) {
        wire = Keys.dataKey(b, key)
        if (wires.size >= WIRE_KEYS) wires = new Map()
        wires.set(key, wire)
      }
      return wire
    }

    /** Settles the copies on `targets` (see `Generation.settle`); adopting the result is the caller's. */
    const settle = (targets: ReadonlyArray<Server>, bump: boolean, operation: string) =>
      targets.length === 0 ? noServer(operation) : Generation.settle({
        servers: targets,
        run: (server) => (request) => execute(server, request, operation),
        key: generationKey,
        current,
        bump,
        seed: () => BigInt(clock.unsafeCurrentTimeMillis()),
        fail: (reason, detail) => storeError(operation, reason, detail)
      })

    // Reads, clears and moves on rejoin take turns, so none of them adopts on the strength of a
    // read that another one has overtaken; `adopt` refuses to go backwards in any case.
    const generationLock = yield* Effect.makeSemaphore(1)
    const exclusive = generationLock.withPermits(1)

    /**
     * Reads the copies of the servers in the ring and adopts the highest, raising the copies below
     * it; a first generation (none anywhere) starts from the clock, above every earlier one.
     */
    const loadGeneration: Effect.Effect<string, StoreError> = Effect.suspend(() =>
      Effect.map(settle(ringMembers(), false, "generation"), (settled) => {
        adopt(settled.generation)
        return base!
      })
    )

    const ensureBase: Effect.Effect<string, StoreError> = Effect.suspend(() =>
      base !== undefined
        ? Effect.succeed(base)
        : exclusive(Effect.suspend(() => base !== undefined ? Effect.succeed(base) : loadGeneration))
    )

    /**
     * Puts a server whose probe succeeded back into the ring, under a generation newer than any
     * seen so far, written to its copy and to the others first: an entry it held from before it
     * left (possibly older than what was written on the other servers meanwhile) is never read.
     * The new generation and the new ring are taken in one step, so no key is ever read or
     * written under that generation with the smaller ring.
     */
    const readmit = (server: Server): Effect.Effect<void, StoreError> =>
      exclusive(Effect.suspend(() =>
        Effect.flatMap(settle([...ringMembers(), server], true, "rejoin"), (settled) => {
          if (!settled.holders.includes(server)) {
            return Effect.fail(
              settled.error ?? storeError("rejoin", "command", "the server did not take the new generation")
            )
          }
          adopt(settled.generation)
          server.inRing = true
          rebuild()
          return Effect.void
        })
      ))

    /**
     * Runs `f` with the current key base, lazily: the key, its server and the generation are
     * resolved when the effect runs (so a retried effect follows failover and `clear`).
     */
    const withBase = <A, E>(f: (base: string) => Effect.Effect<A, E>): Effect.Effect<A, E | StoreError> =>
      Effect.suspend(() => base !== undefined ? f(base) : Effect.flatMap(ensureBase, f))

    // -------------------------------------------------------------------------------------------
    // Operations
    // -------------------------------------------------------------------------------------------

    const bytesOf = (key: string, value: CacheStore.Value, wire: Keys.WireKey): Uint8Array | StoreFailure => {
      if (!(value instanceof Uint8Array)) {
        return new EncodeError({
          namespace: prefix,
          key,
          detail: "the memcached store holds bytes (Uint8Array) only; encode the value first"
        })
      }
      const keyBytes = wire.base64 ? (wire.hashInput as Uint8Array).byteLength : wire.token.length
      const limit = maxItem - ITEM_OVERHEAD - keyBytes
      if (value.byteLength > limit) return new ValueTooLarge({ store: name, key, size: value.byteLength, limit })
      return value
    }

    const unexpected = (operation: string, response: Protocol.Response) =>
      Effect.fail(storeError(operation, "protocol", `unexpected answer ${response._tag}`))

    // Answer handlers made once, not per call: the hot path allocates as little as it can.
    // a lease's stub (an empty item a vivifying `mg … N` created, flagged `W`/`Z`) is no entry
    const toOption = (r: Protocol.Response): Option.Option<CacheStore.Value> => Option.fromNullable(entryOf(r))
    const valueOf = (r: Protocol.Response): CacheStore.Value | null => entryOf(r)
    const stored = (operation: string) => (r: Protocol.Response): Effect.Effect<void, StoreError> =>
      r._tag === "HD" ? Effect.void : unexpected(operation, r)
    const storedOrAbsent = (operation: string) => (r: Protocol.Response): Effect.Effect<void, StoreError> =>
      r._tag === "HD" || r._tag === "NF" ? Effect.void : unexpected(operation, r)
    const existed = (operation: string) => (r: Protocol.Response): Effect.Effect<boolean, StoreError> =>
      r._tag === "HD"
        ? Effect.succeed(true)
        : r._tag === "NF" || r._tag === "EN"
        ? Effect.succeed(false)
        : unexpected(operation, r)
    const added = (r: Protocol.Response): Effect.Effect<boolean, StoreError> =>
      r._tag === "HD" ? Effect.succeed(true) : r._tag === "NS" ? Effect.succeed(false) : unexpected("setIfAbsent", r)
    const onSet = stored("set")
    const onSetDelete = storedOrAbsent("set")
    const onDelete = existed("delete")
    const onExpire = existed("expire")

    const getWith = (b: string, key: string): Effect.Effect<Option.Option<CacheStore.Value>, StoreError> => {
      const wire = wireOf(b, key)
      const server = route(wire)
      if (server === undefined) return noServer("get")
      // While the breaker is closed, the failure handler rides along with the request (no extra step).
      if (server.breaker.state() === "closed") {
        return Effect.async((resume) => pick(server).readValue(wire, "get", resume, server.onGet, false))
      }
      const request: Protocol.MetaGet = { _tag: "mg", key: wire, value: true }
      return guard(server, "get", pick(server).executeWith(request, "get", toOption))
    }
    const get = (key: string): Effect.Effect<Option.Option<CacheStore.Value>, StoreFailure> =>
      Effect.suspend(() => base !== undefined ? getWith(base, key) : Effect.flatMap(ensureBase, (b) => getWith(b, key)))

    /**
     * `get` as a direct read: the reply is given from the callback that completes the request, so
     * a reader decides there and resumes once. The breaker is consulted and told the outcome
     * synchronously, as `get` does through its effects; what those effects log, or do to the
     * ring, runs in the reader's fiber before it acts on the reply (`before`).
     */
    const readWith = (b: string, key: string, reply: CacheStore.DirectReply): void => {
      const wire = wireOf(b, key)
      const server = route(wire)
      if (server === undefined) {
        return reply(null, storeError("get", "unavailable", NO_SERVER), undefined)
      }
      const breaker = server.breaker
      if (breaker.state() === "closed") return pick(server).readValue(wire, "get", reply, server.onRead, true)
      const request: Protocol.MetaGet = { _tag: "mg", key: wire, value: true }
      if (!breaker.admit()) return reply(null, breaker.refused("get"), afterFailure(server))
      // the probe of a breaker that is not closed: its outcome closes or opens it again
      pick(server).read(request, "get", (response, error) => {
        if (error === undefined || !countsAgainstServer(error)) breaker.succeeded()
        else breaker.failed(1)
        const log = breaker.hasLog() ? breaker.flushLog : undefined
        if (error === undefined) return reply(valueOf(response!), undefined, log)
        reply(null, error, log === undefined ? afterFailure(server) : Effect.zipRight(log, afterFailure(server)))
      })
    }
    const runtime = yield* Effect.runtime<never>()
    const directRead: CacheStore.DirectRead = {
      _tag: "Callback",
      get,
      read: (key, reply) => {
        if (base !== undefined) return readWith(base, key, reply)
        // No generation yet (no server answered so far): read it first, as `get` does. It is the
        // store's work, not the reader's, so it runs on the store's runtime.
        Runtime.runCallback(runtime)(ensureBase, {
          onExit: (exit) => {
            if (exit._tag === "Success") return readWith(exit.value, key, reply)
            const error = exit.cause._tag === "Fail"
              ? exit.cause.error
              : storeError("get", "unavailable", "the key generation could not be read")
            reply(null, error, undefined)
          }
        })
      }
    }

    /** Keys grouped by server: positions into the caller's array, per server. */
    const group = <A>(
      items: ReadonlyArray<A>,
      keyOf: (item: A) => Keys.WireKey
    ): Map<Server, Array<number>> | undefined => {
      const groups = new Map<Server, Array<number>>()
      for (let i = 0; i < items.length; i++) {
        const server = route(keyOf(items[i]!))
        if (server === undefined) return undefined
        const list = groups.get(server)
        if (list === undefined) groups.set(server, [i])
        else list.push(i)
      }
      return groups
    }

    const getMany = (
      keys: ReadonlyArray<string>
    ): Effect.Effect<Array<Option.Option<CacheStore.Value>>, StoreFailure> =>
      keys.length === 0 ? Effect.succeed([]) : withBase((b) => {
        const wireKeys = keys.map((k) => wireOf(b, k))
        const groups = group(wireKeys, (w) => w)
        if (groups === undefined) return noServer("getMany")
        const result: Array<Option.Option<CacheStore.Value>> = new Array(keys.length)
        return Effect.forEach(
          groups,
          ([server, positions]) => {
            const requests = positions.map((i): Protocol.Request => ({
              _tag: "mg",
              key: wireKeys[i]!,
              value: true,
              quiet: true
            }))
            return Effect.map(pipeline(server, requests, "getMany"), (responses) => {
              for (let j = 0; j < positions.length; j++) result[positions[j]!] = toOption(responses[j]!)
            })
          },
          { concurrency: "unbounded", discard: true }
        ).pipe(
          Effect.as(result),
          Effect.withSpan("MemcachedStore.getMany", {
            attributes: { store: name, keys: keys.length, servers: groups.size }
          })
        )
      })

    /** The request that writes (or, for an expired TTL, removes) one entry. */
    const writeRequest = (
      wire: Keys.WireKey,
      value: Uint8Array,
      ttl: number | undefined,
      quiet: boolean,
      now: number
    ): Protocol.Request =>
      ttl !== undefined && ttl <= 0
        ? { _tag: "md", key: wire, quiet }
        : ttl === undefined
        ? { _tag: "ms", key: wire, value, quiet }
        : { _tag: "ms", key: wire, value, ttl: exptime(ttl, now), quiet }

    const set = (
      key: string,
      value: CacheStore.Value,
      ttl?: Duration.DurationInput
    ): Effect.Effect<void, StoreFailure> =>
      withBase((b) => {
        const wire = Keys.dataKey(b, key)
        const bytes = bytesOf(key, value, wire)
        if (!(bytes instanceof Uint8Array)) return Effect.fail(bytes)
        const ms = ttlMillis(ttl)
        if (Number.isNaN(ms)) return Effect.fail(invalidTtl(name, "set", ttl))
        const server = route(wire)
        if (server === undefined) return noServer("set")
        const request = writeRequest(wire, bytes, ms, false, clock.unsafeCurrentTimeMillis())
        return Effect.flatMap(execute(server, request, "set"), request._tag === "md" ? onSetDelete : onSet)
      })

    const setMany = (entries: ReadonlyArray<CacheStore.SetEntry>): Effect.Effect<void, StoreFailure> =>
      entries.length === 0 ? Effect.void : withBase((b) => {
        const now = clock.unsafeCurrentTimeMillis()
        const requests: Array<Protocol.MetaSet | Protocol.MetaDelete> = []
        // Check every entry before sending any, so a bad one fails the call with nothing written.
        for (const entry of entries) {
          const wire = Keys.dataKey(b, entry.key)
          const bytes = bytesOf(entry.key, entry.value, wire)
          if (!(bytes instanceof Uint8Array)) return Effect.fail(bytes)
          const ms = ttlMillis(entry.ttl)
          if (Number.isNaN(ms)) return Effect.fail(invalidTtl(name, "setMany", entry.ttl))
          requests.push(writeRequest(wire, bytes, ms, true, now) as Protocol.MetaSet)
        }
        const groups = group(requests, (r) => r.key)
        if (groups === undefined) return noServer("setMany")
        return Effect.forEach(
          groups,
          ([server, positions]) =>
            Effect.flatMap(pipeline(server, positions.map((i) => requests[i]!), "setMany"), (responses) => {
              for (let j = 0; j < responses.length; j++) {
                const r = responses[j]!
                const isDelete = requests[positions[j]!]!._tag === "md"
                if (!(r._tag === "HD" || (isDelete && r._tag === "NF"))) return unexpected("setMany", r)
              }
              return Effect.void
            }),
          { concurrency: "unbounded", discard: true }
        ).pipe(
          Effect.withSpan("MemcachedStore.setMany", {
            attributes: { store: name, entries: entries.length, servers: groups.size }
          })
        )
      })

    const setIfAbsent = (
      key: string,
      value: CacheStore.Value,
      ttl?: Duration.DurationInput
    ): Effect.Effect<boolean, StoreFailure> =>
      withBase((b) => {
        const wire = Keys.dataKey(b, key)
        const bytes = bytesOf(key, value, wire)
        if (!(bytes instanceof Uint8Array)) return Effect.fail(bytes)
        const ms = ttlMillis(ttl)
        if (Number.isNaN(ms)) return Effect.fail(invalidTtl(name, "setIfAbsent", ttl))
        const server = route(wire)
        if (server === undefined) return noServer("setIfAbsent")
        // An already-expired entry is never written; the call still reports whether the key was free.
        if (ms !== undefined && ms <= 0) {
          return Effect.map(execute(server, { _tag: "mg", key: wire }, "setIfAbsent"), (r) => r._tag === "EN")
        }
        const request: Protocol.MetaSet = ms === undefined
          ? { _tag: "ms", key: wire, value: bytes, mode: "add" }
          : { _tag: "ms", key: wire, value: bytes, mode: "add", ttl: exptime(ms, clock.unsafeCurrentTimeMillis()) }
        return Effect.flatMap(execute(server, request, "setIfAbsent"), added)
      })

    const del = (key: string): Effect.Effect<boolean, StoreFailure> =>
      withBase((b) => {
        const wire = Keys.dataKey(b, key)
        const server = route(wire)
        if (server === undefined) return noServer("delete")
        return Effect.flatMap(execute(server, { _tag: "md", key: wire }, "delete"), onDelete)
      })

    const deleteMany = (keys: ReadonlyArray<string>): Effect.Effect<number, StoreFailure> =>
      keys.length === 0 ? Effect.succeed(0) : withBase((b) => {
        const wires = keys.map((k) => Keys.dataKey(b, k))
        const groups = group(wires, (w) => w)
        if (groups === undefined) return noServer("deleteMany")
        let count = 0
        return Effect.forEach(
          groups,
          ([server, positions]) => {
            const requests = positions.map((i): Protocol.Request => ({ _tag: "md", key: wires[i]!, quiet: true }))
            return Effect.flatMap(pipeline(server, requests, "deleteMany"), (responses) => {
              for (const r of responses) {
                if (r._tag === "HD") count++
                else if (r._tag !== "NF") return unexpected("deleteMany", r)
              }
              return Effect.void
            })
          },
          { concurrency: "unbounded", discard: true }
        ).pipe(
          Effect.map(() => count),
          Effect.withSpan("MemcachedStore.deleteMany", {
            attributes: { store: name, keys: keys.length, servers: groups.size }
          })
        )
      })

    const expire = (key: string, ttl: Duration.DurationInput): Effect.Effect<boolean, StoreFailure> =>
      Effect.suspend(() => {
        const ms = ttlMillis(ttl)
        if (Number.isNaN(ms)) return Effect.fail(invalidTtl(name, "expire", ttl))
        if (ms !== undefined && ms <= 0) return del(key)
        return withBase((b) => {
          const wire = Keys.dataKey(b, key)
          const server = route(wire)
          if (server === undefined) return noServer("expire")
          const touch = exptime(ms, clock.unsafeCurrentTimeMillis())
          return Effect.flatMap(execute(server, { _tag: "mg", key: wire, touch }, "expire"), onExpire)
        })
      })

    /** `mg <key> v T<ttl>`: the read and the touch in one command (memcached TTLs are whole seconds, rounded up). */
    const getAndExpire: CacheStore.GetAndExpire = {
      get,
      read: (key, ttl) =>
        Effect.suspend(() => {
          const ms = ttlMillis(ttl)
          if (Number.isNaN(ms)) return Effect.fail(invalidTtl(name, "getAndExpire", ttl))
          if (ms !== undefined && ms <= 0) return Effect.flatMap(get(key), (found) => Effect.as(del(key), found))
          return withBase((b) => {
            const wire = Keys.dataKey(b, key)
            const server = route(wire)
            if (server === undefined) return noServer("getAndExpire")
            const touch = exptime(ms, clock.unsafeCurrentTimeMillis())
            const request: Protocol.MetaGet = { _tag: "mg", key: wire, value: true, touch }
            return server.breaker.state() === "closed"
              ? pick(server).executeWith(request, "getAndExpire", toOption, server.onFailure)
              : guard(server, "getAndExpire", pick(server).executeWith(request, "getAndExpire", toOption))
          })
        })
    }

    /**
     * Moves every copy (on the servers in the ring) to a generation above all of them and adopts
     * it. Succeeds when at least one server took it: the generation is read as the highest copy.
     */
    const clear: Effect.Effect<void, StoreFailure> = exclusive(Effect.suspend(() =>
      Effect.flatMap(settle(ringMembers(), true, "clear"), (settled) => {
        if (settled.holders.length === 0) return Effect.fail(settled.error!)
        adopt(settled.generation)
        return Effect.void
      })
    )).pipe(Effect.withSpan("MemcachedStore.clear", { attributes: { store: name, prefix } }))

    const keys = (_pattern: string): Effect.Effect<ReadonlyArray<string>, StoreFailure> =>
      Effect.fail(
        new UnsupportedCapability({
          store: name,
          capability: "keys",
          detail:
            "memcached cannot list keys: it has no key scan, and `lru_crawler metadump` is neither complete nor prefix-aware"
        })
      )

    /**
     * Leases are memcached's own recache wins, on the entry's key itself (no lock key): `mg` with
     * `N<ttl>` creates an empty stub on a miss and answers `W` to exactly one asker (`Z` to the
     * others until the stub expires or is replaced), and `R` does the same on an item that exists.
     * The token is the item's CAS. Writing the key (the holder's loaded value) ends the lease.
     */
    const leaseOp = <A>(
      key: string,
      f: (wire: Keys.WireKey, server: Server) => Effect.Effect<A, StoreFailure>
    ): Effect.Effect<A, StoreFailure> =>
      withBase((b) => {
        const wire = Keys.dataKey(b, key)
        const server = route(wire)
        return server === undefined ? noServer("lease") : f(wire, server)
      })
    const lease: CacheStore.Lease = {
      endsOnWrite: true,
      acquire: (key, ttl) =>
        Effect.suspend(() => {
          const ms = leaseMillis(name, "lease", ttl)
          if (typeof ms !== "number") {
            return Effect.fail(ms)
          }
          return leaseOp(key, (wire, server) =>
            Effect.map(
              execute(server, {
                _tag: "mg",
                key: wire,
                cas: true,
                vivify: exptime(ms, clock.unsafeCurrentTimeMillis()),
                recache: RECACHE_ALWAYS
              }, "lease"),
              (r) =>
                (r._tag === "HD" || r._tag === "VA") && r.flags.win === true && r.flags.cas !== undefined
                  ? Option.some(r.flags.cas.toString())
                  : Option.none()
            ))
        }),
      extend: (key, token, ttl) =>
        Effect.suspend(() => {
          const ms = leaseMillis(name, "lease", ttl)
          if (typeof ms !== "number") {
            return Effect.fail(ms)
          }
          const cas = casOf(token)
          if (cas === undefined) {
            return Effect.succeed(false)
          }
          return leaseOp(key, (wire, server) =>
            Effect.flatMap(execute(server, { _tag: "mg", key: wire, cas: true, size: true }, "lease"), (r) => {
              if (r._tag !== "HD" || r.flags.cas !== cas) {
                return Effect.succeed(false)
              }
              // a win on an existing entry lasts until the entry is written: nothing to extend
              if (r.flags.size !== 0) {
                return Effect.succeed(true)
              }
              const touch = exptime(ms, clock.unsafeCurrentTimeMillis())
              return Effect.map(execute(server, { _tag: "mg", key: wire, touch }, "lease"), (t) =>
                t._tag === "HD")
            }))
        }),
      release: (key, token) =>
        Effect.suspend(() => {
          const cas = casOf(token)
          if (cas === undefined) {
            return Effect.succeed(false)
          }
          return leaseOp(key, (wire, server) =>
            Effect.flatMap(
              execute(server, { _tag: "mg", key: wire, cas: true, value: true, ttl: true }, "lease"),
              (r): Effect.Effect<boolean, StoreFailure> => {
                if (r._tag !== "VA" || r.flags.cas !== cas) {
                  return Effect.succeed(false)
                }
                if (r.value.byteLength === 0) {
                  // the stub: removed, unless it changed since
                  return Effect.map(
                    execute(server, { _tag: "md", key: wire, compareCas: cas }, "lease"),
                    (d) =>
                      d._tag === "HD"
                  )
                }
                // a win on an existing entry: the same value written back clears it, TTL kept
                const remaining = r.flags.ttl
                const request: Protocol.MetaSet = remaining === undefined || remaining < 0
                  ? { _tag: "ms", key: wire, value: r.value, compareCas: cas }
                  : { _tag: "ms", key: wire, value: r.value, compareCas: cas, ttl: Math.max(1, remaining) }
                return Effect.map(execute(server, request, "lease"), (w) => w._tag === "HD")
              }
            ))
        })
    }

    /**
     * Versioned writes by compare-and-swap: the item is read with its CAS, its version compared,
     * and the value written only if the CAS still matches (or, on a miss, only if still absent).
     * Another writer in between makes the write fail and the whole step is taken again, so the
     * compare and the write act as one. A lease stub (an empty item) holds version 0.
     */
    const CAS_ATTEMPTS = 64
    /** A compare-and-swap write's wire key, checked bytes and server; or the failure that stops it. */
    const casTarget = (operation: string, b: string, key: string, value: CacheStore.Value) => {
      const wire = Keys.dataKey(b, key)
      const bytes = bytesOf(key, value, wire)
      if (!(bytes instanceof Uint8Array)) return Effect.fail(bytes)
      const server = route(wire)
      if (server === undefined) return noServer(operation)
      return { wire, bytes, server }
    }
    /** A write refused because another writer came between the read and the write. */
    const overtaken = (r: Protocol.Response): boolean => r._tag === "EX" || r._tag === "NS" || r._tag === "NF"
    const versioned: CacheStore.VersionedWrites = {
      setIfNewer: (key, value, version, ttl) =>
        withBase((b) => {
          const ms = ttlMillis(ttl)
          if (Number.isNaN(ms)) return Effect.fail(invalidTtl(name, "setIfNewer", ttl))
          const target = casTarget("setIfNewer", b, key, value)
          if (Effect.isEffect(target)) return target
          const { bytes, server, wire } = target
          const expiry = ms === undefined ? undefined : exptime(ms, clock.unsafeCurrentTimeMillis())
          const attempt = (left: number): Effect.Effect<Option.Option<number>, StoreFailure> =>
            left === 0
              ? Effect.fail(storeError("setIfNewer", "command", `the key kept changing over ${CAS_ATTEMPTS} attempts`))
              : Effect.flatMap(
                execute(server, { _tag: "mg", key: wire, value: true, cas: true }, "setIfNewer"),
                (read): Effect.Effect<Option.Option<number>, StoreFailure> => {
                  if (read._tag !== "VA" && read._tag !== "EN") return unexpected("setIfNewer", read)
                  const current = read._tag === "VA" ? versionOf(read.value) : 0
                  if (read._tag === "VA" && current >= version) return Effect.succeed(Option.some(current))
                  const base: Protocol.MetaSet = read._tag === "VA"
                    ? { _tag: "ms", key: wire, value: bytes, compareCas: read.flags.cas ?? 0n }
                    : { _tag: "ms", key: wire, value: bytes, mode: "add" }
                  // an already-expired value is not written; a newer version's key goes instead
                  const request: Protocol.Request = expiry !== undefined && ms! <= 0
                    ? read._tag === "VA"
                      ? { _tag: "md", key: wire, compareCas: read.flags.cas ?? 0n }
                      : { _tag: "mn" }
                    : expiry === undefined
                    ? base
                    : { ...base, ttl: expiry }
                  return Effect.flatMap(execute(server, request, "setIfNewer"), (r) =>
                    r._tag === "HD" || r._tag === "MN"
                      ? Effect.succeed(Option.none())
                      // another writer came between the read and the write: read again
                      : overtaken(r)
                      ? attempt(left - 1)
                      : unexpected("setIfNewer", r))
                }
              )
          return attempt(CAS_ATTEMPTS)
        })
    }

    /**
     * Late-write protection by compare-and-swap (`CacheStore.Fence`). A fenced write reads the item
     * with its CAS and writes with `ms … C<cas>` only when what it holds lets it (a value that
     * begins with the expected bytes, or a lease's stub, which reads as nothing), or with `ms … ME`
     * (add) when the key holds nothing. A write in between changes the CAS or fills the key, so the
     * write is refused: the key changed after the load's read, and what is there now is newer.
     * A swap (an invalidation's marker) takes the same two steps, read again when another writer
     * came in between, so what it gives back is what the marker replaced.
     */
    const fenced = (operation: string, wire: Keys.WireKey, server: Server) => {
      const read = execute(server, { _tag: "mg", key: wire, value: true, cas: true }, operation)
      const write = (found: Protocol.Response, bytes: Uint8Array, ttl: number | undefined) =>
        execute(
          server,
          found._tag === "VA"
            ? { _tag: "ms", key: wire, value: bytes, compareCas: found.flags.cas ?? 0n, ...ttlOf(ttl) }
            : { _tag: "ms", key: wire, value: bytes, mode: "add", ...ttlOf(ttl) },
          operation
        )
      return { read, write }
    }
    const ttlOf = (ttl: number | undefined): { readonly ttl?: number } => ttl === undefined ? {} : { ttl }
    /** Where keys resolve: the prefix's generation, and the ring they are routed on. */
    const epochOf = (b: string): string => `${b}/${ringVersion}`
    const fence: CacheStore.Fence = {
      epoch: () => base === undefined ? undefined : epochOf(base),
      setIf: (key, expected, value, ttl, epoch) =>
        withBase((b) => {
          // a load that began under another generation or ring read another place: nothing here
          // says its value is current
          if (epoch !== undefined && epoch !== epochOf(b)) return Effect.succeed(false)
          const ms = ttlMillis(ttl)
          if (Number.isNaN(ms)) return Effect.fail(invalidTtl(name, "setIf", ttl))
          // an already-expired value is never written; expected bytes that say nothing match nothing
          if (ms !== undefined && ms <= 0) return Effect.succeed(false)
          if (expected !== undefined && !(expected instanceof Uint8Array && expected.byteLength > 0)) {
            return Effect.succeed(false)
          }
          const target = casTarget("setIf", b, key, value)
          if (Effect.isEffect(target)) return target
          const { bytes, server, wire } = target
          const op = fenced("setIf", wire, server)
          const expiry = ms === undefined ? undefined : exptime(ms, clock.unsafeCurrentTimeMillis())
          return Effect.flatMap(op.read, (found): Effect.Effect<boolean, StoreFailure> => {
            if (found._tag !== "VA" && found._tag !== "EN") return unexpected("setIf", found)
            if (found._tag === "VA" && !isStub(found) && !fenceHolds(found.value, expected)) {
              return Effect.succeed(false)
            }
            return Effect.flatMap(op.write(found, bytes, expiry), (r) =>
              r._tag === "HD"
                ? Effect.succeed(true)
                // written, filled or removed since the read: what is there now is newer
                : overtaken(r)
                ? Effect.succeed(false)
                : unexpected("setIf", r))
          })
        }),
      swap: (key, value, ttl) =>
        withBase((b) => {
          const ms = ttlMillis(ttl)
          if (ms === undefined || Number.isNaN(ms) || ms <= 0) return Effect.fail(invalidTtl(name, "swap", ttl))
          const target = casTarget("swap", b, key, value)
          if (Effect.isEffect(target)) return target
          const { bytes, server, wire } = target
          const op = fenced("swap", wire, server)
          const expiry = exptime(ms, clock.unsafeCurrentTimeMillis())
          const attempt = (left: number): Effect.Effect<Option.Option<CacheStore.Value>, StoreFailure> =>
            left === 0
              ? Effect.fail(storeError("swap", "command", `the key kept changing over ${CAS_ATTEMPTS} attempts`))
              : Effect.flatMap(op.read, (found) => {
                if (found._tag !== "VA" && found._tag !== "EN") return unexpected("swap", found)
                return Effect.flatMap(op.write(found, bytes, expiry), (r) =>
                  r._tag === "HD"
                    ? Effect.succeed(
                      found._tag === "VA" && !isStub(found) ? Option.some<CacheStore.Value>(found.value) : Option.none()
                    )
                    // another writer came between the read and the write: read again
                    : overtaken(r)
                    ? attempt(left - 1)
                    : unexpected("swap", r))
              })
          return attempt(CAS_ATTEMPTS)
        })
    }

    // Read the generation now so the first operations do not wait for it, and keep it fresh so a
    // `clear` from another process is seen within one refresh interval.
    yield* Effect.ignore(ensureBase)
    yield* FiberSet.run(
      background,
      Effect.forever(Effect.zipRight(Effect.sleep(refresh), Effect.ignore(exclusive(loadGeneration))))
    )

    const service = CacheStore.make({
      name,
      capabilities: {
        live: false,
        scan: false,
        clear: true,
        maxValueBytes: maxItem - ITEM_OVERHEAD - Keys.MAX_KEY_BYTES
      },
      get,
      getMany,
      set,
      setMany,
      setIfAbsent,
      delete: del,
      deleteMany,
      expire,
      clear,
      keys,
      lease,
      versioned,
      fence,
      directRead,
      getAndExpire
    })

    return {
      ...service,
      prefix,
      liveServers: () => ringMembers().map((s) => s.label),
      serverFor: (key: string) => {
        if (base === undefined) return Option.none()
        const server = route(Keys.dataKey(base, key))
        return server === undefined ? Option.none() : Option.some(server.label)
      },
      generation: () => generation
    } satisfies MemcachedStore
  })
