// cp -a into the mount, within it (a merged tree from the lower layers) and out of it, and over
// lower files; cp -al (hard links to lower files). Everything cp -a keeps must survive: content,
// holes, modes, owners, times, xattrs, symlinks, hard links, special files. Layerfs against
// kernel overlayfs.
import t from 'tap'
import { join } from 'node:path'
import { writeTree } from '../helpers/layers.js'
import { shOk } from '../helpers/run.js'
import { snapshotTree } from '../helpers/tree.js'
import { twinMounts } from '../helpers/twin.js'

/** A tree with everything cp -a preserves, at fixed times. */
async function sourceTree(dir: string): Promise<void> {
  writeTree(dir, {
    'plain.txt': { type: 'file', content: 'plain\n', mtime: 1_500_000_001 },
    'owned.txt': { type: 'file', content: 'owned\n', uid: 4321, gid: 8765, mode: 0o604, mtime: 1_500_000_002 },
    'attrs.txt': { type: 'file', content: 'xattrs\n', xattrs: { 'user.color': 'blue', 'user.empty': '', 'trusted.test': 'root only' }, mtime: 1_500_000_003 },
    'setgid-dir': { type: 'dir', mode: 0o2775, uid: 10, gid: 20, mtime: 1_500_000_004, entries: { 'inner.txt': { type: 'file', content: 'inner\n', mtime: 1_500_000_005 } } },
    'empty-dir': { type: 'dir', mode: 0o700, mtime: 1_500_000_006, entries: {} },
    'fifo': { type: 'fifo', mode: 0o600, mtime: 1_500_000_007 },
    'null-dev': { type: 'chardev', dev: [1, 3], mode: 0o666, mtime: 1_500_000_008 },
    'sym': { type: 'symlink', target: 'plain.txt' },
    'sym-dir': { type: 'symlink', target: 'setgid-dir' },
    'hard': { type: 'hardlink', target: 'plain.txt' },
  })
  // A sparse file: 8 MiB with 4 KiB of data in the middle.
  await shOk(`truncate -s 8M sparse && printf 'data in a hole' | dd of=sparse bs=4096 seek=1000 conv=notrunc status=none && touch -d @1500000009 sparse && touch -h -d @1500000010 sym sym-dir && touch -d @1500000011 .`, { cwd: dir })
}

t.test('cp -a into, within and out of the mount', async t => {
  const tw = await twinMounts(
    t,
    async d => {
      await sourceTree(join(d.outside, 'src'))
      // The tree to copy from the mount spans two lowers, with a whiteout and an opaque dir.
      writeTree(d.lowers[1]!, {
        tree: {
          type: 'dir', mtime: 1_400_000_000, entries: {
            'low.txt': { type: 'file', content: 'from lower1\n', mode: 0o640, mtime: 1_400_000_001 },
            'plain.txt': { type: 'file', content: 'lower1 plain, to be overwritten\n', mtime: 1_400_000_002 },
            'deleted.txt': 'whited out above\n',
            'opq': { 'hidden.txt': 'hidden\n' },
            'sub': { type: 'dir', mtime: 1_400_000_003, entries: { 'l1.txt': { type: 'file', content: 'l1\n', mtime: 1_400_000_004 } } },
          },
        },
      })
      writeTree(d.lowers[0]!, {
        tree: {
          type: 'dir', mtime: 1_400_000_010, entries: {
            'top.txt': { type: 'file', content: 'from lower0\n', xattrs: { 'user.layer': '0' }, mtime: 1_400_000_011 },
            'deleted.txt': { type: 'whiteout' },
            'opq': { type: 'dir', opaque: true, mtime: 1_400_000_012, entries: { 'shown.txt': { type: 'file', content: 'shown\n', mtime: 1_400_000_013 } } },
            'sub': { type: 'dir', mtime: 1_400_000_014, entries: { 'l0.txt': { type: 'file', content: 'l0\n', mtime: 1_400_000_015 } } },
            'link': { type: 'symlink', target: 'top.txt' },
          },
        },
      })
      await shOk(`touch -h -d @1400000016 ${d.lowers[0]}/tree/link`)
    },
    { lowers: 2 },
  )
  // diff -r cannot compare special files (exit 1); the snapshots below compare them.
  const same = (script: string) => tw.same(t, script, { code: 0 })

  await same('cp -a $OUT/src into && diff -r --no-dereference -x fifo -x null-dev $OUT/src into && echo same content')
  await same('cp -a tree copy && diff -r --no-dereference -x fifo -x null-dev tree copy && ls -A copy copy/opq')
  await same('cp -a tree/sub tree/sub2 && cp -a tree/top.txt tree/top2.txt && ls -A tree')
  // Over lower files: plain.txt exists in lower1 (cp opens it O_TRUNC: a copy-up), src dirs merge into tree.
  await same('cp -a $OUT/src/. tree/ && cat tree/plain.txt tree/low.txt && ls -A tree')
  await same('cp -al tree linked && stat -c "%n %h" tree/low.txt linked/low.txt tree/top.txt linked/top.txt')
  await same('cp -a --sparse=always tree/sparse sparse-copy && cmp tree/sparse sparse-copy && du -B1 --apparent-size sparse-copy')
  await same('mkdir $OUT/back && cp -a copy into tree $OUT/back/ && diff -r --no-dereference -x fifo -x null-dev copy $OUT/back/copy && diff -r --no-dereference -x fifo -x null-dev tree $OUT/back/tree')

  // What was copied out is identical on both sides, times and xattrs included.
  const [a, b] = await tw.both(s => snapshotTree(join(s.outside, 'back'), { mtime: true, ignoreMtime: [/^\.$/] }))
  t.same(a, b, 'copies out of the mount are the same (times, owners, xattrs, links)')
  // And the copy into the mount kept everything cp -a keeps.
  const [inA, inB] = await tw.both(s => snapshotTree(join(s.mnt, 'into'), { mtime: true, blocks: false }))
  const src = await snapshotTree(join(tw.overlay.outside, 'src'), { mtime: true })
  t.same(inB, src, 'kernel: cp -a into the mount keeps everything')
  t.same(inA, src, 'layerfs: cp -a into the mount keeps everything')

  await tw.sameTree(t, { mtime: true, ignoreMtime: [/^\.$/] })
  await tw.sameUpper(t, { mtime: true, ignoreMtime: [/^\.$/] })
  await tw.lowersUnchanged(t)
})
