// A volume: a host directory shown at a union path, as the only (upper) layer of its own
// union. Real paths in it are union paths (so handles and caches need no translation); this
// maps them under the host directory. Nothing here makes whiteouts or opaque directories:
// with no lower layer the union never asks for them.
import fs from 'node:fs'
import { dirname } from 'node:path'
import { fsError } from '../errors.js'
import { UpperLayer } from './upper.js'

export class VolumeLayer extends UpperLayer {
  /** The union path the host directory shows at. */
  readonly mountedAt: string

  constructor(hostdir: string, mountedAt: string, workdir: string) {
    super(hostdir, workdir, path => belowVolume(mountedAt, path))
    this.mountedAt = mountedAt
  }

  override cleanWork(): void {
    fs.mkdirSync(dirname(this.work), { recursive: true, mode: 0o700 })
    super.cleanWork()
  }

  override hostPath(path: string): string | Buffer {
    // The volume's root is the layer root; every other path is mapped by belowVolume, where
    // the layer's directory fds resolve it.
    if (path === this.mountedAt) return super.hostPath('/')
    return super.hostPath(path)
  }
}

/** A real path of the volume (a union path under `mountedAt`) -> the path below its host directory. */
function belowVolume(mountedAt: string, path: string): string {
  // Temp names ("#...") are the workdir's (UpperLayer).
  if (path.charCodeAt(0) === 0x23) return path
  if (path === mountedAt || path === '/') return '/'
  if (path.startsWith(mountedAt) && path.charCodeAt(mountedAt.length) === 0x2f) return path.slice(mountedAt.length)
  // Never reached through route(): a path outside the volume is another union's.
  throw fsError('EXDEV', 'volume', path)
}
