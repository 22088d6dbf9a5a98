// What a process can do with an open directory whose name is gone (rmdir, or a rename put
// another directory in its place), as exact syscalls on its fd (syscalls.py): shared by the
// test/regress/open-dir-* tests, which run them on both mounts and compare.
import type { Op } from './syscalls.js'

export const DIR_FIELDS = ['type', 'mode', 'uid', 'gid', 'size', 'nlink']

/** A fixed time, to see that futimens reached the directory. */
export const SET_NS = '1000000000123456789'

/** Everything tried on the fd `fd` after the name went; `where` names the op for messages. */
export function opsOnGoneDir(fd: string): Op[] {
  return [
    { op: 'fstat', fd, fields: DIR_FIELDS },
    { op: 'flistdir', fd },
    { op: 'getdents', fd },
    { op: 'fchmod', fd, mode: 0o700 },
    { op: 'fchown', fd, uid: 1234, gid: 5678 },
    { op: 'futimens', fd, atime_ns: SET_NS, mtime_ns: SET_NS },
    { op: 'fstat', fd, fields: [...DIR_FIELDS, 'mtime_ns'] },
    { op: 'fsetxattr', fd, name: 'user.k', value: 'v' },
    { op: 'fgetxattr', fd, name: 'user.k' },
    { op: 'flistxattr', fd },
    { op: 'fremovexattr', fd, name: 'user.k' },
    { op: 'flistxattr', fd },
    { op: 'fsync', fd },
    { op: 'openat', fd, path: 'new-file', flags: 'O_CREAT|O_WRONLY' },
    { op: 'mkdirat', fd, path: 'new-dir' },
    { op: 'reopen', fd, as: `${fd}-again`, flags: 'O_RDONLY|O_DIRECTORY' },
    { op: 'flistdir', fd: `${fd}-again` },
    { op: 'close', fd: `${fd}-again` },
    { op: 'close', fd },
  ]
}
