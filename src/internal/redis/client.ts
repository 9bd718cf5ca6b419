import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleIntervals from "effect/ScheduleIntervals"
import type * as Scope from "effect/Scope"
import { Cluster, Redis } from "ioredis"
import type { ClusterOptions as IoClusterOptions, RedisOptions as IoRedisOptions } from "ioredis"
import type * as Redis_ from "../../Redis.js"
import type { ClientOptions, ClusterOptions, Options, SentinelOptions } from "../../Redis.js"
import { check, optionalDuration, optionalInteger } from "../options.js"
import { isAuthRefusal, toStoreError } from "./errors.js"
import type { ClientContext } from "./errors.js"

/** @internal */
export type Client = Redis | Cluster

/** @internal */
export type Mode = "standalone" | "sentinel" | "cluster"

type CommonOptions = ClientOptions
type StandaloneOptions = Options
type NodeAddress = Redis_.NodeAddress

/** @internal */
export const DEFAULT_COMMAND_TIMEOUT_MS = 500
const DEFAULT_CONNECT_TIMEOUT_MS = 2000

/**
 * Reconnect backoff: 50 ms doubling, never more than 2 s apart, jittered so that many processes
 * losing the same server do not come back in lockstep.
 * @internal
 */
export const defaultReconnect: Schedule.Schedule<unknown, number> = Schedule.exponential("50 millis", 2).pipe(
  Schedule.union(Schedule.spaced("2 seconds")),
  Schedule.jittered
)

const reveal = (s: string | Redacted.Redacted<string> | undefined): string | undefined =>
  s === undefined ? undefined : Redacted.isRedacted(s) ? Redacted.value(s) : s

const REDACTED = "<redacted>"

/**
 * A credential as the client keeps it: ioredis writes command arguments with `String`, so AUTH
 * still sends the value, but `util.inspect`, `console.log` and `JSON.stringify` of the client (or
 * of anything that reaches it: a store, the `RedisClient` service) print `<redacted>`.
 */
class Secret {
  readonly #value: string
  constructor(value: string) {
    this.#value = value
  }
  toString(): string {
    return this.#value
  }
  toJSON(): string {
    return REDACTED
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return REDACTED
  }
}

/**
 * Replaces the credentials among a client's options (given by field, or parsed from a URL) with
 * `Secret`s, before anything connects. User names stay readable unless they were given redacted.
 */
const hideCredentials = (options: object, secretNames: boolean): void => {
  const fields = options as Record<string, unknown>
  const names = secretNames
    ? ["password", "sentinelPassword", "username", "sentinelUsername"]
    : ["password", "sentinelPassword"]
  for (const name of names) {
    const value = fields[name]
    // an empty user name must stay falsy: ioredis then sends AUTH <password> alone
    if (typeof value === "string" && value.length > 0) fields[name] = new Secret(value)
  }
}

const namesAreSecret = (o: CommonOptions & { readonly url?: unknown; readonly sentinelUsername?: unknown }) =>
  Redacted.isRedacted(o.username) || Redacted.isRedacted(o.url) || Redacted.isRedacted(o.sentinelUsername)

/** @internal */
export const millis = (d: Duration.DurationInput): number => Duration.toMillis(Duration.decode(d))

/**
 * How long a client whose credentials the server refused waits before it tries again. ioredis
 * counts reconnection attempts from 1 again after every TCP connection, and a refused AUTH comes
 * after one, so the backoff would restart at its shortest delay each time: a new connection every
 * 50 ms, each refused. A refusal rarely lasts less than a few seconds (a password being rotated).
 * @internal
 */
export const AUTH_RETRY_MS = 5000

/**
 * Turns a `Schedule` into an ioredis retry strategy. ioredis counts attempts from 1 and starts
 * again at 1 after each successful connection, so attempt 1 restarts the schedule. While
 * `refused` says the server refused the credentials, the delay is at least `AUTH_RETRY_MS`.
 * @internal
 */
export const retryStrategy = (schedule: Schedule.Schedule<unknown, number>, refused: () => boolean = () => false) => {
  let state: unknown = schedule.initial
  return (attempt: number): number | null => {
    if (attempt <= 1) state = schedule.initial
    // a monotonic reading: the delay is the distance to the schedule's next start
    const now = performance.now()
    const [next, , decision] = Effect.runSync(schedule.step(now, attempt, state))
    state = next
    if (ScheduleDecision.isDone(decision)) return null
    const delay = Math.max(0, ScheduleIntervals.start(decision.intervals) - now)
    return refused() ? Math.max(delay, AUTH_RETRY_MS) : delay
  }
}

/** The reply that refused each client's credentials, while the refusal lasts. */
const refusals = new WeakMap<Client, Error>()

const contexts = new WeakMap<Client, ClientContext>()

/**
 * What errors of a client say about it (see `toStoreError`): its address, and the refusal of its
 * credentials, which `watch` records for the clients this library creates; over a client handed
 * in, a refusal shows in the errors of the calls themselves (WRONGPASS, NOAUTH).
 * @internal
 */
export const contextOf = (client: Client): ClientContext => {
  let context = contexts.get(client)
  if (context === undefined) {
    context = { address: addressOf(client), refusal: () => refusals.get(client) }
    contexts.set(client, context)
  }
  return context
}

const addressOf = (client: Client): string => {
  if (isCluster(client)) {
    const nodes = (client as unknown as { startupNodes?: ReadonlyArray<{ host?: string; port?: number }> })
      .startupNodes ?? []
    return `cluster ${nodes.map((n) => `${n.host ?? "127.0.0.1"}:${n.port ?? 6379}`).join(",")}`
  }
  const o = client.options
  if (o.sentinels) {
    const sentinels = o.sentinels.map((n) => `${n.host ?? "127.0.0.1"}:${n.port ?? 26379}`).join(",")
    return `master ${JSON.stringify(o.name)} of sentinels ${sentinels}`
  }
  return o.path ? o.path : `${o.host ?? "127.0.0.1"}:${o.port ?? 6379}`
}

/** @internal */
export const validateCommon = (component: string, o: CommonOptions): void => {
  optionalDuration(component, "commandTimeout", o.commandTimeout)
  optionalDuration(component, "connectTimeout", o.connectTimeout)
  optionalDuration(component, "socketTimeout", o.socketTimeout)
  optionalInteger(component, "maxRetriesPerRequest", o.maxRetriesPerRequest, 0)
  optionalInteger(component, "db", o.db, 0)
}

const validPort = (port: number) => Number.isInteger(port) && port > 0 && port < 65536

const validateAddress = (component: string, field: string, a: NodeAddress | string): void => {
  if (typeof a === "string") {
    const i = a.lastIndexOf(":")
    check(
      i > 0 && validPort(Number(a.slice(i + 1))),
      component,
      field,
      `${field}: ${JSON.stringify(a)} is not "host:port"`
    )
  } else {
    check(
      typeof a.host === "string" && a.host.length > 0 && validPort(a.port),
      component,
      field,
      `${field}: ${JSON.stringify(a)} is not { host, port }`
    )
  }
}

/**
 * Says what is wrong with a URL without repeating it: it may hold a password.
 */
const validateUrl = (component: string, text: string): void => {
  const form = "redis://[user:password@]host[:port][/db] or rediss://…"
  // the port as written, even where the URL parser gives up on it (99999)
  const port = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(?:\[[^\]]*\]|[^:/?#]*):([^/?#]*)/i.exec(text)?.[1]
  check(
    port === undefined || port === "" || (/^\d+$/.test(port) && validPort(Number(port))),
    component,
    "url",
    `url: the port ${/^\d+$/.test(port ?? "") ? port : JSON.stringify(port)} is not a port number (1..65535)`
  )
  let url: URL | undefined
  try {
    url = new URL(text)
  } catch {
    // reported below
  }
  check(url !== undefined, component, "url", `url is not a URL; expected ${form}`)
  check(
    url!.protocol === "redis:" || url!.protocol === "rediss:",
    component,
    "url",
    `url must be a redis:// or rediss:// URL, not ${url!.protocol}//`
  )
}

/** @internal */
export const validateStandalone = (component: string, o: StandaloneOptions): void => {
  validateCommon(component, o)
  if (o.url !== undefined) {
    check(o.host === undefined && o.port === undefined, component, "url", "give either url or host/port, not both")
    validateUrl(component, reveal(o.url)!)
  }
  check(o.port === undefined || validPort(o.port), component, "port", "port must be an integer in 1..65535")
  check(o.host === undefined || o.host.length > 0, component, "host", "host must not be empty")
}

/** @internal */
export const validateCluster = (component: string, o: ClusterOptions): void => {
  validateCommon(component, o)
  check(Array.isArray(o.nodes) && o.nodes.length > 0, component, "nodes", "nodes must list at least one node")
  for (const n of o.nodes) validateAddress(component, "nodes", n)
  optionalDuration(component, "slotsRefreshInterval", o.slotsRefreshInterval)
}

/** @internal */
export const validateSentinel = (component: string, o: SentinelOptions): void => {
  validateCommon(component, o)
  check(
    Array.isArray(o.sentinels) && o.sentinels.length > 0,
    component,
    "sentinels",
    "sentinels must list at least one sentinel"
  )
  for (const s of o.sentinels) validateAddress(component, "sentinels", s)
  check(typeof o.name === "string" && o.name.length > 0, component, "name", "name (the monitored master) is required")
}

const address = (a: NodeAddress | string): { host: string; port: number } => {
  if (typeof a !== "string") return { host: a.host, port: a.port }
  const i = a.lastIndexOf(":")
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) }
}

const nodeOptions = (o: CommonOptions): IoRedisOptions => {
  const commandTimeout = o.commandTimeout === undefined ? DEFAULT_COMMAND_TIMEOUT_MS : millis(o.commandTimeout)
  const tls = o.tls === true ? {} : o.tls === false ? undefined : o.tls
  const out: IoRedisOptions = {
    commandTimeout,
    // A connection that owes replies and has been silent this long is dropped and re-opened:
    // it bounds how long a black-holed socket is kept.
    socketTimeout: o.socketTimeout === undefined ? Math.max(2000, 4 * commandTimeout) : millis(o.socketTimeout),
    connectTimeout: o.connectTimeout === undefined ? DEFAULT_CONNECT_TIMEOUT_MS : millis(o.connectTimeout),
    // A cache prefers a fast miss to a command that waits for a reconnect: no offline queue, and
    // in-flight commands fail at once when the connection drops instead of being resent later.
    enableOfflineQueue: o.offlineQueue ?? false,
    maxRetriesPerRequest: o.maxRetriesPerRequest ?? 0,
    autoResendUnfulfilledCommands: false,
    // Writes from many fibers share one socket write (a burst of 1,000 SETs completes 2-3× sooner).
    // MGET is left out: the store already merges concurrent reads into MGETs (see the batcher),
    // and an auto-pipelined command waits for a setImmediate, which halves single-caller reads.
    enableAutoPipelining: o.autoPipelining ?? true,
    autoPipeliningIgnoredCommands: ["mget"],
    lazyConnect: true
  }
  const username = reveal(o.username)
  const password = reveal(o.password)
  if (username !== undefined) out.username = username
  if (password !== undefined) out.password = password
  if (tls !== undefined) out.tls = tls
  if (o.db !== undefined) out.db = o.db
  if (o.connectionName !== undefined) out.connectionName = o.connectionName
  return out
}

/** @internal */
export const createStandalone = (o: StandaloneOptions): Redis => {
  const options: IoRedisOptions = {
    ...nodeOptions(o),
    retryStrategy: retryStrategy(o.reconnect ?? defaultReconnect, () => refusals.has(client)),
    ...o.ioredis
  }
  const client: Redis = o.url !== undefined
    ? new Redis(reveal(o.url)!, options)
    : new Redis({ host: o.host ?? "127.0.0.1", port: o.port ?? 6379, ...options })
  hideCredentials(client.options, namesAreSecret(o))
  return client
}

/** @internal */
export const createSentinel = (o: SentinelOptions): Redis => {
  const options: IoRedisOptions = {
    ...nodeOptions(o),
    retryStrategy: retryStrategy(o.reconnect ?? defaultReconnect, () => refusals.has(client)),
    sentinels: o.sentinels.map(address),
    name: o.name,
    role: "master",
    // Follow a promotion as soon as a sentinel announces it, not only after the old master dies.
    failoverDetector: true,
    ...o.ioredis
  }
  const sentinelUsername = reveal(o.sentinelUsername)
  const sentinelPassword = reveal(o.sentinelPassword)
  if (sentinelUsername !== undefined) options.sentinelUsername = sentinelUsername
  if (sentinelPassword !== undefined) options.sentinelPassword = sentinelPassword
  const client: Redis = new Redis(options)
  hideCredentials(client.options, namesAreSecret(o))
  return client
}

/** @internal */
export const createCluster = (o: ClusterOptions): Cluster => {
  const node = nodeOptions(o)
  const {
    autoPipeliningIgnoredCommands: _i,
    enableAutoPipelining: _p,
    enableOfflineQueue: _q,
    lazyConnect: _l,
    ...redisOptions
  } = node
  const options: IoClusterOptions = {
    enableOfflineQueue: o.offlineQueue ?? false,
    // On a cluster, auto-pipelining groups the per-slot MGETs and the writes of one tick into one
    // pipeline per node. ioredis does not follow MOVED for a pipeline whose commands span slots
    // (after a failover they all fail, and nothing refreshes its slot map); the store refreshes
    // the map itself whenever a redirection reaches it, so the next calls are routed right.
    enableAutoPipelining: o.autoPipelining ?? true,
    lazyConnect: true,
    scaleReads: "master",
    // ioredis does not refresh the slot map periodically unless asked to
    slotsRefreshInterval: 5000,
    clusterRetryStrategy: retryStrategy(o.reconnect ?? defaultReconnect),
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    redisOptions: { ...redisOptions, ...o.ioredis },
    ...o.ioredisCluster
  }
  if (o.slotsRefreshInterval !== undefined) options.slotsRefreshInterval = millis(o.slotsRefreshInterval)
  const cluster = new Cluster(o.nodes.map(address), options)
  // every node is created from these options
  if (cluster.options.redisOptions !== undefined) hideCredentials(cluster.options.redisOptions, namesAreSecret(o))
  return cluster
}

// `isCluster` rather than `instanceof`: a client handed in may come from another copy of ioredis.
const isCluster = (client: Client): client is Cluster => (client as { isCluster?: unknown }).isCluster === true

/** @internal */
export const modeOf = (client: Client): Mode =>
  isCluster(client) ? "cluster" : client.options.sentinels ? "sentinel" : "standalone"

/** @internal */
export const masters = (client: Client): ReadonlyArray<Redis> => isCluster(client) ? client.nodes("master") : [client]

/**
 * Logs the client's connection life: a lost connection as a warning, the return as info, raw
 * socket errors at debug level (they repeat on every reconnect attempt). The `error` listener also
 * keeps ioredis from printing "Unhandled error event" to stderr.
 * @internal
 */
export const watch = (client: Client, mode: Mode): Effect.Effect<void> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const run = Runtime.runFork(runtime)
    const annotate = <A, E>(e: Effect.Effect<A, E>) => Effect.annotateLogs(e, { backend: `redis ${mode}` })
    let lost = false
    let revivals = 0
    const address = contextOf(client).address
    client.on("error", (error: unknown) => {
      if (isAuthRefusal(error)) {
        // One warning per refusal, not one per attempt; the calls meanwhile fail with reason "auth".
        const first = !refusals.has(client)
        refusals.set(client, error)
        if (first) {
          run(annotate(
            Effect.logWarning(
              `redis at ${address} refused the credentials; calls fail with reason "auth" until it accepts them`
            ).pipe(Effect.annotateLogs({ reply: error.message, retryEvery: `${AUTH_RETRY_MS} ms` }))
          ))
        }
        return
      }
      run(annotate(Effect.logDebug("redis client error", error instanceof Error ? error.message : String(error))))
    })
    client.on("close", () => {
      // a connection dropped after a refusal is the refusal, already reported
      if (lost || client.status === "end" || refusals.has(client)) return
      lost = true
      run(annotate(Effect.logWarning(`redis connection to ${address} lost; reconnecting`)))
    })
    client.on("ready", () => {
      revivals = 0
      if (refusals.delete(client)) {
        run(annotate(Effect.logInfo(`redis at ${address} accepted the credentials`)))
      }
      if (!lost) return
      lost = false
      run(annotate(Effect.logInfo(`redis connection to ${address} restored`)))
    })
    // ioredis gives a client up for good ("end") when a connection attempt itself fails — on
    // Sentinel, for one, when a failover is announced while it is asking the sentinels where the
    // master is. A client this library created and has not closed is connected again.
    client.on("end", () => {
      if (closing.has(client)) return
      const delay = Math.min(100 * 2 ** revivals++, 2000)
      run(annotate(Effect.logWarning("redis client gave up reconnecting; connecting it again")))
      setTimeout(() => {
        if (closing.has(client) || client.status !== "end") return
        client.connect().catch(() => {})
      }, delay)
    })
  })

/** Clients being closed by this library: their end is expected. */
const closing = new WeakSet<Client>()

/**
 * Connects, waiting at most `connectTimeout` (plus a margin for the cluster's slot discovery).
 * A server that is down at start-up does not fail the layer: the client keeps reconnecting in
 * the background and calls fail fast with `StoreError` until it is back.
 * @internal
 */
export const connect = (client: Client, mode: Mode, timeoutMs: number): Effect.Effect<void> =>
  Effect.tryPromise({
    try: () => client.connect(),
    catch: (cause) => toStoreError(`redis ${mode}`, "connect", cause, contextOf(client))
  }).pipe(
    Effect.timeoutFail({
      duration: Duration.millis(timeoutMs + 1000),
      onTimeout: () => toStoreError(`redis ${mode}`, "connect", new Error("connect ETIMEDOUT"), contextOf(client))
    }),
    Effect.catchAll((error) =>
      // a refusal of the credentials has had its own warning (see `watch`)
      error.reason === "auth" ? Effect.void : Effect.logWarning(
        `redis at ${contextOf(client).address} is not reachable at start-up; calls fail fast until it is`
      ).pipe(Effect.annotateLogs({ backend: `redis ${mode}`, detail: error.detail }))
    )
  )

/**
 * Closes a client this library created: QUIT lets pending replies arrive; when that is not
 * possible or takes more than a second, the socket is dropped.
 * @internal
 */
export const close = (client: Client): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    closing.add(client)
    if (client.status === "end") return resume(Effect.void)
    if (client.status !== "ready") {
      client.disconnect()
      return resume(Effect.void)
    }
    let done = false
    const finish = (graceful: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (!graceful) client.disconnect()
      resume(Effect.void)
    }
    const timer = setTimeout(() => finish(false), 1000)
    // QUIT answers before the socket closes; the client is closed once it has ended.
    client.once("end", () => finish(true))
    client.quit().catch(() => finish(false))
  })

/** @internal */
export const acquire = <C extends Client>(
  create: () => C,
  connectTimeout: Duration.DurationInput | undefined
): Effect.Effect<C, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const client = create()
      const mode = modeOf(client)
      yield* watch(client, mode)
      yield* connect(client, mode, connectTimeout === undefined ? DEFAULT_CONNECT_TIMEOUT_MS : millis(connectTimeout))
      return client
    }),
    close
  )
