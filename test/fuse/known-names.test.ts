// Listings of names the kernel already holds nodes for (src/fuse/ll-ops.ts): their d_ino is
// the node's st_ino as last seen (no lookup per name), and READDIRPLUS sends them without a
// node (the kernel keeps the attributes it has). Both must stay what the kernel gives after
// every kind of change to those names: a copy-up (a lower hard link broken: a new st_ino), a
// rename over one, a name removed and made again, a hard link, a whiteout, a directory made
// over one. Compared with kernel overlayfs.
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { twinMounts } from '../helpers/twin.js'

const N = 60

/** Each name of `dir` with its d_ino (os.scandir) and whether it is the name's st_ino. */
const DINO = (dir: string): string =>
  `python3 -c "import os; print('\\n'.join(f'{e.name} {e.is_dir(follow_symlinks=False)} {e.inode() == os.lstat(e.path).st_ino}' for e in sorted(os.scandir('${dir}'), key=lambda e: e.name)))"`

/**
 * ls -l with inode numbers replaced by the first name that has each (the twins' layers are
 * copies), times left out (what the test changes gets the time of each side's change).
 */
const LS = (dir: string): string =>
  `ls -lain --time-style=+ ${dir} | tail -n +2 | awk '{ if (!($1 in f)) f[$1] = $NF; $1 = f[$1]; print }'`

t.test('listings of names the kernel holds: d_ino and attributes after every kind of change', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    const d: Record<string, unknown> = {}
    for (let i = 0; i < N; i++) d[`f${String(i).padStart(2, '0')}`] = `file ${i}\n`
    d['sub'] = { inside: 'i\n' }
    d['other'] = { x: 'x\n' }
    d['hl'] = { type: 'hardlink', target: 'd/f01' }
    writeTree(lowers[0]!, { d: d as never })
  })
  // The kernel learns every name by lookups first (as `git status` does), then lists.
  await tw.same(t, 'for f in d/*; do stat -c "%h %s %a %n" "$f"; done', { code: 0 })
  await tw.same(t, DINO('d'), { code: 0 })
  await tw.same(t, LS('d'), { code: 0 })
  // Changes to names the kernel holds, then the listings again (their caches are dropped by
  // the changes; the nodes stay).
  await tw.same(t, [
    'chmod 600 d/f02', // copy-up: the same st_ino
    'echo more >> d/hl', // a lower hard link copied up: a new st_ino for d/hl (and d/f01 keeps its own)
    'mv d/f03 d/f04', // renamed over a held name
    'rm d/f05 && echo again > d/f05', // removed and made again: a new inode
    'ln d/f06 d/f06-link', // a second name
    'rm d/f07', // a whiteout
    'rm -r d/other && mkdir d/other', // a directory made over a whiteout (opaque)
    'mv d/sub d/sub2', // a directory renamed (redirect)
    'touch -d @1700000000 d/f08',
  ].join(' && '), { code: 0 })
  await tw.same(t, DINO('d'), { code: 0 })
  await tw.same(t, LS('d'), { code: 0 })
  await tw.same(t, 'for f in d/*; do stat -c "%h %s %a %n" "$f"; done; stat -c "%Y %n" d/f08', { code: 0 })
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
