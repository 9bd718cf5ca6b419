/**
 * Store keys of a namespace. A namespace's part of the key ends at its first unescaped `:`: the
 * namespace's own `:` and `\` are escaped, the caller's key follows as it is. So no key, however
 * it is written, reaches into another namespace (`user` + `session:x` is `user:session:x`, while
 * `user:session` + `x` is `user\:session:x`). Stores escape their own prefix the same way.
 */
import { prefixOf } from "../store.js"

/** The prefix every store key of a namespace starts with. @internal */
export const namespacePrefix: (namespace: string) => string = prefixOf
