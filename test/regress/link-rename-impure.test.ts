// Regression (found by test/differential, seed 233, after swapping the uppers): link(2) of a
// lower file, or rename(2) of a copied-up one, into a directory that exists only in the upper
// layer. The kernel marks that directory impure (trusted.overlay.impure=y): it holds an entry
// whose st_ino comes from its origin, so readdir must translate d_ino there. layerfs did not;
// kernel overlayfs mounted on layerfs's upper then gave d_ino != st_ino for those entries.
import t from 'tap'
import { join } from 'node:path'
import { getXattr, writeTree } from '../helpers/layers.js'
import { mountOverlay } from '../helpers/mount.js'
import { OK, syscalls } from '../helpers/syscalls.js'
import { freshDir } from '../helpers/scratch.js'
import { twinMounts } from '../helpers/twin.js'

t.test('link and rename into an upper-only dir mark it impure; the kernel on layerfs\'s upper agrees on d_ino', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[0]!, { t: 'linked\n', s: 'moved\n', o: { type: 'dir', opaque: true, entries: { v: 'v\n' } } })
  })
  await tw.sameSys(t, [
    { op: 'mkdir', path: 'o/x' }, // upper-only dirs (in an opaque dir)
    { op: 'mkdir', path: 'P' },
    { op: 'mkdir', path: 'P/Q' },
    { op: 'link', path: 't', to: 'o/x/z' }, // a lower file: copied up, then linked
    { op: 'pwritefile', path: 's', flags: 'O_WRONLY|O_APPEND', data: 'more\n' },
    { op: 'rename', path: 's', to: 'P/Q/s2' }, // a copied-up file
  ], [OK, OK, OK, OK, { ok: true, value: 5 }, OK])
  for (const dir of ['o/x', 'P/Q']) {
    t.equal(getXattr(join(tw.overlay.upper!, dir), 'trusted.overlay.impure'), 'y', `kernel: ${dir} is impure`)
    t.equal(getXattr(join(tw.layerfs.upper!, dir), 'trusted.overlay.impure'), 'y', `layerfs: ${dir} is impure`)
  }
  // What the missing mark changes: the kernel on layerfs's upper.
  await tw.layerfs.unmount()
  const k = await mountOverlay(t, { lowers: tw.layerfs.lowers, upper: tw.layerfs.upper!, work: freshDir('work') })
  const r = await syscalls(k.mnt, [{ op: 'readdir', path: 'o/x', stat: true }, { op: 'readdir', path: 'P/Q', stat: true }])
  for (const res of r) {
    for (const e of (res as { value: Array<{ name: string; d_ino: number; ino: number }> }).value) {
      t.equal(e.d_ino, e.ino, `kernel on layerfs's upper: d_ino == st_ino for ${e.name}`)
    }
  }
  await tw.lowersUnchanged(t)
})
