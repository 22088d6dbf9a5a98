// Random operation sequences from a seed, over a small name space so that operations collide:
// a handful of names, at most a few levels deep, existing paths picked most of the time (from a
// rough model of the tree, updated as if each op did what it most likely does). Every op is
// self-contained (no fds carried between ops), so any sub-list is a valid op list: that is what
// lets the fuzzer drop ops while minimizing.
import type { Op } from '../../helpers/syscalls.js'
import { feature, type Features } from './features.js'
import { mergedView, type Kind, type Profile } from './fixture.js'
import { Rng } from './prng.js'

export const STAT_FIELDS = ['type', 'mode', 'uid', 'gid', 'size', 'nlink', 'ino', 'mtime_ns']
/** Reads of more than this many bytes come back as {len, sha256}. */
export const DIGEST_OVER = 256

const NAMES = ['a', 'b', 'c', 'x', 'y', 'z', 'd1', 'd2', 'o', 'w', 'dw', 'e', 'f2d', 'h1', 'h2', 'l', 'n', 'q', 'v', 'k', 'sp']
/** Symlink targets: relative, at most one "..", so nothing resolves outside the case's own dir. */
const TARGETS = ['a', 'b', 'x', 'd1', 'd1/x', 'd1/d2', '../a', '../d1', 'nonexistent', 'l', 'self', 'o/v', 'e']
const MODES = [0o644, 0o600, 0o755, 0o700, 0o444, 0o4755, 0o2755, 0o1777, 0o000, 0o640]
const IDS = [0, 1000, 1001]
const XATTRS = ['user.a', 'user.b', 'user.d', 'user.new', 'trusted.t', 'trusted.overlay.x', 'trusted.overlay.opaque']
const WRITE_FLAGS = ['O_WRONLY', 'O_RDWR', 'O_WRONLY|O_CREAT', 'O_RDWR|O_CREAT', 'O_WRONLY|O_TRUNC']
const OPEN_FLAGS = ['O_WRONLY', 'O_RDWR', 'O_WRONLY|O_APPEND', 'O_WRONLY|O_TRUNC', 'O_RDWR|O_TRUNC', 'O_RDONLY', 'O_RDONLY|O_TRUNC', 'O_WRONLY|O_CREAT|O_EXCL']
const OFFSETS = [0, 0, 1, 5, 13, 100, 4095, 4096, 5000, 65536, 70001, 1 << 20]
const LENGTHS = [0, 0, 1, 3, 10, 14, 4096, 10000, 70001, 1 << 20]
const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789'

const WEIGHTS = {
  create: 6, pwrite: 8, append: 5, truncate: 4, unlink: 6, mkdir: 5, rmdir: 4, renameFile: 7, renameDir: 5,
  symlink: 3, link: 4, chmod: 3, chown: 3, utimens: 4, setxattr: 4, removexattr: 3, openw: 5,
  read: 6, readdir: 6, stat: 9, readlink: 1, getxattr: 2, listxattr: 2, exchange: 3, fallocate: 2, tmpfile: 1,
  twofd: 4,
}

/**
 * The stacking mode's mix (stacking.ts): what stacking layers exposes. Directory renames
 * (within a dir, across dirs, onto empty dirs, back again; of lower, merged and already
 * renamed dirs), whole subtrees deleted and made again (opaque dirs over whiteouts), writes
 * and creates in moved dirs, hard links of lower files and across dirs; the rest, rarely.
 */
const STACK_WEIGHTS = {
  renameDir: 16, rmtree: 2, writeMoved: 8, linkLower: 4,
  create: 4, pwrite: 4, append: 2, truncate: 1, unlink: 5, mkdir: 5, rmdir: 3, renameFile: 5,
  symlink: 1, link: 2, chmod: 1, chown: 1, utimens: 1, setxattr: 1, removexattr: 1, openw: 1,
  read: 3, readdir: 5, stat: 5, readlink: 0, getxattr: 1, listxattr: 1, exchange: 2, fallocate: 0, tmpfile: 0,
  twofd: 1,
}
/** Names for the stacking mode: the fixture's directories' and files' names come back often. */
const STACK_NAMES = ['a', 'b', 'x', 'y', 'd1', 'd2', 'e', 'o', 'w', 'dw', 'g', 'p', 's', 't', 'u', 'dir1', 'dir1x', 'empty1', 'sub', 'f1', 'g1', 'm', 'mm', 'h', 'k', 'q', 'v']

type ClassicKind = keyof typeof WEIGHTS

export class Generator {
  readonly rng: Rng
  /** The rough model: path -> kind. */
  readonly model: Map<string, Kind>
  private counter = 0
  /** Stacking: ops already decided (a subtree's removal), handed out one by one. */
  private readonly plan: Op[] = []
  /** Stacking: directories that were renamed (their current paths) -> where they first were. */
  private readonly moved = new Map<string, string>()

  private readonly modes: number[]
  private readonly dirModes: number[]

  /** The mix of ops: the profile's own by default; 'classic' ops over the stacking fixture too. */
  readonly mix: Profile

  constructor(readonly seed: number, features: Features = {}, readonly profile: Profile = 'classic', mix?: Profile) {
    this.mix = mix ?? profile
    this.rng = new Rng(seed)
    this.model = mergedView(features, profile)
    const setgid = feature(features, 'setgid')
    this.modes = MODES.filter(m => setgid || !(m & 0o2000))
    this.dirModes = [0o755, 0o755, 0o700, 0o777, 0o2775].filter(m => setgid || !(m & 0o2000))
  }

  /** The next n ops. */
  take(n: number): Op[] {
    return Array.from({ length: n }, () => this.next())
  }

  next(): Op {
    this.counter++
    if (this.mix === 'stacking') return this.nextStacking()
    return this.make(this.rng.weighted(WEIGHTS))
  }

  /** One op of a kind of the classic mix. */
  private make(kind: ClassicKind): Op {
    const r = this.rng
    switch (kind) {
      case 'create': {
        const path = r.chance(0.6) ? this.fresh() : this.any('file')
        const flags = r.pick(['O_WRONLY|O_CREAT', 'O_WRONLY|O_CREAT|O_EXCL', 'O_WRONLY|O_CREAT|O_TRUNC', 'O_RDWR|O_CREAT'])
        this.add(path, 'file')
        return { op: 'open', path, flags, mode: r.pick(this.modes) }
      }
      case 'pwrite': {
        const flags = r.pick(WRITE_FLAGS)
        const path = this.any('file')
        if (flags.includes('O_CREAT')) this.add(path, 'file')
        return { op: 'pwritefile', path, flags, offset: r.pick(OFFSETS), data: this.data() }
      }
      case 'append': {
        const path = this.any('file')
        return { op: 'pwritefile', path, flags: r.chance(0.8) ? 'O_WRONLY|O_APPEND' : 'O_WRONLY|O_APPEND|O_CREAT', data: this.data() }
      }
      case 'truncate':
        return { op: 'truncate', path: this.any('file'), length: r.pick(LENGTHS) }
      case 'unlink': {
        const path = this.any(r.chance(0.9) ? 'nondir' : undefined)
        if (this.model.get(path) !== 'dir') this.model.delete(path)
        return { op: 'unlink', path }
      }
      case 'mkdir': {
        const path = r.chance(0.8) ? this.fresh() : this.any()
        this.add(path, 'dir')
        return { op: 'mkdir', path, mode: r.pick(this.dirModes) }
      }
      case 'rmdir': {
        const path = this.any('dir')
        if (this.model.get(path) === 'dir' && !this.children(path).length) this.model.delete(path)
        return { op: 'rmdir', path }
      }
      case 'renameFile':
      case 'renameDir': {
        const dir = this.rng.chance(0.5) ? undefined : 'dir'
        const from = this.any(dir ?? 'nondir')
        const to = r.chance(0.45) ? this.fresh() : r.chance(0.7) ? this.any(dir ?? 'nondir') : this.any()
        this.move(from, to)
        return { op: 'rename', path: from, to, probe: true }
      }
      case 'exchange': {
        // renameat2: RENAME_EXCHANGE of two names (any kinds), now and then RENAME_NOREPLACE.
        const from = this.any()
        const to = r.chance(0.2) ? this.fresh() : this.any()
        if (r.chance(0.25)) {
          if (!this.model.has(to)) this.move(from, to)
          return { op: 'renameat2', path: from, to, flags: 'NOREPLACE' }
        }
        this.exchange(from, to)
        return { op: 'renameat2', path: from, to, flags: 'EXCHANGE' }
      }
      case 'tmpfile': {
        // open(dir, O_TMPFILE): the dir copied up, an unnamed file written, then linked by
        // AT_EMPTY_PATH (a new name, or EEXIST) or through /proc (EXDEV), or dropped.
        const to = r.chance(0.7) ? this.fresh() : this.any()
        const empty = r.chance(0.6)
        if (empty) this.add(to, 'file')
        return { op: 'tmpfilein', path: r.chance(0.2) ? '.' : this.any('dir'), mode: r.pick(this.modes), data: this.data(), to, empty,
          fields: ['type', 'mode', 'uid', 'gid', 'size', 'nlink'] }
      }
      case 'twofd': {
        // Two opens of one file at once: a reader open before the other's copy-up, a writer and
        // a reader of one upper file (served or passed through: ll-ops.ts #backingFor), what
        // each sees of the other's writes, truncates and shared mappings.
        const flags = ['O_RDONLY', 'O_RDONLY', 'O_RDWR', 'O_WRONLY', 'O_WRONLY|O_APPEND', 'O_RDWR|O_CREAT']
        const path = this.any('file')
        const first = r.pick(flags)
        const second = r.pick(flags)
        if (first.includes('O_CREAT') || second.includes('O_CREAT')) this.add(path, 'file')
        const steps = Array.from({ length: 2 + r.int(3) }, () => {
          const fd = r.pick(['a', 'b'])
          const what = r.pick(['pwrite', 'pwrite', 'read', 'read', 'ftruncate', 'size', 'mmapwrite'])
          if (what === 'pwrite') return { fd, do: what, offset: r.pick(OFFSETS), data: this.data() }
          if (what === 'ftruncate') return { fd, do: what, length: r.pick(LENGTHS) }
          if (what === 'mmapwrite') return { fd, do: what, data: r.pick(['M', 'mmap']) }
          return { fd, do: what }
        })
        return { op: 'twofd', path, first, second, steps }
      }
      case 'fallocate': {
        // Open for writing (a copy-up), then fallocate: grow, keep size, punch a hole.
        const mode = r.pick(['', '', 'KEEP_SIZE', 'PUNCH_HOLE|KEEP_SIZE', 'PUNCH_HOLE'])
        return { op: 'fallocatefile', path: this.any('file'), flags: r.pick(['O_WRONLY', 'O_RDWR', 'O_RDONLY']), mode, offset: r.pick(OFFSETS), length: r.pick(LENGTHS) }
      }
      case 'symlink': {
        const path = r.chance(0.8) ? this.fresh() : this.any()
        this.add(path, 'symlink')
        return { op: 'symlink', path, target: r.pick(TARGETS) }
      }
      case 'link': {
        const from = this.any(r.chance(0.9) ? 'nondir' : undefined)
        const to = r.chance(0.8) ? this.fresh() : this.any()
        const k = this.model.get(from)
        if (k && k !== 'dir') this.add(to, k)
        return { op: 'link', path: from, to }
      }
      case 'chmod':
        return { op: 'chmod', path: this.any(), mode: r.pick(this.modes) }
      case 'chown':
        return { op: 'chown', path: this.any(), uid: r.pick(IDS), gid: r.pick(IDS), follow: r.chance(0.6) }
      case 'utimens':
        return { op: 'utimensat', path: this.any(), atime: this.time(), mtime: this.time(), follow: r.chance(0.6) }
      case 'setxattr':
        return {
          op: 'setxattr', path: this.any(), name: r.pick(XATTRS), value: r.chance(0.1) ? '' : this.data(12),
          flags: r.pick([0, 0, 1, 2]), follow: r.chance(0.7),
        }
      case 'removexattr':
        return { op: 'removexattr', path: this.any(), name: r.pick(XATTRS), follow: r.chance(0.7) }
      case 'openw': {
        const flags = r.pick(OPEN_FLAGS)
        const path = this.any(r.chance(0.9) ? 'file' : undefined)
        if (flags.includes('O_CREAT')) this.add(path, 'file')
        return { op: 'open', path, flags }
      }
      case 'read':
        return r.chance(0.5)
          ? { op: 'readfile', path: this.any('file'), digest: DIGEST_OVER }
          : { op: 'preadfile', path: this.any('file'), offset: r.pick(OFFSETS), size: r.pick([1, 10, 100, 5000]), digest: DIGEST_OVER }
      case 'readdir':
        return { op: 'readdir', path: r.chance(0.15) ? '.' : this.any('dir'), stat: true }
      case 'stat':
        return { op: r.chance(0.75) ? 'lstat' : 'stat', path: this.any(), fields: STAT_FIELDS }
      case 'readlink':
        return { op: 'readlink', path: this.any('symlink') }
      case 'getxattr':
        return { op: 'getxattr', path: this.any(), name: r.pick(XATTRS), follow: r.chance(0.7) }
      case 'listxattr':
        return { op: 'listxattr', path: this.any(), follow: r.chance(0.7) }
    }
  }

  private nextStacking(): Op {
    const planned = this.plan.shift()
    if (planned) return planned
    const r = this.rng
    const kind = r.weighted(STACK_WEIGHTS)
    switch (kind) {
      case 'renameDir':
        return this.renameDir()
      case 'rmtree':
        return this.removeTree()
      case 'writeMoved': {
        const files = this.under(this.movedDirs()).filter(p => this.model.get(p) === 'file')
        if (files.length && r.chance(0.6)) {
          const path = r.pick(files)
          return r.chance(0.7)
            ? { op: 'pwritefile', path, flags: r.pick(['O_WRONLY', 'O_WRONLY|O_APPEND', 'O_RDWR|O_TRUNC']), offset: r.pick([0, 0, 3, 4096]), data: this.data() }
            : { op: 'readfile', path, digest: DIGEST_OVER }
        }
        const dirs = this.movedDirs()
        const path = this.freshIn(dirs.length ? r.pick(dirs) : r.pick(this.dirs()))
        this.add(path, r.chance(0.8) ? 'file' : 'dir')
        return this.model.get(path) === 'dir'
          ? { op: 'mkdir', path, mode: r.pick(this.dirModes) }
          : { op: 'pwritefile', path, flags: 'O_WRONLY|O_CREAT|O_EXCL', offset: 0, data: this.data() }
      }
      case 'linkLower': {
        // A file that came from a lower layer (or was written below), to a new name in another
        // dir: copy-up, then a second name; across later layers both are one inode.
        const files = [...this.model].filter(([, k]) => k === 'file').map(([p]) => p)
        if (!files.length) return this.make('link')
        const from = r.pick(files)
        const to = this.freshIn(r.pick(this.dirs()))
        this.add(to, 'file')
        return { op: 'link', path: from, to }
      }
      default:
        return this.make(kind)
    }
  }

  /** A directory rename, the way stacking exposes redirects. */
  private renameDir(): Op {
    const r = this.rng
    const all = this.dirs().filter(Boolean)
    const moved = this.movedDirs()
    const below = this.under(moved).filter(p => this.model.get(p) === 'dir')
    const p = r.next()
    const from = p < 0.3 && moved.length ? r.pick(moved)
      : p < 0.45 && below.length ? r.pick(below)
      : p < 0.95 && all.length ? r.pick(all)
      : this.any('dir')
    const parent = from.includes('/') ? from.slice(0, from.lastIndexOf('/')) : ''
    const q = r.next()
    let to: string
    if (q < 0.35) to = this.freshIn(parent)
    else if (q < 0.75) to = this.freshIn(r.pick(this.dirs().filter(d => d !== from && !d.startsWith(from + '/'))))
    else if (q < 0.85) {
      const empty = all.filter(d => d !== from && !this.children(d).length)
      to = empty.length ? r.pick(empty) : this.freshIn(parent)
    } else if (q < 0.95 && this.moved.has(from)) to = this.moved.get(from)!
    else to = this.any()
    this.move(from, to)
    return { op: 'rename', path: from, to, probe: true }
  }

  /** Removes a whole subtree (unlinks and rmdirs, deepest first), often making the dir again. */
  private removeTree(): Op {
    const r = this.rng
    const dirs = this.dirs().filter(Boolean)
    if (!dirs.length) return this.make('rmdir')
    const dir = r.pick(dirs)
    const inside = this.children(dir).sort((x, y) => y.split('/').length - x.split('/').length || (x < y ? 1 : -1))
    for (const p of inside) this.plan.push(this.model.get(p) === 'dir' ? { op: 'rmdir', path: p } : { op: 'unlink', path: p })
    this.plan.push({ op: 'rmdir', path: dir })
    for (const p of [dir, ...inside]) this.model.delete(p)
    for (const m of [...this.moved.keys()]) if (m === dir || m.startsWith(dir + '/')) this.moved.delete(m)
    if (r.chance(0.6)) {
      this.plan.push({ op: 'mkdir', path: dir, mode: r.pick(this.dirModes) })
      this.add(dir, 'dir')
      if (r.chance(0.5)) {
        const f = this.freshIn(dir)
        this.plan.push({ op: 'pwritefile', path: f, flags: 'O_WRONLY|O_CREAT', offset: 0, data: this.data() })
        this.add(f, 'file')
      }
    }
    return this.plan.shift()!
  }

  /** Renamed directories that still exist in the model. */
  private movedDirs(): string[] {
    return [...this.moved.keys()].filter(p => this.model.get(p) === 'dir')
  }

  /** Paths strictly below any of dirs. */
  private under(dirs: readonly string[]): string[] {
    return [...this.model.keys()].filter(p => dirs.some(d => p.startsWith(d + '/')))
  }

  /** A name not in the model, in dir ('' is the case's root). */
  private freshIn(dir: string): string {
    const names = this.profile === 'stacking' ? STACK_NAMES : NAMES
    let path = ''
    for (let i = 0; i < 8; i++) {
      const name = this.rng.pick(names)
      path = dir ? `${dir}/${name}` : name
      if (!this.model.has(path)) break
    }
    return path.split('/').length > 6 ? path.slice(path.lastIndexOf('/') + 1) : path
  }

  /** Some text to write: short most of the time, sometimes a few KiB. */
  private data(max = 40): string {
    const r = this.rng
    const n = r.chance(0.08) ? r.range(3000, 9000) : r.range(1, max)
    const stem = `<${this.seed}.${this.counter}:`
    let s = stem
    while (s.length < n) s += ALNUM[r.int(ALNUM.length)]
    return s.slice(0, n)
  }

  /** An explicit time (ns, sometimes before 1970), "now" or "omit". */
  private time(): string {
    const r = this.rng
    const p = r.next()
    if (p < 0.15) return 'now'
    if (p < 0.3) return 'omit'
    const sec = BigInt(r.range(-2_000_000_000, 1_500_000_000))
    return (sec * 1_000_000_000n + BigInt(r.int(1_000_000_000))).toString()
  }

  private dirs(): string[] {
    return ['', ...[...this.model].filter(([, k]) => k === 'dir').map(([p]) => p)]
  }

  private children(dir: string): string[] {
    return [...this.model.keys()].filter(p => p.startsWith(dir + '/'))
  }

  /** A path that most likely exists (of that kind), else any path in the name space. */
  private any(kind?: Kind | 'nondir'): string {
    const r = this.rng
    if ((kind === undefined || kind === 'dir') && r.chance(0.02)) return '.' // the case's own (merged) dir
    if (r.chance(0.8)) {
      const xs = [...this.model].filter(([, k]) => kind === undefined || (kind === 'nondir' ? k !== 'dir' : k === kind)).map(([p]) => p)
      if (xs.length) return r.pick(xs)
    }
    return this.anyName()
  }

  /** A name in an existing dir (or, now and then, under a symlink or a non-dir). */
  private anyName(): string {
    const r = this.rng
    let prefix: string
    const p = r.next()
    if (p < 0.9) prefix = r.pick(this.dirs())
    else if (p < 0.96) prefix = r.pick(['ld', 'l', 'nx', ...[...this.model].filter(([, k]) => k === 'symlink').map(([q]) => q)])
    else prefix = r.pick(['a', 'sp', 'd1/x', 'n'])
    const name = r.pick(NAMES)
    const path = prefix ? `${prefix}/${name}` : name
    return path.split('/').length > 5 ? name : path
  }

  /** A path that most likely does not exist yet, in an existing dir. */
  private fresh(): string {
    for (let i = 0; i < 6; i++) {
      const p = this.anyName()
      if (!this.model.has(p)) return p
    }
    return this.anyName()
  }

  private parentOk(path: string): boolean {
    const i = path.lastIndexOf('/')
    return i < 0 || this.model.get(path.slice(0, i)) === 'dir'
  }

  private add(path: string, kind: Kind): void {
    if (!this.model.has(path) && this.parentOk(path)) this.model.set(path, kind)
  }

  /** The model after RENAME_EXCHANGE: the two subtrees trade places. */
  private exchange(a: string, b: string): void {
    if (a === b || !this.model.has(a) || !this.model.has(b) || a.startsWith(b + '/') || b.startsWith(a + '/')) return
    const take = (x: string): Array<[string, Kind]> => {
      const out = [x, ...this.children(x)].map(p => [p.slice(x.length), this.model.get(p)!] as [string, Kind])
      for (const [rel] of out) this.model.delete(x + rel)
      return out
    }
    const ta = take(a)
    const tb = take(b)
    for (const [rel, k] of ta) this.model.set(b + rel, k)
    for (const [rel, k] of tb) this.model.set(a + rel, k)
  }

  private move(from: string, to: string): void {
    const k = this.model.get(from)
    if (!k || from === to || to.startsWith(from + '/') || !this.parentOk(to)) return
    const t = this.model.get(to)
    if (t !== undefined) {
      if ((k === 'dir') !== (t === 'dir')) return
      if (t === 'dir' && this.children(to).length) return
    }
    const moved = [from, ...(k === 'dir' ? this.children(from) : [])]
    const kinds = moved.map(p => this.model.get(p)!)
    for (const p of moved) this.model.delete(p)
    moved.forEach((p, i) => this.model.set(to + p.slice(from.length), kinds[i]!))
    if (k === 'dir' && this.profile === 'stacking') {
      for (const [m, first] of [...this.moved]) {
        if (m !== from && !m.startsWith(from + '/')) continue
        this.moved.delete(m)
        this.moved.set(to + m.slice(from.length), first)
      }
      if (!this.moved.has(to)) this.moved.set(to, from)
    }
  }
}

/** The op lists of one seed in the stacking mode: one list per round (per layer). */
export function generateStacked(seed: number, rounds: number, ops: number, features: Features = {}, mix: Profile = 'stacking'): { rounds: Op[][] } {
  const g = new Generator(seed, features, 'stacking', mix)
  return { rounds: Array.from({ length: rounds }, () => g.take(ops)) }
}

/** The op lists of one seed: `ops` for the first mounts, then `more` for the swapped mounts. */
export function generate(seed: number, ops: number, more = 0, features: Features = {}): { ops: Op[]; more: Op[] } {
  const g = new Generator(seed, features)
  return { ops: g.take(ops), more: g.take(more) }
}
