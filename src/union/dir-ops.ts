// Namespace operations: create (mkdir, mknod, symlink, link), remove (unlink, rmdir) and
// rename. Removing a name a lower layer has leaves a whiteout; creating over a whiteout
// builds the object in the workdir and renames it over (a directory becomes opaque).
import { fsError } from '../errors.js'
import { AUFS_PREFIX, isAufsName } from '../layers/format.js'
import { NAME_MAX, S_IFCHR, isDirMode, isWhiteoutStat } from '../layers/layer.js'
import { nameBytes } from '../layers/native.js'
import { RENAME_EXCHANGE, RENAME_NOREPLACE, type UpperLayer } from '../layers/upper.js'
import { copyUp, ensureUpperDir, waitCopyUp } from './copy-up.js'
import { type Entry, baseName, parentOf } from './entry.js'
import { lowerHasName, tryResolve } from './lookup.js'
import { isEmptyDir } from './readdir.js'
import type { Union } from './union.js'


const S_IFMT = 0o170000
const S_IFLNK = 0o120000

/** Who asks: new objects belong to the caller's uid and gid, as in the kernel. */
export interface Caller {
  readonly uid: number
  readonly gid: number
}

/**
 * Where the upper's whiteouts are `.wh.NAME` files (an upper on overlayfs), a name longer than
 * NAME_MAX less the prefix could never be whited out: ENAMETOOLONG, as statfs's namemax says
 * (fuse-overlayfs does the same).
 */
function checkAufsRoom(u: Union, path: string, syscall: string): void {
  if (u.upper?.aufsWhiteouts && nameBytes(baseName(path)).length > NAME_MAX - AUFS_PREFIX.length) throw fsError('ENAMETOOLONG', syscall, path)
}

/**
 * Create a new object at `path` with `make` (given the real path to create). Over a
 * whiteout the object is made in the workdir and renamed over it atomically, so the lower
 * name never shows, not even after a crash.
 */
export function createObject(
  u: Union,
  path: string,
  syscall: string,
  make: (upper: UpperLayer, realPath: string) => void,
  caller?: Caller,
  /** `make` names an inode that exists already (a link): a setgid parent changes nothing of it. */
  existing = false,
): void {
  const upper = u.requireUpper(syscall, path)
  const parent = u.resolve(parentOf(path))
  if (!parent.isDir) throw fsError('ENOTDIR', syscall, path)
  // AUFS names are whiteouts and markers in every layer (format.ts): not a user's to make.
  if (isAufsName(baseName(path))) throw fsError('EINVAL', syscall, path)
  checkAufsRoom(u, path, syscall)
  // This union's own view: at a volume's mount point the main union makes the directory.
  if (tryResolve(u, u.cache, path)) throw fsError('EEXIST', syscall, path)
  const upperParent = ensureUpperDir(u, parent)
  const owner = caller && ownerOfNew(u, upper, parentOf(path), caller)
  const st = upper.tryLstat(path)
  if (st && !isWhiteoutStat(st)) throw fsError('EEXIST', syscall, path)
  // An AUFS whiteout beside the name: the new object is made whole in the workdir, put in
  // place, and only then is `.wh.NAME` dropped (a crash between shows the new object).
  const aufsWhiteout = !st && upper.hasAufsWhiteout(path)
  if (!st && !aufsWhiteout) {
    make(upper, path)
    if (owner) chownNew(upper, path, owner)
    // A new directory in a merged one is marked opaque, as the kernel does: lookups below it
    // need not search the lowers.
    if (upperParent.lowerDirs.length > 0 && isDirMode(Number(upper.lstat(path).mode))) upper.setOpaque(path)
  } else {
    const temp = upper.tempName()
    make(upper, temp)
    try {
      // A new inode made in the workdir missed what a setgid parent gives: its group, and
      // S_ISGID for a directory. A hard link is no new inode: its owner stays as it is.
      // chown drops a file's S_ISUID/S_ISGID, which the kernel (made with the group already)
      // keeps: the mode asked for is put back. A symlink's mode is not its own to set.
      const pst = upper.lstat(parentOf(path))
      const tst = upper.lstat(temp)
      const tmode = Number(tst.mode)
      const newInode = !existing && (isDirMode(tmode) || tst.nlink === 1)
      if (Number(pst.mode) & 0o2000 && newInode) {
        upper.lchown(temp, -1, Number(pst.gid))
        const want = (tmode & 0o7777) | (isDirMode(tmode) ? 0o2000 : 0)
        if ((tmode & S_IFMT) !== S_IFLNK && (Number(upper.lstat(temp).mode) & 0o7777) !== want) upper.chmod(temp, want)
      }
      if (owner) chownNew(upper, temp, owner)
      if (isDirMode(Number(upper.lstat(temp).mode))) {
        upper.setOpaque(temp)
        if (st) {
          // A directory cannot be renamed over a whiteout: exchange them, then drop it.
          upper.rename(temp, path, RENAME_EXCHANGE)
          upper.unlink(temp)
        } else upper.rename(temp, path)
      } else {
        upper.rename(temp, path)
      }
    } catch (e) {
      upper.removeTree(temp)
      throw e
    }
    if (aufsWhiteout) upper.dropAufsWhiteout(path)
  }
  u.cache.invalidate(path)
}

/** The daemon's own IDs (a system call each to ask, and they never change). */
const DAEMON_UID = process.getuid?.()
const DAEMON_GID = process.getgid?.()

/** Give a new object to its owner, unless we (the daemon) already are that owner. */
/**
 * The owner of a new object in upper directory `dir`, in the layers' IDs (the caller's are the
 * mount's: the layers store them mapped, id-map.ts). In a setgid directory the new object takes
 * the directory's group (the filesystem does that when we create it: gid -1); elsewhere the
 * caller's.
 */
export function ownerOfNew(u: Union, upper: UpperLayer, dir: string, caller: Caller): Caller {
  const ids = u.inodes.ids
  return { uid: ids.uidIn(caller.uid), gid: (Number(upper.lstat(dir).mode) & 0o2000) !== 0 ? -1 : ids.gidIn(caller.gid) }
}

function chownNew(upper: UpperLayer, path: string, owner: Caller): void {
  if (owner.uid === DAEMON_UID && (owner.gid === -1 || owner.gid === DAEMON_GID)) return
  const mode = Number(upper.lstat(path).mode)
  upper.lchown(path, owner.uid, owner.gid)
  // chown drops setuid/setgid bits the caller asked for at creation: put them back.
  if (mode & 0o6000 && (mode & S_IFMT) !== S_IFLNK) upper.chmod(path, mode & 0o7777)
}

export function mkdir(u: Union, path: string, mode: number, caller?: Caller): void {
  u = u.routeName(path, 'mkdir')
  createObject(u, path, 'mkdir', (up, p) => up.mkdir(p, mode & 0o7777), caller)
}

export function mknod(u: Union, path: string, mode: number, rdev: number, caller?: Caller): void {
  // A user must not forge a whiteout.
  if ((mode & S_IFMT) === S_IFCHR && rdev === 0) throw fsError('EPERM', 'mknod', path)
  u = u.routeName(path, 'mknod')
  createObject(u, path, 'mknod', (up, p) => up.mknod(p, mode, rdev), caller)
}

export function symlink(u: Union, target: string, path: string, caller?: Caller): void {
  u = u.routeName(path, 'symlink')
  createObject(u, path, 'symlink', (up, p) => up.symlink(target, p), caller)
}

/** link(2) makes no new inode: the new name shares the source's owner. */
export async function link(u: Union, from: string, to: string): Promise<void> {
  u = crossing(u, from, to, 'link')
  // A link to a file whose copy-up commit is pending would escape its journal.
  if (u.upper) return u.upper.commits.hold(() => linkNow(u, from, to))
  return linkNow(u, from, to)
}

async function linkNow(u: Union, from: string, to: string): Promise<void> {
  const src = u.resolve(from)
  if (src.isDir) throw fsError('EPERM', 'link', from)
  const upper = u.requireUpper('link', to)
  const s = await copyUp(u, src, 'meta')
  // A metacopy file gets an absolute redirect first, so that each name finds its data (the
  // kernel's ovl_set_link_redirect).
  if (s.lowerData) setRedirect(upper, s, true, 'link')
  createObject(u, to, 'link', (up, p) => up.link(from, p))
  if (s.origin) upper.markImpure(parentOf(to))
  u.cache.invalidate(from)
}

export async function unlink(u: Union, path: string): Promise<void> {
  u = u.routeName(path, 'unlink')
  await waitCopyUp(u, path)
  // The journal finds a commit's file by path and inode number, and a new file at the path
  // could get the same number.
  await u.upper?.commits.of(path)
  unlinkNow(u, path)
}

function unlinkNow(u: Union, path: string): void {
  const upper = u.requireUpper('unlink', path)
  const e = u.resolve(path)
  if (e.isDir) throw fsError('EISDIR', 'unlink', path)
  const parent = ensureUpperDir(u, u.resolve(parentOf(path)))
  removeName(upper, parent, e)
  u.cache.invalidate(path)
}

export function rmdir(u: Union, path: string): void {
  u = u.routeName(path, 'rmdir')
  const upper = u.requireUpper('rmdir', path)
  const e = u.resolve(path)
  if (!e.isDir) throw fsError('ENOTDIR', 'rmdir', path)
  if (path === '/') throw fsError('EBUSY', 'rmdir', path)
  if (!isEmptyDir(e)) throw fsError('ENOTEMPTY', 'rmdir', path)
  const parent = ensureUpperDir(u, u.resolve(parentOf(path)))
  removeName(upper, parent, e)
  u.cache.clear()
}

/** Remove an existing union name: a whiteout where a lower layer has it, else plain removal. */
function removeName(upper: UpperLayer, parent: Entry, e: Entry): void {
  const needsWhiteout = lowerHasName(parent, baseName(e.path))
  if (!e.upper) {
    upper.placeWhiteout(e.path)
    return
  }
  if (needsWhiteout) {
    // A directory (which may hold whiteouts) is swapped for the whiteout, then dropped.
    if (e.isDir) upper.removeTree(upper.placeWhiteout(e.path, true))
    else upper.placeWhiteout(e.path)
    return
  }
  if (e.isDir) removeUpperDir(upper, e.path)
  else upper.unlink(e.path)
}

/** rmdir of an upper directory that may still hold whiteouts of names no longer shown. */
function removeUpperDir(upper: UpperLayer, path: string): void {
  try {
    upper.rmdir(path)
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOTEMPTY') throw err
    const temp = upper.tempName()
    upper.rename(path, temp)
    upper.removeTree(temp)
  }
}

/**
 * The union that serves both names of a link or rename. A volume is another filesystem, as
 * a bind mount is: a name cannot move or be linked across its boundary (EXDEV).
 */
function crossing(u: Union, from: string, to: string, syscall: string): Union {
  const src = syscall === 'rename' ? u.routeName(from, syscall) : u.route(from)
  const dst = u.routeName(to, syscall)
  if (src !== dst) throw fsError('EXDEV', syscall, from)
  return dst
}

/** renameat2's flags as kernel overlayfs takes them: RENAME_NOREPLACE, RENAME_EXCHANGE (else EINVAL). */
export async function rename(u: Union, from: string, to: string, flags = 0): Promise<void> {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) || (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE)) throw fsError('EINVAL', 'rename', from)
  u = crossing(u, from, to, 'rename')
  const upper = u.requireUpper('rename', from)
  // A file (or a directory above one) moved with its copy-up commit pending would escape its
  // journal, which finds it by path: commits finish first.
  return upper.commits.hold(() => flags & RENAME_EXCHANGE ? exchangeNow(u, upper, from, to) : renameNow(u, upper, from, to, flags))
}

/**
 * renameat2(RENAME_EXCHANGE), as the kernel's ovl_rename without overwrite: both objects are
 * copied up (a directory made in the upper layer) and swapped there in one rename. Both names
 * stay taken, so neither needs a whiteout; each side gets the redirect or opaque mark a rename
 * of it alone would get.
 */
async function exchangeNow(u: Union, upper: UpperLayer, from: string, to: string): Promise<void> {
  const a = u.resolve(from)
  const b = u.resolve(to)
  if (from === to) return
  if (to.startsWith(from + '/') || from.startsWith(to + '/')) throw fsError('EINVAL', 'rename', from)
  for (const e of [a, b]) if (e.isDir && !u.makesRedirects && e.lowerDirs.length > 0) throw fsError('EXDEV', 'rename', from)
  if (isAufsName(baseName(to)) || isAufsName(baseName(from))) throw fsError('EINVAL', 'rename', to)
  const sa = a.isDir ? ensureUpperDir(u, a) : await copyUp(u, a, 'meta')
  // The copy-up may have waited: look at the other side again.
  await waitCopyUp(u, to)
  const b2 = u.resolve(to)
  const sb = b2.isDir ? ensureUpperDir(u, b2) : await copyUp(u, b2, 'meta')
  const parentA = ensureUpperDir(u, u.resolve(parentOf(from)))
  const parentB = ensureUpperDir(u, u.resolve(parentOf(to)))
  const samedir = parentOf(from) === parentOf(to)
  markMove(upper, sa, parentB, samedir)
  markMove(upper, sb, parentA, samedir)
  upper.rename(from, to, RENAME_EXCHANGE)
  if (keepsLowerIno(sa)) upper.markImpure(parentOf(to))
  if (keepsLowerIno(sb)) upper.markImpure(parentOf(from))
  u.handles.exchanged(from, to)
  if (sa.isDir || sb.isDir) u.cache.clear()
  else {
    u.cache.invalidate(from)
    u.cache.invalidate(to)
  }
}

async function renameNow(u: Union, upper: UpperLayer, from: string, to: string, flags: number): Promise<void> {
  const src = u.resolve(from)
  if (from === to) return
  if (to.startsWith(from + '/')) throw fsError('EINVAL', 'rename', from)
  // Without redirects (redirect_dir=follow/nofollow, the userxattr format) a directory that
  // has lower layers cannot move: EXDEV, before anything is copied up, as the kernel's.
  if (src.isDir && !u.makesRedirects && src.lowerDirs.length > 0) throw fsError('EXDEV', 'rename', from)
  if (isAufsName(baseName(to))) throw fsError('EINVAL', 'rename', to)
  checkAufsRoom(u, to, 'rename')
  if (!u.resolve(parentOf(to)).isDir) throw fsError('ENOTDIR', 'rename', to)
  checkTarget(u, src, to, flags)

  const srcParent = ensureUpperDir(u, u.resolve(parentOf(from)))
  const srcNeedsWhiteout = lowerHasName(srcParent, baseName(from))
  const s = src.isDir ? ensureUpperDir(u, src) : await copyUp(u, src, 'meta')
  // The copy-up may have waited: look at the target again.
  await waitCopyUp(u, to)
  const dst = checkTarget(u, s, to, flags)
  const dstParent = ensureUpperDir(u, u.resolve(parentOf(to)))

  markMove(upper, s, dstParent, parentOf(from) === parentOf(to))

  let trash: string | undefined
  const dstSt = upper.tryLstat(to)
  const dstAufsWhiteout = !dstSt && upper.hasAufsWhiteout(to)
  // An empty upper directory is simply replaced by the rename, as the kernel's ovl_rename does
  // (a process holding it open then sees what the upper fs leaves of it: test/regress/
  // open-dir-renamed-over).
  if (dst?.isDir && dstSt && upper.readdir(to).length > 0) {
    // An empty merged directory that still holds whiteouts is moved out of the way first. Where
    // a lower layer has the name, an empty opaque directory takes its place in the same step
    // (as the kernel's ovl_clear_empty), so that a crash before the rename below never shows
    // the lower directory's entries there.
    trash = upper.tempName()
    if (lowerHasName(dstParent, baseName(to))) {
      upper.mkdir(trash, 0o700)
      upper.setOpaque(trash)
      upper.rename(trash, to, RENAME_EXCHANGE)
    } else {
      upper.rename(to, trash)
    }
  }
  // Onto a whiteout, as the kernel's ovl_rename: the whiteout is switched into the source's
  // place when the source needs one (it keeps its 0:0, where a new one made in a setgid
  // directory would take the directory's group: scripts/fuzz/run seed 80000), and a directory
  // swaps with it and drops it.
  if (dstSt && isWhiteoutStat(dstSt) && (s.isDir || srcNeedsWhiteout)) {
    upper.rename(from, to, RENAME_EXCHANGE)
    if (!srcNeedsWhiteout) upper.unlink(from)
  } else if (srcNeedsWhiteout) {
    upper.renameWithWhiteout(from, to)
  } else {
    upper.rename(from, to)
  }
  if (trash !== undefined) upper.removeTree(trash)
  if (dstAufsWhiteout) upper.dropAufsWhiteout(to)

  // The new parent now holds an entry whose inode number comes from elsewhere.
  if (keepsLowerIno(s)) upper.markImpure(parentOf(to))
  u.handles.renamed(from, to)
  if (s.isDir || dst?.isDir) u.cache.clear()
  else {
    u.cache.invalidate(from)
    u.cache.invalidate(to)
  }
}

/**
 * What moving `s` (an upper object now) into the upper directory `into` records, as
 * ovl_rename: a metacopy file finds its data again through a redirect, as a directory its
 * lower ones (an absolute redirect across directories, and for a metacopy file also within
 * one when the lower file has other hard links: the kernel's ovl_need_absolute_redirect, their
 * upper copies may be in other directories); an upper-only directory moved into a merged one
 * is made opaque, so that it does not merge with lower names there.
 */
function markMove(upper: UpperLayer, s: Entry, into: Entry, samedir: boolean): void {
  if (s.lowerData) setRedirect(upper, s, !samedir || (s.lowerTop?.stat.nlink ?? 1) > 1, 'rename')
  if (!s.isDir) return
  if (s.lowerDirs.length > 0) setRedirect(upper, s, !samedir, 'rename')
  else if (!upper.isOpaque(s.path) && into.lowerDirs.length > 0) upper.setOpaque(s.path)
}

/** Whether a moved object shows a lower inode number: its new parent is then marked impure. */
const keepsLowerIno = (s: Entry): boolean => Boolean(s.origin) || (s.isDir && s.lowerDirs.length > 0)

/** The checks rename(2) makes on its target; returns the target entry, if any. */
function checkTarget(u: Union, src: Entry, to: string, flags: number): Entry | undefined {
  const dst = u.tryResolve(to)
  if (!dst) return undefined
  if (flags & RENAME_NOREPLACE) throw fsError('EEXIST', 'rename', to)
  if (src.isDir && !dst.isDir) throw fsError('ENOTDIR', 'rename', to)
  if (!src.isDir && dst.isDir) throw fsError('EISDIR', 'rename', to)
  if (dst.isDir && !isEmptyDir(dst)) throw fsError('ENOTEMPTY', 'rename', to)
  return dst
}

/**
 * The kernel's redirect_max (a module parameter, 256 by default): a longer absolute redirect
 * is refused with EXDEV, so that the program falls back to copying.
 */
const REDIRECT_MAX = 256

/**
 * Mark a directory that has lower layers (or a metacopy file) with where they are
 * (trusted.overlay.redirect), so lookup finds them after the rename, as the kernel's
 * ovl_set_redirect: within the same parent its old name (unless it has a redirect already),
 * else (`absolute`) an absolute path (unless it has one already) made of its old union path
 * with each ancestor's own redirect in place of its name.
 */
function setRedirect(upper: UpperLayer, e: Entry, absolute: boolean, syscall: string): void {
  const existing = upper.redirect(e.path)
  if (existing !== undefined && (!absolute || existing.startsWith('/'))) return
  const value = absolute ? absoluteRedirect(upper, e.path) : baseName(e.path)
  if (nameBytes(value).length > REDIRECT_MAX) throw fsError('EXDEV', syscall, e.path)
  try {
    upper.setRedirect(e.path, value)
  } catch {
    // As the kernel's ovl_set_redirect ("failed to set redirect", then "fall back to userspace
    // copy-up"): any failure, ENOSPC where the directory's xattrs fill their room, is EXDEV, so
    // that mv copies instead.
    throw fsError('EXDEV', syscall, e.path)
  }
}

/**
 * The kernel's ovl_get_redirect: from `path` up, each directory's redirect if it has one, else
 * its name, until an absolute redirect or the root. A directory renamed once already points
 * into the layers below through its own redirect, which may lead through more of them.
 */
function absoluteRedirect(upper: UpperLayer, path: string): string {
  let out = ''
  for (let p = path; p !== '/'; p = parentOf(p)) {
    const name = upper.redirect(p) ?? baseName(p)
    out = name + out
    if (name.startsWith('/')) return out
    out = '/' + out
  }
  return out
}
