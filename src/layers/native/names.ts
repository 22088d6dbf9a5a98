// File names are bytes; JS strings are UTF-16. The codec every layer of layerfs shares (the
// FUSE session addon's values.c, the host addon, and these functions do the same thing):
//   - a name that is valid UTF-8 (nearly all) is the string it spells, exactly as before;
//   - in any other name, each byte that is not part of a valid UTF-8 sequence is the lone
//     surrogate U+DC80..U+DCFF (U+DC00 + byte): Python's "surrogateescape" (PEP 383).
// bytes -> string -> bytes is the identity, and valid UTF-8 never yields a lone surrogate, so
// names that were fine stay untouched. Node's fs would encode a lone surrogate as U+FFFD: give
// fs `fsPath(p)` (a Buffer only when p holds escaped bytes) and read names back as Buffers.
// Pure TypeScript, no addon: src/fuse may import it too.

/** A lone surrogate (the escape code units, or any other unpaired one). */
const LONE_SURROGATE = /\p{Cs}/u

const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Whether `name` holds escaped bytes (or another unpaired surrogate): fs must get its bytes. */
export function hasRawBytes(name: string): boolean {
  return LONE_SURROGATE.test(name)
}

/**
 * The bytes `name` stands for: UTF-8, except that each lone U+DC80..U+DCFF is the byte
 * (code - 0xDC00); any other lone surrogate becomes U+FFFD's bytes, as Node encodes it.
 */
export function nameBytes(name: string): Buffer {
  if (!hasRawBytes(name)) return Buffer.from(name, 'utf8')
  const out: number[] = []
  for (let i = 0; i < name.length; i++) {
    let c = name.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < name.length) {
      const lo = name.charCodeAt(i + 1)
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00)
        out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f))
        i++
        continue
      }
    }
    if (c >= 0xdc80 && c <= 0xdcff) {
      out.push(c - 0xdc00)
      continue
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd
    if (c < 0x80) out.push(c)
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f))
    else out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f))
  }
  return Buffer.from(out)
}

/** A path for Node's fs: `p` itself unless it holds escaped bytes, then its bytes. */
export function fsPath(p: string): string | Buffer {
  return hasRawBytes(p) ? nameBytes(p) : p
}

/** The length of the valid UTF-8 sequence at b[i], or 0 (the C's utf8_seq_len). */
function seqLen(b: Uint8Array, i: number): number {
  const n = b.length - i
  const c = b[i]!
  const cont = (k: number): boolean => (b[i + k]! & 0xc0) === 0x80
  if (c < 0x80) return 1
  if (c >= 0xc2 && c <= 0xdf) return n >= 2 && cont(1) ? 2 : 0
  if (c >= 0xe0 && c <= 0xef) {
    if (n < 3 || !cont(1) || !cont(2)) return 0
    if (c === 0xe0 && b[i + 1]! < 0xa0) return 0
    if (c === 0xed && b[i + 1]! >= 0xa0) return 0
    return 3
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (n < 4 || !cont(1) || !cont(2) || !cont(3)) return 0
    if (c === 0xf0 && b[i + 1]! < 0x90) return 0
    if (c === 0xf4 && b[i + 1]! >= 0x90) return 0
    return 4
  }
  return 0
}

/**
 * The name that `bytes` are (e.g. from `fs.readdirSync(dir, { encoding: 'buffer' })` or
 * `fs.readlinkSync(p, { encoding: 'buffer' })`): the inverse of nameBytes.
 */
export function nameFromBytes(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes)
  } catch {
    // not valid UTF-8: escape the bytes that are not part of a valid sequence
  }
  let s = ''
  for (let i = 0; i < bytes.length;) {
    const k = seqLen(bytes, i)
    if (k === 0) {
      s += String.fromCharCode(0xdc00 + bytes[i]!)
      i++
    } else {
      s += strict.decode(bytes.subarray(i, i + k))
      i += k
    }
  }
  return s
}
