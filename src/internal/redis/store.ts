import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import type { Cluster, Redis, RedisKey } from "ioredis"
import { createHash, randomBytes } from "node:crypto"
import { EncodeError, StoreError, ValueTooLarge } from "../../CacheError.js"
import type { StoreFailure } from "../../CacheError.js"
import * as CacheStore from "../../CacheStore.js"
import type { RedisClientService } from "../../Redis.js"
import type { Options, RedisStore } from "../../RedisStore.js"
import * as CircuitBreaker from "../circuitBreaker.js"
import * as Deadlines from "../deadlines.js"
import * as Glob from "../glob.js"
import * as KeyBytes from "../keyBytes.js"
import { check, optionalDuration, optionalInteger } from "../options.js"
import { escapeGlob, invalidTtl, leaseMillis, prefixOf, ttlMillis } from "../store.js"
import * as Timer from "../timer.js"
import * as Batcher from "./batcher.js"
import { contextOf, DEFAULT_COMMAND_TIMEOUT_MS, millis } from "./client.js"
import { isRedirection, timeoutError, toStoreError } from "./errors.js"
import * as Mget from "./mget.js"
import { groupBySlot, slotOf } from "./slot.js"

/** Redis refuses bulk strings over 512 MiB (proto-max-bulk-len). */
const REDIS_MAX_VALUE_BYTES = 512 * 1024 * 1024
/** Keys per MGET / UNLINK: large enough to amortise a round trip, small enough not to block the server. */
const CHUNK = 500
const SCAN_COUNT = 1000

const batchSize = Metric.histogram(
  "effect_cachekit_redis_get_batch_keys",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 11 }),
  "Distinct keys per coalesced Redis read (single gets from concurrent fibers merged into MGETs)"
)

/**
 * A key as the store sends it. A key with an unpaired surrogate goes as its WTF-8 bytes (see
 * `keyBytes`): as UTF-8, it would be the same key as every string that differs from it only
 * there. Those bytes keep the key itself as their string form: on a cluster, ioredis's
 * auto-pipelining picks a command's node from the string form of its first key (hashed by
 * cluster-key-slot, which encodes strings as WTF-8 too); Buffer's own `toString` would give it the
 * U+FFFD form, whose slot may live on another node, and fail the whole pipeline.
 * @internal
 */
export const redisKey = (key: string): RedisKey => {
  if (KeyBytes.isWellFormed(key)) return key
  const bytes = KeyBytes.encode(key)
  Object.defineProperty(bytes, "toString", { value: () => key })
  return bytes
}

/**
 * The scripts of a lease. Each touches one key, its lock key, passed in KEYS (so a Cluster routes
 * it to the key's node); Redis 7 has no `SET … IFEQ`, so a holder's release and extension compare
 * the token and act in one atomic step.
 */
const RELEASE_SCRIPT =
  `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`
const EXTEND_SCRIPT =
  `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`

/**
 * A versioned write: the stored value's version (the `"n"` member right after the format and
 * the fence token, see `CacheStore.versionOf`; 0 without one) is compared and the value written in one atomic step.
 * ARGV: the value, its version, the TTL in ms (-1: none; 0 or less: already expired, so the key
 * goes). Returns -1 when written, else the version the key keeps.
 */
const SET_IF_NEWER_SCRIPT = `local cur = redis.call("get", KEYS[1])
if cur then
  local n = tonumber(string.match(cur, '^{"f":%d+,"k":"[^"]*","n":(%d+),') or string.match(cur, '^{"f":%d+,"n":(%d+),') or "0")
  if n >= tonumber(ARGV[2]) then return n end
end
local px = tonumber(ARGV[3])
if px < 0 then redis.call("set", KEYS[1], ARGV[1])
elseif px == 0 then redis.call("unlink", KEYS[1])
else redis.call("set", KEYS[1], ARGV[1], "PX", px) end
return -1`

/**
 * A fenced write (`CacheStore.Fence.setIf`) of a key that holds nothing or a value that begins
 * with the expected bytes (ARGV[1], never empty): GETRANGE reads only those bytes of the value.
 * ARGV[3] is the TTL in milliseconds ("": none).
 */
const SET_IF_SCRIPT = `local head = redis.call("getrange", KEYS[1], 0, #ARGV[1] - 1)
if head ~= ARGV[1] and redis.call("exists", KEYS[1]) == 1 then return 0 end
if ARGV[3] == "" then redis.call("set", KEYS[1], ARGV[2]) else redis.call("set", KEYS[1], ARGV[2], "PX", ARGV[3]) end
return 1`

interface Script {
  readonly source: string
  readonly sha: string
}

const script = (source: string): Script => ({ source, sha: createHash("sha1").update(source).digest("hex") })
const releaseScript = script(RELEASE_SCRIPT)
const extendScript = script(EXTEND_SCRIPT)
const setIfNewerScript = script(SET_IF_NEWER_SCRIPT)
const setIfScript = script(SET_IF_SCRIPT)

/** Runs a script by its SHA1, sending its source once when the server does not know it yet. */
const evalScript = async (
  client: Redis | Cluster,
  s: Script,
  key: RedisKey,
  ...args: ReadonlyArray<string | number | Buffer>
): Promise<unknown> => {
  try {
    return await client.evalsha(s.sha, 1, key, ...args)
  } catch (cause) {
    if (!(cause instanceof Error) || !cause.message.startsWith("NOSCRIPT")) throw cause
    return await client.eval(s.source, 1, key, ...args)
  }
}

/** An MGET reply as `getMany` answers it: each value an option, in the reply's own array. */
const toOptions = (values: Array<Buffer | null>): Array<Option.Option<CacheStore.Value>> => {
  const out = values as unknown as Array<Option.Option<CacheStore.Value>>
  for (let i = 0; i < values.length; i++) {
    const value = values[i]
    out[i] = value === null || value === undefined ? Option.none() : Option.some(value)
  }
  return out
}

/** @internal */
export const validate = (options: Options): void => {
  const c = "RedisStore"
  check(options.prefix === undefined || typeof options.prefix === "string", c, "prefix", "prefix must be a string")
  check(
    options.name === undefined || (typeof options.name === "string" && options.name.length > 0),
    c,
    "name",
    "name must not be empty"
  )
  optionalDuration(c, "commandTimeout", options.commandTimeout)
  optionalInteger(c, "maxValueBytes", options.maxValueBytes, 1, REDIS_MAX_VALUE_BYTES)
  optionalInteger(c, "maxBatch", options.maxBatch, 1)
  const breaker = options.circuitBreaker
  if (breaker !== undefined && breaker !== false) {
    optionalInteger(c, "circuitBreaker.failureThreshold", breaker.failureThreshold, 1)
    optionalDuration(c, "circuitBreaker.resetAfter", breaker.resetAfter)
  }
}

/** @internal */
export const make = (redis: RedisClientService, options: Options): Effect.Effect<RedisStore> =>
  Effect.gen(function*() {
    const name = options.name ?? "redis"
    const prefix = options.prefix ?? "cachekit"
    // escaped: the store `a` with key `b:k` is not the store `a:b` with key `k`
    const keyPrefix = prefix === "" ? "" : prefixOf(prefix)
    const globPrefix = escapeGlob(keyPrefix)
    const prefixBytes = KeyBytes.encode(keyPrefix).byteLength
    const timeoutMs = options.commandTimeout === undefined ? DEFAULT_COMMAND_TIMEOUT_MS : millis(options.commandTimeout)
    const maxValueBytes = options.maxValueBytes ?? REDIS_MAX_VALUE_BYTES
    const client = redis.client
    const cluster = redis.mode === "cluster"
    const breakerOptions = options.circuitBreaker
    const breaker = breakerOptions === false ? undefined : yield* CircuitBreaker.make({
      name,
      failureThreshold: breakerOptions?.failureThreshold ?? 5,
      resetAfter: breakerOptions?.resetAfter ?? "1 second"
    })
    const tags = [MetricLabel.make("store", name)]

    const full = (key: string): RedisKey => redisKey(keyPrefix + key)
    const context = contextOf(client)

    // A redirection that reached us means the client's slot map is stale: refresh it now rather
    // than at the next periodic refresh.
    const toError = (operation: string, cause: unknown): StoreError => {
      if (cluster && isRedirection(cause)) (client as Cluster).refreshSlotsCache()
      return toStoreError(name, operation, cause, context)
    }

    const deadlines = Deadlines.make(timeoutMs, Timer.fromClock(yield* Effect.clock))

    /**
     * One promise-returning ioredis call, bounded by the command timeout even when the client
     * itself has none (a client handed in through `layerFromClient`). With `breaker`, the call
     * goes through the circuit breaker: refused at once while it is open, and its outcome
     * recorded as it completes (no Effect step of its own). An interrupted caller stops waiting;
     * the command itself cannot be taken back.
     */
    const call = <A, B = A>(
      operation: string,
      thunk: () => Promise<A>,
      viaBreaker = true,
      map?: (a: A) => B
    ): Effect.Effect<B, StoreError> =>
      Effect.async<B, StoreError>((resume) => {
        const gate = viaBreaker ? breaker : undefined
        if (gate !== undefined && gate.state() !== "closed" && !gate.admit()) {
          return resume(Effect.fail(gate.refused(operation)))
        }
        const finish = (outcome: Effect.Effect<B, StoreError>, error: StoreError | undefined) => {
          if (gate !== undefined) {
            if (error === undefined || !CircuitBreaker.defaultIsFailure(error)) gate.succeeded()
            else gate.failed(1)
            if (gate.hasLog()) return resume(Effect.zipRight(gate.flushLog, outcome))
          }
          resume(outcome)
        }
        const fail = (error: StoreError) => finish(Effect.fail(error), error)
        const deadline = deadlines.add(() => fail(timeoutError(name, operation, timeoutMs, context.address)))
        const rejected = (cause: unknown) => {
          if (!deadline.settle()) return
          fail(toError(operation, cause))
        }
        try {
          thunk().then((a) => {
            if (!deadline.settle()) return
            // the reply is turned into what the caller wants right here, not in a step of its own
            finish(Effect.succeed(map === undefined ? a as unknown as B : map(a)), undefined)
          }, rejected)
        } catch (cause) {
          rejected(cause)
        }
      })

    const guarded = <A, E>(operation: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E | StoreError> =>
      breaker === undefined ? effect : breaker.run(effect, operation)

    const bytes = (key: string, value: CacheStore.Value): Buffer | EncodeError | ValueTooLarge => {
      if (!(value instanceof Uint8Array)) {
        return new EncodeError({
          namespace: prefix,
          key,
          detail: `the ${name} store holds bytes: encode the value to a Uint8Array first (got ${
            value === null ? "null" : typeof value
          })`
        })
      }
      if (value.byteLength > maxValueBytes) {
        return new ValueTooLarge({ store: name, key, size: value.byteLength, limit: maxValueBytes })
      }
      return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
    }

    // Always MGET, even for one key: the standalone and Sentinel client layers keep MGET out of
    // ioredis's auto-pipeline, so a coalesced read is written at once instead of one more
    // event-loop turn later.
    const mget = (keys: Array<RedisKey>): Promise<Array<Buffer | null>> => client.mgetBuffer(keys)
    /** An MGET of the store's own keys, the prefix added as the command is written (see `mget.ts`). */
    // every caller bounds it with `deadlines`: ioredis's own timer is needed only when it is tighter
    const clientTimeout = cluster ? undefined : (client as Redis).options.commandTimeout
    const bounded = typeof clientTimeout !== "number" || timeoutMs <= clientTimeout
    const mgetOwn: (keys: ReadonlyArray<string>) => Promise<Array<Buffer | null>> =
      !cluster && Mget.supported(client as Redis)
        ? (keys) => Mget.mget(client as Redis, keyPrefix, keys, bounded)
        : (keys) => mget(keys.map(full))

    /** Most keys in one multi-key command: a coalesced MGET, a `getMany` MGET, an UNLINK. */
    const maxBatch = options.maxBatch ?? CHUNK
    const batcher = options.batchGets === false ? undefined : Batcher.make({
      // the batcher is given the store's own keys: the prefix is added as the MGET is written
      fetch: mgetOwn,
      groupOf: cluster ? (key: string) => slotOf(full(key)) : undefined,
      maxBatch,
      deadlines,
      toError: (cause) => toError("get", cause),
      timeoutError: () => timeoutError(name, "get", timeoutMs, context.address),
      onBatch: (keys) => batchSize.unsafeUpdate(keys, tags),
      breaker
    })

    /** Splits full keys into groups one multi-key command accepts: one slot on a cluster. */
    const groups = (keys: ReadonlyArray<RedisKey>): Array<Array<number>> => {
      const out: Array<Array<number>> = []
      if (cluster) {
        for (const group of groupBySlot(keys).values()) {
          for (let i = 0; i < group.length; i += maxBatch) out.push(group.slice(i, i + maxBatch))
        }
      } else {
        for (let i = 0; i < keys.length; i += maxBatch) {
          out.push(Array.from({ length: Math.min(maxBatch, keys.length - i) }, (_, j) => i + j))
        }
      }
      return out
    }

    const setCommand = (key: RedisKey, value: Buffer, ms: number | undefined): Promise<unknown> =>
      ms === undefined
        ? client.set(key, value)
        : ms <= 0
        ? client.unlink(key)
        : client.set(key, value, "PX", Math.ceil(ms))

    // the batcher consults the breaker itself, once per read and once per command
    const get = (key: string): Effect.Effect<Option.Option<CacheStore.Value>, StoreFailure> =>
      batcher === undefined
        ? Effect.map(call("get", () => client.getBuffer(full(key))), Option.fromNullable)
        : batcher.get(key)

    const getMany = (
      keys: ReadonlyArray<string>
    ): Effect.Effect<Array<Option.Option<CacheStore.Value>>, StoreFailure> => {
      if (keys.length === 0) return Effect.succeed([])
      // the common case, one MGET: its reply array becomes the answer, turned into options in place
      if (!cluster && keys.length <= maxBatch) return call("getMany", () => mgetOwn(keys), true, toOptions)
      return call("getMany", async () => {
        const fullKeys = keys.map(full)
        const out = new Array<Option.Option<CacheStore.Value>>(keys.length)
        await Promise.all(
          groups(fullKeys).map(async (group) => {
            const values = await mget(group.map((i) => fullKeys[i]!))
            for (let j = 0; j < group.length; j++) out[group[j]!] = Option.fromNullable(values[j] ?? null)
          })
        )
        return out
      })
    }

    const set = (key: string, value: CacheStore.Value, ttl?: Parameters<CacheStore.Service["set"]>[2]) =>
      Effect.suspend((): Effect.Effect<void, StoreFailure> => {
        const buffer = bytes(key, value)
        if (!Buffer.isBuffer(buffer)) return Effect.fail(buffer)
        const ms = ttlMillis(ttl)
        if (Number.isNaN(ms)) return Effect.fail(invalidTtl(name, "set", ttl))
        return Effect.asVoid(call("set", () => setCommand(full(key), buffer, ms)))
      })

    const setMany = (entries: ReadonlyArray<CacheStore.SetEntry>) =>
      Effect.suspend((): Effect.Effect<void, StoreFailure> => {
        if (entries.length === 0) return Effect.void
        const prepared: Array<readonly [RedisKey, Buffer, number | undefined]> = []
        // Every value is checked before anything is written: a bad entry writes nothing.
        for (const e of entries) {
          const buffer = bytes(e.key, e.value)
          if (!Buffer.isBuffer(buffer)) return Effect.fail(buffer)
          const ms = ttlMillis(e.ttl)
          if (Number.isNaN(ms)) return Effect.fail(invalidTtl(name, "setMany", e.ttl))
          prepared.push([full(e.key), buffer, ms])
        }
        return call("setMany", async () => {
          if (cluster) {
            // Issued in one tick: an auto-pipelining cluster client sends one pipeline per node.
            await Promise.all(prepared.map(([k, v, ms]) => setCommand(k, v, ms)))
            return
          }
          const pipeline = (client as Redis).pipeline()
          for (const [k, v, ms] of prepared) {
            if (ms === undefined) pipeline.set(k, v)
            else if (ms <= 0) pipeline.unlink(k)
            else pipeline.set(k, v, "PX", Math.ceil(ms))
          }
          const results = await pipeline.exec()
          const failed = results?.find(([error]) => error !== null)
          if (failed !== undefined) throw failed[0]
        })
      })

    const setIfAbsent = (key: string, value: CacheStore.Value, ttl?: Parameters<CacheStore.Service["set"]>[2]) =>
      Effect.suspend((): Effect.Effect<boolean, StoreFailure> => {
        const buffer = bytes(key, value)
        if (!Buffer.isBuffer(buffer)) return Effect.fail(buffer)
        const ms = ttlMillis(ttl)
        if (Number.isNaN(ms)) return Effect.fail(invalidTtl(name, "setIfAbsent", ttl))
        const k = full(key)
        return call("setIfAbsent", async () => {
          // An already-expired entry is never written; the call still reports whether the key was free.
          if (ms !== undefined && ms <= 0) return (await client.exists(k)) === 0
          const reply = ms === undefined
            ? await client.set(k, buffer, "NX")
            : await client.set(k, buffer, "PX", Math.ceil(ms), "NX")
          return reply === "OK"
        })
      })

    const del = (key: string) => Effect.map(call("delete", () => client.unlink(full(key))), (n) => n > 0)

    const unlinkAll = (fullKeys: ReadonlyArray<RedisKey>): Promise<number> =>
      Promise.all(groups(fullKeys).map((group) => client.unlink(...group.map((i) => fullKeys[i]!)))).then((counts) =>
        counts.reduce((a, b) => a + b, 0)
      )

    const deleteMany = (keys: ReadonlyArray<string>): Effect.Effect<number, StoreFailure> =>
      keys.length === 0
        ? Effect.succeed(0)
        : call("deleteMany", () => unlinkAll(keys.map(full)))

    const expire = (key: string, ttl: Parameters<CacheStore.Service["expire"]>[1]) =>
      Effect.suspend((): Effect.Effect<boolean, StoreFailure> => {
        const ms = ttlMillis(ttl)
        if (Number.isNaN(ms)) return Effect.fail(invalidTtl(name, "expire", ttl))
        const k = full(key)
        return call("expire", async () => {
          if (ms === undefined) {
            // PERSIST answers 0 for a key without a TTL too, so existence needs its own check.
            const [persisted, exists] = await Promise.all([client.persist(k), client.exists(k)])
            return persisted === 1 || exists === 1
          }
          return (await client.pexpire(k, ms <= 0 ? 0 : Math.ceil(ms))) === 1
        })
      })

    /** GETEX (Redis 6.2+): the read and the new TTL in one command, relative (PX) so no clock is compared. */
    const getAndExpire: CacheStore.GetAndExpire = {
      get,
      read: (key, ttl) =>
        Effect.suspend((): Effect.Effect<Option.Option<CacheStore.Value>, StoreFailure> => {
          const ms = ttlMillis(ttl)
          if (Number.isNaN(ms)) return Effect.fail(invalidTtl(name, "getAndExpire", ttl))
          const k = full(key)
          return call(
            "getAndExpire",
            () =>
              ms === undefined
                ? client.getexBuffer(k, "PERSIST")
                : ms <= 0
                ? client.getdelBuffer(k)
                : client.getexBuffer(k, "PX", Math.ceil(ms)),
            true,
            Option.fromNullable
          )
        })
    }

    const mastersOrFail = Effect.suspend(() => {
      const nodes = redis.masters()
      return nodes.length === 0
        ? Effect.fail(
          new StoreError({
            store: name,
            operation: "scan",
            reason: "connection",
            detail: "no master is connected"
          })
        )
        : Effect.succeed(nodes)
    })

    /**
     * SCAN over every master, handing each page of keys to `onPage`. Never KEYS: it blocks the
     * server. Its calls bypass the breaker: the whole scan goes through it as one operation.
     */
    const scanAll = (
      operation: string,
      match: string,
      onPage: (keys: Array<Buffer>) => Effect.Effect<void, StoreError>
    ) =>
      Effect.flatMap(mastersOrFail, (nodes) =>
        Effect.forEach(
          nodes,
          (node) =>
            Effect.gen(function*() {
              // keys come back as bytes: a key of unpaired surrogates read as UTF-8 is another key
              const pattern = KeyBytes.wire(match) as string
              let cursor = "0"
              do {
                const [next, page] = yield* call(
                  operation,
                  () => node.scanBuffer(cursor, "MATCH", pattern, "COUNT", SCAN_COUNT),
                  false
                )
                cursor = next.toString("latin1")
                if (page.length > 0) yield* onPage(page)
              } while (cursor !== "0")
            }),
          { concurrency: "unbounded", discard: true }
        ))

    const clear = guarded(
      "clear",
      scanAll("clear", `${globPrefix}*`, (page) => Effect.asVoid(call("clear", () => unlinkAll(page), false)))
    ).pipe(Effect.withSpan("RedisStore.clear", { attributes: { store: name }, captureStackTrace: false }))

    const keys = (pattern: string): Effect.Effect<ReadonlyArray<string>, StoreFailure> =>
      Effect.suspend(() => {
        // Redis matches as the other stores do (internal/glob.ts); it is asked only what they accept
        const glob = Glob.compile(pattern)
        if (typeof glob === "string") return Effect.fail(Glob.refused(name, pattern, glob))
        const found = new Set<string>()
        return guarded(
          "keys",
          scanAll("keys", globPrefix + pattern, (page) =>
            Effect.sync(() => {
              for (const k of page) {
                // bytes that are not WTF-8 were written by someone else: no key of this store
                const key = KeyBytes.decode(k.subarray(prefixBytes))
                if (key !== undefined) found.add(key)
              }
            }))
        ).pipe(Effect.map(() => [...found]))
      }).pipe(Effect.withSpan("RedisStore.keys", { attributes: { store: name, pattern }, captureStackTrace: false }))

    // A lock key escapes out of the entries' key space: `<prefix>\L:<key>` can be no entry key
    // of any prefixed store, since an escaped prefix has no `\L`. So `keys` and `clear`, which
    // scan `<prefix>:*`, never see a lease.
    const lockPrefix = (keyPrefix === "" ? "" : keyPrefix.slice(0, -1)) + "\\L:"
    const lockKey = (key: string): RedisKey => redisKey(lockPrefix + key)
    const lease: CacheStore.Lease = {
      acquire: (key, ttl) =>
        Effect.suspend(() => {
          const ms = leaseMillis(name, "lease", ttl)
          if (typeof ms !== "number") return Effect.fail(ms)
          const token = randomBytes(16).toString("hex")
          return call("lease", () => client.set(lockKey(key), token, "PX", ms, "NX")).pipe(
            Effect.map((reply) => reply === "OK" ? Option.some(token) : Option.none())
          )
        }),
      extend: (key, token, ttl) =>
        Effect.suspend(() => {
          const ms = leaseMillis(name, "lease", ttl)
          if (typeof ms !== "number") return Effect.fail(ms)
          return Effect.map(call("lease", () => evalScript(client, extendScript, lockKey(key), token, ms)), (n) =>
            n === 1)
        }),
      release: (key, token) =>
        Effect.map(
          call("lease", () =>
            evalScript(client, releaseScript, lockKey(key), token)),
          (n) => n === 1
        )
    }
    /**
     * Compare-and-set for loaded values: SET NX when the read found nothing, else a script that
     * compares the first bytes (the fence token) and writes in one atomic step, on the key's node.
     */
    const fence: CacheStore.Fence = {
      setIf: (key, expected, value, ttl) =>
        Effect.suspend((): Effect.Effect<boolean, StoreFailure> => {
          const buffer = bytes(key, value)
          if (!Buffer.isBuffer(buffer)) return Effect.fail(buffer)
          const ms = ttlMillis(ttl)
          if (Number.isNaN(ms)) return Effect.fail(invalidTtl(name, "setIf", ttl))
          // an already-expired value is never written
          if (ms !== undefined && ms <= 0) return Effect.succeed(false)
          const k = full(key)
          if (expected === undefined) {
            return call(
              "setIf",
              () => ms === undefined ? client.set(k, buffer, "NX") : client.set(k, buffer, "PX", Math.ceil(ms), "NX"),
              true,
              (reply) => reply === "OK"
            )
          }
          const head = bytes(key, expected)
          if (!Buffer.isBuffer(head) || head.byteLength === 0) return Effect.succeed(false)
          return call(
            "setIf",
            () => evalScript(client, setIfScript, k, head, buffer, ms === undefined ? "" : Math.ceil(ms)),
            true,
            (n) => n === 1
          )
        }),
      swap: (key, value, ttl) =>
        Effect.suspend((): Effect.Effect<Option.Option<CacheStore.Value>, StoreFailure> => {
          const buffer = bytes(key, value)
          if (!Buffer.isBuffer(buffer)) return Effect.fail(buffer)
          const ms = ttlMillis(ttl)
          if (ms === undefined || Number.isNaN(ms) || ms <= 0) return Effect.fail(invalidTtl(name, "swap", ttl))
          return call(
            "swap",
            () => client.setBuffer(full(key), buffer, "PX", Math.ceil(ms), "GET"),
            true,
            (before): Option.Option<CacheStore.Value> => Option.fromNullable(before)
          )
        })
    }

    /** Each page of the SCAN is unlinked as it comes: the keys are never all held at once. */
    const deleteMatching = (pattern: string): Effect.Effect<number, StoreFailure> =>
      Effect.suspend(() => {
        const glob = Glob.compile(pattern)
        if (typeof glob === "string") return Effect.fail(Glob.refused(name, pattern, glob))
        let removed = 0
        return guarded(
          "deleteMatching",
          scanAll("deleteMatching", globPrefix + pattern, (page) =>
            Effect.map(
              call("deleteMatching", () => unlinkAll(page), false),
              (n) => {
                removed += n
              }
            ))
        ).pipe(Effect.map(() => removed))
      }).pipe(
        Effect.withSpan("RedisStore.deleteMatching", { attributes: { store: name, pattern }, captureStackTrace: false })
      )

    const versioned: CacheStore.VersionedWrites = {
      setIfNewer: (key, value, version, ttl) =>
        Effect.suspend((): Effect.Effect<Option.Option<number>, StoreFailure> => {
          const buffer = bytes(key, value)
          if (!Buffer.isBuffer(buffer)) return Effect.fail(buffer)
          const ms = ttlMillis(ttl)
          if (Number.isNaN(ms)) return Effect.fail(invalidTtl(name, "setIfNewer", ttl))
          const px = ms === undefined ? -1 : ms <= 0 ? 0 : Math.ceil(ms)
          return Effect.map(
            call("setIfNewer", () => evalScript(client, setIfNewerScript, full(key), buffer, version, px)),
            (reply) => Number(reply) < 0 ? Option.none() : Option.some(Number(reply))
          )
        })
    }

    const service = CacheStore.make({
      name,
      capabilities: { live: false, scan: true, clear: true, maxValueBytes },
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
      deleteMatching,
      getAndExpire,
      directRead: batcher === undefined ? undefined : { _tag: "Callback", get, read: batcher.read }
    })
    const store: RedisStore = {
      ...service,
      prefix,
      redis,
      breakerState: () => breaker?.state() ?? "closed"
    }
    return store
  })
