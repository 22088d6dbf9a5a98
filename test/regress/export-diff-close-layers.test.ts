// Regression (found by the stacking differential test, which exports every layer of its stacks
// in one process: EMFILE after a few hundred exports): `exportLayer` and `diffLayer` opened a
// Layer per layer (a root fd, and a directory fd for each directory reached, up to 256) and
// never closed them. A long-lived caller lost descriptors with every call; now each call closes
// what it opened, also when it fails.
import t from 'tap'
import { mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { setXattr, whiteout, writeTree } from '../helpers/layers.js'
import { freshDir } from '../helpers/scratch.js'
import { exportLayer } from '../../src/image/layer-export.js'
import { diffLayer } from '../../src/image/layer-diff.js'

const openFds = (): number => readdirSync('/proc/self/fd').length

t.test('export and diff close every layer they open, also when they fail', async t => {
  const root = freshDir('close-layers')
  const [upper, l1, l2] = ['upper', 'l1', 'l2'].map(n => join(root, n)) as [string, string, string]
  writeTree(l2, { a: { b: { c: { f: 'f\n' } } }, d: { e: 'e\n' } })
  writeTree(l1, { a: { b: { g: 'g\n' } }, d: { x: { y: 'y\n' } } })
  // A renamed directory (its contents come from the lowers: every layer is walked deep) and a
  // whiteout of its old name.
  writeTree(upper, { moved: { n: 'new\n' }, d: { x: { z: 'z\n' } } })
  setXattr(join(upper, 'moved'), 'trusted.overlay.redirect', '/a')
  whiteout(join(upper, 'a'))
  const out = join(root, 'out')
  mkdirSync(out)

  // Warm up (module loading, the native addon), then count.
  await exportLayer(upper, join(out, 'warm.tar'), { lowers: [l1, l2] })
  diffLayer(upper, [l1, l2])
  const before = openFds()
  for (let i = 0; i < 10; i++) {
    const stats = await exportLayer(upper, join(out, `x${i}.tar`), { lowers: [l1, l2] })
    t.ok(stats.entries > 5, `export ${i}: the renamed dir's contents are in it`)
    t.ok(diffLayer(upper, [l1, l2]).length > 0, `diff ${i}: changes listed`)
  }
  t.equal(openFds(), before, '10 exports and 10 diffs leave no descriptor open')

  // Failing calls: a tarball in a missing directory, a missing lower layer.
  await t.rejects(exportLayer(upper, join(root, 'missing/x.tar'), { lowers: [l1, l2] }), /is not a directory/)
  await t.rejects(exportLayer(upper, join(out, 'y.tar'), { lowers: [l1, join(root, 'nope')] }), /is not a directory/)
  t.throws(() => diffLayer(upper, [l1, join(root, 'nope')]), /is not a directory/)
  t.equal(openFds(), before, 'failed calls leave no descriptor open either')
})
