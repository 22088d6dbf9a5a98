// statfs of the layer that receives writes (the kernel reports the upper's).
import fs from 'node:fs'

export interface StatFs {
  bsize: number
  frsize: number
  blocks: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  favail: number
  fsid: number
  flag: number
  namemax: number
}

const U32 = 0xffffffff

export function statfsOf(root: string): StatFs {
  const s = fs.statfsSync(root)
  // The binding carries 32-bit counts: scale blocks up in size until they fit.
  let bsize = s.bsize
  let scale = 1
  while (s.blocks / scale > U32) {
    scale *= 2
    bsize *= 2
  }
  const clamp = (n: number): number => Math.min(n, U32)
  return {
    bsize,
    frsize: bsize,
    blocks: clamp(Math.floor(s.blocks / scale)),
    bfree: clamp(Math.floor(s.bfree / scale)),
    bavail: clamp(Math.floor(s.bavail / scale)),
    files: clamp(s.files),
    ffree: clamp(s.ffree),
    favail: clamp(s.ffree),
    fsid: 0,
    flag: 0,
    namemax: 255,
  }
}
