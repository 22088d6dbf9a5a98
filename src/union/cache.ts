// The entry cache: union path -> lookup result (or null: known absent). An optimisation,
// never part of correctness: every mutation invalidates what it changed, before it replies.
// Bounded by an estimate of its bytes, not by a count: the kernel keeps what it looked up
// (dentries, attributes) itself, so a walk needs here only the directories on its way and
// the names of the last few; a miss costs one lstat per layer.
import { LRUCache } from 'lru-cache'
import type { Entry } from './entry.js'

/** Bytes the cache may hold (estimated): ~10,000 entries of files. */
export const ENTRY_CACHE_BYTES = 4 << 20

/**
 * Estimated bytes of one cached path: the key and the LRU's slots, the entry, and per real
 * object its compact stat (entry.ts ObjStat) with its BigInts. Measured with heap snapshots:
 * ~400 bytes for a lower file.
 */
const sizeOf = (v: Entry | { none: true }, path: string): number =>
  96 + path.length + ('none' in v ? 0 : 64 + 220 * (1 + v.lowerDirs.length + (v.upper && v.lowerDirs.length > 0 ? 1 : 0)))

export class EntryCache {
  #lru: LRUCache<string, Entry | { none: true }>
  static readonly NONE = { none: true } as const

  constructor(maxBytes = ENTRY_CACHE_BYTES) {
    this.#lru = new LRUCache({ maxSize: maxBytes, sizeCalculation: sizeOf })
  }

  /** The entry, null when known absent, undefined when not cached. */
  get(path: string): Entry | null | undefined {
    const v = this.#lru.get(path)
    if (v === undefined) return undefined
    return 'none' in v ? null : v
  }

  set(path: string, e: Entry | null): void {
    this.#lru.set(path, e ?? EntryCache.NONE)
  }

  /** Forget one path (a non-directory changed, or a name appeared or went). */
  invalidate(path: string): void {
    this.#lru.delete(path)
  }

  /** Forget everything: a directory moved, appeared over a whiteout, or went. */
  clear(): void {
    this.#lru.clear()
  }
}
