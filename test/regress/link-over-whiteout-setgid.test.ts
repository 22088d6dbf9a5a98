// Regression (found by scripts/fuzz/run, seed 7014 with 600+200 ops): link(2) onto a whiteout
// in a setgid directory. A link makes no new inode: the kernel leaves the file's owner alone.
// layerfs gave the linked file the directory's group (it treated the link like a new object
// made over a whiteout), so link changed the group of an existing file, under both names.
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { OK, val } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

t.test('link over a whiteout in a setgid dir keeps the file\'s owner', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[0]!, { D: { x: 'x\n' } })
  })
  const fields = ['uid', 'gid', 'nlink']
  await tw.sameSys(t, [
    { op: 'chown', path: 'D', uid: 0, gid: 1000 },
    { op: 'chmod', path: 'D', mode: 0o2775 },
    { op: 'unlink', path: 'D/x' }, // a whiteout at D/x
    { op: 'writefile', path: 'F', data: 'f' },
    { op: 'chown', path: 'F', uid: 1001, gid: 1001 },
    { op: 'link', path: 'F', to: 'D/x' }, // onto the whiteout
    { op: 'lstat', path: 'F', fields },
    { op: 'lstat', path: 'D/x', fields },
  ], [OK, OK, OK, OK, OK, OK, val({ uid: 1001, gid: 1001, nlink: 2 }), val({ uid: 1001, gid: 1001, nlink: 2 })])
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
