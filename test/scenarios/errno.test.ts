// The errno a program gets from the union, case by case, against the kernel's: EEXIST,
// ENOTEMPTY, ENOTDIR, EISDIR, ENAMETOOLONG (a 256-byte name), ENOENT for whited-out names,
// ELOOP, EPERM for forging a whiteout, and the overlay's own xattrs staying out of reach.
import t from 'tap'
import { sampleLowers, writeTree } from '../helpers/layers.js'
import { OK, err, val } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

const build = (d: { lowers: string[] }) => {
  sampleLowers(d.lowers)
  writeTree(d.lowers[0]!, { loop1: { type: 'symlink', target: 'loop2' }, loop2: { type: 'symlink', target: 'loop1' } })
}

t.test('EEXIST, ENOTEMPTY, ENOTDIR, EISDIR, ENOENT, ELOOP', async t => {
  const tw = await twinMounts(t, build, { lowers: 2 })
  await tw.sameSys(t, [
    // EEXIST: names that exist only in a lower layer.
    { op: 'mkdir', path: 'merged' },
    { op: 'mkdir', path: 'bottom.txt' },
    { op: 'open', path: 'top.txt', flags: 'O_WRONLY|O_CREAT|O_EXCL' },
    { op: 'link', path: 'top.txt', to: 'shared.txt' },
    { op: 'symlink', path: 'only1', target: 'x' },
    { op: 'mkfifo', path: 'link0' },
    // ENOTEMPTY: dirs whose entries come only from lowers.
    { op: 'rmdir', path: 'merged' },
    { op: 'rmdir', path: 'only1' },
    { op: 'rmdir', path: 'merged/sub' },
    // ENOTDIR
    { op: 'open', path: 'top.txt/x', flags: 'O_RDONLY' },
    { op: 'mkdir', path: 'top.txt/x' },
    { op: 'rmdir', path: 'top.txt' },
    { op: 'open', path: 'top.txt', flags: 'O_RDONLY|O_DIRECTORY' },
    { op: 'listdir', path: 'file-vs-dir' }, // a file in lower0 over a dir in lower1
    // EISDIR
    { op: 'open', path: 'merged', flags: 'O_WRONLY' },
    { op: 'open', path: 'only1', flags: 'O_RDWR' },
    { op: 'unlink', path: 'merged' },
    { op: 'truncate', path: 'only0', length: 0 },
    // ENOENT: whited-out and opaque-hidden names
    { op: 'lstat', path: 'gone' },
    { op: 'open', path: 'gone', flags: 'O_RDONLY' },
    { op: 'unlink', path: 'gone' },
    { op: 'lstat', path: 'opq/hidden' },
    { op: 'lstat', path: 'file-vs-dir/inside' },
    { op: 'rmdir', path: 'no-such-dir' },
    { op: 'chmod', path: 'gone', mode: 0o600 },
    // ELOOP
    { op: 'open', path: 'loop1', flags: 'O_RDONLY' },
    { op: 'stat', path: 'loop1' },
    { op: 'open', path: 'link0', flags: 'O_RDONLY|O_NOFOLLOW' },
  ], [
    err('EEXIST'), err('EEXIST'), err('EEXIST'), err('EEXIST'), err('EEXIST'), err('EEXIST'),
    err('ENOTEMPTY'), err('ENOTEMPTY'), err('ENOTEMPTY'),
    err('ENOTDIR'), err('ENOTDIR'), err('ENOTDIR'), err('ENOTDIR'), err('ENOTDIR'),
    err('EISDIR'), err('EISDIR'), err('EISDIR'), err('EISDIR'),
    err('ENOENT'), err('ENOENT'), err('ENOENT'), err('ENOENT'), err('ENOTDIR'), err('ENOENT'), err('ENOENT'),
    err('ELOOP'), err('ELOOP'), err('ELOOP'),
  ])
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})

t.test('ENAMETOOLONG for 256-byte names; 255 bytes work', async t => {
  const tw = await twinMounts(t, build, { lowers: 2 })
  const n255 = 'n'.repeat(255)
  const n256 = 'n'.repeat(256)
  const u255 = 'é'.repeat(127) + 'x' // 255 bytes of UTF-8
  await tw.sameSys(t, [
    { op: 'open', path: n256, flags: 'O_WRONLY|O_CREAT' },
    { op: 'mkdir', path: n256 },
    { op: 'stat', path: n256 },
    { op: 'symlink', path: n256, target: 'top.txt' },
    { op: 'rename', path: 'top.txt', to: n256 },
    { op: 'link', path: 'top.txt', to: `merged/${n256}` },
    { op: 'open', path: n255, flags: 'O_WRONLY|O_CREAT' },
    { op: 'mkdir', path: `merged/${n255}` },
    { op: 'rename', path: 'bottom.txt', to: `merged/${n255}/${u255}` },
    { op: 'readfile', path: `merged/${n255}/${u255}` },
    { op: 'unlink', path: n255 },
    { op: 'lstat', path: n255 },
  ], [
    err('ENAMETOOLONG'), err('ENAMETOOLONG'), err('ENAMETOOLONG'), err('ENAMETOOLONG'), err('ENAMETOOLONG'), err('ENAMETOOLONG'),
    OK, OK, OK, val('bottom\n'), OK, err('ENOENT'),
  ])
  await tw.sameTree(t)
  await tw.sameUpper(t)
})

t.test('users cannot forge whiteouts or reach the overlay xattrs', async t => {
  const tw = await twinMounts(t, build, { lowers: 2 })
  await tw.sameSys(t, [
    { op: 'mknod', path: 'wh', kind: 'chr', major: 0, minor: 0 },
    { op: 'lstat', path: 'wh' },
    { op: 'listxattr', path: 'opq' },                              // opaque in lower0
    { op: 'getxattr', path: 'opq', name: 'trusted.overlay.opaque' },
    { op: 'mknod', path: 'null', kind: 'chr', major: 1, minor: 3, mode: 0o666 }, // a real device works (umask 022)
    { op: 'lstat', path: 'null', fields: ['type', 'rdev', 'mode'] },
    { op: 'setxattr', path: 'merged', name: 'user.color', value: 'red' },
    { op: 'getxattr', path: 'merged', name: 'user.color' },
    { op: 'setxattr', path: 'link0', name: 'user.x', value: '1', follow: false }, // user.* on a symlink
  ], [err('EPERM'), err('ENOENT'), val([]), err('ENODATA'), OK, val({ type: 'chardev', rdev: '1:3', mode: '0o644' }), OK, val('red'), err('EPERM')])
  // Whatever setting trusted.overlay.* through the mount does (the kernel escapes the name),
  // it must not change the union: merged/ must not turn opaque, nothing may vanish.
  await tw.sys([
    { op: 'setxattr', path: 'merged', name: 'trusted.overlay.opaque', value: 'y' },
    { op: 'setxattr', path: 'only0', name: 'trusted.overlay.redirect', value: '/only1' },
  ])
  await tw.sameSys(t, [{ op: 'listdir', path: 'merged' }, { op: 'listdir', path: 'only0' }], [val(['a0', 'a1', 'sub']), val(['x'])], 'the union after trusted.overlay.* writes')
  await tw.sameTree(t, { xattrs: 'user' })
  await tw.lowersUnchanged(t)
})
