// What a lookup finds for one union path: the object the user sees (top), the upper object
// if there is one, and for a directory the lower directories merged below it.
import type { Layer } from '../layers/layer.js'
import type { ObjStat } from '../layers/stat.js'

/** A path inside one layer. */
export interface RealPath {
  readonly layer: Layer
  /** Real path in the layer; differs from the union path below a redirected directory. */
  readonly path: string
}

export { type ObjStat, objStat } from '../layers/stat.js'

/** One real object: a path inside one layer, with the lstat taken at lookup. */
export interface RealObject extends RealPath {
  readonly stat: ObjStat
}

/** lowerDirs of every non-directory: one array, not one each. */
export const NO_LOWER_DIRS: readonly RealObject[] = Object.freeze([])

/** The inode number of a copy-up origin, and the lower layer whose filesystem holds it. */
export interface OriginIno {
  readonly layer: Layer
  readonly ino: bigint
}

export interface Entry {
  /** The union path ("/a/b"). */
  readonly path: string
  /** What the user sees: the upper object when there is one, else the top-most lower one. */
  readonly top: RealObject
  readonly upper: RealObject | undefined
  /**
   * Directories only: every lower directory of the merge, top-most first (for a lower-only
   * directory the first one is top).
   */
  readonly lowerDirs: readonly RealObject[]
  /**
   * Where an upper object was copied up from (its trusted.overlay.origin): the entry keeps
   * that object's inode number, across copy-up, rename and remount.
   */
  readonly origin: OriginIno | undefined
  readonly isDir: boolean
  /**
   * A metacopy file (metacopy=on: its top object has the metadata only): the lower regular
   * file that holds its data, which reads and the data copy-up read, and whose st_blocks it
   * shows. Undefined for every other entry.
   */
  readonly lowerData?: RealObject | undefined
  /**
   * A metacopy file: the top-most lower object below it (the kernel's ovl_dentry_lower; the
   * data file itself, or a lower metacopy file above it). Its link count decides whether a
   * rename's redirect is absolute.
   */
  readonly lowerTop?: RealObject | undefined
}

/** A directory is merged when more than one layer contributes to it. */
export const isMerged = (e: Entry): boolean =>
  e.isDir && (e.upper ? 1 : 0) + e.lowerDirs.length > 1

export const isLowerOnly = (e: Entry): boolean => e.upper === undefined

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/')
  return i <= 0 ? '/' : path.slice(0, i)
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? '/' + name : dir + '/' + name
}
