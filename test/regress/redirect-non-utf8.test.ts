// Regression (found by reading setRedirect for issue 3's "names are bytes"): a lower directory
// whose path is not UTF-8, moved. Its trusted.overlay.redirect must hold the lower path's exact
// bytes, as the kernel's does; layerfs wrote U+FFFD for each stray byte (and read redirects
// back the same lossy way), so the moved directory lost its lower contents.
import fs from 'node:fs'
import t from 'tap'
import { twinMounts } from '../helpers/twin.js'

const script = String.raw`
import os, json
def show(b): return os.fsencode(b).hex()
out = []
os.rename(b'p\xfe/dir\xff', b'other/moved')        # an absolute redirect: /p\xfe/dir\xff
os.rename(b'p\xfe/sub\xe9', b'p\xfe/sub\xe9\xe9')   # a relative one: sub\xe9
os.rename(b'p\xfe', b'q\xfa')                        # its parent moves: /p\xfe
os.rename(b'q\xfa/sub\xe9\xe9', b'other/sub')        # absolute again, through the parent's redirect
for d in [b'other/moved', b'other/sub', b'q\xfa', b'other']:
    out.append(sorted(map(show, os.listdir(d))))
out.append(open(b'other/moved/f\xf1', 'rb').read().decode())
print(json.dumps(out))
`

t.test('redirects of non-UTF-8 paths keep their bytes', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    const b = (s: string): Buffer => Buffer.from(s, 'latin1')
    const root = `${lowers[0]}/`
    for (const d of ['p\xfe', 'p\xfe/dir\xff', 'p\xfe/sub\xe9', 'other']) fs.mkdirSync(b(root + d))
    fs.writeFileSync(b(root + 'p\xfe/dir\xff/f\xf1'), 'f')
    fs.writeFileSync(b(root + 'p\xfe/sub\xe9/g'), 'g')
  })
  const [lf, ov] = await tw.sh('python3 -c "$SCRIPT"', { env: { SCRIPT: script } })
  t.equal(ov.code, 0, 'kernel: the script runs', { stderr: ov.stderr })
  t.equal(lf.code, 0, 'layerfs: the script runs', { stderr: lf.stderr })
  t.equal(lf.stdout, ov.stdout, 'same results as kernel overlayfs')
  const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex')
  t.same(JSON.parse(ov.stdout), [[hex('f\xf1')], [hex('g')], [], [hex('moved'), hex('sub')], 'f'], 'the kernel shows the moved dirs\' lower contents')
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
