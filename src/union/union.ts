// The union: its layers, the entry cache, open handles and copy-ups in flight. The state
// every operation module (dir-ops, file-ops, attr-ops, copy-up) works on; no FUSE here.
// A volume (a host directory mapped at a union path) is a union of its own, with the host
// directory as its only (upper) layer, rooted at that path: route() picks the union that
// serves a path, and every operation runs on that one.
import fs from 'node:fs'
import { type OverlayXattrs, TRUSTED_XATTRS } from '../layers/format.js'
import { Layer } from '../layers/layer.js'
import { UpperLayer } from '../layers/upper.js'
import { fsError } from '../errors.js'
import { EntryCache } from './cache.js'
import type { Entry } from './entry.js'
import { type Handle, Handles } from './handles.js'
import { InodeSpace, type StatView } from './inode.js'
import { type Layers, resolve, tryResolve } from './lookup.js'
import { VolumeLayer } from '../layers/volume.js'

export interface UnionConfig {
  /** Lower layer directories, top-most first. */
  lowerdirs: readonly string[]
  /** The writable layer; without it the union is read-only. */
  upperdir?: string | undefined
  /** Scratch directory on the upper's filesystem (required with upperdir). */
  workdir?: string | undefined
  /** Host directories mapped straight to union paths (needs a workdir on their filesystem). */
  volumes?: readonly VolumeConfig[] | undefined
  /** The namespace of the overlay's xattrs (format.ts); trusted.overlay.* by default. */
  xattrs?: OverlayXattrs | undefined
  /** How stats are shown: owners mapped between the layers and the mount, and the rest. */
  view?: StatView | undefined
  /** redirect_dir: 'on' (default), 'follow' or 'nofollow' (options.ts). */
  redirectDir?: 'on' | 'follow' | 'nofollow' | undefined
  /** No xattr call through the mount (fuse-overlayfs's noxattrs=1): ENOTSUP. */
  noXattrs?: boolean | undefined
  /** metacopy=on: metadata-only copy-up of regular files, metacopy files followed (options.ts). */
  metacopy?: boolean | undefined
}

export interface VolumeConfig {
  /** The host directory. */
  hostdir: string
  /** The union path it shows at (absolute, not '/'). */
  path: string
}

const NAME_ERRORS: Record<string, 'EEXIST' | 'EISDIR' | 'EBUSY'> = { unlink: 'EISDIR', rmdir: 'EBUSY', rename: 'EBUSY' }

export class Union implements Layers {
  readonly upper: UpperLayer | undefined
  readonly lowers: readonly Layer[]
  /** The namespace of the overlay's xattrs, the same in every layer. */
  readonly xattrs: OverlayXattrs
  /** Renamed directories that have lower layers get redirects (else EXDEV, as the kernel's). */
  readonly makesRedirects: boolean
  readonly followRedirects: boolean
  /** xattr calls through the mount are refused (ENOTSUP). */
  readonly noXattrs: boolean
  /** metacopy=on: metadata changes copy up a file's metadata only; else metacopy files are EPERM. */
  readonly metacopy: boolean
  readonly cache = new EntryCache()
  readonly inodes: InodeSpace
  readonly handles = new Handles()
  /**
   * Told of each finished copy-up (the union path): what the kernel caches of that object
   * (ctime, a directory's link count, a broken lower hard link's st_ino) has changed.
   */
  onCopyUp: ((path: string) => void) | undefined
  /** Told when a copy-up moved an open handle from the lower file to the upper copy. */
  onHandleMoved: ((h: Handle) => void) | undefined
  /** Copy-ups in flight by union path: a second request waits for the first. */
  readonly copyUps = new Map<string, Promise<void>>()
  /** The union path this union's root shows at: '/', or a volume's path. */
  readonly rootPath: string
  /** The union of the whole mount (itself, unless this is a volume's). */
  readonly main: Union
  readonly volumes: readonly Union[]

  constructor(cfg: UnionConfig, volumeOf?: { main: Union; volume: VolumeConfig; index: number }) {
    if (volumeOf) {
      // A volume: its host directory is its upper layer, its temp files go to their own
      // workdir; handles and inode numbers are the mount's, so fh and st_ino stay unique.
      const { main, volume, index } = volumeOf
      this.main = main
      this.xattrs = main.xattrs
      this.makesRedirects = main.makesRedirects
      this.followRedirects = main.followRedirects
      this.noXattrs = main.noXattrs
      this.metacopy = false
      this.rootPath = volume.path
      this.upper = new VolumeLayer(volume.hostdir, volume.path, `${cfg.workdir}/volumes/${index}`)
      this.lowers = []
      this.inodes = main.inodes
      this.handles = main.handles
      this.volumes = []
      return
    }
    this.main = this
    this.rootPath = '/'
    this.xattrs = cfg.xattrs ?? TRUSTED_XATTRS
    this.makesRedirects = (cfg.redirectDir ?? 'on') === 'on'
    this.followRedirects = cfg.redirectDir !== 'nofollow'
    this.noXattrs = cfg.noXattrs ?? false
    this.metacopy = cfg.metacopy ?? false
    this.upper = cfg.upperdir !== undefined ? new UpperLayer(cfg.upperdir, cfg.workdir ?? '', undefined, this.xattrs) : undefined
    this.lowers = cfg.lowerdirs.map((dir, i) => new Layer(dir, i + 1, false, undefined, this.xattrs))
    const vols = cfg.volumes ?? []
    // Only their filesystems (a Layer here would open the directory and read its uuid, and leak the fd).
    const volumeDevs = vols.map(v => fs.statSync(v.hostdir, { bigint: true }).dev)
    const devs = [...(this.upper ? [this.upper.dev] : []), ...this.lowers.map(l => l.dev), ...volumeDevs]
    this.inodes = new InodeSpace(devs, cfg.view)
    this.volumes = vols.map((volume, index) => new Union(cfg, { main: this, volume, index }))
  }

  /** The union that serves `path`: the volume it is in, else the main one. */
  route(path: string): Union {
    for (const v of this.main.volumes) {
      if (path === v.rootPath || (path.startsWith(v.rootPath) && path.charCodeAt(v.rootPath.length) === 0x2f)) return v
    }
    return this.main
  }

  /**
   * route() for an operation that creates, removes or moves the name `path`. A volume's mount
   * point, and a directory above one, stay where they are, as with a bind mount: EEXIST to
   * create, EISDIR to unlink, EBUSY to rmdir or rename.
   */
  routeName(path: string, syscall: string): Union {
    const v = this.route(path)
    if (v !== this.main && path === v.rootPath) throw fsError(NAME_ERRORS[syscall] ?? 'EEXIST', syscall, path)
    if (syscall === 'rename' && v === this.main && this.main.volumes.some(x => x.rootPath.startsWith(path === '/' ? '/' : path + '/'))) {
      throw fsError('EBUSY', syscall, path)
    }
    return v
  }

  /**
   * Empty the workdirs (the mount's and each volume's) of what an earlier mount left; with
   * `volatile`, mark the mount's workdir as the kernel's volatile mount does (upper.ts).
   */
  cleanWork(volatile = false): void {
    this.upper?.cleanWork()
    if (volatile && this.upper) {
      this.upper.markVolatile()
      this.upper.noFsync = true
    }
    for (const v of this.volumes) v.upper!.cleanWork()
  }

  get readOnly(): boolean {
    return this.upper === undefined
  }

  /** The entry of a union path, from whichever union serves it (see route). */
  resolve(path: string): Entry {
    const u = this.route(path)
    return resolve(u, u.cache, path)
  }

  tryResolve(path: string): Entry | undefined {
    const u = this.route(path)
    return tryResolve(u, u.cache, path)
  }

  /** The upper layer, or EROFS for a read-only union. */
  requireUpper(syscall: string, path: string): UpperLayer {
    if (!this.upper) throw fsError('EROFS', syscall, path)
    return this.upper
  }
}
