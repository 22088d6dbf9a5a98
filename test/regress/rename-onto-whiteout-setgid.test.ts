// Regression (found by scripts/fuzz/run, seed 80000, minimized to 4 ops): a lower file renamed
// onto a whited-out name in a setgid directory. The source needs a whiteout; the kernel's
// ovl_rename then switches the two (RENAME_EXCHANGE): the target's whiteout, made by unlink in
// the workdir (0:0), lands at the source. layerfs asked for RENAME_WHITEOUT instead, whose new
// whiteout took the setgid directory's group (1000): another upper than the kernel's.
import { lstatSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { OK } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

t.test('rename of a lower file onto a whiteout in a setgid dir leaves the old 0:0 whiteout behind', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[0]!, { D: { gone: 'gone\n', src: 'src\n' } })
  })
  await tw.sameSys(t, [
    { op: 'unlink', path: 'D/gone' }, // a whiteout, made in the workdir: 0:0
    { op: 'chmod', path: 'D', mode: 0o2755 },
    { op: 'chown', path: 'D', uid: 0, gid: 1000 },
    { op: 'rename', path: 'D/src', to: 'D/gone' }, // onto the whiteout; src needs one
  ], [OK, OK, OK, OK])
  for (const s of tw.sides) {
    const st = lstatSync(join(s.upper!, 'D', 'src'))
    t.same([st.isCharacterDevice(), st.rdev, st.uid, st.gid], [true, 0, 0, 0], `${s.role}: D/src is a 0:0 whiteout`)
  }
  await tw.sameUpper(t)
  await tw.sameTree(t)
  await tw.lowersUnchanged(t)
})
