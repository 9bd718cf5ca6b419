/**
 * Real Redis servers for tests and benchmarks: a standalone server, a 3-master/3-replica
 * Cluster and a Sentinel group, each started from the `redis-server` binary on free loopback
 * ports, without persistence, in its own temp dir, and stopped by PID when the scope closes.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import { execFile } from "node:child_process"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { eventually, freePort, freePorts, spawnServer, tempDir } from "./process.js"
import type { ServerProcess } from "./process.js"

const HOST = "127.0.0.1"

/** Runs `redis-cli -h 127.0.0.1 -p port args…` and returns its output. */
export const redisCli = (port: number, ...args: ReadonlyArray<string>): Effect.Effect<string, Error> =>
  Effect.async<string, Error>((resume) => {
    execFile(
      "redis-cli",
      ["-h", HOST, "-p", String(port), ...args],
      { timeout: 30_000, maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) resume(Effect.fail(new Error(`redis-cli -p ${port} ${args.join(" ")}: ${error.message}\n${stderr}`)))
        else resume(Effect.succeed(stdout))
      }
    )
  })

const baseArgs = (port: number, dir: string): Array<string> => [
  "--port",
  String(port),
  "--bind",
  HOST,
  "--save",
  "",
  "--appendonly",
  "no",
  "--dir",
  dir,
  "--daemonize",
  "no",
  "--loglevel",
  "warning"
]

/** A Redis server process the harness started. */
export interface RedisNode {
  readonly host: string
  readonly port: number
  readonly dir: string
  /** The process currently running on `port` (changes after `restart`). */
  readonly process: () => ServerProcess
  /** SIGKILL, then wait until the port is closed. */
  readonly kill: Effect.Effect<void, Error>
  /** Starts a fresh process on the same port and dir, owned by the caller's scope. */
  readonly restart: Effect.Effect<void, Error, Scope.Scope>
}

const startNode = (
  port: number,
  dir: string,
  extra: ReadonlyArray<string> = []
): Effect.Effect<RedisNode, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const start = spawnServer({ command: "redis-server", args: [...baseArgs(port, dir), ...extra], port, cwd: dir })
    let current = yield* start
    const node: RedisNode = {
      host: HOST,
      port,
      dir,
      process: () => current,
      kill: Effect.suspend(() => current.kill),
      restart: Effect.map(start, (p) => {
        current = p
      })
    }
    return node
  })

/** A standalone server. */
export interface RedisServer extends RedisNode {
  readonly url: string
}

/** Starts a standalone server, on a free port unless one is given. */
export const redisServer = (
  options: { readonly args?: ReadonlyArray<string>; readonly port?: number } = {}
): Effect.Effect<RedisServer, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const port = options.port ?? (yield* freePort)
    const dir = yield* tempDir("redis")
    const node = yield* startNode(port, dir, options.args)
    return { ...node, url: `redis://${HOST}:${port}` }
  })

const infoField = (info: string, field: string): string | undefined => {
  const line = info.split(/\r?\n/).find((l) => l.startsWith(`${field}:`))
  return line?.slice(field.length + 1).trim()
}

/** A Redis Cluster: 3 masters with one replica each. */
export interface RedisCluster {
  readonly nodes: ReadonlyArray<RedisNode>
  readonly startupNodes: ReadonlyArray<{ host: string; port: number }>
  /** The node currently serving `slot` as master. */
  readonly masterOf: (slot: number) => Effect.Effect<RedisNode, Error>
  /** The slot of a key, as the cluster computes it. */
  readonly keySlot: (key: string) => Effect.Effect<number, Error>
}

/**
 * Starts 6 nodes with a short `cluster-node-timeout` (so a failover takes a couple of seconds),
 * joins them with `redis-cli --cluster create … --cluster-replicas 1`, and waits until every node
 * reports `cluster_state:ok` and every replica is in sync.
 */
export const redisCluster = (options: { readonly nodeTimeoutMs?: number } = {}): Effect.Effect<
  RedisCluster,
  Error,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const ports = yield* freePorts(6)
    const nodeTimeout = String(options.nodeTimeoutMs ?? 1000)
    const nodes = yield* Effect.forEach(ports, (port) =>
      Effect.flatMap(tempDir(`redis-cluster-${port}`), (dir) =>
        startNode(port, dir, [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          join(dir, "nodes.conf"),
          "--cluster-node-timeout",
          nodeTimeout,
          // a replica may always take over, however long its master has been unreachable
          "--cluster-replica-validity-factor",
          "0",
          // slots of a dead master are refused; the others keep serving (what a cache wants)
          "--cluster-require-full-coverage",
          "no",
          "--cluster-allow-reads-when-down",
          "no"
        ])), { concurrency: "unbounded" })
    yield* redisCli(
      ports[0]!,
      "--cluster",
      "create",
      ...ports.map((p) =>
        `${HOST}:${p}`
      ),
      "--cluster-replicas",
      "1",
      "--cluster-yes"
    )
    yield* eventually(
      "cluster_state:ok on every node",
      Effect.map(
        Effect.forEach(ports, (p) =>
          redisCli(p, "cluster", "info")),
        (infos) =>
          infos.every((info) =>
            infoField(info, "cluster_state") === "ok" && infoField(info, "cluster_known_nodes") === "6" &&
            infoField(info, "cluster_slots_ok") === "16384"
          )
      ),
      30_000
    )
    yield* eventually(
      "every replica in sync",
      Effect.map(Effect.forEach(ports, (p) => redisCli(p, "info", "replication")), (infos) => {
        const replicas = infos.filter((i) => infoField(i, "role") === "slave")
        return replicas.length === 3 && replicas.every((i) => infoField(i, "master_link_status") === "up")
      }),
      30_000
    )
    const keySlot = (key: string) => Effect.map(redisCli(ports[0]!, "cluster", "keyslot", key), (s) => Number(s.trim()))
    const masterOf = (slot: number) =>
      Effect.gen(function*() {
        // CLUSTER SHARDS is answered by any live node; ask them in turn
        for (const node of nodes) {
          if (!node.process().alive()) continue
          const out = yield* Effect.either(redisCli(node.port, "cluster", "nodes"))
          if (out._tag === "Left") continue
          for (const line of out.right.split("\n")) {
            const parts = line.trim().split(" ")
            if (parts.length < 9 || !parts[2]!.includes("master") || parts[2]!.includes("fail")) continue
            const port = Number(parts[1]!.split("@")[0]!.split(":")[1])
            for (const range of parts.slice(8)) {
              const [from, to] = range.split("-").map(Number)
              if (from !== undefined && slot >= from && slot <= (to ?? from)) {
                const found = nodes.find((n) => n.port === port)
                if (found) return found
              }
            }
          }
        }
        return yield* Effect.fail(new Error(`no live master serves slot ${slot}`))
      })
    return {
      nodes,
      startupNodes: nodes.map((n) => ({ host: HOST, port: n.port })),
      masterOf,
      keySlot
    }
  })

/** A Sentinel group: one master, one replica, three sentinels. */
export interface RedisSentinel {
  readonly masterName: string
  readonly master: RedisNode
  readonly replica: RedisNode
  readonly sentinels: ReadonlyArray<{ host: string; port: number; process: ServerProcess }>
  /** The master's address as the sentinels currently report it. */
  readonly currentMaster: Effect.Effect<{ host: string; port: number }, Error>
}

/**
 * Starts a master, a replica of it and three sentinels (quorum 2) with a short
 * `down-after-milliseconds` and `failover-timeout`, and waits until every sentinel sees the
 * replica and the other sentinels.
 */
export const redisSentinel = (options: { readonly downAfterMs?: number } = {}): Effect.Effect<
  RedisSentinel,
  Error,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const masterName = "cachekit"
    const [masterPort, replicaPort, ...sentinelPorts] = yield* freePorts(5)
    const master = yield* Effect.flatMap(tempDir("redis-master"), (dir) => startNode(masterPort!, dir))
    const replica = yield* Effect.flatMap(
      tempDir("redis-replica"),
      (dir) => startNode(replicaPort!, dir, ["--replicaof", HOST, String(masterPort)])
    )
    yield* eventually(
      "replica in sync",
      Effect.map(redisCli(replicaPort!, "info", "replication"), (i) => infoField(i, "master_link_status") === "up")
    )
    const sentinels = yield* Effect.forEach(sentinelPorts, (port) =>
      Effect.gen(function*() {
        const dir = yield* tempDir("redis-sentinel")
        const conf = join(dir, "sentinel.conf")
        writeFileSync(
          conf,
          [
            `port ${port}`,
            `bind ${HOST}`,
            `dir ${dir}`,
            `sentinel monitor ${masterName} ${HOST} ${masterPort} 2`,
            `sentinel down-after-milliseconds ${masterName} ${options.downAfterMs ?? 500}`,
            `sentinel failover-timeout ${masterName} 2000`,
            `sentinel parallel-syncs ${masterName} 1`,
            ""
          ].join("\n")
        )
        const process = yield* spawnServer({ command: "redis-server", args: [conf, "--sentinel"], port, cwd: dir })
        return { host: HOST, port, process }
      }), { concurrency: "unbounded" })
    yield* eventually(
      "every sentinel sees the replica and the other sentinels",
      Effect.map(
        Effect.forEach(sentinels, (s) => redisCli(s.port, "sentinel", "master", masterName)),
        (outs) =>
          outs.every((out) => {
            const lines = out.split("\n").map((l) => l.trim())
            const field = (name: string) => lines[lines.indexOf(name) + 1]
            return field("num-slaves") === "1" && field("num-other-sentinels") === "2"
          })
      ),
      30_000
    )
    const currentMaster = Effect.flatMap(
      redisCli(sentinels[0]!.port, "sentinel", "get-master-addr-by-name", masterName),
      (out) => {
        const [host, port] = out.trim().split("\n").map((l) => l.trim())
        return host && port ? Effect.succeed({ host, port: Number(port) }) : Effect.fail(new Error(`no master: ${out}`))
      }
    )
    return { masterName, master, replica, sentinels, currentMaster }
  })
