// Hostile symlinks: pointing out of the mount, escaping upwards, in loops, long, dangling.
// readlink returns them as they are; the client's kernel resolves them in the client's view,
// and the daemon never follows one to a host path (a relative escape from the lower layer's
// host directory lands elsewhere than from the mount point: the test tells the two apart).
import fs from 'node:fs'
import { dirname, join } from 'node:path'
import t from 'tap'
import { sh } from '../helpers/run.js'
import { twinMounts } from '../helpers/twin.js'
import { PY_STEPS } from '../helpers/py-steps.js'

const script = PY_STEPS + String.raw`
import sys
def touch(p, flags=0):
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY | flags, 0o644))
def append(p, flags=0):
    fd = os.open(p, os.O_WRONLY | os.O_APPEND | flags)
    os.write(fd, b'+')
    os.close(fd)
side = sys.argv[1]
for l in ['etc', 'esc', 'loop1', 'loop2', 'self', 'chain0', 'chain40', 'dangle', 'sdir', 'long', 'flink', 'mix']:
    step('readlink ' + l, lambda: os.readlink(l)[:80] + ' (%d)' % len(os.readlink(l)))
step('lstat etc', lambda: oct(os.lstat('etc').st_mode))
step('stat etc is a dir', lambda: os.path.isdir('etc'))
step('stat loop1', lambda: os.stat('loop1').st_mode)
step('stat self', lambda: os.stat('self').st_mode)
step('open loop2', lambda: touch('loop2'))
step('stat chain0 (41 hops)', lambda: os.stat('chain0').st_mode)
step('stat chain40 (1 hop)', lambda: os.stat('chain40').st_size)
step('touch esc/x (client view)', lambda: touch('esc/x-' + side))
step('O_CREAT through dangling link', lambda: touch('dangle'))
step('dangle now resolves', lambda: os.stat('dangle').st_size)
step('O_NOFOLLOW read', lambda: os.open('flink', os.O_RDONLY | os.O_NOFOLLOW))
step('O_NOFOLLOW write', lambda: append('flink', os.O_NOFOLLOW))
step('O_NOFOLLOW|O_CREAT', lambda: touch('flink', os.O_NOFOLLOW))
step('O_PATH|O_NOFOLLOW', lambda: os.close(os.open('flink', os.O_PATH | os.O_NOFOLLOW)))
def chmod_link():
    fd = os.open('flink', os.O_PATH | os.O_NOFOLLOW)
    try: os.chmod('/proc/self/fd/%d' % fd, 0o777)
    finally: os.close(fd)
step('chmod a symlink through /proc/self/fd', chmod_link)
step('file mode after', lambda: oct(os.stat('file').st_mode))
step('write through sdir (copy-up under a symlinked dir)', lambda: append('sdir/f'))
step('real/f', lambda: open('real/f').read())
step('sdir is still a symlink', lambda: os.readlink('sdir'))
step('mix is a symlink over a lower dir', lambda: os.readlink('mix'))
step('write through the symlink', lambda: append('flink'))
step('file', lambda: open('file').read())
step('link a symlink', lambda: os.link('loop1', 'loop1-hard', follow_symlinks=False))
step('rename a symlink', lambda: os.rename('self', 'self2'))
step('readlink renamed', lambda: os.readlink('self2'))
step('new long symlink', lambda: os.symlink('y' * 4095, 'long2'))
step('readlink new long', lambda: len(os.readlink('long2')))
step('symlink target of 4096', lambda: os.symlink('y' * 4096, 'long3'))
step('listing', lambda: sorted(os.listdir('.')))
print(json.dumps(out))
`

t.test('symlinks out of the mount, in loops, long: as they are, resolved in the client view', async t => {
  const bait = `bait-${process.pid}-${Date.now()}`
  const tw = await twinMounts(t, ({ lowers }) => {
    const [l0, l1] = lowers as [string, string]
    fs.symlinkSync('/etc', `${l0}/etc`)
    fs.symlinkSync(`../${bait}`, `${l0}/esc`)
    fs.symlinkSync('loop2', `${l0}/loop1`)
    fs.symlinkSync('loop1', `${l0}/loop2`)
    fs.symlinkSync('self', `${l0}/self`)
    for (let i = 0; i < 41; i++) fs.symlinkSync(`chain${i + 1}`, `${l0}/chain${i}`)
    fs.writeFileSync(`${l0}/chain41`, 'end')
    fs.symlinkSync('dangle-target', `${l0}/dangle`)
    fs.mkdirSync(`${l0}/real`)
    fs.writeFileSync(`${l0}/real/f`, 'f')
    fs.symlinkSync('real', `${l0}/sdir`)
    fs.symlinkSync('x'.repeat(4095), `${l0}/long`)
    fs.writeFileSync(`${l0}/file`, 'file')
    fs.chmodSync(`${l0}/file`, 0o644)
    fs.symlinkSync('file', `${l0}/flink`)
    fs.symlinkSync('real', `${l0}/mix`)
    fs.mkdirSync(`${l1}/mix`)
    fs.writeFileSync(`${l1}/mix/below`, 'hidden by the symlink above')
  }, { lowers: 2 })
  // What `../bait` means from the mount point (the client's view) and from each side's lower
  // layer on the host (what a daemon following the link itself would reach).
  const clientBait = new Set(tw.sides.map(s => join(dirname(s.mnt), bait)))
  for (const d of clientBait) fs.mkdirSync(d, { recursive: true })
  t.teardown(() => { for (const d of clientBait) fs.rmSync(d, { recursive: true, force: true }) })
  for (const s of tw.sides) fs.mkdirSync(join(dirname(s.lowers[0]!), bait))

  const [lf, ov] = await Promise.all(tw.sides.map(s => sh(`python3 -c "$SCRIPT" ${s.role}`, { cwd: s.mnt, env: { SCRIPT: script } })))
  t.equal(ov!.code, 0, `kernel: ${ov!.stderr}`)
  t.equal(lf!.code, 0, `layerfs: ${lf!.stderr}`)
  const a = JSON.parse(lf!.stdout || '[]') as [string, unknown][]
  const b = JSON.parse(ov!.stdout || '[]') as [string, unknown][]
  t.same(a, b, 'layerfs gives what the kernel gives')
  t.same(new Map(b).get('stat loop1'), 'ELOOP')
  t.same(new Map(b).get('stat chain0 (41 hops)'), 'ELOOP')
  t.same(new Map(b).get('O_NOFOLLOW write'), 'ELOOP')
  for (const s of tw.sides) {
    t.same(fs.readdirSync(join(dirname(s.lowers[0]!), bait)), [], `${s.role}: nothing written next to the layers on the host`)
    t.ok(fs.existsSync(join(dirname(s.mnt), bait, `x-${s.role}`)), `${s.role}: esc/x landed where the client's view says`)
  }
  t.notOk(fs.existsSync('/etc/x-layerfs'), 'nothing in the host /etc')
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
