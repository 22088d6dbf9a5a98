// A real directory held by an fd, to reach it after its name is gone (rmdir, or replaced by a
// rename) while the kernel still holds its inode: its attributes and xattrs, read and changed
// through the fd, never through a path. Only the fd is ours here; what it means is the union's.
import fs, { type BigIntStats } from 'node:fs'
import { hostLog } from '../log.js'
import type { Layer } from './layer.js'
import { host, type TimeSpec } from './native.js'

export class HeldDir {
  readonly #fd: number
  /** The directory itself, as a path that never resolves its (gone) name: its fd, then ".". */
  readonly #self: string

  /** Opens `path` in `layer` (a directory: anything else is ENOTDIR). */
  constructor(layer: Layer, path: string) {
    this.#fd = layer.open(path, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
    this.#self = `/proc/self/fd/${this.#fd}/.`
  }

  stat(): BigIntStats {
    return fs.fstatSync(this.#fd, { bigint: true })
  }

  chmod(mode: number): void {
    log('fchmod', mode)
    fs.fchmodSync(this.#fd, mode)
  }

  chown(uid: number, gid: number): void {
    log('fchown', uid, gid)
    fs.fchownSync(this.#fd, uid, gid)
  }

  utimens(atime: TimeSpec, mtime: TimeSpec): void {
    log('futimens', atime, mtime)
    host.futimens(this.#fd, atime, mtime)
  }

  getxattr(name: string): Buffer | undefined {
    return host.lgetxattr(this.#self, name)
  }

  listxattr(): string[] {
    return host.llistxattr(this.#self)
  }

  setxattr(name: string, value: Buffer, flags: number): void {
    log('fsetxattr', name)
    host.lsetxattr(this.#self, name, value, flags)
  }

  removexattr(name: string): void {
    log('fremovexattr', name)
    host.lremovexattr(this.#self, name)
  }

  fsync(): void {
    fs.fsyncSync(this.#fd)
  }

  close(): void {
    fs.closeSync(this.#fd)
  }
}

function log(op: string, ...args: unknown[]): void {
  if (hostLog.enabled) hostLog('held dir %s %o', op, args)
}
