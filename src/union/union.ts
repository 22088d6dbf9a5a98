// The union: its layers, the entry cache, open handles and copy-ups in flight. The state
// every operation module (dir-ops, file-ops, attr-ops, copy-up) works on; no FUSE here.
import { Layer } from '../layers/layer.js'
import { UpperLayer } from '../layers/upper.js'
import { fsError } from '../errors.js'
import { EntryCache } from './cache.js'
import type { Entry } from './entry.js'
import { type Handle, Handles } from './handles.js'
import { InodeSpace } from './inode.js'
import { type Layers, resolve, tryResolve } from './lookup.js'

export interface UnionConfig {
  /** Lower layer directories, top-most first. */
  lowerdirs: readonly string[]
  /** The writable layer; without it the union is read-only. */
  upperdir?: string | undefined
  /** Scratch directory on the upper's filesystem (required with upperdir). */
  workdir?: string | undefined
}

export class Union implements Layers {
  readonly upper: UpperLayer | undefined
  readonly lowers: readonly Layer[]
  readonly cache = new EntryCache()
  readonly inodes: InodeSpace
  readonly handles = new Handles()
  /** Unlinked open files parked under libfuse's .fuse_hidden names (hidden.ts). */
  readonly hidden = new Map<string, Entry>()
  /**
   * Whether a rename to a `.fuse_hidden…` name is libfuse 2's high-level API parking an
   * unlinked open file (hidden.ts). The lowlevel binding sends unlinks as they are: there such
   * a name is an ordinary name.
   */
  parksHiddenNames = true
  /**
   * Told of each finished copy-up (the union path): what the kernel caches of that object
   * (ctime, a directory's link count, a broken lower hard link's st_ino) has changed.
   */
  onCopyUp: ((path: string) => void) | undefined
  /** Told when a copy-up moved an open handle from the lower file to the upper copy. */
  onHandleMoved: ((h: Handle) => void) | undefined
  /** Copy-ups in flight by union path: a second request waits for the first. */
  readonly copyUps = new Map<string, Promise<void>>()

  constructor(cfg: UnionConfig) {
    this.upper = cfg.upperdir !== undefined ? new UpperLayer(cfg.upperdir, cfg.workdir ?? '') : undefined
    this.lowers = cfg.lowerdirs.map((dir, i) => new Layer(dir, i + 1, false))
    const devs = [...(this.upper ? [this.upper.dev] : []), ...this.lowers.map(l => l.dev)]
    this.inodes = new InodeSpace(devs)
  }

  get readOnly(): boolean {
    return this.upper === undefined
  }

  resolve(path: string): Entry {
    return resolve(this, this.cache, path)
  }

  tryResolve(path: string): Entry | undefined {
    return tryResolve(this, this.cache, path)
  }

  /** The upper layer, or EROFS for a read-only union. */
  requireUpper(syscall: string, path: string): UpperLayer {
    if (!this.upper) throw fsError('EROFS', syscall, path)
    return this.upper
  }
}
