// Directory fds through which a layer's real paths are reached: each directory below the
// layer root is opened (O_PATH) beneath the root's fd with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS), and a real path "/a/b/name" becomes "/proc/self/fd/N/name" (N: "/a/b").
// So no host call ever follows a symlink in a middle component (a layer changed behind the
// mount could otherwise point the daemon at a host directory), and a path of any length works
// (a union path may pass PATH_MAX: a process deep in the tree uses relative paths).
// The fds follow inodes, not paths: they are dropped whenever a directory of the layer is
// renamed or removed through us, and past a bound (they are a cache, not state).
import fs from 'node:fs'
import { host } from './native.js'

/** Longest path handed to openat2 relative to a directory fd (PATH_MAX is 4096 with NUL). */
const REL_MAX_BYTES = 3800
/**
 * Directories kept open per layer; past it all are closed and opened again on demand. At 64,
 * copy-ups spread over many directories closed and reopened them all the time (16 openat2
 * per file copied up by `chmod` of files in 1,000 directories); 256 stays well inside a
 * container's usual 1,024 descriptors with a few layers.
 */
const MAX_DIR_FDS = 256
export const O_PATH = 0o10000000

const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8')

/**
 * Close once the current synchronous operation is done (a microtask: before the next request,
 * which may want the inode freed, as the reused-inode-number regression test does).
 */
function closeLater(fds: number[]): void {
  if (fds.length > 0) queueMicrotask(() => {
    for (const fd of fds) fs.closeSync(fd)
  })
}

export class DirFds {
  readonly #rootFd: number
  readonly #dirs = new Map<string, number>()
  /**
   * Directories known to carry the impure mark (UpperLayer.markImpure): "/" and kept
   * directories only, forgotten with their fds (a rename or removal at or above them).
   */
  readonly #impure = new Set<string>()
  /**
   * Directories known to hold no AUFS name (`.wh.*`, format.ts): learnt when a listing shows
   * none or when we make the directory, forgotten as #impure is and when we write one there.
   * A miss in them needs no second stat for a `.wh.NAME` (Layer.hasAufsWhiteout).
   */
  readonly #noAufs = new Set<string>()
  /**
   * The layer's real path -> the path below the root fd. The identity, except for a volume,
   * whose real paths are union paths under the point it is mounted at (../layers/volume.ts).
   */
  readonly #toRoot: (path: string) => string

  constructor(rootFd: number, toRoot: (path: string) => string = p => p) {
    this.#rootFd = rootFd
    this.#toRoot = toRoot
  }

  /** The fd of directory `dir` (a real path, "/" for the root): ENOENT, ENOTDIR, ELOOP thrown. */
  dirFd(dir: string): number {
    return this.#dirFd(this.#toRoot(dir))
  }

  #dirFd(dir: string): number {
    if (dir === '/' || dir === '') return this.#rootFd
    const kept = this.#dirs.get(dir)
    if (kept !== undefined) return kept
    if (this.#dirs.size >= MAX_DIR_FDS) this.forget()
    const { dirfd, rest } = this.#below(dir)
    const fd = host.openBeneath(dirfd, rest, O_PATH | fs.constants.O_DIRECTORY, 0)
    this.#dirs.set(dir, fd)
    return fd
  }

  /** The parent's fd and the last name of real path `path` (not the root). */
  split(path: string): { dirfd: number; name: string } {
    const p = this.#toRoot(path)
    const i = p.lastIndexOf('/')
    return { dirfd: this.#dirFd(i <= 0 ? '/' : p.slice(0, i)), name: p.slice(i + 1) }
  }

  /** "/proc/self/fd/N/name" for real path `path` (not the root). */
  hostPath(path: string): string {
    const { dirfd, name } = this.split(path)
    return `/proc/self/fd/${dirfd}/${name}`
  }

  /**
   * Drop every kept fd: a directory of the layer moved or went. They are closed only after the
   * current synchronous operation: a host path already made from one ("/proc/self/fd/N/...")
   * must not meet N reused for another directory within it.
   */
  forget(): void {
    this.#impure.clear()
    this.#noAufs.clear()
    if (this.#dirs.size === 0) return
    const fds = [...this.#dirs.values()]
    this.#dirs.clear()
    closeLater(fds)
  }

  /** Close every kept fd now: the layer is done with (no host path made from one is in use). */
  close(): void {
    for (const fd of this.#dirs.values()) fs.closeSync(fd)
    this.#dirs.clear()
    this.#impure.clear()
    this.#noAufs.clear()
  }

  /**
   * Drop the kept fds of real paths `paths` and of every directory below them: what a rename
   * or a removal there changes (a directory elsewhere keeps its inode and its path). Closed
   * later, as forget's.
   */
  forgetUnder(...paths: string[]): void {
    if (this.#dirs.size === 0) return
    const fds: number[] = []
    for (const p of paths) {
      if (p.charCodeAt(0) === 0x23 /* # */) continue // a workdir temp: never reached through these fds
      const root = this.#toRoot(p)
      if (root === '/' || root === '') return this.forget()
      for (const [dir, fd] of this.#dirs) {
        if (dir === root || (dir.startsWith(root) && dir.charCodeAt(root.length) === 0x2f /* / */)) {
          this.#dirs.delete(dir)
          this.#impure.delete(dir)
          this.#noAufs.delete(dir)
          fds.push(fd)
        }
      }
    }
    closeLater(fds)
  }

  /**
   * A directory was just made at real path `path` (where nothing was): a kept fd there can
   * only be of a directory removed behind our back, and goes (no walk over every kept fd, as
   * forgetUnder's: one per copy-up). One below it is reached only through a directory made
   * there later, which drops its own the same way.
   */
  forgetAt(path: string): void {
    const d = this.#key(path)
    const fd = this.#dirs.get(d)
    if (fd === undefined) return
    this.#dirs.delete(d)
    this.#impure.delete(d)
    this.#noAufs.delete(d)
    closeLater([fd])
  }

  /** The key of directory `dir` (a real path) in what is known per directory (#impure, #noAufs). */
  #key(dir: string): string {
    const d = this.#toRoot(dir)
    return d === '' ? '/' : d
  }

  /**
   * Learn a fact about directory `dir`: kept while its fd is (the root always), so that a
   * rename or removal at or above it, which drops the fd, drops the fact too.
   */
  #learn(facts: Set<string>, dir: string): void {
    const d = this.#key(dir)
    if (d === '/' || this.#dirs.has(d)) facts.add(d)
  }

  /** Whether directory `dir` (a real path) is known to carry the impure mark. */
  isKnownImpure(dir: string): boolean {
    return this.#impure.has(this.#key(dir))
  }

  /** Directory `dir` carries the impure mark. */
  knowImpure(dir: string): void {
    this.#learn(this.#impure, dir)
  }

  /** Whether directory `dir` (a real path) is known to hold no AUFS name. */
  isKnownWithoutAufs(dir: string): boolean {
    return this.#noAufs.has(this.#key(dir))
  }

  /** Directory `dir` holds no AUFS name. */
  knowWithoutAufs(dir: string): void {
    this.#learn(this.#noAufs, dir)
  }

  /** An AUFS name is being made in directory `dir`. */
  unknowWithoutAufs(dir: string): void {
    this.#noAufs.delete(this.#key(dir))
  }

  /** A directory fd and a path below it of at most REL_MAX_BYTES, for directory `dir`. */
  #below(dir: string): { dirfd: number; rest: string } {
    const rel = dir.replace(/^\/+/, '')
    if (rel.length * 3 <= REL_MAX_BYTES || byteLength(rel) <= REL_MAX_BYTES) return { dirfd: this.#rootFd, rest: rel }
    // Too long for one openat2: the shortest head whose rest fits, opened (recursively) first.
    for (let i = rel.indexOf('/'); i >= 0; i = rel.indexOf('/', i + 1)) {
      if (byteLength(rel.slice(i + 1)) <= REL_MAX_BYTES) return { dirfd: this.#dirFd('/' + rel.slice(0, i)), rest: rel.slice(i + 1) }
    }
    return { dirfd: this.#rootFd, rest: rel }
  }
}
