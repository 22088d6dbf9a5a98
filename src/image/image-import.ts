// Import an image into the store: an OCI image layout directory (oci-layout, index.json,
// blobs/) or a `docker save` tarball (manifest.json, configs, layer tars; or the OCI layout
// newer Dockers save). Every blob is verified against its digest before anything is stored;
// each layer is stored once, under its diff_id (sha256 of the uncompressed tar), whatever
// number of images, and whichever format, bring it.
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import { basename, join } from 'node:path'
import { Transform, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { extractArchiveFiles } from './archive-files.js'
import { diskUsage } from './disk-usage.js'
import { importLayer } from './layer-import.js'
import type { ProgressBar } from './progress-bar.js'
import { type ImageRecord, Store, StoreError, digestHex, normalizeRef, sha256Digest } from './store.js'

export interface ImageImportOptions {
  /** Tag the image with this reference ("name[:tag]") instead of the names it carries. */
  tag?: string | undefined
  /** A progress bar for a step (the CLI draws one on a terminal). */
  progress?: ((label: string) => ProgressBar) | undefined
}

export interface ImageImportResult {
  id: string
  refs: string[]
  layers: { diffId: string; added: boolean }[]
}

/** One layer to import: where its blob is and the digests it must have. */
interface LayerSource {
  blob: string
  /** Digest of the blob as stored (compressed for OCI), when the format names one. */
  blobDigest: string | undefined
  blobSize: number | undefined
  diffId: string
  mediaType: string
}

interface ImageSource {
  configPath: string
  /** The config digest the manifest names (the image id). */
  configDigest: string | undefined
  layers: LayerSource[]
  refs: string[]
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b])

interface ImageConfig {
  rootfs?: { type?: string; diff_ids?: string[] }
}

function readJsonFile<T>(path: string, what: string): T {
  let text: string
  try {
    text = fs.readFileSync(path, 'utf8')
  } catch (e) {
    throw new StoreError(`${what} '${path}': ${(e as { code?: string }).code ?? String(e)}`)
  }
  try {
    return JSON.parse(text) as T
  } catch {
    throw new StoreError(`${what} '${path}' is not valid JSON`)
  }
}

/** A path inside `dir` for a name an archive gives (no absolute path, no `..`). */
function inside(dir: string, name: string): string {
  if (name.startsWith('/') || name.split('/').includes('..')) throw new StoreError(`'${name}' points outside the image`)
  return join(dir, name)
}

function blobPath(layout: string, digest: string): string {
  return join(layout, 'blobs', 'sha256', digestHex(digest))
}

function isGzip(path: string): boolean {
  const fd = fs.openSync(path, 'r')
  try {
    const b = Buffer.alloc(2)
    return fs.readSync(fd, b, 0, 2, 0) === 2 && b.equals(GZIP_MAGIC)
  } finally {
    fs.closeSync(fd)
  }
}

// OCI layout -------------------------------------------------------------------------------

interface Descriptor {
  mediaType?: string
  digest: string
  size?: number
  annotations?: Record<string, string>
  platform?: { os?: string; architecture?: string }
}

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'])
const NODE_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' }

function verifyBlobSync(path: string, d: Descriptor, what: string): Buffer {
  const data = fs.readFileSync(path)
  const got = sha256Digest(data)
  if (got !== d.digest) throw new StoreError(`${what} ${d.digest}: digest mismatch (the blob hashes to ${got})`)
  if (d.size !== undefined && d.size !== data.length) throw new StoreError(`${what} ${d.digest}: size ${data.length}, the descriptor says ${d.size}`)
  return data
}

/** The image manifests of an index (nested indexes followed; this machine's platform chosen). */
function ociManifests(layout: string, index: { manifests?: Descriptor[] }, refName: string | undefined): { desc: Descriptor; ref: string | undefined }[] {
  const out: { desc: Descriptor; ref: string | undefined }[] = []
  const arch = NODE_ARCH[process.arch] ?? process.arch
  for (const d of index.manifests ?? []) {
    const ref = d.annotations?.['io.containerd.image.name'] ?? d.annotations?.['org.opencontainers.image.ref.name'] ?? refName
    if (d.mediaType !== undefined && INDEX_TYPES.has(d.mediaType)) {
      const nested = JSON.parse(verifyBlobSync(blobPath(layout, d.digest), d, 'index').toString('utf8')) as { manifests?: Descriptor[] }
      const all = ociManifests(layout, nested, ref)
      const mine = all.filter(m => (m.desc.platform?.architecture ?? arch) === arch && (m.desc.platform?.os ?? 'linux') === 'linux')
      if (mine[0]) out.push(mine[0])
    } else out.push({ desc: d, ref })
  }
  return out
}

function ociImages(layout: string): ImageSource[] {
  const marker = readJsonFile<{ imageLayoutVersion?: string }>(join(layout, 'oci-layout'), 'OCI layout marker')
  if (typeof marker.imageLayoutVersion !== 'string') throw new StoreError(`'${layout}/oci-layout' has no imageLayoutVersion`)
  const index = readJsonFile<{ manifests?: Descriptor[] }>(join(layout, 'index.json'), 'OCI index')
  const out: ImageSource[] = []
  for (const { desc, ref } of ociManifests(layout, index, undefined)) {
    const manifest = JSON.parse(verifyBlobSync(blobPath(layout, desc.digest), desc, 'manifest').toString('utf8')) as {
      config: Descriptor
      layers: Descriptor[]
    }
    if (!manifest.config || !Array.isArray(manifest.layers)) throw new StoreError(`manifest ${desc.digest} is not an image manifest`)
    const configPath = blobPath(layout, manifest.config.digest)
    verifyBlobSync(configPath, manifest.config, 'config')
    const diffIds = diffIdsOf(configPath, manifest.layers.length)
    out.push({
      configPath,
      configDigest: manifest.config.digest,
      refs: ref === undefined ? [] : [ref.includes(':') || ref.includes('/') ? ref : `${basename(layout)}:${ref}`],
      layers: manifest.layers.map((l, i) => ({
        blob: blobPath(layout, l.digest),
        blobDigest: l.digest,
        blobSize: l.size,
        diffId: diffIds[i]!,
        mediaType: l.mediaType ?? '',
      })),
    })
  }
  return out
}

function diffIdsOf(configPath: string, count: number): string[] {
  const config = readJsonFile<ImageConfig>(configPath, 'image config')
  const ids = config.rootfs?.diff_ids
  if (!Array.isArray(ids) || ids.length !== count) {
    throw new StoreError(`image config '${configPath}' lists ${Array.isArray(ids) ? ids.length : 'no'} diff_ids for ${count} layers`)
  }
  for (const id of ids) digestHex(id)
  return ids
}

// docker save ------------------------------------------------------------------------------

interface DockerManifestEntry {
  Config: string
  RepoTags?: string[] | null
  Layers: string[]
}

function dockerImages(dir: string): ImageSource[] {
  const entries = readJsonFile<DockerManifestEntry[]>(join(dir, 'manifest.json'), 'docker save manifest')
  if (!Array.isArray(entries)) throw new StoreError(`'manifest.json' is not a docker save manifest`)
  return entries.map(e => {
    const configPath = inside(dir, e.Config)
    const hex = /([0-9a-f]{64})(\.json)?$/.exec(e.Config)?.[1]
    return {
      configPath,
      configDigest: hex === undefined ? undefined : `sha256:${hex}`,
      refs: e.RepoTags ?? [],
      layers: (() => {
        const ids = diffIdsOf(configPath, e.Layers.length)
        // The diff_id is the digest of each layer tar: the tar itself is the blob.
        return e.Layers.map((l, i) => ({ blob: inside(dir, l), blobDigest: undefined, blobSize: undefined, diffId: ids[i]!, mediaType: '' }))
      })(),
    }
  })
}

// Verification and storing ------------------------------------------------------------------

/** Hash a layer blob and, compressed, its uncompressed tar: both must match their digests. */
async function verifyLayer(l: LayerSource, onBytes: (n: number) => void): Promise<void> {
  if (l.mediaType.includes('zstd')) throw new StoreError(`layer ${l.blobDigest ?? l.diffId}: zstd layers are not supported`)
  const st = fs.statSync(l.blob, { throwIfNoEntry: false })
  if (!st?.isFile()) throw new StoreError(`layer blob '${l.blob}' is missing`)
  if (l.blobSize !== undefined && st.size !== l.blobSize) throw new StoreError(`layer ${l.blobDigest}: size ${st.size}, the manifest says ${l.blobSize}`)
  const blobHash = createHash('sha256')
  const diffHash = createHash('sha256')
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      blobHash.update(chunk)
      onBytes(chunk.length)
      cb(null, chunk)
    },
  })
  const gz = isGzip(l.blob)
  const sink = (h: typeof diffHash): Writable => new Writable({ write: (chunk: Buffer, _e, cb) => (h.update(chunk), cb()) })
  try {
    if (gz) await pipeline(fs.createReadStream(l.blob), counter, createGunzip(), sink(diffHash))
    else await pipeline(fs.createReadStream(l.blob), counter, sink(diffHash))
  } catch (e) {
    throw new StoreError(`layer ${l.blobDigest ?? l.diffId}: ${(e as Error).message}`)
  }
  const blob = 'sha256:' + blobHash.digest('hex')
  const diff = 'sha256:' + diffHash.digest('hex')
  if (l.blobDigest !== undefined && blob !== l.blobDigest) {
    throw new StoreError(`layer ${l.blobDigest}: digest mismatch (the blob hashes to ${blob})`)
  }
  if (diff !== l.diffId) throw new StoreError(`layer ${l.diffId}: diff_id mismatch (the tar hashes to ${diff})`)
}

async function importOne(store: Store, src: ImageSource, opts: ImageImportOptions, scratch: string): Promise<ImageImportResult> {
  const configBytes = fs.readFileSync(src.configPath)
  const id = sha256Digest(configBytes)
  if (src.configDigest !== undefined && src.configDigest !== id) {
    throw new StoreError(`image config ${src.configDigest}: digest mismatch (it hashes to ${id})`)
  }
  const total = src.layers.reduce((n, l) => n + fs.statSync(l.blob).size, 0)
  let done = 0
  // Every layer is verified before any is stored: a bad image adds nothing.
  const verifying = opts.progress?.(`verifying ${digestHex(id).slice(0, 12)}`)
  try {
    for (const l of src.layers) await verifyLayer(l, n => verifying?.update((done += n), total))
  } finally {
    verifying?.done()
  }
  const layers: { diffId: string; added: boolean }[] = []
  for (let i = 0; i < src.layers.length; i++) {
    const diffId = src.layers[i]!.diffId
    if (store.layer(diffId)) {
      layers.push({ diffId, added: false })
      continue
    }
    const diff = join(fs.mkdtempSync(join(scratch, 'layer-')), 'diff')
    fs.mkdirSync(diff, { mode: 0o755 })
    const bar = opts.progress?.(`layer ${i + 1}/${src.layers.length} ${digestHex(diffId).slice(0, 12)}`)
    try {
      await importLayer(src.layers[i]!.blob, diff, { progress: (d, t) => bar?.update(d, t) })
    } finally {
      bar?.done()
    }
    layers.push({ diffId, added: store.addLayer(diffId, diff, diskUsage(diff)) })
  }
  const record: ImageRecord = { id, layers: src.layers.map(l => l.diffId), imported: new Date().toISOString() }
  store.putImage(record)
  const refs = opts.tag !== undefined ? [normalizeRef(opts.tag)] : src.refs.map(normalizeRef)
  for (const ref of refs) store.setTag(ref, id)
  return { id, refs, layers }
}

/** Import the image(s) at `source` (an OCI layout directory or a docker save tarball). */
export async function importImage(store: Store, source: string, opts: ImageImportOptions = {}): Promise<ImageImportResult[]> {
  const st = fs.statSync(source, { throwIfNoEntry: false })
  if (!st) throw new StoreError(`'${source}': no such file or directory`)
  return store.withLock(async () => {
    const scratch = store.tempDir()
    try {
      let dir = source
      if (!st.isDirectory()) {
        dir = join(scratch, 'archive')
        fs.mkdirSync(dir)
        extractArchiveFiles(source, dir)
      }
      let sources: ImageSource[]
      if (fs.existsSync(join(dir, 'manifest.json'))) sources = dockerImages(dir)
      else if (fs.existsSync(join(dir, 'oci-layout'))) sources = ociImages(dir)
      else throw new StoreError(`'${source}' is neither an OCI image layout nor a docker save archive`)
      if (sources.length === 0) throw new StoreError(`'${source}' holds no image`)
      if (opts.tag !== undefined && sources.length > 1) throw new StoreError(`'${source}' holds ${sources.length} images: --tag names one`)
      const out: ImageImportResult[] = []
      for (const s of sources) out.push(await importOne(store, s, opts, scratch))
      return out
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true })
    }
  })
}
