// What the union keeps of an lstat, and how a layer reads one: the addon's statAt fills the
// slots of one shared BigInt64Array (no stat object per call), and ObjStat takes from it the
// numbers where they are exact and the BigInts it needs (st_ino, st_dev, rdev, times).
import type { BigIntStats } from 'node:fs'
import { host, type PathArg } from './native.js'

/**
 * A compact lstat: a BigIntStats with its BigInts and Dates is ~900 bytes, this ~150; the
 * entry cache holds one per real object (union/cache.ts).
 */
export interface ObjStat {
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly nlink: number
  readonly size: number
  readonly blocks: number
  readonly blksize: number
  readonly rdev: bigint
  readonly ino: bigint
  readonly dev: bigint
  readonly atimeNs: bigint
  readonly mtimeNs: bigint
  readonly ctimeNs: bigint
}

const ZERO = 0n

/** The part of `st` (an fstat's) that an ObjStat keeps (its BigInts are shared, not copied). */
export const objStat = (st: BigIntStats): ObjStat => ({
  mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), nlink: Number(st.nlink), size: Number(st.size),
  blocks: Number(st.blocks), blksize: Number(st.blksize), rdev: st.rdev === 0n ? ZERO : st.rdev, ino: st.ino, dev: st.dev,
  atimeNs: st.atimeNs, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs,
})

/** statAt's slots (host.c): times as seconds and nanoseconds (ns in one int64 end in 2262). */
const enum Slot { MODE, UID, GID, NLINK, SIZE, BLOCKS, BLKSIZE, RDEV, INO, DEV, ATIME, ATIME_NS, MTIME, MTIME_NS, CTIME, CTIME_NS, COUNT }
const slots = new BigInt64Array(Slot.COUNT)
const NS = 1_000_000_000n

/**
 * fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW) ("" or "." for the directory itself): the stat,
 * or undefined when the name is absent (ENOENT, ENOTDIR); other errors thrown.
 */
export function statAt(dirfd: number, name: PathArg): ObjStat | undefined {
  if (!host.statAt(dirfd, name, slots)) return undefined
  const rdev = slots[Slot.RDEV]!
  return {
    mode: Number(slots[Slot.MODE]), uid: Number(slots[Slot.UID]), gid: Number(slots[Slot.GID]),
    nlink: Number(slots[Slot.NLINK]), size: Number(slots[Slot.SIZE]), blocks: Number(slots[Slot.BLOCKS]),
    // st_ino and st_dev as Node's bigint stats give them (signed 64 bits), so that they compare
    // equal with an fstat's.
    blksize: Number(slots[Slot.BLKSIZE]), rdev: rdev === ZERO ? ZERO : rdev, ino: slots[Slot.INO]!, dev: slots[Slot.DEV]!,
    atimeNs: slots[Slot.ATIME]! * NS + slots[Slot.ATIME_NS]!, mtimeNs: slots[Slot.MTIME]! * NS + slots[Slot.MTIME_NS]!,
    ctimeNs: slots[Slot.CTIME]! * NS + slots[Slot.CTIME_NS]!,
  }
}
