// Regression (found by scripts/fuzz/run, seed 8, on the lowlevel binding): a directory removed
// while the kernel still held its node (an open fd on it) left its st_ino bound to that node.
// The upper fs (ext4 here) hands the freed inode number to the next new directory, whose lookup
// then got the dead directory's node id: mkdir inside it failed with ENOENT (EEXIST in the fuzz
// sequence). A node whose last name goes must give its inode number up.
// Since a removed directory the kernel holds is held by layerfs too, as kernel overlayfs holds
// its upper inode (src/union/detached-dir.ts, test/regress/open-dir-removed), its number is
// not freed before the kernel lets the node go, and this sequence no longer gets it reused:
// the node's giving up its number remains for when that hold cannot be taken.
import t from 'tap'
import { twinMounts } from '../helpers/twin.js'

const script = `
import os, json
out = []
reused = 0
for i in range(12):
    a, b = f'a{i}', f'b{i}'
    os.mkdir(a)
    ino = os.stat(a).st_ino
    fd = os.open(a, os.O_RDONLY)
    os.rmdir(a)
    os.mkdir(b)
    reused += os.stat(b).st_ino == ino
    try:
        os.mkdir(b + '/z')
        f = os.open(b + '/z/f', os.O_CREAT | os.O_WRONLY, 0o644)
        os.close(f)
        out.append(sorted(os.listdir(b + '/z')))
    except OSError as e:
        out.append(e.strerror)
    os.close(fd)
    # a file's number freed and reused while the kernel still holds the old file open
    g = os.open(f'f{i}', os.O_CREAT | os.O_RDWR, 0o644)
    os.unlink(f'f{i}')
    with open(f'g{i}', 'w') as h:
        h.write('new file')
    with open(f'g{i}') as h:
        out.append(h.read())
    os.close(g)
print(json.dumps({'out': out, 'reused': reused}))
`

t.test('an inode number freed and reused gets a fresh node', async t => {
  // ext4 hands a freed inode number to the next new inode (tmpfs counts upwards).
  const tw = await twinMounts(t, ({ lowers }) => void lowers, { fs: 'ext4' })
  const [lf, ov] = await tw.sh('python3 -c "$SCRIPT"', { env: { SCRIPT: script } })
  t.equal(lf.code, 0, lf.stderr)
  t.equal(ov.code, 0, ov.stderr)
  const l = JSON.parse(lf.stdout) as { out: unknown[]; reused: number }
  const o = JSON.parse(ov.stdout) as { out: unknown[]; reused: number }
  t.same(l.out, o.out, 'same results as kernel overlayfs')
  t.same(l.out.filter(x => Array.isArray(x)), Array(12).fill(['f']), 'mkdir and create inside the new directory work')
  // Before layerfs held removed directories, ext4 gave the held one's number to the new one
  // every time (12 of 12) while the kernel's overlay never lets it go that early.
  t.equal(o.reused, 0, 'kernel: no number of a directory it still holds is reused')
  t.equal(l.reused, o.reused, 'layerfs: the same')
  await tw.sameTree(t)
})
