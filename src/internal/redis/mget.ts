/**
 * An MGET of a store's keys under its prefix, written to the socket as the store encodes it.
 *
 * ioredis encodes a command argument by argument: it measures each one with a native
 * `Buffer.byteLength` call and appends it to a string, and a store would first have built each
 * prefixed key as a string of its own. For the MGETs of `getMany` and of coalesced reads (100
 * keys and more), that work took about as long as everything else the client does for the call.
 * Here the command is one string built in one pass, with the prefix written in place, and the
 * lengths are the keys' own lengths when every character is ASCII (checked once, over the whole
 * command); otherwise each key is written as its WTF-8 bytes, as `redisKey` sends it.
 *
 * ioredis's own `Script` overrides `toWritable` the same way. Only for a standalone or Sentinel
 * client without ioredis's own `keyPrefix` (which it applies to a command's arguments, and this
 * command has none): a cluster routes a command by its keys.
 *
 * ioredis arms a timer of its own per command when the client has a `commandTimeout`. This
 * command is always sent by a caller that bounds it itself (the store's deadlines: one shared
 * timer for every call in flight); when that bound is no longer than the client's, the command
 * does without ioredis's timer: a `setTimeout` and a `clearTimeout` less per MGET.
 * @internal
 */
import { Command } from "ioredis"
import type { Redis } from "ioredis"
import * as KeyBytes from "../keyBytes.js"

const CRLF = "\r\n"

class PrefixedMget extends Command {
  constructor(
    private readonly keyPrefix: string,
    private readonly storeKeys: ReadonlyArray<string>,
    private readonly bounded: boolean
  ) {
    // replyEncoding null: values come back as Buffers, as from `mgetBuffer`
    super("mget", [], { replyEncoding: null })
  }

  /** No timer per command when the caller's deadline bounds it at least as tightly (see above). */
  override setTimeout(ms: number): void {
    if (!this.bounded) super.setTimeout(ms)
  }

  override toWritable(): string | Buffer {
    const keys = this.storeKeys
    const prefix = this.keyPrefix
    const n = prefix.length
    let text = `*${keys.length + 1}\r\n$4\r\nMGET\r\n`
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!
      text += "$" + (n + key.length) + CRLF + prefix + key + CRLF
    }
    // every length above counts characters: they are the byte counts when all are ASCII
    if (Buffer.byteLength(text) === text.length) return text
    const parts: Array<Buffer> = [Buffer.from(`*${keys.length + 1}\r\n$4\r\nMGET\r\n`, "latin1")]
    for (const key of keys) {
      const bytes = KeyBytes.encode(prefix + key)
      parts.push(Buffer.from("$" + bytes.byteLength + CRLF, "latin1"), bytes, Buffer.from(CRLF, "latin1"))
    }
    return Buffer.concat(parts)
  }
}

/**
 * Whether `mget` may be used on this client: a standalone or Sentinel client that adds no
 * prefix of its own.
 * @internal
 */
export const supported = (client: Redis): boolean => {
  const keyPrefix = client.options.keyPrefix
  return keyPrefix === undefined || keyPrefix === ""
}

/**
 * The values of `prefix + key` for every key, in order (`null` for a missing key). Written at
 * once, never auto-pipelined: one MGET is already a batch. `bounded`: the caller bounds the call
 * within the client's own `commandTimeout`, so ioredis arms no timer for it.
 * @internal
 */
export const mget = (
  client: Redis,
  prefix: string,
  keys: ReadonlyArray<string>,
  bounded: boolean
): Promise<Array<Buffer | null>> =>
  client.sendCommand(new PrefixedMget(prefix, keys, bounded)) as Promise<Array<Buffer | null>>
