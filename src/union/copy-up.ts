// Copy-up: make an upper object of a lower one before it changes. Parents first; the object
// is built in the workdir (data, then owner, mode, xattrs, times) and renamed into place, its
// data fsync'd before (or after, journaled: copy-up-commits.ts), so a crash never shows a
// half-copied file over the good lower one.
// With metacopy=on a change of metadata copies up a regular file without its data (marked
// with the metacopy xattr, its size a hole); the data follows in place at the first open for
// write or truncate (copyUpData), as the kernel's.
import fs from 'node:fs'
import { closeFd, truncateFd } from '../layers/fd.js'
import { S_IFLNK, S_IFREG, isDirMode } from '../layers/layer.js'
import type { UpperLayer } from '../layers/upper.js'
import type { JournalEntry } from '../layers/copy-up-commits.js'
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
  let origin: Origin | undefined
  let placed = false
  try {
    origin = copyMeta(upper, dir.top, temp)
    placed = moveIntoPlace(upper, temp, dir.path)
    if (!placed) upper.removeTree(temp)
  } catch (e) {
    upper.removeTree(temp)
    throw e
  }
  if (copyUpLog.enabled) copyUpLog('dir %s', dir.path)
  // The new entry without a lookup (six host calls per directory, in a copy-up that makes
  // several): what a lookup would find, the new upper directory (no opaque or redirect mark:
  // copyMeta leaves the overlay's own xattrs behind) over the same lower directories, with
  // the origin just recorded.
  const st = placed ? upper.tryLstat(dir.path) : undefined
  if (st !== undefined && isDirMode(st.mode)) {
    const obj = { layer: upper, path: dir.path, stat: st }
    u.cache.set(dir.path, { path: dir.path, top: obj, upper: obj, lowerDirs: dir.lowerDirs, origin: origin && originInoOf(u, origin), isDir: true })
  } else u.cache.invalidate(dir.path)
  u.onCopyUp?.(dir.path)
  return u.resolve(dir.path)
}

/**
 * Why an object is copied up: its data will change ('data': open for write, truncate), an
 * open truncates it ('trunc': a regular file is copied up empty, as the kernel does), or only
 * its metadata will ('meta': chmod, chown, utimens, xattrs, link, rename; with metacopy=on a
 * regular file is copied up without its data, the kernel's ovl_need_meta_copy_up).
 */
export type CopyUpFor = 'data' | 'trunc' | 'meta'

/**
 * The entry of `e` with an upper object: copies it up unless it has one, and copies a
 * metacopy file's data up unless `why` is 'meta'.
 */
export async function copyUp(u: Union, e: Entry, why: CopyUpFor = 'data'): Promise<Entry> {
  if (e.isDir) return e.upper ? e : ensureUpperDir(u, e)
  for (;;) {
    const dataMissing = e.upper !== undefined && e.lowerData !== undefined && why !== 'meta'
    if (e.upper && !dataMissing) return e
    // One copy-up of a name at a time; a data copy-up waits for a metadata one and follows it.
    let inflight = u.copyUps.get(e.path)
    if (!inflight) {
      inflight = (e.upper ? copyUpData(u, e, why === 'trunc') : copyUpFile(u, e, why)).finally(() => u.copyUps.delete(e.path))
      u.copyUps.set(e.path, inflight)
    }
    await inflight
    e = u.resolve(e.path)
  }
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

async function copyUpFile(u: Union, e: Entry, why: CopyUpFor): Promise<void> {
  const upper = u.requireUpper('copy-up', e.path)
  ensureUpperDir(u, u.resolve(parentOf(e.path)))
  // The metadata is the top object's; the data is its own, or (a lower metacopy file of a
  // stacked layer) the lower data file's.
  const lower = e.top
  const data = e.lowerData ?? lower
  const type = Number(lower.stat.mode) & S_IFMT
  const metacopy = u.metacopy && why === 'meta' && type === S_IFREG
  const temp = upper.tempName()
  let placed = false
  let built: Entry | undefined
  if (copyUpLog.enabled) copyUpLog('%s (%d bytes%s)', e.path, lower.stat.size, metacopy ? ', metadata only' : '')
  let fd: number | undefined
  /** The fsync comes after the rename: its journal entry. */
  let journal: JournalEntry | undefined
  try {
    let st: ObjStat
    /** The data is a reflink: no fsync, as the kernel's (upper.ts copyDataToTemp). */
    let cloned = false
    if (type === S_IFREG && why !== 'trunc' && !metacopy) {
      // One fd on the temp for data, metadata and fsync. The source's fstat is checked
      // against the lookup's (as lowerStat's lstat below).
      const copied = await upper.copyDataToTemp(data.layer, data.path, temp, data.stat)
      fd = copied.fd
      st = data === lower ? objStat(copied.st) : lowerStat(e)
      cloned = copied.cloned
    } else {
      st = lowerStat(e)
      if (type === S_IFREG) {
        fd = upper.open(temp, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o600)
        // A metacopy file has the lower file's size, all of it a hole (the kernel's ovl_set_size).
        if (metacopy && st.size > 0) truncateFd(fd, st.size)
      } else if (type === S_IFLNK) upper.symlink(lower.layer.readlink(lower.path), temp)
      else upper.mknod(temp, Number(st.mode), Number(st.rdev))
    }
    // Data first, then metadata: writing data after xattrs would drop security.capability,
    // and chown after chmod would drop setuid bits.
    const from = { ...lower, stat: st }
    const origin = copyMeta(upper, from, temp, fd, metacopy)
    if (fd !== undefined) {
      // The new entry, without a lookup: the upper object just made (its mode, owner and
      // inode; a rename changes only its ctime, which nothing takes from an entry) and the
      // origin just recorded.
      const ust = fs.fstatSync(fd, { bigint: true })
      // A metacopy file has no data to make durable, a reflink is a journaled metadata change:
      // the kernel fsyncs neither. Other data is fsync'd after the rename once a journal entry
      // is made (copy-up-commits.ts; the check and the entry in one turn of the event loop,
      // for hold), else before it.
      if (!metacopy && !cloned) {
        journal = upper.defersFsync ? upper.commits.journal(e.path, ust.ino) : undefined
        if (journal === undefined) await upper.fsyncFd(fd)
      }
      const obj = { layer: upper, path: e.path, stat: objStat(ust) }
      built = { path: e.path, top: obj, upper: obj, lowerDirs: NO_LOWER_DIRS, origin: origin && originInoOf(u, origin), isDir: false,
        ...(metacopy ? { lowerData: data, lowerTop: lower } : {}) }
    }
    placed = moveIntoPlace(upper, temp, e.path)
    if (!placed) upper.unlink(temp)
    // The descriptor goes to the deferred fsync (commits.start: no open to find the file
    // again), or is closed.
    const kept = fd
    fd = undefined
    if (journal !== undefined && placed) upper.commits.start(journal, kept)
    else {
      if (journal !== undefined) upper.commits.drop(journal)
      if (kept !== undefined) closeFd(kept)
    }
  } catch (err) {
    if (fd !== undefined) closeFd(fd)
    if (journal !== undefined) upper.commits.drop(journal)
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
  // A metacopy file's readers stay on the lower data, which is still its data.
  if (!metacopy) moveReaders(u, upper, e.path)
  u.onCopyUp?.(e.path)
}

/** Handles open on the lower file at `path` now read the upper copy (the kernel >= 4.19 behaviour). */
function moveReaders(u: Union, upper: UpperLayer, path: string): void {
  for (const h of u.handles.lowerHandles(path)) {
    const hfd = upper.open(path, fs.constants.O_RDONLY)
    closeFd(h.fd)
    h.fd = hfd
    h.upper = true
    u.onHandleMoved?.(h)
  }
}

/** The security.capability xattr, which a write to a file drops. */
const CAPABILITY = 'security.capability'

/**
 * The data of a metacopy file, copied into its upper file in place (the kernel's
 * ovl_copy_up_meta_inode_data): the bytes (none for an open with O_TRUNC: the file is
 * truncated first), fsync'd, security.capability put back (the write dropped it), and only
 * then the metacopy xattr removed. Until that removal the file is a metacopy file and its
 * data is read from the lower layer, so a crash at any point leaves no upper file that claims
 * data it does not have. In place, not a copy renamed over it: names linked to the metacopy
 * file stay one inode with it. The write sets the file's mtime, as the kernel's does.
 */
async function copyUpData(u: Union, e: Entry, trunc: boolean): Promise<void> {
  const upper = u.requireUpper('copy-up', e.path)
  const data = e.lowerData!
  const path = e.upper!.path
  // Another name of the same inode (a hard link) may have copied the data up already.
  if (upper.getxattr(path, upper.xattrs.metacopy) === undefined) {
    u.cache.clear()
    return
  }
  const st = upper.lstat(path)
  const size = trunc ? 0 : Number(st.size)
  if (copyUpLog.enabled) copyUpLog('%s: data (%d bytes) of a metacopy file', e.path, size)
  const cap = size > 0 ? upper.getxattr(path, CAPABILITY) : undefined
  const fd = upper.open(path, fs.constants.O_WRONLY)
  try {
    if (trunc) truncateFd(fd, 0)
    else await upper.copyDataInto(data.layer, data.path, fd, path, data.stat, size)
    await upper.fsyncFd(fd)
  } finally {
    closeFd(fd)
  }
  if (cap !== undefined && upper.getxattr(path, CAPABILITY) === undefined) upper.setxattr(path, CAPABILITY, cap)
  upper.removexattr(path, upper.xattrs.metacopy)
  // Every name of the inode has its data now (a hard link's entry too).
  if (st.nlink > 1) u.cache.clear()
  else u.cache.invalidate(e.path)
  moveReaders(u, upper, e.path)
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
function copyMeta(upper: UpperLayer, from: RealObject, to: string, fd?: number, metacopy = false): Origin | undefined {
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
  // Empty: what the kernel writes without fs-verity.
  if (metacopy) upper.setxattr(to, upper.xattrs.metacopy, Buffer.alloc(0))
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
