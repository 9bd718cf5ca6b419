// The parts of the `hashring` package (an independent ketama implementation) the tests use.
declare module "hashring" {
  interface Options {
    readonly "vnode count"?: number
    readonly compatibility?: "ketama" | "hash_ring"
    readonly replicas?: number
    readonly "default port"?: number
    readonly "max cache size"?: number
  }
  class HashRing {
    constructor(
      servers: Record<string, number | { weight: number }> | ReadonlyArray<string>,
      algorithm?: string,
      options?: Options
    )
    get(key: string): string
    points(servers?: ReadonlyArray<string>): Record<string, Array<number>>
    remove(server: string): HashRing
    add(servers: Record<string, number> | string): HashRing
  }
  export default HashRing
}
