// Stories of removal: unlink and rmdir of lower objects leave kernel-format whiteouts (0/0
// char devices) in upper; mkdir over a whiteout makes an opaque dir; a merged dir whose lower
// entries are all whited out can be removed (rename's whiteouts: rename.test.ts). Each story
// runs on layerfs and on kernel overlayfs: same errno, same merged view, same upper on disk.
import t from 'tap'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { isOpaque, isWhiteout, sampleLowers, writeTree } from '../helpers/layers.js'
import { OK, err, val } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

const twin = (t: Parameters<typeof twinMounts>[0]) => twinMounts(t, d => sampleLowers(d.lowers), { lowers: 2 })

t.test('unlink of a lower file leaves a whiteout in upper', async t => {
  const tw = await twin(t)
  await tw.sameSys(t, [
    { op: 'unlink', path: 'top.txt' },
    { op: 'unlink', path: 'bottom.txt' },      // only in lower1
    { op: 'unlink', path: 'shared.txt' },      // in both lowers: one whiteout hides both
    { op: 'unlink', path: 'link0' },           // a symlink
    { op: 'lstat', path: 'top.txt' },
    { op: 'lstat', path: 'shared.txt' },
    { op: 'listdir', path: '.' },
  ], [OK, OK, OK, OK, err('ENOENT'), err('ENOENT'), val(['file-vs-dir', 'merged', 'only0', 'only1', 'opq'])])
  for (const s of tw.sides) {
    for (const name of ['top.txt', 'bottom.txt', 'shared.txt', 'link0']) {
      t.ok(isWhiteout(join(s.upper!, name)), `${s.role}: ${name} is a 0/0 char device in upper`)
    }
  }
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})

t.test('unlink of an upper-only file leaves nothing; of a copied-up file, a whiteout', async t => {
  const tw = await twin(t)
  await tw.sameSys(t, [
    { op: 'writefile', path: 'new.txt', data: 'new' },
    { op: 'unlink', path: 'new.txt' },
    { op: 'chmod', path: 'top.txt', mode: 0o600 }, // copy-up
    { op: 'unlink', path: 'top.txt' },
    { op: 'writefile', path: 'top.txt', data: 'again' }, // create over a whiteout
    { op: 'readfile', path: 'top.txt' },
  ], [OK, OK, OK, OK, OK, val('again')])
  for (const s of tw.sides) {
    t.same(readdirSync(s.upper!).sort(), ['top.txt'], `${s.role}: upper holds only top.txt`)
    t.notOk(isWhiteout(join(s.upper!, 'top.txt')), `${s.role}: the new top.txt replaced the whiteout`)
  }
  await tw.sameTree(t)
  await tw.sameUpper(t)
})

t.test('rmdir of a lower dir leaves a whiteout; of a merged dir, ENOTEMPTY until emptied', async t => {
  const tw = await twin(t)
  await tw.sameSys(t, [
    { op: 'rmdir', path: 'only1/deep' },   // not empty
    { op: 'unlink', path: 'only1/deep/z' },
    { op: 'rmdir', path: 'only1/deep' },   // now only a whiteout below it: removable
    { op: 'rmdir', path: 'merged' },       // merged across lowers, not empty
    { op: 'unlink', path: 'merged/a0' },
    { op: 'unlink', path: 'merged/a1' },
    { op: 'rmdir', path: 'merged' },       // still has sub/
    { op: 'unlink', path: 'merged/sub/s0' },
    { op: 'unlink', path: 'merged/sub/s1' },
    { op: 'rmdir', path: 'merged/sub' },
    { op: 'rmdir', path: 'merged' },
    { op: 'lstat', path: 'merged' },
    { op: 'rmdir', path: 'opq' },          // opaque: only its own entry counts
    { op: 'unlink', path: 'opq/visible' },
    { op: 'rmdir', path: 'opq' },
  ], [err('ENOTEMPTY'), OK, OK, err('ENOTEMPTY'), OK, OK, err('ENOTEMPTY'), OK, OK, OK, OK, err('ENOENT'), err('ENOTEMPTY'), OK, OK])
  for (const s of tw.sides) {
    for (const name of ['only1/deep', 'merged', 'opq']) t.ok(isWhiteout(join(s.upper!, name)), `${s.role}: ${name} is a whiteout in upper`)
  }
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})

t.test('mkdir over a whiteout makes an opaque dir; lower entries stay hidden', async t => {
  const tw = await twin(t)
  await tw.sameSys(t, [
    { op: 'unlink', path: 'merged/a0' },
    { op: 'unlink', path: 'merged/a1' },
    { op: 'unlink', path: 'merged/sub/s0' },
    { op: 'unlink', path: 'merged/sub/s1' },
    { op: 'rmdir', path: 'merged/sub' },
    { op: 'rmdir', path: 'merged' },
    { op: 'mkdir', path: 'merged' },
    { op: 'listdir', path: 'merged' },
    { op: 'mkdir', path: 'gone' },         // over a whiteout that came from lower0
    { op: 'listdir', path: 'gone' },
    { op: 'getxattr', path: 'merged', name: 'trusted.overlay.opaque' }, // hidden from users
    { op: 'listxattr', path: 'merged' },
  ], [OK, OK, OK, OK, OK, OK, OK, val([]), OK, val([]), err('ENODATA'), val([])])
  for (const s of tw.sides) {
    t.ok(isOpaque(join(s.upper!, 'merged')), `${s.role}: merged is opaque in upper`)
    t.ok(isOpaque(join(s.upper!, 'gone')), `${s.role}: gone is opaque in upper`)
  }
  await tw.sameTree(t)
  await tw.sameUpper(t)
})

t.test('symlink, mknod and a file over a whiteout; a dir where a lower file was', async t => {
  const tw = await twin(t)
  await tw.sameSys(t, [
    { op: 'unlink', path: 'top.txt' },
    { op: 'symlink', path: 'top.txt', target: 'shared.txt' },
    { op: 'readfile', path: 'top.txt' },
    { op: 'unlink', path: 'file-vs-dir' }, // a file in lower0 over a dir in lower1
    { op: 'mkdir', path: 'file-vs-dir' },
    { op: 'listdir', path: 'file-vs-dir' }, // lower1's dir must not show through
    { op: 'unlink', path: 'bottom.txt' },
    { op: 'mkfifo', path: 'bottom.txt' },
    { op: 'lstat', path: 'bottom.txt', fields: ['type', 'mode'] },
  ], [OK, OK, val('from lower0\n'), OK, OK, val([]), OK, OK, val({ type: 'fifo', mode: '0o644' })])
  await tw.sameTree(t)
  await tw.sameUpper(t)
})

t.test('whiteouts and opaque dirs already in the upper layer are honoured', async t => {
  const tw = await twinMounts(
    t,
    d => {
      sampleLowers(d.lowers)
      writeTree(d.upper!, {
        'top.txt': { type: 'whiteout' },
        merged: { type: 'dir', opaque: true, entries: { 'mine': 'upper only\n' } },
        only1: { deep: { type: 'whiteout' } },
      })
    },
    { lowers: 2 },
  )
  await tw.sameSys(t, [
    { op: 'lstat', path: 'top.txt' },
    { op: 'listdir', path: 'merged' },
    { op: 'listdir', path: 'only1' },
    { op: 'rmdir', path: 'merged' },
    { op: 'unlink', path: 'merged/mine' },
    { op: 'rmdir', path: 'merged' },
  ], [err('ENOENT'), val(['mine']), val(['y']), err('ENOTEMPTY'), OK, OK])
  for (const s of tw.sides) t.ok(isWhiteout(join(s.upper!, 'merged')), `${s.role}: removed opaque dir is now a whiteout`)
  await tw.sameTree(t)
  await tw.sameUpper(t)
})
