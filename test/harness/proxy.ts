/**
 * A small TCP proxy on a free loopback port in front of a server, for fault tests that need
 * more than killing a process: added latency, a black hole (connections accepted, nothing
 * forwarded either way) and connection resets — all without root.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import * as net from "node:net"
import { freePort, waitForPort } from "./process.js"

export type ProxyMode = "forward" | "blackhole"

export interface TcpProxy {
  readonly host: string
  readonly port: number
  /** Delay added to every chunk, both ways. */
  readonly setLatency: (ms: number) => void
  /** `blackhole`: accept and read, deliver nothing (held until `forward` again); `forward`: pass bytes through. */
  readonly setMode: (mode: ProxyMode) => void
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
    const sockets = new Set<net.Socket>()
    // Bytes sent during a black hole are held, as TCP would keep retransmitting them through a
    // partition, and delivered when it heals; dropping them inside a live stream would be a
    // failure no real network produces.
    const held: Array<() => void> = []
    const pass = (from: net.Socket, to: net.Socket) => {
      from.on("data", (chunk: Buffer) => {
        const deliver = () => {
          if (!to.destroyed) to.write(chunk)
        }
        if (mode === "blackhole") held.push(deliver)
        else if (latency === 0) deliver()
        else setTimeout(deliver, latency)
      })
    }
    const server = net.createServer((client) => {
      const upstream = net.connect({ host: target.host, port: target.port })
      sockets.add(client)
      sockets.add(upstream)
      const close = () => {
        sockets.delete(client)
        sockets.delete(upstream)
        client.destroy()
        upstream.destroy()
      }
      client.on("error", close)
      upstream.on("error", close)
      client.on("close", close)
      upstream.on("close", close)
      pass(client, upstream)
      pass(upstream, client)
    })
    yield* Effect.acquireRelease(
      Effect.async<void, Error>((resume) => {
        server.once("error", (e) => resume(Effect.fail(e)))
        server.listen(port, "127.0.0.1", () => resume(Effect.void))
      }),
      () =>
        Effect.async<void>((resume) => {
          for (const s of sockets) s.destroy()
          server.close(() => resume(Effect.void))
        })
    )
    yield* waitForPort(port)
    return {
      host: "127.0.0.1",
      port,
      setLatency: (ms) => {
        latency = ms
      },
      setMode: (m) => {
        mode = m
        if (m === "forward") { for (const deliver of held.splice(0)) deliver() }
      },
      resetAll: () => {
        for (const s of sockets) s.resetAndDestroy()
      },
      connections: () => [...sockets].filter((s) => s.remotePort !== target.port).length
    }
  })
