// Copy-up by reflink: where the upper's filesystem can share extents (xfs with reflink=1,
// btrfs), the kernel's copy-up clones the lower file (ovl_copy_up_file: vfs_clone_file_range)
// and so does layerfs (FICLONE): a copy-up of a big file then writes no data, however big.
// Measured by the free space the copy-ups take: a 16 MiB file copied takes 16 MiB, cloned
// next to none. (A large dense file was cloned before too, by xfs's copy_file_range; a sparse
// one, copied extent by extent, took its data's size: the test's 2 MiB and more.) The
// contents read back are the lower's plus the write, holes kept. On ext4 (no reflinks) the
// copy is a copy, on both.
import t from 'tap'
import { statfsSync, writeFileSync, openSync, closeSync, ftruncateSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { run } from '../helpers/run.js'
import { type Side, twinMounts } from '../helpers/twin.js'

const MiB = 1 << 20

/** Free bytes of the filesystem under `path`. */
const free = (path: string): number => {
  const s = statfsSync(path)
  return Number(s.bfree) * Number(s.bsize)
}

for (const fs of ['xfs', 'ext4'] as const) {
  t.test(`copy-up of a 16 MiB lower file on ${fs}: ${fs === 'xfs' ? 'a reflink, as the kernel' : 'a copy, as the kernel'}`, async t => {
    const tw = await twinMounts(t, ({ lowers }) => {
      writeFileSync(join(lowers[0]!, 'big'), Buffer.alloc(16 * MiB, 'b'))
      // A small file (read and written whole when not cloned).
      writeFileSync(join(lowers[0]!, 'small'), Buffer.alloc(8192, 's'))
      // A sparse file: 1 MiB of data, a 10 MiB hole, 1 MiB of data.
      const fd = openSync(join(lowers[0]!, 'sparse'), 'w')
      writeSync(fd, Buffer.alloc(MiB, 's'), 0, MiB, 0)
      writeSync(fd, Buffer.alloc(MiB, 't'), 0, MiB, 11 * MiB)
      ftruncateSync(fd, 12 * MiB)
      closeSync(fd)
    }, { fs })
    const taken: Record<string, number> = {}
    // One side at a time: both sides' layers are on the same filesystem.
    for (const side of tw.sides as Side[]) {
      await run('sync', [])
      const before = free(side.upper!)
      const r = await run('bash', ['-c', 'echo end >> big && echo end >> sparse && chmod 600 small && sync'], { cwd: side.mnt })
      t.equal(r.code, 0, `${side.role}: appended (${r.stderr.trim()})`)
      taken[side.role] = before - free(side.upper!)
    }
    t.comment(`space taken by the copy-ups: layerfs ${(taken.layerfs! / MiB).toFixed(1)} MiB, kernel ${(taken.overlay! / MiB).toFixed(1)} MiB`)
    if (fs === 'xfs') {
      t.ok(taken.overlay! < 4 * MiB, 'kernel: cloned (under 4 MiB taken)')
      t.ok(taken.layerfs! < 4 * MiB, 'layerfs: cloned (under 4 MiB taken)')
    } else {
      t.ok(taken.overlay! >= 16 * MiB, 'kernel: copied (16 MiB and more taken)')
      t.ok(taken.layerfs! >= 16 * MiB, 'layerfs: copied (16 MiB and more taken)')
    }
    // Copied whole, the sparse file would take 12 MiB more.
    t.ok(taken.layerfs! < 22 * MiB && taken.overlay! < 22 * MiB, 'the sparse file\'s hole stays a hole on both')
    // The small file's copy-up (a chmod: nothing written after it) shares its extent with the
    // lower file on xfs, on both (filefrag -v: the "shared" flag).
    for (const side of tw.sides as Side[]) {
      const f = await run('filefrag', ['-v', join(side.upper!, 'small')])
      t.equal(f.code, 0, `${side.role}: filefrag ran (${f.stderr.trim()})`)
      t.equal(/shared/.test(f.stdout), fs === 'xfs', `${side.role}: the small file's upper copy ${fs === 'xfs' ? 'shares' : 'does not share'} its extent`)
    }
    await tw.same(t, 'sha256sum big sparse small && stat -c "%n %s %a" big sparse small', { code: 0 })
    await tw.sameTree(t)
    await tw.lowersUnchanged(t)
  })
}
