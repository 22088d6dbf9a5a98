// Lower layers in the AUFS format, as containers/storage extracts image layers for a mount
// program (fuse-overlayfs, layerfs): `.wh.NAME` hides NAME below, `.wh..wh..opq` makes its
// directory opaque, `.wh..wh.*` are markers. The kernel cannot read them, so it gets the same
// layers in its own format (0/0 whiteouts, the opaque xattr); layerfs gets the AUFS copy. Both
// must show the same tree, answer the same calls, and write the same (kernel-format) upper.
import t from 'tap'
import { join } from 'node:path'
import { mkdirSync, writeFileSync } from 'node:fs'
import { toAufs, writeTree } from '../helpers/layers.js'
import { OK, err, val } from '../helpers/syscalls.js'
import { type LayerDirs, twinMounts } from '../helpers/twin.js'

function build({ lowers }: LayerDirs): void {
  const [top, base] = lowers as [string, string]
  writeTree(base, {
    gone: 'gone\n',
    plain: 'plain\n',
    dir: { old: 'old\n', sub: { deep: 'deep\n' } },
    d2: { inner: 'inner\n' },
    keep: { x: 'x\n', y: 'y\n', z: 'z\n' },
    fo: { below: 'below\n' },
  })
  writeTree(top, {
    gone: { type: 'whiteout' },
    dir: { type: 'dir', opaque: true, entries: { new: 'new\n' } },
    d2: { type: 'whiteout' },
    keep: { x: { type: 'whiteout' }, w: 'w\n' },
    fo: { type: 'dir', opaque: true, entries: { above: 'above\n' } },
  })
}

const ops = [
  { op: 'listdir', path: '.' },
  { op: 'listdir', path: 'dir' },
  { op: 'listdir', path: 'keep' },
  { op: 'listdir', path: 'fo' },
  { op: 'lstat', path: 'gone' },
  { op: 'lstat', path: 'd2' },
  { op: 'readfile', path: 'keep/x' },
  // Over AUFS whiteouts: a new file, a new (opaque) directory.
  { op: 'writefile', path: 'gone', data: 'again\n' },
  { op: 'mkdir', path: 'd2' },
  { op: 'listdir', path: 'd2' },
  // Whiteouts of their own, a move of a merged directory (a redirect), a copy-up.
  { op: 'unlink', path: 'keep/y' },
  { op: 'rename', path: 'keep', to: 'keep2' },
  { op: 'listdir', path: 'keep2' },
  { op: 'pwritefile', path: 'plain', data: 'more\n', flags: 'O_WRONLY|O_APPEND' },
  { op: 'rmdir', path: 'dir/sub' },
  { op: 'listdir', path: 'dir' },
]

const expected = [
  val(['dir', 'fo', 'keep', 'plain']), val(['new']), val(['w', 'y', 'z']), val(['above']),
  err('ENOENT'), err('ENOENT'), err('ENOENT'),
  OK, OK, val([]),
  OK, OK, val(['w', 'z']), val(5), err('ENOENT'), val(['new']),
]

t.test('AUFS lowers (.wh.NAME, .wh..wh..opq) show what the same layers in the kernel format show', async t => {
  const tw = await twinMounts(t, build, {
    lowers: 2,
    layerfsLayers: d => {
      toAufs(d.lowers[0]!)
      // Markers of other AUFS features are hidden too.
      mkdirSync(join(d.lowers[0]!, '.wh..wh.plnk'))
      writeFileSync(join(d.lowers[0]!, '.wh..wh.aufs'), '')
    },
  })
  await tw.sameTree(t)
  await tw.sameSys(t, ops, expected)
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})

t.test("fuse-overlayfs's opaque mark (user.fuseoverlayfs.opaque) and AUFS whiteouts", async t => {
  const tw = await twinMounts(t, build, { lowers: 2, layerfsLayers: d => toAufs(d.lowers[0]!, { fuseOverlayfs: true }) })
  await tw.sameSys(t, ops, expected)
  await tw.sameTree(t)
  await tw.sameUpper(t)
})

t.test('an AUFS name cannot be made or reached through the mount', async t => {
  const tw = await twinMounts(t, build, { lowers: 2, layerfsLayers: d => toAufs(d.lowers[0]!) })
  const [lf] = await tw.sys([
    { op: 'lstat', path: '.wh.gone' },
    { op: 'lstat', path: 'dir/.wh..wh..opq' },
    { op: 'writefile', path: '.wh.plain', data: 'x' },
    { op: 'mkdir', path: 'keep/.wh.z' },
    { op: 'rename', path: 'plain', to: '.wh.plain' },
    { op: 'listdir', path: 'plain' },
  ])
  // The kernel allows such names (its layers never mean anything by them); in AUFS-format
  // layers they are whiteouts, so layerfs refuses them, as fuse-overlayfs does.
  t.same(lf, [err('ENOENT'), err('ENOENT'), err('EINVAL'), err('EINVAL'), err('EINVAL'), err('ENOTDIR')])
})
