// Regression: a file unlinked while open showed up as ".fuse_hiddenXXXX" in its directory
// (libfuse 2 renames it until the last close), and a lower file was copied up for it.
// Kernel overlayfs shows nothing, copies nothing, and the open fd keeps working.
import fs from 'node:fs'
import t from 'tap'
import { twinMounts } from '../helpers/twin.js'

const script = `
import os, json, sys
out = []
fd = os.open('lowerfile', os.O_RDONLY)
os.unlink('lowerfile')
out.append(sorted(os.listdir('.')))
out.append(os.read(fd, 100).decode())
out.append(os.fstat(fd).st_size)
os.close(fd)
out.append(sorted(os.listdir('.')))
os.mkdir('dir')
fd = os.open('dir/new', os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b'abc')
os.unlink('dir/new')
out.append(sorted(os.listdir('dir')))
os.lseek(fd, 0, 0)
out.append(os.read(fd, 10).decode())
os.ftruncate(fd, 1)
out.append(os.fstat(fd).st_size)
os.close(fd)
os.rmdir('dir')
out.append(sorted(os.listdir('.')))
print(json.dumps(out))
`

t.test('an unlinked open file: no hidden name, no copy-up, the fd keeps working', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    fs.writeFileSync(`${lowers[0]}/lowerfile`, 'lower bytes\n')
    fs.writeFileSync(`${lowers[0]}/other`, 'x\n')
  })
  const [lf, ov] = await tw.sh('python3 -c "$SCRIPT"', { env: { SCRIPT: script } })
  t.equal(lf.code, 0, lf.stderr)
  t.equal(ov.code, 0, ov.stderr)
  t.equal(lf.stdout, ov.stdout, 'same results as kernel overlayfs')
  t.same(JSON.parse(lf.stdout), [['other'], 'lower bytes\n', 12, ['other'], [], 'abc', 1, ['other']])
  t.same(fs.readdirSync(tw.layerfs.upper!).sort(), ['lowerfile'], 'only the whiteout in the upper')
  t.same(fs.readdirSync(`${tw.layerfs.work!}/work`), [], 'nothing parked in the workdir after the last close')
})
