import { StoreError } from "../../CacheError.js"
import type { StoreErrorReason } from "../../CacheError.js"

/*
 * Replies that mean "this server cannot serve you right now" rather than "this command is wrong":
 * a server still loading its dataset, a cluster with uncovered slots, a demoted master during a
 * failover. They count against the circuit breaker like a refused connection does.
 */
const unavailableReplies = new Set(["LOADING", "CLUSTERDOWN", "MASTERDOWN", "READONLY", "TRYAGAIN", "BUSY"])

const connectionCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "ERR_SOCKET_CLOSED",
  "ERR_STREAM_DESTROYED"
])

const connectionMessages = [
  "Connection is closed",
  "Stream isn't writeable",
  "Cluster isn't ready",
  "None of startup nodes is available",
  "Cluster is disconnected",
  "Cluster is disconnecting",
  "Cluster is ended",
  "Too many Cluster redirections",
  "Failed to refresh slots cache",
  "Node is disconnected",
  "Connection is aborted",
  "Connection is discarded",
  "Command aborted due to connection close",
  "Reached the max retries per request limit"
]

/**
 * Replies that refuse the client's credentials: a wrong password or user (WRONGPASS), none given
 * where one is required (NOAUTH), and Redis 5's wording of a wrong password.
 * @internal
 */
export const isAuthRefusal = (cause: unknown): cause is Error =>
  cause instanceof Error && cause.name === "ReplyError" &&
  (cause.message.startsWith("WRONGPASS") || cause.message.startsWith("NOAUTH") ||
    cause.message.startsWith("ERR invalid password"))

/** @internal */
export const reasonOf = (cause: unknown): StoreErrorReason => {
  if (!(cause instanceof Error)) return "connection"
  const message = cause.message
  if (cause.name === "ReplyError") {
    if (isAuthRefusal(cause)) return "auth"
    const code = message.split(" ", 1)[0] ?? ""
    // MOVED / ASK reach the caller only when a redirection could not be followed: the slot map
    // is stale while a slot moves, which is about reaching the right node, not about the command.
    return unavailableReplies.has(code) || code === "MOVED" || code === "ASK" ? "connection" : "command"
  }
  if (cause.name === "ParserError") return "protocol"
  if (message === "Command timed out" || message.startsWith("Socket timeout") || message === "connect ETIMEDOUT") {
    return "timeout"
  }
  const code = (cause as { code?: unknown }).code
  if (typeof code === "string" && connectionCodes.has(code)) return "connection"
  if (cause.name === "MaxRetriesPerRequestError" || cause.name === "AbortError") return "connection"
  if (connectionMessages.some((m) => message.startsWith(m))) return "connection"
  if (message.includes("should belong to the same slot")) return "command"
  // Anything else the client raises without a server reply is about the transport.
  return "connection"
}

/**
 * What the errors of one client can say about it: where it connects, and the server's refusal of
 * its credentials while that lasts.
 * @internal
 */
export interface ClientContext {
  /** `host:port`, or how the server is found (Sentinel, cluster); never credentials. */
  readonly address: string
  /** The reply that refused the credentials, from the last attempt to connect; cleared once accepted. */
  readonly refusal: () => Error | undefined
}

const OFFLINE = "Stream isn't writeable and enableOfflineQueue options is false"

/**
 * Maps whatever ioredis rejected with to a `StoreError`, keeping the original as `cause`. With the
 * client's context, the detail names the server, and says so when the call failed because the
 * server refused the credentials (reason `"auth"`: ioredis itself only reports the connection
 * it then drops). ioredis's own words about its options are put in ours.
 * @internal
 */
export const toStoreError = (
  store: string,
  operation: string,
  cause: unknown,
  context?: ClientContext
): StoreError => {
  if (cause instanceof StoreError) return cause
  const message = cause instanceof Error ? cause.message : String(cause)
  let reason = reasonOf(cause)
  let detail = message
  if (context !== undefined) {
    const refusal = reason === "connection" ? context.refusal() : undefined
    if (refusal !== undefined || reason === "auth") {
      reason = "auth"
      detail = `redis at ${context.address} refused the credentials: ${(refusal ?? cause as Error).message}`
    } else if (message.startsWith(OFFLINE)) {
      detail = `not connected to redis at ${context.address} (reconnecting); with offlineQueue off, ` +
        "a call made meanwhile fails at once instead of waiting"
    } else {
      detail = `${message} (redis at ${context.address})`
    }
  }
  // Validation is skipped (`true`): every field is built here, and on a failing backend this
  // runs for every call, where validating would cost more than the rest of the error path.
  return new StoreError({ store, operation, reason, detail, cause }, true)
}

/** @internal */
export const timeoutError = (store: string, operation: string, millis: number, address: string): StoreError =>
  new StoreError({
    store,
    operation,
    reason: "timeout",
    detail: `no reply from redis at ${address} within the commandTimeout of ${millis} ms`
  }, true)

/**
 * Whether a failure says the cluster's slot map is out of date.
 * @internal
 */
export const isRedirection = (cause: unknown): boolean =>
  cause instanceof Error && (cause.message.startsWith("MOVED ") || cause.message.startsWith("ASK "))
