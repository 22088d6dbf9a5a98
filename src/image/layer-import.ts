// Applies a Docker/OCI layer tarball to a directory in the kernel overlayfs format: `.wh.NAME`
// becomes a 0/0 character device, `.wh..wh..opq` the opaque xattr on its directory.
// Works on host directories, offline (no union): like cli.ts it uses node:fs and the host addon
// directly. It must never write outside the target, never follow a symlink it extracted, and
// never leave a half-applied layer at the target: it extracts into a stage beside the target
// and renames it into place only when the whole archive was applied.
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import { pipeline } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { fsPath, host } from '../layers/native.js'
import { ImageError, imageError } from './image-error.js'
import { type TarEntry, TarReader } from './tar-reader.js'

export interface ImportOptions {
  /** Called as bytes of the tarball are consumed (compressed bytes for a gzip layer): done of total. */
  progress?: (done: number, total: number) => void
}

export interface ImportStats {
  /** Tar entries applied (files, dirs, links, devices, whiteouts and opaque markers). */
  entries: number
  /** `.wh.NAME` entries, now 0/0 character devices. */
  whiteouts: number
  /** `.wh..wh..opq` entries, now `trusted.overlay.opaque=y` on their directory. */
  opaques: number
  /** Bytes of regular-file data written. */
  bytes: number
}

export const WHITEOUT_PREFIX = '.wh.'
export const OPAQUE_MARKER = '.wh..wh..opq'
/** `.wh..wh.` names other than the opaque marker are AUFS bookkeeping (`.wh..wh.plnk`, ...). */
const WHITEOUT_META_PREFIX = '.wh..wh.'
const OPAQUE_XATTR = 'trusted.overlay.opaque'
const OVERLAY_XATTR_PREFIX = 'trusted.overlay.'

const S_IFCHR = 0o020000
const S_IFBLK = 0o060000
const S_IFIFO = 0o010000
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants
/** Files up to this size are written with synchronous calls. */
const SYNC_WRITE_BYTES = 1 << 20

/** glibc's makedev. */
const makedev = (major: number, minor: number): number =>
  (major & 0xfff) * 0x100 + (minor & 0xff) + (minor - (minor & 0xff)) * 0x1000 + (major - (major & 0xfff)) * 2 ** 32

/**
 * The xattr name a tarball's xattr is stored under. A layer cannot set the overlay's own
 * xattrs: `trusted.overlay.X` in a tarball is a user's xattr of that name, stored escaped as
 * `trusted.overlay.overlay.X`, which the kernel (6.7+) and layerfs show as `trusted.overlay.X`.
 */
export const storedXattrName = (name: string): string =>
  name.startsWith(OVERLAY_XATTR_PREFIX) ? OVERLAY_XATTR_PREFIX + 'overlay.' + name.slice(OVERLAY_XATTR_PREFIX.length) : name

/**
 * The components of an entry's name, relative to the layer root. A leading '/' is dropped
 * (docker and containerd join every name to the root); '.' and empty components are dropped;
 * a '..' component is refused outright, wherever it points (no layer writer emits one).
 */
export function layerPath(name: string, what = 'entry'): string[] {
  const parts: string[] = []
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue
    if (p === '..') throw imageError(`${what} '${name}': a '..' component is not allowed`)
    parts.push(p)
  }
  return parts
}

/** Applies a Docker/OCI layer tarball (plain or gzip, detected by magic) to dir in the kernel overlayfs format. */
export async function importLayer(tarPath: string, dir: string, options: ImportOptions = {}): Promise<ImportStats> {
  const target = resolve(dir)
  checkTarget(dir, target)
  const { chunks, close } = openLayer(tarPath, options.progress)
  const stage = `${dirname(target)}/.${basename(target)}.import-${process.pid}-${randomBytes(4).toString('hex')}`
  try {
    fs.mkdirSync(stage)
    fs.chmodSync(stage, 0o755)
    const stats = await new Extractor(stage).run(new TarReader(chunks))
    // An empty target dir is replaced by the stage in one rename.
    fs.renameSync(stage, target)
    return stats
  } catch (e) {
    fs.rmSync(stage, { recursive: true, force: true })
    if (e instanceof ImageError) throw imageError(`${tarPath}: ${e.message}`)
    if ((e as { code?: string }).code?.startsWith('Z_')) throw imageError(`${tarPath}: gzip: ${(e as Error).message}`)
    throw e
  } finally {
    close()
  }
}

/** The target must be absent (its parent present) or an empty directory. */
function checkTarget(dir: string, target: string): void {
  const st = fs.lstatSync(target, { throwIfNoEntry: false })
  if (st) {
    if (!st.isDirectory()) throw imageError(`'${dir}' exists and is not a directory`)
    if (fs.readdirSync(target).length > 0) throw imageError(`'${dir}' is not empty`)
    return
  }
  const parent = fs.statSync(dirname(target), { throwIfNoEntry: false })
  if (!parent?.isDirectory()) throw imageError(`'${dirname(dir)}' is not a directory`)
}

/** The tarball's bytes, gunzipped when it starts with gzip's magic. */
function openLayer(tarPath: string, progress: ImportOptions['progress']): { chunks: AsyncIterable<Buffer>; close: () => void } {
  let fd: number
  try {
    fd = fs.openSync(tarPath, 'r')
  } catch (e) {
    throw imageError(`cannot open '${tarPath}': ${(e as { code?: string }).code ?? String(e)}`)
  }
  const st = fs.fstatSync(fd)
  if (st.isDirectory()) {
    fs.closeSync(fd)
    throw imageError(`'${tarPath}' is a directory`)
  }
  const total = st.size
  const magic = Buffer.alloc(6)
  fs.readSync(fd, magic, 0, 6, 0)
  if (magic.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) {
    fs.closeSync(fd)
    throw imageError(`${tarPath}: zstd-compressed layers are not supported (decompress it first)`)
  }
  if (magic.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) || magic.subarray(0, 3).toString('latin1') === 'BZh') {
    fs.closeSync(fd)
    throw imageError(`${tarPath}: xz/bzip2-compressed layers are not supported (OCI layers are tar or tar+gzip)`)
  }
  const file = fs.createReadStream('', { fd, highWaterMark: 1 << 16 })
  // Progress counts the file's bytes as they are consumed (compressed ones for gzip).
  let done = 0
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const chunk of file as AsyncIterable<Buffer>) {
      done += chunk.length
      progress?.(done, total)
      yield chunk
    }
  }
  if (magic[0] !== 0x1f || magic[1] !== 0x8b) return { chunks: counted(), close: () => file.destroy() }
  const gunzip = createGunzip()
  // Errors surface through gunzip, whose iteration rejects with them.
  pipeline(counted(), gunzip, () => {})
  return { chunks: gunzip, close: () => (gunzip.destroy(), file.destroy()) }
}

class Extractor {
  readonly #root: string
  readonly #stats: ImportStats = { entries: 0, whiteouts: 0, opaques: 0, bytes: 0 }
  /** Relative paths known to be real directories we made ('' is the root). */
  readonly #dirs = new Set<string>([''])
  /** Directory mtimes, set once everything is in place (adding an entry changes its dir's). */
  readonly #dirTimes = new Map<string, bigint>()

  constructor(root: string) {
    this.#root = root
  }

  async run(reader: TarReader): Promise<ImportStats> {
    for (let e = await reader.next(); e; e = await reader.next()) await this.#apply(e, reader)
    for (const [rel, ns] of this.#dirTimes) host.lutimens(this.#abs(rel), ns, ns)
    return this.#stats
  }

  #abs(rel: string): string | Buffer {
    return fsPath(rel === '' ? this.#root : `${this.#root}/${rel}`)
  }

  async #apply(e: TarEntry, reader: TarReader): Promise<void> {
    const parts = layerPath(e.path)
    const rel = parts.join('/')
    const base = parts[parts.length - 1]
    if (base === undefined) {
      if (e.type !== 'dir') throw imageError(`entry '${e.path}': the layer root is not a directory`)
      this.#stats.entries++
      this.#setMeta('', e)
      this.#dirTimes.set('', e.mtimeNs)
      return
    }
    if (base.startsWith(WHITEOUT_PREFIX)) return this.#applyWhiteout(e, parts)
    this.#stats.entries++
    this.#makeParents(e, parts)
    const existing = fs.lstatSync(this.#abs(rel), { throwIfNoEntry: false })
    // A later entry replaces an earlier one of the same name, except a directory over a
    // directory, which merges (docker's UnpackLayer does the same).
    if (existing && !(existing.isDirectory() && e.type === 'dir')) this.#remove(rel)
    const p = this.#abs(rel)
    switch (e.type) {
      case 'dir':
        if (!existing?.isDirectory()) fs.mkdirSync(p)
        // Made again after this layer's whiteout of the name: nothing below may merge into it
        // (the kernel's mkdir over a whiteout does the same).
        if (existing?.isCharacterDevice() && existing.rdev === 0) host.lsetxattr(p, OPAQUE_XATTR, Buffer.from('y'), 0)
        this.#dirs.add(rel)
        this.#dirTimes.set(rel, e.mtimeNs)
        break
      case 'file':
        await this.#writeFile(p, e.size, reader)
        break
      case 'symlink':
        fs.symlinkSync(fsPath(e.linkpath), p)
        break
      case 'link': {
        const to = layerPath(e.linkpath, `hard link '${e.path}' to`)
        this.#checkExistingPath(e, to)
        const st = fs.lstatSync(this.#abs(to.join('/')), { throwIfNoEntry: false })
        if (!st) throw imageError(`entry '${e.path}': hard link to '${e.linkpath}', which is not in the layer (yet)`)
        if (st.isDirectory()) throw imageError(`entry '${e.path}': hard link to the directory '${e.linkpath}'`)
        fs.linkSync(this.#abs(to.join('/')), p)
        return // a hard link shares its target's inode: its own header fields are not applied
      }
      case 'chardev':
        if (e.devmajor === 0 && e.devminor === 0) {
          throw imageError(`entry '${e.path}': a 0/0 character device is overlayfs's whiteout; a layer says '.wh.NAME'`)
        }
        host.mknod(p, S_IFCHR | e.mode, makedev(e.devmajor, e.devminor))
        break
      case 'blockdev':
        host.mknod(p, S_IFBLK | e.mode, makedev(e.devmajor, e.devminor))
        break
      case 'fifo':
        host.mknod(p, S_IFIFO | e.mode, 0)
        break
    }
    this.#setMeta(rel, e)
  }

  #applyWhiteout(e: TarEntry, parts: string[]): void {
    const base = parts[parts.length - 1]!
    const dirParts = parts.slice(0, -1)
    if (base === OPAQUE_MARKER) {
      if (dirParts.length === 0) throw imageError(`entry '${e.path}': an opaque marker at the layer root (it must be in a directory)`)
      this.#stats.entries++
      this.#stats.opaques++
      this.#makeParents(e, parts)
      // Whatever the tar order, the marker only makes the directory opaque to the layers
      // below: entries of this layer in it, before or after the marker, stay.
      host.lsetxattr(this.#abs(dirParts.join('/')), OPAQUE_XATTR, Buffer.from('y'), 0)
      return
    }
    if (base.startsWith(WHITEOUT_META_PREFIX)) {
      // AUFS bookkeeping at the root (.wh..wh.plnk, .wh..wh.aufs, ...): docker skips it.
      if (parts[0]!.startsWith(WHITEOUT_META_PREFIX)) return
      throw imageError(`entry '${e.path}': unknown whiteout meta name '${base}'`)
    }
    const name = base.slice(WHITEOUT_PREFIX.length)
    if (name === '') throw imageError(`entry '${e.path}': a whiteout ('.wh.') with no name after it`)
    if (name === '.' || name === '..') throw imageError(`entry '${e.path}': a whiteout of '${name}'`)
    this.#stats.entries++
    this.#stats.whiteouts++
    this.#makeParents(e, parts)
    const rel = [...dirParts, name].join('/')
    // A whiteout hides only what the layers below have (OCI image-spec, layer.md): an entry of
    // this layer at that name stays. Over a non-directory that is already so (it hides the
    // name below); a directory must stop merging with the one below: it becomes opaque.
    const existing = fs.lstatSync(this.#abs(rel), { throwIfNoEntry: false })
    if (existing) {
      if (existing.isDirectory()) host.lsetxattr(this.#abs(rel), OPAQUE_XATTR, Buffer.from('y'), 0)
      return
    }
    host.mknod(this.#abs(rel), S_IFCHR, 0)
    // The whiteout keeps the owner of its entry, as docker's overlay2 does (export gives it
    // back), and its time, so that the same tarball always gives the same tree.
    fs.lchownSync(this.#abs(rel), e.uid, e.gid)
    host.lutimens(this.#abs(rel), e.mtimeNs, e.mtimeNs)
  }

  /** Make the missing parents of an entry (0755, root's, as docker does); never through a symlink. */
  #makeParents(e: TarEntry, parts: string[]): void {
    for (let i = 1; i < parts.length; i++) {
      const rel = parts.slice(0, i).join('/')
      if (this.#dirs.has(rel)) continue
      const st = fs.lstatSync(this.#abs(rel), { throwIfNoEntry: false })
      const overWhiteout = st?.isCharacterDevice() === true && st.rdev === 0
      if (!st || overWhiteout) {
        if (overWhiteout) fs.unlinkSync(this.#abs(rel))
        fs.mkdirSync(this.#abs(rel))
        fs.chmodSync(this.#abs(rel), 0o755)
        // Under a name this layer whited out: a new directory, nothing below merges into it.
        if (overWhiteout) host.lsetxattr(this.#abs(rel), OPAQUE_XATTR, Buffer.from('y'), 0)
      } else this.#checkDir(e, rel, st)
      this.#dirs.add(rel)
    }
  }

  /** A hard link's target path: every parent an existing real directory. */
  #checkExistingPath(e: TarEntry, parts: string[]): void {
    for (let i = 1; i < parts.length; i++) {
      const rel = parts.slice(0, i).join('/')
      if (this.#dirs.has(rel)) continue
      const st = fs.lstatSync(this.#abs(rel), { throwIfNoEntry: false })
      if (!st) throw imageError(`entry '${e.path}': hard link to '${e.linkpath}', which is not in the layer (yet)`)
      this.#checkDir(e, rel, st)
    }
  }

  #checkDir(e: TarEntry, rel: string, st: fs.Stats): void {
    if (st.isSymbolicLink()) throw imageError(`entry '${e.path}': its path goes through the symlink '${rel}' (a layer is never extracted through a symlink)`)
    if (!st.isDirectory()) throw imageError(`entry '${e.path}': '${rel}' is not a directory`)
  }

  #remove(rel: string): void {
    fs.rmSync(this.#abs(rel), { recursive: true, force: true })
    for (const set of [this.#dirs, this.#dirTimes] as const) {
      for (const k of set.keys()) if (k === rel || k.startsWith(rel + '/')) set.delete(k)
    }
  }

  async #writeFile(p: string | Buffer, size: number, reader: TarReader): Promise<void> {
    const flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
    if (size <= SYNC_WRITE_BYTES) {
      // Small files (most of a layer): synchronous calls, each brief; the threadpool round
      // trips of async ones would cost more than the writes.
      const fd = fs.openSync(p, flags, 0o600)
      try {
        for await (const chunk of reader.body()) {
          for (let off = 0; off < chunk.length;) off += fs.writeSync(fd, chunk, off)
          this.#stats.bytes += chunk.length
        }
      } finally {
        fs.closeSync(fd)
      }
      return
    }
    const fh = await fs.promises.open(p, flags, 0o600)
    try {
      for await (const chunk of reader.body()) {
        for (let off = 0; off < chunk.length;) off += (await fh.write(chunk, off)).bytesWritten
        this.#stats.bytes += chunk.length
      }
    } finally {
      await fh.close()
    }
  }

  /** Owner, then mode (chown clears setuid), then xattrs (chown clears security.capability), then times. */
  #setMeta(rel: string, e: TarEntry): void {
    const p = this.#abs(rel)
    fs.lchownSync(p, e.uid, e.gid)
    if (e.type !== 'symlink') fs.chmodSync(p, e.mode)
    for (const [name, value] of e.xattrs) {
      try {
        host.lsetxattr(p, storedXattrName(name), value, 0)
      } catch (err) {
        throw imageError(`entry '${e.path}': cannot set xattr '${name}': ${(err as { code?: string }).code ?? String(err)}`)
      }
    }
    if (e.type !== 'dir') host.lutimens(p, e.mtimeNs, e.mtimeNs)
  }
}
