/**
 * A small TCP proxy on a free loopback port in front of a server, for fault tests that need
 * more than killing a process — all without root:
 * - added latency on every chunk;
 * - a black hole: connections accepted, nothing delivered either way until it heals;
 * - held replies: requests reach the server, its answers wait until released;
 * - forged bytes injected into the clients' streams;
 * - connection resets.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import * as net from "node:net"
import { freePort, waitForPort } from "./process.js"

/**
 * `forward`: pass bytes through. `blackhole`: deliver nothing either way. `hold-replies`: pass
 * requests, hold the server's answers. Bytes held in either mode are delivered, in order, when the
 * proxy is set back to `forward` — as TCP would retransmit them through a partition that heals;
 * dropping bytes inside a live stream is a failure no real network produces.
 */
export type ProxyMode = "forward" | "blackhole" | "hold-replies"

export interface TcpProxy {
  readonly host: string
  readonly port: number
  /** `host:port` of the proxy. */
  readonly address: string
  /** Delay added to every chunk, both ways. */
  readonly setLatency: (ms: number) => void
  readonly setMode: (mode: ProxyMode) => void
  /** Writes bytes to every connected client now, ahead of anything held back. */
  readonly inject: (text: string) => void
  /** Resets (RST) every open connection. */
  readonly resetAll: () => void
  /** Open client connections. */
  readonly connections: () => number
}

export const tcpProxy = (target: { readonly host: string; readonly port: number }): Effect.Effect<
  TcpProxy,
  Error,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const port = yield* freePort
    let latency = 0
    let mode: ProxyMode = "forward"
    const clients = new Set<net.Socket>()
    const upstreams = new Set<net.Socket>()
    const held: Array<() => void> = []
    const pass = (from: net.Socket, to: net.Socket, isReply: boolean) => {
      from.on("data", (chunk: Buffer) => {
        const deliver = () => {
          if (!to.destroyed) to.write(chunk)
        }
        if (mode === "blackhole" || (mode === "hold-replies" && isReply)) held.push(deliver)
        else if (latency === 0) deliver()
        else setTimeout(deliver, latency)
      })
    }
    const server = net.createServer((client) => {
      const upstream = net.connect({ host: target.host, port: target.port })
      clients.add(client)
      upstreams.add(upstream)
      const close = () => {
        clients.delete(client)
        upstreams.delete(upstream)
        client.destroy()
        upstream.destroy()
      }
      client.on("error", close)
      upstream.on("error", close)
      client.on("close", close)
      upstream.on("close", close)
      pass(client, upstream, false)
      pass(upstream, client, true)
    })
    yield* Effect.acquireRelease(
      Effect.async<void, Error>((resume) => {
        server.once("error", (e) => resume(Effect.fail(e)))
        server.listen(port, "127.0.0.1", () => resume(Effect.void))
      }),
      () =>
        Effect.async<void>((resume) => {
          for (const s of [...clients, ...upstreams]) s.destroy()
          server.close(() => resume(Effect.void))
        })
    )
    yield* waitForPort(port)
    return {
      host: "127.0.0.1",
      port,
      address: `127.0.0.1:${port}`,
      setLatency: (ms) => {
        latency = ms
      },
      setMode: (m) => {
        mode = m
        if (m === "forward") { for (const deliver of held.splice(0)) deliver() }
      },
      inject: (text) => {
        for (const client of clients) client.write(Buffer.from(text, "latin1"))
      },
      resetAll: () => {
        for (const s of [...clients, ...upstreams]) s.resetAndDestroy()
      },
      connections: () => clients.size
    }
  })
