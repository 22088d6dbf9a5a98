// What is checked on disk before anything is mounted, and the mount table: light on purpose
// (no FUSE, no native addon), so that the command that only starts a daemon loads little.
// Nothing here changes anything on disk.
import fs from 'node:fs'
import { WORK_SUBDIR, volatileMark } from './layers/format.js'
import type { MountOptions } from './options.js'

export class MountError extends Error {
  readonly code = 'ERR_LAYERFS_MOUNT'
}

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
export function parseMountinfo(text: string): { point: string; fstype: string; flags: string[] }[] {
  const out: { point: string; fstype: string; flags: string[] }[] = []
  for (const line of text.split('\n')) {
    const f = line.split(' ')
    const dash = f.indexOf('-', 6)
    if (f[4] === undefined || dash < 0) continue
    const point = f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
    // The mount's own flags (ro/rw, nosuid, nodev, noexec, atime), field 6.
    out.push({ point, fstype: f[dash + 1] ?? '', flags: (f[5] ?? '').split(',').filter(Boolean) })
  }
  return out
}

/** Per-mount flags that exclude each other: giving one takes the others off. */
const FLAG_GROUPS: readonly (readonly string[])[] = [
  ['ro', 'rw'], ['suid', 'nosuid'], ['dev', 'nodev'], ['exec', 'noexec'],
  ['atime', 'noatime', 'relatime', 'norelatime', 'strictatime'], ['diratime', 'nodiratime'],
]

/** `flags` with each of `given` put in, in place of what it excludes (a remount's result). */
export function mergeMountFlags(flags: readonly string[], given: readonly string[]): string[] {
  let out = [...flags]
  for (const g of given) {
    const group = FLAG_GROUPS.find(grp => grp.includes(g)) ?? [g]
    out = [...out.filter(f => !group.includes(f)), g]
  }
  return out
}

/**
 * The flags a remount gives a mount, as the kernel's remount does for overlayfs: read-only,
 * nosuid, nodev and noexec are what the remount names (each off unless named: mount(8)
 * hands the helper the whole state, the current flags merged in, or only the user's when
 * given a type and source); the atime flags stay unless it names one. Every group is
 * written out, so that the `mount -o remount` that applies them changes what it must (it
 * merges the current flags into what it is given).
 */
export function remountedFlags(flags: readonly string[], given: readonly string[]): string[] {
  const kept = flags.filter(f => FLAG_GROUPS.slice(4).some(grp => grp.includes(f)))
  return mergeMountFlags(['rw', 'suid', 'dev', 'exec', ...kept], given)
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

/** Root of the initial user namespace (not root in a container's user namespace). */
export function isRealRoot(): boolean {
  if (process.getuid?.() !== 0) return false
  try {
    return /^\s*0\s+0\s+4294967295\s*$/.test(fs.readFileSync('/proc/self/uid_map', 'utf8'))
  } catch {
    return false
  }
}

