/**
 * Store keys of a namespace. A namespace's part of the key ends at its first unescaped `:`: the
 * namespace's own `:` and `\` are escaped, the caller's key follows as it is. So no key, however
 * it is written, reaches into another namespace (`user` + `session:x` is `user:session:x`, while
 * `user:session` + `x` is `user\:session:x`). Stores escape their own prefix the same way.
 */
import { prefixOf } from "../store.js"

/** The prefix every store key of a namespace starts with. @internal */
export const namespacePrefix: (namespace: string) => string = prefixOf

/**
 * The prefix of the keys of a versioned namespace at one version: the namespace's part ends in
 * `\v` and the version's token, which no unversioned namespace's part can hold (its `\` only
 * ever escapes `:` or `\`). So entries of different versions, and of unversioned handles of the
 * same name, never meet. @internal
 */
export const versionedPrefix = (namespace: string, token: string): string => versionedBase(namespace) + token + ":"

/** What every key of a versioned namespace starts with, at any version. @internal */
export const versionedBase = (namespace: string): string => prefixOf(namespace).slice(0, -1) + "\\v"
