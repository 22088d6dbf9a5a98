// MountOptions: the -o string of kernel overlayfs ("lowerdir=a:b,upperdir=u,workdir=w") and
// the mount(8)/mount.fuse extras, parsed and validated. No I/O here: checking the directories
// on disk is mount.ts's job.

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
  /** libfuse's request trace on stderr (`-o debug`). */
  fuseDebug: boolean
  /** `nosuid` / `nodev` asked for; otherwise setuid files and device nodes work, as on overlayfs. */
  nosuid: boolean
  nodev: boolean
  /**
   * `volume=HOSTDIR:PATH` (repeatable): the host directory shown at PATH inside the mount,
   * bypassing the layers (no copy-up, no whiteouts; its data is not the container's).
   */
  volumes: Volume[]
}

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

/** mount(8), fstab and mount.fuse flags that mean nothing to a FUSE union: accepted, ignored. */
const IGNORED = new Set([
  'rw', 'exec', 'noexec', 'atime', 'noatime', 'relatime',
  'norelatime', 'strictatime', 'nostrictatime', 'diratime', 'nodiratime', 'lazytime', 'nolazytime',
  'sync', 'async', 'dirsync', 'auto', 'noauto', 'user', 'nouser', 'users', 'owner', 'group',
  'defaults', '_netdev', 'nofail', 'silent', 'loud', 'iversion', 'noiversion', 'mand', 'nomand',
  'allow_other', 'default_permissions', 'comment',
])

/**
 * Overlayfs options whose value layerfs already has fixed: accepted when they ask for what
 * layerfs does, refused otherwise (a user must not believe they got something else).
 */
const FIXED: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['redirect_dir', new Set(['on', 'follow'])],
  ['index', new Set(['off'])],
  ['metacopy', new Set(['off'])],
  ['xino', new Set(['off', 'auto', 'on'])],
  ['nfs_export', new Set(['off'])],
  ['uuid', new Set(['on', 'off', 'null', 'auto'])],
])

/** Split on unescaped `sep`; a backslash escapes the next character (kept for a later split). */
function splitEscaped(s: string, sep: string): string[] {
  const out: string[] = []
  let cur = ''
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1]!
      i++
    } else if (c === sep) {
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

/** Parse every `-o` string given (in order; a later value wins) into MountOptions. */
export function parseMountOptions(optionStrings: readonly string[], cwd = process.cwd()): MountOptions {
  let lowerdir: string | undefined
  let upperdir: string | undefined
  let workdir: string | undefined
  let readOnly = false
  let fuseDebug = false
  let nosuid = false
  let nodev = false
  const volumes: Volume[] = []
  for (const str of optionStrings) {
    for (const opt of splitEscaped(str, ',')) {
      if (opt === '') continue
      const eq = opt.indexOf('=')
      const key = eq < 0 ? opt : opt.slice(0, eq)
      const val = eq < 0 ? undefined : opt.slice(eq + 1)
      if (key === 'lowerdir' || key === 'upperdir' || key === 'workdir') {
        if (!val) throw new OptionError(`option '${key}' needs a directory`)
        if (key === 'lowerdir') lowerdir = val
        else if (key === 'upperdir') upperdir = unescape(val)
        else workdir = unescape(val)
      } else if (key === 'volume') {
        volumes.push(parseVolume(val, cwd))
      } else if (key === 'ro' && val === undefined) readOnly = true
      else if (key === 'debug' && val === undefined) fuseDebug = true
      else if ((key === 'nosuid' || key === 'suid') && val === undefined) nosuid = key === 'nosuid'
      else if ((key === 'nodev' || key === 'dev') && val === undefined) nodev = key === 'nodev'
      else if (IGNORED.has(key) || key.startsWith('x-')) continue
      else if (FIXED.has(key)) {
        if (val === undefined || !FIXED.get(key)!.has(val)) {
          throw new OptionError(`option '${opt}' is not supported (layerfs always runs with ${key}=${[...FIXED.get(key)!][0]})`)
        }
      } else throw new OptionError(`unknown option '${opt}'`)
    }
  }
  if (lowerdir === undefined) throw new OptionError("missing option 'lowerdir'")
  const lowerdirs = splitEscaped(lowerdir, ':').map(d => {
    if (d === '') throw new OptionError(`empty directory in 'lowerdir=${lowerdir}'`)
    return absolute(unescape(d), cwd)
  })
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
  return {
    lowerdirs,
    upperdir: upperdir === undefined ? undefined : absolute(upperdir, cwd),
    workdir: workdir === undefined ? undefined : absolute(workdir, cwd),
    readOnly,
    fuseDebug,
    nosuid,
    nodev,
    volumes,
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
  if (o.readOnly) parts.push('ro')
  if (o.fuseDebug) parts.push('debug')
  if (o.nosuid) parts.push('nosuid')
  if (o.nodev) parts.push('nodev')
  for (const v of o.volumes) parts.push(`volume=${esc(v.hostdir)}:${esc(v.path)}`)
  return parts.join(',')
}
