// Regression (found by scripts/stress/soak on the lowlevel binding): a directory opened, then
// renamed, with another directory taking its old name, was listed by the path it had at
// opendir: the reader got the other directory's entries (or none). The kernel lists the
// directory the fd is open on. Also: a rename of a directory while a copy-up below it is in
// flight must not leave the copy-up writing to the old path.
import { mkdirSync, writeFileSync } from 'node:fs'
import t from 'tap'
import { twinMounts } from '../helpers/twin.js'

const script = `
import os, json
out = []
os.mkdir('a'); os.mkdir('b')
for i in range(5): open(f'a/x{i}', 'w').close()
open('b/only-in-b', 'w').close()
fd = os.open('a', os.O_RDONLY | os.O_DIRECTORY)
os.rename('a', 'c')
os.rename('b', 'a')
out.append(sorted(os.listdir(fd)))          # the directory now called c
out.append(sorted(os.listdir('a')))
os.close(fd)
# a lower file opened for writing (copy-up), its directory renamed before the write
w = os.open('lowerdir/f', os.O_WRONLY | os.O_APPEND)
os.rename('lowerdir', 'moved')
os.write(w, b'appended\\n')
os.close(w)
out.append(open('moved/f').read())
out.append(sorted(os.listdir('.')))
print(json.dumps(out))
`

t.test('readdir of an open directory that was renamed lists that directory', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    const l = lowers[0]!
    mkdirSync(`${l}/lowerdir`)
    writeFileSync(`${l}/lowerdir/f`, 'lower\n')
  })
  const [lf, ov] = await tw.sh('python3 -c "$SCRIPT"', { env: { SCRIPT: script } })
  t.equal(lf.code, 0, lf.stderr)
  t.equal(ov.code, 0, ov.stderr)
  t.equal(lf.stdout, ov.stdout, 'same results as kernel overlayfs')
  t.same(JSON.parse(lf.stdout).slice(0, 3), [['x0', 'x1', 'x2', 'x3', 'x4'], ['only-in-b'], 'lower\nappended\n'])
  await tw.sameTree(t)
  await tw.sameUpper(t)
})
