// Open files: open (copy-up first when it may write), create, read, write, truncate, fsync,
// release. I/O goes straight to the real fd behind the handle.
import { constants } from 'node:fs'
import { fsError } from '../errors.js'
import type { BigIntStats } from 'node:fs'
import { fchmodSync, fchownSync } from 'node:fs'
import { closeFd, fstatFd, readFd, syncFd, truncateFd, writeFd } from '../layers/fd.js'
import { host, type TimeSpec } from '../layers/native.js'
import { hasSupplementaryGroup } from '../layers/caller-groups.js'
import type { UpperLayer } from '../layers/upper.js'
import { copyUp, ensureUpperDir } from './copy-up.js'
import { type Caller, createObject, ownerOfNew } from './dir-ops.js'
import { NO_LOWER_DIRS, objStat } from './entry.js'
import type { Handle } from './handles.js'
import type { Union } from './union.js'

const O_ACCMODE = 3
const { O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_NOCTTY, O_DIRECT } = constants
/**
 * Flags that already did their work in the kernel, or that our buffers cannot honour.
 * O_TRUNC stays: with atomic_o_trunc it arrives here instead of as a truncate.
 */
const STRIP = O_CREAT | O_EXCL | O_NOCTTY | O_DIRECT

/**
 * open(2). With `caller` (who opened), a truncating open and the first write through the
 * handle drop setuid/setgid bits as the kernel's file_remove_privs would (killPrivs).
 */
export async function open(u: Union, path: string, flags: number, caller?: PrivCaller): Promise<number> {
  u = u.route(path)
  let e = u.resolve(path)
  const trunc = (flags & O_TRUNC) !== 0
  if ((flags & O_ACCMODE) !== O_RDONLY || trunc) {
    u.requireUpper('open', path)
    // Data that O_TRUNC would drop is not copied.
    e = await copyUp(u, e, trunc ? 'trunc' : 'data')
  }
  // A metacopy file (opened for reading) reads its lower data file.
  const real = e.lowerData ?? e.top
  const fd = real.layer.open(real.path, flags & ~STRIP)
  const privileged = (Number(e.top.stat.mode) & 0o6000) !== 0
  if (trunc && privileged && caller) killPrivs(u.requireUpper('open', path), e.top.path, caller)
  return u.handles.add({ fd, path, upper: real.layer.isUpper, flags, killPrivs: privileged && !trunc })
}

/** Who changes a file's data: the fsuid/fsgid FUSE sends, and the thread (for its other groups). */
export interface PrivCaller extends Caller {
  readonly pid?: number
}

/**
 * The kernel's file_remove_privs for a caller without CAP_FSETID (any uid but 0) changing a
 * regular file's data: S_ISUID goes; S_ISGID goes with group-exec, or when the caller is not in
 * the file's group. FUSE 7.19 without handle_killpriv does only part of it in the kernel
 * (S_ISUID, and S_ISGID with group-exec, on write; nothing on open(O_TRUNC)): the rest is ours.
 */
export function killPrivs(upper: UpperLayer, realPath: string, caller: PrivCaller): void {
  if (caller.uid === 0) return
  const st = upper.lstat(realPath)
  const mode = Number(st.mode)
  if ((mode & 0o170000) !== 0o100000) return
  let kill = mode & 0o4000
  if (mode & 0o2000) {
    const gid = Number(st.gid)
    const inGroup = caller.gid === gid || hasSupplementaryGroup(caller.pid ?? 0, gid)
    if (mode & 0o010 || !inGroup) kill |= 0o2000
  }
  if (kill) upper.chmod(realPath, mode & 0o7777 & ~kill)
}

/** create(2): the binding does not pass the caller's flags, so the file is opened O_RDWR. */
export function create(u: Union, path: string, mode: number, caller?: Caller): number {
  u = u.routeName(path, 'create')
  let fd = -1
  createObject(u, path, 'create', (up, p) => {
    fd = up.open(p, O_CREAT | O_EXCL | O_RDWR, mode & 0o7777)
  }, caller)
  // The new entry without a lookup (a stat and an xattr in the upper, one stat per lower
  // layer below a merged parent): a new file is an upper object of its own, with no origin
  // and nothing below it.
  const obj = { layer: u.requireUpper('create', path), path, stat: objStat(fstatFd(fd)) }
  u.cache.set(path, { path, top: obj, upper: obj, lowerDirs: NO_LOWER_DIRS, origin: undefined, isDir: false })
  return u.handles.add({ fd, path, upper: true, flags: O_RDWR })
}

/** Linux's O_TMPFILE (__O_TMPFILE | O_DIRECTORY): Node's constants do not have it. */
export const O_TMPFILE = 0o20200000

/** The path a tmpfile's handle carries: no union path has a NUL, so none ever meets it. */
export const tmpfilePath = (dir: string): string => `${dir}\0tmpfile`

/**
 * open(dir, O_TMPFILE), as the kernel's ovl_tmpfile: the directory is copied up and an
 * unnamed file made in its upper directory (O_TMPFILE there), owned by the caller (in a setgid
 * directory, with the directory's group). Its handle has no union path (tmpfilePath).
 */
export function tmpfile(u: Union, dir: string, flags: number, mode: number, caller?: Caller): number {
  u = u.route(dir)
  const upper = u.requireUpper('open', dir)
  const e = u.resolve(dir)
  if (!e.isDir) throw fsError('ENOTDIR', 'open', dir)
  ensureUpperDir(u, e)
  const fd = upper.open(dir, O_TMPFILE | (flags & O_ACCMODE), mode & 0o7777)
  try {
    if (caller) {
      const { uid, gid } = ownerOfNew(u, upper, dir, caller)
      const st = fstatFd(fd)
      if (Number(st.uid) !== uid || (gid !== -1 && Number(st.gid) !== gid)) {
        fchownSync(fd, uid, gid)
        // chown drops setuid/setgid bits the caller asked for: put them back.
        if (mode & 0o6000) fchmodSync(fd, mode & 0o7777)
      }
    }
  } catch (err) {
    closeFd(fd)
    throw err
  }
  return u.handles.add({ fd, path: tmpfilePath(dir), upper: true, flags: flags & O_ACCMODE })
}

/** Whether handle `id` is of an O_TMPFILE file no link has named yet (its path is a tmpfilePath). */
export function isTmpfile(u: Union, id: number): boolean {
  const h = u.handles.get(id)
  return h !== undefined && h.upper && h.path.endsWith(tmpfilePath(''))
}

/**
 * linkat(fd, "", AT_EMPTY_PATH) of an O_TMPFILE file: its first name, made as any new name is
 * (over a whiteout by way of the workdir). Its handle then carries the path. (The link of
 * /proc/self/fd/N never comes here: the kernel's VFS answers it EXDEV, as on kernel overlayfs.)
 */
export function linkTmpfile(u: Union, id: number, to: string): void {
  if (!isTmpfile(u, id)) throw fsError('ENOENT', 'link', to)
  const h = handle(u, id, 'link')
  u = u.routeName(to, 'link')
  createObject(u, to, 'link', (up, p) => up.linkFd(h.fd, p), undefined, true)
  h.path = to
}

/**
 * chmod, chown, truncate and utimens of a file through an open handle of it: for a file with
 * no name left (unlinked while open, or O_TMPFILE), which only its upper file can change.
 */
export function fsetattr(u: Union, id: number, a: { mode?: number; uid?: number; gid?: number; size?: number; atime: TimeSpec; mtime: TimeSpec }): void {
  const h = handle(u, id, 'setattr')
  // A lower file unlinked while open (for reading): kernel overlayfs tries to copy it up and
  // meets the whiteout at its name: EEXIST.
  if (!h.upper) throw fsError('EEXIST', 'setattr', h.path)
  const ids = u.inodes.ids
  // chown drops setuid/setgid bits as the upper filesystem's chown does under kernel
  // overlayfs; a mode the kernel wants instead comes in the same request, and is set after.
  if (a.uid !== undefined || a.gid !== undefined) fchownSync(h.fd, a.uid === undefined ? -1 : ids.uidIn(a.uid), a.gid === undefined ? -1 : ids.gidIn(a.gid))
  if (a.mode !== undefined) fchmodSync(h.fd, a.mode & 0o7777)
  if (a.size !== undefined) truncateFd(h.fd, a.size)
  if (a.atime !== 'omit' || a.mtime !== 'omit') host.futimens(h.fd, a.atime, a.mtime)
}

function handle(u: Union, id: number, syscall: string): Handle {
  const h = u.handles.get(id)
  if (!h) throw fsError('EBADF', syscall)
  return h
}

export const read = (u: Union, id: number, buf: Buffer, len: number, pos: number): number =>
  readFd(handle(u, id, 'read').fd, buf, len, pos)

export function write(u: Union, id: number, buf: Buffer, len: number, pos: number, caller?: PrivCaller): number {
  const h = handle(u, id, 'write')
  if (!h.upper) throw fsError('EBADF', 'write', h.path)
  if (caller) beforeWrites(u, id, caller)
  return writeFd(h.fd, buf, len, pos)
}

/** What the first write through a handle does to the file's setuid/setgid bits (killPrivs). */
function beforeWrites(u: Union, id: number, caller: PrivCaller): void {
  const h = handle(u, id, 'write')
  if (!h.killPrivs) return
  h.killPrivs = false
  const e = u.tryResolve(h.path)
  if (e?.upper) killPrivs(u.route(h.path).requireUpper('write', h.path), e.upper.path, caller)
}

/** fstat(2) of the real file behind a handle (an unlinked open file has no path left). */
export const fstat = (u: Union, id: number): BigIntStats => fstatFd(handle(u, id, 'fstat').fd)

export function ftruncate(u: Union, id: number, size: number): void {
  const h = handle(u, id, 'ftruncate')
  if (!h.upper) throw fsError('EBADF', 'ftruncate', h.path)
  truncateFd(h.fd, size)
}

export async function truncate(u: Union, path: string, size: number): Promise<void> {
  u = u.route(path)
  const upper = u.requireUpper('truncate', path)
  const e = u.resolve(path)
  if (e.isDir) throw fsError('EISDIR', 'truncate', path)
  await copyUp(u, e)
  upper.truncate(path, size)
}

export async function fsync(u: Union, id: number, datasync: boolean): Promise<void> {
  const h = handle(u, id, 'fsync')
  // Its copy-up's own fsync first (and its journal entry gone).
  if (h.upper) await u.route(h.path).upper?.commits.of(h.path)
  await syncFd(h.fd, datasync)
}

/** fsync(2) of a directory: its upper directory's entries reach the disk (as overlayfs does). */
export async function fsyncDir(u: Union, path: string): Promise<void> {
  const e = u.resolve(path)
  if (e.upper) await u.upper!.fsyncFile(path)
}

export function release(u: Union, id: number): void {
  const h = u.handles.remove(id)
  if (h) closeFd(h.fd)
}
