// Inode numbers and the stat the user sees. st_ino is the real inode of the copy-up origin
// when there is one (so it survives copy-up, as the kernel's does), else of the top object;
// layers on different filesystems get distinct high bits, so numbers stay unique in the mount.
import type { BigIntStats } from 'node:fs'
import type { Layer } from '../layers/layer.js'
import type { Entry, ObjStat } from './entry.js'
import { isMerged } from './entry.js'
import { IdMap } from './id-map.js'

/** How stats are shown (mount options): owners mapped, directory link counts, 32-bit inodes. */
export interface StatView {
  ids?: IdMap
  /** `static_nlink`: every directory shows st_nlink 1. */
  staticNlink?: boolean
  /** `ino32_t`: inode numbers cut to 32 bits. */
  ino32?: boolean
}

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
  readonly ids: IdMap
  readonly #staticNlink: boolean
  readonly #ino32: boolean

  constructor(devs: readonly bigint[], view: StatView = {}) {
    for (const d of devs) if (!this.#devs.has(d)) this.#devs.set(d, BigInt(this.#devs.size))
    this.ids = view.ids ?? new IdMap()
    this.#staticNlink = view.staticNlink ?? false
    this.#ino32 = view.ino32 ?? false
  }

  /** The union inode number of real inode `ino` in `layer`'s filesystem. */
  ino(layer: Layer, ino: bigint): bigint {
    const fsIndex = this.#devs.get(layer.dev) ?? 0n
    // Like the kernel's xino: the filesystem index in the high bits, where inode numbers of
    // ordinary filesystems never reach.
    const n = fsIndex === 0n ? ino : ino | (fsIndex << 56n)
    return this.#ino32 ? n & 0xffffffffn : n
  }

  /** The inode number an entry shows: the copy-up origin's, else the top object's. */
  inoOf(e: Entry): bigint {
    return e.origin ? this.ino(e.origin.layer, e.origin.ino) : this.ino(e.top.layer, e.top.stat.ino)
  }

  /** The stat of an entry from a fresh lstat of its top object. */
  statOf(e: Entry, st: BigIntStats | ObjStat): UnionStat {
    const mode = Number(st.mode)
    return {
      mode,
      uid: this.ids.uidOut(Number(st.uid)),
      gid: this.ids.gidOut(Number(st.gid)),
      size: Number(st.size),
      // The kernel reports nlink 1 for a merged directory: counting would need a readdir.
      nlink: isMerged(e) || (this.#staticNlink && (mode & 0o170000) === 0o040000) ? 1 : Number(st.nlink),
      ino: this.inoOf(e),
      rdev: Number(st.rdev),
      blksize: Number(st.blksize),
      // A metacopy file's blocks are its data's, as the kernel's ovl_getattr shows them.
      blocks: e.lowerData ? e.lowerData.stat.blocks : Number(st.blocks),
      atimeNs: st.atimeNs,
      mtimeNs: st.mtimeNs,
      ctimeNs: st.ctimeNs,
    }
  }
}
