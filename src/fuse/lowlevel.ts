// Our FUSE session (the addon in src/fuse/native: lowlevel.c and protocol.c speak the kernel's
// FUSE protocol; libfuse 2.9 only mounts and unmounts): requests by node id, answered whenever
// JS is ready. This module only types the native calls and encodes replies; what the node ids
// mean is nodes.ts's business, what requests do ll-ops.ts's.
import { lowlevelModule } from './native-module.js'
import type { UnionStat } from '../union/inode.js'
import type { StatFs } from '../layers/statfs.js'

/** Request kinds, as lowlevel.c numbers them. */
/**
 * READ (14), WRITE (15), FLUSH (16) and FALLOCATE (29) never reach JS: lowlevel.c answers them
 * itself (on the kernel's handle fd, but FLUSH).
 */
export const Op = {
  INIT: 0, LOOKUP: 1, FORGET: 2, GETATTR: 3, SETATTR: 4, READLINK: 5, MKNOD: 6, MKDIR: 7,
  UNLINK: 8, RMDIR: 9, SYMLINK: 10, RENAME: 11, LINK: 12, OPEN: 13, READ: 14, WRITE: 15,
  FLUSH: 16, RELEASE: 17, FSYNC: 18, OPENDIR: 19, READDIR: 20, RELEASEDIR: 21, FSYNCDIR: 22,
  STATFS: 23, SETXATTR: 24, GETXATTR: 25, LISTXATTR: 26, REMOVEXATTR: 27, CREATE: 28,
  FALLOCATE: 29, EXIT: 30, READDIRPLUS: 31, TMPFILE: 32, STATX: 33,
} as const

export const OP_NAMES: readonly string[] = Object.keys(Op).map(k => k.toLowerCase())

/** setattr's to_set bits (fuse_lowlevel.h). */
export const SetAttr = {
  MODE: 1 << 0, UID: 1 << 1, GID: 1 << 2, SIZE: 1 << 3, ATIME: 1 << 4, MTIME: 1 << 5,
  ATIME_NOW: 1 << 7, MTIME_NOW: 1 << 8,
} as const

/** open/create reply flags. */
export const OpenFlags = { DIRECT_IO: 1, KEEP_CACHE: 2, CACHE_DIR: 4, PASSTHROUGH: 8 } as const

/**
 * One request, as lowlevel.c hands it over. Fields a kind does not use are 0/undefined.
 * Names are strings in the name codec of ../layers/native/names.ts (bytes that are not UTF-8
 * as lone surrogates); setxattr's value is a Buffer JS owns.
 */
/** Request tokens from here up are io_uring entries (lowlevel.c, LL_RING_TAG), not unique ids. */
export const RING_TOKEN = 2 ** 52

export interface Request {
  op: number
  /**
   * What the reply is addressed by: the kernel's unique id of the request, or (from RING_TOKEN
   * up) the io_uring entry it came in. Pass it back to exactly one reply. 0 for init/forget/exit.
   */
  req: number
  /** The node the request is about; the parent for lookup/create/mkdir/mknod/symlink/unlink/rmdir/rename. */
  ino: number
  /** The open handle, when the kernel sent one (getattr/setattr only when it did). */
  fh: number | undefined
  /** readdir offset; create and getxattr: the xattr sequence they were read at (noCapability). */
  off: number
  /** readdir/xattr size, forget's nlookup. */
  size: number
  /** open/create/tmpfile flags, setxattr flags, rename flags, fsync datasync. */
  flags: number
  /** create/mkdir/mknod mode; setattr's to_set bits. */
  mode: number
  /** The entry name (lookup, create, ..., the old name of rename), or the xattr name. */
  name: string | undefined
  /** rename/link's new name, symlink's target (strings); setxattr's value (a Buffer). */
  name2: string | Buffer | undefined
  /** rename/link's new parent. */
  ino2: number
  uid: number
  gid: number
  pid: number
  /** setattr: [mode, uid, gid, size, atimeNs, mtimeNs]; mknod: rdev; else the caller's umask. */
  extra: number | SetAttrValues
}

export type SetAttrValues = [mode: number, uid: number, gid: number, size: number, atimeNs: bigint, mtimeNs: bigint]

interface Native {
  ll_mount(mnt: string, mountOpts: string, sessionOpts: string, dispatch: (...a: never[]) => void, stat: Uint32Array,
    threaded: boolean, protoMax: number, spinUs: number, stackDepth: number, uring: boolean): unknown
  ll_reply_err(s: unknown, req: number, errno: number): void
  ll_reply_entry(s: unknown, req: number, nodeid: number, entryTimeout: number, attrTimeout: number): void
  ll_reply_create(s: unknown, req: number, nodeid: number, entryTimeout: number, attrTimeout: number, fh: number, flags: number,
    backingId: number): void
  ll_reply_attr(s: unknown, req: number, attrTimeout: number): void
  ll_reply_statx(s: unknown, req: number, attrTimeout: number, btimeSec: number, btimeNsec: number): void
  ll_reply_open(s: unknown, req: number, fh: number, flags: number, backingId: number): void
  ll_reply_buf(s: unknown, req: number, buf: Buffer, len: number): void
  ll_reply_xattr(s: unknown, req: number, n: number): void
  ll_reply_readlink(s: unknown, req: number, target: Buffer): void
  ll_reply_statfs(s: unknown, req: number, ints: Uint32Array): void
  ll_notify_inval_inode(s: unknown, nodeid: number, off: number, len: number): number
  ll_notify_inval_entry(s: unknown, parent: number, name: Buffer): number
  ll_no_capability(s: unknown, nodeid: number, seq: number): void
  ll_queue_inval_entry(s: unknown, parent: number, name: Buffer): number
  ll_info(s: unknown): [protoMinor: number, maxWrite: number, want: number, passthrough: number, uring: number]
  ll_backing_open(s: unknown, fd: number): number
  ll_backing_close(s: unknown, id: number): number
  ll_exited(s: unknown): void
  ll_dup_fd(fd: number): number
  ll_retarget_fd(handleFd: number, fd: number): number
  ll_close_fd(handleFd: number): number
  ll_fh_attr(handleFd: number, ino: bigint, attrTimeout: number): void
  ll_node_fd(nodeid: number, fd: number): void
}

const native = lowlevelModule() as Native

function fdResult(r: number, syscall: string): number {
  if (r < 0) throw Object.assign(new Error(`${syscall}: errno ${-r}`), { errno: r, syscall })
  return r
}

/**
 * The kernel's file handles are descriptors of the real files (lowlevel.c reads and writes
 * them in its own thread): one per open, a dup of the union handle's fd.
 */
export const kernelFd = {
  /** A new descriptor of fd's open file, for the kernel to hold. */
  dup: (fd: number): number => fdResult(native.ll_dup_fd(fd), 'dup'),
  /** The kernel's descriptor now stands for fd's file (copy-up moved a reader to the upper). */
  retarget: (handleFd: number, fd: number): void => void fdResult(native.ll_retarget_fd(handleFd, fd), 'dup3'),
  close: (handleFd: number): void => void native.ll_close_fd(handleFd),
  /**
   * GETATTRs with this handle are answered in C from an fstat of it, with st_ino `ino`
   * (lowlevel.c, "attributes of open files"): only where that is the union's stat.
   */
  attrsInC: (handleFd: number, ino: bigint, attrTimeout: number): void => native.ll_fh_attr(handleFd, ino, attrTimeout),
  /**
   * GETATTRs of the node that come without a handle (stat, fstat) are answered in C from `fd`,
   * a descriptor registered with attrsInC; -1: no longer.
   */
  nodeAttrsInC: (nodeid: number, fd: number): void => native.ll_node_fd(nodeid, fd),
}

const STAT_INTS = 22
const STATFS_INTS = 17
const NS = 1_000_000_000n

function setU64(a: Uint32Array, i: number, v: number | bigint): void {
  if (typeof v === 'bigint') {
    a[i] = Number(BigInt.asUintN(32, v))
    a[i + 1] = Number(BigInt.asUintN(32, v >> 32n))
  } else {
    a[i] = v % 4294967296
    a[i + 1] = Math.floor(v / 4294967296)
  }
}

function setTime(a: Uint32Array, i: number, ns: bigint): void {
  let sec = ns / NS
  let nsec = ns % NS
  if (nsec < 0n) {
    nsec += NS
    sec -= 1n
  }
  setU64(a, i, sec)
  a[i + 2] = Number(nsec)
}

/**
 * How the session talks to the kernel. `protoMax`: the FUSE protocol minor answered at INIT,
 * at most (the kernel's own may be lower), 19 to 40; from 21 listings are
 * READDIRPLUS, from 28 requests are up to 1 MiB and renameat2's flags, O_TMPFILE, SEEK_DATA
 * and copy_file_range are served, from 40 files may be passed through (lowlevel.c,
 * "protocol"). `passthrough`: ask for it (it takes CAP_SYS_ADMIN as well). `threaded`: a FUSE
 * thread of its own reads the requests (READ and WRITE go on while JS is busy) rather than the
 * JS thread (one thread hop less per request). `spinUs`: when the JS thread reads, how long it waits awake for the next request
 * after answering, instead of sleeping (a sleeping thread's wake-up costs more than a request on
 * a VM: lstat of 56k names 5.9 -> 3.5 s on this machine, native-notes/lowlevel-binding.md).
 */
export interface SessionMode {
  protoMax: number
  passthrough: boolean
  threaded: boolean
  spinUs: number
  /** Requests over io_uring where the kernel offers it (lowlevel.c, "io_uring"); not with `threaded`. */
  uring: boolean
}

/**
 * The max_stack_depth asked for with passthrough: our superblock counts as one filesystem
 * stacked on another, so kernel overlayfs may still use the mount as a layer (the kernel allows
 * two). A backing file on a stacked filesystem itself (an upper on overlayfs, as in a container)
 * is refused with ELOOP, and such files are served as before (ll-ops.ts #backingFor).
 */
const PASSTHROUGH_STACK_DEPTH = 1

/** Waiting awake up to 50 microseconds after each answer (30 to 100 measured the same). */
export const DEFAULT_SPIN_US = 50

/**
 * LAYERFS_FUSE_PROTO (19..40, default 40), LAYERFS_PASSTHROUGH=0 (passthrough off),
 * LAYERFS_FUSE_THREAD=1 and LAYERFS_FUSE_SPIN_US (0..1000).
 */
export function sessionModeFromEnv(env = process.env): SessionMode {
  const int = (v: string | undefined, dflt: number, lo: number, hi: number): number => {
    const n = Number(v ?? dflt)
    return Number.isInteger(n) && n >= lo && n <= hi ? n : dflt
  }
  return {
    protoMax: int(env.LAYERFS_FUSE_PROTO, 40, 19, 40),
    passthrough: env.LAYERFS_PASSTHROUGH !== '0',
    threaded: env.LAYERFS_FUSE_THREAD === '1',
    spinUs: int(env.LAYERFS_FUSE_SPIN_US, DEFAULT_SPIN_US, 0, 1000),
    uring: env.LAYERFS_FUSE_URING === '1',
  }
}

/** Bytes of a fuse_direntplus before its name: fuse_entry_out (with fuse_attr), fuse_dirent. */
export const DIRENTPLUS_HEADER = 152

/**
 * Appends one fuse_direntplus to `out` at `at`: the entry (node id 0: the kernel learns
 * nothing but the name, as for '.' and '..') and the dirent. Returns the next offset, or -1
 * when it does not fit.
 */
export function putDirentPlus(out: Buffer, at: number, name: Buffer, off: number, type: number, ino: bigint,
  nodeid: number, st: UnionStat | undefined, entryTimeout: number, attrTimeout: number): number {
  const size = (DIRENTPLUS_HEADER + name.length + 7) & ~7
  if (at + size > out.length) return -1
  out.fill(0, at, at + DIRENTPLUS_HEADER)
  if (nodeid !== 0 && st) {
    out.writeBigUInt64LE(BigInt(nodeid), at)
    putTimeout(out, at + 16, at + 32, entryTimeout)
    putTimeout(out, at + 24, at + 36, attrTimeout)
    const a = at + 40
    out.writeBigUInt64LE(BigInt.asUintN(64, BigInt(st.ino)), a)
    out.writeBigUInt64LE(BigInt(st.size), a + 8)
    out.writeBigUInt64LE(BigInt(st.blocks), a + 16)
    putTime(out, a + 24, a + 48, st.atimeNs)
    putTime(out, a + 32, a + 52, st.mtimeNs)
    putTime(out, a + 40, a + 56, st.ctimeNs)
    out.writeUInt32LE(st.mode >>> 0, a + 60)
    out.writeUInt32LE(st.nlink >>> 0, a + 64)
    out.writeUInt32LE(st.uid >>> 0, a + 68)
    out.writeUInt32LE(st.gid >>> 0, a + 72)
    out.writeUInt32LE(st.rdev >>> 0, a + 76)
    out.writeUInt32LE(st.blksize >>> 0, a + 80)
  }
  out.writeBigUInt64LE(BigInt.asUintN(64, ino), at + 128)
  out.writeBigUInt64LE(BigInt(off), at + 136)
  out.writeUInt32LE(name.length, at + 144)
  out.writeUInt32LE(type, at + 148)
  name.copy(out, at + DIRENTPLUS_HEADER)
  out.fill(0, at + DIRENTPLUS_HEADER + name.length, at + size)
  return at + size
}

/** A timeout in seconds as fuse_entry_out's (u64 seconds, u32 ns), as libfuse's calc_timeout_*. */
function putTimeout(out: Buffer, secAt: number, nsecAt: number, t: number): void {
  const sec = t > 0 ? Math.floor(t) : 0
  out.writeBigUInt64LE(BigInt(sec), secAt)
  out.writeUInt32LE(t > 0 ? Math.floor((t - sec) * 1e9) : 0, nsecAt)
}

function putTime(out: Buffer, secAt: number, nsecAt: number, ns: bigint): void {
  let sec = ns / NS
  let nsec = ns % NS
  if (nsec < 0n) {
    nsec += NS
    sec -= 1n
  }
  out.writeBigUInt64LE(BigInt.asUintN(64, sec), secAt)
  out.writeUInt32LE(Number(nsec), nsecAt)
}

export class LowLevelSession {
  readonly #s: unknown
  readonly #stat = new Uint32Array(STAT_INTS)
  readonly #statfs = new Uint32Array(STATFS_INTS)
  #exited = false
  readonly initialized: Promise<void>
  /** Resolves when the FUSE loop has ended (the mount is gone). */
  readonly exited: Promise<void>

  /**
   * Mounts `mnt` (fuse_mount with `mountOpts`, e.g. ['fsname=x', 'allow_other']) and starts the
   * session (`sessionOpts` in libfuse 2.9's names, e.g. ['max_write=131072']: protocol.c,
   * ll_session_options). Every request goes to `onRequest`, on the JS thread; init and exit
   * are handled here.
   */
  constructor(mnt: string, mountOpts: readonly string[], sessionOpts: readonly string[], onRequest: (r: Request) => void,
    session: SessionMode = sessionModeFromEnv()) {
    let onInit!: () => void
    let onExit!: () => void
    this.initialized = new Promise(resolve => (onInit = resolve))
    this.exited = new Promise(resolve => (onExit = resolve))
    const dispatch = (op: number, req: number, ino: number, fh: number | undefined, off: number, size: number,
      flags: number, mode: number, name: string | undefined, name2: string | Buffer | undefined, _unused: undefined,
      ino2: number, uid: number, gid: number, pid: number, extra: number | SetAttrValues): void => {
      if (op === Op.INIT) return onInit()
      if (op === Op.EXIT) {
        this.#exited = true
        native.ll_exited(this.#s)
        return onExit()
      }
      onRequest({ op, req, ino, fh, off, size, flags, mode, name, name2, ino2, uid, gid, pid, extra })
    }
    const opts = (list: readonly string[]): string => (list.length > 0 ? '-o' + list.join(',') : '')
    this.#s = native.ll_mount(mnt, opts(mountOpts), opts(sessionOpts), dispatch as (...a: never[]) => void, this.#stat,
      session.threaded, session.protoMax, session.spinUs, session.passthrough ? PASSTHROUGH_STACK_DEPTH : 0, session.uring)
  }

  get isExited(): boolean {
    return this.#exited
  }

  /**
   * What INIT negotiated: the protocol minor, max_write, the capabilities wanted, whether
   * files may be passed through, whether requests come over io_uring.
   */
  info(): { protoMinor: number; maxWrite: number; want: number; passthrough: boolean; uring: boolean } {
    const [protoMinor, maxWrite, want, passthrough, uring] = native.ll_info(this.#s)
    return { protoMinor, maxWrite, want, passthrough: passthrough !== 0, uring: uring !== 0 }
  }

  /**
   * Registers `fd`'s file as a backing file for passthrough opens (FUSE_DEV_IOC_BACKING_OPEN):
   * its id (> 0), or -errno (EPERM without CAP_SYS_ADMIN, ELOOP when the file sits on a
   * filesystem stacked as deep as ours, EOPNOTSUPP when INIT did not negotiate passthrough).
   */
  backingOpen(fd: number): number {
    return native.ll_backing_open(this.#s, fd)
  }

  /** Drops a backing id; the kernel keeps the file while an inode of ours still uses it. */
  backingClose(id: number): void {
    native.ll_backing_close(this.#s, id)
  }

  #putStat(st: UnionStat): void {
    const a = this.#stat
    a[0] = st.mode
    a[1] = st.uid
    a[2] = st.gid
    setU64(a, 3, st.size)
    a[5] = 0
    a[6] = st.nlink
    setU64(a, 7, st.ino)
    a[9] = st.rdev
    a[10] = st.blksize
    setU64(a, 11, st.blocks)
    setTime(a, 13, st.atimeNs)
    setTime(a, 16, st.mtimeNs)
    setTime(a, 19, st.ctimeNs)
  }

  /** errno > 0 is an error, 0 success for the ops that return nothing. */
  err(req: number, errno: number): void {
    native.ll_reply_err(this.#s, req, errno)
  }

  entry(req: number, nodeid: number, st: UnionStat, entryTimeout: number, attrTimeout: number): void {
    this.#putStat(st)
    native.ll_reply_entry(this.#s, req, nodeid, entryTimeout, attrTimeout)
  }

  /** "No such name", cached by the kernel for `timeout` seconds (0: ENOENT, not cached). */
  negative(req: number, timeout: number): void {
    if (timeout > 0) native.ll_reply_entry(this.#s, req, 0, timeout, 0)
    else native.ll_reply_err(this.#s, req, 2)
  }

  /** `backingId`: with OpenFlags.PASSTHROUGH, what backingOpen gave. */
  create(req: number, nodeid: number, st: UnionStat, entryTimeout: number, attrTimeout: number, fh: number, flags: number,
    backingId = 0): void {
    this.#putStat(st)
    native.ll_reply_create(this.#s, req, nodeid, entryTimeout, attrTimeout, fh, flags, backingId)
  }

  attr(req: number, st: UnionStat, attrTimeout: number): void {
    this.#putStat(st)
    native.ll_reply_attr(this.#s, req, attrTimeout)
  }

  /** A STATX answer: the attributes, and the birth time in nanoseconds when known. */
  statx(req: number, st: UnionStat, btimeNs: bigint | undefined, attrTimeout: number): void {
    this.#putStat(st)
    if (btimeNs === undefined) return native.ll_reply_statx(this.#s, req, attrTimeout, 0, -1)
    const sec = btimeNs / NS
    native.ll_reply_statx(this.#s, req, attrTimeout, Number(sec), Number(btimeNs - sec * NS))
  }

  /** `backingId`: with OpenFlags.PASSTHROUGH, what backingOpen gave. */
  open(req: number, fh: number, flags: number, backingId = 0): void {
    native.ll_reply_open(this.#s, req, fh, flags, backingId)
  }

  buf(req: number, buf: Buffer, len = buf.length): void {
    native.ll_reply_buf(this.#s, req, buf, len)
  }

  xattrSize(req: number, n: number): void {
    native.ll_reply_xattr(this.#s, req, n)
  }

  readlink(req: number, target: Buffer): void {
    native.ll_reply_readlink(this.#s, req, target)
  }

  statfs(req: number, s: StatFs): void {
    const a = this.#statfs
    a.fill(0)
    a[0] = Number(s.bsize)
    a[1] = Number(s.frsize ?? s.bsize)
    setU64(a, 2, s.blocks)
    setU64(a, 4, s.bfree)
    setU64(a, 6, s.bavail)
    setU64(a, 8, s.files)
    setU64(a, 10, s.ffree)
    setU64(a, 12, s.favail ?? s.ffree)
    a[16] = Number(s.namemax)
    native.ll_reply_statfs(this.#s, req, a)
  }

  /** Drop the kernel's cached attributes of a node (and its pages from `off` when off >= 0). */
  invalidateInode(nodeid: number, off = -1, len = 0): void {
    if (!this.#exited) native.ll_notify_inval_inode(this.#s, nodeid, off, len)
  }

  /**
   * The node's file has no security.capability, as seen while handling request `r` (a CREATE,
   * or a GETXATTR of it answered ENODATA): the kernel's probe before each write is answered in
   * C from now on (lowlevel.c, "capability probes"; `r.off` is the xattr sequence it was read at).
   */
  noCapability(nodeid: number, r: Request): void {
    if (!this.#exited) native.ll_no_capability(this.#s, nodeid, r.off)
  }

  /** Drop the kernel's cached lookup of `name` in `parent`. */
  invalidateEntry(parent: number, name: Buffer): void {
    if (!this.#exited) native.ll_notify_inval_entry(this.#s, parent, name)
  }

  /**
   * Ask the kernel to drop its lookup of `name` in `parent` from a thread of the addon's own,
   * later (never waits: safe while requests in that directory are pending). Whether queued.
   */
  queueInvalidateEntry(parent: number, name: Buffer): boolean {
    return !this.#exited && native.ll_queue_inval_entry(this.#s, parent, name) === 1
  }
}
