// The syscalls Node's fs lacks, from our own N-API addon (src/layers/native/host.c):
// mknod, nanosecond utimensat, the no-follow l*xattr family with flags, lseek
// (SEEK_DATA/SEEK_HOLE for hole-preserving copies), and calls relative to a directory fd: the
// lookups' lstat and xattr reads (no procfs path, no stat object per call) and the upper's
// changes (mkdir, renameat2, unlink, chown, chmod, times, xattrs, file handles).
// Only src/layers/ may import this. Every call is synchronous and throws a Node-shaped
// error ({ errno: -N, code: 'ENOENT', syscall, path }) on failure.
// Paths and names are strings in the name codec of ./native/names.ts (re-exported here): a name
// that is not valid UTF-8 arrives from FUSE with its bad bytes as lone U+DC80..U+DCFF; the host
// calls take such strings as they are (or Buffers), Node's fs needs fsPath(p).
import { createRequire } from 'node:module'

export { fsPath, hasRawBytes, nameBytes, nameFromBytes } from './native/names.js'

/** A path or name for a host call: a string in the name codec, or the raw bytes. */
export type PathArg = string | Buffer

/** A time for utimens: nanoseconds since the epoch, or the kernel's UTIME_NOW / UTIME_OMIT. */
export type TimeSpec = bigint | 'now' | 'omit'

export interface HostCalls {
  /** mknod(2): mode includes the type bits (S_IFCHR, S_IFIFO, ...); dev is makedev(major, minor). */
  mknod(path: PathArg, mode: number, dev: number): void
  /** utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW). */
  lutimens(path: PathArg, atime: TimeSpec, mtime: TimeSpec): void
  /** futimens(2) */
  futimens(fd: number, atime: TimeSpec, mtime: TimeSpec): void
  /** lgetxattr(2); undefined for ENODATA. */
  lgetxattr(path: PathArg, name: PathArg): Buffer | undefined
  /** llistxattr(2): the names (in the name codec). */
  llistxattr(path: PathArg): string[]
  /** lsetxattr(2); flags: 0, XATTR_CREATE (1), XATTR_REPLACE (2). */
  lsetxattr(path: PathArg, name: PathArg, value: Buffer, flags: number): void
  /** lremovexattr(2) */
  lremovexattr(path: PathArg, name: PathArg): void
  /**
   * lseek(2): the new offset of fd. whence is one of SEEK (SET, CUR, END, DATA, HOLE).
   * Offsets are exact up to 2^53 both ways (a bigger result throws EOVERFLOW, the fd moved).
   * SEEK_DATA / SEEK_HOLE throw ENXIO (errno -6) when offset is at or past the end of the file,
   * and SEEK_DATA also when only a hole follows offset. A filesystem without hole support
   * reports the whole file as data (one hole at the end).
   */
  lseek(fd: number, offset: number, whence: number): number
  /** open_by_handle_at(2) (O_PATH) relative to `mountPath` on the handle's filesystem; ESTALE when gone. */
  openByHandle(mountPath: PathArg, type: number, handle: Buffer): number
  /** The filesystem's uuid (FS_IOC_GETFSUUID); 16 zero bytes when it has none. */
  fsUuid(path: PathArg): Buffer
  /**
   * openat2(2) of `path` below the directory `dirfd` with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
   * (a leading '/' is ignored): a symlink in any component, the last included, is ELOOP, and
   * nothing outside dirfd's tree is reached. `mode` applies with O_CREAT. Returns the fd.
   */
  openBeneath(dirfd: number, path: PathArg, flags: number, mode: number): number
  /**
   * fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW) into `out` (16 slots: mode, uid, gid, nlink,
   * size, blocks, blksize, rdev, ino, dev, then atime, mtime, ctime each as seconds and
   * nanoseconds; layers/stat.ts reads them): true, or false when absent (ENOENT, ENOTDIR). "" is the directory itself. With
   * AT_FDCWD as dirfd, name is a path (so for getxattrAt and listxattrAt too).
   */
  statAt(dirfd: number, name: PathArg, out: BigInt64Array): boolean
  /**
   * lgetxattr of `name` in directory `dirfd` ("" the directory itself): getxattrat(2) where
   * the kernel has it (6.13), else through "/proc/self/fd/N/name". Undefined for ENODATA.
   */
  getxattrAt(dirfd: number, name: PathArg, xattr: PathArg): Buffer | undefined
  /** llistxattr of `name` in directory `dirfd`, as getxattrAt: the names (in the name codec). */
  listxattrAt(dirfd: number, name: PathArg): string[]
  /**
   * ioctl(dstFd, FICLONE, srcFd): dst shares src's data extents (reflink). EOPNOTSUPP where
   * the filesystem cannot, EXDEV across filesystems.
   */
  ficlone(dstFd: number, srcFd: number): void
  /** Whether the *xattrat(2) calls are used (else the procfs paths). */
  xattrAtSupport(): boolean
  /** Tests: use the procfs paths from now on, as on a kernel without *xattrat(2). */
  disableXattrAt(): void
  // Changes by directory fd and name (the upper layer's writes; "" the directory itself where
  // the call allows it, AT_FDCWD with a path as for statAt): no procfs walk per call.
  /** lsetxattr of `name` in `dirfd`: setxattrat(2) where the kernel has it (6.13), else through the procfs path. */
  setxattrAt(dirfd: number, name: PathArg, xattr: PathArg, value: Buffer, flags: number): void
  /** utimensat(dirfd, name, times, AT_SYMLINK_NOFOLLOW). */
  utimensAt(dirfd: number, name: PathArg, atime: TimeSpec, mtime: TimeSpec): void
  /** renameat2(2): RENAME_NOREPLACE 1, RENAME_EXCHANGE 2, RENAME_WHITEOUT 4. */
  renameAt(fromDirfd: number, from: PathArg, toDirfd: number, to: PathArg, flags: number): void
  /** mkdirat(2). */
  mkdirAt(dirfd: number, name: PathArg, mode: number): void
  /** fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW); -1 or 0xffffffff keeps one (as lchown). */
  chownAt(dirfd: number, name: PathArg, uid: number, gid: number): void
  /** chmod not following a final symlink (ELOOP): fchmodat2(2) (6.6), else an O_PATH fd's procfs path. */
  chmodAt(dirfd: number, name: PathArg, mode: number): void
  /** Tests: chmodAt through the O_PATH fd from now on, as on a kernel without fchmodat2. */
  disableFchmodat2(): void
  /** Whether chmodAt uses fchmodat2(2) (else an O_PATH fd). */
  fchmodat2Support(): boolean
  /** unlinkat(2); flags 0 or AT_REMOVEDIR (0x200). */
  unlinkAt(dirfd: number, name: PathArg, flags: number): void
  /** linkat(2) of the file behind `fd` to (dirfd, name), through /proc/self/fd (AT_SYMLINK_FOLLOW). */
  linkFdAt(fd: number, dirfd: number, name: PathArg): void
  /** name_to_handle_at(2) of `name` in `dirfd`, not following a final symlink: the object's file handle. */
  nameToHandleAt(dirfd: number, name: PathArg): FileHandle
  /**
   * madvise(MADV_DONTNEED) on the process's read-only file mappings with no private page
   * (node's binary, the libraries): what only start-up touched leaves the RSS; the pages stay
   * in the page cache and come back on use. Then malloc_trim(0). The bytes advised.
   */
  releaseStartUpMemory(): number
}

/** A file handle, as name_to_handle_at gives it. */
export interface FileHandle {
  type: number
  handle: Buffer
}

/** The dirfd of the *At calls that takes `name` as a path (absolute, or from the cwd). */
export const AT_FDCWD = -100

/** lseek(2) whence values (Linux). */
export const SEEK = { SET: 0, CUR: 1, END: 2, DATA: 3, HOLE: 4 } as const

const require = createRequire(import.meta.url)
export const host: HostCalls = require('../../src/layers/native/build/Release/host.node') as HostCalls
