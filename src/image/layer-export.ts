// Exports an upper layer as a Docker/OCI layer tarball, the inverse of importLayer: a 0/0
// whiteout becomes `.wh.NAME`, an opaque directory its entry plus `.wh..wh..opq`, and a
// renamed (redirected) directory its full merged contents, marked opaque (it needs the lowers).
// The upper may be in any format a mount writes (trusted.overlay.*, the userxattr format's
// user.overlay.*, AUFS `.wh.` names on an upper on overlayfs): the same changes, the same tarball.
// Deterministic: entries in depth-first order, names sorted bytewise, fixed header fields.
// Reads host directories offline (no union mount), as cli.ts does.
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import { AUFS_META_PREFIX, AUFS_PREFIX, type OverlayXattrs, TRUSTED_XATTRS, USER_XATTRS, aufsWhitedOut, isAufsName, isOverlayRecord, userXattrName } from '../layers/format.js'
import { Layer, isDirMode, isWhiteoutStat } from '../layers/layer.js'
import { nameBytes } from '../layers/native.js'
import type { UpperLayer } from '../layers/upper.js'
import { type Layers, lookupChild, lookupRoot } from '../union/lookup.js'
import { type Entry, type ObjStat, type RealObject } from '../union/entry.js'
import { mergedNames } from '../union/readdir.js'
import { isRealRoot } from '../layout.js'
import { imageError } from './image-error.js'
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from './layer-import.js'
import type { TarType } from './tar-reader.js'
import { type TarHeader, TarWriter } from './tar-writer.js'

export interface ExportOptions {
  /**
   * The lower layers the upper was mounted over, top-most first. Needed only when the upper
   * holds a renamed directory (`trusted.overlay.redirect`): its contents live in the lowers.
   */
  lowers?: readonly string[]
  /**
   * The upper is in the kernel's userxattr format: the overlay's records are user.overlay.*
   * (as `-o userxattr` writes them). Undefined: detected (overlayXattrsOf).
   */
  userxattr?: boolean
}

export interface ExportStats {
  /** Tar entries written (whiteouts and opaque markers included). */
  entries: number
  whiteouts: number
  opaques: number
  /** Bytes of regular-file data written. */
  bytes: number
}

const S_IFMT = 0o170000

const byBytes = (a: string, b: string): number => Buffer.compare(nameBytes(a), nameBytes(b))

/**
 * The xattrs of an object as a layer carries them, as the mount shows them: the overlay's own
 * (in the layer's namespace, `trusted.overlay.*` or `user.overlay.*`: opaque, redirect, origin,
 * impure, ...; and fuse-overlayfs's) dropped, a user's escaped `PREFIX.overlay.X` given back
 * its name `PREFIX.X` (format.ts: userXattrName).
 */
export function layerXattrs(layer: Layer, path: string, names = xattrNames(layer, path)): Map<string, Buffer> {
  const out = new Map<string, Buffer>()
  for (const name of names) {
    const key = userXattrName(layer.xattrs, name)
    if (key === undefined) continue
    const v = layer.getxattr(path, name)
    if (v !== undefined) out.set(key, v)
  }
  return out
}

/**
 * The namespace of the overlay's records in an upper read offline (export, diff), which a
 * mount chose by itself (mount.ts) and the upper does not say. The rule:
 * - a process that cannot read trusted.* (not root in the initial user namespace: listxattr
 *   hides them) reads the userxattr format, as the kernel requires `userxattr` there;
 * - else trusted.overlay.*, unless the upper holds one of the kernel's records as
 *   user.overlay.* (format.ts: isOverlayRecord; a user's own escaped `user.overlay.overlay.X`
 *   is no record) and none as trusted.overlay.*: the walk ends at the first trusted record.
 * An upper with no record at all reads the same either way but for a user's escaped xattrs;
 * it is taken as trusted.overlay.*, the mount's default as root.
 */
export function overlayXattrsOf(upper: Layer): OverlayXattrs {
  if (!isRealRoot()) return USER_XATTRS
  let user = false
  const walk = (path: string, isDir: boolean): boolean => {
    for (const name of xattrNames(upper, path)) {
      if (isOverlayRecord(TRUSTED_XATTRS, name)) return true
      if (isOverlayRecord(USER_XATTRS, name)) user = true
    }
    if (!isDir) return false
    for (const d of upper.readdir(path)) {
      if (walk(path === '/' ? '/' + d.name : `${path}/${d.name}`, isDirMode(d.type))) return true
    }
    return false
  }
  return walk('/', true) || !user ? TRUSTED_XATTRS : USER_XATTRS
}

/** The xattr names of an object; none where the filesystem has no xattrs. */
function xattrNames(layer: Layer, path: string): string[] {
  try {
    return layer.listxattr(path)
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOTSUP') return []
    throw e
  }
}

const typeOf = (st: { mode: number | bigint }): TarType | undefined => {
  switch (Number(st.mode) & S_IFMT) {
    case 0o100000: return 'file'
    case 0o040000: return 'dir'
    case 0o120000: return 'symlink'
    case 0o020000: return 'chardev'
    case 0o060000: return 'blockdev'
    case 0o010000: return 'fifo'
    default: return undefined // sockets: tar cannot hold them (GNU tar and docker skip them too)
  }
}

const major = (rdev: bigint): number => Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn))
const minor = (rdev: bigint): number => Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn))

/** Write the upper layer `upperDir` as a layer tarball at `tarPath` (replaced atomically). */
export async function exportLayer(upperDir: string, tarPath: string, options: ExportOptions = {}): Promise<ExportStats> {
  const layers = openLayers(upperDir, options.lowers ?? [], options.userxattr)
  try {
    return await exportLayers(layers.upper, layers.lowers, tarPath)
  } finally {
    layers.close()
  }
}

/**
 * The upper and lower layers of an offline job (export, diff), and one close() for all of
 * them: each holds a root fd and up to 256 directory fds, which a long-lived caller (a test
 * process, a library user) would otherwise lose with every call. All read the overlay's
 * records in one namespace, as a mount's layers do: user.overlay.* when `userxattr`,
 * trusted.overlay.* when false, the upper's own when undefined (overlayXattrsOf).
 */
export function openLayers(upperDir: string, lowerDirs: readonly string[], userxattr?: boolean): { upper: Layer; lowers: Layer[]; close: () => void } {
  const opened: Layer[] = []
  const close = (): void => {
    for (const l of opened) l.close()
  }
  try {
    let xattrs = userxattr ? USER_XATTRS : TRUSTED_XATTRS
    if (userxattr === undefined) {
      const probe = checkedLayer(upperDir, 0, true)
      try {
        xattrs = overlayXattrsOf(probe)
      } finally {
        probe.close()
      }
    }
    opened.push(checkedLayer(upperDir, 0, true, xattrs))
    for (const [i, l] of lowerDirs.entries()) opened.push(checkedLayer(l, i + 1, false, xattrs))
  } catch (e) {
    close()
    throw e
  }
  return { upper: opened[0]!, lowers: opened.slice(1), close }
}

async function exportLayers(upper: Layer, lowers: Layer[], tarPath: string): Promise<ExportStats> {
  const target = resolve(tarPath)
  if (!fs.statSync(dirname(target), { throwIfNoEntry: false })?.isDirectory()) throw imageError(`'${dirname(tarPath)}' is not a directory`)
  if (fs.statSync(target, { throwIfNoEntry: false })?.isDirectory()) throw imageError(`'${tarPath}' is a directory`)
  const temp = `${dirname(target)}/.${basename(target)}.export-${process.pid}-${randomBytes(4).toString('hex')}`
  const fd = fs.openSync(temp, 'wx', 0o644)
  try {
    const exporter = new Exporter(upper, lowers, new TarWriter(fd))
    const stats = await exporter.run()
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    fs.renameSync(temp, target)
    return stats
  } catch (e) {
    try {
      fs.closeSync(fd)
    } catch {
      // already closed
    }
    fs.rmSync(temp, { force: true })
    throw e
  }
}

/** A layer over an existing host directory (one clear line when it is not one). */
export function checkedLayer(dir: string, index: number, isUpper: boolean, xattrs: OverlayXattrs = TRUSTED_XATTRS): Layer {
  const st = fs.statSync(dir, { throwIfNoEntry: false })
  if (!st?.isDirectory()) throw imageError(`'${dir}' is not a directory`)
  return new Layer(dir, index, isUpper, undefined, xattrs)
}

class Exporter {
  readonly #upper: Layer
  readonly #layers: Layers
  readonly #out: TarWriter
  readonly #stats: ExportStats = { entries: 0, whiteouts: 0, opaques: 0, bytes: 0 }
  /** "layer:ino" -> the archive name of the first entry with that inode (hard links). */
  readonly #links = new Map<string, string>()
  /** The read buffer (the writer copies what it keeps). */
  readonly #buf = Buffer.alloc(1 << 20)

  constructor(upper: Layer, lowers: Layer[], out: TarWriter) {
    this.#upper = upper
    // The union lookup only reads through the upper (tryLstat, isOpaque, redirect, origin).
    // metacopy: a metacopy file is looked up (and refused by #emit with a clear line, not EPERM).
    this.#layers = { upper: upper as UpperLayer, lowers, metacopy: true }
    this.#out = out
  }

  async run(): Promise<ExportStats> {
    const root = this.#upper.lstat('/')
    await this.#emit('./', { layer: this.#upper, path: '/', stat: root })
    await this.#walkUpper('/', '')
    await this.#out.end()
    return this.#stats
  }

  /**
   * The upper directory at real path `dir`, archive prefix `prefix` ('' or 'a/b/'). A whiteout
   * is a 0/0 device NAME or an AUFS `.wh.NAME` file with no NAME beside it (Layer.hasAufsWhiteout);
   * either is one `.wh.NAME` entry, where NAME sorts. AUFS markers (`.wh..wh..opq`) are not
   * entries: an opaque directory gets its one marker from #opaqueMarker.
   */
  async #walkUpper(dir: string, prefix: string): Promise<void> {
    const present = new Set<string>()
    const aufs = new Map<string, string>() // NAME -> its `.wh.NAME`
    for (const { name } of this.#upper.readdir(dir)) {
      if (!isAufsName(name)) present.add(name)
      else if (!name.startsWith(AUFS_META_PREFIX) && name !== AUFS_PREFIX) aufs.set(aufsWhitedOut(name)!, name)
    }
    for (const name of present) aufs.delete(name)
    const names = [...present, ...aufs.keys()].sort(byBytes)
    for (const name of names) {
      const real = aufs.get(name) ?? name
      const path = dir === '/' ? '/' + real : `${dir}/${real}`
      const st = this.#upper.lstat(path)
      if (aufs.has(name) || isWhiteoutStat(st)) {
        this.#stats.whiteouts++
        await this.#add({ type: 'file', path: prefix + WHITEOUT_PREFIX + name, mode: 0o600, uid: Number(st.uid), gid: Number(st.gid), mtimeNs: 0n })
        continue
      }
      const obj = { layer: this.#upper, path, stat: st }
      if (typeOf(st) !== 'dir') {
        await this.#emit(prefix + name, obj)
        continue
      }
      await this.#emit(prefix + name + '/', obj)
      const redirect = this.#upper.redirect(path)
      if (redirect !== undefined) {
        // A renamed directory: what the union shows there comes from a lower path. The layer
        // gets all of it, and an opaque marker so that nothing at the new name below shows.
        if (this.#layers.lowers.length === 0) {
          throw imageError(`'${path}' is a renamed directory (redirect to '${redirect}'): exporting it needs the lower layers (--lower)`)
        }
        await this.#opaqueMarker(prefix + name + '/', st)
        await this.#walkMerged(this.#resolve(path), prefix + name + '/')
        continue
      }
      if (this.#upper.isOpaque(path)) await this.#opaqueMarker(prefix + name + '/', st)
      await this.#walkUpper(path, prefix + name + '/')
    }
  }

  /** Everything the union shows below a merged directory entry. */
  async #walkMerged(dir: Entry, prefix: string): Promise<void> {
    const names = [...mergedNames(dir).keys()].sort(byBytes)
    for (const name of names) {
      const child = lookupChild(this.#layers, dir, name)
      if (!child) continue
      if (!child.isDir) {
        await this.#emit(prefix + name, child.top)
        continue
      }
      await this.#emit(prefix + name + '/', child.top)
      await this.#walkMerged(child, prefix + name + '/')
    }
  }

  /** The union entry at a path (through upper and lowers, following redirects). */
  #resolve(path: string): Entry {
    let e = lookupRoot(this.#layers)
    for (const name of path.split('/').filter(Boolean)) {
      const next = lookupChild(this.#layers, e, name)
      if (!next) throw imageError(`'${path}' vanished while it was being exported`)
      e = next
    }
    return e
  }

  async #opaqueMarker(dirName: string, dir: ObjStat): Promise<void> {
    this.#stats.opaques++
    // As docker's overlay2 writes it: a regular file with the directory's permissions and owner.
    await this.#add({ type: 'file', path: dirName + OPAQUE_MARKER, mode: Number(dir.mode) & 0o777, uid: Number(dir.uid), gid: Number(dir.gid), mtimeNs: 0n })
  }

  /** One object of a layer as an archive entry (a hard link for a second name of an inode). */
  async #emit(name: string, obj: RealObject): Promise<void> {
    const { layer, path, stat: st } = obj
    const type = typeOf(st)
    if (type === undefined) return
    const base: TarHeader = {
      type,
      path: name,
      mode: Number(st.mode) & 0o7777,
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtimeNs: st.mtimeNs,
    }
    if (type !== 'dir' && st.nlink > 1) {
      const key = `${layer.index}:${st.ino}`
      const first = this.#links.get(key)
      if (first !== undefined) return this.#add({ ...base, type: 'link', linkpath: first, mtimeNs: st.mtimeNs })
      this.#links.set(key, name)
    }
    const names = xattrNames(layer, path)
    const h: TarHeader = { ...base, xattrs: layerXattrs(layer, path, names) }
    if (type === 'symlink') h.linkpath = layer.readlink(path)
    if (type === 'chardev' || type === 'blockdev') {
      h.devmajor = major(st.rdev)
      h.devminor = minor(st.rdev)
    }
    if (type !== 'file') return this.#add(h)
    // A metacopy upper file (metacopy=on) has its data in a lower: its bytes here are a hole.
    if (names.includes(layer.xattrs.prefix + 'metacopy')) {
      throw imageError(`'${path}' is a metacopy file (its data is in a lower layer): layers made with metacopy=on cannot be exported`)
    }
    h.size = Number(st.size)
    const flags = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW
    if (h.size <= this.#buf.length) {
      // Small files (most of a layer): one synchronous read, brief; the threadpool round trips
      // of async calls would cost more than the read.
      const fd = fs.openSync(layer.hostPath(path), flags)
      let n = 0
      try {
        // One byte more than expected: a file that grew is caught by the writer's size check.
        n = fs.readSync(fd, this.#buf, 0, Math.min(h.size + 1, this.#buf.length), null)
      } finally {
        fs.closeSync(fd)
      }
      await this.#add(h, (async function* (b: Buffer) { yield b })(this.#buf.subarray(0, n)))
    } else {
      const fh = await fs.promises.open(layer.hostPath(path), flags)
      try {
        await this.#add(h, chunksOf(fh, this.#buf))
      } finally {
        await fh.close()
      }
    }
    this.#stats.bytes += h.size
  }

  async #add(h: TarHeader, data?: AsyncIterable<Buffer>): Promise<void> {
    this.#stats.entries++
    await this.#out.add(h, data)
  }
}

/** A file's bytes in chunks read into buf (each valid until the next). */
async function* chunksOf(fh: fs.promises.FileHandle, buf: Buffer): AsyncGenerator<Buffer> {
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, null)
    if (bytesRead === 0) return
    yield buf.subarray(0, bytesRead)
  }
}
