// Mount lifecycle: check the layers on disk, prepare the workdir, start FUSE, serve until
// unmounted or signalled, unmount cleanly. Nothing is mounted and nothing on disk changes
// before every check has passed.
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import { LayerFuse } from './fuse/binding.js'
import { LowLevelFuse } from './fuse/lowlevel-fuse.js'
import { unionOps } from './fuse/ops.js'
import { mountLog } from './log.js'
import type { MountOptions } from './options.js'
import { Union } from './union/union.js'
import { makeVolumeMountPoints } from './union/mount-points.js'
import { IdMap } from './union/id-map.js'
import { type OverlayXattrs, TRUSTED_XATTRS, USER_XATTRS } from './layers/format.js'
import { canWriteTrustedXattrs, volatileMark, WORK_SUBDIR } from './layers/upper.js'

export class MountError extends Error {
  readonly code = 'ERR_LAYERFS_MOUNT'
}

/** The libfuse options every layerfs mount gets (see native-notes/mount-options.md). */
export function fuseOptions(o: MountOptions): string[] {
  const opts = [
    `fsname=${o.source}`,
    'subtype=layerfs',
    // st_ino from us: stable across copy-up and remount, d_ino equal to st_ino.
    'use_ino',
    // 128 KiB writes instead of 4 KiB: ~10x write throughput.
    'big_writes',
    'max_write=131072',
    // Keep page caches across opens unless the file changed since (libfuse compares size and
    // mtime at open): a hard link written through another name must not read stale pages.
    'auto_cache',
    // O_TRUNC reaches open (not a truncate after it): a truncating open copies up no data.
    'atomic_o_trunc',
    'entry_timeout=1',
    // libfuse 2's path-based API gives each hard link its own kernel inode: cached attributes
    // of one name would go stale when another name changes the file (nlink, size: reads cut
    // short). Until the lowlevel binding shares one kernel inode per union inode, attributes
    // are not cached (native-notes/hard-links-and-nodes.md).
    'attr_timeout=0',
    'negative_timeout=1',
    // The kernel checks permissions against the modes we report, like overlayfs does.
    'default_permissions',
    // A fusermount helper unmounts if the daemon dies (even by SIGKILL): no mount is left
    // answering ENOTCONN, and the next `layerfs mount` finds a clean mount point.
    'auto_unmount',
  ]
  // As root, like kernel overlayfs, other users see the mount. (dev,suid: see setMountFlags.)
  if (process.getuid?.() === 0) opts.push('allow_other')
  if (o.upperdir === undefined || o.readOnly) opts.push('ro')
  if (o.fuseDebug) opts.push('debug')
  return opts
}

/**
 * The options of a lowlevel mount (the default binding): fuse_mount's and the session's. Cache
 * timeouts are ours to give per reply; one kernel inode per union inode makes them safe for
 * hard links (native-notes/lowlevel-binding.md).
 */
export function lowLevelOptions(o: MountOptions): { mount: string[]; session: string[] } {
  const mount = [`fsname=${o.source}`, 'subtype=layerfs', 'default_permissions', 'auto_unmount']
  if (process.getuid?.() === 0) mount.push('allow_other')
  if (o.upperdir === undefined || o.readOnly) mount.push('ro')
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

/**
 * Which binding serves mounts: the lowlevel session, or (LAYERFS_BINDING=highlevel, for
 * comparison) fuse-native's path-based API.
 */
export const useHighLevel = (): boolean => process.env['LAYERFS_BINDING'] === 'highlevel'

function statDir(path: string, what: string): fs.Stats {
  let st: fs.Stats
  try {
    st = fs.statSync(path)
  } catch (e) {
    const code = (e as { code?: string }).code
    throw new MountError(`${what} '${path}': ${code === 'ENOENT' ? 'no such directory' : code}`)
  }
  if (!st.isDirectory()) throw new MountError(`${what} '${path}' is not a directory`)
  return st
}

function canAccess(path: string, mode: number): boolean {
  try {
    fs.accessSync(path, mode)
    return true
  } catch {
    return false
  }
}

/** Whether a is b or one of b's ancestors, or the other way round (on resolved paths). */
function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(b === '/' ? '/' : b + '/') || b.startsWith(a === '/' ? '/' : a + '/')
}

/** The mount points and filesystem types listed in a /proc/self/mountinfo text. */
export function parseMountinfo(text: string): { point: string; fstype: string }[] {
  const out: { point: string; fstype: string }[] = []
  for (const line of text.split('\n')) {
    const f = line.split(' ')
    const dash = f.indexOf('-', 6)
    if (f[4] === undefined || dash < 0) continue
    const point = f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
    out.push({ point, fstype: f[dash + 1] ?? '' })
  }
  return out
}

/** Whether `path` is a mount point now. */
export function isMountPoint(path: string): boolean {
  return parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8')).some(m => m.point === path)
}

/**
 * Check everything that can be checked before mounting, in the order the kernel does: each
 * layer a readable directory, upper and workdir writable and on one filesystem, no layer
 * inside another, the mount point a directory that is not mounted on already.
 */
export function checkLayout(o: MountOptions, mountpoint: string): void {
  const real: { path: string; what: string }[] = []
  for (const dir of o.lowerdirs) {
    statDir(dir, 'lowerdir')
    if (!canAccess(dir, fs.constants.R_OK | fs.constants.X_OK)) throw new MountError(`lowerdir '${dir}' is not readable`)
    real.push({ path: fs.realpathSync(dir), what: `lowerdir '${dir}'` })
  }
  if (o.upperdir !== undefined && o.workdir !== undefined) {
    const up = statDir(o.upperdir, 'upperdir')
    const wk = statDir(o.workdir, 'workdir')
    if (!canAccess(o.upperdir, fs.constants.W_OK)) throw new MountError(`upperdir '${o.upperdir}' is not writable`)
    if (!canAccess(o.workdir, fs.constants.W_OK)) throw new MountError(`workdir '${o.workdir}' is not writable`)
    if (up.dev !== wk.dev) throw new MountError(`workdir '${o.workdir}' and upperdir '${o.upperdir}' must be on the same filesystem`)
    // The kernel's rule: a workdir a volatile mount used is taken by no mount until the user
    // has looked at the upper and removed the mark (a crash may have lost unsynced data).
    const mark = volatileMark(`${o.workdir}/${WORK_SUBDIR}`)
    if (fs.existsSync(mark)) throw new MountError(`workdir '${o.workdir}' was used by a volatile mount: remove '${mark}' to mount it again`)
    real.push({ path: fs.realpathSync(o.upperdir), what: `upperdir '${o.upperdir}'` })
    real.push({ path: fs.realpathSync(o.workdir), what: `workdir '${o.workdir}'` })
    for (const v of o.volumes) {
      const st = statDir(v.hostdir, 'volume')
      if (!canAccess(v.hostdir, fs.constants.W_OK)) throw new MountError(`volume '${v.hostdir}' is not writable`)
      // A volume's temp objects (copy-up never, but rename over a directory, unlinked open
      // files) are renamed between it and the workdir.
      if (st.dev !== wk.dev) throw new MountError(`volume '${v.hostdir}' must be on the filesystem of workdir '${o.workdir}'`)
      real.push({ path: fs.realpathSync(v.hostdir), what: `volume '${v.hostdir}'` })
    }
  }
  for (let i = 0; i < real.length; i++) {
    for (let j = i + 1; j < real.length; j++) {
      const a = real[i]!
      const b = real[j]!
      if (overlaps(a.path, b.path)) throw new MountError(`${a.what} and ${b.what} overlap: layers must be separate subtrees`)
    }
  }
  statDir(mountpoint, 'mount point')
  const mnt = fs.realpathSync(mountpoint)
  if (isMountPoint(mnt)) throw new MountError(`mount point '${mountpoint}' is already mounted on`)
  for (const r of real) {
    if (overlaps(mnt, r.path)) throw new MountError(`mount point '${mountpoint}' overlaps ${r.what}`)
  }
}

export interface Mounted {
  readonly mountpoint: string
  readonly union: Union
  /** Resolves when the mount is gone (unmounted by anyone). */
  readonly closed: Promise<void>
  /** Unmount (lazily, as fusermount -uz) and stop serving. */
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
  const union = new Union({
    lowerdirs: o.lowerdirs.map(real),
    upperdir,
    workdir,
    volumes: o.volumes.map(v => ({ ...v, hostdir: real(v.hostdir) })),
    xattrs,
    view: { ids: new IdMap(o.ids), staticNlink: o.staticNlink, ino32: o.ino32 },
    redirectDir: o.redirectDir ?? (xattrs === USER_XATTRS ? 'nofollow' : 'on'),
    noXattrs: o.noXattrs,
  })
  union.cleanWork(o.volatile)
  if (union.upper && o.noFsync) union.upper.noFsync = true
  makeVolumeMountPoints(union)
  let fuse: LayerFuse | LowLevelFuse
  if (useHighLevel()) {
    fuse = new LayerFuse(mnt, unionOps(union), { options: fuseOptions(o) })
  } else {
    const { mount: mountOptions, session: sessionOptions } = lowLevelOptions(o)
    fuse = new LowLevelFuse(mnt, union, { mountOptions, sessionOptions, timeouts: CACHE_TIMEOUTS })
  }
  await fuse.mountAsync()
  try {
    await setMountFlags(o, mnt)
  } catch (e) {
    // Nothing stays mounted when mounting fails.
    await fuse.unmountAsync().catch(() => {})
    throw e
  }
  mountLog('mounted %s: lower %o, upper %s, %s xattrs%s', mnt, union.lowers.map(l => l.root), union.upper?.root ?? '(none: read-only)',
    union.xattrs.prefix, union.upper?.aufsWhiteouts ? ', AUFS whiteouts' : '')

  let unmounting: Promise<void> | undefined
  let onClosed!: () => void
  const closed = new Promise<void>(resolve => (onClosed = resolve))
  // fuse-native does not tell us when someone else unmounts: watch the mount table.
  const watch = setInterval(() => {
    fs.promises.readFile('/proc/self/mountinfo', 'utf8').then(mi => {
      if (!mountinfoHas(mi, mnt)) {
        clearInterval(watch)
        mountLog('%s is no longer mounted', mnt)
        onClosed()
      }
    }, () => {})
  }, 200)

  return {
    mountpoint: mnt,
    union,
    closed,
    unmount() {
      unmounting ??= fuse.unmountAsync().then(() => {
        clearInterval(watch)
        onClosed()
      })
      return unmounting
    },
  }
}

/**
 * fusermount always mounts nosuid,nodev; kernel overlayfs does not, and setuid programs and
 * device nodes in an image must work. As root, take them off unless the user asked for them.
 * mount(8) runs as a child: it stats the mount point, which this process must answer.
 */
async function setMountFlags(o: MountOptions, mnt: string): Promise<void> {
  if (!isRealRoot() || (o.nosuid && o.nodev)) return
  const flags = ['remount', 'bind', o.nosuid ? 'nosuid' : 'suid', o.nodev ? 'nodev' : 'dev']
  await new Promise<void>((resolve, reject) =>
    execFile('mount', ['-o', flags.join(','), mnt], err => (err ? reject(new MountError(`cannot set ${flags.slice(2).join(',')} on '${mnt}': ${err.message.trim()}`)) : resolve())))
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

/** Root of the initial user namespace (not root in a container's user namespace). */
export function isRealRoot(): boolean {
  if (process.getuid?.() !== 0) return false
  try {
    return /^\s*0\s+0\s+4294967295\s*$/.test(fs.readFileSync('/proc/self/uid_map', 'utf8'))
  } catch {
    return false
  }
}

function mountinfoHas(mi: string, mnt: string): boolean {
  return parseMountinfo(mi).some(m => m.point === mnt && m.fstype === 'fuse.layerfs')
}
