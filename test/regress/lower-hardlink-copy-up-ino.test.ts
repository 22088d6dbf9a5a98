// Regression (found by test/differential, seed 1): a lower file with two hard links, one of
// them copied up. Kernel overlayfs (index=off) breaks the link at copy-up: the copy is a new
// file, shown with the upper inode's number, and its upper gets no trusted.overlay.origin
// (a broken lower hard link cannot keep the lower st_ino: the other name still has it). layerfs
// showed the copy with the lower st_ino, the same as the other name: two different files, one
// st_ino (tar, cp -a, rsync -H, du then take them for one file), and wrote an origin.
import t from 'tap'
import { join } from 'node:path'
import { getXattr, writeTree } from '../helpers/layers.js'
import { syscalls, type Op } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

t.test('a copied-up lower hard link gets an st_ino of its own, and no origin', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[0]!, { h1: 'hard-linked\n', h2: { type: 'hardlink', target: 'h1' }, other: 'x\n' })
  })
  const ops: Op[] = [
    { op: 'pwritefile', path: 'h2', flags: 'O_WRONLY|O_APPEND', data: 'more\n' },
    { op: 'lstat', path: 'h1', fields: ['ino', 'nlink', 'size'] },
    { op: 'lstat', path: 'h2', fields: ['ino', 'nlink', 'size'] },
    { op: 'readdir', path: '.', stat: true },
  ]
  const [lf, ov] = await tw.both(s => syscalls(s.mnt, ops))
  for (const [side, r] of [['overlay', ov], ['layerfs', lf]] as const) {
    const h1 = (r[1] as { value: { ino: number; nlink: number; size: number } }).value
    const h2 = (r[2] as { value: { ino: number; nlink: number; size: number } }).value
    t.not(h1.ino, h2.ino, `${side}: h1 and h2 are two files now, with two st_ino`)
    t.same([h1.nlink, h1.size, h2.nlink, h2.size], [2, 12, 1, 17], `${side}: nlink and sizes`)
    const ents = (r[3] as { value: Array<{ name: string; d_ino: number; ino: number }> }).value
    for (const e of ents) t.equal(e.d_ino, e.ino, `${side}: d_ino == st_ino for ${e.name}`)
  }
  t.equal(getXattr(join(tw.overlay.upper!, 'h2'), 'trusted.overlay.origin'), undefined, 'kernel: no origin for a broken hard link')
  t.equal(getXattr(join(tw.layerfs.upper!, 'h2'), 'trusted.overlay.origin'), undefined, 'layerfs: no origin either')
  await tw.sameTree(t)
  await tw.lowersUnchanged(t)
})
