// Names are bytes: names that are not UTF-8 (and names with newlines or control bytes) go
// through the mount exactly, in the merged view and on disk, as with kernel overlayfs.
import fs from 'node:fs'
import t from 'tap'
import { twinMounts } from '../helpers/twin.js'

const script = String.raw`
import os, json
def show(b): return os.fsencode(b).hex()
out = []
out.append(sorted(map(show, os.listdir(b'lowerdir'))))
p = b'lowerdir/bad\xff\xfe'
out.append(open(p, 'rb').read().decode())
with open(p, 'ab') as f: f.write(b'+')
os.symlink(b'target\xfe', b'lowerdir/link\xfa')
out.append(show(os.readlink(b'lowerdir/link\xfa')))
os.rename(p, b'lowerdir/renamed\xf0')
os.mkdir(b'lowerdir/dir\xc3')
open(b'lowerdir/dir\xc3/new\nline\x01', 'w').write('n')
os.setxattr(b'lowerdir/renamed\xf0', b'user.x\xe9', b'v')
out.append(sorted(map(show, os.listxattr(b'lowerdir/renamed\xf0'))))
os.unlink(b'lowerdir/also\x80')
out.append(sorted(map(show, os.listdir(b'lowerdir'))))
out.append(sorted(map(show, os.listdir(b'lowerdir/dir\xc3'))))
print(json.dumps(out))
`

t.test('non-UTF-8 names round-trip byte for byte', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    const dir = Buffer.from(`${lowers[0]}/lowerdir`)
    fs.mkdirSync(dir)
    fs.writeFileSync(Buffer.concat([dir, Buffer.from('/bad\xff\xfe', 'latin1')]), 'lower')
    fs.writeFileSync(Buffer.concat([dir, Buffer.from('/also\x80', 'latin1')]), 'also')
    fs.writeFileSync(Buffer.concat([dir, Buffer.from('/plain')]), 'plain')
  })
  const [lf, ov] = await tw.sh('python3 -c "$SCRIPT"', { env: { SCRIPT: script } })
  t.equal(ov.code, 0, ov.stderr)
  t.equal(lf.code, 0, lf.stderr)
  t.equal(lf.stdout, ov.stdout, 'same results as kernel overlayfs')
  const [listing] = JSON.parse(lf.stdout) as string[][]
  t.same(listing, [Buffer.from('also\x80', 'latin1').toString('hex'), Buffer.from('bad\xff\xfe', 'latin1').toString('hex'), Buffer.from('plain').toString('hex')].sort())
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
