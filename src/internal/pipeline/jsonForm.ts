/**
 * The lossless JSON form of an encoded value: plain JSON when it says the value exactly (the
 * common case), else a tagged form that also says `undefined`, `NaN`, `±Infinity`, `-0`, `Date`
 * and `bigint`. Anything else (a class instance, a function, a symbol) cannot be stored.
 */
import * as Either from "effect/Either"

/** A number as JSON can hold it: a finite one, else null. @internal */
export const finiteOrNull = (n: number): number | null => Number.isFinite(n) ? n : null

/** Whether plain `JSON.stringify` keeps this value exactly (the common case, checked first). */
const isPlainJson = (u: unknown): boolean => {
  switch (typeof u) {
    case "string":
    case "boolean":
      return true
    case "number":
      return Number.isFinite(u) && !Object.is(u, -0)
    case "object": {
      if (u === null) return true
      if (Array.isArray(u)) {
        for (let i = 0; i < u.length; i++) {
          if (!(i in u) || !isPlainJson(u[i])) return false
        }
        return true
      }
      const proto = Object.getPrototypeOf(u)
      if (proto !== Object.prototype && proto !== null) return false
      if ("toJSON" in u) return false
      for (const key in u) {
        if (!isPlainJson((u as Record<string, unknown>)[key])) return false
      }
      return true
    }
    default:
      return false
  }
}

/** Marks an array of the tagged form, and a special value. */
const ARRAY = "#"
const SPECIAL = "$"

class Unstorable extends Error {}

/** Sets a property as data, `__proto__` included (an assignment would set the prototype). */
const define = (target: Record<string, unknown>, key: string, value: unknown): void => {
  if (key === "__proto__") {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  } else {
    target[key] = value
  }
}

/**
 * The tagged form: every array starts with `"#"`, and what plain JSON cannot say is an array
 * starting with `"$"` (`["$","undefined"]`, `["$","number","NaN"]`, `["$","date",ms]`, …).
 */
const tag = (u: unknown): unknown => {
  switch (typeof u) {
    case "string":
    case "boolean":
      return u
    case "number":
      return Number.isFinite(u) && !Object.is(u, -0) ? u : [SPECIAL, "number", String(u === 0 ? "-0" : u)]
    case "undefined":
      return [SPECIAL, "undefined"]
    case "bigint":
      return [SPECIAL, "bigint", u.toString()]
    case "object": {
      if (u === null) return null
      if (Array.isArray(u)) {
        const out: Array<unknown> = [ARRAY]
        for (let i = 0; i < u.length; i++) out.push(tag(u[i]))
        return out
      }
      if (u instanceof Date) return [SPECIAL, "date", finiteOrNull(u.getTime())]
      const proto = Object.getPrototypeOf(u)
      if (proto !== Object.prototype && proto !== null) {
        throw new Unstorable(`a ${proto?.constructor?.name ?? "object"} cannot be stored (only plain data can)`)
      }
      const out: Record<string, unknown> = {}
      for (const key of Object.keys(u)) define(out, key, tag((u as Record<string, unknown>)[key]))
      return out
    }
    default:
      throw new Unstorable(`a ${typeof u} cannot be stored`)
  }
}

const special = (parts: ReadonlyArray<unknown>): unknown => {
  switch (parts[1]) {
    case "undefined":
      return undefined
    case "number":
      switch (parts[2]) {
        case "NaN":
          return NaN
        case "Infinity":
          return Infinity
        case "-Infinity":
          return -Infinity
        case "-0":
          return -0
      }
      break
    case "bigint":
      if (typeof parts[2] === "string" && /^-?\d+$/.test(parts[2])) return BigInt(parts[2])
      break
    case "date":
      if (parts[2] === null) return new Date(NaN)
      if (typeof parts[2] === "number") return new Date(parts[2])
      break
  }
  throw new Unstorable("malformed tagged value")
}

/** The value a tagged form stands for; throws on a malformed one. @internal */
export const untag = (u: unknown): unknown => {
  if (typeof u !== "object" || u === null) return u
  if (Array.isArray(u)) {
    if (u[0] === ARRAY) {
      const out = new Array<unknown>(u.length - 1)
      for (let i = 1; i < u.length; i++) out[i - 1] = untag(u[i])
      return out
    }
    if (u[0] === SPECIAL) return special(u)
    throw new Unstorable("malformed tagged array")
  }
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(u)) define(out, key, untag((u as Record<string, unknown>)[key]))
  return out
}

/** The value field of an envelope for an encoded value. @internal */
export const valueField = (encoded: unknown): Either.Either<string, string> => {
  try {
    return isPlainJson(encoded)
      ? Either.right(`"v":${JSON.stringify(encoded)}`)
      : Either.right(`"x":${JSON.stringify(tag(encoded))}`)
  } catch (e) {
    return Either.left(
      `the encoded value cannot be stored: ${e instanceof Error ? e.message : String(e)}`
    )
  }
}
