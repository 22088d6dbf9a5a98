// A layer: one host directory of the union, read side. The only module besides upper.ts
// and workdir.ts that touches node:fs; the union core speaks to layers, never to paths.
// Real paths inside a layer are '/'-rooted strings ("/a/b"); the root is "/".
import fs, { type Dirent } from 'node:fs'
import { fsError } from '../errors.js'
import { DirFds, O_PATH } from './dir-fds.js'
import { AUFS_OPAQUE, AUFS_PREFIX, FUSE_OVERLAYFS_OPAQUE, type OverlayXattrs, TRUSTED_XATTRS } from './format.js'
import { type FileHandle, fsPath, host, nameBytes, nameFromBytes } from './native.js'
import { type Origin, decodeOrigin } from './origin.js'
import { type ObjStat, statAt } from './stat.js'

const S_IFMT = 0o170000
export const S_IFDIR = 0o040000
export const S_IFREG = 0o100000
export const S_IFLNK = 0o120000
export const S_IFCHR = 0o020000

const O_NOATIME = fs.constants.O_NOATIME

export const isDirMode = (mode: number): boolean => (mode & S_IFMT) === S_IFDIR

/** The directory of real path `path` ("/" for a name in the root). */
export function parentDir(path: string): string {
  const i = path.lastIndexOf('/')
  return i <= 0 ? '/' : path.slice(0, i)
}

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

/** What a directory says of the layers below it (see Layer.dirMarks). */
export interface DirMarks {
  /** Lookups and listings stop here. */
  opaque: boolean
  /** Where the directory's lower layers are (a renamed directory), when it is not opaque. */
  redirect: string | undefined
}

/** A value of "y": the kernel's opaque mark. */
const isY = (v: Buffer | undefined): boolean => v !== undefined && v.length === 1 && v[0] === 0x79

/** NAME_MAX of the filesystems layers live on. */
export const NAME_MAX = 255

/** A whiteout is a character device 0/0 (the kernel's format). */
export const isWhiteoutStat = (st: { readonly mode: number | bigint; readonly rdev: number | bigint }): boolean =>
  (Number(st.mode) & S_IFMT) === S_IFCHR && BigInt(st.rdev) === 0n

export class Layer {
  /** Host directory this layer lives in, no trailing slash. */
  readonly root: string
  /** 0 for the upper layer; 1.. for lowers, top-most first. */
  readonly index: number
  readonly isUpper: boolean
  /** st_dev of the layer root: layers on different filesystems get distinct inode spaces. */
  readonly dev: bigint
  /** The namespace of the overlay's xattrs in this mount (format.ts). */
  readonly xattrs: OverlayXattrs

  readonly #uuid: Buffer
  /** An O_PATH fd on the layer root, for the daemon's life: what open resolves beneath. */
  readonly rootFd: number
  /** Every real path below the root is reached through its directory's fd (./dir-fds.ts). */
  protected readonly dirFds: DirFds

  /** `toRoot`: real path -> path below the root, for a layer whose real paths are not (a volume's). */
  constructor(root: string, index: number, isUpper: boolean, toRoot?: (path: string) => string, xattrs: OverlayXattrs = TRUSTED_XATTRS) {
    this.root = root.replace(/\/+$/, '') || '/'
    this.index = index
    this.isUpper = isUpper
    this.xattrs = xattrs
    this.dev = fs.statSync(this.root, { bigint: true }).dev
    this.rootFd = fs.openSync(this.root, O_PATH | fs.constants.O_DIRECTORY)
    this.dirFds = new DirFds(this.rootFd, toRoot)
    // Read now what needs the root's path: once mounted, a caller may take that path away
    // (containers/storage detaches the idmapped mounts it gives a mount program as lowers as
    // soon as the program returns); from then on only rootFd leads to the layer.
    this.#uuid = host.fsUuid(this.root)
  }

  /**
   * Close the root fd and every kept directory fd, for a layer opened for one job (export,
   * diff); a mount's layers live as long as the daemon. The layer is unusable afterwards.
   */
  close(): void {
    this.dirFds.close()
    fs.closeSync(this.rootFd)
  }

  /** The uuid of the filesystem this layer is on (zeros where it has none). */
  get uuid(): Buffer {
    return this.#uuid
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
    if (path === '/') return `/proc/self/fd/${this.rootFd}/.` // the root itself, through its fd
    return fsPath(this.dirFds.hostPath(path))
  }

  /**
   * The directory fd and last name of a real path ("" for the root itself): what the
   * fd-relative calls take. ENOENT, ENOTDIR, ELOOP thrown (a directory on the way).
   */
  protected at(path: string): { dirfd: number; name: string } {
    return this.dirFds.split(path)
  }

  /** name_to_handle_at(2) of a real path, not following a final symlink. */
  nameToHandle(path: string): FileHandle {
    const { dirfd, name } = this.at(path)
    return host.nameToHandleAt(dirfd, name)
  }

  /** lstat, or undefined when the name is absent (ENOENT, ENOTDIR, or a symlink on the way: an expected miss). */
  tryLstat(path: string): ObjStat | undefined {
    let at: { dirfd: number; name: string }
    try {
      at = this.at(path)
    } catch (e) {
      const code = (e as { code?: string }).code
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return undefined
      throw e
    }
    return statAt(at.dirfd, at.name)
  }

  lstat(path: string): ObjStat {
    const { dirfd, name } = this.at(path)
    const st = statAt(dirfd, name)
    if (st === undefined) throw fsError('ENOENT', 'lstat', path)
    return st
  }

  /** The names in a directory (exact bytes, in the name codec) with their type bits. */
  readdir(path: string): DirName[] {
    const out: DirName[] = []
    // The directory itself through its fd: a directory swapped for a symlink is ELOOP.
    let aufs = false
    for (const d of fs.readdirSync(`/proc/self/fd/${this.dirFds.dirFd(path)}`, { withFileTypes: true, encoding: 'buffer' })) {
      const name = nameFromBytes(d.name as unknown as Buffer)
      aufs ||= name.startsWith(AUFS_PREFIX)
      out.push({ name, type: typeBits(d) })
    }
    if (!aufs) this.dirFds.knowWithoutAufs(path)
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
    // A lower layer's files keep their atimes: reads through the mount and copy-up open them
    // O_NOATIME, as the kernel's ovl_path_open does (its directories' atimes still move when
    // they are listed, under the lower filesystem's atime policy). Only the file's owner or
    // CAP_FOWNER may (EPERM otherwise, e.g. a rootless daemon): then it is opened without.
    try {
      return host.openBeneath(dirfd, name, flags | O_NOATIME, mode)
    } catch (e) {
      if ((e as { code?: string }).code !== 'EPERM') throw e
      return host.openBeneath(dirfd, name, flags, mode)
    }
  }

  getxattr(path: string, name: string): Buffer | undefined {
    const at = this.at(path)
    return host.getxattrAt(at.dirfd, at.name, name)
  }

  listxattr(path: string): string[] {
    const at = this.at(path)
    return host.listxattrAt(at.dirfd, at.name)
  }

  /** The overlay's origin record of an upper object, decoded; undefined when absent or unusable. */
  origin(path: string): Origin | undefined {
    const v = this.#tryGetxattr(path, this.xattrs.origin)
    return v === undefined ? undefined : decodeOrigin(v)
  }

  /**
   * Whether the name at `path`, absent from this layer, is whited out here by an AUFS
   * `.wh.NAME` (format.ts). Where NAME itself is present, it is what this layer shows: a layer
   * never holds both, and layerfs makes NAME before it drops `.wh.NAME` (and the other way
   * round), so that a crash between the two leaves what was there.
   */
  hasAufsWhiteout(path: string): boolean {
    if (this.dirFds.isKnownWithoutAufs(parentDir(path))) return false
    const i = path.lastIndexOf('/')
    const wh = AUFS_PREFIX + path.slice(i + 1)
    if (nameBytes(wh).length > NAME_MAX) return false
    return this.tryLstat(path.slice(0, i + 1) + wh) !== undefined
  }

  /**
   * A directory's marks: opaque (the mount's opaque xattr, fuse-overlayfs's, or an AUFS
   * `.wh..wh..opq` in it), else its redirect xattr. One listxattr says which xattrs to read.
   */
  dirMarks(path: string): DirMarks {
    const x = this.xattrs
    let names: string[]
    try {
      names = this.listxattr(path)
    } catch (e) {
      // Filesystems without xattr support (ENOTSUP) have no opaque xattrs or redirects.
      if ((e as { code?: string }).code !== 'ENOTSUP') throw e
      names = []
    }
    const opaque = (names.includes(x.opaque) && isY(this.#tryGetxattr(path, x.opaque))) ||
      (names.includes(FUSE_OVERLAYFS_OPAQUE) && isY(this.#tryGetxattr(path, FUSE_OVERLAYFS_OPAQUE))) ||
      (!this.dirFds.isKnownWithoutAufs(path) && this.tryLstat(path === '/' ? '/' + AUFS_OPAQUE : path + '/' + AUFS_OPAQUE) !== undefined)
    if (opaque || !names.includes(x.redirect)) return { opaque, redirect: undefined }
    const v = this.#tryGetxattr(path, x.redirect)
    return { opaque, redirect: v === undefined ? undefined : nameFromBytes(v) }
  }

  /** Whether a directory is opaque: lower layers end below it (dirMarks). */
  isOpaque(path: string): boolean {
    return this.dirMarks(path).opaque
  }

  /**
   * The redirect xattr of a directory: where its lower layers are, or undefined. The value is
   * a path of name bytes (in the name codec), not necessarily UTF-8.
   */
  redirect(path: string): string | undefined {
    const v = this.#tryGetxattr(path, this.xattrs.redirect)
    return v === undefined ? undefined : nameFromBytes(v)
  }

  #tryGetxattr(path: string, name: string): Buffer | undefined {
    try {
      return this.getxattr(path, name)
    } catch (e) {
      // Filesystems without xattr support (ENOTSUP) have no opaque dirs or redirects.
      if ((e as { code?: string }).code === 'ENOTSUP') return undefined
      throw e
    }
  }
}
