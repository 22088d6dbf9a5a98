// Holes and ranges: lseek(SEEK_DATA/SEEK_HOLE) in sparse lower and upper files, fallocate(2)'s
// modes on a copied-up file, copy_file_range(2) between merged files. The kernel's FUSE sends
// these as LSEEK, FALLOCATE and COPY_FILE_RANGE (lowlevel.c answers them on the real files'
// descriptors); each story runs on layerfs and kernel overlayfs, on tmpfs and on ext4 layers:
// same results, same merged view, same upper, lowers untouched.
// Where the two may differ: the kernel's copy-up skips holes a chunk (1 MiB) at a time, so the
// holes inside a copied chunk become data there; a copy-up of ours keeps every hole (smaller,
// the same bytes). The stories that look at extents after a copy-up use a file whose data and
// holes are whole chunks ('chunks'), where both give the same extents.
import t from 'tap'
import { closeSync, openSync, writeSync, ftruncateSync } from 'node:fs'
import { join } from 'node:path'
import { OK, err, syscalls, val, type Op } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'
import { writeTree } from '../helpers/layers.js'

const KiB = 1024
const MiB = 1024 * KiB

/** A file of `size` bytes with data only at the given [offset, length] ranges. */
function sparse(path: string, size: number, ranges: Array<[number, number]>): void {
  const fd = openSync(path, 'w', 0o644)
  try {
    for (const [off, len] of ranges) writeSync(fd, Buffer.alloc(len, 'd'), 0, len, off)
    ftruncateSync(fd, size)
  } finally {
    closeSync(fd)
  }
}

const build = (d: { lowers: string[] }): void => {
  const l = d.lowers[0]!
  // data at [0, 4K) and [1M, 1M+8K), hole to 4 MiB
  sparse(join(l, 'sparse'), 4 * MiB, [[0, 4 * KiB], [MiB, 8 * KiB]])
  sparse(join(l, 'all-hole'), 2 * MiB, [])
  // data in whole copy-up chunks: [0, 1M) and [2M, 3M), hole to 4 MiB
  sparse(join(l, 'chunks'), 4 * MiB, [[0, MiB], [2 * MiB, MiB]])
  writeTree(l, { 'small.txt': 'small\n', dir: { 'in.txt': 'in\n' } })
}

for (const fs of ['tmpfs', 'ext4'] as const) {
  t.test(`${fs}: SEEK_DATA and SEEK_HOLE in lower files, and in their copies up`, async t => {
    const tw = await twinMounts(t, build, { lowers: 1, fs })
    await tw.sameSys(t, [
      { op: 'open', path: 'sparse', as: 'r' },
      { op: 'extents', fd: 'r' },
      { op: 'lseek', fd: 'r', offset: 8 * KiB, whence: 'DATA' },
      { op: 'lseek', fd: 'r', offset: 0, whence: 'HOLE' },
      { op: 'lseek', fd: 'r', offset: 2 * MiB, whence: 'DATA' },      // after the last data
      { op: 'lseek', fd: 'r', offset: 4 * MiB, whence: 'HOLE' },      // at the end: ENXIO
      { op: 'lseek', fd: 'r', offset: 5 * MiB, whence: 'DATA' },      // past the end
      { op: 'lseek', fd: 'r', offset: 0, whence: 'END' },
      { op: 'open', path: 'all-hole', as: 'h' },
      { op: 'lseek', fd: 'h', offset: 0, whence: 'DATA' },
      { op: 'lseek', fd: 'h', offset: 0, whence: 'HOLE' },
      { op: 'close', fd: 'r' },
      { op: 'close', fd: 'h' },
      // A copy-up under an open reader (the kernel's reader follows the file up): the copy
      // keeps the holes, the reader sees the new data's extents.
      { op: 'open', path: 'chunks', as: 'r' },
      { op: 'extents', fd: 'r' },
      { op: 'open', path: 'chunks', flags: 'O_WRONLY', as: 'w' },
      { op: 'pwrite', fd: 'w', data: 'x'.repeat(4 * KiB), offset: 3 * MiB + 512 * KiB },
      { op: 'extents', fd: 'r' },
      { op: 'extents', fd: 'w' },
      { op: 'lseek', fd: 'w', offset: MiB, whence: 'DATA' },
      { op: 'close', fd: 'w' },
      { op: 'close', fd: 'r' },
      { op: 'open', path: 'small.txt', as: 's' },
      { op: 'extents', fd: 's' },
      { op: 'lseek', fd: 's', offset: 6, whence: 'DATA' },           // at the size
      { op: 'close', fd: 's' },
    ], [
      OK, val([[0, 4 * KiB], [MiB, MiB + 8 * KiB]]), val(MiB), val(4 * KiB), err('ENXIO'), err('ENXIO'), err('ENXIO'), val(4 * MiB),
      OK, err('ENXIO'), val(0), OK, OK,
      OK, val([[0, MiB], [2 * MiB, 3 * MiB]]), OK, val(4 * KiB),
      val([[0, MiB], [2 * MiB, 3 * MiB], [3 * MiB + 512 * KiB, 3 * MiB + 516 * KiB]]),
      val([[0, MiB], [2 * MiB, 3 * MiB], [3 * MiB + 512 * KiB, 3 * MiB + 516 * KiB]]), val(2 * MiB), OK, OK,
      OK, val([[0, 6]]), err('ENXIO'), OK,
    ])
    await tw.sameTree(t)
    await tw.sameUpper(t)
    await tw.lowersUnchanged(t)
  })

  t.test(`${fs}: fallocate's modes on a copied-up file`, async t => {
    const tw = await twinMounts(t, build, { lowers: 1, fs })
    const size = (fd: string): Op => ({ op: 'fstat', fd, fields: ['size'] })
    await tw.sameSys(t, [
      { op: 'open', path: 'small.txt', as: 'ro' },
      { op: 'fallocate', fd: 'ro', length: 4096 },                       // not open for writing: the VFS says EBADF
      { op: 'close', fd: 'ro' },
      { op: 'open', path: 'chunks', flags: 'O_RDWR', as: 'w' },          // a copy-up
      { op: 'fallocate', fd: 'w', offset: MiB, length: 7 * MiB },       // the default mode grows the file
      size('w'),
      { op: 'fallocate', fd: 'w', mode: 'KEEP_SIZE', offset: 8 * MiB, length: MiB },
      size('w'),
      { op: 'fallocate', fd: 'w', mode: 'PUNCH_HOLE|KEEP_SIZE', offset: 0, length: 4 * KiB },
      { op: 'read', fd: 'w', size: 4, offset: 0 },
      { op: 'read', fd: 'w', size: 4, offset: 4 * KiB - 2 },
      { op: 'extents', fd: 'w' },
      { op: 'fallocate', fd: 'w', mode: 'ZERO_RANGE', offset: 2 * MiB, length: 4 * KiB },
      { op: 'read', fd: 'w', size: 2, offset: 2 * MiB + 4 * KiB - 1 },
      { op: 'fallocate', fd: 'w', mode: 'ZERO_RANGE|KEEP_SIZE', offset: 9 * MiB, length: 4 * KiB },
      size('w'),
      { op: 'fallocate', fd: 'w', mode: 'PUNCH_HOLE', offset: 0, length: 4 * KiB },  // without KEEP_SIZE
      { op: 'fallocate', fd: 'w', offset: -1, length: 4 * KiB },
      { op: 'fallocate', fd: 'w', offset: 0, length: 0 },
      { op: 'pwrite', fd: 'w', data: 'after', offset: 0 },
      { op: 'read', fd: 'w', size: 5, offset: 0 },
      { op: 'close', fd: 'w' },
      { op: 'stat', path: 'chunks', fields: ['size'] },
    ], [
      OK, err('EBADF'), OK,
      OK, OK, val({ size: 8 * MiB }), OK, val({ size: 8 * MiB }),
      OK, val('\0'.repeat(4)), val('\0\0dd'), val([[4 * KiB, MiB], [2 * MiB, 3 * MiB]]),
      // tmpfs has no ZERO_RANGE
      ...fs === 'ext4' ? [OK, val('\0d'), OK] : [err('ENOTSUP'), val('dd'), err('ENOTSUP')], val({ size: 8 * MiB }),
      err('ENOTSUP'), err('EINVAL'), err('EINVAL'), val(5), val('after'), OK,
      val({ size: 8 * MiB }),
    ])
    await tw.sameTree(t)
    await tw.sameUpper(t)
    // The kernel's FUSE passes only KEEP_SIZE, PUNCH_HOLE and ZERO_RANGE to a filesystem:
    // COLLAPSE_RANGE and INSERT_RANGE, which kernel overlayfs hands to the upper filesystem
    // (ext4 has them, tmpfs not), fail before layerfs is asked. Pinned, to be noticed when it goes.
    const ops: Op[] = [
      { op: 'open', path: 'chunks', flags: 'O_RDWR', as: 'w' },
      { op: 'fallocate', fd: 'w', mode: 'COLLAPSE_RANGE', offset: 0, length: MiB },
      { op: 'fallocate', fd: 'w', mode: 'INSERT_RANGE', offset: 0, length: MiB },
      { op: 'close', fd: 'w' },
    ]
    const [lf, ov] = await tw.both(s => syscalls(s.mnt, ops))
    t.same(lf, [OK, err('ENOTSUP'), err('ENOTSUP'), OK], 'layerfs: the kernel\'s FUSE refuses COLLAPSE_RANGE and INSERT_RANGE')
    t.same(ov, fs === 'ext4' ? [OK, OK, OK, OK] : [OK, err('ENOTSUP'), err('ENOTSUP'), OK], 'kernel overlayfs: what the upper filesystem does')
    // The views are not compared after this: on ext4 the kernel's side has moved its data.
    await tw.lowersUnchanged(t)
  })
}

t.test('copy_file_range between merged files', async t => {
  const tw = await twinMounts(t, build, { lowers: 1 })
  await tw.sameSys(t, [
    { op: 'open', path: 'small.txt', as: 'in' },
    { op: 'open', path: 'dir/in.txt', flags: 'O_WRONLY', as: 'out' },  // a copy-up
    { op: 'copy_file_range', fd: 'in', to: 'out', length: 100, offset_in: 0, offset_out: 3 },
    { op: 'close', fd: 'out' },
    { op: 'readfile', path: 'dir/in.txt' },
    { op: 'open', path: 'new.txt', flags: 'O_RDWR|O_CREAT', as: 'new' },
    { op: 'copy_file_range', fd: 'in', to: 'new', length: 4, offset_in: 1, offset_out: 0 },
    { op: 'copy_file_range', fd: 'in', to: 'new', length: 10, offset_in: 100, offset_out: 0 }, // past the end: 0
    { op: 'copy_file_range', fd: 'new', to: 'new', length: 2, offset_in: 0, offset_out: 1 },  // overlapping, one file: EINVAL
    { op: 'copy_file_range', fd: 'in', to: 'in', length: 2, offset_in: 0, offset_out: 8 },    // to a file not open for writing
    { op: 'close', fd: 'new' },
    { op: 'close', fd: 'in' },
    { op: 'readfile', path: 'new.txt' },
    { op: 'stat', path: 'dir/in.txt', fields: ['size'] },
  ], [
    OK, OK, val(6), OK, val('in\nsmall\n'), OK, val(4), val(0), err('EINVAL'), err('EBADF'), OK, OK, val('mall'), val({ size: 9 }),
  ])
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
