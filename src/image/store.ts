// The storage root: where image layers (once each, by digest), image records, tags and
// containers live, and the lock that serializes changes to them. Records hold digests and
// names only, never absolute paths, so a root moved elsewhere keeps working.
// Offline host-side tooling (no union is served here): it uses node:fs directly, as cli.ts
// and part A's layer import do.
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import { join, resolve } from 'node:path'

/** Where the store lives when neither `--root` nor `LAYERFS_ROOT` says otherwise. */
export const DEFAULT_ROOT = '/var/lib/layerfs'

export class StoreError extends Error {
  readonly code = 'ERR_LAYERFS_STORE'
}

/** An image: its layers bottom-most first, as the image config's rootfs.diff_ids lists them. */
export interface ImageRecord {
  /** The config digest ("sha256:..."), Docker's image id. */
  id: string
  /** Layer diff_ids (sha256 of the uncompressed tar), bottom-most first. */
  layers: string[]
  /** When it was imported (ISO 8601). */
  imported: string
}

/** One stored layer, written once when it is imported; never changed afterwards. */
export interface LayerRecord {
  diffId: string
  /** Bytes on disk of its directory tree (blocks, hard links once: what du counts). */
  size: number
}

/** A container: its image's layers (kept here, so retagging the image does not change it). */
export interface ContainerRecord {
  name: string
  /** The reference it was created from ("name:tag"). */
  image: string
  imageId: string
  layers: string[]
  created: string
  /** Where it was last mounted (absolute); mounted only if a daemon serves it there now. */
  mountpoint?: string
  /** The process that mounted it last (the daemon with -f, else the CLI until it is ready). */
  pid?: number
}

const DIGEST = /^sha256:([0-9a-f]{64})$/
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/

/** The hex part of a sha256 digest, or a StoreError for anything else. */
export function digestHex(digest: string): string {
  const m = DIGEST.exec(digest)
  if (!m) throw new StoreError(`'${digest}' is not a sha256 digest`)
  return m[1]!
}

export function checkContainerName(name: string): void {
  if (!CONTAINER_NAME.test(name)) {
    throw new StoreError(`invalid container name '${name}': letters, digits, '_', '.', '-' (not first)`)
  }
}

/** "name" -> "name:latest"; a tag is what follows the last ':' after the last '/'. */
export function normalizeRef(ref: string): string {
  if (ref === '' || /\s/.test(ref)) throw new StoreError(`invalid image reference '${ref}'`)
  const slash = ref.lastIndexOf('/')
  return ref.indexOf(':', slash + 1) < 0 ? `${ref}:latest` : ref
}

/** The root given by option, else LAYERFS_ROOT, else the default. */
export function rootFrom(option: string | undefined, env = process.env): string {
  const r = option ?? (env['LAYERFS_ROOT'] || DEFAULT_ROOT)
  return fs.existsSync(r) ? fs.realpathSync(r) : resolve(r)
}

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

function readJson<T>(path: string): T | undefined {
  let text: string
  try {
    text = fs.readFileSync(path, 'utf8')
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return undefined
    throw e
  }
  return JSON.parse(text) as T
}

/** The names in a directory of the store; none when it cannot be read (not made yet). */
function namesIn(dir: string): string[] {
  try {
    return fs.readdirSync(dir)
  } catch {
    return []
  }
}

/** Write a file whole or not at all (temp, fsync, rename). */
function writeJson(path: string, value: unknown): void {
  const temp = `${path}.${process.pid}.tmp`
  const fd = fs.openSync(temp, 'w', 0o644)
  try {
    fs.writeSync(fd, JSON.stringify(value, null, 2) + '\n')
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  fs.renameSync(temp, path)
}

/** Whether process `pid` exists (one of another user's counts: EPERM). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM'
  }
}

export class Store {
  readonly root: string

  constructor(root: string) {
    this.root = root
  }

  get layersDir(): string {
    return join(this.root, 'layers')
  }

  get tmpDir(): string {
    return join(this.root, 'tmp')
  }

  /** Create the root's layout if missing (mode 0700: layers may hold setuid files). */
  init(): void {
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 })
    for (const d of ['layers', 'images', 'containers', 'tmp']) fs.mkdirSync(join(this.root, d), { recursive: true, mode: 0o700 })
  }

  /** Whether the root has been initialised (commands that only read refuse a missing one). */
  exists(): boolean {
    return fs.existsSync(join(this.root, 'layers'))
  }

  /**
   * Run fn holding the store's lock (a file created O_EXCL holding our pid; one left by a dead
   * process is taken over). Imports, container creation and removal take it.
   */
  async withLock<T>(fn: () => Promise<T> | T, timeoutMs = 120_000): Promise<T> {
    this.init()
    const lock = join(this.root, 'lock')
    const deadline = Date.now() + timeoutMs
    for (;;) {
      try {
        const fd = fs.openSync(lock, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o600)
        fs.writeSync(fd, String(process.pid))
        fs.closeSync(fd)
        break
      } catch (e) {
        if ((e as { code?: string }).code !== 'EEXIST') throw e
      }
      let text: string
      try {
        text = fs.readFileSync(lock, { encoding: 'utf8', flag: 'r' })
      } catch (e) {
        // Released between our O_EXCL and this read (ten mounts at once hit it): try again.
        if ((e as { code?: string }).code === 'ENOENT') continue
        throw e
      }
      const holder = Number(text.trim() || NaN)
      if (Number.isInteger(holder) && !alive(holder)) {
        fs.rmSync(lock, { force: true })
        continue
      }
      if (Date.now() > deadline) throw new StoreError(`the store '${this.root}' is locked by process ${holder}`)
      await sleep(50)
    }
    try {
      this.#cleanTmp()
      return await fn()
    } finally {
      fs.rmSync(lock, { force: true })
    }
  }

  /** Drop scratch directories an import killed halfway left (named after its pid). */
  #cleanTmp(): void {
    for (const name of fs.readdirSync(this.tmpDir)) {
      const pid = Number(name.split('-')[0])
      if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) fs.rmSync(join(this.tmpDir, name), { recursive: true, force: true })
    }
  }

  /** A fresh private scratch directory under ROOT/tmp (same filesystem as the layers). */
  tempDir(): string {
    this.init()
    return fs.mkdtempSync(join(this.tmpDir, `${process.pid}-`))
  }

  // Layers ------------------------------------------------------------------------------

  layerDir(diffId: string): string {
    return join(this.layersDir, digestHex(diffId))
  }

  /** The directory that is a lower layer (the kernel's format: whiteouts, opaque dirs). */
  layerDiff(diffId: string): string {
    return join(this.layerDir(diffId), 'diff')
  }

  layer(diffId: string): LayerRecord | undefined {
    return readJson<LayerRecord>(join(this.layerDir(diffId), 'layer.json'))
  }

  /**
   * Move a finished layer directory (temp/diff) into place under its digest, once: when the
   * layer is already stored, the new copy is dropped. Returns whether it was added.
   */
  addLayer(diffId: string, tempDiff: string, size: number): boolean {
    const dir = this.layerDir(diffId)
    if (this.layer(diffId)) return false
    fs.rmSync(dir, { recursive: true, force: true })
    fs.mkdirSync(dir, { mode: 0o700 })
    fs.renameSync(tempDiff, join(dir, 'diff'))
    // layer.json last: a layer without it is incomplete and imported again.
    writeJson(join(dir, 'layer.json'), { diffId, size } satisfies LayerRecord)
    return true
  }

  /** Every stored layer's digest. */
  layerIds(): string[] {
    return namesIn(this.layersDir).filter(n => /^[0-9a-f]{64}$/.test(n)).map(n => `sha256:${n}`).filter(d => this.layer(d) !== undefined)
  }

  // Images and tags ----------------------------------------------------------------------

  image(id: string): ImageRecord | undefined {
    return readJson<ImageRecord>(join(this.root, 'images', `${digestHex(id)}.json`))
  }

  putImage(img: ImageRecord): void {
    writeJson(join(this.root, 'images', `${digestHex(img.id)}.json`), img)
  }

  images(): ImageRecord[] {
    return namesIn(join(this.root, 'images')).filter(n => /^[0-9a-f]{64}\.json$/.test(n)).map(n => this.image(`sha256:${n.slice(0, 64)}`)!).filter(Boolean)
  }

  /** "name:tag" -> image id. */
  tags(): Record<string, string> {
    return readJson<Record<string, string>>(join(this.root, 'tags.json')) ?? {}
  }

  setTag(ref: string, id: string): void {
    const tags = this.tags()
    tags[normalizeRef(ref)] = id
    writeJson(join(this.root, 'tags.json'), tags)
  }

  /** The image a reference names: "name[:tag]", or an image id (full, or 12+ hex digits). */
  resolveImage(ref: string): { ref: string; image: ImageRecord } {
    const tags = this.tags()
    const norm = normalizeRef(ref)
    const id = tags[norm]
    if (id !== undefined) {
      const image = this.image(id)
      if (image) return { ref: norm, image }
    }
    const hex = ref.replace(/^sha256:/, '')
    if (/^[0-9a-f]{12,64}$/.test(hex)) {
      const found = this.images().filter(i => digestHex(i.id).startsWith(hex))
      if (found.length === 1) return { ref: found[0]!.id, image: found[0]! }
    }
    throw new StoreError(`no image '${ref}' in '${this.root}'`)
  }

  // Containers ---------------------------------------------------------------------------

  containerDir(name: string): string {
    checkContainerName(name)
    return join(this.root, 'containers', name)
  }

  container(name: string): ContainerRecord | undefined {
    return readJson<ContainerRecord>(join(this.containerDir(name), 'container.json'))
  }

  putContainer(c: ContainerRecord): void {
    writeJson(join(this.containerDir(c.name), 'container.json'), c)
  }

  containers(): ContainerRecord[] {
    return namesIn(join(this.root, 'containers')).filter(n => CONTAINER_NAME.test(n)).map(n => this.container(n)).filter((c): c is ContainerRecord => c !== undefined)
  }
}

/** sha256 of a byte stream, as a digest string. */
export function sha256Digest(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex')
}
