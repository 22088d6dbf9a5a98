// rm -rf of trees that come from the lower layers (merged across two lowers and a used upper):
// the merged view loses them, the upper gets exactly the kernel's whiteouts, the lowers keep
// every byte, and a dir made again over the whiteout is opaque. Layerfs against the kernel.
import t from 'tap'
import { join } from 'node:path'
import { isOpaque, isWhiteout, writeTree } from '../helpers/layers.js'
import { twinMounts } from '../helpers/twin.js'

const wide = (n: number, prefix: string): Record<string, string> =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${String(i).padStart(3, '0')}.txt`, `${prefix} ${i}\n`]))

t.test('rm -rf of lower trees', async t => {
  const tw = await twinMounts(
    t,
    d => {
      const [l0, l1] = d.lowers as [string, string]
      writeTree(l1, {
        tree: { a: wide(40, 'l1-'), b: { c: { d: { e: 'deep\n' } } }, 'ro-dir': { type: 'dir', mode: 0o555, entries: { f: 'in a read-only dir\n' } }, gone: 'whited out\n' },
        keep: { 'k.txt': 'kept\n' },
        half: { 'lower1.txt': '1\n', sub: { 'x.txt': 'x\n' } },
      })
      writeTree(l0, {
        tree: { a: wide(40, 'l0-'), 'sym': { type: 'symlink', target: 'a' }, fifo: { type: 'fifo' }, gone: { type: 'whiteout' }, opq: { type: 'dir', opaque: true, entries: { o: 'o\n' } } },
        half: { 'lower0.txt': '0\n' },
      })
      // A used upper: some of tree already copied up, an upper-only file, an upper whiteout.
      writeTree(d.upper!, {
        tree: { a: { 'l0-000.txt': 'changed in upper\n', 'upper-only.txt': 'u\n', 'l1-001.txt': { type: 'whiteout' } } },
      })
    },
    { lowers: 2 },
  )
  const same = (script: string, code = 0) => tw.same(t, script, { code })

  await same('find tree | sort | wc -l && ls tree/a | head -3')
  await same('rm -rf tree/b && ls tree')
  await same('rm -rf tree/a/l1-0* && ls tree/a | wc -l')
  await same('rm -rf half/sub half/lower1.txt && ls -A half')
  await same('rm -rf tree && ls -A && test ! -e tree')
  await same('ls -A tree', 2)
  for (const s of tw.sides) t.ok(isWhiteout(join(s.upper!, 'tree')), `${s.role}: tree is a whiteout in upper`)
  await same('mkdir tree && ls -A tree && echo new > tree/n && ls -A tree')
  for (const s of tw.sides) t.ok(isOpaque(join(s.upper!, 'tree')), `${s.role}: tree made again is opaque in upper`)
  // rm -rf of the whole mount's content, then the mount is empty.
  await same('rm -rf ./* && ls -A | wc -l && find . | sort')

  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
