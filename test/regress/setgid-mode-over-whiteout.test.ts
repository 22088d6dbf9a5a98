// Regression (found by scripts/fuzz/run, seed 30022 with 600+150 ops, minimized to 14): a file
// created over a whiteout in a setgid directory, asked for with S_ISGID (or S_ISUID). The
// kernel creates it in the workdir with the directory's group already (its override fsgid), so
// the mode stays as asked. layerfs made it with its own group and then chowned it to the
// directory's, and chown(2) of a regular file drops S_ISUID and S_ISGID: 02755 became 0755.
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { OK, val } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

t.test('over a whiteout in a setgid dir, a new file keeps the S_ISGID and S_ISUID it asked for', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[0]!, { D: { f: 'f\n', g: 'g\n', h: 'h\n', s: 's\n' } })
  })
  const fields = ['type', 'mode', 'uid', 'gid']
  await tw.sameSys(t, [
    { op: 'chown', path: 'D', uid: 0, gid: 1000 },
    { op: 'chmod', path: 'D', mode: 0o2755 },
    { op: 'unlink', path: 'D/f' },
    { op: 'unlink', path: 'D/g' },
    { op: 'unlink', path: 'D/h' },
    { op: 'unlink', path: 'D/s' },
    { op: 'open', path: 'D/f', flags: 'O_WRONLY|O_CREAT|O_EXCL', mode: 0o2755 },
    { op: 'open', path: 'D/g', flags: 'O_WRONLY|O_CREAT|O_EXCL', mode: 0o4755 },
    { op: 'open', path: 'D/h', flags: 'O_WRONLY|O_CREAT|O_EXCL', mode: 0o640 },
    { op: 'symlink', path: 'D/s', target: 'f' },
    { op: 'lstat', path: 'D/f', fields },
    { op: 'lstat', path: 'D/g', fields },
    { op: 'lstat', path: 'D/h', fields },
    { op: 'lstat', path: 'D/s', fields },
  ], [
    OK, OK, OK, OK, OK, OK, OK, OK, OK, OK,
    val({ type: 'file', mode: '0o2755', uid: 0, gid: 1000 }),
    val({ type: 'file', mode: '0o4755', uid: 0, gid: 1000 }),
    val({ type: 'file', mode: '0o640', uid: 0, gid: 1000 }),
    val({ type: 'symlink', mode: '0o777', uid: 0, gid: 1000 }),
  ])
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
