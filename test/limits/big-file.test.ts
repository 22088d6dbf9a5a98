// Files over 4 GiB: sizes and offsets exact through the mount (pread/pwrite beyond 2^32, stat,
// ftruncate), and the copy-up of a sparse 5 GiB lower file keeps its size and its holes.
// Kernel overlayfs does the same steps on its own copy of the layers; both must agree.
import fs from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { mountKind } from '../helpers/mount.js'
import { sh } from '../helpers/run.js'
import { freshDir, type MountKind } from '../helpers/scratch.js'
import { PY_STEPS } from '../helpers/py-steps.js'

const GiB = 2 ** 30
const SIZE = 5 * GiB

function buildLower(dir: string): void {
  fs.mkdirSync(dir)
  const fd = fs.openSync(join(dir, 'big'), 'w')
  fs.writeSync(fd, 'head', 0)
  fs.writeSync(fd, 'across-4GiB', 2 ** 32 - 6)
  fs.writeSync(fd, 'tail', SIZE - 4)
  fs.closeSync(fd)
  fs.writeFileSync(join(dir, 'other'), 'other')
}

const script = PY_STEPS + String.raw`
G = 1 << 30
step('stat size', lambda: os.stat('big').st_size)
r = os.open('big', os.O_RDONLY)
step('pread head', lambda: os.pread(r, 4, 0).decode())
step('pread across 2^32', lambda: os.pread(r, 11, (1 << 32) - 6).decode())
step('pread tail', lambda: os.pread(r, 10, 5 * G - 4).decode())
step('pread past the end', lambda: os.pread(r, 10, 6 * G).decode())
step('pread in a hole beyond 2^32', lambda: os.pread(r, 4, (1 << 32) + 4096).hex())
w = os.open('big', os.O_RDWR)
step('pwrite at 2^32 + 7 (copy-up)', lambda: os.pwrite(w, b'XYZ', (1 << 32) + 7))
step('pread it back', lambda: os.pread(w, 3, (1 << 32) + 7).decode())
step('reader sees it too', lambda: os.pread(r, 3, (1 << 32) + 7).decode())
step('pwrite at 6 GiB (extends)', lambda: os.pwrite(w, b'end', 6 * G))
step('fstat size', lambda: os.fstat(w).st_size)
step('stat size', lambda: os.stat('big').st_size)
step('ftruncate to 2^32 + 1', lambda: os.ftruncate(w, (1 << 32) + 1))
step('stat after truncate', lambda: os.stat('big').st_size)
step('pread last byte', lambda: os.pread(w, 4, 1 << 32).hex())
step('truncate up to 2^40', lambda: os.truncate('big', 1 << 40))
step('stat 2^40', lambda: os.stat('big').st_size)
step('truncate back', lambda: os.truncate('big', 5 * G))
os.close(w); os.close(r)
def new():
    fd = os.open('new', os.O_CREAT | os.O_RDWR, 0o644)
    os.pwrite(fd, b'q', 1 << 33)
    v = [os.fstat(fd).st_size, os.pread(fd, 2, 1 << 33).decode()]
    os.close(fd)
    return v
step('new file written at 2^33', new)
def appended():
    fd = os.open('other', os.O_WRONLY | os.O_APPEND)
    os.pwrite(fd, b'', 0)
    os.lseek(fd, (1 << 32) + 9, os.SEEK_SET)
    os.write(fd, b'!')
    os.close(fd)
    return os.stat('other').st_size
step('O_APPEND ignores the offset', appended)
print(json.dumps(out))
`

t.test('files over 4 GiB: exact sizes and offsets, sparse copy-up keeps holes', async t => {
  const sides = await Promise.all((['layerfs', 'overlay'] as MountKind[]).map(async kind => {
    const root = freshDir(`big-${kind}`)
    buildLower(join(root, 'lower'))
    fs.mkdirSync(join(root, 'upper'))
    const m = await mountKind(t, kind, { lowers: [join(root, 'lower')], upper: join(root, 'upper') })
    return { kind, m, root }
  }))
  const res = await Promise.all(sides.map(s => sh('python3 -c "$SCRIPT"', { cwd: s.m.mnt, env: { SCRIPT: script }, timeout: 120_000 })))
  for (const [i, r] of res.entries()) t.equal(r.code, 0, `${sides[i]!.kind}: ${r.stderr}`)
  const [a, b] = res.map(r => JSON.parse(r.stdout || '[]') as [string, unknown][])
  t.same(a, b, 'layerfs gives what the kernel gives')
  const m = new Map(b)
  t.equal(m.get('pread across 2^32'), 'across-4GiB')
  t.equal(m.get('fstat size'), 6 * GiB + 3)
  t.equal(m.get('stat after truncate'), 2 ** 32 + 1)
  t.same(m.get('new file written at 2^33'), [2 ** 33 + 1, 'q'])
  for (const s of sides) {
    const up = fs.statSync(join(s.root, 'upper', 'big'))
    t.equal(up.size, SIZE, `${s.kind}: upper copy has the size`)
    t.ok(up.blocks * 512 < 16 << 20, `${s.kind}: upper copy keeps the holes (${up.blocks * 512} bytes allocated)`)
    const fd = fs.openSync(join(s.root, 'upper', 'big'), 'r')
    const buf = Buffer.alloc(11)
    fs.readSync(fd, buf, 0, 11, 2 ** 32 - 6)
    t.equal(buf.toString('hex'), Buffer.from('across-\0\0\0\0', 'latin1').toString('hex'), `${s.kind}: upper copy has the data at its offsets (cut at 2^32 + 1)`)
    fs.closeSync(fd)
    t.equal(fs.statSync(join(s.root, 'lower', 'big')).size, SIZE, `${s.kind}: lower untouched`)
  }
})
