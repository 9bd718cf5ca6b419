/**
 * Runs once before the test files: makes sure the server binaries the harness starts are
 * installed. On a machine without them, as root, it installs them with apt-get; otherwise it stops
 * with the command to run.
 */
import { execFileSync } from "node:child_process"

const required = ["redis-server", "redis-cli", "memcached"] as const
const installCommand = "apt-get install -y redis-server redis-tools memcached"

const has = (binary: string): boolean => {
  try {
    execFileSync("sh", ["-c", `command -v ${binary}`], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

export default function setup(): void {
  const missing = required.filter((binary) => !has(binary))
  if (missing.length === 0) return
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0
  if (!isRoot) {
    throw new Error(`The tests need ${missing.join(", ")}. Install them with: sudo ${installCommand}`)
  }
  try {
    execFileSync("sh", ["-c", `(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive ${installCommand}`], {
      stdio: "inherit"
    })
  } catch (cause) {
    throw new Error(`Installing ${missing.join(", ")} failed. Run: ${installCommand}`, { cause })
  }
  const still = required.filter((binary) => !has(binary))
  if (still.length > 0) {
    throw new Error(`${still.join(", ")} still missing after install. Run: ${installCommand}`)
  }
}
