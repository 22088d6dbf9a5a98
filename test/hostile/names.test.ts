// Hostile names: every byte value but NUL and '/', newlines, control bytes and invalid UTF-8,
// through every operation that takes a name (create, readdir, stat, rename, unlink, whiteout,
// xattr, symlink target, directory redirect), byte for byte as kernel overlayfs does.
import fs from 'node:fs'
import t from 'tap'
import { twinMounts } from '../helpers/twin.js'

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1')

// Runs in the mount point; prints one JSON line of everything it saw (names as hex).
const script = String.raw`
import os, json, errno
H = lambda b: b.hex()
out = {}
def tr(key, f, *a):
    try:
        r = f(*a)
        out[key] = H(r) if isinstance(r, bytes) else r
    except OSError as e:
        out[key] = errno.errorcode[e.errno]
names = [bytes([b]) + b'x' for b in range(1, 256) if b != 0x2f]
names += [b'new\nline', b'\n', b'\r\n\t', b'\x1b[31mred', b'\xff\xfe', b'\xc3\x28', b'\x80',
          b'\xed\xa0\x80', b'\xf4\x90\x80\x80', b'\xef\xbf\xbd', b' ', b'  lead', b'-rf', b'*?[]']
os.mkdir(b'made')
for n in names:
    fd = os.open(b'made/' + n, os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, n)
    os.close(fd)
out['made'] = sorted(map(H, os.listdir(b'made')))
out['read'] = all(open(b'made/' + n, 'rb').read() == n for n in names)
# lower names: stat, read, xattrs, rename, unlink (whiteouts of raw names)
low = sorted(os.listdir(b'low'))
out['low'] = list(map(H, low))
for i, n in enumerate(low):
    p = b'low/' + n
    tr('stat%d' % i, lambda: os.lstat(p).st_size)
    tr('setx%d' % i, os.setxattr, p, b'user.' + n, n)
    tr('getx%d' % i, os.getxattr, p, b'user.' + n)
    tr('listx%d' % i, lambda: sorted(os.fsencode(x).hex() for x in os.listxattr(p)))
    if i % 3 == 0: tr('unlink%d' % i, os.unlink, p)
    elif i % 3 == 1: tr('rename%d' % i, os.rename, p, b'made/moved' + n)
    else: tr('removex%d' % i, os.removexattr, p, b'user.' + n)
out['low-after'] = sorted(map(H, os.listdir(b'low')))
out['made-after'] = sorted(map(H, os.listdir(b'made')))
# symlinks whose targets are hostile bytes
for i, n in enumerate([b'\n', b'\xff/\xfe', b'../\x01..', b'\xc3\x28' * 100]):
    os.symlink(n, b'made/link%d' % i)
    tr('readlink%d' % i, os.readlink, b'made/link%d' % i)
# a directory with a non-UTF-8 name moved to another parent: its redirect names it exactly
tr('dirmv', os.rename, b'lowdir\xff', b'made/dir\xfe')
tr('dirmv-ls', lambda: sorted(map(H, os.listdir(b'made/dir\xfe'))))
tr('dirmv2', os.rename, b'made/dir\xfe', b'made/dir2\xfa')
tr('dirmv2-ls', lambda: sorted(map(H, os.listdir(b'made/dir2\xfa'))))
tr('dirmv3', os.rename, b'lowdir2\x0a\x80', b'lowdir2\x0a\x81')
tr('dirmv3-ls', lambda: sorted(map(H, os.listdir(b'lowdir2\x0a\x81'))))
print(json.dumps(out))
`

t.test('hostile names round-trip byte for byte through every name operation', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    const l = lowers[0]!
    fs.mkdirSync(`${l}/low`)
    for (const n of ['a\nb', '\x01\x02\x03', '\x7f', 'tab\there', '\xff', '\xc0\xaf', 'ok\xe9', '\xed\xa0\x80', 'é']) {
      const p = Buffer.concat([Buffer.from(`${l}/low/`), n === 'é' ? Buffer.from(n) : bytes(n)])
      fs.writeFileSync(p, n)
    }
    for (const d of ['lowdir\xff', 'lowdir2\x0a\x80']) {
      const p = Buffer.concat([Buffer.from(`${l}/`), bytes(d)])
      fs.mkdirSync(p)
      fs.writeFileSync(Buffer.concat([p, bytes('/inner\xfe')]), 'in')
    }
  })
  const [lf, ov] = await tw.sh('python3 -c "$SCRIPT"', { env: { SCRIPT: script } })
  t.equal(ov.code, 0, `kernel: ${ov.stderr}`)
  t.equal(lf.code, 0, `layerfs: ${lf.stderr}`)
  const [a, b] = [JSON.parse(lf.stdout || '{}') as Record<string, unknown>, JSON.parse(ov.stdout || '{}') as Record<string, unknown>]
  t.same(a, b, 'layerfs gives what the kernel gives, name for name')
  t.equal((b['made'] as string[]).length, 268, 'every created name is listed once')
  t.equal(b['read'], true)
  t.same(b['dirmv2-ls'], [bytes('inner\xfe').toString('hex')], 'a moved dir keeps its lower content')
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})

t.test('regression: a redirect to a non-UTF-8 lower path is stored as its bytes', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    fs.mkdirSync(Buffer.from(`${lowers[0]}/dir\xff`, 'latin1'))
    fs.writeFileSync(Buffer.from(`${lowers[0]}/dir\xff/f`, 'latin1'), 'f')
    fs.mkdirSync(`${lowers[0]}/other`)
  })
  await tw.same(t, `python3 -c 'import os; os.rename(b"dir\\xff", b"other/d"); print(os.listdir(b"other/d"))'`, { code: 0 })
  await tw.sameUpper(t, {}, 'the upper holds the same redirect bytes')
  // sameUpper compares trusted.overlay.redirect byte for byte (it was U+FFFD's bytes).
})
