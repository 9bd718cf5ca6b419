/**
 * The durable journal of a write-behind queue over a Redis Stream. Each write is an entry
 * (`XADD`); entries are acknowledged and deleted (`XACK`, `XDEL`) once saved. On start, a consumer
 * of the stream's group takes over what is left: its own unacknowledged entries, those a dead
 * consumer held for longer than `claimIdle` (`XAUTOCLAIM`), and those never delivered (writes of a
 * process that died before it flushed).
 */
import * as Effect from "effect/Effect"
import type { StoreError } from "../../CacheError.js"
import type { RedisClientService } from "../../Redis.js"
import type * as WriteBehind from "../../WriteBehind.js"

const PAGE = 1000

type Raw = Array<[id: string, fields: Array<string>]>

const toEntries = (raw: Raw | null | undefined): Array<WriteBehind.JournalEntry> => {
  const entries: Array<WriteBehind.JournalEntry> = []
  for (const [id, fields] of raw ?? []) {
    let key: string | undefined
    let value: string | undefined
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === "k") key = fields[i + 1]
      else if (fields[i] === "v") value = fields[i + 1]
    }
    // an entry deleted while pending comes back with no fields: nothing to replay
    if (key !== undefined && value !== undefined) entries.push({ id, key, value })
  }
  return entries
}

/** Stream ids in stream order (`ms-seq`). */
const compareIds = (a: string, b: string): number => {
  const [am, as] = a.split("-")
  const [bm, bs] = b.split("-")
  const ms = BigInt(am!) - BigInt(bm!)
  if (ms !== 0n) return ms < 0n ? -1 : 1
  const seq = BigInt(as ?? "0") - BigInt(bs ?? "0")
  return seq === 0n ? 0 : seq < 0n ? -1 : 1
}

/** @internal */
export interface JournalOptions {
  readonly stream: string
  readonly group: string
  readonly consumer: string
  readonly claimIdleMillis: number
}

/** @internal */
export const make = (
  redis: RedisClientService,
  options: JournalOptions
): Effect.Effect<WriteBehind.Journal, StoreError> => {
  const { consumer, group, stream } = options
  const createGroup = redis.use(
    "XGROUP CREATE",
    (c) =>
      c.xgroup("CREATE", stream, group, "0", "MKSTREAM").catch((error: unknown) => {
        if (error instanceof Error && error.message.startsWith("BUSYGROUP")) return "OK"
        throw error
      })
  )

  /** Reads the group from `from` (`0`: this consumer's pending entries; `>`: never delivered). */
  const readAll = (from: "0" | ">"): Effect.Effect<Array<WriteBehind.JournalEntry>, StoreError> =>
    Effect.gen(function*() {
      const all: Array<WriteBehind.JournalEntry> = []
      let cursor: string = from
      while (true) {
        const reply = (yield* redis.use("XREADGROUP", (c) =>
          c.xreadgroup("GROUP", group, consumer, "COUNT", PAGE, "STREAMS", stream, cursor))) as
            | Array<[string, Raw]>
            | null
        const raw = reply?.[0]?.[1] ?? []
        if (raw.length === 0) {
          return all
        }
        for (const entry of toEntries(raw)) {
          all.push(entry)
        }
        if (from === "0") {
          cursor = raw[raw.length - 1]![0]
        }
      }
    })

  const claimAll: Effect.Effect<Array<WriteBehind.JournalEntry>, StoreError> = Effect.gen(function*() {
    const all: Array<WriteBehind.JournalEntry> = []
    let cursor = "0-0"
    do {
      const reply = (yield* redis.use("XAUTOCLAIM", (c) =>
        c.xautoclaim(stream, group, consumer, options.claimIdleMillis, cursor, "COUNT", PAGE))) as [string, Raw]
      for (const entry of toEntries(reply[1])) {
        all.push(entry)
      }
      cursor = reply[0]
    } while (cursor !== "0-0")
    return all
  })

  const recover = Effect.gen(function*() {
    const own = yield* readAll("0")
    const claimed = yield* claimAll
    const fresh = yield* readAll(">")
    const byId = new Map<string, WriteBehind.JournalEntry>()
    for (const entry of [...own, ...claimed, ...fresh]) byId.set(entry.id, entry)
    return Array.from(byId.values()).sort((a, b) => compareIds(a.id, b.id))
  })

  const done = (ids: ReadonlyArray<string>): Effect.Effect<void, StoreError> =>
    Effect.forEach(
      chunks(ids, PAGE),
      (chunk) => redis.use("XACK XDEL", (c) => c.multi().xack(stream, group, ...chunk).xdel(stream, ...chunk).exec()),
      { discard: true }
    )

  return Effect.as(createGroup, {
    name: `redis stream ${stream}`,
    append: (key, value) =>
      Effect.map(redis.use("XADD", (c) => c.xadd(stream, "*", "k", key, "v", value)), (id) => id ?? ""),
    recover,
    done
  })
}

const chunks = <T>(items: ReadonlyArray<T>, size: number): Array<Array<T>> => {
  const out: Array<Array<T>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}
