// Deterministic descriptions of a directory tree: snapshotTree() to compare a layerfs mount
// with a kernel overlay mount, hashTree() to prove a layer's bytes did not change.
// Reads only (async fs, so a hung mount times out instead of freezing the test process).
import { createHash } from 'node:crypto'
import { lstat, readdir, readFile, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { BigIntStats } from 'node:fs'
import { run } from './run.js'

export type EntryType = 'file' | 'dir' | 'symlink' | 'chardev' | 'blockdev' | 'fifo' | 'socket' | 'error'

export interface Entry {
  /** 'error': the walk could not read this object; `error` says why. */
  type: EntryType
  error?: string
  /** Permission bits (mode & 0o7777) in octal. */
  mode: string
  uid: number
  gid: number
  /** Files, symlinks, devices: st_size. Directories only with opts.dirSize. */
  size?: number
  sha256?: string
  /** Symlink target. */
  target?: string
  /** Devices: "major:minor". A whiteout is a chardev "0:0". */
  rdev?: string
  /** Non-directories: st_nlink (directories only with opts.dirNlink). */
  nlink?: number
  /** Non-directories with nlink > 1: the first path (in sorted order) sharing its inode in this tree. */
  hardlinkOf?: string
  /** Extended attributes, values in hex ("" for an empty value). */
  xattrs?: Record<string, string>
  /** Nanoseconds since the epoch, as a decimal string (opts.mtime / opts.identity). */
  mtime?: string
  ctime?: string
  ino?: string
  blocks?: number
}

/** Path relative to the root ('.' is the root itself) -> entry, keys in sorted order. */
export type Snapshot = Record<string, Entry>

export interface SnapshotOptions {
  /** Which xattrs to record: 'all' (what listxattr shows to root), 'user' (user.* only), 'none'. Default 'all'. */
  xattrs?: 'all' | 'user' | 'none'
  /** Leave out xattrs whose names match. */
  dropXattrs?: RegExp
  /** Record mtime (ns). Default false. */
  mtime?: boolean
  /** With mtime: leave it out for these paths (e.g. /^\.$/ for a dir the test writes into). */
  ignoreMtime?: readonly RegExp[]
  /**
   * Leave out these paths and everything below them. A RegExp is tested against the relative
   * path ('dir/file', no leading './'); a function gets the path and the entry.
   */
  ignore?: ReadonlyArray<RegExp | ((rel: string, e: Entry) => boolean)>
  /** Keep these entries but drop their size and sha256 (content that legitimately differs). */
  ignoreContent?: readonly RegExp[]
  /** Record directories' st_nlink. Default false: the kernel reports 1 for merged dirs. */
  dirNlink?: boolean
  /** Record directories' st_size. Default false: it is the host fs's business. */
  dirSize?: boolean
  /** Record st_blocks of non-directories. Default false. */
  blocks?: boolean
  /** Record ino, ctime and mtime: identity of the very same objects (for before/after on one dir). */
  identity?: boolean
}

const typeOf = (st: BigIntStats): EntryType =>
  st.isFile() ? 'file'
  : st.isDirectory() ? 'dir'
  : st.isSymbolicLink() ? 'symlink'
  : st.isCharacterDevice() ? 'chardev'
  : st.isBlockDevice() ? 'blockdev'
  : st.isFIFO() ? 'fifo'
  : 'socket'

const major = (dev: bigint): bigint => ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn)
const minor = (dev: bigint): bigint => (dev & 0xffn) | ((dev >> 12n) & ~0xffn)

/** Walks `root` (not following symlinks) and describes every object under it. */
export async function snapshotTree(root: string, opts: SnapshotOptions = {}): Promise<Snapshot> {
  const ignore = opts.ignore ?? []
  const ignored = (rel: string, e: Entry): boolean =>
    ignore.some(p => (p instanceof RegExp ? p.test(rel) : p(rel, e)))
  const entries = new Map<string, Entry>()
  const inodes = new Map<string, string[]>()

  const visit = async (rel: string): Promise<void> => {
    const abs = rel === '.' ? root : join(root, rel)
    let st: BigIntStats
    try {
      st = await lstat(abs, { bigint: true })
    } catch (er) {
      if (rel === '.') throw er
      entries.set(rel, { type: 'error', error: `lstat: ${(er as NodeJS.ErrnoException).code}`, mode: '0', uid: -1, gid: -1 })
      return
    }
    const type = typeOf(st)
    const e: Entry = { type, mode: (Number(st.mode) & 0o7777).toString(8), uid: Number(st.uid), gid: Number(st.gid) }
    if (type !== 'dir' || opts.dirSize) e.size = Number(st.size)
    if (type !== 'dir' || opts.dirNlink) e.nlink = Number(st.nlink)
    if (type === 'symlink') e.target = await readlink(abs)
    if (type === 'chardev' || type === 'blockdev') e.rdev = `${major(st.rdev)}:${minor(st.rdev)}`
    if (opts.blocks && type !== 'dir') e.blocks = Number(st.blocks)
    if (opts.identity || (opts.mtime && !opts.ignoreMtime?.some(r => r.test(rel)))) e.mtime = st.mtimeNs.toString()
    if (opts.identity) {
      e.ctime = st.ctimeNs.toString()
      e.ino = st.ino.toString()
    }
    if (rel !== '.' && ignored(rel, e)) return
    if (type === 'file' && !opts.ignoreContent?.some(r => r.test(rel))) {
      try {
        e.sha256 = createHash('sha256').update(await readFile(abs)).digest('hex')
      } catch (er) {
        e.sha256 = `read error ${(er as NodeJS.ErrnoException).code}`
      }
    } else if (type === 'file') {
      delete e.size
    }
    if (type !== 'dir' && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`
      inodes.set(key, [...(inodes.get(key) ?? []), rel])
      ;(e as Entry & { _key?: string })._key = key
    }
    entries.set(rel, e)
    if (type === 'dir') {
      let names: string[]
      try {
        names = (await readdir(abs)).sort()
      } catch (er) {
        e.error = `readdir: ${(er as NodeJS.ErrnoException).code}`
        return
      }
      for (const name of names) await visit(rel === '.' ? name : `${rel}/${name}`)
    }
  }
  await visit('.')

  if (opts.xattrs !== 'none') {
    for (const [rel, attrs] of Object.entries(await readXattrs(root, opts.xattrs ?? 'all'))) {
      if (opts.dropXattrs) {
        for (const k of Object.keys(attrs)) if (opts.dropXattrs.test(k)) delete attrs[k]
        if (!Object.keys(attrs).length) continue
      }
      const e = entries.get(rel)
      if (e) e.xattrs = attrs
      else if (rel === '!getfattr') entries.set(rel, { type: 'error', error: Object.values(attrs).join('\n'), mode: '0', uid: -1, gid: -1 })
    }
  }

  const out: Snapshot = {}
  for (const rel of [...entries.keys()].sort()) {
    const e = entries.get(rel)!
    const key = (e as Entry & { _key?: string })._key
    if (key !== undefined) {
      delete (e as Entry & { _key?: string })._key
      const group = inodes.get(key)!.sort()
      if (group.length > 1) e.hardlinkOf = group[0]
    }
    out[rel] = e
  }
  return out
}

/**
 * All xattrs under root via one `getfattr -R` (it lists what listxattr gives root: user.,
 * trusted., security.). Errors getfattr reports become a '!getfattr' pseudo-entry so that a
 * comparison shows them instead of hiding them.
 */
export async function readXattrs(root: string, which: 'all' | 'user'): Promise<Record<string, Record<string, string>>> {
  const r = await run('getfattr', ['-R', '-h', '-d', '-m', which === 'all' ? '-' : '^user\\.', '-e', 'hex', '--absolute-names', root])
  const out: Record<string, Record<string, string>> = {}
  let current: Record<string, string> | undefined
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      const abs = unescapeOctal(line.slice(8))
      const rel = abs === root ? '.' : abs.startsWith(root + '/') ? abs.slice(root.length + 1) : abs
      current = out[rel] = {}
    } else if (current && line.includes('=')) {
      const i = line.indexOf('=')
      let v = line.slice(i + 1)
      if (v === '""' || v === '0x') v = ''
      else if (v.startsWith('0x')) v = v.slice(2)
      current[unescapeOctal(line.slice(0, i))] = v
    }
  }
  for (const rel of Object.keys(out)) {
    const attrs = out[rel]!
    if (which === 'all') delete attrs['security.selinux']
    if (Object.keys(attrs).length === 0) delete out[rel]
  }
  const errors = r.stderr.split('\n').filter(l => l.trim() && !/Removing leading/.test(l))
  if (errors.length) out['!getfattr'] = Object.fromEntries(errors.map((l, i) => [String(i), l.split(root).join('$ROOT')]))
  return out
}

const unescapeOctal = (s: string): string =>
  Buffer.from(s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), 'latin1').toString('utf8')

/**
 * A digest of everything about a tree except atime: content, types, modes, owners, device
 * numbers (whiteouts), all xattrs (trusted.overlay.* too), hard links, and by default the
 * identity of each object (inode, mtime, ctime), so that "the lower layer is untouched" means it.
 * Returns the snapshot too, so that a mismatch can be shown as a diff.
 */
export async function hashTree(dir: string, opts: { identity?: boolean } = {}): Promise<{ hash: string; snapshot: Snapshot }> {
  const identity = opts.identity ?? true
  const snapshot = await snapshotTree(dir, { xattrs: 'all', identity, mtime: true, dirNlink: true, dirSize: identity })
  const hash = createHash('sha256').update(JSON.stringify(snapshot)).digest('hex')
  return { hash, snapshot }
}

/** A short, readable list of the differences between two snapshots (for messages; t.same shows a full diff). */
export function diffSnapshots(a: Snapshot, b: Snapshot, labels: [string, string] = ['a', 'b']): string[] {
  const out: string[] = []
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const x = a[k]
    const y = b[k]
    if (!x) out.push(`${k}: only in ${labels[1]} (${y!.type})`)
    else if (!y) out.push(`${k}: only in ${labels[0]} (${x.type})`)
    else {
      for (const f of new Set([...Object.keys(x), ...Object.keys(y)]) as Set<keyof Entry>) {
        const vx = JSON.stringify(x[f])
        const vy = JSON.stringify(y[f])
        if (vx !== vy) out.push(`${k}: ${f} ${labels[0]}=${vx} ${labels[1]}=${vy}`)
      }
    }
  }
  return out
}
