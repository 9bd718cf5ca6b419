/**
 * Redis Cluster hash slots: CRC16 (XMODEM) of the key, or of its hash tag, modulo 16384.
 * Computed here so multi-key commands can be split into groups a cluster accepts.
 */

const table = (() => {
  const t = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let crc = i << 8
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    }
    t[i] = crc
  }
  return t
})()

const crc16 = (bytes: Uint8Array, start: number, end: number): number => {
  let crc = 0
  for (let i = start; i < end; i++) {
    crc = ((crc << 8) & 0xffff) ^ table[((crc >> 8) ^ bytes[i]!) & 0xff]!
  }
  return crc
}

const OPEN = 0x7b // {
const CLOSE = 0x7d // }

/** @internal */
export const SLOTS = 16384

/**
 * The slot of a key as Redis computes it: when the key holds `{…}` with something between the
 * first `{` and the next `}`, only that part is hashed. A key is given as the client sends it:
 * a string (sent as UTF-8) or its bytes.
 * @internal
 */
export const slotOf = (key: string | Buffer): number => {
  const bytes = typeof key === "string" ? Buffer.from(key, "utf8") : key
  const open = bytes.indexOf(OPEN)
  if (open !== -1) {
    const close = bytes.indexOf(CLOSE, open + 1)
    if (close > open + 1) return crc16(bytes, open + 1, close) % SLOTS
  }
  return crc16(bytes, 0, bytes.length) % SLOTS
}

/**
 * Groups positions of `keys` by slot, keeping the order inside each group.
 * @internal
 */
export const groupBySlot = (keys: ReadonlyArray<string | Buffer>): Map<number, Array<number>> => {
  const groups = new Map<number, Array<number>>()
  for (let i = 0; i < keys.length; i++) {
    const slot = slotOf(keys[i]!)
    const group = groups.get(slot)
    if (group === undefined) groups.set(slot, [i])
    else group.push(i)
  }
  return groups
}
