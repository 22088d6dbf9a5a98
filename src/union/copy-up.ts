// Copy-up: make an upper object of a lower one before it changes. Parents first; the object
// is built in the workdir (data, then owner, mode, xattrs, times; data fsync'd) and renamed
// into place, so a crash never shows a half-copied file over the good lower one.
import fs from 'node:fs'
import { closeFd } from '../layers/fd.js'
import { S_IFLNK, S_IFREG, isDirMode } from '../layers/layer.js'
import type { UpperLayer } from '../layers/upper.js'
import { type Origin, encodeOrigin, originOf } from '../layers/origin.js'
import { originInoOf } from './lookup.js'
import { fsError } from '../errors.js'
import { copyUpLog } from '../log.js'
import { type Entry, NO_LOWER_DIRS, type ObjStat, type RealObject, objStat, parentOf } from './entry.js'
import type { Union } from './union.js'

const S_IFMT = 0o170000

/** The entry of directory `dir`, with an upper directory (its parents copied up first). */
export function ensureUpperDir(u: Union, dir: Entry): Entry {
  if (dir.upper) return dir
  const upper = u.requireUpper('copy-up', dir.path)
  ensureUpperDir(u, u.resolve(parentOf(dir.path)))
  const temp = upper.tempName()
  upper.mkdir(temp, 0o700)
  try {
    copyMeta(upper, dir.top, temp)
    if (!moveIntoPlace(upper, temp, dir.path)) upper.removeTree(temp)
  } catch (e) {
    upper.removeTree(temp)
    throw e
  }
  if (copyUpLog.enabled) copyUpLog('dir %s', dir.path)
  u.cache.invalidate(dir.path)
  u.onCopyUp?.(dir.path)
  return u.resolve(dir.path)
}

/**
 * The entry of `e` with an upper object: copies it up unless it has one. Without data (an
 * open with O_TRUNC) a regular file is copied up empty, as the kernel does.
 */
export async function copyUp(u: Union, e: Entry, withData = true): Promise<Entry> {
  if (e.upper) return e
  if (e.isDir) return ensureUpperDir(u, e)
  let inflight = u.copyUps.get(e.path)
  if (!inflight) {
    inflight = copyUpFile(u, e, withData).finally(() => u.copyUps.delete(e.path))
    u.copyUps.set(e.path, inflight)
  }
  await inflight
  return u.resolve(e.path)
}

/**
 * Wait for a copy-up of `path` in flight, if any. An operation that changes a name without
 * copying it up (unlink, rename onto it) must not run while the copy-up is building: the
 * copy-up's final rename would bring the name back.
 */
export async function waitCopyUp(u: Union, path: string): Promise<void> {
  const inflight = u.copyUps.get(path)
  if (inflight) await inflight.catch(() => {})
}

async function copyUpFile(u: Union, e: Entry, withData: boolean): Promise<void> {
  const upper = u.requireUpper('copy-up', e.path)
  ensureUpperDir(u, u.resolve(parentOf(e.path)))
  const lower = e.top
  const type = Number(lower.stat.mode) & S_IFMT
  const temp = upper.tempName()
  let placed = false
  let built: Entry | undefined
  if (copyUpLog.enabled) copyUpLog('%s (%d bytes)', e.path, lower.stat.size)
  let fd: number | undefined
  try {
    let st: ObjStat
    /** The data is a reflink: no fsync, as the kernel's (upper.ts copyDataToTemp). */
    let cloned = false
    if (type === S_IFREG && withData) {
      // One fd on the temp for data, metadata and fsync. The source's fstat is checked
      // against the lookup's (as lowerStat's lstat below).
      const copied = await upper.copyDataToTemp(lower.layer, lower.path, temp, lower.stat)
      fd = copied.fd
      st = objStat(copied.st)
      cloned = copied.cloned
    } else {
      st = lowerStat(e)
      if (type === S_IFREG) fd = upper.open(temp, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o600)
      else if (type === S_IFLNK) upper.symlink(lower.layer.readlink(lower.path), temp)
      else upper.mknod(temp, Number(st.mode), Number(st.rdev))
    }
    // Data first, then metadata: writing data after xattrs would drop security.capability,
    // and chown after chmod would drop setuid bits.
    const from = { ...lower, stat: st }
    const origin = copyMeta(upper, from, temp, fd)
    if (fd !== undefined) {
      if (!cloned) await upper.fsyncFd(fd)
      // The new entry, without a lookup: the upper object just made (its mode, owner and
      // inode; a rename changes only its ctime, which nothing takes from an entry) and the
      // origin just recorded.
      const ust = fs.fstatSync(fd, { bigint: true })
      const obj = { layer: upper, path: e.path, stat: objStat(ust) }
      built = { path: e.path, top: obj, upper: obj, lowerDirs: NO_LOWER_DIRS, origin: origin && originInoOf(u, origin), isDir: false }
      closeFd(fd)
      fd = undefined
    }
    placed = moveIntoPlace(upper, temp, e.path)
    if (!placed) upper.unlink(temp)
  } catch (err) {
    if (fd !== undefined) closeFd(fd)
    try {
      upper.unlink(temp)
    } catch {
      // Nothing was created.
    }
    throw err
  }
  if (placed && built) u.cache.set(e.path, built)
  else u.cache.invalidate(e.path)
  if (!placed) return
  for (const h of u.handles.lowerHandles(e.path)) {
    const hfd = upper.open(e.path, fs.constants.O_RDONLY)
    closeFd(h.fd)
    h.fd = hfd
    h.upper = true
    u.onHandleMoved?.(h)
  }
  u.onCopyUp?.(e.path)
}

/**
 * A fresh lstat of the lower object of `e`. The lower layer changed behind the mount since the
 * lookup (not supported, like the kernel's overlayfs): ESTALE, to copy nothing rather than
 * something else.
 */
function lowerStat(e: Entry): ObjStat {
  const lower = e.top
  const st = lower.layer.lstat(lower.path)
  if (st.ino !== lower.stat.ino || st.dev !== lower.stat.dev || (Number(st.mode) & S_IFMT) !== (lower.stat.mode & S_IFMT)) {
    throw fsError('ESTALE', 'copy-up', e.path)
  }
  return st
}

/**
 * Owner, mode, xattrs, origin and times of a lower object onto an upper (temp) object, through
 * `fd` when the temp is an open regular file. The origin record keeps the lower inode number
 * for the union (and for the kernel); returned when one was written.
 */
function copyMeta(upper: UpperLayer, from: RealObject, to: string, fd?: number): Origin | undefined {
  const st = from.stat
  const isLink = (Number(st.mode) & S_IFMT) === S_IFLNK
  if (fd !== undefined) upper.fchown(fd, to, Number(st.uid), Number(st.gid))
  else upper.lchown(to, Number(st.uid), Number(st.gid))
  if (fd !== undefined) upper.fchmod(fd, to, Number(st.mode) & 0o7777)
  else if (!isLink) upper.chmod(to, Number(st.mode) & 0o7777)
  upper.copyXattrs(from.layer, from.path, to)
  // A lower file with other hard links is broken off by copy-up (no index): the copy is a
  // file of its own and keeps no origin, else it would share st_ino with the other names.
  const brokenLink = !isDirMode(st.mode) && st.nlink > 1
  // user.* xattrs exist only on regular files and directories (EPERM elsewhere): in the
  // userxattr format a copied-up symlink or special file keeps no origin, as the kernel's.
  const canRecord = !upper.xattrs.origin.startsWith('user.') || isDirMode(Number(st.mode)) || (Number(st.mode) & S_IFMT) === S_IFREG
  const origin = brokenLink || !canRecord ? undefined : originOf(from.layer, from.path)
  if (origin) upper.setxattr(to, upper.xattrs.origin, encodeOrigin(origin))
  if (fd !== undefined) upper.futimens(fd, to, st.atimeNs, st.mtimeNs)
  else upper.utimens(to, st.atimeNs, st.mtimeNs)
  return origin
}

/**
 * Rename a finished copy-up into place; false, leaving the temp to the caller, when the upper
 * layer got something at `path` while the copy was built (its directory was renamed away and
 * back, and the name copied up or whited out on the way): that is newer than a lower copy and
 * must stay (RENAME_NOREPLACE, or a check and a rename in one turn of the event loop, so
 * nothing of ours comes between them). A copy-up changes nothing the user can see in the parent: its times are
 * put back (as the kernel does), and it is marked impure (it holds an entry whose inode number
 * comes from an origin record).
 */
function moveIntoPlace(upper: UpperLayer, temp: string, path: string): boolean {
  const parent = parentOf(path)
  const pst = upper.lstat(parent)
  if (!upper.renameNoReplace(temp, path)) return false
  upper.markImpure(parent)
  upper.utimens(parent, pst.atimeNs, pst.mtimeNs)
  return true
}
