// Real paths whose host path would pass PATH_MAX. A union path may be as long as the client's
// kernel allows (a process deep in the tree uses relative paths), and a mount point shorter
// than the layer's root makes even a 4,095-byte absolute path too long on the host. Such a
// path is reached through an O_PATH fd on a directory part-way down, opened beneath the layer
// root (no symlink followed): "/proc/self/fd/N/rest" for fs calls, (N, rest) for openat2.
// The fds are kept (the same deep directories are used again and again) and dropped whenever
// a directory of the layer is renamed or removed, since they follow the inode, not the path.
import fs from 'node:fs'
import { host } from './native.js'

/** Host paths up to this many bytes go to the kernel as they are (PATH_MAX is 4096 with NUL). */
const PATH_MAX_BYTES = 4095
/** Longest path handed to openat2 relative to a directory fd: leaves room for "/proc/self/fd/N/". */
const REL_MAX_BYTES = 3800
/** Deep directories kept open per layer; past it all are closed and opened again on demand. */
const MAX_DIR_FDS = 256
const O_PATH = 0o10000000

const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8')

/** Whether a host path of `rootBytes` + `path` fits PATH_MAX as it is. */
export function fitsPathMax(rootBytes: number, path: string): boolean {
  // Cheap test first: a character is at most 3 UTF-8 bytes in the name codec.
  return rootBytes + path.length * 3 <= PATH_MAX_BYTES || rootBytes + byteLength(path) <= PATH_MAX_BYTES
}

export class LongPaths {
  readonly #rootFd: () => number
  readonly #dirs = new Map<string, number>()

  constructor(rootFd: () => number) {
    this.#rootFd = rootFd
  }

  /**
   * A directory fd and the rest of `path` below it, the rest at most REL_MAX_BYTES: `path` is
   * a real path ("/a/b/...") too long for one host call.
   */
  split(path: string): { dirfd: number; rest: string } {
    const rel = path.replace(/^\/+/, '')
    let cut = -1
    // The first '/' after which the rest fits: the directory part is as short as it can be.
    for (let i = rel.indexOf('/'); i >= 0; i = rel.indexOf('/', i + 1)) {
      if (byteLength(rel.slice(i + 1)) <= REL_MAX_BYTES) {
        cut = i
        break
      }
    }
    if (cut < 0) return { dirfd: this.#rootFd(), rest: rel }
    return { dirfd: this.#dirFd(rel.slice(0, cut)), rest: rel.slice(cut + 1) }
  }

  /** "/proc/self/fd/N/rest" for `path`: a host path the kernel accepts for any fs call. */
  hostPath(path: string): string {
    const { dirfd, rest } = this.split(path)
    return `/proc/self/fd/${dirfd}/${rest}`
  }

  /** Close every kept fd: a directory of the layer moved or went. */
  forget(): void {
    for (const fd of this.#dirs.values()) fs.closeSync(fd)
    this.#dirs.clear()
  }

  #dirFd(dir: string): number {
    const kept = this.#dirs.get(dir)
    if (kept !== undefined) return kept
    if (this.#dirs.size >= MAX_DIR_FDS) this.forget()
    const { dirfd, rest } = byteLength(dir) <= REL_MAX_BYTES ? { dirfd: this.#rootFd(), rest: dir } : this.split(dir)
    const fd = host.openBeneath(dirfd, rest, O_PATH | fs.constants.O_DIRECTORY, 0)
    this.#dirs.set(dir, fd)
    return fd
  }
}
