// A directory whose name went (rmdir, or a rename replaced it) while the kernel may still hold
// it (an open fd, a cwd): what kernel overlayfs keeps reaching through its dentry. Its real
// directory is held by an fd taken just before the name goes (layers/held-dir.ts), and it
// answers as on the kernel (test/regress/open-dir-removed): its attributes (nlink 0 when it
// was upper-only: the upper fs's own; 1 when merged, as a merged directory always shows), and
// chmod, chown, utimes and xattrs change the orphaned upper directory. A lower-only one has
// no upper directory and cannot be copied up any more: those changes are ENOTDIR, as the
// kernel's copy-up of it fails (after rmdir its name is a whiteout). Its listing is empty.
import { fsError } from '../errors.js'
import { HeldDir } from '../layers/held-dir.js'
import type { TimeSpec } from '../layers/native.js'
import { realXattrName, userXattrName } from './attr-ops.js'
import { isMerged } from './entry.js'
import type { UnionStat } from './inode.js'
import type { Union } from './union.js'

export interface DetachedDir {
  readonly held: HeldDir
  /** Whether it has an upper directory (what changes go to). */
  readonly hasUpper: boolean
  readonly merged: boolean
  /** The union st_ino it had. */
  readonly ino: bigint
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
    return { held, hasUpper: e.upper !== undefined, merged: isMerged(e), ino: u.inodes.inoOf(e) }
  } catch {
    return undefined
  }
}

export function detachedStat(d: DetachedDir): UnionStat {
  const st = d.held.stat()
  return {
    mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), size: Number(st.size),
    nlink: d.merged ? 1 : Number(st.nlink), ino: d.ino, rdev: Number(st.rdev), blksize: Number(st.blksize),
    blocks: Number(st.blocks), atimeNs: st.atimeNs, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs,
  }
}

/** The orphaned upper directory, or ENOTDIR for a lower-only one (no copy-up any more). */
function upperOf(d: DetachedDir, syscall: string): HeldDir {
  if (!d.hasUpper) throw fsError('ENOTDIR', syscall)
  return d.held
}

export const detachedChmod = (d: DetachedDir, mode: number): void => upperOf(d, 'chmod').chmod(mode & 0o7777)

export const detachedChown = (d: DetachedDir, uid: number, gid: number): void =>
  // -1 ("leave as is") arrives as 0xffffffff.
  upperOf(d, 'chown').chown(uid === 0xffffffff ? -1 : uid, gid === 0xffffffff ? -1 : gid)

export const detachedUtimens = (d: DetachedDir, atime: TimeSpec, mtime: TimeSpec): void =>
  upperOf(d, 'utimens').utimens(atime, mtime)

export const detachedGetxattr = (d: DetachedDir, name: string): Buffer | undefined => d.held.getxattr(realXattrName(name))

export function detachedListxattr(d: DetachedDir): string[] {
  const out: string[] = []
  for (const real of d.held.listxattr()) {
    const name = userXattrName(real)
    if (name !== undefined) out.push(name)
  }
  return out
}

export const detachedSetxattr = (d: DetachedDir, name: string, value: Buffer, flags: number): void =>
  upperOf(d, 'setxattr').setxattr(realXattrName(name), value, flags)

export function detachedRemovexattr(d: DetachedDir, name: string): void {
  // Removing what is not there fails first, as in the kernel.
  if (d.held.getxattr(realXattrName(name)) === undefined) throw fsError('ENODATA', 'removexattr')
  upperOf(d, 'removexattr').removexattr(realXattrName(name))
}

export const releaseDetached = (d: DetachedDir): void => d.held.close()

/** fsync(2): the orphaned upper directory's (nothing to do for a lower one). */
export function detachedFsync(d: DetachedDir): void {
  if (d.hasUpper) d.held.fsync()
}
