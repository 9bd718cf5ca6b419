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

/** @internal */
export const reasonOf = (cause: unknown): StoreErrorReason => {
  if (!(cause instanceof Error)) return "connection"
  const message = cause.message
  if (cause.name === "ReplyError") {
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
 * Maps whatever ioredis rejected with to a `StoreError`, keeping the original as `cause`.
 * @internal
 */
export const toStoreError = (store: string, operation: string, cause: unknown): StoreError => {
  if (cause instanceof StoreError) return cause
  const detail = cause instanceof Error ? cause.message : String(cause)
  // Validation is skipped (`true`): every field is built here, and on a failing backend this
  // runs for every call, where validating would cost more than the rest of the error path.
  return new StoreError({ store, operation, reason: reasonOf(cause), detail, cause }, true)
}

/** @internal */
export const timeoutError = (store: string, operation: string, millis: number): StoreError =>
  new StoreError({
    store,
    operation,
    reason: "timeout",
    detail: `no reply within the command timeout of ${millis} ms`
  }, true)

/**
 * Whether a failure says the cluster's slot map is out of date.
 * @internal
 */
export const isRedirection = (cause: unknown): boolean =>
  cause instanceof Error && (cause.message.startsWith("MOVED ") || cause.message.startsWith("ASK "))
