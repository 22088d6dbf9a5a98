// GNU tar: extract an archive (which lives in the lower layer) into a fresh dir and over a
// tree from the lower layer, verify with `tar -d`, then archive from the mount and compare
// the archive's listing and bytes; layerfs against kernel overlayfs.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeTree } from '../helpers/layers.js'
import { shOk } from '../helpers/run.js'
import { twinMounts } from '../helpers/twin.js'

// Deterministic archives: sorted names, numeric owners, GNU format (no atime/ctime).
const TAR_CREATE = 'tar --sort=name --numeric-owner --format=gnu'

/** A source tree with every kind of object tar handles; fixed times so that archives are reproducible. */
function sourceTree(dir: string): void {
  const big = Buffer.alloc(3 * 1024 * 1024 + 17)
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24
  writeTree(dir, {
    'hello.txt': { type: 'file', content: 'hello, world\n', mtime: 1_600_000_000 },
    'empty': { type: 'file', content: '', mode: 0o600, mtime: 1_600_000_001 },
    'big.bin': { type: 'file', content: big, mtime: 1_600_000_002 },
    'owned': { type: 'file', content: 'by someone else\n', uid: 1234, gid: 5678, mode: 0o640, mtime: 1_600_000_003 },
    'suid': { type: 'file', content: '#!/bin/sh\n', mode: 0o4755, mtime: 1_600_000_004 },
    'fifo': { type: 'fifo', mode: 0o644, mtime: 1_600_000_005 },
    'link-to-hello': { type: 'symlink', target: 'hello.txt' },
    'dangling': { type: 'symlink', target: 'nowhere/at/all' },
    'hard': { type: 'hardlink', target: 'hello.txt' },
    'dir': {
      type: 'dir', mode: 0o750, mtime: 1_600_000_010,
      entries: {
        'a.txt': { type: 'file', content: 'new a\n', mtime: 1_600_000_011 },
        'sub': { type: 'dir', mode: 0o700, mtime: 1_600_000_012, entries: { 'deep.txt': { type: 'file', content: 'deep\n', mtime: 1_600_000_013 } } },
        'tmp': { type: 'dir', mode: 0o1777, mtime: 1_600_000_014, entries: {} },
      },
    },
    'replaced-by-link': { type: 'symlink', target: 'dir/a.txt' },
  })
}

t.test('tar extracts into and archives from the mount', async t => {
  const tw = await twinMounts(t, async d => {
    const src = join(d.outside, 'src')
    sourceTree(src)
    await shOk(`touch -h -d @1600000020 src/link-to-hello src/dangling src/replaced-by-link && touch -d @1600000030 src && ${TAR_CREATE} -cf ${d.lowers[0]}/archive.tar -C src .`, { cwd: d.outside })
    // An older version of the tree in the lower layer, for extracting over it: files to be
    // overwritten, a file where the archive has a symlink, a dir where it has a file... plus
    // files the archive does not have (they must survive).
    writeTree(join(d.lowers[0]!, 'data'), {
      'hello.txt': { type: 'file', content: 'old hello\n', mtime: 1_500_000_000 },
      'big.bin': { type: 'file', content: 'old big', mtime: 1_500_000_000 },
      'owned': { type: 'file', content: 'old owned\n', uid: 1, gid: 1, mode: 0o666 },
      'replaced-by-link': { type: 'file', content: 'a regular file the archive replaces with a symlink\n' },
      'dir': { type: 'dir', mode: 0o755, entries: { 'a.txt': 'old a\n', 'keep.txt': 'not in the archive\n', 'sub': { 'old.txt': 'old\n' } } },
      'unrelated': { 'x': 'x\n' },
    })
    writeFileSync(join(d.lowers[0]!, 'README'), 'archive.tar and data/ live in the lower layer\n')
  })

  // `ls -l` prints "total <blocks>"; a directory's blocks include the kernel's private xattrs
  // (origin, impure) in an ext4 xattr block, which layerfs need not write: drop that line.
  // A `..` line's time: the mount root's is when each side ran `mkdir x` (the sides run side
  // by side, and once in a while across a second's boundary: seen in CI); every other
  // directory's time is its own `.` line in its own listing.
  const same = (script: string, code = 0) => tw.same(t, script, {
    code,
    normalize: s => s.replace(/^total \d+\n/gm, '').replace(/^(d\S+(?: +\S+){4}) \d+ \.\.$/gm, '$1 T ..'),
  })

  await same('mkdir x && tar -xpf archive.tar -C x && ls -lan --time-style=+%s x x/dir')
  await same('tar -dpf archive.tar -C x && echo x matches the archive')
  await same('tar -xpf archive.tar -C data && ls -lan --time-style=+%s data data/dir')
  await same('tar -dpf archive.tar -C data && echo data matches the archive')
  await same('cat data/dir/keep.txt data/dir/sub/old.txt data/unrelated/x && readlink data/replaced-by-link && stat -c "%h %i" data/hard data/hello.txt | awk "{print \\$1}"')

  // Archive the extracted trees from the mount: same listing on both sides, and the tree
  // extracted into x archives to exactly the bytes of the archive it came from.
  await same(`${TAR_CREATE} -cf $OUT/x.tar -C x . && sha256sum < $OUT/x.tar && sha256sum < archive.tar`)
  const [lfx, ovx] = await tw.sh('sha256sum < $OUT/x.tar; sha256sum < archive.tar')
  const [ovXtar, ovOrig] = ovx.stdout.trim().split('\n')
  t.equal(ovXtar, ovOrig, 'kernel: re-archiving the extracted tree gives the original archive')
  t.equal(lfx.stdout, ovx.stdout, 'layerfs: re-archiving the extracted tree gives the original archive')
  await same(`${TAR_CREATE} -cvvf - -C data . --full-time | tar -tvvf - --full-time --numeric-owner`)
  await same(`${TAR_CREATE} -cf - -C data . | tar -tvf - --numeric-owner --full-time | sha256sum`)

  // Extract over the same tree again (everything now in upper), then --remove-files (unlinks lower files).
  await same('tar -xpf archive.tar -C data && tar -dpf archive.tar -C data')
  await same(`${TAR_CREATE} --remove-files -cf $OUT/rm.tar -C data dir unrelated && ls -a data && tar -tf $OUT/rm.tar`)
  await same('tar -xpf $OUT/rm.tar -C data && find data | sort')

  await tw.sameTree(t, { mtime: true, ignoreMtime: [/^\.$/, /^data$/, /^x$/] })
  await tw.sameUpper(t, { mtime: true, ignoreMtime: [/^\.$/, /^data$/, /^x$/] })
  await tw.lowersUnchanged(t)
})
