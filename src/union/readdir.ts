// readdir of a merged directory: upper, then the lowers top-down; each name once, whiteouts
// hidden (and hiding the names below them), the merge already stopped at an opaque directory
// by lookup. Each name carries its type and the inode number a stat of it would show.
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
    for (const d of obj.layer.readdir(obj.path)) {
      const name = d.name
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
  }
  return names
}

/** Whether a merged directory shows no name at all (rmdir may remove it). */
export function isEmptyDir(dir: Entry): boolean {
  return mergedNames(dir).size === 0
}
