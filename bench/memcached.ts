/**
 * memcached hit path, side by side in one process against one memcached server that the bench
 * starts itself (free loopback port, stopped by PID at the end):
 *
 * - `MemcachedStore.get` of a warm key (meta protocol, pipelined, our client) vs `memjs`
 *   (binary protocol) vs a raw pipelined meta-protocol loop over one plain `net` socket (the
 *   ceiling: no Effect, no key safety, no breaker, nothing but bytes), at concurrency 1 and 64;
 * - `getMany` of 100 keys vs memjs (100 parallel gets: it has no multi-get) and the raw loop.
 *
 * Each contender runs for a fixed time after a warm-up, in interleaved rounds; ratios are taken
 * within each round and their median is reported. Run: `npm run bench -- memcached`;
 * bench/results/memcached.md summarises several runs.
 */
import { Effect, Exit, Scope } from "effect"
import * as MemcachedStore from "effect-cachekit/MemcachedStore"
import memjs from "memjs"
import { execFileSync } from "node:child_process"
import * as net from "node:net"
import * as os from "node:os"
import { startMemcached } from "../test/harness/memcached.js"
import { compare, effectPool, promisePool } from "./lib.js"

const KEYS = 1000
const ROUNDS = 9
const BUDGET_MS = 400
const VALUE_BYTES = 100
const ids = Array.from({ length: KEYS }, (_, i) => `p${i}`)
const value = new Uint8Array(VALUE_BYTES).fill(120)

const scope = Effect.runSync(Scope.make())
const server = await Effect.runPromise(Scope.extend(startMemcached({ memoryMb: 64 }), scope))

// ---------------------------------------------------------------------------------------------
// contenders
// ---------------------------------------------------------------------------------------------

const store = await Effect.runPromise(
  Scope.extend(MemcachedStore.make({ servers: [server.address], prefix: "bench" }), scope)
)
await Effect.runPromise(store.setMany(ids.map((key) => ({ key, value }))))
const wireKeys = ids.map((id) => `bench:${store.generation()}:${id}`)

const mem = memjs.Client.create(server.address, { logger: { log: () => {} }, timeout: 2, retries: 1 })
for (const k of wireKeys) await mem.set(k, Buffer.from(value), {})

/** The ceiling: one socket, requests batched per tick, answers matched in order, no checks. */
const rawClient = async () => {
  const socket = net.connect({ host: "127.0.0.1", port: server.port, noDelay: true })
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()))
  const waiting: Array<(v: Buffer | undefined) => void> = []
  let out = ""
  let scheduled = false
  let buf: Buffer = Buffer.alloc(0)
  socket.on("data", (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
    let pos = 0
    for (;;) {
      const nl = buf.indexOf(10, pos)
      if (nl === -1) break
      if (buf[pos] === 0x56 /* V */) {
        const size = Number(buf.toString("latin1", pos + 3, nl - 1).split(" ")[0])
        if (buf.length < nl + 1 + size + 2) break
        waiting.shift()!(buf.subarray(nl + 1, nl + 1 + size))
        pos = nl + 1 + size + 2
      } else {
        waiting.shift()!(undefined)
        pos = nl + 1
      }
    }
    buf = pos >= buf.length ? Buffer.alloc(0) : buf.subarray(pos)
  })
  const flush = () => {
    scheduled = false
    socket.write(out)
    out = ""
  }
  return {
    get: (key: string) =>
      new Promise<Buffer | undefined>((resolve) => {
        out += `mg ${key} v\r\n`
        waiting.push(resolve)
        if (!scheduled) {
          scheduled = true
          process.nextTick(flush)
        }
      }),
    close: () => socket.destroy()
  }
}
const raw = await rawClient()

// sanity: everyone reads the same bytes
const check = [
  Buffer.from(
    (await Effect.runPromise(store.get(ids[3]!))).pipe((o) =>
      o._tag === "Some" ? o.value as Uint8Array : new Uint8Array()
    )
  ),
  (await mem.get(wireKeys[3]!)).value!,
  (await raw.get(wireKeys[3]!))!
]
if (!check.every((b) => b.length === VALUE_BYTES && Buffer.compare(b, check[0]!) === 0)) {
  throw new Error("the contenders do not read the same value")
}

const key = (i: number) => (i * 7919) % KEYS

const say = (line = "") => console.log(line)

const memcachedVersion = execFileSync("memcached", ["-V"]).toString().trim()
say(`# memcached get benchmark`)
say()
say(
  `${memcachedVersion}, Node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}); ` +
    `${KEYS} warm keys of ${VALUE_BYTES} bytes on one server. Each contender runs ${ROUNDS} times ${BUDGET_MS} ms, ` +
    `interleaved round by round; load average at start: ${os.loadavg().map((l) => l.toFixed(1)).join(", ")}.`
)
say()

// Batches of ~100 ms: each `run` starts its pool of workers afresh, and a short batch would
// measure that start-up (64 fibers, one runPromise) rather than steady-state gets.
const options = { rounds: ROUNDS, budgetMs: BUDGET_MS, minBatch: 16, batchMs: 100 }

for (const concurrency of [1, 64]) {
  await compare(
    `get hit, concurrency ${concurrency}`,
    [
      { name: "MemcachedStore.get", run: (n) => effectPool(n, concurrency, (i) => store.get(ids[key(i)]!)) },
      {
        name: "memjs get (binary protocol)",
        run: (n) => promisePool(n, concurrency, (i) => mem.get(wireKeys[key(i)]!))
      },
      {
        name: "raw meta loop, one net socket",
        run: (n) => promisePool(n, concurrency, (i) => raw.get(wireKeys[key(i)]!))
      }
    ],
    { ...options, versus: ["memjs get (binary protocol)", "raw meta loop, one net socket"] }
  )
}

const batch = (i: number) => Array.from({ length: 100 }, (_, j) => (i * 100 + j * 13) % KEYS)
{
  const concurrency = 4
  await compare(
    `getMany of 100 keys, concurrency ${concurrency} (ops = batches)`,
    [
      {
        name: "MemcachedStore.getMany",
        run: (n) => effectPool(n, concurrency, (i) => store.getMany(batch(i).map((k) => ids[k]!)))
      },
      {
        name: "memjs, 100 parallel gets",
        run: (n) => promisePool(n, concurrency, (i) => Promise.all(batch(i).map((k) => mem.get(wireKeys[k]!))))
      },
      {
        name: "raw meta loop, 100 pipelined gets",
        run: (n) => promisePool(n, concurrency, (i) => Promise.all(batch(i).map((k) => raw.get(wireKeys[k]!))))
      }
    ],
    { ...options, versus: ["memjs, 100 parallel gets", "raw meta loop, 100 pipelined gets"] }
  )
}

raw.close()
mem.close()
await Effect.runPromise(Scope.close(scope, Exit.void))
