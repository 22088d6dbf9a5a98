// The origin xattr (trusted.overlay.origin, or user.overlay.origin): which lower object an
// upper object was copied up from, in the kernel's format (struct ovl_fb: version 0, magic
// 0xfb, len, flags, handle type, the lower filesystem's uuid, then the file handle). The union
// keeps the origin's inode number, so st_ino survives copy-up, rename and remount, and the
// kernel reads our records and we its.
import { host } from './native.js'
import type { Layer } from './layer.js'

const OVL_FB_VERSION = 0
const OVL_FB_MAGIC = 0xfb
const OVL_FB_HEADER = 5 + 16
/** Little-endian CPU: the kernel's OVL_FH_FLAG_CPU_ENDIAN is 0 here. */
const OVL_FH_FLAGS = 0
/**
 * FILEID_INO32_GEN and FILEID_INO32_GEN_PARENT in the generic layout (exportfs's, ext4's): the
 * 32-bit inode first, then the generation (and the parent's pair): 8 and 16 bytes. tmpfs
 * answers type 1 too, but 12 bytes, the generation first: only these exact sizes are read.
 */
const FILEID_INO32_GEN = 1
const FILEID_INO32_GEN_PARENT = 2
const INO32_GEN_BYTES = 8
const INO32_GEN_PARENT_BYTES = 16

export interface Origin {
  type: number
  uuid: Buffer
  handle: Buffer
}

export function encodeOrigin(o: Origin): Buffer {
  const b = Buffer.alloc(OVL_FB_HEADER + o.handle.length)
  b[0] = OVL_FB_VERSION
  b[1] = OVL_FB_MAGIC
  b[2] = b.length
  b[3] = OVL_FH_FLAGS
  b[4] = o.type
  o.uuid.copy(b, 5, 0, 16)
  o.handle.copy(b, OVL_FB_HEADER)
  return b
}

/** The origin in an xattr value, or undefined for a record we cannot use. */
export function decodeOrigin(b: Buffer): Origin | undefined {
  if (b.length < OVL_FB_HEADER || b[0] !== OVL_FB_VERSION || b[1] !== OVL_FB_MAGIC) return undefined
  if (b[2] !== b.length || (b[3]! & 1) !== OVL_FH_FLAGS) return undefined
  return { type: b[4]!, uuid: b.subarray(5, 21), handle: b.subarray(OVL_FB_HEADER) }
}

/** The origin record of a lower object, or undefined where its filesystem has no file handles. */
export function originOf(layer: Layer, path: string): Origin | undefined {
  try {
    const { type, handle } = layer.nameToHandle(path)
    return { type, uuid: layer.uuid, handle }
  } catch (e) {
    const code = (e as { code?: string }).code
    if (code === 'EOPNOTSUPP' || code === 'ENOTSUP' || code === 'EOVERFLOW') return undefined
    throw e
  }
}

/** The inode number an origin names, looked up on `layer`'s filesystem; undefined when gone. */
export function inoOfOrigin(o: Origin, layer: Layer): bigint | undefined {
  if ((o.type === FILEID_INO32_GEN && o.handle.length === INO32_GEN_BYTES) ||
    (o.type === FILEID_INO32_GEN_PARENT && o.handle.length === INO32_GEN_PARENT_BYTES)) {
    return BigInt(o.handle.readUInt32LE(0))
  }
  let fd: number | undefined
  try {
    fd = host.openByHandle(layer.root, o.type, o.handle)
    return layer.fstatIno(fd)
  } catch {
    return undefined
  } finally {
    if (fd !== undefined) layer.closeFd(fd)
  }
}
