// Open files: handle id (the FUSE fh) -> the real fd and which layer it is in. Ids start at
// 1 (fh 0 means "none" to the binding). A handle on a lower file is moved to the upper copy
// when the file is copied up, so a reader sees the new data (the kernel >= 4.19 behaviour).

export interface Handle {
  fd: number
  /** Union path at open time, kept current across renames. */
  path: string
  /** Whether fd is in the upper layer. */
  upper: boolean
  /** The open flags the caller asked for. */
  readonly flags: number
  /** The file had setuid/setgid bits at open: the first write may have to drop them. */
  killPrivs?: boolean
}

export class Handles {
  #byId = new Map<number, Handle>()
  #nextId = 1

  add(h: Handle): number {
    while (this.#byId.has(this.#nextId)) this.#nextId = (this.#nextId % 0x7fffffff) + 1
    const id = this.#nextId
    this.#nextId = (this.#nextId % 0x7fffffff) + 1
    this.#byId.set(id, h)
    return id
  }

  get(id: number): Handle | undefined {
    return this.#byId.get(id)
  }

  remove(id: number): Handle | undefined {
    const h = this.#byId.get(id)
    this.#byId.delete(id)
    return h
  }

  /** Handles still on the lower file at `path`. */
  lowerHandles(path: string): Handle[] {
    const out: Handle[] = []
    for (const h of this.#byId.values()) if (!h.upper && h.path === path) out.push(h)
    return out
  }

  /** A name moved: handles under it follow. */
  renamed(from: string, to: string): void {
    const prefix = from + '/'
    for (const h of this.#byId.values()) {
      if (h.path === from) h.path = to
      else if (h.path.startsWith(prefix)) h.path = to + h.path.slice(from.length)
    }
  }

  /** renameat2(RENAME_EXCHANGE): what was at or below `a` is at `b`, and the other way round. */
  exchanged(a: string, b: string): void {
    const swap = (p: string, x: string, y: string): string | undefined =>
      p === x ? y : p.startsWith(x + '/') ? y + p.slice(x.length) : undefined
    for (const h of this.#byId.values()) h.path = swap(h.path, a, b) ?? swap(h.path, b, a) ?? h.path
  }

  get size(): number {
    return this.#byId.size
  }
}
