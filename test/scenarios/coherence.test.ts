// Attributes are right immediately after a change made through another name or another
// object: the other name of a hard link, the parent directory of a new entry. (Caches in a
// FUSE filesystem make this a story of its own; the kernel is always right at once.)
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { describeFailure, run } from '../helpers/run.js'
import { SCRATCH_FS_TYPES } from '../helpers/scratch-fs.js'
import { OK, val } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

t.test('hard links: both names agree at once', async t => {
  const tw = await twinMounts(t, d => writeTree(d.lowers[0]!, { a: 'lower a\n', new: {} }))
  const nlink = (path: string) => ({ op: 'lstat', path, fields: ['nlink', 'size', 'mode'] })
  await tw.sameSys(t, [
    nlink('a'),
    { op: 'link', path: 'a', to: 'b' },          // a lower file: copy-up, then link
    nlink('a'), nlink('b'),
    { op: 'writefile', path: 'b', data: 'written through b, longer\n', flags: 'O_WRONLY|O_TRUNC' },
    nlink('a'),
    { op: 'chmod', path: 'b', mode: 0o600 },
    nlink('a'),
    { op: 'unlink', path: 'b' },
    nlink('a'),
    { op: 'writefile', path: 'new/c', data: 'c' }, // an upper file
    { op: 'link', path: 'new/c', to: 'new/d' },
    nlink('new/c'),
    { op: 'link', path: 'new/d', to: 'e' },
    nlink('new/c'), nlink('new/d'), nlink('e'),
  ], [
    val({ nlink: 1, size: 8, mode: '0o644' }), OK,
    val({ nlink: 2, size: 8, mode: '0o644' }), val({ nlink: 2, size: 8, mode: '0o644' }),
    OK, val({ nlink: 2, size: 26, mode: '0o644' }),
    OK, val({ nlink: 2, size: 26, mode: '0o600' }),
    OK, val({ nlink: 1, size: 26, mode: '0o600' }),
    OK, OK, val({ nlink: 2, size: 1, mode: '0o644' }),
    OK, val({ nlink: 3, size: 1, mode: '0o644' }), val({ nlink: 3, size: 1, mode: '0o644' }), val({ nlink: 3, size: 1, mode: '0o644' }),
  ])
  await tw.sameTree(t)
})

t.test('a directory\'s mtime moves at once when an entry is made or removed in it', async t => {
  const tw = await twinMounts(t, d => writeTree(d.lowers[0]!, { dir: { type: 'dir', mtime: 1_000_000_000, entries: { old: 'o\n' } } }))
  const [lf, ov] = await tw.sys([
    { op: 'stat', path: 'dir', fields: ['mtime_ns'] },
    { op: 'writefile', path: 'dir/new', data: 'n' },
    { op: 'stat', path: 'dir', fields: ['mtime_ns'] },
    { op: 'utime', path: 'dir', atime_ns: '2000000000000000000', mtime_ns: '2000000000000000000' },
    { op: 'stat', path: 'dir', fields: ['mtime_ns'] },
    { op: 'unlink', path: 'dir/old' },
    { op: 'stat', path: 'dir', fields: ['mtime_ns'] },
  ])
  const mtimes = (r: typeof lf) => [r[0], r[2], r[4], r[6]].map(x => BigInt((x as { value: { mtime_ns: string } }).value.mtime_ns))
  for (const [role, r] of [['kernel', ov], ['layerfs', lf]] as const) {
    const [m0, m1, m2, m3] = mtimes(r)
    t.equal(m0, 1_000_000_000_000_000_000n, `${role}: the lower dir's mtime`)
    t.ok(m1! > m0!, `${role}: creating an entry moves it at once`, { m0, m1 })
    t.equal(m2, 2_000_000_000_000_000_000n, `${role}: utimes sets it`)
    t.ok(m3! > 1_700_000_000_000_000_000n && m3! < m2!, `${role}: removing an entry moves it to now at once`, { m2, m3 })
  }
})

// Every object the kernel has cached attributes of, after each kind of change: the upper
// object behind a cached node changes in ways no request of the kernel's was about (a copy-up
// makes an entry in the parent's upper dir and puts its times back, marks it impure; whiteouts,
// opaque and redirect marks, xattrs). Kernel overlayfs stats the upper object on every call;
// layerfs's answers are cached for a day and must be invalidated. Each step: list and stat
// everything (the kernel caches it), make the change, then stat the same paths and compare
// each with its upper object (size, times, blocks, mode, owner; nlink but for directories,
// which are 1 when merged), on both sides; on a tmpfs upper (directory sizes grow with their
// entries) and an ext4 one (they stay 4096: only times and blocks show).
const STEPS: [string, string][] = [
  ['copy-up into a lower-only dir', 'echo 1 >> a/f1'],
  ['copy-up into a merged dir', 'echo 1 >> a/f2'],
  ['copy-up making a subdir\'s upper dir', 'chmod 640 a/sub/x'],
  ['copy-up of a symlink', 'touch -h -d @1000000000 a/ln'],
  ['whiteout in a merged dir', 'rm a/f3'],
  ['whiteout in a lower-only dir', 'rm b/z1'],
  ['rm -r of a lower tree', 'rm -r a/deep'],
  ['mkdir over a whiteout (opaque)', 'mkdir a/deep'],
  ['rename of a lower dir (redirect)', 'mv e e2'],
  ['rename of a lower file across dirs', 'mv c/w b/w'],
  ['link of a lower hard link (copy-up breaks it)', 'ln a/h1 b/h3'],
  ['xattr on a lower dir', 'setfattr -n user.k -v v g/gg'],
  ['xattr on an upper dir', 'setfattr -n user.k -v v2 a/sub'],
  ['open(O_TRUNC) of a lower file', ': > b/z2'],
  ['utimes of a merged dir', 'touch -d @1500000000 g'],
  ['rmdir of a lower dir', 'rmdir r'],
  ['rename of a merged dir to another parent', 'mv a/sub g/gg/sub'],
  ['rename of an upper dir into a merged one (opaque)', 'mkdir n && mkdir n/m && mv n/m b/m'],
  ['create in a merged dir', 'echo n > g/gg/new'],
  ['chown of a lower file', 'chown 123:456 a/f4'],
]

const FIELDS = ['type', 'mode', 'uid', 'gid', 'size', 'nlink', 'blocks', 'mtime_ns', 'ctime_ns'] as const
type Stat = Record<(typeof FIELDS)[number], string | number> & { whiteout?: boolean }

/**
 * One step in one process (cwd: the mount): list everything and lstat it (the kernel caches
 * what it answers) and each path's upper object, run the change (bash), lstat the same again.
 */
const STEP_PY = `
import json, os, stat, subprocess, sys
a = json.load(sys.stdin)
paths = sorted(os.path.relpath(os.path.join(d, n), '.') for d, ds, fs in os.walk('.') for n in ds + fs)
def st(p):
    try:
        s = os.lstat(p)
    except OSError:
        return None
    t = 'dir' if stat.S_ISDIR(s.st_mode) else 'file' if stat.S_ISREG(s.st_mode) else 'link' if stat.S_ISLNK(s.st_mode) else 'other'
    return {'type': t, 'mode': s.st_mode, 'uid': s.st_uid, 'gid': s.st_gid, 'size': s.st_size, 'nlink': s.st_nlink,
            'blocks': s.st_blocks, 'mtime_ns': str(s.st_mtime_ns), 'ctime_ns': str(s.st_ctime_ns),
            'whiteout': stat.S_ISCHR(s.st_mode) and s.st_rdev == 0}
both = lambda: [[st(p), st(os.path.join(a['upper'], p))] for p in paths]
before = both()
r = subprocess.run(['bash', '-c', a['script']], capture_output=True, text=True)
json.dump({'paths': paths, 'before': before, 'after': both(), 'code': r.returncode, 'stderr': r.stderr}, sys.stdout)
`

interface StepResult {
  paths: string[]
  /** Per path: [stat through the mount, stat of the upper object], before and after the change. */
  before: [Stat | null, Stat | null][]
  after: [Stat | null, Stat | null][]
  code: number
  stderr: string
}

/** Where the mount's (cached) stat differs from the upper object's. */
function staleIn(r: StepResult): string[] {
  const out: string[] = []
  r.paths.forEach((p, i) => {
    const [m, u] = r.after[i]!
    if (!m || !u || u.whiteout) return // gone, lower-only or whited out
    for (const f of FIELDS) {
      if (f === 'nlink' && m.type === 'dir') continue
      if (m[f] !== u[f]) out.push(`${p}: ${f} ${m[f]} through the mount, ${u[f]} in the upper`)
    }
  })
  return out
}

for (const fs of SCRATCH_FS_TYPES) {
  t.test(`cached attributes are the upper's after every kind of change (${fs} upper)`, async t => {
    const tw = await twinMounts(t, ({ lowers }) => {
      writeTree(lowers[0]!, {
        a: { f1: '1\n', f2: '2\n', f3: '3\n', f4: '4\n', sub: { x: 'x\n', y: 'y\n' }, deep: { p: { q: { file: 'f\n' } } },
          ln: { type: 'symlink', target: 'f1' }, h1: 'h\n', h2: { type: 'hardlink', target: 'a/h1' } },
        b: { z1: 'z1\n', z2: 'z2\n' },
        c: { w: 'w\n' },
        e: { ev: 'ev\n' },
        r: {},
        top1: 't\n',
      })
      writeTree(lowers[1]!, { a: { low1: 'l\n', sub: { low2: 'l\n' } }, b: { lowb: 'l\n' }, g: { gg: { ggg: 'g\n' } } })
    }, { lowers: 2, fs })
    for (const [label, script] of STEPS) {
      const [lf, ov] = await tw.both(async s => {
        const r = await run('python3', ['-c', STEP_PY], { cwd: s.mnt, input: JSON.stringify({ upper: s.upper, script }) })
        if (r.code !== 0) throw new Error(describeFailure(r))
        const res = JSON.parse(r.stdout) as StepResult
        const changed = res.paths.filter((_, i) => JSON.stringify(res.before[i]![1]) !== JSON.stringify(res.after[i]![1]))
        const view = res.after.map(([m]) => m && { ...m, blocks: 0, mtime_ns: 0, ctime_ns: 0 })
        return { run: res, stale: staleIn(res), changed, view }
      })
      t.same([lf.run.code, lf.run.stderr], [0, ''], `${label}: layerfs: \`${script}\``)
      t.same([ov.run.code, ov.run.stderr], [0, ''], `${label}: kernel: \`${script}\``)
      t.ok(lf.changed.length > 0, `${label}: the upper objects of cached paths changed: ${lf.changed.join(' ')}`)
      t.same(ov.stale, [], `${label}: kernel: every stat is the upper object's`)
      t.same(lf.stale, [], `${label}: layerfs: every stat is the upper object's`)
      t.same(lf.view, ov.view, `${label}: the same types, modes, owners, sizes and links on both sides`)
    }
    // What users saw: tar of a directory right after a change below it.
    await tw.same(t, 'stat g >/dev/null && echo more >> g/gg/ggg && tar -cf $OUT/g.tar g', { code: 0 })
    await tw.sameTree(t)
    await tw.sameUpper(t)
    await tw.lowersUnchanged(t)
  })
}
