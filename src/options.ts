// MountOptions: the -o strings layerfs takes, parsed and validated: kernel overlayfs's
// ("lowerdir=a:b,upperdir=u,workdir=w,..."), fuse-overlayfs's (what containers/storage passes a
// mount_program: uidmapping=, squash_to_*, volatile, ...) and mount(8)/mount.fuse's extras.
// Every option is implemented, or accepted with a meaning written in ACCEPTED below, or
// refused with one line. No I/O here: checking the directories on disk is layout.ts's job.
import { type IdMapping, type IdMaps, parseIdMappings } from './union/id-map.js'

/** What a user asked for, in the kernel's words. */
export interface MountOptions {
  /** Lower layer directories, top-most first (absolute). */
  lowerdirs: string[]
  /** The writable layer (absolute); absent: a read-only union. */
  upperdir: string | undefined
  /** The workdir (absolute), on the upper's filesystem; required with upperdir. */
  workdir: string | undefined
  /** Mounted read-only (`ro`), even with an upper layer. */
  readOnly: boolean
  /** The FUSE request trace on stderr (`-o debug`). */
  fuseDebug: boolean
  /** `nosuid` / `nodev` asked for; otherwise setuid files and device nodes work, as on overlayfs. */
  nosuid: boolean
  nodev: boolean
  /**
   * `volume=HOSTDIR:PATH` (repeatable): the host directory shown at PATH inside the mount,
   * bypassing the layers (no copy-up, no whiteouts; its data is not the container's).
   */
  volumes: Volume[]
  /** What /proc/mounts shows as the mount's source (mount.fuse's SOURCE, `fsname=`). */
  source: string
  /**
   * `volatile` (the kernel's): copy-ups are not fsync'd, and the workdir is marked so that
   * no later mount takes it until the user removes `WORKDIR/work/incompat/volatile`.
   */
  volatile: boolean
  /** `fsync=0` (fuse-overlayfs's): copy-ups are not fsync'd; no mark. */
  noFsync: boolean
  /** `userxattr`: the overlay's xattrs are user.overlay.* (else chosen at mount). */
  userxattr: boolean
  /** `uidmapping=`, `gidmapping=`, `squash_to_*`: owners between the layers and the mount. */
  ids: IdMaps
  /** `static_nlink`: every directory shows st_nlink 1. */
  staticNlink: boolean
  /** `noxattrs=1`: no xattr call through the mount (ENOTSUP), as fuse-overlayfs. */
  noXattrs: boolean
  /** `ino32_t`: st_ino and d_ino cut to 32 bits. */
  ino32: boolean
  /** `remount` (from mount(8) through mount.fuse): change the options of a layerfs mount. */
  remount: boolean
  /**
   * The mount flags given, as given (ro/rw, nosuid/suid, nodev/dev, noexec/exec, the atime
   * ones): what a remount changes, and nothing else.
   */
  mountFlags: string[]
  /**
   * `redirect_dir=`: renamed directories get redirects (on), or are refused with EXDEV and
   * redirects in the layers followed (follow) or refused (nofollow, EPERM), as the kernel's.
   * Undefined: on, or nofollow in the userxattr format (the kernel's rule there).
   */
  redirectDir: RedirectDir | undefined
  /**
   * `metacopy=on` (the kernel's, default off): chmod, chown, utimes, xattr changes, link and
   * rename copy up a lower file's metadata only, marked `overlay.metacopy`; its data follows
   * at the first open for write or truncate. Needs redirect_dir=on and trusted.overlay.* xattrs.
   */
  metacopy: boolean
}

export type RedirectDir = 'on' | 'follow' | 'nofollow'

/** A host directory mapped straight to a union path. */
export interface Volume {
  /** The host directory (absolute). */
  hostdir: string
  /** Where it shows in the mount (absolute, normalized, not '/'). */
  path: string
}

export class OptionError extends Error {
  readonly code = 'ERR_LAYERFS_OPTION'
}

/** An option accepted with no effect: whether it takes a value, and what it means here. */
export interface Accepted {
  readonly value: boolean
  readonly meaning: string
}

const MOUNT_FLAG: Accepted = { value: false, meaning: 'a mount(8)/fstab flag: the kernel applies it, or it means nothing to a FUSE union' }
const SELINUX: Accepted = { value: true, meaning: 'an SELinux label for the mount: accepted, not applied (layerfs sets no labels)' }

/**
 * Options accepted with no effect. mount(8), fstab and mount.fuse add the first group; the
 * others are fuse-overlayfs's or kernel overlayfs's and ask for what layerfs already does, or
 * for what it does otherwise (said here, and in README's option table).
 */
export const ACCEPTED: ReadonlyMap<string, Accepted> = new Map([
  ...['rw', 'exec', 'noexec', 'atime', 'noatime', 'relatime', 'norelatime', 'strictatime', 'nostrictatime',
    'diratime', 'nodiratime', 'lazytime', 'nolazytime', 'sync', 'async', 'dirsync', 'auto', 'noauto', 'user',
    'nouser', 'users', 'owner', 'group', 'defaults', '_netdev', 'nofail', 'silent', 'loud', 'iversion',
    'noiversion', 'mand', 'nomand'].map(o => [o, MOUNT_FLAG] as const),
  ['comment', { value: true, meaning: 'an fstab comment' }],
  ['allow_other', { value: false, meaning: 'always on as root: other users see the mount, as on overlayfs' }],
  ['default_permissions', { value: false, meaning: 'always on: the kernel checks permissions from the modes shown' }],
  ['noacl', { value: false, meaning: 'what layerfs always does: ACL xattrs are kept and copied up, permissions are checked on the modes' }],
  ['context', SELINUX], ['fscontext', SELINUX], ['defcontext', SELINUX], ['rootcontext', SELINUX],
  ['timeout', { value: true, meaning: "fuse-overlayfs's kernel cache timeout: layerfs lets the kernel cache and invalidates exactly what changes" }],
  ['threaded', { value: true, meaning: "fuse-overlayfs's threads: layerfs serves requests from one event loop, long copy-ups off it" }],
  ['fast_ino', { value: true, meaning: "fuse-overlayfs's inode shortcut: layerfs's inode numbers are the kernel overlayfs's" }],
  ['writeback', { value: true, meaning: "fuse-overlayfs's writeback cache switch: layerfs does not ask the kernel for it" }],
  ['xino', { value: true, meaning: "the kernel's: layerfs always puts the layer's filesystem in the high bits of st_ino (as xino=auto)" }],
  ['uuid', { value: true, meaning: "the kernel's: origin records always carry the lower filesystem's uuid" }],
])

/** Accepted options whose value must still be one the kernel knows (it answers EINVAL to others). */
const VALUES: ReadonlyMap<string, readonly string[]> = new Map([
  ['xino', ['on', 'off', 'auto']],
  ['uuid', ['on', 'off', 'null', 'auto']],
])

/**
 * Kernel overlayfs options whose value layerfs has fixed: accepted when they ask for what
 * layerfs does, refused otherwise (a user must not believe they got something else).
 */
const FIXED: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['index', new Set(['off'])],
  ['nfs_export', new Set(['off'])],
  ['verity', new Set(['off'])],
  ['override_creds', new Set(['on'])],
  ['xattr_permissions', new Set(['0'])],
  ['noxattrs', new Set(['0', '1'])],
  ['fsync', new Set(['0', '1'])],
])

/** The flags a remount changes: the kernel's per-mount flags (mountinfo's field 6). */
const MOUNT_FLAGS = new Set(['ro', 'rw', 'suid', 'nosuid', 'dev', 'nodev', 'exec', 'noexec', 'atime', 'noatime',
  'relatime', 'norelatime', 'strictatime', 'nodiratime', 'diratime'])

/**
 * Split on unescaped `sep`; a backslash escapes the next character (kept for a later split).
 * With `quotes`, a `sep` between double quotes does not split either: an SELinux label has a
 * comma between its categories (`context="system_u:object_r:container_file_t:s0:c1,c2"`, as
 * containers/storage passes it), as the kernel's and fuse-overlayfs's option parsers know.
 */
function splitEscaped(s: string, sep: string, quotes = false): string[] {
  const out: string[] = []
  let cur = ''
  let quoted = false
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1]!
      i++
    } else if (quotes && c === '"') {
      quoted = !quoted
      cur += c
    } else if (c === sep && !quoted) {
      out.push(cur)
      cur = ''
    } else cur += c
  }
  out.push(cur)
  return out
}

const unescape = (s: string): string => s.replace(/\\(.)/g, '$1')

/** Absolute form of a path given relative to `cwd`, without trailing slashes. */
function absolute(p: string, cwd: string): string {
  const abs = p.startsWith('/') ? p : cwd.replace(/\/+$/, '') + '/' + p
  const parts: string[] = []
  for (const part of abs.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') parts.pop()
    else parts.push(part)
  }
  return '/' + parts.join('/')
}

function number(key: string, val: string | undefined): number {
  if (val === undefined || !/^\d+$/.test(val) || Number(val) > 0xfffffffe) throw new OptionError(`option '${key}' needs a number (got '${val ?? ''}')`)
  return Number(val)
}

/**
 * The mount flags of a remount (`remount` among the options), in order; undefined when the
 * options do not ask for a remount. The other options are not looked at: as the kernel's
 * overlayfs on a remount through mount(2) (the old API, what mount(8) uses), which ignores
 * them, well formed or not (ovl_parse_param on FS_CONTEXT_FOR_RECONFIGURE).
 */
export function remountFlags(optionStrings: readonly string[]): string[] | undefined {
  const opts = optionStrings.flatMap(str => splitEscaped(str, ',', true))
  if (!opts.includes('remount')) return undefined
  return opts.filter(opt => MOUNT_FLAGS.has(opt))
}

/** Parse every `-o` string given (in order; a later value wins) into MountOptions. */
export function parseMountOptions(optionStrings: readonly string[], cwd = process.cwd()): MountOptions {
  let lowerdir: string | undefined
  const lowerAdded: string[] = []
  let upperdir: string | undefined
  let workdir: string | undefined
  const o: Omit<MountOptions, 'lowerdirs' | 'upperdir' | 'workdir'> = {
    readOnly: false, fuseDebug: false, nosuid: false, nodev: false, volumes: [], source: 'layerfs',
    volatile: false, noFsync: false, userxattr: false, ids: {}, staticNlink: false, noXattrs: false, ino32: false,
    remount: false, redirectDir: undefined, mountFlags: [], metacopy: false,
  }
  let uidmap: IdMapping[] | undefined
  let gidmap: IdMapping[] | undefined
  for (const str of optionStrings) {
    for (const opt of splitEscaped(str, ',', true)) {
      if (opt === '') continue
      const eq = opt.indexOf('=')
      const key = eq < 0 ? opt : opt.slice(0, eq)
      const val = eq < 0 ? undefined : opt.slice(eq + 1)
      const flag = val === undefined
      if (flag && MOUNT_FLAGS.has(key)) o.mountFlags.push(key)
      if (key === 'lowerdir' || key === 'upperdir' || key === 'workdir' || key === 'lowerdir+') {
        if (!val) throw new OptionError(`option '${key}' needs a directory`)
        // As the kernel: a lowerdir= replaces the lower layers named before it, lowerdir+= values
        // are taken as given (no escapes: they are one directory each), and cannot follow a
        // lowerdir=.
        if (key === 'lowerdir') {
          lowerdir = val
          lowerAdded.length = 0
        } else if (key === 'lowerdir+') {
          if (lowerdir !== undefined) throw new OptionError("option 'lowerdir+' cannot follow 'lowerdir'")
          lowerAdded.push(val)
        }
        else if (key === 'upperdir') upperdir = unescape(val)
        else workdir = unescape(val)
      } else if (key === 'volume') o.volumes.push(parseVolume(val, cwd))
      else if (key === 'fsname') {
        if (!val) throw new OptionError("option 'fsname' needs a name")
        o.source = unescape(val)
      } else if ((key === 'ro' || key === 'rw') && flag) o.readOnly = key === 'ro'
      else if (key === 'debug' && flag) o.fuseDebug = true
      else if ((key === 'nosuid' || key === 'suid') && flag) o.nosuid = key === 'nosuid'
      else if ((key === 'nodev' || key === 'dev') && flag) o.nodev = key === 'nodev'
      else if (key === 'remount' && flag) o.remount = true
      else if (key === 'redirect_dir' && (val === 'on' || val === 'follow' || val === 'nofollow' || val === 'off')) {
        // `off` is `follow` where the kernel is built with REDIRECT_ALWAYS_FOLLOW, as Debian's is.
        o.redirectDir = val === 'off' ? 'follow' : val
      }
      else if (key === 'metacopy' && (val === 'on' || val === 'off')) o.metacopy = val === 'on'
      else if (key === 'volatile' && flag) o.volatile = true
      else if (key === 'userxattr' && flag) o.userxattr = true
      else if (key === 'static_nlink' && flag) o.staticNlink = true
      else if (key === 'ino32_t' && flag) o.ino32 = true
      else if (key === 'uidmapping') uidmap = parseIdMappings(key, val)
      else if (key === 'gidmapping') gidmap = parseIdMappings(key, val)
      else if (key === 'squash_to_root' && flag) o.ids = { ...o.ids, squashToRoot: true }
      else if (key === 'squash_to_uid') o.ids = { ...o.ids, squashUid: number(key, val) }
      else if (key === 'squash_to_gid') o.ids = { ...o.ids, squashGid: number(key, val) }
      else if (VALUES.has(key) && !flag) {
        if (!VALUES.get(key)!.includes(val)) throw new OptionError(`option '${opt}' has no such value (${VALUES.get(key)!.join(', ')})`)
      } else if (key.startsWith('x-') || ACCEPTED.get(key)?.value === !flag) continue
      else if (FIXED.has(key)) {
        if (val === undefined || !FIXED.get(key)!.has(val)) {
          throw new OptionError(`option '${opt}' is not supported (layerfs runs with ${key}=${[...FIXED.get(key)!].join(' or ')})`)
        }
        if (key === 'noxattrs') o.noXattrs = val === '1'
        if (key === 'fsync') o.noFsync = val === '0'
      } else throw new OptionError(`unknown option '${opt}'`)
    }
  }
  if (uidmap) o.ids = { ...o.ids, uidmap }
  if (gidmap) o.ids = { ...o.ids, gidmap }
  // A remount changes the mount's flags; the layers stay as they were (cli.ts).
  if (lowerdir === undefined && lowerAdded.length === 0 && !o.remount) throw new OptionError("missing option 'lowerdir'")
  const lowerdirs = [
    ...(lowerdir === undefined ? [] : splitEscaped(lowerdir, ':').map(d => {
      if (d === '') throw new OptionError(`empty directory in 'lowerdir=${lowerdir}'`)
      return unescape(d)
    })),
    ...lowerAdded,
  ].map(d => absolute(d, cwd))
  const volumes = o.volumes
  for (let i = 0; i < volumes.length; i++) {
    for (let j = i + 1; j < volumes.length; j++) {
      const a = volumes[i]!.path
      const b = volumes[j]!.path
      if (a === b || a.startsWith(b + '/') || b.startsWith(a + '/')) throw new OptionError(`volume paths '${a}' and '${b}' overlap`)
    }
  }
  if (volumes.length > 0 && workdir === undefined) {
    throw new OptionError("option 'volume' needs 'upperdir' and 'workdir' (volumes keep their temp files in the workdir)")
  }
  if ((upperdir === undefined) !== (workdir === undefined)) {
    throw new OptionError(upperdir === undefined ? "option 'workdir' needs 'upperdir'" : "option 'upperdir' needs 'workdir'")
  }
  // As the kernel's ovl_fs_params_verify: metacopy needs redirects (a renamed metacopy file
  // finds its data through one); without an upper layer `follow` is as good as `on`.
  if (o.metacopy && o.redirectDir !== undefined && o.redirectDir !== 'on' && !(upperdir === undefined && o.redirectDir === 'follow')) {
    throw new OptionError(`conflicting options: metacopy=on,redirect_dir=${o.redirectDir}`)
  }
  if (o.userxattr && o.redirectDir !== undefined && o.redirectDir !== 'nofollow') {
    throw new OptionError(`conflicting options: userxattr,redirect_dir=${o.redirectDir} (the kernel's userxattr format has no redirects)`)
  }
  // The kernel refuses metacopy in the userxattr format (ovl_fs_params_verify).
  if (o.userxattr && o.metacopy) throw new OptionError('conflicting options: userxattr,metacopy=on')
  if (o.volatile && upperdir === undefined) throw new OptionError("option 'volatile' needs 'upperdir' and 'workdir'")
  // libfuse takes the source as an option value: no separators, no blanks (fsname).
  if (/[\s,\\\0]/.test(o.source) || o.source.length > 255) throw new OptionError(`source '${o.source}' may not hold blanks, commas or backslashes`)
  return {
    ...o,
    lowerdirs,
    upperdir: upperdir === undefined ? undefined : absolute(upperdir, cwd),
    workdir: workdir === undefined ? undefined : absolute(workdir, cwd),
  }
}

function parseVolume(val: string | undefined, cwd: string): Volume {
  const parts = val === undefined ? [] : splitEscaped(val, ':')
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    throw new OptionError(`option 'volume' needs HOSTDIR:PATH (got '${val ?? ''}')`)
  }
  const path = unescape(parts[1]!)
  if (!path.startsWith('/')) throw new OptionError(`volume path '${path}' must be absolute (a path inside the mount)`)
  const norm = absolute(path, '/')
  if (norm === '/') throw new OptionError("a volume cannot be mounted at '/'")
  return { hostdir: absolute(unescape(parts[0]!), cwd), path: norm }
}

/** The -o string that gives these options back (the daemon gets its options this way). */
export function formatMountOptions(o: MountOptions): string {
  const esc = (p: string): string => p.replace(/([\\,:])/g, '\\$1')
  const parts = [`lowerdir=${o.lowerdirs.map(esc).join(':')}`]
  if (o.upperdir !== undefined) parts.push(`upperdir=${esc(o.upperdir)}`, `workdir=${esc(o.workdir!)}`)
  if (o.source !== 'layerfs') parts.push(`fsname=${esc(o.source)}`)
  // ro, nosuid, nodev are among them (readOnly, nosuid, nodev come from them).
  parts.push(...o.mountFlags)
  if (o.fuseDebug) parts.push('debug')
  if (o.remount) parts.push('remount')
  if (o.redirectDir !== undefined) parts.push(`redirect_dir=${o.redirectDir}`)
  if (o.metacopy) parts.push('metacopy=on')
  if (o.volatile) parts.push('volatile')
  if (o.noFsync) parts.push('fsync=0')
  if (o.userxattr) parts.push('userxattr')
  if (o.staticNlink) parts.push('static_nlink')
  if (o.noXattrs) parts.push('noxattrs=1')
  if (o.ino32) parts.push('ino32_t')
  const map = (m: readonly IdMapping[]): string => m.map(x => `${x.layer}:${x.mount}:${x.count}`).join(':')
  if (o.ids.uidmap) parts.push(`uidmapping=${map(o.ids.uidmap)}`)
  if (o.ids.gidmap) parts.push(`gidmapping=${map(o.ids.gidmap)}`)
  if (o.ids.squashToRoot) parts.push('squash_to_root')
  if (o.ids.squashUid !== undefined) parts.push(`squash_to_uid=${o.ids.squashUid}`)
  if (o.ids.squashGid !== undefined) parts.push(`squash_to_gid=${o.ids.squashGid}`)
  for (const v of o.volumes) parts.push(`volume=${esc(v.hostdir)}:${esc(v.path)}`)
  return parts.join(',')
}
