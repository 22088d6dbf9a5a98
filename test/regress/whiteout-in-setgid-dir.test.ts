// Regression (found by test/differential, rule whiteout-group-in-setgid-dir): a whiteout left in
// a setgid directory. The kernel makes the whiteout of unlink and rmdir in the workdir with the
// mounter's credentials and renames it in, so it is 0:0 wherever it lands; layerfs made the
// whiteout of a lower-only name in place, where the setgid parent gave it its group. rename's
// whiteout is another matter: the kernel asks the upper fs for RENAME_WHITEOUT, which makes it
// in place, so it takes the setgid directory's group (pinned here too).
import { lstatSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { OK } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

t.test('whiteouts in a setgid dir: 0:0 from unlink and rmdir, the dir\'s group from rename', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[0]!, {
      D: { f: 'f\n', g: 'g\n', h: 'h\n', k: 'k\n', o: 'o\n', p: 'p\n', empty: {}, sub: { x: 'x\n' } },
    })
  })
  await tw.sameSys(t, [
    { op: 'chown', path: 'D', uid: 0, gid: 1000 },
    { op: 'chmod', path: 'D', mode: 0o2775 },
    { op: 'unlink', path: 'D/f' }, // lower-only file
    { op: 'rmdir', path: 'D/empty' }, // lower-only directory
    { op: 'rename', path: 'D/g', to: 'G' }, // copy-up, then a whiteout at the source
    { op: 'rename', path: 'D/sub', to: 'S' }, // a lower dir moved out: redirect and whiteout
    { op: 'chmod', path: 'D/h', mode: 0o600 }, // copied up, then removed
    { op: 'unlink', path: 'D/h' },
    { op: 'chmod', path: 'D/k', mode: 0o600 }, // copied up, then replaced by a rename
    { op: 'rename', path: 'D/k', to: 'K' },
    { op: 'chmod', path: 'D/o', mode: 0o600 }, // copied up, then removed while open
  ], [OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK])
  // Removed while open (libfuse 2 renames such a file to .fuse_hidden*: layerfs's hide path).
  await tw.same(t, 'exec 3<D/o 4<D/p; rm D/o D/p; cat <&3 <&4; exec 3<&- 4<&-; ls -A D')
  const removed = ['f', 'empty', 'h', 'o', 'p'] // by unlink or rmdir: made in the workdir
  const renamed = ['g', 'sub', 'k'] // by RENAME_WHITEOUT: made in place
  for (const s of tw.sides) {
    for (const name of [...removed, ...renamed]) {
      const st = lstatSync(join(s.upper!, 'D', name))
      const gid = removed.includes(name) ? 0 : 1000
      t.ok(st.isCharacterDevice() && st.rdev === 0, `${s.role}: D/${name} is a whiteout`)
      t.same({ uid: st.uid, gid: st.gid }, { uid: 0, gid }, `${s.role}: whiteout D/${name} is 0:${gid}`)
    }
  }
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
