// Every FUSE operation a program needs, once each, through the real CLI, with kernel
// overlayfs as the oracle: same result or errno for every call, same merged tree, same
// upper layer on disk, lower layers untouched.
import fs from 'node:fs'
import t from 'tap'
import { labelled, syscalls, type Op } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

const ops: Op[] = [
  // statfs: the upper layer's filesystem
  { op: 'statvfs', path: '.' },
  // files: create, write, pwrite, fsync, read, fstat, ftruncate, truncate, fchmod
  { op: 'open', path: 'new', flags: 'O_CREAT|O_EXCL|O_RDWR', mode: 0o640, as: 'n' },
  { op: 'write', fd: 'n', data: 'hello world\n' },
  { op: 'pwrite', fd: 'n', data: 'HELLO', offset: 0 },
  { op: 'fsync', fd: 'n' },
  { op: 'read', fd: 'n', offset: 0 },
  { op: 'ftruncate', fd: 'n', length: 5 },
  { op: 'fstat', fd: 'n', fields: ['size', 'mode', 'nlink'] },
  { op: 'fchmod', fd: 'n', mode: 0o600 },
  { op: 'close', fd: 'n' },
  { op: 'open', path: 'new', flags: 'O_CREAT|O_EXCL|O_RDWR' },
  { op: 'truncate', path: 'lower.txt', length: 3 },
  { op: 'readfile', path: 'lower.txt' },
  { op: 'open', path: 'lower.txt', flags: 'O_WRONLY|O_APPEND', as: 'a' },
  { op: 'write', fd: 'a', data: '+appended' },
  { op: 'close', fd: 'a' },
  { op: 'readfile', path: 'lower.txt' },
  // attributes
  { op: 'chmod', path: 'dir/inner', mode: 0o4755 },
  { op: 'chown', path: 'dir/inner', uid: 123, gid: 456 },
  { op: 'utime', path: 'dir/inner', atime_ns: '1000000000123456789', mtime_ns: '1200000000987654321' },
  { op: 'lstat', path: 'dir/inner', fields: ['mode', 'uid', 'gid', 'atime_ns', 'mtime_ns', 'size'] },
  // xattrs, with XATTR_CREATE / XATTR_REPLACE
  { op: 'setxattr', path: 'lower.txt', name: 'user.a', value: 'one', flags: 1 },
  { op: 'setxattr', path: 'lower.txt', name: 'user.a', value: 'two', flags: 1 },
  { op: 'setxattr', path: 'lower.txt', name: 'user.b', value: 'x', flags: 2 },
  { op: 'setxattr', path: 'lower.txt', name: 'user.a', value: 'three', flags: 2 },
  { op: 'getxattr', path: 'lower.txt', name: 'user.a' },
  { op: 'getxattr', path: 'lower.txt', name: 'user.none' },
  { op: 'listxattr', path: 'lower.txt' },
  { op: 'removexattr', path: 'lower.txt', name: 'user.a' },
  { op: 'removexattr', path: 'lower.txt', name: 'user.a' },
  { op: 'getxattr', path: 'dir', name: 'trusted.overlay.opaque' },
  // namespace: mkdir, rmdir, symlink, readlink, link, rename, unlink, mknod
  { op: 'mkdir', path: 'made', mode: 0o750 },
  { op: 'mkdir', path: 'made', mode: 0o750 },
  { op: 'symlink', path: 'made/sl', target: '../lower.txt' },
  { op: 'readlink', path: 'made/sl' },
  { op: 'readfile', path: 'made/sl' },
  { op: 'link', path: 'dir/inner', to: 'made/hard' },
  { op: 'lstat', path: 'made/hard', fields: ['nlink', 'mode', 'uid'] },
  { op: 'rename', path: 'made/hard', to: 'made/hard2' },
  { op: 'rename', path: 'dir', to: 'dir2' },
  { op: 'listdir', path: 'dir2' },
  { op: 'mkfifo', path: 'made/fifo', mode: 0o600 },
  { op: 'mknod', path: 'made/null', kind: 'chr', major: 1, minor: 3, mode: 0o666 },
  { op: 'mknod', path: 'made/sock', kind: 'sock', mode: 0o644 },
  { op: 'mknod', path: 'made/wh', kind: 'chr', major: 0, minor: 0 },
  { op: 'lstat', path: 'made/null', fields: ['mode', 'rdev'] },
  { op: 'unlink', path: 'made/sl' },
  { op: 'unlink', path: 'lower.txt' },
  { op: 'rmdir', path: 'made' },
  { op: 'unlink', path: 'made/fifo' },
  { op: 'unlink', path: 'made/null' },
  { op: 'unlink', path: 'made/sock' },
  { op: 'unlink', path: 'made/hard2' },
  { op: 'rmdir', path: 'made' },
  { op: 'listdir', path: '.' },
  { op: 'rmdir', path: 'gone-dir' },
]

/** d_ino from readdir must equal st_ino from lstat (inode numbers differ between the twins). */
const inoOps: Op[] = [
  { op: 'readdir', path: 'dir2' },
  { op: 'lstat', path: 'dir2/inner', fields: ['ino'] },
]

t.test('each operation once, as the kernel does it', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    fs.writeFileSync(`${lowers[0]}/lower.txt`, 'lower text\n')
    fs.mkdirSync(`${lowers[0]}/dir`)
    fs.writeFileSync(`${lowers[0]}/dir/inner`, 'inner\n')
    fs.mkdirSync(`${lowers[0]}/gone-dir`)
  })
  const [lf, ov] = await tw.both(s => syscalls(s.mnt, ops))
  t.same(labelled(ops, lf), labelled(ops, ov), 'every call: same result or errno')
  // The oracle itself did what the story says where it matters.
  const byOp = (res: typeof ov, i: number) => res[i]
  t.same(byOp(ov, ops.findIndex(o => o.op === 'mknod' && o.path === 'made/wh')), { errno: 'EPERM' }, 'mknod c 0 0 is EPERM')
  for (const side of tw.sides) {
    const [dir, st] = await syscalls(side.mnt, inoOps)
    const entries = (dir as { value: { name: string; d_ino: number }[] }).value
    const ino = (st as { value: { ino: number } }).value.ino
    t.same(entries.map(e => [e.name, e.d_ino]), [['inner', ino]], `${side.role}: d_ino equals st_ino`)
  }
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
