// A streaming tar reader: ustar, pax (x records: path, linkpath, size, uid, gid, mtime in ns,
// SCHILY.xattr.*; g records are ignored, as docker and containerd do), GNU longname/longlink
// ('L'/'K') and base-256 numbers. It holds one header and one chunk of data at a time, never
// an archive. It only parses: what the entries mean (and whether they are safe) is the caller's.
import { nameFromBytes } from '../layers/native.js'
import { imageError } from './image-error.js'

export type TarType = 'file' | 'link' | 'symlink' | 'chardev' | 'blockdev' | 'dir' | 'fifo'

export interface TarEntry {
  type: TarType
  /** The name as stored (bytes in the name codec of src/layers/native/names.ts). */
  path: string
  /** Hard link or symlink target, as stored. */
  linkpath: string
  /** Permission bits with setuid/setgid/sticky (mode & 0o7777). */
  mode: number
  uid: number
  gid: number
  /** Bytes of data that follow (regular files only; 0 for the others). */
  size: number
  /** Modification time, ns since the epoch (pax gives ns; ustar whole seconds). */
  mtimeNs: bigint
  devmajor: number
  devminor: number
  /** pax SCHILY.xattr.NAME records: NAME -> value bytes. */
  xattrs: Map<string, Buffer>
}

const BLOCK = 512

const TYPES: Record<string, TarType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'link', '2': 'symlink', '3': 'chardev', '4': 'blockdev', '5': 'dir', '6': 'fifo',
}

/** Pulls exact byte counts out of a stream of chunks. */
class Source {
  readonly #it: AsyncIterator<Buffer>
  #buf: Buffer = Buffer.alloc(0)
  /** Bytes handed out so far (the archive offset). */
  offset = 0

  constructor(input: AsyncIterable<Buffer>) {
    this.#it = input[Symbol.asyncIterator]()
  }

  async #fill(): Promise<boolean> {
    const r = await this.#it.next()
    if (r.done) return false
    const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array)
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk])
    return true
  }

  /** Exactly n bytes; undefined at a clean end (nothing left); throws on a short read. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.#buf.length < n) {
      if (!(await this.#fill())) {
        if (this.#buf.length === 0) return undefined
        throw truncated(this.offset + this.#buf.length)
      }
    }
    const out = this.#buf.subarray(0, n)
    this.#buf = this.#buf.subarray(n)
    this.offset += n
    return out
  }

  /** The next n bytes as they arrive, in chunks. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (this.#buf.length === 0 && !(await this.#fill())) throw truncated(this.offset)
      const take = Math.min(n, this.#buf.length)
      const out = this.#buf.subarray(0, take)
      this.#buf = this.#buf.subarray(take)
      this.offset += take
      n -= take
      yield out
    }
  }
}

const truncated = (offset: number): Error => imageError(`the tar archive is truncated (at byte ${offset})`)

/** A NUL-terminated field as raw bytes. */
function field(h: Buffer, start: number, len: number): Buffer {
  const f = h.subarray(start, start + len)
  const nul = f.indexOf(0)
  return nul < 0 ? f : f.subarray(0, nul)
}

/** An octal field, or GNU base-256 (high bit of the first byte set). */
function num(h: Buffer, start: number, len: number, what: string): number {
  const f = h.subarray(start, start + len)
  if (f[0]! & 0x80) {
    if (f[0] === 0xff) throw imageError(`tar header: negative ${what}`)
    let v = BigInt(f[0]! & 0x7f)
    for (let i = 1; i < f.length; i++) v = (v << 8n) | BigInt(f[i]!)
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw imageError(`tar header: ${what} too large`)
    return Number(v)
  }
  const s = f.toString('latin1').replace(/\0.*$/s, '').trim()
  if (s === '') return 0
  if (!/^[0-7]+$/.test(s)) throw imageError(`tar header: bad ${what} field '${s}'`)
  return parseInt(s, 8)
}

function checksumOk(h: Buffer): boolean {
  const field = h.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim()
  if (!/^[0-7]+$/.test(field)) return false
  const stored = parseInt(field, 8)
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!
    unsigned += b
    signed += b > 127 ? b - 256 : b
  }
  return stored === unsigned || stored === signed
}

/** "secs[.frac]" (pax time) -> ns. */
export function paxTimeNs(v: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(v)
  if (!m) throw imageError(`pax header: bad time '${v}'`)
  const ns = BigInt(m[2]!) * 1_000_000_000n + BigInt(((m[3] ?? '') + '000000000').slice(0, 9))
  return m[1] ? -ns : ns
}

type Pax = Map<string, Buffer>

/** pax records "LEN KEY=VALUE\n"; values are raw bytes (xattr values are binary). */
function parsePax(data: Buffer): Pax {
  const out: Pax = new Map()
  let i = 0
  while (i < data.length) {
    if (data[i] === 0) break
    const sp = data.indexOf(0x20, i)
    const len = sp < 0 ? NaN : Number(data.subarray(i, sp).toString('latin1'))
    if (!Number.isInteger(len) || len <= 0 || i + len > data.length || data[i + len - 1] !== 0x0a) {
      throw imageError('pax header: malformed record')
    }
    const rec = data.subarray(sp + 1, i + len - 1)
    const eq = rec.indexOf(0x3d)
    if (eq < 0) throw imageError('pax header: record without "="')
    out.set(rec.subarray(0, eq).toString('utf8'), rec.subarray(eq + 1))
    i += len
  }
  return out
}

const MAX_META = 1 << 20

export class TarReader {
  readonly #src: Source
  /** Data (and padding) of the current entry not yet consumed. */
  #left = 0
  #pad = 0
  #ended = false

  constructor(input: AsyncIterable<Buffer>) {
    this.#src = new Source(input)
  }

  /** Archive bytes consumed so far. */
  get offset(): number {
    return this.#src.offset
  }

  /** The next entry (the previous one's unread data skipped), or undefined at the end. */
  async next(): Promise<TarEntry | undefined> {
    await this.#skip()
    if (this.#ended) return undefined
    let pax: Pax = new Map()
    let longName: Buffer | undefined
    let longLink: Buffer | undefined
    for (;;) {
      const h = await this.#src.read(BLOCK)
      if (!h || h.every(b => b === 0)) {
        // End of archive: a zero block (GNU tar writes two; a truncated second is tolerated).
        this.#ended = true
        return undefined
      }
      if (!checksumOk(h)) throw imageError(`not a tar archive, or corrupt (bad header checksum at byte ${this.#src.offset - BLOCK})`)
      const flag = String.fromCharCode(h[156]!)
      const size = num(h, 124, 12, 'size')
      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        if (size > MAX_META) throw imageError(`tar ${flag} header too large (${size} bytes)`)
        const raw = size === 0 ? Buffer.alloc(0) : await this.#src.read(size)
        if (!raw) throw truncated(this.#src.offset)
        const data = Buffer.from(raw)
        await this.#src.read((BLOCK - (size % BLOCK)) % BLOCK)
        if (flag === 'x') pax = new Map([...pax, ...parsePax(data)])
        else if (flag === 'g') parsePax(data) // checked, then ignored: docker and containerd ignore global headers
        else if (flag === 'L') longName = field(data, 0, data.length)
        else longLink = field(data, 0, data.length)
        continue
      }
      const type = TYPES[flag]
      if (!type) throw imageError(`unsupported tar entry type '${flag.replace(/[^\x20-\x7e]/g, '?')}' at byte ${this.#src.offset - BLOCK}`)
      const isUstar = h.subarray(257, 263).toString('latin1') === 'ustar\0'
      let nameBytes = longName ?? field(h, 0, 100)
      if (!longName && isUstar) {
        const prefix = field(h, 345, 155)
        if (prefix.length > 0) nameBytes = Buffer.concat([prefix, Buffer.from('/'), nameBytes])
      }
      const str = (k: string): string | undefined => pax.get(k)?.toString('utf8')
      const paxNum = (k: string, fallback: number): number => {
        const v = str(k)
        if (v === undefined) return fallback
        if (!/^\d+$/.test(v)) throw imageError(`pax header: bad ${k} '${v}'`)
        return Number(v)
      }
      const xattrs = new Map<string, Buffer>()
      for (const [k, v] of pax) if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice(13), Buffer.from(v))
      const mtime = str('mtime')
      const entry: TarEntry = {
        type,
        path: pax.has('path') ? nameFromBytes(pax.get('path')!) : nameFromBytes(nameBytes),
        linkpath: pax.has('linkpath') ? nameFromBytes(pax.get('linkpath')!) : nameFromBytes(longLink ?? field(h, 157, 100)),
        mode: num(h, 100, 8, 'mode') & 0o7777,
        uid: paxNum('uid', num(h, 108, 8, 'uid')),
        gid: paxNum('gid', num(h, 116, 8, 'gid')),
        size: paxNum('size', size),
        mtimeNs: mtime !== undefined ? paxTimeNs(mtime) : BigInt(num(h, 136, 12, 'mtime')) * 1_000_000_000n,
        devmajor: num(h, 329, 8, 'devmajor'),
        devminor: num(h, 337, 8, 'devminor'),
        xattrs,
      }
      // Only regular files carry data: the other types are header-only whatever their size
      // field says (POSIX ustar; Go's archive/tar, which docker and containerd use, does the same).
      const dataSize = type === 'file' ? entry.size : 0
      if (type !== 'file') entry.size = 0
      this.#left = dataSize
      this.#pad = (BLOCK - (dataSize % BLOCK)) % BLOCK
      return entry
    }
  }

  /** The current entry's data, in chunks as they arrive (each valid until the next read). */
  async *body(): AsyncGenerator<Buffer> {
    for await (const chunk of this.#src.chunks(this.#left)) {
      this.#left -= chunk.length
      yield chunk
    }
  }

  async #skip(): Promise<void> {
    if (this.#left > 0) for await (const _ of this.#src.chunks(this.#left)) void _
    this.#left = 0
    if (this.#pad > 0) await this.#src.read(this.#pad)
    this.#pad = 0
  }
}
