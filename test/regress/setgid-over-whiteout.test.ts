// Regression (found by test/differential, seed 374 with setgid modes): an object created over a
// whiteout in a setgid directory. The kernel gives it the directory's group, and a new
// directory inherits S_ISGID, as anywhere else in a setgid directory. layerfs made it in the
// workdir (no setgid parent there) and renamed it into place: group 0 and no S_ISGID.
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { OK, val } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

t.test('created over a whiteout in a setgid dir: the dir\'s group, and S_ISGID for a dir', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[0]!, { d: { sub: { inside: 'i\n' }, f: 'f\n', g: 'g\n' } })
  })
  const fields = ['type', 'mode', 'uid', 'gid']
  await tw.sameSys(t, [
    { op: 'chown', path: 'd', uid: 0, gid: 1000 },
    { op: 'chmod', path: 'd', mode: 0o2775 },
    { op: 'rename', path: 'd/sub', to: 'moved' }, // whiteout at d/sub
    { op: 'unlink', path: 'd/f' }, // whiteout at d/f
    { op: 'mkdir', path: 'd/sub', mode: 0o755 }, // over a whiteout
    { op: 'open', path: 'd/f', flags: 'O_WRONLY|O_CREAT', mode: 0o644 }, // over a whiteout
    { op: 'mkdir', path: 'd/new', mode: 0o755 }, // no whiteout (this one was right)
    { op: 'lstat', path: 'd/sub', fields },
    { op: 'lstat', path: 'd/f', fields },
    { op: 'lstat', path: 'd/new', fields },
  ], [
    OK, OK, OK, OK, OK, OK, OK,
    val({ type: 'dir', mode: '0o2755', uid: 0, gid: 1000 }),
    val({ type: 'file', mode: '0o644', uid: 0, gid: 1000 }),
    val({ type: 'dir', mode: '0o2755', uid: 0, gid: 1000 }),
  ])
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
