// The entry cache: union path -> lookup result (or null: known absent). An optimisation,
// never part of correctness: every mutation invalidates what it changed, before it replies.
import { LRUCache } from 'lru-cache'
import type { Entry } from './entry.js'

export class EntryCache {
  #lru: LRUCache<string, Entry | { none: true }>
  static readonly NONE = { none: true } as const

  /** ~3 KB an entry: 200,000 entries bound the daemon near 200 MB even on big trees. */
  constructor(max = 200_000) {
    this.#lru = new LRUCache({ max })
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
