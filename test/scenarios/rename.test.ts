// Stories of rename: a lower file moved leaves a whiteout at its source; lower and merged
// directories move (the kernel's redirect_dir=on behaviour, never EXDEV) and keep showing their
// lower contents; renameat2 flags; the errno cases. Each story on layerfs and kernel overlayfs:
// same results, same merged view, same upper on disk, lowers untouched.
import t from 'tap'
import { join } from 'node:path'
import { isWhiteout, sampleLowers, writeTree } from '../helpers/layers.js'
import { OK, err, val, type Op } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

const twin = (t: Parameters<typeof twinMounts>[0]) => twinMounts(t, d => sampleLowers(d.lowers), { lowers: 2 })

t.test('rename of a lower file leaves a whiteout at the source', async t => {
  const tw = await twin(t)
  await tw.sameSys(t, [
    { op: 'rename', path: 'top.txt', to: 'moved.txt' },
    { op: 'rename', path: 'only1/y', to: 'only0/y' },
    { op: 'rename', path: 'bottom.txt', to: 'shared.txt' }, // over a file in both lowers
    { op: 'readfile', path: 'shared.txt' },
    { op: 'readfile', path: 'moved.txt' },
    { op: 'lstat', path: 'top.txt' },
    { op: 'lstat', path: 'bottom.txt' },
    { op: 'listdir', path: 'only1' },
    { op: 'rename', path: 'moved.txt', to: 'top.txt' },    // back over its own whiteout
    { op: 'readfile', path: 'top.txt' },
  ], [OK, OK, OK, val('bottom\n'), val('top\n'), err('ENOENT'), err('ENOENT'), val(['deep']), OK, val('top\n')])
  for (const s of tw.sides) {
    for (const name of ['only1/y', 'bottom.txt']) t.ok(isWhiteout(join(s.upper!, name)), `${s.role}: ${name} is a whiteout`)
    t.notOk(isWhiteout(join(s.upper!, 'shared.txt')), `${s.role}: shared.txt is the renamed file`)
    t.notOk(isWhiteout(join(s.upper!, 'top.txt')), `${s.role}: top.txt is the file again`)
  }
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})

t.test('directories from the lowers move and keep their contents (no EXDEV)', async t => {
  const tw = await twin(t)
  await tw.sameSys(t, [
    { op: 'rename', path: 'only1', to: 'moved1' },          // a dir only in lower1
    { op: 'listdir', path: 'moved1' },
    { op: 'readfile', path: 'moved1/deep/z' },
    { op: 'rename', path: 'merged', to: 'only0/merged-here' }, // merged across both lowers, into another dir
    { op: 'listdir', path: 'only0/merged-here' },
    { op: 'listdir', path: 'only0/merged-here/sub' },
    { op: 'lstat', path: 'merged' },
    { op: 'rename', path: 'opq', to: 'opq2' },               // opaque dir: lower1's opq/hidden stays hidden
    { op: 'listdir', path: 'opq2' },
    { op: 'mkdir', path: 'merged' },                          // a new dir where the moved one was
    { op: 'listdir', path: 'merged' },
    { op: 'rename', path: 'moved1', to: 'only1' },            // and back
    { op: 'listdir', path: 'only1/deep' },
    { op: 'writefile', path: 'only0/merged-here/sub/new', data: 'n' },
    { op: 'rename', path: 'only0/merged-here/sub', to: 'sub-top' }, // a child of a moved dir moves on
    { op: 'listdir', path: 'sub-top' },
  ], [
    OK, val(['deep', 'y']), val('z\n'), OK, val(['a0', 'a1', 'sub']), val(['s0', 's1']), err('ENOENT'),
    OK, val(['visible']), OK, val([]), OK, val(['z']), OK, OK, val(['new', 's0', 's1']),
  ])
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})

t.test('renameat2 RENAME_NOREPLACE and RENAME_EXCHANGE', async t => {
  const tw = await twin(t)
  const ops: Op[] = [
    { op: 'renameat2', path: 'top.txt', to: 'shared.txt', flags: 'NOREPLACE' }, // the VFS answers this one
    { op: 'renameat2', path: 'top.txt', to: 'new.txt', flags: 'NOREPLACE' },    // the filesystem does
    { op: 'readfile', path: 'new.txt' },
    { op: 'renameat2', path: 'shared.txt', to: 'bottom.txt', flags: 'EXCHANGE' },
    { op: 'readfile', path: 'shared.txt' },
    { op: 'readfile', path: 'bottom.txt' },
  ]
  // RENAME2 (FUSE 7.23) carries the flags to layerfs (lowlevel.c); it was EINVAL before.
  await tw.sameSys(t, ops, [err('EEXIST'), OK, val('top\n'), OK, val('bottom\n'), val('from lower0\n')])
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})

t.test('RENAME_EXCHANGE: directories, across directories, a file with a directory, open files', async t => {
  const tw = await twin(t)
  const x = (path: string, to: string, flags = 'EXCHANGE'): Op => ({ op: 'renameat2', path, to, flags })
  await tw.sameSys(t, [
    x('merged', 'only0'),                  // a merged and a lower directory: both get redirects
    { op: 'listdir', path: 'merged' },
    { op: 'listdir', path: 'only0' },
    { op: 'readfile', path: 'only0/sub/s1' },
    { op: 'open', path: 'top.txt', as: 'h' }, // open on the lower file, through the exchange
    x('top.txt', 'only1/y'),               // two lower files in different directories
    { op: 'readfile', path: 'top.txt' },
    { op: 'readfile', path: 'only1/y' },
    { op: 'open', path: 'only1/y', flags: 'O_WRONLY|O_APPEND', as: 'w' },
    { op: 'write', fd: 'w', data: 'more\n' },
    { op: 'close', fd: 'w' },
    { op: 'read', fd: 'h' },               // the same file, under its new name
    { op: 'close', fd: 'h' },
    { op: 'mkdir', path: 'newdir' },
    { op: 'writefile', path: 'newdir/n', data: 'n\n' },
    x('newdir', 'opq'),                    // an upper-only directory and an opaque one
    { op: 'listdir', path: 'newdir' },
    { op: 'listdir', path: 'opq' },
    x('shared.txt', 'only1/deep'),         // a file and a directory
    { op: 'readfile', path: 'only1/deep' },
    { op: 'listdir', path: 'shared.txt' },
    x('merged/x', 'only0/a0'),             // inside the moved directories
    { op: 'readfile', path: 'merged/x' },
    x('link0', 'bottom.txt'),              // a symlink and a file
    { op: 'readlink', path: 'bottom.txt' },
    x('top.txt', 'nope'),                  // the other name must exist
    x('only1', 'only1/deep'),              // into itself
    x('top.txt', 'bottom.txt', 'EXCHANGE|NOREPLACE'),
    x('top.txt', 'whiteout-target', 'WHITEOUT'),
    x('top.txt', 'top.txt'),
    { op: 'readfile', path: 'top.txt' },
  ], [
    OK, val(['x']), val(['a0', 'a1', 'sub']), val('s1\n'),
    OK, OK, val('y\n'), val('top\n'), OK, val(5), OK, val('top\nmore\n'), OK,
    OK, OK, OK, val(['visible']), val(['n']),
    OK, val('from lower0\n'), val(['z']),
    OK, val('a0\n'),
    OK, val('top.txt'),
    err('ENOENT'), err('EINVAL'), err('EINVAL'), err('EINVAL'), OK, val('y\n'),
  ])
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})

t.test('rename errno cases', async t => {
  const tw = await twinMounts(t, d => {
    sampleLowers(d.lowers)
    writeTree(d.lowers[0]!, { full: { f: 'f\n' }, empty: {}, 'd-a': { a: 'a\n' } })
  }, { lowers: 2 })
  await tw.sameSys(t, [
    { op: 'rename', path: 'shared.txt', to: 'merged' },       // file over a dir
    { op: 'rename', path: 'only0', to: 'shared.txt' },        // dir over a file
    { op: 'rename', path: 'only0', to: 'full' },              // dir over a non-empty lower dir
    { op: 'rename', path: 'only0', to: 'merged' },            // over a merged non-empty dir
    { op: 'rename', path: 'only0', to: 'empty' },             // over an empty lower dir: fine
    { op: 'listdir', path: 'empty' },
    { op: 'rename', path: 'd-a', to: 'd-a/inside' },          // into itself
    { op: 'rename', path: 'gone', to: 'anything' },           // a whited-out name
    { op: 'rename', path: 'top.txt', to: 'no/such/dir' },
    { op: 'rename', path: 'shared.txt', to: 'shared.txt' },   // to itself: a no-op
    { op: 'readfile', path: 'shared.txt' },
  ], [
    err('EISDIR'), err('ENOTDIR'), err('ENOTEMPTY'), err('ENOTEMPTY'), OK, val(['x']),
    err('EINVAL'), err('ENOENT'), err('ENOENT'), OK, val('from lower0\n'),
  ])
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
