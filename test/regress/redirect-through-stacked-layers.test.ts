// Regression (issue 12): a directory renamed in one layer and renamed again one layer up, the
// way container builds stack layers (each step's upper becomes the top lower of the next). The
// kernel's ovl_lookup follows redirects through every lower layer: the absolute redirect the
// second rename writes ("/a/dir1x") leads to the first layer's a/dir1x, whose relative redirect
// ("dir1") leads on to the original a/dir1. layerfs followed only one: a/empty1/dir1 showed
// empty, and further moves lost more (an unlink of a file the kernel still showed: ENOENT).
// redirect-chain.test.ts pins the lookup over layers made by hand; this test makes them the
// way a build does, each step on a fresh mount (test/helpers/stack.ts), so the redirects
// written by rename are checked too.
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { OK, val } from '../helpers/syscalls.js'
import { twinStack } from '../helpers/stack.js'

t.test('a directory renamed in two stacked layers keeps its lower contents, as with the kernel', async t => {
  const st = await twinStack(t, ([l0]) => {
    writeTree(l0!, { a: { dir1: { f1: 'f1\n', sub: { g1: 'g1\n' } }, empty1: {} } })
  })
  await st.step(t, [
    { op: 'rename', path: 'a/dir1', to: 'a/dir1x' },
    { op: 'listdir', path: 'a/dir1x' },
  ], [OK, val(['f1', 'sub'])], 'step 1 (rename in the same dir)')
  await st.step(t, [
    { op: 'listdir', path: 'a/dir1x' },
    { op: 'rename', path: 'a/dir1x', to: 'a/empty1/dir1' },
    { op: 'listdir', path: 'a/empty1/dir1' },
    { op: 'listdir', path: 'a/empty1/dir1/sub' },
    { op: 'readfile', path: 'a/empty1/dir1/f1' },
  ], [val(['f1', 'sub']), OK, val(['f1', 'sub']), val(['g1']), val('f1\n')], 'step 2 (one layer up, into another dir)')
  await st.step(t, [
    { op: 'listdir', path: 'a/empty1/dir1' },
    { op: 'readfile', path: 'a/empty1/dir1/sub/g1' },
    { op: 'rename', path: 'a/empty1/dir1', to: 'dir2' },
    { op: 'rename', path: 'dir2/sub', to: 'a/sub2' },
    { op: 'unlink', path: 'dir2/f1' },
    { op: 'listdir', path: 'dir2' },
    { op: 'readfile', path: 'a/sub2/g1' },
  ], [val(['f1', 'sub']), val('g1\n'), OK, OK, OK, val([]), val('g1\n')], 'step 3 (further moves, an unlink)')
  await st.step(t, [
    { op: 'listdir', path: 'a' },
    { op: 'listdir', path: 'a/sub2' },
    { op: 'unlink', path: 'a/sub2/g1' },
    { op: 'rmdir', path: 'a/sub2' },
    { op: 'listdir', path: 'a' },
  ], [val(['empty1', 'sub2']), val(['g1']), OK, OK, val(['empty1'])], 'step 4 (what is left, removed)')
  await st.crossed(t)
  await st.lowersUnchanged(t)
})
