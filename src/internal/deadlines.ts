import type { Timer } from "./timer.js"

/**
 * Timeouts of one fixed length for many concurrent calls, kept by one timer. Deadlines come due
 * in the order they were added, so adding one is an array push and finishing one sets a flag;
 * a timer per call would cost an insertion into and a removal from Node's timer lists. The timer
 * is unreferenced: the I/O a call waits for is what keeps the process running. Time is read from
 * a monotonic `Timer`, so a wall clock stepped back does not hold a deadline back.
 * @internal
 */
export interface Deadlines {
  /** Calls `expire` once `ms` have passed, unless the returned deadline is settled first. */
  readonly add: (expire: () => void) => Deadline
}

/**
 * A call's deadline. Settling it drops the callback at once, so a finished call holds nothing
 * (its fiber, its buffers) until the timer comes round.
 * @internal
 */
export class Deadline {
  constructor(readonly at: number, private expire: (() => void) | undefined) {}
  /** True the first time: the call finished before its deadline. False once settled or expired. */
  settle(): boolean {
    if (this.expire === undefined) return false
    this.expire = undefined
    return true
  }
  /** @internal */
  get settled(): boolean {
    return this.expire === undefined
  }
  /** @internal */
  fire(): void {
    const expire = this.expire
    this.expire = undefined
    expire?.()
  }
}

/** @internal */
export const make = (ms: number, timer: Timer): Deadlines => {
  let queue: Array<Deadline> = []
  let head = 0
  let armed = false

  const arm = () => {
    while (head < queue.length && queue[head]!.settled) head++
    if (head === queue.length) {
      queue = []
      head = 0
      return
    }
    if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head)
      head = 0
    }
    armed = true
    timer.schedule(check, Math.max(0, queue[head]!.at - timer.now()))
  }

  // Node runs due timers before it reads sockets: after a blocked event loop, the replies may
  // already be waiting, so expired calls are only failed after one more I/O phase.
  const check = () => setImmediate(expireDue)

  const expireDue = () => {
    armed = false
    const now = timer.now()
    while (head < queue.length) {
      const deadline = queue[head]!
      if (!deadline.settled) {
        if (deadline.at > now) break
        deadline.fire()
      }
      head++
    }
    arm()
  }

  const add = (expire: () => void): Deadline => {
    const deadline = new Deadline(timer.now() + ms, expire)
    queue.push(deadline)
    if (!armed) arm()
    return deadline
  }

  return { add }
}
