// Unlinked open files. libfuse 2 keeps a file that is unlinked while open alive by renaming it
// to ".fuse_hiddenXXXXXXXXXXXXXXXX" in its directory until the last close, then unlinking that
// name. Kernel overlayfs shows no such name and copies nothing up, so the union removes the
// name at once (a whiteout where a lower layer has it) and parks the real object: an upper
// file moves to the workdir, a lower file stays where it is. The hidden path answers only the
// by-path requests libfuse sends for the open file (getattr for fstat, truncate, unlink).
import { fsError } from '../errors.js'
import { isWhiteoutStat } from '../layers/layer.js'
import { type Entry, baseName, parentOf } from './entry.js'
import { lowerHasName } from './lookup.js'
import { ensureUpperDir } from './copy-up.js'
import type { Union } from './union.js'

const HIDDEN_NAME = /^\.fuse_hidden[0-9a-f]{16}$/

export const isHiddenName = (name: string): boolean => HIDDEN_NAME.test(name)

/** A parked object: the entry as it was, with top moved to where the object now is. */
export type HiddenEntry = Entry

/**
 * rename(from, hiddenPath) from libfuse: take `from` out of the union as unlink(2) would and
 * park its object under `hiddenPath`.
 */
export function hide(u: Union, from: string, hiddenPath: string): void {
  const upper = u.requireUpper('rename', from)
  const e = u.resolve(from)
  if (e.isDir) throw fsError('EISDIR', 'rename', from)
  const parent = ensureUpperDir(u, u.resolve(parentOf(from)))
  const needsWhiteout = lowerHasName(parent, baseName(from))
  let parked: Entry
  if (e.upper) {
    // The object goes to the workdir, a whiteout takes its name where a lower has it (made
    // as unlink's are, not as rename's: see placeWhiteout).
    let temp: string
    if (needsWhiteout) temp = upper.placeWhiteout(from, true)
    else upper.rename(from, (temp = upper.tempName()))
    parked = { ...e, path: hiddenPath, top: { ...e.top, path: temp }, upper: { ...e.top, path: temp } }
  } else {
    const st = upper.tryLstat(from)
    if (st && !isWhiteoutStat(st)) throw fsError('EIO', 'rename', from)
    if (!st) upper.placeWhiteout(from)
    parked = { ...e, path: hiddenPath }
  }
  u.hidden.set(hiddenPath, parked)
  u.handles.renamed(from, hiddenPath)
  u.cache.invalidate(from)
}

/** libfuse's unlink of the hidden name at the last close: drop the parked object. */
export function unhide(u: Union, hiddenPath: string): boolean {
  const e = u.hidden.get(hiddenPath)
  if (!e) return false
  u.hidden.delete(hiddenPath)
  if (e.upper) u.upper!.unlink(e.upper.path)
  return true
}
