/**
 * Late-write protection on a ring of three real memcached servers: seeded interleavings through
 * two independent MemcachedStore clients (each with its own connections, key order and single
 * flight, as two processes have), and the same race between two real OS processes.
 */
import * as MemcachedStore from "effect-cachekit/MemcachedStore"
import { fixture } from "./harness/fixture.js"
import { lateWriteSuite } from "./harness/lateWritesSuite.js"
import { startMemcacheds } from "./harness/memcached.js"

const ring = fixture(startMemcacheds(3))
const servers = () => ring().map((server) => server.address)

lateWriteSuite({
  name: "memcached",
  store: (prefix) => MemcachedStore.make({ servers: servers(), prefix }),
  worker: () => ({ kind: "memcached", servers: servers() }),
  purges: false
})
