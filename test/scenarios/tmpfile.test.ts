// open(dir, O_TMPFILE), and files with no name left: the kernel's FUSE sends TMPFILE (7.37),
// which lowlevel.c hands over as a CREATE; the union makes an unnamed file in the directory's
// upper copy, as kernel overlayfs's ovl_tmpfile. Written, read, changed through its fd (chmod,
// chown, truncate, times), never listed, gone at its last close; a link of it is EXDEV, as
// kernel overlayfs answers the link of /proc/self/fd/N. An unlinked open file is changed
// through its fd the same way. Each story on layerfs and kernel overlayfs: same results, same
// merged view, same upper, lowers untouched.
import t from 'tap'
import { OK, err, labelled, syscalls, val, type Op } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'
import { writeTree } from '../helpers/layers.js'

const build = (d: { lowers: string[] }): void =>
  writeTree(d.lowers[0]!, { d: { f: 'f\n', sub: {} }, top: 'top\n' })

const FIELDS = ['type', 'mode', 'uid', 'gid', 'size', 'nlink']

t.test('O_TMPFILE: an unnamed file in the upper copy of a lower directory', async t => {
  const tw = await twinMounts(t, build, { lowers: 1 })
  await tw.sameSys(t, [
    { op: 'open', path: 'd', flags: 'O_TMPFILE|O_RDWR', mode: 0o640, as: 't' },
    { op: 'write', fd: 't', data: 'tmp data\n' },
    { op: 'fstat', fd: 't', fields: FIELDS },
    { op: 'read', fd: 't', offset: 0 },
    { op: 'listdir', path: 'd' },
    { op: 'fchmod', fd: 't', mode: 0o600 },
    { op: 'fchown', fd: 't', uid: 1000, gid: 1000 },
    { op: 'ftruncate', fd: 't', length: 4 },
    { op: 'futimens', fd: 't', atime_ns: '1000000000000000000', mtime_ns: '1000000000000000000' },
    { op: 'fstat', fd: 't', fields: [...FIELDS, 'mtime_ns'] },
    { op: 'linkfd', fd: 't', to: 'd/named' },
    { op: 'listdir', path: 'd' },
    { op: 'close', fd: 't' },
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
    err('EXDEV'), val(['f', 'sub']), OK,
    OK, val(1), OK,
    err('EINVAL'), err('ENOTDIR'), err('ENOENT'), val(['d', 'top']),
  ])
  await tw.sameTree(t)
  await tw.sameUpper(t)   // d copied up (as the kernel does), and nothing else
  await tw.lowersUnchanged(t)
})

t.test('linkat(fd, "", AT_EMPTY_PATH) of an O_TMPFILE file: the kernel links it, layerfs says EXDEV', async t => {
  // FUSE sends both forms of the link as the same LINK request; layerfs answers what kernel
  // overlayfs answers the common one (/proc/self/fd/N, above). Pinned, to be noticed.
  const tw = await twinMounts(t, build, { lowers: 1 })
  const ops: Op[] = [
    { op: 'open', path: 'd', flags: 'O_TMPFILE|O_RDWR', mode: 0o644, as: 't' },
    { op: 'linkfd', fd: 't', to: 'd/named', empty: true },
    { op: 'close', fd: 't' },
  ]
  const [lf, ov] = await tw.both(s => syscalls(s.mnt, ops))
  t.same(labelled(ops, ov), labelled(ops, [OK, OK, OK]), 'kernel overlayfs links it')
  t.same(labelled(ops, lf), labelled(ops, [OK, err('EXDEV'), OK]), 'layerfs: EXDEV')
  await tw.lowersUnchanged(t)
})

t.test('an unlinked open file is changed through its fd', async t => {
  const tw = await twinMounts(t, build, { lowers: 1 })
  await tw.sameSys(t, [
    { op: 'open', path: 'd/f', flags: 'O_RDWR', as: 'h' },   // a copy-up
    { op: 'open', path: 'top', as: 'r' },                    // a lower file, read-only
    { op: 'unlink', path: 'd/f' },
    { op: 'unlink', path: 'top' },
    { op: 'fchmod', fd: 'h', mode: 0o604 },
    { op: 'fchown', fd: 'h', uid: 1000, gid: 1001 },
    { op: 'ftruncate', fd: 'h', length: 1 },
    { op: 'futimens', fd: 'h', atime_ns: '2000000000000000000', mtime_ns: '2000000000000000000' },
    { op: 'fstat', fd: 'h', fields: [...FIELDS, 'mtime_ns'] },
    { op: 'fstat', fd: 'r', fields: FIELDS },
    { op: 'close', fd: 'h' },
    { op: 'close', fd: 'r' },
    { op: 'listdir', path: 'd' },
  ], [
    OK, OK, OK, OK, OK, OK, OK, OK,
    val({ type: 'file', mode: 0o604, uid: 1000, gid: 1001, size: 1, nlink: 0, mtime_ns: '2000000000000000000' }),
    val({ type: 'file', mode: 0o644, uid: 0, gid: 0, size: 4, nlink: 1 }),
    OK, OK, val(['sub']),
  ])
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
