import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { StoreFailure } from "../../CacheError.js"
import { InvalidOptions, StoreError, StoreErrorReason } from "../../CacheError.js"
import type * as CacheStore from "../../CacheStore.js"
import type { Fault, FaultController, Operation } from "../../testing.js"
import { check, duration as decodeDuration } from "../options.js"

// a record, so that the compiler checks the list against the `Operation` type, both ways
const everyOperation: Record<Operation, true> = {
  get: true,
  getMany: true,
  set: true,
  setMany: true,
  setIfAbsent: true,
  delete: true,
  deleteMany: true,
  expire: true,
  clear: true,
  keys: true,
  lease: true
}

/** @internal */
export const operations = Object.keys(everyOperation) as ReadonlyArray<Operation>

const COMPONENT = "testing.faulty"

/** @internal */
export const healthy: Fault = { _tag: "Healthy" }

/** @internal */
export const blackHole: Fault = { _tag: "BlackHole" }

/** @internal */
export const latency = (duration: Duration.DurationInput): Fault => ({
  _tag: "Latency",
  latency: decodeDuration(COMPONENT, "latency", duration)
})

const reasons: ReadonlyArray<string> = StoreErrorReason.literals

/** @internal */
export const failure = (
  reason: StoreErrorReason,
  options?: { readonly after?: Duration.DurationInput | undefined; readonly detail?: string | undefined }
): Fault => {
  check(
    reasons.includes(reason),
    COMPONENT,
    "reason",
    `reason must be one of ${reasons.join(", ")}, got ${String(reason)}`
  )
  return {
    _tag: "Failure",
    reason,
    after: options?.after === undefined ? Duration.zero : decodeDuration(COMPONENT, "after", options.after),
    detail: options?.detail ?? "injected fault"
  }
}

const isFault = (u: unknown): u is Fault => {
  if (typeof u !== "object" || u === null || !("_tag" in u)) return false
  const fault = u as Fault
  switch (fault._tag) {
    case "Healthy":
    case "BlackHole":
      return true
    case "Latency":
      return Duration.isDuration(fault.latency)
    case "Failure":
      return reasons.includes(fault.reason) && Duration.isDuration(fault.after) && typeof fault.detail === "string"
    default:
      return false
  }
}

const operationsOf = (on: Operation | Iterable<Operation> | undefined): ReadonlyArray<Operation> => {
  const list: ReadonlyArray<string> = on === undefined ? operations : typeof on === "string" ? [on] : Array.from(on)
  for (const operation of list) {
    check(
      Object.hasOwn(everyOperation, operation),
      COMPONENT,
      "operations",
      `unknown operation ${JSON.stringify(operation)}; the operations are ${operations.join(", ")}`
    )
  }
  return list as ReadonlyArray<Operation>
}

/**
 * Wraps a store so that every operation first goes through the fault set for it. The wrapper
 * is a new store built from the operations alone: it has no `directRead`, so no fast path of the
 * wrapped store can answer around a fault.
 * @internal
 */
export const make = (
  inner: CacheStore.Service
): { readonly store: CacheStore.Service; readonly faults: FaultController } => {
  const current = new Map<Operation, Fault>()
  const counts = Object.fromEntries(operations.map((operation) => [operation, 0])) as Record<Operation, number>

  const guard = <A>(operation: Operation, effect: Effect.Effect<A, StoreFailure>): Effect.Effect<A, StoreFailure> =>
    Effect.suspend(() => {
      counts[operation]++
      const fault = current.get(operation)
      if (fault === undefined) return effect
      switch (fault._tag) {
        case "Healthy":
          return effect
        case "Latency":
          return Effect.zipRight(Effect.sleep(fault.latency), effect)
        case "BlackHole":
          return Effect.never
        case "Failure": {
          const error = Effect.fail(
            new StoreError({ store: inner.name, operation, reason: fault.reason, detail: fault.detail })
          )
          return Duration.isZero(fault.after) ? error : Effect.zipRight(Effect.sleep(fault.after), error)
        }
      }
    })

  // the three calls of a lease share one operation: a fault on "lease" meets each of them
  const leaseOf = (lease: CacheStore.Lease): CacheStore.Lease => ({
    endsOnWrite: lease.endsOnWrite,
    acquire: (key, ttl) => guard("lease", lease.acquire(key, ttl)),
    extend: (key, token, ttl) => guard("lease", lease.extend(key, token, ttl)),
    release: (key, token) => guard("lease", lease.release(key, token))
  })

  const store: CacheStore.Service = {
    name: inner.name,
    capabilities: inner.capabilities,
    get: (key) => guard("get", inner.get(key)),
    getMany: (keys) => guard("getMany", inner.getMany(keys)),
    set: (key, value, ttl) => guard("set", inner.set(key, value, ttl)),
    setMany: (entries) => guard("setMany", inner.setMany(entries)),
    setIfAbsent: (key, value, ttl) => guard("setIfAbsent", inner.setIfAbsent(key, value, ttl)),
    delete: (key) => guard("delete", inner.delete(key)),
    deleteMany: (keys) => guard("deleteMany", inner.deleteMany(keys)),
    expire: (key, ttl) => guard("expire", inner.expire(key, ttl)),
    clear: guard("clear", inner.clear),
    keys: (pattern) => guard("keys", inner.keys(pattern)),
    lease: inner.lease === undefined ? undefined : leaseOf(inner.lease),
    // a fenced write is a write, a marker's swap a removal: faults on "set" and "delete" meet them
    fence: inner.fence === undefined ? undefined : {
      setIf: (key, expected, value, ttl, epoch) => guard("set", inner.fence!.setIf(key, expected, value, ttl, epoch)),
      swap: (key, value, ttl) => guard("delete", inner.fence!.swap(key, value, ttl)),
      epoch: inner.fence.epoch
    }
  }

  const faults: FaultController = {
    inject: (fault, on) => {
      if (!isFault(fault)) {
        throw new InvalidOptions({
          component: COMPONENT,
          option: "fault",
          detail: "inject takes a fault made by this module"
        })
      }
      const list = operationsOf(on)
      return Effect.sync(() => {
        for (const operation of list) {
          if (fault._tag === "Healthy") current.delete(operation)
          else current.set(operation, fault)
        }
      })
    },
    heal: (on) => {
      const list = operationsOf(on)
      return Effect.sync(() => {
        for (const operation of list) current.delete(operation)
      })
    },
    faultOf: (operation) => {
      operationsOf(operation)
      return Effect.sync(() => current.get(operation) ?? healthy)
    },
    calls: Effect.sync(() => ({ ...counts }))
  }

  return { store, faults }
}
