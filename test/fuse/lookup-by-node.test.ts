// A LOOKUP takes its parent's entry by node (src/fuse/ll-ops.ts #dirEntries), not by walking
// the parent's path through the entry cache; such an entry is good only while nothing changed
// (the cache's epoch). Each story: the kernel holds a directory and has looked up some of its
// names, the directory's entry changes (copied up, renamed, removed and made again opaque,
// a name whited out, a directory renamed over it), then names not looked up before are looked
// up in it. Compared with kernel overlayfs.
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { twinMounts } from '../helpers/twin.js'

/** stat of each name given (missing ones say so), in order; exits 0 (the output is compared). */
const STAT = (...paths: string[]): string =>
  '{ ' + paths.map(p => `stat -c '%n %F %s %a %h' ${p} 2>&1 | sed 's/^stat: //'`).join('; ') + '; true; }'

t.test('lookups in a held directory after its entry changed', async t => {
  const names = (prefix: string, n: number): Record<string, string> =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, `${prefix} ${i}\n`]))
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[1]!, { d: { ...names('low', 6), sub: { deep: 'deep\n', deeper: 'x\n' } }, gone: names('g', 4), mv: names('m', 4), over: names('o', 3), target: names('t', 3), wh: names('w', 3) })
    writeTree(lowers[0]!, { d: { ...names('top', 4) }, mv: { m9: 'upper lower\n' } })
  }, { lowers: 2 })
  // The kernel learns the directories and one name in each.
  await tw.same(t, STAT('d/low0', 'gone/g0', 'mv/m0', 'over/o0', 'target/t0'), { code: 0 })

  // Copied up (chmod): the rest of its names, lower ones of both layers, and a missing one.
  await tw.same(t, 'chmod 700 d && ' + STAT('d/low1', 'd/top1', 'd/sub/deep', 'd/nothing'), { code: 0 })
  // A file made in it, then a name of a lower layer next to it.
  await tw.same(t, 'echo new > d/new && ' + STAT('d/new', 'd/low2', 'd/top2'), { code: 0 })

  // Renamed: the held node is the same, its path is not.
  await tw.same(t, 'mv mv moved && ' + STAT('moved/m1', 'moved/m9', 'mv/m2', 'moved/m2'), { code: 0 })

  // Removed and made again: opaque, none of the lower names.
  await tw.same(t, 'rm -r gone && mkdir gone && ' + STAT('gone/g1', 'gone/g2', 'gone') + '; ls -a gone', { code: 0 })

  // A directory renamed over a held one (the held node's name went).
  await tw.same(t, 'rm -r target/* && mv over target && ' + STAT('target/o1', 'target/t1', 'target/o2'), { code: 0 })

  // Held (the shell's cwd) while it is copied up and gets a name; the kernel then forgets that
  // name (drop_caches frees what is not in use) and looks it up again: only the new entry has it.
  await tw.same(t, 'cd d/sub && touch made && echo 2 > /proc/sys/vm/drop_caches && ' + STAT('made', 'deep'), { code: 0 })
  // Held and lower-only, then copied up by a removal (a whiteout in its new upper); the kernel
  // forgets the removed name and looks it up again: the old entry (no upper) would find the
  // lower file under the whiteout.
  await tw.same(t, 'cd wh && cat w0 >/dev/null && rm w1 && echo 2 > /proc/sys/vm/drop_caches && ' + STAT('w1', 'w2') + '; ls', { code: 0 })
  // A name whited out, then the others.
  await tw.same(t, 'rm d/low3 && ' + STAT('d/low3', 'd/low4', 'd/top3'), { code: 0 })

  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
