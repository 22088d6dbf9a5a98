// An upper layer on a full filesystem (an 8 MiB tmpfs holding upper and workdir): the writer
// gets ENOSPC, a copy-up that does not fit fails with ENOSPC and leaves nothing half-written
// (the lower version still shows, the workdir holds no temp), and the daemon keeps serving.
// The same steps run on kernel overlayfs over its own 8 MiB tmpfs and must give the same errnos.
import fs from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { mountKind, type Mounted } from '../helpers/mount.js'
import { run, sh } from '../helpers/run.js'
import { freshDir, type MountKind } from '../helpers/scratch.js'
import { PY_STEPS } from '../helpers/py-steps.js'

const MiB = 1 << 20

/** A lower layer: a dense 20 MiB file, a sparse 6 GiB one with 12 MiB of data, a small one. */
function buildLower(dir: string): void {
  fs.mkdirSync(dir)
  const dense = Buffer.alloc(20 * MiB)
  for (let i = 0; i < dense.length; i += 4096) dense.writeUInt32LE(i, i)
  fs.writeFileSync(join(dir, 'dense'), dense)
  const fd = fs.openSync(join(dir, 'sparse'), 'w')
  for (let i = 0; i < 12; i++) fs.writeSync(fd, Buffer.alloc(MiB, i + 1), 0, MiB, i * 512 * MiB)
  fs.ftruncateSync(fd, 6 * 1024 * MiB)
  fs.closeSync(fd)
  fs.writeFileSync(join(dir, 'small'), 'small\n')
  fs.mkdirSync(join(dir, 'd'))
  fs.writeFileSync(join(dir, 'd', 'f'), 'f\n')
}

interface Side {
  m: Mounted
  tmpfs: string
}

async function side(t: Test, kind: MountKind): Promise<Side> {
  const root = freshDir(`enospc-${kind}`)
  const lower = join(root, 'lower')
  buildLower(lower)
  const tmpfs = join(root, 'tmpfs')
  fs.mkdirSync(tmpfs)
  const r = await run('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=755', 'tmpfs', tmpfs])
  if (r.code !== 0) throw new Error(`mount tmpfs: ${r.stderr}`)
  let m: Mounted | undefined
  // Registered first, so it runs after the union's own teardown has nothing left to do: take
  // the union off (idempotent), then the tmpfs.
  t.teardown(async () => {
    await m?.unmount().catch(() => {})
    const u = await run('umount', [tmpfs])
    if (u.code !== 0) await run('umount', ['-l', tmpfs])
  })
  fs.mkdirSync(join(tmpfs, 'upper'))
  fs.mkdirSync(join(tmpfs, 'work'))
  m = await mountKind(t, kind, { lowers: [lower], upper: join(tmpfs, 'upper'), work: join(tmpfs, 'work') })
  return { m, tmpfs }
}

// One python process per side; each step prints its errno (or 'ok') so both sides compare.
const script = PY_STEPS + String.raw`
import hashlib
def append(p, data):
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    try: os.write(fd, data)
    finally: os.close(fd)
def sha(p): return hashlib.sha256(open(p, 'rb').read()).hexdigest()[:16]
def fill(p):
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        while True: os.write(fd, b'z' * 65536)
    finally: os.close(fd)
def ls(d): return sorted(os.listdir(d))
step('sha dense before', lambda: sha('dense'))
step('copy-up of 20 MiB into 8 MiB', lambda: append('dense', b'more'))
step('dense after', lambda: [os.stat('dense').st_size, sha('dense')])
step('copy-up of sparse (12 MiB of data)', lambda: append('sparse', b'more'))
step('sparse after', lambda: [os.stat('sparse').st_size, os.pread(os.open('sparse', os.O_RDONLY), 4, 11 * 512 << 20).hex()])
step('root listing', lambda: ls('.'))
step('fill a new file', lambda: fill('fill'))
step('copy-up of a small file when full', lambda: append('small', b'x'))
step('small after', lambda: open('small').read())
step('write into a copied-up dir when full', lambda: append('d/f', b'x'))
step('d/f after', lambda: open('d/f').read())
step('unlink fill', lambda: os.unlink('fill'))
step('copy-up of a small file with room', lambda: append('small', b'x'))
step('small after room', lambda: open('small').read())
step('root listing after', lambda: ls('.'))
print(json.dumps(out))
`

t.test('ENOSPC on a full upper: returned to the writer, nothing half-written, still serving', async t => {
  const [lf, ov] = await Promise.all([side(t, 'layerfs'), side(t, 'overlay')])
  const [a, b] = await Promise.all([lf, ov].map(s => sh('python3 -c "$SCRIPT"', { cwd: s.m.mnt, env: { SCRIPT: script }, timeout: 120_000 })))
  t.equal(b!.code, 0, `kernel side ran: ${b!.stderr}`)
  t.equal(a!.code, 0, `layerfs side ran: ${a!.stderr}`)
  const ra = JSON.parse(a!.stdout || '[]') as [string, unknown][]
  const rb = JSON.parse(b!.stdout || '[]') as [string, unknown][]
  t.same(ra, rb, 'layerfs gives what the kernel gives, step for step')
  const byName = new Map(ra)
  t.equal(byName.get('copy-up of 20 MiB into 8 MiB'), 'ENOSPC')
  t.equal(byName.get('copy-up of sparse (12 MiB of data)'), 'ENOSPC')
  t.equal(byName.get('fill a new file'), 'ENOSPC')
  t.equal(byName.get('small after room'), 'small\nx')
  // Nothing half-written on disk: no copy of the big files in the upper, no temp in the workdir.
  t.same(fs.readdirSync(join(lf.tmpfs, 'upper')).sort(), ['d', 'small'], 'layerfs upper holds only what succeeded')
  t.same(fs.readdirSync(join(lf.tmpfs, 'work', 'work')), [], 'layerfs workdir holds no temp')
  t.same(fs.readdirSync(join(ov.tmpfs, 'upper')).sort(), ['d', 'small'], 'kernel upper, the same')
  // The daemon still serves: a fresh stat and a listing through the mount.
  const after = await sh('stat -c %s dense && ls', { cwd: lf.m.mnt })
  t.same([after.code, after.stdout], [0, `${20 * MiB}\nd\ndense\nsmall\nsparse\n`], 'still serving')
})
