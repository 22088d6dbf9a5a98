// A layer: one host directory of the union, read side. The only module besides upper.ts
// and workdir.ts that touches node:fs; the union core speaks to layers, never to paths.
// Real paths inside a layer are '/'-rooted strings ("/a/b"); the root is "/".
import fs, { type BigIntStats, type Dirent } from 'node:fs'
import { DirFds, O_PATH } from './dir-fds.js'
import { fsPath, host, nameFromBytes } from './native.js'
import { ORIGIN_XATTR, type Origin, decodeOrigin } from './origin.js'

/** The kernel's overlay xattrs: hidden from the user, read and written only by us. */
export const OVERLAY_XATTR_PREFIX = 'trusted.overlay.'
export const OPAQUE_XATTR = 'trusted.overlay.opaque'
export const REDIRECT_XATTR = 'trusted.overlay.redirect'

const S_IFMT = 0o170000
export const S_IFDIR = 0o040000
export const S_IFREG = 0o100000
export const S_IFLNK = 0o120000
export const S_IFCHR = 0o020000

const O_NOATIME = fs.constants.O_NOATIME

export const isDirMode = (mode: number): boolean => (mode & S_IFMT) === S_IFDIR

/** A directory entry: its name and the type bits of its mode (d_type). */
export interface DirName {
  name: string
  type: number
}

const typeBits = (d: Dirent<Buffer> | Dirent): number =>
  d.isDirectory() ? S_IFDIR
  : d.isFile() ? S_IFREG
  : d.isSymbolicLink() ? S_IFLNK
  : d.isCharacterDevice() ? S_IFCHR
  : d.isBlockDevice() ? 0o060000
  : d.isFIFO() ? 0o010000
  : d.isSocket() ? 0o140000
  : 0

/** A whiteout is a character device 0/0 (the kernel's format). */
export const isWhiteoutStat = (st: BigIntStats): boolean =>
  (Number(st.mode) & S_IFMT) === S_IFCHR && st.rdev === 0n

export class Layer {
  /** Host directory this layer lives in, no trailing slash. */
  readonly root: string
  /** 0 for the upper layer; 1.. for lowers, top-most first. */
  readonly index: number
  readonly isUpper: boolean
  /** st_dev of the layer root: layers on different filesystems get distinct inode spaces. */
  readonly dev: bigint

  #uuid: Buffer | undefined
  /** An O_PATH fd on the layer root, for the daemon's life: what open resolves beneath. */
  readonly rootFd: number
  /** Every real path below the root is reached through its directory's fd (./dir-fds.ts). */
  protected readonly dirFds: DirFds

  /** `toRoot`: real path -> path below the root, for a layer whose real paths are not (a volume's). */
  constructor(root: string, index: number, isUpper: boolean, toRoot?: (path: string) => string) {
    this.root = root.replace(/\/+$/, '') || '/'
    this.index = index
    this.isUpper = isUpper
    this.dev = fs.statSync(this.root, { bigint: true }).dev
    this.rootFd = fs.openSync(this.root, O_PATH | fs.constants.O_DIRECTORY)
    this.dirFds = new DirFds(this.rootFd, toRoot)
  }

  /** The uuid of the filesystem this layer is on (zeros where it has none). */
  get uuid(): Buffer {
    return (this.#uuid ??= host.fsUuid(this.root))
  }

  fstatIno(fd: number): bigint {
    return fs.fstatSync(fd, { bigint: true }).ino
  }

  closeFd(fd: number): void {
    fs.closeSync(fd)
  }

  /**
   * Host path of a real path in this layer, as Node's fs and our addon take it: a string, or
   * the raw bytes where a name is not UTF-8 (the name codec of ./native/names.ts). Below the
   * root it is "/proc/self/fd/N/name", N the directory's fd: no middle component is a symlink
   * followed (ELOOP), whatever the layer became behind the mount, and any length works. The
   * last component is the caller's to treat: l* calls do not follow it.
   */
  hostPath(path: string): string | Buffer {
    if (path === '/') return fsPath(this.root)
    return fsPath(this.dirFds.hostPath(path))
  }

  /** lstat, or undefined when the name is absent (ENOENT, ENOTDIR, or a symlink on the way: an expected miss). */
  tryLstat(path: string): BigIntStats | undefined {
    let host: string | Buffer
    try {
      host = this.hostPath(path)
    } catch (e) {
      const code = (e as { code?: string }).code
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return undefined
      throw e
    }
    return fs.lstatSync(host, { bigint: true, throwIfNoEntry: false })
  }

  lstat(path: string): BigIntStats {
    return fs.lstatSync(this.hostPath(path), { bigint: true })
  }

  /** The names in a directory (exact bytes, in the name codec) with their type bits. */
  readdir(path: string): DirName[] {
    const out: DirName[] = []
    // The directory itself through its fd: a directory swapped for a symlink is ELOOP.
    for (const d of fs.readdirSync(`/proc/self/fd/${this.dirFds.dirFd(path)}`, { withFileTypes: true, encoding: 'buffer' })) {
      out.push({ name: nameFromBytes(d.name as unknown as Buffer), type: typeBits(d) })
    }
    return out
  }

  /** A symlink's target, exact bytes (in the name codec). */
  readlink(path: string): string {
    return nameFromBytes(fs.readlinkSync(this.hostPath(path), { encoding: 'buffer' }))
  }

  /**
   * Open a real path for reading (or writing, in the upper layer); returns a real fd. No
   * component may be a symlink (ELOOP) and nothing outside the layer is reached: the kernel
   * resolves a union's symlinks before a path reaches us, so a symlink here means the layer
   * changed behind the mount, and following it could read or write a host file.
   */
  open(path: string, flags: number, mode = 0): number {
    const { dirfd, name } = this.dirFds.split(path)
    if (this.isUpper) return host.openBeneath(dirfd, name, flags, mode)
    // A lower layer is never written, atimes included: reads through the mount and copy-up
    // open its files O_NOATIME, as the kernel's ovl_path_open does. Only the file's owner or
    // CAP_FOWNER may (EPERM otherwise, e.g. a rootless daemon): then it is opened without.
    try {
      return host.openBeneath(dirfd, name, flags | O_NOATIME, mode)
    } catch (e) {
      if ((e as { code?: string }).code !== 'EPERM') throw e
      return host.openBeneath(dirfd, name, flags, mode)
    }
  }

  getxattr(path: string, name: string): Buffer | undefined {
    return host.lgetxattr(this.hostPath(path), name)
  }

  listxattr(path: string): string[] {
    return host.llistxattr(this.hostPath(path))
  }

  /** trusted.overlay.origin of an upper object, decoded; undefined when absent or unusable. */
  origin(path: string): Origin | undefined {
    const v = this.#tryGetxattr(path, ORIGIN_XATTR)
    return v === undefined ? undefined : decodeOrigin(v)
  }

  /** trusted.overlay.opaque = "y" on a directory: lower layers end below it. */
  isOpaque(path: string): boolean {
    const v = this.#tryGetxattr(path, OPAQUE_XATTR)
    return v !== undefined && v.length === 1 && v[0] === 0x79 /* y */
  }

  /**
   * trusted.overlay.redirect of a directory: where its lower layers are, or undefined. The
   * value is a path of name bytes (in the name codec), not necessarily UTF-8.
   */
  redirect(path: string): string | undefined {
    const v = this.#tryGetxattr(path, REDIRECT_XATTR)
    return v === undefined ? undefined : nameFromBytes(v)
  }

  #tryGetxattr(path: string, name: string): Buffer | undefined {
    try {
      return host.lgetxattr(this.hostPath(path), name)
    } catch (e) {
      // Filesystems without xattr support (ENOTSUP) have no opaque dirs or redirects.
      if ((e as { code?: string }).code === 'ENOTSUP') return undefined
      throw e
    }
  }
}
