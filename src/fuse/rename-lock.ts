// Union paths held across an await must stay the paths of the same objects. A directory
// rename changes the path of everything below it, so the lowlevel op table runs each request
// that awaits (open with copy-up, setattr, xattrs, link, unlink, rename) under a shared hold,
// and a directory rename under an exclusive one: it waits for the requests in flight, and the
// requests that come after it wait for it (first come, first served, so neither side starves).
// libfuse's high-level API gave the same guarantee with its per-path locks. Requests that
// finish without an await need no hold: the event loop runs them whole.

type Grant = () => void

export class RenameLock {
  #readers = 0
  #writer = false
  readonly #queue: { exclusive: boolean; grant: Grant }[] = []

  /** Resolves with the release function once the hold is granted. */
  acquire(exclusive: boolean): Promise<() => void> {
    return new Promise(resolve => {
      this.#queue.push({ exclusive, grant: () => resolve(this.#releaser(exclusive)) })
      this.#pump()
    })
  }

  #releaser(exclusive: boolean): () => void {
    let done = false
    return () => {
      if (done) return
      done = true
      if (exclusive) this.#writer = false
      else this.#readers--
      this.#pump()
    }
  }

  #pump(): void {
    while (this.#queue.length > 0 && !this.#writer) {
      const next = this.#queue[0]!
      if (next.exclusive && this.#readers > 0) return
      this.#queue.shift()
      if (next.exclusive) this.#writer = true
      else this.#readers++
      next.grant()
    }
  }
}
