// Inode numbers and the stat the user sees. st_ino is the real inode of the copy-up origin
// when there is one (so it survives copy-up, as the kernel's does), else of the top object;
// layers on different filesystems get distinct high bits, so numbers stay unique in the mount.
import type { BigIntStats } from 'node:fs'
import type { Entry, RealObject } from './entry.js'
import { isMerged } from './entry.js'

/** What getattr and readdir reply: 64-bit ino, nanosecond times. */
export interface UnionStat {
  mode: number
  uid: number
  gid: number
  size: number
  nlink: number
  ino: bigint
  rdev: number
  blksize: number
  blocks: number
  atimeNs: bigint
  mtimeNs: bigint
  ctimeNs: bigint
}

export class InodeSpace {
  /** st_dev of each filesystem that holds a layer -> its index; the upper's first. */
  #devs = new Map<bigint, bigint>()

  constructor(devs: readonly bigint[]) {
    for (const d of devs) if (!this.#devs.has(d)) this.#devs.set(d, BigInt(this.#devs.size))
  }

  /** The union inode number of a real object. */
  ino(obj: RealObject): bigint {
    const fsIndex = this.#devs.get(obj.layer.dev) ?? 0n
    // Like the kernel's xino: the filesystem index in the high bits, where inode numbers of
    // ordinary filesystems never reach.
    return fsIndex === 0n ? obj.stat.ino : obj.stat.ino | (fsIndex << 56n)
  }

  /** The inode number an entry shows: the copy-up origin's, else the top object's. */
  inoOf(e: Entry): bigint {
    if (e.path === '/') return this.ino(e.top)
    return this.ino(e.origin ?? e.top)
  }

  /** The stat of an entry from a fresh lstat of its top object. */
  statOf(e: Entry, st: BigIntStats): UnionStat {
    return {
      mode: Number(st.mode),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: Number(st.size),
      // The kernel reports nlink 1 for a merged directory: counting would need a readdir.
      nlink: isMerged(e) ? 1 : Number(st.nlink),
      ino: this.inoOf(e),
      rdev: Number(st.rdev),
      blksize: Number(st.blksize),
      blocks: Number(st.blocks),
      atimeNs: st.atimeNs,
      mtimeNs: st.mtimeNs,
      ctimeNs: st.ctimeNs,
    }
  }
}
