// The parts of memjs (binary-protocol memcached client, a benchmark peer) the benchmark uses.
declare module "memjs" {
  interface ClientOptions {
    readonly timeout?: number
    readonly retries?: number
    readonly logger?: { readonly log: (...args: ReadonlyArray<unknown>) => void }
  }
  interface Client {
    get(key: string): Promise<{ value: Buffer | null; flags: Buffer | null }>
    set(key: string, value: Buffer | string, options: { readonly expires?: number }): Promise<boolean>
    close(): void
  }
  const memjs: {
    readonly Client: { create(servers?: string, options?: ClientOptions): Client }
  }
  export default memjs
}
