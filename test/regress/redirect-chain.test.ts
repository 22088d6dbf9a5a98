// Regression (issue 12, stacked layers): a redirect in one lower layer that leads to a
// directory that has a redirect of its own in a layer further down. Built as two steps of a
// container build leave it, each upper pushed down as the next lower: step 1 renamed a/dir1
// to a/dir1x (relative redirect "dir1" and a whiteout), step 2 moved a/dir1x to a/empty1/dir1
// (absolute redirect "/a/dir1x"). layerfs followed one redirect only: a/empty1/dir1 showed
// empty, and unlinking a file the kernel still showed failed with ENOENT.
import t from 'tap'
import { join } from 'node:path'
import { getXattr, setXattr, whiteout, writeTree } from '../helpers/layers.js'
import { OK, err, val } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

const REDIRECT = 'trusted.overlay.redirect'

t.test('redirects are followed through every lower layer, as the kernel does', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    const [step2, step1, base] = lowers as [string, string, string]
    writeTree(base, { a: { dir1: { f1: 'f1\n', sub: { g1: 'g1\n' } }, empty1: {} } })
    writeTree(step1, { a: { dir1x: {} } })
    setXattr(join(step1, 'a/dir1x'), REDIRECT, 'dir1')
    whiteout(join(step1, 'a/dir1'))
    writeTree(step2, { a: { empty1: { dir1: {} } } })
    setXattr(join(step2, 'a/empty1/dir1'), REDIRECT, '/a/dir1x')
    whiteout(join(step2, 'a/dir1x'))
  }, { lowers: 3 })
  await tw.sameSys(t, [
    { op: 'listdir', path: 'a' },
    { op: 'listdir', path: 'a/empty1/dir1' },
    { op: 'readfile', path: 'a/empty1/dir1/sub/g1' },
    { op: 'unlink', path: 'a/empty1/dir1/sub/g1' },
    { op: 'listdir', path: 'a/empty1/dir1/sub' },
    // A third move: the redirect written goes through the ones below.
    { op: 'rename', path: 'a/empty1/dir1', to: 'dir9' },
    { op: 'listdir', path: 'dir9' },
    { op: 'readfile', path: 'dir9/f1' },
    // Back into the same parent as before: a relative move of an absolute redirect keeps it.
    { op: 'rename', path: 'dir9', to: 'dir10' },
    { op: 'listdir', path: 'dir10' },
  ], [val(['empty1']), val(['f1', 'sub']), val('g1\n'), OK, val([]), OK, val(['f1', 'sub']), val('f1\n'), OK, val(['f1', 'sub'])])
  t.equal(getXattr(join(tw.overlay.upper!, 'dir10'), REDIRECT), '/a/empty1/dir1', 'kernel: the redirect names the path in the layer below')
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})

t.test('an invalid redirect fails the lookup with EINVAL, as the kernel does', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[1]!, { t: { x: {}, f: 'f\n' } })
    writeTree(lowers[0]!, { slash: {}, empty: {}, double: {}, good: {} })
    setXattr(join(lowers[0]!, 'slash'), REDIRECT, 't/x')
    setXattr(join(lowers[0]!, 'empty'), REDIRECT, '')
    setXattr(join(lowers[0]!, 'double'), REDIRECT, '//t')
    setXattr(join(lowers[0]!, 'good'), REDIRECT, '/t')
  }, { lowers: 2 })
  await tw.sameSys(t, [
    { op: 'listdir', path: 'slash' },
    { op: 'listdir', path: 'empty' },
    { op: 'listdir', path: 'double' },
    { op: 'listdir', path: 'good' },
  ], [err('EINVAL'), err('EINVAL'), err('EINVAL'), val(['f', 'x'])])
})
