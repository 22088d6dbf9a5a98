// Passthrough (FUSE 7.40, root): a file whose data is in the upper layer is opened so that the
// kernel reads and writes its backing file itself (lowlevel.c "passthrough", ll-ops.ts
// #backingFor). A lower file stays served, so that a copy-up still moves its readers to the
// upper data; the kernel wants all opens of an inode the same way at a time. Each story on
// layerfs and kernel overlayfs: the same results, tree and upper. Then that passthrough really
// is in effect (and off with LAYERFS_PASSTHROUGH=0), and that it steps aside where the upper
// sits on a stacked filesystem.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { mountLayerfs, mountOverlay } from '../helpers/mount.js'
import { run } from '../helpers/run.js'
import { freshDir } from '../helpers/scratch.js'
import { OK, syscalls, val, type Op } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

const build = (d: { lowers: string[] }): void =>
  writeTree(d.lowers[0]!, { a: 'lower a\n', b: 'lower b\n', d: { c: 'lower c\n' } })

t.test('every order of opens: served, passed through, and the switch between them', async t => {
  const tw = await twinMounts(t, build, { lowers: 1 })
  await tw.sameSys(t, [
    // A lower file open for reading (served), then opened for writing: the copy-up, and the
    // reader sees what the writer writes (the writer stays served while the reader is open).
    { op: 'open', path: 'a', as: 'r' },
    { op: 'open', path: 'a', flags: 'O_RDWR', as: 'w' },
    { op: 'pwrite', fd: 'w', data: 'UPPER', offset: 0 },
    { op: 'read', fd: 'r' },
    { op: 'close', fd: 'r' },
    { op: 'close', fd: 'w' },
    // Now in the upper with nothing open: passed through, and every later open with it.
    { op: 'open', path: 'a', flags: 'O_RDWR', as: 'w2' },
    { op: 'open', path: 'a', as: 'r2' },
    { op: 'pwrite', fd: 'w2', data: 'X', offset: 1 },
    { op: 'read', fd: 'r2' },
    { op: 'mmapwrite', fd: 'w2', data: 'mm', offset: 6 },
    { op: 'read', fd: 'r2' },
    { op: 'ftruncate', fd: 'w2', length: 4 },
    { op: 'fstat', fd: 'r2', fields: ['size'] },
    { op: 'open', path: 'a', flags: 'O_WRONLY|O_APPEND', as: 'ap' },
    { op: 'write', fd: 'ap', data: '+app' },
    { op: 'read', fd: 'r2' },
    { op: 'close', fd: 'ap' },
    { op: 'close', fd: 'w2' },
    { op: 'read', fd: 'r2' },
    { op: 'close', fd: 'r2' },
    // A new file: passed through from its CREATE; a reader opened beside the writer.
    { op: 'open', path: 'd/new', flags: 'O_RDWR|O_CREAT|O_EXCL', mode: 0o644, as: 'n' },
    { op: 'write', fd: 'n', data: 'new data\n' },
    { op: 'open', path: 'd/new', as: 'nr' },
    { op: 'read', fd: 'nr' },
    { op: 'pwrite', fd: 'n', data: 'N', offset: 0 },
    { op: 'read', fd: 'nr' },
    { op: 'fstat', fd: 'n', fields: ['size', 'nlink'] },
    { op: 'close', fd: 'n' },
    { op: 'close', fd: 'nr' },
    // Renamed and unlinked while open: the open files go on.
    { op: 'open', path: 'd/new', flags: 'O_RDWR', as: 'm' },
    { op: 'rename', path: 'd/new', to: 'moved' },
    { op: 'pwrite', fd: 'm', data: 'M', offset: 1 },
    { op: 'unlink', path: 'moved' },
    { op: 'pwrite', fd: 'm', data: 'gone', offset: 0 },
    { op: 'read', fd: 'm' },
    { op: 'fstat', fd: 'm', fields: ['size', 'nlink'] },
    { op: 'close', fd: 'm' },
    // An unnamed file, written and then named.
    { op: 'open', path: 'd', flags: 'O_TMPFILE|O_RDWR', mode: 0o600, as: 't' },
    { op: 'write', fd: 't', data: 'tmp\n' },
    { op: 'linkfd', fd: 't', to: 'd/tmp', empty: true },
    { op: 'pwrite', fd: 't', data: 'T', offset: 0 },
    { op: 'close', fd: 't' },
    { op: 'readfile', path: 'd/tmp' },
    // The copy-up at an open for writing: b is in the upper by the time that open is answered,
    // so it passes through, and so does a reader opened next.
    { op: 'open', path: 'b', flags: 'O_RDWR', as: 'bw' },
    { op: 'open', path: 'b', as: 'br' },
    { op: 'pwrite', fd: 'bw', data: 'B', offset: 0 },
    { op: 'read', fd: 'br' },
    { op: 'close', fd: 'bw' },
    { op: 'close', fd: 'br' },
    { op: 'readfile', path: 'a' },
    { op: 'readfile', path: 'b' },
  ], [
    OK, OK, val(5), val('UPPER a\n'), OK, OK,
    OK, OK, val(1), val('UXPER a\n'), OK, val('UXPER mm'), OK, val({ size: 4 }), OK, val(4), val('UXPE+app'), OK, OK,
    val('UXPE+app'), OK,
    OK, val(9), OK, val('new data\n'), val(1), val('New data\n'), val({ size: 9, nlink: 1 }), OK, OK,
    OK, OK, val(1), OK, val(4), val('gonedata\n'), val({ size: 9, nlink: 0 }), OK,
    OK, val(4), OK, val(1), OK, val('Tmp\n'),
    OK, OK, val(1), val('Bower b\n'), OK, OK,
    val('UXPE+app'), val('Bower b\n'),
  ])
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})

// Regression (xfstests generic/215): a store through a shared mapping of a passed-through file
// changes the backing file's mtime and ctime, and the kernel drops no cached attributes for it
// (it does after a write(2)): stat after the close showed the times from before, cached for a
// day.
const MMAP_STORE = `import mmap, os
fd = os.open("mm", os.O_RDWR)
m = mmap.mmap(fd, 4)
m[0:2] = b"MM"
m.close()
os.close(fd)
`

t.test('a store through a shared mapping changes mtime and ctime, as stat shows', async t => {
  const tw = await twinMounts(t, build, { lowers: 1 })
  const script = join(freshDir('mmap-store'), 'store.py')
  writeFileSync(script, MMAP_STORE)
  // The times as stat shows them first (so the kernel has them cached), then after the store.
  const [l] = await tw.same(t, `printf xxxx > mm && m=$(stat -c %.9Y mm) && c=$(stat -c %.9Z mm) && sleep 0.05 && ` +
    `python3 ${script} && if [ "$(stat -c %.9Y mm)" != "$m" ]; then echo mtime changed; fi && ` +
    `if [ "$(stat -c %.9Z mm)" != "$c" ]; then echo ctime changed; fi && cat mm`, { code: 0 })
  t.equal(l.stdout, 'mtime changed\nctime changed\nMMxx', 'the new times')
  await tw.sameUpper(t)
})

/**
 * Whether reads of an open upper file bypass the daemon: a file is read through the mount, its
 * upper copy is changed behind the mount, and the same open file read again. Served, the kernel
 * answers from the pages it kept (FOPEN_KEEP_CACHE: the old bytes); passed through, it reads
 * the backing file (the new ones). Changing a layer behind a mount is not supported use: here
 * it only shows which path the bytes take.
 */
const READ_BEHIND: Op[] = [
  { op: 'open', path: 'f', flags: 'O_RDWR', as: 'f' },
  { op: 'read', fd: 'f' },
  { op: 'pwritefile', path: '@behind', data: 'BEHIND', offset: 0 },
  { op: 'read', fd: 'f' },
  { op: 'close', fd: 'f' },
]

const SERVED = 'upper f data\n'
const PASSED = 'BEHINDf data\n'

for (const [label, env] of [
  ['passed through (the default, as root)', {}],
  ['served (LAYERFS_PASSTHROUGH=0)', { LAYERFS_PASSTHROUGH: '0' }],
] as const) {
  t.test(`an upper file's reads are ${label}`, async t => {
    const lower = freshDir('lower')
    writeFileSync(join(lower, 'x'), 'x\n')
    const upper = freshDir('upper')
    // Where the scratch space itself is overlayfs (make test-container), passthrough steps aside.
    const stacked = (await run('stat', ['-f', '-c', '%T', upper])).stdout.trim() === 'overlayfs'
    const passed = !('LAYERFS_PASSTHROUGH' in env) && !stacked
    const m = await mountLayerfs(t, { lowers: [lower], upper, env: { ...env, DEBUG: 'layerfs:fuse' } })
    writeFileSync(join(m.mnt, 'f'), 'upper f data\n')
    const ops = READ_BEHIND.map(o => (o.path === '@behind' ? { ...o, path: join(m.upper!, 'f') } : o))
    const res = await syscalls(m.mnt, ops)
    t.same(res, [OK, val(SERVED), val(6), val(passed ? PASSED : SERVED), OK], `the second read sees the ${passed ? 'new' : 'kept'} bytes`)
    const log = readFileSync(m.log!, 'utf8')
    t.match(log, /FUSE 7\.40, max_write \d+, passthrough (negotiated|off)/, 'the daemon says what INIT negotiated')
    t.equal(/passthrough negotiated/.test(log), !('LAYERFS_PASSTHROUGH' in env), 'passthrough negotiated unless switched off')
    if (stacked) t.match(log, /passthrough off: errno 40\b/, 'the upper on overlayfs: the kernel refused the backing file')
  })
}

t.test('an upper on a stacked filesystem: passthrough steps aside (ELOOP), files are served', async t => {
  // The upper and workdir inside a kernel overlayfs mount, as in a container whose root is
  // overlayfs: our superblock asks for max_stack_depth 1, the backing file's is 1 already.
  const base = freshDir('base-lower')
  const outer = await mountOverlay(t, { lowers: [base], upper: freshDir('outer-upper') })
  mkdirSync(join(outer.mnt, 'upper'))
  mkdirSync(join(outer.mnt, 'work'))
  const lower = freshDir('lower')
  writeFileSync(join(lower, 'f'), 'lower f\n')
  const m = await mountLayerfs(t, {
    lowers: [lower], upper: join(outer.mnt, 'upper'), work: join(outer.mnt, 'work'), env: { DEBUG: 'layerfs:fuse' },
  })
  const res = await syscalls(m.mnt, [
    { op: 'writefile', path: 'new', data: 'new file\n' },
    { op: 'open', path: 'new', flags: 'O_RDWR', as: 'n' },
    { op: 'pwrite', fd: 'n', data: 'N', offset: 0 },
    { op: 'read', fd: 'n' },
    { op: 'close', fd: 'n' },
    { op: 'open', path: 'f', flags: 'O_WRONLY|O_APPEND', as: 'f' },
    { op: 'write', fd: 'f', data: 'more\n' },
    { op: 'close', fd: 'f' },
    { op: 'readfile', path: 'f' },
  ])
  t.same(res, [OK, OK, val(1), val('New file\n'), OK, OK, val(5), OK, val('lower f\nmore\n')], 'written and read back')
  t.equal(readFileSync(join(outer.mnt, 'upper', 'new'), 'utf8'), 'New file\n', 'the upper has the data')
  t.match(readFileSync(m.log!, 'utf8'), /passthrough off: errno 40\b/, 'the kernel refused the backing file (ELOOP) and the daemon said so')
})
