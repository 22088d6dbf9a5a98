// The overlay's records on disk. The kernel keeps them in xattrs of one of two namespaces:
// trusted.overlay.* (root in the initial user namespace) or user.overlay.* (its `userxattr`
// mode: unprivileged users and user namespaces, where trusted.* cannot be written). Layers
// may also carry the AUFS names that containers/storage writes for a mount program and
// fuse-overlayfs writes where a 0/0 device cannot be made: `.wh.NAME` hides NAME below,
// `.wh..wh..opq` makes its directory opaque; fuse-overlayfs also marks opaque directories with
// user.fuseoverlayfs.opaque. All of these are read; layerfs writes the kernel's format, and
// AUFS whiteouts only where its upper cannot hold a 0/0 device (an upper on overlayfs).

/** The kernel's workdir layout: temp objects live in W/work. */
export const WORK_SUBDIR = 'work'

/** Where the kernel's volatile mount leaves its mark, given W/work. */
export const volatileMark = (work: string): string => work + '/incompat/volatile'

/** The names of the overlay's xattrs in one namespace. */
export interface OverlayXattrs {
  /** 'trusted.overlay.' or 'user.overlay.': the namespace hidden from the user. */
  readonly prefix: string
  readonly opaque: string
  readonly redirect: string
  readonly origin: string
  readonly impure: string
  /** A regular file whose data is still in a lower layer (metacopy=on). */
  readonly metacopy: string
}

function overlayXattrs(prefix: string): OverlayXattrs {
  return { prefix, opaque: prefix + 'opaque', redirect: prefix + 'redirect', origin: prefix + 'origin', impure: prefix + 'impure',
    metacopy: prefix + 'metacopy' }
}

export const TRUSTED_XATTRS = overlayXattrs('trusted.overlay.')
export const USER_XATTRS = overlayXattrs('user.overlay.')

/**
 * The records the kernel writes (the suffixes of its ovl_xattr names, fs/overlayfs/overlayfs.h):
 * what says, in an upper read offline, which namespace wrote it (image/layer-export.ts).
 */
const KERNEL_RECORDS: ReadonlySet<string> = new Set([
  'opaque', 'redirect', 'origin', 'impure', 'nlink', 'upper', 'uuid', 'metacopy', 'protattr', 'whiteout', 'whiteouts',
])

/** Whether a real xattr name is one of the kernel's records in namespace `x` (not a user's escaped one). */
export const isOverlayRecord = (x: OverlayXattrs, real: string): boolean =>
  real.startsWith(x.prefix) && KERNEL_RECORDS.has(real.slice(x.prefix.length))

/** fuse-overlayfs's own records: read where they mean something (opaque), always hidden. */
export const FUSE_OVERLAYFS_PREFIX = 'user.fuseoverlayfs.'
export const FUSE_OVERLAYFS_OPAQUE = FUSE_OVERLAYFS_PREFIX + 'opaque'

/** AUFS names: `.wh.NAME` is a whiteout of NAME; `.wh..wh.*` are markers (`.wh..wh..opq`: opaque). */
export const AUFS_PREFIX = '.wh.'
export const AUFS_META_PREFIX = '.wh..wh.'
export const AUFS_OPAQUE = '.wh..wh..opq'

/** Whether a name is one of the AUFS format's (never shown, never made by a user). */
export const isAufsName = (name: string): boolean => name.startsWith(AUFS_PREFIX)

/** The name an AUFS name whites out; undefined for a marker. */
export function aufsWhitedOut(name: string): string | undefined {
  if (!name.startsWith(AUFS_PREFIX) || name.startsWith(AUFS_META_PREFIX)) return undefined
  return name.slice(AUFS_PREFIX.length)
}

/**
 * The real xattr name of a user's xattr: one in the overlay's namespace is stored escaped
 * (`trusted.overlay.X` as `trusted.overlay.overlay.X`), as the kernel (>= 6.7) does.
 */
export function realXattrName(x: OverlayXattrs, name: string): string {
  return name.startsWith(x.prefix) ? x.prefix + 'overlay.' + name.slice(x.prefix.length) : name
}

/** The user's name of a real xattr, or undefined for the overlay's (and fuse-overlayfs's) own. */
export function userXattrName(x: OverlayXattrs, real: string): string | undefined {
  if (real.startsWith(FUSE_OVERLAYFS_PREFIX)) return undefined
  if (!real.startsWith(x.prefix)) return real
  const escaped = x.prefix + 'overlay.'
  return real.startsWith(escaped) ? x.prefix + real.slice(escaped.length) : undefined
}
