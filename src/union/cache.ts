// The entry cache: union path -> lookup result (or null: known absent). An optimisation,
// never part of correctness: every mutation invalidates what it changed, before it replies.
// Bounded by an estimate of its bytes, not by a count: the kernel keeps what it looked up
// (dentries, attributes) itself, so a walk needs here only the directories on its way and
// the names of the last few; a miss costs one lstat per layer.
import { LRUCache } from 'lru-cache'
import type { Entry } from './entry.js'

/**
 * Bytes the cache may hold (estimated), directories apart: a walk's names come and go, but
 * every request below a directory resolves it again, and a warm walk sends a GETATTR for each
 * directory. An LRU smaller than the walk's directories misses every one of them (a cyclic
 * walk): with one LRU of 4 MiB, scripts/bench find-warm (6,335 directories) took 0.41-0.44 s
 * of daemon CPU, 0.26 s with the old 200,000 paths, 0.22 s with these ~12,000 directories
 * (8 MiB) and ~5,000 other names (2 MiB).
 */
export const DIR_CACHE_BYTES = 8 << 20
export const ENTRY_CACHE_BYTES = 2 << 20

/**
 * Estimated bytes of one cached path: the key and the LRU's slots, the entry, and per real
 * object its compact stat (entry.ts ObjStat) with its BigInts. Measured with heap snapshots:
 * ~400 bytes for a lower file.
 */
const sizeOf = (v: Entry | { none: true }, path: string): number =>
  96 + path.length + ('none' in v ? 0 : 64 + 220 * (1 + v.lowerDirs.length + (v.upper && v.lowerDirs.length > 0 ? 1 : 0)))

export class EntryCache {
  /** Directories, apart: */
  #dirs: LRUCache<string, Entry>
  /** the rest, and known absent names. */
  #rest: LRUCache<string, Entry | { none: true }>
  static readonly NONE = { none: true } as const
  /**
   * Goes up at every change (set, invalidate, clear), not at a lookup's fill: an entry taken
   * from here stays the answer for its path while the epoch stays (ll-ops.ts keeps the entries
   * of the directories the kernel looks up in by node, for as long).
   */
  epoch = 0

  constructor(maxBytes = ENTRY_CACHE_BYTES, maxDirBytes = DIR_CACHE_BYTES) {
    this.#dirs = new LRUCache<string, Entry>({ maxSize: maxDirBytes, sizeCalculation: (v, k) => sizeOf(v, k) })
    this.#rest = new LRUCache({ maxSize: maxBytes, sizeCalculation: sizeOf })
  }

  /** The entry, null when known absent, undefined when not cached. */
  get(path: string): Entry | null | undefined {
    const d = this.#dirs.get(path)
    if (d !== undefined) return d
    const v = this.#rest.get(path)
    if (v === undefined) return undefined
    return 'none' in v ? null : v
  }

  /** A change: the entry of `path` is now `e` (null: absent). */
  set(path: string, e: Entry | null): void {
    this.epoch++
    this.fill(path, e)
  }

  /** What a lookup found for a path not cached (nothing changed). */
  fill(path: string, e: Entry | null): void {
    if (e?.isDir) {
      this.#rest.delete(path)
      this.#dirs.set(path, e)
    } else {
      this.#dirs.delete(path)
      this.#rest.set(path, e ?? EntryCache.NONE)
    }
  }

  /** Forget one path (a non-directory changed, or a name appeared or went). */
  invalidate(path: string): void {
    this.epoch++
    this.#dirs.delete(path)
    this.#rest.delete(path)
  }

  /** Forget everything: a directory moved, appeared over a whiteout, or went. */
  clear(): void {
    this.epoch++
    this.#dirs.clear()
    this.#rest.clear()
  }
}
