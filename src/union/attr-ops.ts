// Attributes and reads of the namespace: getattr, readdir, readlink, statfs, and the
// metadata changes that copy up first (chmod, chown, utimens, xattrs).
import { FsError, fsError } from '../errors.js'
import { AUFS_PREFIX, realXattrName, userXattrName } from '../layers/format.js'
import type { TimeSpec } from '../layers/native.js'
import { statfsOf, type StatFs } from '../layers/statfs.js'
import { copyUp } from './copy-up.js'
import { type Entry, joinPath, parentOf } from './entry.js'
import type { UnionStat } from './inode.js'
import { tryResolveIn } from './lookup.js'
import { mergedNames } from './readdir.js'
import type { Union } from './union.js'

export function getattr(u: Union, path: string): UnionStat {
  const st = tryGetattr(u, path)
  if (!st) throw fsError('ENOENT', 'getattr', path)
  return st
}

/**
 * The stat of a union path, or undefined when the name does not exist: the kernel looks up
 * every name before creating it, so misses are common and are answered without an exception.
 */
export function tryGetattr(u: Union, path: string): UnionStat | undefined {
  u = u.route(path)
  const e = u.tryResolve(path)
  return e && statOfEntry(u, e, path).st
}

/**
 * tryGetattr of `name` in the directory entry `parent` of the main union (`path`: the child's
 * union path), with the child's entry: a LOOKUP by node (ll-ops.ts) walks no path. Not for
 * a union with volumes or parked names (route, hidden), which tryGetattr consults.
 */
export function tryGetattrIn(u: Union, parent: Entry, path: string, name: string): { e: Entry; st: UnionStat } | undefined {
  const e = tryResolveIn(u, u.cache, parent, path, name)
  return e && statOfEntry(u, e, path)
}

function statOfEntry(u: Union, e: Entry, path: string): { e: Entry; st: UnionStat } {
  // A lower object never changes (the layers are read-only; changing them behind the mount
  // is not supported): the lstat taken at lookup stands. An upper one is looked at afresh.
  if (!e.upper) return { e, st: u.inodes.statOf(e, e.top.stat) }
  const st = e.top.layer.tryLstat(e.top.path)
  if (!st) {
    // A layer changed behind our back: look again once.
    u.cache.invalidate(path)
    const e2 = u.resolve(path)
    return { e: e2, st: u.inodes.statOf(e2, e2.top.layer.lstat(e2.top.path)) }
  }
  return { e, st: u.inodes.statOf(e, st) }
}

/**
 * A merged directory's listing: names, with the type bits and inode number of each (enough
 * for d_type and d_ino), in typed arrays: a listing may be kept a while (ll-ops.ts), and an
 * object with a BigInt per name costs ~5x the name.
 */
export interface Listing {
  names: string[]
  /** st_mode & S_IFMT per name. */
  modes: Uint16Array
  inos: BigUint64Array
}

/**
 * `knownIno`: the inode number of a name whose union inode number is known already (the
 * kernel holds a node for it, ll-ops.ts), so that its d_ino needs no lookup.
 */
export function readdir(u: Union, path: string, knownIno?: (name: string) => bigint | undefined): Listing {
  u = u.route(path)
  const dir = u.resolve(path)
  if (!dir.isDir) throw fsError('ENOTDIR', 'readdir', path)
  const parent = path === '/' ? dir : u.main.resolve(parentOf(path))
  const merged = mergedNames(dir)
  const names = ['.', '..']
  const modes = new Uint16Array(merged.size + 2)
  const inos = new BigUint64Array(merged.size + 2)
  modes[0] = modes[1] = 0o040000
  inos[0] = u.inodes.inoOf(dir)
  inos[1] = u.inodes.inoOf(parent)
  for (const [name, mode] of merged) {
    let ino = knownIno?.(name)
    if (ino !== undefined) {
      modes[names.length] = mode
      inos[names.length] = ino
      names.push(name)
      continue
    }
    try {
      const child = u.tryResolve(joinPath(path, name))
      if (!child) continue
      ino = u.inodes.inoOf(child)
    } catch (e) {
      ino = unlookedIno(u, dir, name, e)
      if (ino === undefined) continue
    }
    modes[names.length] = mode
    inos[names.length] = ino
    names.push(name)
  }
  return names.length === modes.length ? { names, modes, inos }
    : { names, modes: modes.slice(0, names.length), inos: inos.slice(0, names.length) }
}

/**
 * A listed name whose lookup the layers refuse (`e`: a metacopy file on a mount without
 * metacopy, EPERM; one without its data, EIO). As the kernel (6.18): in a directory with an
 * upper one it is left out (undefined; ovl_cache_update marks an entry it fails to look up
 * stale); in a lower-only one it is listed, with the top-most lower object's inode number.
 * Other errors are thrown.
 */
function unlookedIno(u: Union, dir: Entry, name: string, e: unknown): bigint | undefined {
  const code = (e as { code?: string }).code
  if (!(e instanceof FsError) || (code !== 'EPERM' && code !== 'EIO')) throw e
  if (dir.upper) return undefined
  for (const d of dir.lowerDirs) {
    const st = d.layer.tryLstat(joinPath(d.path, name))
    if (st) return u.inodes.ino(d.layer, st.ino)
  }
  return undefined
}

/** A listing's type bits and inode number per name, as objects. */
export const listingStats = (l: Listing): { mode: number; ino: bigint }[] =>
  l.names.map((_, i) => ({ mode: l.modes[i]!, ino: l.inos[i]! }))

export function readlink(u: Union, path: string): string {
  u = u.route(path)
  const e = u.resolve(path)
  return e.top.layer.readlink(e.top.path)
}

export function statfs(u: Union): StatFs {
  const l = u.upper ?? u.lowers[0]!
  const s = statfsOf(`/proc/self/fd/${l.rootFd}/.`) // through the fd: the root's path may be gone (layer.ts)
  // Where whiteouts are `.wh.NAME` files, a name must leave room for the prefix (as fuse-overlayfs).
  return u.upper?.aufsWhiteouts ? { ...s, namemax: s.namemax - AUFS_PREFIX.length } : s
}

export async function chmod(u: Union, path: string, mode: number): Promise<void> {
  u = u.route(path)
  const upper = u.requireUpper('chmod', path)
  await copyUp(u, u.resolve(path), 'meta')
  upper.chmod(path, mode & 0o7777)
}

export async function chown(u: Union, path: string, uid: number, gid: number): Promise<void> {
  u = u.route(path)
  const upper = u.requireUpper('chown', path)
  await copyUp(u, u.resolve(path), 'meta')
  // -1 ("leave as is") arrives as 0xffffffff, which lchown takes as -1. The IDs are the
  // mount's: the layer stores them mapped (id-map.ts); with owners squashed, what the layer
  // refuses is no error (fuse-overlayfs's squash_to_*).
  const ids = u.inodes.ids
  try {
    upper.lchown(path, ids.uidIn(uid), ids.gidIn(gid))
  } catch (e) {
    if (!ids.squashes) throw e
  }
}

export async function utimens(u: Union, path: string, atime: TimeSpec, mtime: TimeSpec): Promise<void> {
  u = u.route(path)
  const upper = u.requireUpper('utimens', path)
  await copyUp(u, u.resolve(path), 'meta')
  upper.utimens(path, atime, mtime)
}

// The overlay's own xattrs are hidden. A user's xattr in the overlay's namespace
// (trusted.overlay.X, or user.overlay.X in userxattr mode) is stored escaped, as the kernel
// (>= 6.7) does for nested overlays (format.ts).

/** The real name of a user's xattr; EPERM for fuse-overlayfs's records, never the user's to write. */
function writableXattrName(u: Union, name: string, syscall: string, path: string): string {
  const real = realXattrName(u.xattrs, name)
  if (userXattrName(u.xattrs, real) === undefined) throw fsError('EPERM', syscall, path)
  return real
}

/** An xattr's value, or undefined (ENODATA): `ls -l` asks two absent ones per file. */
export function getxattr(u: Union, path: string, name: string): Buffer | undefined {
  if (u.noXattrs) throw fsError('ENOTSUP', 'getxattr', path)
  u = u.route(path)
  const e = u.resolve(path)
  const real = realXattrName(u.xattrs, name)
  if (userXattrName(u.xattrs, real) === undefined) return undefined
  return e.top.layer.getxattr(e.top.path, real)
}

export function listxattr(u: Union, path: string): string[] {
  if (u.noXattrs) throw fsError('ENOTSUP', 'listxattr', path)
  u = u.route(path)
  const e = u.resolve(path)
  const out: string[] = []
  for (const real of e.top.layer.listxattr(e.top.path)) {
    const name = userXattrName(u.xattrs, real)
    if (name !== undefined) out.push(name)
  }
  return out
}

export async function setxattr(u: Union, path: string, name: string, value: Buffer, flags: number): Promise<void> {
  if (u.noXattrs) throw fsError('ENOTSUP', 'setxattr', path)
  u = u.route(path)
  const upper = u.requireUpper('setxattr', path)
  const real = writableXattrName(u, name, 'setxattr', path)
  await copyUp(u, u.resolve(path), 'meta')
  upper.setxattr(path, real, value, flags)
}

export async function removexattr(u: Union, path: string, name: string): Promise<void> {
  if (u.noXattrs) throw fsError('ENOTSUP', 'removexattr', path)
  u = u.route(path)
  const upper = u.requireUpper('removexattr', path)
  const e = u.resolve(path)
  const real = writableXattrName(u, name, 'removexattr', path)
  // Removing what is not there fails before any copy-up, as in the kernel.
  if (e.top.layer.getxattr(e.top.path, real) === undefined) throw fsError('ENODATA', 'removexattr', path)
  await copyUp(u, e, 'meta')
  upper.removexattr(path, real)
}
