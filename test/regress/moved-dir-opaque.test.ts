// Regression (found by test/differential, seed 2): a directory that exists only in the upper
// layer and is not opaque (made inside another upper-only dir), renamed into a merged
// directory. The kernel marks it opaque on the way in (ovl_rename: "!old_opaque &&
// ovl_type_merge(new->d_parent)"), layerfs did not: the upper layers differed on disk.
import t from 'tap'
import { join } from 'node:path'
import { isOpaque, writeTree } from '../helpers/layers.js'
import { OK, val } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

t.test('an upper-only dir renamed into a merged dir becomes opaque, as with the kernel', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[0]!, { M: { x: 'x\n' } })
    writeTree(lowers[1]!, { M: { q: 'q\n' } })
  }, { lowers: 2 })
  await tw.sameSys(t, [
    { op: 'mkdir', path: 'P' }, // in the merged root: opaque
    { op: 'mkdir', path: 'P/Q' }, // in an upper-only dir: not opaque
    { op: 'rename', path: 'P/Q', to: 'M/b' }, // into a merged dir
    { op: 'listdir', path: 'M' },
  ], [OK, OK, OK, val(['b', 'q', 'x'])])
  t.ok(isOpaque(join(tw.overlay.upper!, 'M/b')), 'kernel: M/b is opaque')
  t.ok(isOpaque(join(tw.layerfs.upper!, 'M/b')), 'layerfs: M/b is opaque')
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
