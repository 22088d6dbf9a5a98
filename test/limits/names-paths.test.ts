// Name and path limits, as kernel overlayfs has them: names of 255 bytes work and 256 get
// ENAMETOOLONG in every call that takes a name; absolute paths of 4,095 bytes work and 4,096
// get ENAMETOOLONG; 200 directory levels in a lower layer copy up, and 200 levels made and
// removed through the mount.
import fs from 'node:fs'
import t from 'tap'
import { twinMounts } from '../helpers/twin.js'
import { PY_STEPS } from '../helpers/py-steps.js'

const script = PY_STEPS + String.raw`
def touch(p): os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
for n in (255, 256):
    a, b = 'a' * n, 'b' * n
    step('create %d' % n, lambda: touch(a))
    step('stat %d' % n, lambda: os.stat(a).st_size)
    step('mkdir %d' % n, lambda: os.mkdir('d' * n))
    step('symlink %d' % n, lambda: os.symlink('x', 's' * n))
    step('link to %d' % n, lambda: os.link('lowerfile', 'l' * n))
    step('rename to %d' % n, lambda: os.rename('lowerfile2', b))
    step('mknod fifo %d' % n, lambda: os.mkfifo('p' * n))
    step('unlink %d' % n, lambda: os.unlink(a))
    step('lower name %d' % n, lambda: open('lowerdir/' + 'n' * n).read())
    step('setxattr name %d' % n, lambda: os.setxattr('lowerdir', 'user.' + 'x' * (n - 5), b'v'))
step('symlink target 4095', lambda: os.symlink('t' * 4095, 'long-target'))
step('readlink 4095', lambda: len(os.readlink('long-target')))
step('symlink target 4096', lambda: os.symlink('t' * 4096, 'too-long-target'))
# absolute paths of 4095 and 4096 bytes: 200-byte components below the mount point
base = os.getcwd()
cur = os.path.join(base, 'deep')
os.mkdir(cur)
while len(cur) + 201 <= 4094:
    cur = os.path.join(cur, 'c' * 200)
    os.mkdir(cur)
rest = 4095 - len(cur) - 1
p4095 = os.path.join(cur, 'f' * rest)
p4096 = os.path.join(cur, 'g' * (rest + 1))
step('create at 4095 bytes', lambda: touch(p4095))
step('stat at 4095 bytes', lambda: os.stat(p4095).st_size)
step('create at 4096 bytes', lambda: touch(p4096))
step('stat at 4096 bytes', lambda: os.stat(p4096).st_size)
# beyond PATH_MAX through relative paths from deep inside: the union path passes 4096 bytes
os.chdir(cur)
step('relative create beyond PATH_MAX', lambda: touch('h' * 255))
def deeper():
    for i in range(3):
        os.mkdir('e' * 200)
        os.chdir('e' * 200)
    touch('x')
    with open('x', 'w') as f: f.write('deep')
    return open('x').read()
step('3 more levels and a file beyond PATH_MAX', deeper)
step('xattr beyond PATH_MAX', lambda: [os.setxattr('x', 'user.a', b'1'), os.getxattr('x', 'user.a').decode()][1])
step('symlink, rename, listing beyond PATH_MAX', lambda: [os.symlink('x', 'y'), os.rename('x', 'z'), sorted(os.listdir('.'))][2])
os.chdir(base)
step('rename the top of the deep tree', lambda: os.rename('deep', 'deep2'))
def again():
    os.chdir(cur.replace(base + '/deep', base + '/deep2', 1))
    r = [os.stat('h' * 255).st_size, open('/'.join(['e' * 200] * 3) + '/z').read()]
    os.chdir(base)
    return r
step('reached again after the rename', again)
# 200 levels in the lower: write at the bottom (200 parents copy up), read it back
p = '/'.join(['l%d' % i for i in range(200)])
step('lower 200 levels read', lambda: open(p + '/bottom').read())
def append():
    with open(p + '/bottom', 'a') as f: f.write('+')
    return open(p + '/bottom').read()
step('lower 200 levels copy-up', append)
# 200 levels through the mount: make, list, remove
q = '/'.join(['m%d' % i for i in range(200)])
step('makedirs 200 levels', lambda: os.makedirs(q))
step('file at 200 levels', lambda: touch(q + '/f'))
def walk():
    return sum(1 for _ in os.walk('m0'))
step('walk 200 levels', walk)
step('rename the top of 200 levels', lambda: os.rename('m0', 'M0'))
step('file after rename', lambda: os.stat('M0/' + q[3:] + '/f').st_size)
def rmtree():
    os.unlink('M0/' + q[3:] + '/f')
    parts = ['M0'] + q.split('/')[1:]
    for i in range(len(parts), 0, -1): os.rmdir('/'.join(parts[:i]))
step('remove 200 levels', rmtree)
step('listing', lambda: sorted(x[:12] for x in os.listdir('.')))
print(json.dumps(out))
`

t.test('names of 255/256 bytes, paths of 4095/4096, 200 levels: as the kernel does', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    const l = lowers[0]!
    fs.writeFileSync(`${l}/lowerfile`, 'lf')
    fs.writeFileSync(`${l}/lowerfile2`, 'lf2')
    fs.mkdirSync(`${l}/lowerdir`)
    fs.writeFileSync(`${l}/lowerdir/${'n'.repeat(255)}`, '255')
    const deep = Array.from({ length: 200 }, (_, i) => `l${i}`).join('/')
    fs.mkdirSync(`${l}/${deep}`, { recursive: true })
    fs.writeFileSync(`${l}/${deep}/bottom`, 'bottom')
  })
  // The two mount points must be the same length for the absolute path steps to match.
  t.equal(tw.layerfs.mnt.length, tw.overlay.mnt.length, 'mount point paths of one length')
  const [lf, ov] = await tw.sh('python3 -c "$SCRIPT"', { env: { SCRIPT: script }, timeout: 120_000 })
  t.equal(ov.code, 0, `kernel: ${ov.stderr}`)
  t.equal(lf.code, 0, `layerfs: ${lf.stderr}`)
  const a = JSON.parse(lf.stdout || '[]') as [string, unknown][]
  const b = JSON.parse(ov.stdout || '[]') as [string, unknown][]
  t.same(a, b, 'layerfs gives what the kernel gives')
  const m = new Map(b)
  t.same([m.get('create 255'), m.get('create 256'), m.get('create at 4095 bytes'), m.get('create at 4096 bytes')], ['ok', 'ENAMETOOLONG', 'ok', 'ENAMETOOLONG'])
  t.equal(m.get('lower 200 levels copy-up'), 'bottom+')
  t.equal(m.get('3 more levels and a file beyond PATH_MAX'), 'deep')
  t.same(m.get('reached again after the rename'), [0, 'deep'])
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
