// Mount lifecycle: check the layers on disk, prepare the workdir, start FUSE, serve until
// unmounted or signalled, unmount cleanly. Nothing is mounted and nothing on disk changes
// before every check has passed.
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import { LowLevelFuse } from './fuse/lowlevel-fuse.js'
import { mountLog } from './log.js'
import type { MountOptions } from './options.js'
import { Union } from './union/union.js'
import { makeVolumeMountPoints } from './union/mount-points.js'
import { IdMap } from './union/id-map.js'
import { type OverlayXattrs, TRUSTED_XATTRS, USER_XATTRS } from './layers/format.js'
import { canWriteTrustedXattrs } from './layers/upper.js'
import { MountError, checkLayout, isRealRoot, mergeMountFlags } from './layout.js'
import { markStartUp } from './start-up.js'

export { MountError, checkLayout, isMountPoint, parseMountinfo } from './layout.js'

/** The mount(8) flags libfuse 2.9 passes on to fusermount (suid and dev it drops for a user). */
const FUSERMOUNT_FLAGS = new Set(['exec', 'noexec', 'atime', 'noatime', 'sync', 'async', 'dirsync'])

/**
 * The options of a mount: fuse_mount's and the session's. Cache
 * timeouts are ours to give per reply; one kernel inode per union inode makes them safe for
 * hard links (native-notes/lowlevel-binding.md).
 */
export function lowLevelOptions(o: MountOptions): { mount: string[]; session: string[] } {
  const mount = [`fsname=${o.source}`, 'subtype=layerfs', 'default_permissions', 'auto_unmount']
  if (process.getuid?.() === 0) mount.push('allow_other')
  if (o.upperdir === undefined || o.readOnly) mount.push('ro')
  // The mount flags fusermount takes; as root setMountFlags puts on the rest.
  mount.push(...o.mountFlags.filter(f => FUSERMOUNT_FLAGS.has(f)))
  const session = ['big_writes', 'max_write=131072', 'atomic_o_trunc']
  if (o.fuseDebug) session.push('debug')
  return { mount, session }
}

/**
 * Seconds the kernel may cache lookups, attributes and misses. Every change goes through us,
 * and the kernel drops what each of its requests changes; what changes without a request of
 * its own (a copy-up's ctime and link counts, a broken lower hard link's st_ino) is invalidated
 * by notification (src/fuse/ll-ops.ts). Like fuse-overlayfs (1e9 s) and the kernel's own
 * dcache, nothing expires by time: changing the layers behind a mount is not supported.
 */
export const CACHE_TIMEOUTS = { entry: 86_400, attr: 86_400, negative: 86_400 }

export interface Mounted {
  readonly mountpoint: string
  readonly union: Union
  /** Resolves when the mount is gone (unmounted by anyone) and its copy-ups are durable. */
  readonly closed: Promise<void>
  /** Unmount (lazily, as fusermount -uz) and stop serving; resolves once copy-ups are durable. */
  unmount(): Promise<void>
}

/** Mount the union at `mountpoint` and serve it from this process. */
export async function mount(o: MountOptions, mountpoint: string): Promise<Mounted> {
  checkLayout(o, mountpoint)
  const mnt = fs.realpathSync(mountpoint)
  // Layers given as symbolic links (containers/storage's l/SHORTID, Docker's too) are resolved
  // once, here, as the kernel resolves them at mount: every real path below is the layer's own.
  const real = (p: string): string => fs.realpathSync(p)
  const upperdir = o.upperdir === undefined ? undefined : real(o.upperdir)
  const workdir = o.workdir === undefined ? undefined : real(o.workdir)
  // Modes arrive from the kernel with the caller's umask applied: apply them exactly.
  process.umask(0)
  const xattrs = overlayXattrsFor(o, workdir)
  // The kernel's userxattr format has no redirects: renamed merged directories are EXDEV there.
  if (xattrs === USER_XATTRS && o.redirectDir !== undefined && o.redirectDir !== 'nofollow') {
    throw new MountError(`redirect_dir=${o.redirectDir} needs trusted.overlay.* xattrs, which this process cannot write (userxattr format: redirect_dir=nofollow)`)
  }
  // The kernel refuses metacopy in the userxattr format: a rootless mount cannot have it.
  if (xattrs === USER_XATTRS && o.metacopy) {
    throw new MountError('metacopy=on needs trusted.overlay.* xattrs, which this process cannot write (the kernel refuses userxattr,metacopy=on)')
  }
  const union = new Union({
    lowerdirs: o.lowerdirs.map(real),
    upperdir,
    workdir,
    volumes: o.volumes.map(v => ({ ...v, hostdir: real(v.hostdir) })),
    xattrs,
    view: { ids: new IdMap(o.ids), staticNlink: o.staticNlink, ino32: o.ino32 },
    redirectDir: o.redirectDir ?? (xattrs === USER_XATTRS ? 'nofollow' : 'on'),
    noXattrs: o.noXattrs,
    metacopy: o.metacopy,
  })
  union.cleanWork(o.volatile)
  if (union.upper && o.noFsync) union.upper.noFsync = true
  makeVolumeMountPoints(union)
  markStartUp('layers')
  const { mount: mountOptions, session: sessionOptions } = lowLevelOptions(o)
  const fuse = new LowLevelFuse(mnt, union, { mountOptions, sessionOptions, timeouts: CACHE_TIMEOUTS })
  await fuse.mountAsync()
  markStartUp('fuse')
  try {
    await setMountFlags(o, mnt)
    markStartUp('flags')
  } catch (e) {
    // Nothing stays mounted when mounting fails.
    await fuse.unmountAsync().catch(() => {})
    throw e
  }
  mountLog('mounted %s: lower %o, upper %s, %s xattrs%s', mnt, union.lowers.map(l => l.root), union.upper?.root ?? '(none: read-only)',
    union.xattrs.prefix, union.upper?.aufsWhiteouts ? ', AUFS whiteouts' : '')

  let unmounting: Promise<void> | undefined
  let onClosed!: () => void
  // Copy-ups whose fsync is still to come (copy-up-commits.ts) are made durable before the
  // daemon goes.
  const settle = async (): Promise<void> => {
    await union.upper?.commits.settled()
    union.upper?.commits.end()
  }
  const closed = new Promise<void>(resolve => (onClosed = resolve)).then(settle)
  // Served until the kernel ends the connection: the last unmount, or the last user gone
  // after a lazy one (`umount -l` while a process still works inside, or a copy of the mount
  // in another mount namespace), as kernel overlayfs lives while its superblock is used. The
  // session sees that end itself (the device says ENODEV).
  void fuse.exited.then(() => {
    mountLog('the kernel ended the connection to %s', mnt)
    onClosed()
  })

  return {
    mountpoint: mnt,
    union,
    closed,
    unmount() {
      unmounting ??= fuse.unmountAsync().then(() => onClosed()).then(settle)
      return unmounting
    },
  }
}

/**
 * fusermount always mounts nosuid,nodev; kernel overlayfs does not, and setuid programs and
 * device nodes in an image must work. As root, take them off unless the user asked for them,
 * and put on the other flags asked for (noexec, noatime, relatime, ...: fusermount takes only
 * some). mount(8) runs as a child: it stats the mount point, which this process must answer.
 */
async function setMountFlags(o: MountOptions, mnt: string): Promise<void> {
  if (!isRealRoot()) return
  const flags = mergeMountFlags([o.nosuid ? 'nosuid' : 'suid', o.nodev ? 'nodev' : 'dev'], o.mountFlags)
  const args = ['remount', 'bind', ...flags]
  await new Promise<void>((resolve, reject) =>
    execFile('mount', ['-o', args.join(','), mnt], err => (err ? reject(new MountError(`cannot set ${flags.join(',')} on '${mnt}': ${err.message.trim()}`)) : resolve())))
}

/**
 * The namespace of the overlay's xattrs: user.overlay.* with `userxattr`, or where this process
 * may not write trusted.* (an unprivileged user, root in a user namespace: rootless podman),
 * as the kernel requires `userxattr` there; else trusted.overlay.*.
 */
function overlayXattrsFor(o: MountOptions, workdir: string | undefined): OverlayXattrs {
  if (o.userxattr) return USER_XATTRS
  if (workdir !== undefined) return canWriteTrustedXattrs(workdir) ? TRUSTED_XATTRS : USER_XATTRS
  return isRealRoot() ? TRUSTED_XATTRS : USER_XATTRS
}

