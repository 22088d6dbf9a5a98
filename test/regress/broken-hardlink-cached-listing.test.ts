// Regression (found by scripts/fuzz/run, seed 60053, minimized to 3 ops): a directory listed
// (the kernel keeps the listing: FOPEN_CACHE_DIR), then one name of a lower hard-link pair
// opened for writing. The copy-up breaks the link and gives that name a new st_ino, but the
// kernel's cached listing still carried the old one as its d_ino: `readdir` said h2 was inode
// A while `stat h2` said B (find -inum, du, tar -h see two things). The copy-up now drops the
// parent's cached listing when the object's st_ino changed.
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { syscalls, type Op } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

t.test('a broken lower hard link has its new st_ino as d_ino in a listing taken before', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[0]!, { h1: 'hard-linked\n', h2: { type: 'hardlink', target: 'h1' }, other: 'x\n' })
  })
  const ops: Op[] = [
    { op: 'readdir', path: '.', stat: true },
    { op: 'open', path: 'h2', flags: 'O_RDWR' },
    { op: 'readdir', path: '.', stat: true },
  ]
  const [lf, ov] = await tw.both(s => syscalls(s.mnt, ops))
  for (const [side, r] of [['overlay', ov], ['layerfs', lf]] as const) {
    const before = (r[0] as { value: Array<{ name: string; d_ino: number; ino: number }> }).value
    const after = (r[2] as { value: Array<{ name: string; d_ino: number; ino: number }> }).value
    const h = (list: typeof after, name: string) => list.find(e => e.name === name)!
    t.equal(h(before, 'h1').ino, h(before, 'h2').ino, `${side}: h1 and h2 one inode before the copy-up`)
    t.not(h(after, 'h2').ino, h(after, 'h1').ino, `${side}: two inodes after it`)
    for (const e of after) t.equal(e.d_ino, e.ino, `${side}: d_ino == st_ino for ${e.name} in the second listing`)
  }
  await tw.sameTree(t)
  await tw.lowersUnchanged(t)
})
