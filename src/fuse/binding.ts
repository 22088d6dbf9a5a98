/// <reference path="./fuse-native.d.ts" />
// The only module that imports fuse-native's index.js (patched: scripts/fuse-native/; the lowlevel
// session loads its native module alone, native-module.ts). It owns the typed op
// table (FuseOps), the stat reply (StatReply), the exact libfuse -o list (validated, since an
// unknown option leaves a dead mount), xattr sizes/ERANGE, nanosecond utimens, and a guard that
// turns any bad reply or throw from an op into EIO instead of a dead daemon, and hands every op
// the caller of its request (uid/gid/pid/umask, patch rev 3). No union logic here.
import Fuse from 'fuse-native'
import { constants } from 'node:os'
import { errnoOf } from '../errors.js'
import { fuseLog } from '../log.js'
import type { TimeSpec } from '../layers/native.js'
import { nameBytes } from '../layers/native/names.js'

export type { TimeSpec }

import { PATCH_REV } from './native-module.js'
import { validateFuseOptions } from './fuse-options.js'

export { validateFuseOptions }

const e = constants.errno
/** Negative errno numbers, as every reply wants them. */
export const FuseErrno = {
  EPERM: -e.EPERM, ENOENT: -e.ENOENT, EIO: -e.EIO, ENXIO: -e.ENXIO, EBADF: -e.EBADF,
  EAGAIN: -e.EAGAIN, ENOMEM: -e.ENOMEM, EACCES: -e.EACCES, EBUSY: -e.EBUSY, EEXIST: -e.EEXIST,
  EXDEV: -e.EXDEV, ENODEV: -e.ENODEV, ENOTDIR: -e.ENOTDIR, EISDIR: -e.EISDIR, EINVAL: -e.EINVAL,
  EMFILE: -e.EMFILE, ETXTBSY: -e.ETXTBSY, EFBIG: -e.EFBIG, ENOSPC: -e.ENOSPC, ESPIPE: -e.ESPIPE,
  EROFS: -e.EROFS, EMLINK: -e.EMLINK, ERANGE: -e.ERANGE, ENAMETOOLONG: -e.ENAMETOOLONG,
  ENOSYS: -e.ENOSYS, ENOTEMPTY: -e.ENOTEMPTY, ELOOP: -e.ELOOP, ENODATA: -e.ENODATA,
  EOVERFLOW: -e.EOVERFLOW, EOPNOTSUPP: -e.EOPNOTSUPP, ENOTSUP: -e.ENOTSUP, ENOTCONN: -e.ENOTCONN,
  ETIMEDOUT: -e.ETIMEDOUT, EDQUOT: -e.EDQUOT, ESTALE: -e.ESTALE,
} as const

/** setxattr flags (linux/xattr.h). */
export const XATTR_CREATE = 1
export const XATTR_REPLACE = 2

/** The kernel's sentinels in timespec.tv_nsec; the patched C passes them through unchanged. */
const UTIME_NOW = (1 << 30) - 1
const UTIME_OMIT = (1 << 30) - 2

/**
 * A stat reply (getattr, and readdir's per-entry stats). Numbers or bigints, so a
 * `fs.lstatSync(p, { bigint: true })` object can be passed as is. Times are nanoseconds since
 * the epoch; an absent time is sent as "now", so always fill them for getattr.
 * With `use_ino`, every readdir stat needs a non-zero `ino`, or libfuse drops the whole listing.
 */
export interface StatReply {
  /** Type bits and permissions. Required. */
  mode: number | bigint
  uid?: number | bigint
  gid?: number | bigint
  size?: number | bigint
  /** Absent means 1. */
  nlink?: number | bigint
  /** All 64 bits reach the kernel (with `use_ino`; without it libfuse numbers nodes itself). */
  ino?: number | bigint
  rdev?: number | bigint
  blksize?: number | bigint
  blocks?: number | bigint
  atimeNs?: bigint
  mtimeNs?: bigint
  ctimeNs?: bigint
}

/** A statfs reply; counts are 64-bit in the patched build. */
export interface StatfsReply {
  bsize: number | bigint
  frsize?: number | bigint
  blocks: number | bigint
  bfree: number | bigint
  bavail: number | bigint
  files: number | bigint
  ffree: number | bigint
  favail?: number | bigint
  fsid?: number | bigint
  flag?: number | bigint
  namemax: number | bigint
}

/**
 * Who made a request: libfuse's `fuse_get_context()`, captured in the worker thread that handles
 * the request (patch rev 3). Every op gets one as its last argument, after its reply callback.
 */
export interface Caller {
  /** The calling thread's fsuid (what a file it creates should be owned by), as the daemon's user
   *  namespace sees it. */
  readonly uid: number
  /** The calling thread's fsgid. Supplementary groups are not sent by the kernel. */
  readonly gid: number
  /** The calling thread's id (TID, in the daemon's pid namespace); 0 when the kernel sends the
   *  request on its own, e.g. `release` after the last close. */
  readonly pid: number
  /** The caller's umask, for `create`, `mkdir` and `mknod` only (0 for every other op). The kernel
   *  has already applied it to `mode` (libfuse 2.9 never asks for FUSE_DONT_MASK): informational. */
  readonly umask: number
}

/**
 * The daemon process itself as a Caller: what an op sees when it is called outside a FUSE
 * request (unit tests calling the `_op_*` hooks directly).
 */
export function processCaller(): Caller {
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, pid: process.pid, umask: 0 }
}

/** `0` or a negative errno. */
export type Code = number
export type Done = (code: Code) => void

/**
 * The op table LayerFuse serves. Every op replies exactly once with 0 or -errno (read/write:
 * a byte count or -errno); a thrown error or a malformed reply becomes EIO. An absent op makes
 * the kernel see ENOSYS (access: "allowed"; getxattr: never asked again).
 * Buffers handed to read/write/setxattr are views of libfuse memory, dead after the reply: copy
 * what you keep.
 * Unlinked open files (-o hard_remove): libfuse cannot name them any more, so the fh-based ops
 * (read, write, flush, release, fsync, ftruncate, fgetattr, releasedir, fsyncdir) get path ''
 * and must work from the fh alone; any other op on such a file (fchmod, fchown, futimens, ...)
 * is answered ENOENT here and never reaches the table.
 *
 * **The caller.** Every op but `init` gets the request's Caller as its LAST argument, after the
 * reply callback: `create(path, mode, reply, caller)`. It is captured when the request arrives,
 * so it stays right after any await, while other requests run (a "current caller" global could
 * not). An op that does not need it just declares fewer parameters. Objects that an op creates
 * (create, mkdir, mknod, symlink; link makes no new inode) belong to `caller.uid`/`caller.gid`
 * unless the parent directory is setgid (then its gid): the daemon runs as root, so the op must
 * chown them itself.
 *
 * **Names that are not UTF-8** (patch rev 4). Paths, rename/link/symlink destinations, symlink
 * targets and xattr names are bytes in the kernel. One that is valid UTF-8 arrives as the string
 * it spells (as always); in any other, each byte that is not part of a valid UTF-8 sequence
 * arrives as a lone surrogate U+DC80..U+DCFF ("surrogateescape", `src/layers/native/names.ts`).
 * Replies go back the same way (readdir names, readlink targets, listxattr names), so
 * bytes -> string -> bytes is exact. Pass such strings to the host calls as they are; give Node's
 * fs `fsPath(p)`, and read names from fs as Buffers (`{ encoding: 'buffer' }`) through
 * `nameFromBytes`, or those names are mangled to U+FFFD (as before rev 4).
 */
export interface FuseOps {
  init?(done: Done): void
  getattr?(path: string, reply: (code: Code, stat?: StatReply) => void, caller: Caller): void
  /** fstat(2) of an open file (path '' when it was unlinked under hard_remove). Optional:
   *  without it libfuse uses getattr(path), which fails for an unlinked file. */
  fgetattr?(path: string, fh: number, reply: (code: Code, stat?: StatReply) => void, caller: Caller): void
  access?(path: string, mode: number, done: Done, caller: Caller): void
  statfs?(path: string, reply: (code: Code, statfs?: StatfsReply) => void, caller: Caller): void
  /** The whole directory at once (no offset). `stats`, if given, must match `names` 1:1. */
  readdir?(path: string, reply: (code: Code, names?: string[], stats?: StatReply[]) => void, caller: Caller): void
  /** fh 0 means "no handle". fh is a uint32, at most 2^31-1 here. */
  opendir?(path: string, flags: number, reply: (code: Code, fh?: number) => void, caller: Caller): void
  releasedir?(path: string, fh: number, done: Done, caller: Caller): void
  /** `flags` are the open(2) flags minus O_CREAT/O_EXCL/O_TRUNC (truncate comes as its own op). */
  open?(path: string, flags: number, reply: (code: Code, fh?: number) => void, caller: Caller): void
  /** No flags are passed: open read-write. */
  create?(path: string, mode: number, reply: (code: Code, fh?: number) => void, caller: Caller): void
  read?(path: string, fh: number, buf: Buffer, len: number, pos: number, reply: (bytesOrCode: number) => void, caller: Caller): void
  write?(path: string, fh: number, buf: Buffer, len: number, pos: number, reply: (bytesOrCode: number) => void, caller: Caller): void
  flush?(path: string, fh: number, done: Done, caller: Caller): void
  release?(path: string, fh: number, done: Done, caller: Caller): void
  fsync?(path: string, datasync: number, fh: number, done: Done, caller: Caller): void
  fsyncdir?(path: string, datasync: number, fh: number, done: Done, caller: Caller): void
  truncate?(path: string, size: number, done: Done, caller: Caller): void
  ftruncate?(path: string, fh: number, size: number, done: Done, caller: Caller): void
  /** Either time may be 'omit' (leave it) or 'now'. Nanosecond exact. */
  utimens?(path: string, atime: TimeSpec, mtime: TimeSpec, done: Done, caller: Caller): void
  readlink?(path: string, reply: (code: Code, target?: string) => void, caller: Caller): void
  /** uid/gid 4294967295 means "leave unchanged" (chown's -1). */
  chown?(path: string, uid: number, gid: number, done: Done, caller: Caller): void
  chmod?(path: string, mode: number, done: Done, caller: Caller): void
  /** dev is the kernel's 32-bit encoding (new_encode_dev). */
  mknod?(path: string, mode: number, dev: number, done: Done, caller: Caller): void
  unlink?(path: string, done: Done, caller: Caller): void
  rmdir?(path: string, done: Done, caller: Caller): void
  mkdir?(path: string, mode: number, done: Done, caller: Caller): void
  /** No flags: libfuse 2.9 has no RENAME2 (renameat2 flags are refused by the kernel first). */
  rename?(src: string, dest: string, done: Done, caller: Caller): void
  /** link(existing, newPath) */
  link?(src: string, dest: string, done: Done, caller: Caller): void
  symlink?(target: string, linkPath: string, done: Done, caller: Caller): void
  /** flags: 0, XATTR_CREATE, XATTR_REPLACE. `value` is dead after the reply. */
  setxattr?(path: string, name: string, value: Buffer, flags: number, done: Done, caller: Caller): void
  /** The whole value, or `undefined` for ENODATA; sizes and ERANGE are handled here. */
  getxattr?(path: string, name: string, reply: (code: Code, value?: Buffer) => void, caller: Caller): void
  listxattr?(path: string, reply: (code: Code, names?: string[]) => void, caller: Caller): void
  removexattr?(path: string, name: string, done: Done, caller: Caller): void
}

export type FuseOpName = keyof FuseOps

export interface LayerFuseOptions {
  /** The exact libfuse `-o` list, e.g. ['use_ino', 'big_writes', 'max_write=131072']. Validated. */
  options: readonly string[]
  /** fuse-native's per-op timeout. Default `false`: a request waits for its reply. */
  timeout?: false | number
  /** Unmount a stale (ENOTCONN) mount point before mounting. Default false. */
  force?: boolean
  /** Create the mount point if it is missing. Default false. */
  mkdir?: boolean
}

// ---- the guard ---------------------------------------------------------------------------

type AnyCb = (code: number, ...values: unknown[]) => void
type AnyOp = (...args: unknown[]) => void

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v)
const isFh = (v: unknown): boolean => v === undefined || (isInt(v) && v >= 0 && v <= 0x7fffffff)

/** Why a successful reply of `op` is malformed, or undefined when it is fine. */
function badReply(op: string, code: number, values: unknown[]): string | undefined {
  if (!isInt(code)) return 'non-integer reply'
  if (op === 'read' || op === 'write') return code > 0x7fffffff ? 'byte count too large' : undefined
  if (code > 0) return 'positive reply'
  if (code < 0) return undefined
  const v = values[0]
  switch (op) {
    case 'getattr': case 'fgetattr': return v !== null && typeof v === 'object' ? undefined : 'no stat'
    case 'statfs': return v !== null && typeof v === 'object' ? undefined : 'no statfs'
    case 'readdir': {
      if (!Array.isArray(v) || !v.every(n => typeof n === 'string')) return 'names not a string[]'
      const stats = values[1]
      return stats === undefined || (Array.isArray(stats) && stats.every(s => s !== null && typeof s === 'object'))
        ? undefined : 'stats not an object[]'
    }
    case 'readlink': return typeof v === 'string' ? undefined : 'no target'
    case 'open': case 'opendir': case 'create': return isFh(v) ? undefined : 'bad fh'
    case 'getxattr': return v === undefined || v === null || Buffer.isBuffer(v) ? undefined : 'value not a Buffer'
    case 'listxattr': return Array.isArray(v) && v.every(n => typeof n === 'string') ? undefined : 'names not a string[]'
    default: return undefined
  }
}

/** The ops that libfuse may call with a NULL path ('' here): they identify the file by fh. */
const FH_OPS: ReadonlySet<string> = new Set(['read', 'write', 'flush', 'release', 'fsync', 'ftruncate',
  'fgetattr', 'releasedir', 'fsyncdir'])

/** The Caller of the request being dispatched right now (synchronously), if any. */
type CallerNow = () => Caller | null

/**
 * Wrap one op: exactly one reply, always well-formed, a throw becomes its errno (or EIO); the
 * request's Caller, read when the request arrives, goes to the op after its callback.
 */
function guard(op: string, fn: AnyOp, self: FuseOps, callerNow: CallerNow): AnyOp {
  const pathless = !FH_OPS.has(op) && op !== 'init'
  const withCaller = op !== 'init'
  return (...args: unknown[]) => {
    // fuse-native runs _op_<name>, and so this guard, synchronously inside the native dispatch:
    // here (and only here) the patched module's current caller is this request's.
    const caller = withCaller ? callerNow() ?? processCaller() : undefined
    const cb = args.pop() as AnyCb
    // '' is libfuse's NULL path (a file unlinked while open): never let a path-based op see it,
    // where it could resolve to the layer root.
    if (pathless && args[0] === '') {
      cb(FuseErrno.ENOENT)
      return
    }
    let replied = false
    const reply: AnyCb = (code, ...values) => {
      if (replied) {
        fuseLog('%s %o: second reply ignored', op, args[0])
        return
      }
      replied = true
      const why = badReply(op, code, values)
      if (why !== undefined) {
        fuseLog('%s %o: %s (%o), answering EIO', op, args[0], why, code)
        cb(FuseErrno.EIO)
        return
      }
      cb(code, ...values)
    }
    try {
      if (withCaller) fn.call(self, ...args, reply, caller)
      else fn.call(self, ...args, reply)
    } catch (err) {
      fuseLog('%s %o threw: %O', op, args[0], err)
      reply(errnoOf(err))
    }
  }
}

const OP_NAMES: readonly FuseOpName[] = [
  'init', 'getattr', 'fgetattr', 'access', 'statfs', 'readdir', 'opendir', 'releasedir', 'open', 'create',
  'read', 'write', 'flush', 'release', 'fsync', 'fsyncdir', 'truncate', 'ftruncate', 'utimens',
  'readlink', 'chown', 'chmod', 'mknod', 'unlink', 'rmdir', 'mkdir', 'rename', 'link', 'symlink',
  'setxattr', 'getxattr', 'listxattr', 'removexattr',
]

function guardOps(ops: FuseOps, callerNow: CallerNow): Record<string, AnyOp> {
  const guarded: Record<string, AnyOp> = {}
  for (const name of OP_NAMES) {
    const fn = ops[name] as AnyOp | undefined
    if (typeof fn === 'function') guarded[name] = guard(name, fn, ops, callerNow)
  }
  return guarded
}

function timeSpecOf(sec: number, nsec: number): TimeSpec {
  if (nsec === UTIME_NOW) return 'now'
  if (nsec === UTIME_OMIT) return 'omit'
  return BigInt(sec) * 1_000_000_000n + BigInt(nsec)
}

// ---- the Fuse subclass -------------------------------------------------------------------

const NUL = Buffer.from([0])

type Signal = (code: number, ...values: unknown[]) => void

export class LayerFuse extends Fuse {
  readonly #options: readonly string[]
  readonly #ops: Record<string, AnyOp>

  constructor(mnt: string, ops: FuseOps, opts: LayerFuseOptions) {
    if (Fuse.layerfsPatch !== PATCH_REV) {
      throw Object.assign(new Error(
        `fuse-native is not the layerfs-patched build (patch rev ${String(Fuse.layerfsPatch)}, ` +
        `want ${PATCH_REV}): run scripts/build-native.sh`), { code: 'ERR_FUSE_UNPATCHED' })
    }
    validateFuseOptions(opts.options)
    // The guards are built before `this` exists; they find the instance through this box.
    const self: { fuse?: LayerFuse } = {}
    const guarded = guardOps(ops, () => (self.fuse === undefined ? null : LayerFuse.#callerNow(self.fuse)))
    super(mnt, guarded, { timeout: opts.timeout ?? false, force: opts.force ?? false, mkdir: opts.mkdir ?? false })
    self.fuse = this
    this.#options = [...opts.options]
    this.#ops = guarded
  }

  /** The patched index.js sets _requestCaller around each synchronous _op_* dispatch. */
  static #callerNow(fuse: LayerFuse): Caller | null {
    const c = fuse._requestCaller
    return c === null || c === undefined ? null : c
  }

  /** The -o list, exactly as given (fuse-native's own option mapping is bypassed). */
  protected override _fuseOptions(): string {
    return this.#options.length > 0 ? '-o' + this.#options.join(',') : ''
  }

  /** Patched C passes (sec, nsec) pairs, nsec possibly UTIME_NOW / UTIME_OMIT. */
  protected override _op_utimens(signal: Signal, path: string, atimeSec: number, atimeNsec: number,
    mtimeSec: number, mtimeNsec: number): void {
    this.#ops['utimens']!(path, timeSpecOf(atimeSec, atimeNsec), timeSpecOf(mtimeSec, mtimeNsec),
      (code: number) => signal(code))
  }

  /** The C passes (path, fh, flags) (fh is always 0 here); fuse-native's default took fh for flags. */
  protected override _op_opendir(signal: Signal, path: string, _fh: number, flags: number): void {
    this.#ops['opendir']!(path, flags, (code: number, fh?: number) => signal(code, fh))
  }

  /** setxattr without the macOS-only position argument (always 0 on Linux). */
  protected override _op_setxattr(signal: Signal, path: string, name: string, value: Buffer,
    _position: number, flags: number): void {
    this.#ops['setxattr']!(path, name, value, flags, (code: number) => signal(code, value.buffer))
  }

  /** valueBuf has the caller's size (0: a size query). The C side detaches its ArrayBuffer. */
  protected override _op_getxattr(signal: Signal, path: string, name: string, valueBuf: Buffer,
    _position: number): void {
    this.#ops['getxattr']!(path, name, (code: number, value?: Buffer | null) => {
      if (code < 0) return signal(code, valueBuf.buffer)
      if (value === undefined || value === null) return signal(FuseErrno.ENODATA, valueBuf.buffer)
      if (valueBuf.length === 0) return signal(value.length, valueBuf.buffer)
      if (value.length > valueBuf.length) return signal(FuseErrno.ERANGE, valueBuf.buffer)
      value.copy(valueBuf)
      return signal(value.length, valueBuf.buffer)
    })
  }

  /** listBuf has the caller's size (0: a size query): "a\0b\0", exact size, or ERANGE. */
  protected override _op_listxattr(signal: Signal, path: string, listBuf: Buffer): void {
    this.#ops['listxattr']!(path, (code: number, names?: string[]) => {
      if (code < 0) return signal(code, listBuf.buffer)
      const list = Buffer.concat((names ?? []).flatMap(n => [nameBytes(n), NUL]))
      if (listBuf.length === 0) return signal(list.length, listBuf.buffer)
      if (list.length > listBuf.length) return signal(FuseErrno.ERANGE, listBuf.buffer)
      list.copy(listBuf)
      return signal(list.length, listBuf.buffer)
    })
  }

  /** Resolves once the mount is live (FUSE INIT done). */
  mountAsync(): Promise<void> {
    return new Promise((resolve, reject) => this.mount(err => (err ? reject(err) : resolve())))
  }

  /** `fusermount -uz` the mount point, then release the native side. */
  unmountAsync(): Promise<void> {
    return new Promise((resolve, reject) => this.unmount(err => (err ? reject(err) : resolve())))
  }

  /** Lazy-unmount any mount point (e.g. a stale one). */
  static unmountPath(mnt: string): Promise<void> {
    return new Promise((resolve, reject) => Fuse.unmount(mnt, err => (err ? reject(err) : resolve())))
  }
}
