// A directory whose name went (rmdir, or a rename replaced it) while the kernel may still hold
// it (an open fd, a cwd): what kernel overlayfs keeps reaching through its dentry. Its real
// directory is held by an fd taken just before the name goes (layers/held-dir.ts), and it
// answers as on the kernel (test/regress/open-dir-removed): its attributes (nlink 0 when it
// was upper-only: the upper fs's own; 1 when merged, as a merged directory always shows), and
// chmod, chown, utimes and xattrs change the orphaned upper directory. A lower-only one has
// no upper directory and cannot be copied up any more: those changes are ENOTDIR, as the
// kernel's copy-up of it fails (after rmdir its name is a whiteout). Its listing is empty.
import { fsError } from '../errors.js'
import { type OverlayXattrs, realXattrName, userXattrName } from '../layers/format.js'
import { HeldDir } from '../layers/held-dir.js'
import type { TimeSpec } from '../layers/native.js'
import type { Entry } from './entry.js'
import type { InodeSpace, UnionStat } from './inode.js'
import type { Union } from './union.js'

export interface DetachedDir {
  readonly held: HeldDir
  /** What it was, looked up just before its name went: merged or not, its st_ino, its upper. */
  readonly entry: Entry
  /** How the union shows stats (owners mapped, ...). */
  readonly inodes: InodeSpace
  /** The union's xattr names (which are the overlay's own), or undefined when it has none (ENOTSUP). */
  readonly xattrs: OverlayXattrs | undefined
}

/**
 * Hold the directory at union path `path` before its name goes; undefined when there is no
 * directory there (the removal will fail) or it cannot be opened (it then answers ENOENT).
 */
export function detachDir(u: Union, path: string): DetachedDir | undefined {
  // Never in the way of the removal itself: whatever fails here, the rmdir or rename goes on.
  try {
    u = u.route(path)
    const e = u.tryResolve(path)
    if (!e?.isDir) return undefined
    const held = new HeldDir(e.top.layer, e.top.path)
    return { held, entry: e, inodes: u.inodes, xattrs: u.noXattrs ? undefined : u.xattrs }
  } catch {
    return undefined
  }
}

/** Its stat as it was shown before (a merged one stays nlink 1), from the held directory. */
export const detachedStat = (d: DetachedDir): UnionStat => d.inodes.statOf(d.entry, d.held.stat())

/** The orphaned upper directory, or ENOTDIR for a lower-only one (no copy-up any more). */
function upperOf(d: DetachedDir, syscall: string): HeldDir {
  if (d.entry.upper === undefined) throw fsError('ENOTDIR', syscall)
  return d.held
}

export const detachedChmod = (d: DetachedDir, mode: number): void => upperOf(d, 'chmod').chmod(mode & 0o7777)

/** chown: the IDs are the mount's (stored mapped, as attr-ops.ts chown). */
export function detachedChown(d: DetachedDir, uid: number, gid: number): void {
  const held = upperOf(d, 'chown')
  const ids = d.inodes.ids
  // -1 ("leave as is") arrives as 0xffffffff.
  const arg = (id: number): number => (id === 0xffffffff ? -1 : id)
  try {
    held.chown(arg(ids.uidIn(uid)), arg(ids.gidIn(gid)))
  } catch (e) {
    if (!ids.squashes) throw e
  }
}

export const detachedUtimens = (d: DetachedDir, atime: TimeSpec, mtime: TimeSpec): void =>
  upperOf(d, 'utimens').utimens(atime, mtime)

// xattrs as attr-ops.ts has them: the overlay's own hidden, a user's in its namespace escaped.

function xattrsOf(d: DetachedDir, syscall: string): OverlayXattrs {
  if (d.xattrs === undefined) throw fsError('ENOTSUP', syscall)
  return d.xattrs
}

/** The real name of a user's xattr; EPERM for the ones never the user's to write. */
function writableName(d: DetachedDir, name: string, syscall: string): string {
  const x = xattrsOf(d, syscall)
  const real = realXattrName(x, name)
  if (userXattrName(x, real) === undefined) throw fsError('EPERM', syscall)
  return real
}

export function detachedGetxattr(d: DetachedDir, name: string): Buffer | undefined {
  const x = xattrsOf(d, 'getxattr')
  const real = realXattrName(x, name)
  return userXattrName(x, real) === undefined ? undefined : d.held.getxattr(real)
}

export function detachedListxattr(d: DetachedDir): string[] {
  const x = xattrsOf(d, 'listxattr')
  const out: string[] = []
  for (const real of d.held.listxattr()) {
    const name = userXattrName(x, real)
    if (name !== undefined) out.push(name)
  }
  return out
}

export function detachedSetxattr(d: DetachedDir, name: string, value: Buffer, flags: number): void {
  const real = writableName(d, name, 'setxattr')
  upperOf(d, 'setxattr').setxattr(real, value, flags)
}

export function detachedRemovexattr(d: DetachedDir, name: string): void {
  const real = writableName(d, name, 'removexattr')
  // Removing what is not there fails first, as in the kernel.
  if (d.held.getxattr(real) === undefined) throw fsError('ENODATA', 'removexattr')
  upperOf(d, 'removexattr').removexattr(real)
}

export const releaseDetached = (d: DetachedDir): void => d.held.close()

/** fsync(2): the orphaned upper directory's (nothing to do for a lower one). */
export function detachedFsync(d: DetachedDir): void {
  if (d.entry.upper !== undefined) d.held.fsync()
}
