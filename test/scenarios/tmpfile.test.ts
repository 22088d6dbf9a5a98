// open(dir, O_TMPFILE), and files with no name left: the kernel's FUSE sends TMPFILE (7.37),
// which lowlevel.c hands over as a CREATE; the union makes an unnamed file in the directory's
// upper copy, as kernel overlayfs's ovl_tmpfile. Written, read, changed through its fd (chmod,
// chown, truncate, times), never listed, gone at its last close unless linkat(2) names it. An
// unlinked open file is changed through its fd the same way. Each story on layerfs and kernel overlayfs: same results, same
// merged view, same upper, lowers untouched.
import t from 'tap'
import { OK, err, val, type Op } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'
import { writeTree } from '../helpers/layers.js'

const build = (d: { lowers: string[] }): void =>
  writeTree(d.lowers[0]!, { d: { f: 'f\n', sub: {} }, top: 'top\n' })

const FIELDS = ['type', 'mode', 'uid', 'gid', 'size', 'nlink']

/** chmod, chown, truncate and utimens through an open fd, then its fstat. */
const changedThrough = (fd: string, mode: number, uid: number, gid: number, length: number, ns: string): Op[] => [
  { op: 'fchmod', fd, mode },
  { op: 'fchown', fd, uid, gid },
  { op: 'ftruncate', fd, length },
  { op: 'futimens', fd, atime_ns: ns, mtime_ns: ns },
  { op: 'fstat', fd, fields: [...FIELDS, 'mtime_ns'] },
]

t.test('O_TMPFILE: an unnamed file in the upper copy of a lower directory', async t => {
  const tw = await twinMounts(t, build, { lowers: 1 })
  await tw.sameSys(t, [
    { op: 'open', path: 'd', flags: 'O_TMPFILE|O_RDWR', mode: 0o640, as: 't' },
    { op: 'write', fd: 't', data: 'tmp data\n' },
    { op: 'fstat', fd: 't', fields: FIELDS },
    { op: 'read', fd: 't', offset: 0 },
    { op: 'listdir', path: 'd' },
    ...changedThrough('t', 0o600, 1000, 1000, 4, '1000000000000000000'),
    { op: 'linkfd', fd: 't', to: 'd/named' },   // through /proc/self/fd/N: the kernel's VFS says EXDEV on both
    { op: 'close', fd: 't' },
    { op: 'listdir', path: 'd' },
    // linkat(fd, "", AT_EMPTY_PATH): a name for it, in a lower directory and over a whiteout
    { op: 'open', path: 'd/sub', flags: 'O_TMPFILE|O_RDWR', mode: 0o644, as: 'n' },
    { op: 'write', fd: 'n', data: 'named\n' },
    { op: 'linkfd', fd: 'n', to: 'd/sub/named', empty: true },
    { op: 'linkfd', fd: 'n', to: 'd/sub/named', empty: true },        // taken: EEXIST
    { op: 'unlink', path: 'top' },
    { op: 'linkfd', fd: 'n', to: 'top', empty: true },                // over top's whiteout
    { op: 'write', fd: 'n', data: 'more\n' },
    { op: 'fstat', fd: 'n', fields: FIELDS },
    { op: 'close', fd: 'n' },
    { op: 'readfile', path: 'd/sub/named' },
    { op: 'stat', path: 'top', fields: FIELDS },
    { op: 'listdir', path: 'd/sub' },
    { op: 'open', path: '.', flags: 'O_TMPFILE|O_WRONLY|O_EXCL', mode: 0o600, as: 'x' },
    { op: 'write', fd: 'x', data: 'x' },
    { op: 'close', fd: 'x' },
    { op: 'open', path: 'd/sub', flags: 'O_TMPFILE|O_RDONLY', mode: 0o600 },  // the VFS: EINVAL
    { op: 'open', path: 'd/f', flags: 'O_TMPFILE|O_RDWR', mode: 0o600 },      // not a directory
    { op: 'open', path: 'nope', flags: 'O_TMPFILE|O_RDWR', mode: 0o600 },
    { op: 'listdir', path: '.' },
  ], [
    OK, val(9), val({ type: 'file', mode: 0o640, uid: 0, gid: 0, size: 9, nlink: 0 }), val('tmp data\n'), val(['f', 'sub']),
    OK, OK, OK, OK, val({ type: 'file', mode: 0o600, uid: 1000, gid: 1000, size: 4, nlink: 0, mtime_ns: '1000000000000000000' }),
    err('EXDEV'), OK, val(['f', 'sub']),
    OK, val(6), OK, err('EEXIST'), OK, OK, val(5), val({ type: 'file', mode: 0o644, uid: 0, gid: 0, size: 11, nlink: 2 }), OK,
    val('named\nmore\n'), val({ type: 'file', mode: 0o644, uid: 0, gid: 0, size: 11, nlink: 2 }), val(['named']),
    OK, val(1), OK,
    err('EINVAL'), err('ENOTDIR'), err('ENOENT'), val(['d', 'top']),
  ])
  await tw.sameTree(t)
  await tw.sameUpper(t)   // d copied up (as the kernel does), and nothing else
  await tw.lowersUnchanged(t)
})

t.test('an unlinked open file is changed through its fd', async t => {
  const tw = await twinMounts(t, build, { lowers: 1 })
  await tw.sameSys(t, [
    { op: 'open', path: 'd/f', flags: 'O_RDWR', as: 'h' },   // a copy-up
    { op: 'open', path: 'top', as: 'r' },                    // a lower file, read-only
    { op: 'unlink', path: 'd/f' },
    { op: 'unlink', path: 'top' },
    ...changedThrough('h', 0o604, 1000, 1001, 1, '2000000000000000000'),
    { op: 'fstat', fd: 'r', fields: FIELDS },
    { op: 'fchmod', fd: 'r', mode: 0o600 },  // the lower file: its copy-up meets the whiteout
    { op: 'close', fd: 'h' },
    { op: 'close', fd: 'r' },
    { op: 'listdir', path: 'd' },
  ], [
    OK, OK, OK, OK, OK, OK, OK, OK,
    val({ type: 'file', mode: 0o604, uid: 1000, gid: 1001, size: 1, nlink: 0, mtime_ns: '2000000000000000000' }),
    val({ type: 'file', mode: 0o644, uid: 0, gid: 0, size: 4, nlink: 1 }), err('EEXIST'),
    OK, OK, val(['sub']),
  ])
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
