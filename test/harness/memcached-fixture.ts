/**
 * memcached servers shared by every test of a file.
 */
import { afterAll, beforeAll } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { startMemcacheds } from "./memcached.js"
import type { Memcached, MemcachedOptions } from "./memcached.js"

/**
 * Servers shared by every test of a file: started before the first test (a failure fails the
 * file), stopped by PID after the last one.
 */
export const useMemcached = (n: number, options: MemcachedOptions = {}): () => ReadonlyArray<Memcached> => {
  const scope = Effect.runSync(Scope.make())
  let servers: ReadonlyArray<Memcached> | undefined
  beforeAll(async () => {
    servers = await Effect.runPromise(Scope.extend(startMemcacheds(n, options), scope))
  })
  afterAll(async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })
  return () => {
    if (servers === undefined) throw new Error("the memcached servers of this file did not start")
    return servers
  }
}
