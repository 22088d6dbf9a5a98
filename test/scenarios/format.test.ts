// The on-disk format both ways: what layerfs writes to upper, the kernel mounts with the same
// view, and what the kernel writes, layerfs mounts with the same view. Remounting keeps the
// view and the inode numbers (the kernel keeps them through its origin records).
import t from 'tap'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { sampleLowers } from '../helpers/layers.js'
import { mountKind, subjectKind, type Mounted } from '../helpers/mount.js'
import { shOk } from '../helpers/run.js'
import { freshDir, type MountKind } from '../helpers/scratch.js'
import { syscalls, type Op } from '../helpers/syscalls.js'
import { diffSnapshots, snapshotTree } from '../helpers/tree.js'

/** Everything that leaves a mark in upper: whiteouts, opaque dirs, redirects, copy-ups, links. */
const MUTATIONS = `set -e
rm top.txt bottom.txt
rm -r only1/deep
rm -rf merged/sub && mkdir merged/sub && echo fresh > merged/sub/fresh   # opaque over a whiteout
mv only0 only0-moved                                                   # redirect (a lower dir)
mv merged merged-moved && mkdir merged && touch merged/new              # redirect (a merged dir), new dir in its place
mv shared.txt renamed.txt
chmod 600 link0 2>/dev/null || true
chmod 600 file-vs-dir && setfattr -n user.note -v hi file-vs-dir
ln renamed.txt renamed-link.txt
ln -s renamed.txt sym && mkfifo fifo
echo appended >> opq/visible
mkdir -p brand/new/dir && echo x > brand/new/dir/x
`

const INO_PATHS = ['renamed.txt', 'renamed-link.txt', 'only0-moved', 'only0-moved/x', 'merged-moved', 'merged-moved/a0', 'file-vs-dir', 'opq/visible', 'merged/new']

const view = (m: Mounted) => snapshotTree(m.mnt, { mtime: true, ignoreMtime: [/^\.$/, /^merged$/, /^brand/] })
const inodes = async (m: Mounted) => (await syscalls(m.mnt, INO_PATHS.map((path): Op => ({ op: 'lstat', path, fields: ['ino'] })))).map((r, i) => `${INO_PATHS[i]} ${JSON.stringify(r)}`)

/** Layers with sampleLowers, an upper and a workdir, not mounted. */
function layers(): { lowers: string[]; upper: string; work: string } {
  const root = freshDir('format')
  const d = { lowers: [join(root, 'l0'), join(root, 'l1')], upper: join(root, 'upper'), work: join(root, 'work') }
  sampleLowers(d.lowers)
  mkdirSync(d.upper)
  mkdirSync(d.work)
  return d
}

async function writeThenRead(t: Test, writer: MountKind, reader: MountKind): Promise<void> {
  const d = layers()
  const w = await mountKind(t, writer, d)
  await shOk(MUTATIONS, { cwd: w.mnt })
  const written = await view(w)
  const writtenIno = await inodes(w)
  await w.unmount()
  const r = await mountKind(t, reader, d)
  const read = await view(r)
  t.same(read, written, `${reader} sees what ${writer} wrote`, { differences: diffSnapshots(written, read, [writer, reader]).slice(0, 40) })
  t.same(await inodes(r), writtenIno, `${reader} gives the inode numbers ${writer} gave`)
  await shOk('echo more >> renamed.txt && rm -r merged-moved/sub && ls -R > /dev/null', { cwd: r.mnt })
  await r.unmount()
}

t.test(`upper written by ${subjectKind} reads the same under the kernel`, async t => {
  await writeThenRead(t, subjectKind, 'overlay')
})

t.test(`upper written by the kernel reads the same under ${subjectKind}`, async t => {
  await writeThenRead(t, 'overlay', subjectKind)
})

t.test(`${subjectKind} remounted: same view, same inode numbers`, async t => {
  await writeThenRead(t, subjectKind, subjectKind)
})
