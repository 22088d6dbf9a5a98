// Regression (scripts/fuzz/run --metacopy, seed 5033, minimized to one op): with metacopy=on,
// renaming a lower file that has other hard links within its directory gives its metacopy
// copy an absolute redirect, where any other file gets its old name. The kernel's
// ovl_need_absolute_redirect: the other names' upper copies may end up in other directories,
// so a relative redirect would have to become absolute later. layerfs wrote "h2".
import { join } from 'node:path'
import t from 'tap'
import { getXattr, writeTree } from '../helpers/layers.js'
import { OK, val } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

t.test('metacopy=on: a lower hard link renamed within its directory gets an absolute redirect', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[0]!, { d: { h1: 'linked\n', h2: { type: 'hardlink', target: 'd/h1' }, f: 'single\n' } })
  }, { metacopy: true })
  await tw.sameSys(t, [
    { op: 'rename', path: 'd/h2', to: 'd/b' },
    { op: 'rename', path: 'd/f', to: 'd/g' },
    { op: 'readfile', path: 'd/b' },
    { op: 'readfile', path: 'd/g' },
  ], [OK, OK, val('linked\n'), val('single\n')])
  t.equal(getXattr(join(tw.overlay.upper!, 'd/b'), 'trusted.overlay.redirect'), '/d/h2', 'the kernel: absolute')
  t.equal(getXattr(join(tw.overlay.upper!, 'd/g'), 'trusted.overlay.redirect'), 'f', 'the kernel: relative for a single link')
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
