// A deterministic tar writer: ustar headers with fixed fields (no user or group names, no
// atime/ctime), a pax header only where ustar cannot say it (a name or link target over 100
// bytes, a size, id or mtime out of range, an mtime with a ns fraction, xattrs), records in a
// fixed order. Same entries in, same bytes out. Data is streamed from the caller.
import fs from 'node:fs'
import { nameBytes } from '../layers/native.js'
import { imageError } from './image-error.js'
import type { TarType } from './tar-reader.js'

export interface TarHeader {
  type: TarType
  /** Name in the archive (name codec); directories get a trailing '/' here. */
  path: string
  linkpath?: string
  /** Permission bits with setuid/setgid/sticky. */
  mode: number
  uid: number
  gid: number
  /** Data bytes that follow (regular files). */
  size?: number
  mtimeNs: bigint
  devmajor?: number
  devminor?: number
  /** xattr name -> value; written sorted by name. */
  xattrs?: ReadonlyMap<string, Buffer>
}

const BLOCK = 512
const FLAGS: Record<TarType, string> = { file: '0', link: '1', symlink: '2', chardev: '3', blockdev: '4', dir: '5', fifo: '6' }
const FLUSH = 1 << 20

/** An octal field of `len` bytes (len-1 digits and a NUL), or undefined when the value does not fit. */
function octal(v: number, len: number): Buffer | undefined {
  if (!Number.isSafeInteger(v) || v < 0) return undefined
  const s = v.toString(8)
  if (s.length > len - 1) return undefined
  return Buffer.from(s.padStart(len - 1, '0') + '\0', 'latin1')
}

/** One pax record "LEN key=value\n", LEN counting itself. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')])
  let len = body.length + 1
  while (String(len).length + body.length !== len) len = String(len).length + body.length
  return Buffer.concat([Buffer.from(String(len), 'latin1'), body])
}

/** ns -> pax time "secs[.fraction]" (fraction without trailing zeros). */
function paxTime(ns: bigint): string {
  const neg = ns < 0n
  const a = neg ? -ns : ns
  const secs = a / 1_000_000_000n
  const frac = (a % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '')
  return `${neg ? '-' : ''}${secs}${frac ? '.' + frac : ''}`
}

function header(name: Buffer, flag: string, h: { mode: number; uid: number; gid: number; size: number; mtime: number; link: Buffer; devmajor: number; devminor: number }): Buffer {
  const b = Buffer.alloc(BLOCK)
  name.copy(b, 0, 0, Math.min(100, name.length))
  octal(h.mode, 8)!.copy(b, 100)
  octal(h.uid, 8)!.copy(b, 108)
  octal(h.gid, 8)!.copy(b, 116)
  octal(h.size, 12)!.copy(b, 124)
  octal(h.mtime, 12)!.copy(b, 136)
  b.write(flag, 156, 'latin1')
  h.link.copy(b, 157, 0, Math.min(100, h.link.length))
  b.write('ustar\u000000', 257, 'latin1')
  const dev = [octal(h.devmajor, 8), octal(h.devminor, 8)]
  if (!dev[0] || !dev[1]) throw imageError(`device number ${h.devmajor}:${h.devminor} does not fit a tar header`)
  dev[0].copy(b, 329)
  dev[1].copy(b, 337)
  b.fill(0x20, 148, 156)
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += b[i]!
  Buffer.from(sum.toString(8).padStart(6, '0') + '\0 ', 'latin1').copy(b, 148)
  return b
}

export class TarWriter {
  readonly #fd: number
  #pending: Buffer[] = []
  #pendingBytes = 0
  /** Bytes written (the archive size so far). */
  written = 0

  /** Writes to an open fd (the caller closes it). */
  constructor(fd: number) {
    this.#fd = fd
  }

  /** Add an entry; a regular file's data comes from `data`, exactly `h.size` bytes. */
  async add(h: TarHeader, data?: AsyncIterable<Buffer>): Promise<void> {
    const size = h.type === 'file' ? (h.size ?? 0) : 0
    const name = nameBytes(h.path)
    const link = nameBytes(h.linkpath ?? '')
    const secs = h.mtimeNs / 1_000_000_000n
    const wholeSecs = h.mtimeNs % 1_000_000_000n === 0n
    const pax: Buffer[] = []
    if (name.length > 100) pax.push(paxRecord('path', name))
    if (link.length > 100) pax.push(paxRecord('linkpath', link))
    const fits = {
      size: octal(size, 12) !== undefined,
      uid: octal(h.uid, 8) !== undefined,
      gid: octal(h.gid, 8) !== undefined,
      mtime: wholeSecs && secs >= 0n && octal(Number(secs), 12) !== undefined,
    }
    if (!fits.size) pax.push(paxRecord('size', Buffer.from(String(size))))
    if (!fits.uid) pax.push(paxRecord('uid', Buffer.from(String(h.uid))))
    if (!fits.gid) pax.push(paxRecord('gid', Buffer.from(String(h.gid))))
    if (!fits.mtime) pax.push(paxRecord('mtime', Buffer.from(paxTime(h.mtimeNs))))
    const xattrs = [...(h.xattrs ?? new Map<string, Buffer>())].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    for (const [k, v] of xattrs) pax.push(paxRecord(`SCHILY.xattr.${k}`, v))
    const mtime = fits.mtime ? Number(secs) : 0
    if (pax.length > 0) {
      const body = Buffer.concat(pax)
      const base = nameBytes(h.path.replace(/\/+$/, '').split('/').pop() ?? '')
      const paxName = Buffer.concat([Buffer.from('PaxHeaders/'), base]).subarray(0, 100)
      this.#push(header(paxName, 'x', { mode: 0o644, uid: 0, gid: 0, size: body.length, mtime, link: Buffer.alloc(0), devmajor: 0, devminor: 0 }))
      this.#pushPadded(body)
    }
    this.#push(header(name, FLAGS[h.type], {
      mode: h.mode & 0o7777,
      uid: fits.uid ? h.uid : 0,
      gid: fits.gid ? h.gid : 0,
      size: fits.size ? size : 0,
      mtime,
      link,
      devmajor: h.devmajor ?? 0,
      devminor: h.devminor ?? 0,
    }))
    if (size > 0) {
      if (!data) throw new Error(`tar writer: no data for '${h.path}'`)
      let n = 0
      for await (const chunk of data) {
        n += chunk.length
        if (n > size) break
        this.#push(chunk)
        if (this.#pendingBytes >= FLUSH) await this.#flush()
      }
      if (n !== size) throw imageError(`'${h.path}' changed size while it was being exported`)
      this.#push(Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK))
    }
    if (this.#pendingBytes >= FLUSH) await this.#flush()
  }

  /** The end-of-archive marker (two zero blocks), then everything flushed. */
  async end(): Promise<void> {
    this.#push(Buffer.alloc(2 * BLOCK))
    await this.#flush()
  }

  #push(b: Buffer): void {
    if (b.length === 0) return
    // Chunks from a reader may be reused by it: keep a copy.
    this.#pending.push(Buffer.from(b))
    this.#pendingBytes += b.length
  }

  #pushPadded(b: Buffer): void {
    this.#push(b)
    this.#push(Buffer.alloc((BLOCK - (b.length % BLOCK)) % BLOCK))
  }

  async #flush(): Promise<void> {
    const buf = Buffer.concat(this.#pending)
    this.#pending = []
    this.#pendingBytes = 0
    for (let off = 0; off < buf.length;) {
      off += await new Promise<number>((resolve, reject) =>
        fs.write(this.#fd, buf, off, buf.length - off, null, (e, n) => (e ? reject(e) : resolve(n))))
    }
    this.written += buf.length
  }
}
