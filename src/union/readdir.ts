// readdir of a merged directory: upper, then the lowers top-down; each name once, whiteouts
// hidden (and hiding the names below them), the merge already stopped at an opaque directory
// by lookup. Each name carries its type and the inode number a stat of it would show. AUFS
// names (format.ts) are never listed: `.wh.NAME` hides NAME in the layers below (and in its
// own, where NAME is absent: Layer.hasAufsWhiteout).
import { aufsWhitedOut, isAufsName } from '../layers/format.js'
import { S_IFCHR, isWhiteoutStat } from '../layers/layer.js'
import { type Entry, joinPath } from './entry.js'

export interface DirEntry {
  name: string
  /** Type bits of st_mode. */
  mode: number
  ino: bigint
}

/** The names of a merged directory, in layer order, without "." and "..". */
export function mergedNames(dir: Entry): Map<string, number> {
  const names = new Map<string, number>() // name -> type bits
  const hidden = new Set<string>()
  const layers = dir.upper ? [dir.upper, ...dir.lowerDirs] : dir.lowerDirs
  for (const obj of layers) {
    const entries = obj.layer.readdir(obj.path)
    let aufs: string[] | undefined
    for (const d of entries) {
      const name = d.name
      if (isAufsName(name)) {
        const wh = aufsWhitedOut(name)
        if (wh !== undefined) (aufs ??= []).push(wh)
        continue
      }
      if (names.has(name) || hidden.has(name)) continue
      if (d.type === S_IFCHR) {
        const st = obj.layer.tryLstat(joinPath(obj.path, name))
        if (st && isWhiteoutStat(st)) {
          hidden.add(name)
          continue
        }
      }
      names.set(name, d.type)
    }
    if (aufs) {
      const here = new Set(entries.map(d => d.name))
      for (const wh of aufs) if (!here.has(wh) && !names.has(wh)) hidden.add(wh)
    }
  }
  return names
}

/** Whether a merged directory shows no name at all (rmdir may remove it). */
export function isEmptyDir(dir: Entry): boolean {
  return mergedNames(dir).size === 0
}
