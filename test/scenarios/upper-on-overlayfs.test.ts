// An upper layer on overlayfs: inside a container whose root is overlayfs (podman in podman, a
// CI container), which is when containers/storage falls back to a mount program at all. The
// kernel refuses such an upper; overlayfs refuses to make 0/0 devices (EPERM), so layerfs
// detects that at mount and writes whiteouts as fuse-overlayfs does there, `.wh.NAME` files.
// The oracle: kernel overlayfs on the same layers with its upper on an ordinary filesystem;
// the trees and results must be the same, and the uppers the same but for the whiteouts' form.
import fs from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { mountLayerfs, mountOverlay } from '../helpers/mount.js'
import { freshDir } from '../helpers/scratch.js'
import { OK, err, syscalls, val } from '../helpers/syscalls.js'
import { diffSnapshots, snapshotTree, type Snapshot } from '../helpers/tree.js'
import { KERNEL_PRIVATE_XATTRS } from '../helpers/twin.js'
import { writeTree } from '../helpers/layers.js'

const LOWER = {
  file: 'file\n',
  gone: 'gone\n',
  dir: { a: 'a\n', sub: { s: 's\n' } },
  moved: { m: 'm\n' },
  empty: {},
  keep: { k: 'k\n', l: 'l\n' },
}

const OPS = [
  { op: 'unlink', path: 'gone' },
  { op: 'lstat', path: 'gone' },
  { op: 'unlink', path: 'keep/k' },
  { op: 'rmdir', path: 'dir/sub' },
  { op: 'unlink', path: 'dir/sub/s' },
  { op: 'rmdir', path: 'dir/sub' },
  { op: 'rmdir', path: 'empty' },
  { op: 'mkdir', path: 'empty' }, // over a whiteout: opaque
  { op: 'writefile', path: 'gone', data: 'back\n' }, // over a whiteout
  { op: 'rename', path: 'moved', to: 'moved2' }, // a whiteout left, a redirect
  { op: 'rename', path: 'file', to: 'keep/k' }, // onto a whiteout
  { op: 'listdir', path: '.' },
  { op: 'listdir', path: 'keep' },
  { op: 'listdir', path: 'dir' },
  { op: 'listdir', path: 'empty' },
  { op: 'listdir', path: 'moved2' },
  { op: 'readfile', path: 'keep/k' },
]

const EXPECTED = [
  OK, err('ENOENT'), OK, err('ENOTEMPTY'), OK, OK, OK, OK, OK, OK, OK,
  val(['dir', 'empty', 'gone', 'keep', 'moved2']), val(['k', 'l']), val(['a']), val([]), val(['m']), val('file\n'),
]

/** The kernel's 0/0 whiteout NAME in a snapshot, as layerfs writes it on overlayfs: a file .wh.NAME. */
function asAufs(s: Snapshot): Snapshot {
  const out: Snapshot = {}
  for (const [rel, e] of Object.entries(s)) {
    if (e.type === 'chardev' && e.rdev === '0:0') {
      const i = rel.lastIndexOf('/')
      out[`${rel.slice(0, i + 1)}.wh.${rel.slice(i + 1)}`] = { type: 'file', mode: '0o600', size: 0 } as never
    } else out[rel] = e
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)))
}

/** An upper and a workdir on a filesystem that is an overlayfs, as a container's root is. */
async function onOverlayfs(t: Test): Promise<{ upper: string; work: string }> {
  const ovl = await mountOverlay(t, { lowers: [freshDir('base')], upper: freshDir('ovl-upper') })
  const upper = join(ovl.mnt, 'upper')
  const work = join(ovl.mnt, 'work')
  fs.mkdirSync(upper)
  fs.mkdirSync(work)
  return { upper, work }
}

t.test('an upper on overlayfs: AUFS whiteouts, the same view and results as the kernel', async t => {
  const { upper, work } = await onOverlayfs(t)
  const l1 = freshDir('lower')
  const l2 = freshDir('lower')
  writeTree(l1, LOWER)
  writeTree(l2, LOWER)
  const lf = await mountLayerfs(t, { lowers: [l1], upper, work })
  const kernelUpper = freshDir('kernel-upper')
  fs.chmodSync(kernelUpper, 0o755) // as the upper made on the overlayfs
  const kernel = await mountOverlay(t, { lowers: [l2], upper: kernelUpper })
  const [a, b] = await Promise.all([syscalls(lf.mnt, OPS), syscalls(kernel.mnt, OPS)])
  t.same(a, b, 'layerfs answers as the kernel')
  t.same(b, EXPECTED, 'the kernel answers as expected')
  const views = await Promise.all([snapshotTree(lf.mnt), snapshotTree(kernel.mnt)])
  t.same(views[0], views[1], 'the same merged view', { differences: diffSnapshots(views[0], views[1], ['layerfs', 'kernel']) })

  const opts = { dropXattrs: KERNEL_PRIVATE_XATTRS }
  const [lu, ku] = await Promise.all([snapshotTree(upper, opts), snapshotTree(kernel.upper!, opts)])
  t.notOk(Object.values(lu).some(e => e.type === 'chardev'), 'no 0/0 device on overlayfs')
  t.ok(lu['.wh.gone'] === undefined && lu['.wh.moved']?.type === 'file', 'a .wh. file where a whiteout is, none where a name came back')
  // A kernel whiteout hard-links one inode many times: forget link counts and times there.
  const plain = (s: Snapshot): Snapshot => Object.fromEntries(Object.entries(s).map(([k, e]) => [k, k.split('/').pop()!.startsWith('.wh.') ? { type: e.type, size: e.size } : e])) as Snapshot
  const want = plain(asAufs(ku))
  t.same(plain(lu), want, 'the same upper, whiteouts as .wh. files', { differences: diffSnapshots(plain(lu), want, ['layerfs', 'kernel']) })

  // layerfs reads its own upper back.
  const before = views[0]
  await lf.unmount()
  const again = await mountLayerfs(t, { lowers: [l1], upper, work })
  t.same(await snapshotTree(again.mnt), before, 'mounted again: the same view')
})

// A name there must leave room for `.wh.`: a lower name of 252-255 bytes could never be whited
// out. statfs says namemax 251 and longer names are ENAMETOOLONG to make (fuse-overlayfs's rule).
t.test('an upper on overlayfs: names leave room for the .wh. prefix', async t => {
  const { upper, work } = await onOverlayfs(t)
  const l1 = freshDir('lower')
  writeTree(l1, { f: 'f\n', d: {} })
  const lf = await mountLayerfs(t, { lowers: [l1], upper, work })
  const n251 = 'n'.repeat(251)
  const n252 = 'n'.repeat(252)
  const r = await syscalls(lf.mnt, [
    { op: 'statvfs', path: '.' },
    { op: 'writefile', path: n251, data: 'x' },
    { op: 'writefile', path: n252, data: 'x' },
    { op: 'mkdir', path: `d/${n252}` },
    { op: 'symlink', path: n252, target: 'f' },
    { op: 'link', path: 'f', to: n252 },
    { op: 'rename', path: 'f', to: n252 },
    { op: 'unlink', path: n251 },
    { op: 'lstat', path: 'f' },
  ])
  t.equal((r[0] as { value: { namemax: number } }).value.namemax, 251, 'statfs: namemax 251')
  t.same(r.slice(1, 8), [OK, err('ENAMETOOLONG'), err('ENAMETOOLONG'), err('ENAMETOOLONG'), err('ENAMETOOLONG'), err('ENAMETOOLONG'), OK], 'a 251-byte name works, 252 bytes are too long')
  t.equal((r[8] as { ok?: boolean }).ok, true, 'lstat f succeeds: the refused rename left it')
  // On an ordinary upper, namemax stays 255.
  const plain = await mountLayerfs(t, { lowers: [freshDir('lower')], upper: freshDir('upper') })
  t.equal(((await syscalls(plain.mnt, [{ op: 'statvfs', path: '.' }]))[0] as { value: { namemax: number } }).value.namemax, 255)
})
