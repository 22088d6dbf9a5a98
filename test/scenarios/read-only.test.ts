// A union without an upper layer is read-only: every write gets EROFS, reads merge the lowers
// as usual, statvfs says ST_RDONLY, and the lowers are never touched. Against the kernel (which
// gets an extra empty lower when there is only one; see mountOverlay).
import t from 'tap'
import { sampleLowers } from '../helpers/layers.js'
import { OK, err, val } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

t.test('read-only union: EROFS on every write, reads merged', async t => {
  const tw = await twinMounts(t, d => sampleLowers(d.lowers), { lowers: 2, upper: false })
  const EROFS = err('EROFS')
  await tw.sameSys(t, [
    { op: 'readfile', path: 'shared.txt' },
    { op: 'listdir', path: 'merged' },
    { op: 'lstat', path: 'gone' },
    { op: 'open', path: 'top.txt', flags: 'O_WRONLY' },
    { op: 'open', path: 'top.txt', flags: 'O_RDWR' },
    { op: 'open', path: 'top.txt', flags: 'O_WRONLY|O_TRUNC' },
    { op: 'open', path: 'new.txt', flags: 'O_WRONLY|O_CREAT' },
    { op: 'truncate', path: 'top.txt', length: 0 },
    { op: 'unlink', path: 'top.txt' },
    { op: 'mkdir', path: 'newdir' },
    { op: 'rmdir', path: 'only0' },
    { op: 'rename', path: 'top.txt', to: 'x.txt' },
    { op: 'link', path: 'top.txt', to: 'x.txt' },
    { op: 'symlink', path: 'x.txt', target: 'top.txt' },
    { op: 'mkfifo', path: 'fifo' },
    { op: 'chmod', path: 'top.txt', mode: 0o600 },
    { op: 'chown', path: 'top.txt', uid: 1, gid: 1 },
    { op: 'utime', path: 'top.txt', atime_ns: '1000000000', mtime_ns: '1000000000' },
    { op: 'setxattr', path: 'top.txt', name: 'user.x', value: '1' },
    { op: 'removexattr', path: 'top.txt', name: 'user.x' },
    { op: 'open', path: 'top.txt', flags: 'O_RDONLY' },
    { op: 'access', path: 'top.txt', mode: 2 }, // W_OK
  ], [
    val('from lower0\n'), val(['a0', 'a1', 'sub']), err('ENOENT'),
    EROFS, EROFS, EROFS, EROFS, EROFS, EROFS, EROFS, EROFS, EROFS, EROFS, EROFS, EROFS,
    EROFS, EROFS, EROFS, EROFS, EROFS, OK, val(false),
  ])
  // statvfs: the flags and name length (sizes are the lower fs's business).
  const [lf, ov] = await tw.sys([{ op: 'statvfs', path: '.' }])
  const ST_RDONLY = 1
  for (const [role, r] of [['kernel', ov[0]], ['layerfs', lf[0]]] as const) {
    const flag = (r as { value?: { flag: number } }).value?.flag ?? 0
    t.ok(flag & ST_RDONLY, `${role}: statvfs has ST_RDONLY`, { result: r })
    t.equal((r as { value?: { namemax: number } }).value?.namemax, 255, `${role}: statvfs namemax 255`)
  }
  await tw.same(t, 'cat top.txt only1/deep/z && ls -a opq && find . | sort', { code: 0 })
  await tw.same(t, 'touch top.txt 2>&1; mkdir -p a/b 2>&1; echo $?', { code: 0 })
  await tw.sameTree(t)
  await tw.lowersUnchanged(t)
})

t.test('a read-only union of a single lower', async t => {
  // sampleLowers wants two dirs: the second (its lower1 part) goes to the unmounted outside dir.
  const tw = await twinMounts(t, d => sampleLowers([d.lowers[0]!, d.outside]), { lowers: 1, upper: false })
  await tw.sameSys(t, [
    { op: 'readfile', path: 'top.txt' },
    { op: 'listdir', path: '.' },
    { op: 'writefile', path: 'top.txt', data: 'no' },
  ], [val('top\n'), val(['file-vs-dir', 'link0', 'merged', 'only0', 'opq', 'shared.txt', 'top.txt']), err('EROFS')])
  await tw.sameTree(t)
  await tw.lowersUnchanged(t)
})
