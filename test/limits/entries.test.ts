// 100,000 entries in one directory: in a lower dir, in an upper dir, and merged (a lower and
// an upper half overlapping, with whiteouts): readdir returns each visible name exactly once.
// And 100,000 files created, listed and removed through the mount (~20 s since FUSE 7.28 and
// the JS thread reading requests; once an opt-in variant, when it took minutes).
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { mountLayerfs } from '../helpers/mount.js'
import { sh } from '../helpers/run.js'
import { freshDir } from '../helpers/scratch.js'

const N = 100_000

// Builds the layers on the host (fast: no FUSE in the way).
const build = String.raw`
import os, sys
L, U = sys.argv[1], sys.argv[2]
def files(d, names):
    os.makedirs(d, exist_ok=True)
    for n in names: os.close(os.open(os.path.join(d, n), os.O_CREAT | os.O_WRONLY, 0o644))
name = lambda i: 'f%06d' % i
files(L + '/lowerdir', map(name, range(${N})))
files(U + '/upperdir', map(name, range(${N})))
files(L + '/merged', map(name, range(60000)))
files(U + '/merged', map(name, range(40000, ${N})))
for i in range(20000): os.mknod(U + '/merged/' + name(i), 0o020000, 0)
`

// Lists a dir with getdents (os.listdir) and reports count, duplicates and a digest.
const list = String.raw`
import os, sys, time, hashlib
t0 = time.monotonic()
names = os.listdir(sys.argv[1])
dt = time.monotonic() - t0
print(len(names), len(names) - len(set(names)), hashlib.sha256('\n'.join(sorted(names)).encode()).hexdigest(), '%.2f' % dt)
`

const digest = (names: string[]): string => createHash('sha256').update(names.sort().join('\n')).digest('hex')
const range = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `f${String(from + i).padStart(6, '0')}`)

t.test('100,000 entries in one directory: lower, upper, merged; each name once', async t => {
  const root = freshDir('entries')
  const [L, U] = [join(root, 'lower'), join(root, 'upper')]
  fs.mkdirSync(L)
  fs.mkdirSync(U)
  const b = await sh('python3 -c "$BUILD" "$L" "$U"', { env: { BUILD: build, L, U }, timeout: 120_000 })
  t.equal(b.code, 0, b.stderr)
  const m = await mountLayerfs(t, { lowers: [L], upper: U })
  const cases: [string, string[]][] = [
    ['lowerdir', range(0, N)],
    ['upperdir', range(0, N)],
    ['merged', range(20000, N)],
  ]
  for (const [dir, want] of cases) {
    const r = await sh('python3 -c "$LIST" "$D"', { cwd: m.mnt, env: { LIST: list, D: dir }, timeout: 120_000 })
    t.equal(r.code, 0, r.stderr)
    const [count, dups, sha, secs] = r.stdout.trim().split(' ')
    t.same([Number(count), Number(dups), sha], [want.length, 0, digest(want)], `${dir}: ${want.length} names, each once (${secs} s)`)
  }
  // A second listing of the merged dir through an open fd, after a seek back to 0 (rewinddir).
  const again = await sh(`python3 -c '
import os
fd = os.open("merged", os.O_RDONLY | os.O_DIRECTORY)
a = os.listdir(fd); os.lseek(fd, 0, 0); b = os.listdir(fd)
print(len(a), len(b), a == b)'`, { cwd: m.mnt, timeout: 120_000 })
  t.equal(again.stdout.trim(), `${N - 20000} ${N - 20000} True`, 'rewinddir gives the same listing')
})

t.test('100,000 files made and removed through the mount', async t => {
  const root = freshDir('entries-long')
  fs.mkdirSync(join(root, 'lower'))
  fs.mkdirSync(join(root, 'upper'))
  const m = await mountLayerfs(t, { lowers: [join(root, 'lower')], upper: join(root, 'upper') })
  const r = await sh(`python3 -c '
import os, time
os.mkdir("d")
t0 = time.monotonic()
for i in range(${N}): os.close(os.open("d/f%06d" % i, os.O_CREAT | os.O_WRONLY, 0o644))
t1 = time.monotonic()
names = os.listdir("d")
t2 = time.monotonic()
for n in names: os.unlink("d/" + n)
t3 = time.monotonic()
print(len(names), len(set(names)), len(os.listdir("d")), "create %.1f s, list %.1f s, unlink %.1f s" % (t1 - t0, t2 - t1, t3 - t2))'`, { cwd: m.mnt, timeout: 600_000 })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, new RegExp(`^${N} ${N} 0 `), r.stdout.trim())
})
