// Unpack the regular files of a `docker save` tarball (manifest.json, configs, layer tars)
// into a private scratch directory. Only regular files and directories are written, names
// are checked (no absolute paths, no `..`), and a symlink entry (docker save links a layer
// shared by two images) becomes a hard link to the archive file it names, never a symlink:
// nothing can be written or read outside the scratch directory.
import fs from 'node:fs'
import { dirname, join, posix } from 'node:path'
import { StoreError } from './store.js'

const BLOCK = 512
const CHUNK = 1 << 20

function field(h: Buffer, off: number, len: number): string {
  const s = h.subarray(off, off + len)
  const nul = s.indexOf(0)
  return (nul < 0 ? s : s.subarray(0, nul)).toString('utf8')
}

function octal(h: Buffer, off: number, len: number): number {
  // Base-256 (GNU) for sizes of 8 GiB and more.
  if (h[off]! & 0x80) {
    let n = 0
    for (let i = off + 1; i < off + len; i++) n = n * 256 + h[i]!
    return n
  }
  const s = field(h, off, len).trim()
  return s === '' ? 0 : parseInt(s, 8)
}

/** A member name made relative and checked: no absolute path, no `..` component. */
function safeName(name: string, tarPath: string): string {
  const norm = posix.normalize(name.replace(/^(\.\/)+/, ''))
  if (name.startsWith('/') || norm === '..' || norm.startsWith('../') || norm.split('/').includes('..')) {
    throw new StoreError(`'${tarPath}': refusing member '${name}' (outside the archive)`)
  }
  return norm.replace(/\/$/, '')
}

function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>()
  let pos = 0
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos)
    if (sp < 0) break
    const len = parseInt(data.subarray(pos, sp).toString('utf8'), 10)
    if (!(len > 0)) break
    const rec = data.subarray(sp + 1, pos + len - 1).toString('utf8')
    const eq = rec.indexOf('=')
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1))
    pos += len
  }
  return out
}

/** Extract the files of `tarPath` into `dir` (an empty scratch directory). */
export function extractArchiveFiles(tarPath: string, dir: string): void {
  const fd = fs.openSync(tarPath, 'r')
  const links: { name: string; target: string }[] = []
  try {
    const header = Buffer.alloc(BLOCK)
    const buf = Buffer.allocUnsafe(CHUNK)
    let pos = 0
    let longName: string | undefined
    let pax: Map<string, string> | undefined
    const readExact = (b: Buffer, len: number, at: number): void => {
      if (fs.readSync(fd, b, 0, len, at) !== len) throw new StoreError(`'${tarPath}': truncated archive`)
    }
    const readData = (size: number): Buffer => {
      const b = Buffer.alloc(size)
      readExact(b, size, pos)
      return b
    }
    for (;;) {
      if (fs.readSync(fd, header, 0, BLOCK, pos) < BLOCK) break
      if (header.every(b => b === 0)) break
      pos += BLOCK
      const size = octal(header, 124, 12)
      const type = String.fromCharCode(header[156]!)
      const padded = Math.ceil(size / BLOCK) * BLOCK
      if (type === 'L') {
        longName = readData(size).toString('utf8').replace(/\0+$/, '')
        pos += padded
        continue
      }
      if (type === 'x') {
        pax = parsePax(readData(size))
        pos += padded
        continue
      }
      if (type === 'g') {
        pos += padded
        continue
      }
      const prefix = field(header, 345, 155)
      const raw = longName ?? pax?.get('path') ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100))
      const linkName = pax?.get('linkpath') ?? field(header, 157, 100)
      longName = undefined
      pax = undefined
      const name = safeName(raw, tarPath)
      if (name === '.' || name === '') {
        pos += padded
        continue
      }
      const dest = join(dir, name)
      if (type === '5') {
        fs.mkdirSync(dest, { recursive: true, mode: 0o700 })
      } else if (type === '0' || type === '\0' || type === '7') {
        fs.mkdirSync(dirname(dest), { recursive: true, mode: 0o700 })
        const out = fs.openSync(dest, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600)
        try {
          for (let done = 0; done < size; ) {
            const n = Math.min(CHUNK, size - done)
            readExact(buf, n, pos + done)
            fs.writeSync(out, buf, 0, n)
            done += n
          }
        } finally {
          fs.closeSync(out)
        }
      } else if (type === '1' || type === '2') {
        // Hard link targets are archive names; symlink targets are relative to the link.
        const target = type === '1' ? linkName : posix.join(posix.dirname(name), linkName)
        links.push({ name, target: safeName(target, tarPath) })
      }
      // Devices, FIFOs and the like have no place in a docker save archive: skipped.
      pos += padded
    }
  } finally {
    fs.closeSync(fd)
  }
  for (const l of links) {
    const target = join(dir, l.target)
    const st = fs.lstatSync(target, { throwIfNoEntry: false })
    if (!st?.isFile()) continue
    fs.mkdirSync(dirname(join(dir, l.name)), { recursive: true, mode: 0o700 })
    fs.linkSync(target, join(dir, l.name))
  }
}
