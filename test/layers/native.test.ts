// The host addon (src/layers/native/host.c) against a scratch dir: results and Node-shaped errors.
import t from 'tap'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { AT_FDCWD, fsPath, hasRawBytes, host, nameBytes, nameFromBytes, SEEK } from '../../src/layers/native.js'
import { statAt } from '../../src/layers/stat.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerfs-host-'))
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
const p = (name: string): string => path.join(dir, name)
const times = (f: string): [bigint, bigint] => {
  const st = fs.lstatSync(f, { bigint: true })
  return [st.atimeNs, st.mtimeNs]
}

t.test('errors look like Node fs errors', async t => {
  const missing = p('no/such')
  t.throws(() => host.mknod(missing, 0o010644, 0), {
    message: `ENOENT: no such file or directory, mknod '${missing}'`,
    errno: -2, code: 'ENOENT', syscall: 'mknod', path: missing,
  })
  t.throws(() => host.renameAt(AT_FDCWD, missing, AT_FDCWD, p('b'), 0), { code: 'ENOENT', syscall: 'renameat2', path: missing, dest: p('b') })
  t.throws(() => host.futimens(99999, 'now', 'now'), { code: 'EBADF', errno: -9, syscall: 'futimens' })
  t.throws(() => host.lutimens(p('x'), 5 as unknown as bigint, 'now'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => host.lutimens(p('x\0y'), 5n, 'now'), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' })
})

t.test('mknod: whiteouts (char 0/0) and fifos', async t => {
  host.mknod(p('wh'), 0o020000, 0)
  const st = fs.lstatSync(p('wh'))
  t.ok(st.isCharacterDevice())
  t.equal(st.rdev, 0)
  host.mknod(p('fifo'), 0o010600, 0)
  t.ok(fs.lstatSync(p('fifo')).isFIFO())
  t.throws(() => host.mknod(p('fifo'), 0o010600, 0), { code: 'EEXIST' })
})

t.test('lutimens / futimens: nanoseconds, now, omit, no-follow', async t => {
  fs.writeFileSync(p('f'), 'x')
  fs.symlinkSync('f', p('l'))
  host.lutimens(p('f'), 1000000000123456789n, 2000000000987654321n)
  t.same(times(p('f')), [1000000000123456789n, 2000000000987654321n])
  host.lutimens(p('f'), 'omit', -1500000001n)
  t.same(times(p('f')), [1000000000123456789n, -1500000001n], 'omit keeps atime; before 1970 works')
  host.lutimens(p('l'), 5n, 7n)
  t.same(times(p('l')), [5n, 7n], 'the link itself')
  t.same(times(p('f')), [1000000000123456789n, -1500000001n], 'not its target')
  const before = BigInt(Date.now() - 5000) * 1_000_000n
  host.lutimens(p('f'), 'now', 'omit')
  t.ok(times(p('f'))[0] >= before, 'now')
  const fd = fs.openSync(p('f'), 'r')
  host.futimens(fd, 'omit', 3n)
  t.equal(fs.fstatSync(fd, { bigint: true }).mtimeNs, 3n)
  fs.closeSync(fd)
})

t.test('xattrs: any size, ENODATA as undefined, flags, no-follow', async t => {
  fs.writeFileSync(p('x'), '')
  t.equal(host.lgetxattr(p('x'), 'user.none'), undefined)
  host.lsetxattr(p('x'), 'user.small', Buffer.from('y'), 0)
  t.equal(host.lgetxattr(p('x'), 'user.small')?.toString(), 'y')
  const big = Buffer.alloc(3000, 7)
  host.lsetxattr(p('x'), 'user.big', big, 0)
  t.same(host.lgetxattr(p('x'), 'user.big'), big, 'larger than the first buffer')
  host.lremovexattr(p('x'), 'user.big')
  host.lsetxattr(p('x'), 'user.empty', Buffer.alloc(0), 0)
  t.equal(host.lgetxattr(p('x'), 'user.empty')?.length, 0)
  t.throws(() => host.lsetxattr(p('x'), 'user.small', Buffer.from('z'), 1), { code: 'EEXIST', syscall: 'lsetxattr' })
  t.throws(() => host.lsetxattr(p('x'), 'user.new', Buffer.from('z'), 2), { code: 'ENODATA' })
  const names = Array.from({ length: 30 }, (_, i) => `user.n${i}-${'x'.repeat(20)}`)
  for (const n of names) host.lsetxattr(p('x'), n, Buffer.from('1'), 0)
  t.same(host.llistxattr(p('x')).sort(), ['user.empty', 'user.small', ...names].sort(), 'a long list')
  host.lremovexattr(p('x'), 'user.small')
  t.throws(() => host.lremovexattr(p('x'), 'user.small'), { code: 'ENODATA', errno: -61 })
  fs.symlinkSync('x', p('xl'))
  t.equal(host.lgetxattr(p('xl'), 'user.empty'), undefined, 'a symlink is not followed')
  host.lsetxattr(p('xl'), 'trusted.t', Buffer.from('1'), 0)
  t.same(host.llistxattr(p('xl')), ['trusted.t'])
  t.notOk(host.llistxattr(p('x')).includes('trusted.t'))
})

t.test('renameat2: noreplace, exchange, whiteout', async t => {
  fs.writeFileSync(p('r1'), '1')
  fs.writeFileSync(p('r2'), '2')
  t.throws(() => host.renameAt(AT_FDCWD, p('r1'), AT_FDCWD, p('r2'), 1), { code: 'EEXIST' })
  host.renameAt(AT_FDCWD, p('r1'), AT_FDCWD, p('r2'), 2)
  t.equal(fs.readFileSync(p('r1'), 'utf8'), '2')
  t.equal(fs.readFileSync(p('r2'), 'utf8'), '1')
  host.renameAt(AT_FDCWD, p('r1'), AT_FDCWD, p('r3'), 4)
  const wh = fs.lstatSync(p('r1'))
  t.ok(wh.isCharacterDevice() && wh.rdev === 0, 'RENAME_WHITEOUT leaves a 0/0 char device')
  t.equal(fs.readFileSync(p('r3'), 'utf8'), '2')
})

/** The data extents of fd, [start, end) pairs, found with SEEK_DATA / SEEK_HOLE. */
function extents(fd: number): [number, number][] {
  const out: [number, number][] = []
  for (let at = 0; ;) {
    let start: number
    try {
      start = host.lseek(fd, at, SEEK.DATA)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENXIO') return out
      throw err
    }
    const end = host.lseek(fd, start, SEEK.HOLE)
    out.push([start, end])
    at = end
  }
}

const TMPFS_MAGIC = 0x01021994
const fsName = (dir: string): string => {
  const type = fs.statfsSync(dir).type
  return type === 0xef53 ? 'ext4' : type === TMPFS_MAGIC ? 'tmpfs' : `fs 0x${type.toString(16)}`
}
/** A tmpfs to test on: /dev/shm on this machine; skip where there is none. */
const shm = ((): string | undefined => {
  try {
    return fs.statfsSync('/dev/shm').type === TMPFS_MAGIC ? fs.mkdtempSync('/dev/shm/layerfs-host-') : undefined
  } catch {
    return undefined
  }
})()
if (shm !== undefined) t.teardown(() => fs.rmSync(shm, { recursive: true, force: true }))

const MiB = 1 << 20
const block = Buffer.alloc(4096, 0x5a)

for (const [where, base] of [['the test dir', dir], ['tmpfs', shm]] as const) {
  t.test(`lseek: SEEK_DATA / SEEK_HOLE find the data of a sparse file (${where})`, { skip: base === undefined && 'no tmpfs at /dev/shm' }, async t => {
    const f = path.join(base!, 'sparse')
    const fd = fs.openSync(f, 'w+')
    t.teardown(() => fs.closeSync(fd))
    fs.writeSync(fd, block, 0, 4096, 0)
    fs.writeSync(fd, block, 0, 4096, MiB)
    fs.writeSync(fd, block, 0, 4096, 2 ** 33) // past 2^32: offsets keep 64 bits
    fs.ftruncateSync(fd, 2 ** 33 + 4 * MiB) // a hole at the end
    t.same(extents(fd), [[0, 4096], [MiB, MiB + 4096], [2 ** 33, 2 ** 33 + 4096]], `data extents on ${fsName(base!)}`)
    t.equal(host.lseek(fd, 4096, SEEK.HOLE), 4096, 'SEEK_HOLE inside a hole stays')
    t.equal(host.lseek(fd, 100, SEEK.DATA), 100, 'SEEK_DATA inside data stays')
    t.equal(host.lseek(fd, 0, SEEK.END), 2 ** 33 + 4 * MiB, 'SEEK_END')
    t.throws(() => host.lseek(fd, 2 ** 33 + 4096, SEEK.DATA), {
      message: 'ENXIO: no such device or address, lseek', errno: -6, code: 'ENXIO', syscall: 'lseek',
    }, 'no data after the last extent: ENXIO, Node-shaped')
    t.throws(() => host.lseek(fd, 2 ** 33 + 4 * MiB, SEEK.HOLE), { code: 'ENXIO' }, 'SEEK_HOLE at EOF: ENXIO')
    t.equal(host.lseek(fd, 2 ** 33 + 100, SEEK.HOLE), 2 ** 33 + 4096, 'from inside the last data: the hole that ends the file')

    const empty = fs.openSync(path.join(base!, 'empty'), 'w+')
    t.same(extents(empty), [], 'an empty file has no data')
    fs.ftruncateSync(empty, 3 * MiB)
    t.same(extents(empty), [], 'nor does a file that is all hole')
    t.equal(host.lseek(empty, 0, SEEK.HOLE), 0)
    fs.closeSync(empty)
  })
}

t.test('lseek: SEEK_SET / SEEK_CUR / SEEK_END move the fd that fs.readSync uses', async t => {
  fs.writeFileSync(p('seek'), '0123456789')
  const fd = fs.openSync(p('seek'), 'r')
  t.teardown(() => fs.closeSync(fd))
  t.equal(host.lseek(fd, 3, SEEK.SET), 3)
  t.equal(host.lseek(fd, 2, SEEK.CUR), 5)
  const buf = Buffer.alloc(2)
  fs.readSync(fd, buf, 0, 2, null) // null position: read at (and advance) the fd's offset
  t.equal(buf.toString(), '56', 'the kernel offset moved')
  t.equal(host.lseek(fd, 0, SEEK.CUR), 7)
  t.equal(host.lseek(fd, -4, SEEK.END), 6)
  t.equal(host.lseek(fd, 2 ** 40, SEEK.SET), 2 ** 40, 'past the end is allowed')
  t.throws(() => host.lseek(fd, -(2 ** 41), SEEK.CUR), { code: 'EINVAL', errno: -22, syscall: 'lseek' }, 'a negative result')
  t.throws(() => host.lseek(fd, 0, 99), { code: 'EINVAL' }, 'an unknown whence')
  t.throws(() => host.lseek(99999, 0, SEEK.SET), { code: 'EBADF', errno: -9, syscall: 'lseek' })
  t.throws(() => host.lseek(fd, 2 ** 53 + 2, SEEK.SET), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }, 'not exact')
  t.throws(() => host.lseek(fd, 1.5, SEEK.SET), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => host.lseek(fd, 1n as unknown as number, SEEK.SET), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => host.lseek(-1, 0, SEEK.SET), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
})

t.test('lseek: offsets exact up to 2^53, EOVERFLOW above (tmpfs: files up to 2^63)', { skip: shm === undefined && 'no tmpfs at /dev/shm' }, async t => {
  const fd = fs.openSync(path.join(shm!, 'huge'), 'w+')
  t.teardown(() => fs.closeSync(fd))
  fs.writeSync(fd, block, 0, 4096, 2 ** 52)
  fs.writeSync(fd, block, 0, 4096, 2 ** 53 - 4096)
  t.same(extents(fd), [[2 ** 52, 2 ** 52 + 4096], [2 ** 53 - 4096, 2 ** 53]])
  t.equal(host.lseek(fd, 0, SEEK.END), 2 ** 53, 'size 2^53, exact')
  t.equal(host.lseek(fd, 2 ** 53, SEEK.SET), 2 ** 53)
  t.equal(host.lseek(fd, -(2 ** 53), SEEK.END), 0, 'the most negative offset taken')
  // fs.writeSync takes no position above 2^53 - 1: write at the fd's offset instead.
  t.equal(host.lseek(fd, 2 ** 53, SEEK.SET), 2 ** 53)
  fs.writeSync(fd, Buffer.from('x'), 0, 1, null) // size 2^53 + 1
  t.throws(() => host.lseek(fd, 0, SEEK.END), { code: 'EOVERFLOW', errno: -75, syscall: 'lseek' }, '2^53 + 1 is not a number')
})

t.test('the name codec: bytes -> string -> bytes is exact, valid UTF-8 is untouched', async t => {
  for (const s of ['', 'plain', 'café', '\ufffd', '€', '😀', '\ufeffbom', 'a/b/c', '\u0080', '\uffff', '\u{10ffff}']) {
    t.equal(nameFromBytes(Buffer.from(s, 'utf8')), s, `valid UTF-8 ${JSON.stringify(s)} decodes as before`)
    t.equal(fsPath(s), s, 'and fs gets the string itself')
    t.notOk(hasRawBytes(s))
  }
  for (let b = 0; b < 256; b++) {
    const bytes = Buffer.from([0x61, b, 0x62])
    const name = nameFromBytes(bytes)
    t.same(nameBytes(name), bytes, `byte 0x${b.toString(16)} round-trips`)
    if (b >= 0x80) t.equal(name, `a${String.fromCharCode(0xdc00 + b)}b`, 'as a lone U+DC80..U+DCFF')
  }
  const cases: [string, string][] = [
    ['c3', '\udcc3'], // a lead byte cut short
    ['c0af', '\udcc0\udcaf'], // overlong '/'
    ['eda080', '\udced\udca0\udc80'], // an encoded surrogate (U+D800)
    ['f4908080', '\udcf4\udc90\udc80\udc80'], // above U+10FFFF
    ['636166e9', 'caf\udce9'], // latin-1
    ['e282ac80', '€\udc80'], // valid, then a stray continuation byte
    ['edb280', '\udced\udcb2\udc80'], // the UTF-8 of U+DC80 itself is invalid: no aliasing
  ]
  for (const [hex, want] of cases) {
    const name = nameFromBytes(Buffer.from(hex, 'hex'))
    t.equal(name, want, `0x${hex}`)
    t.equal(nameBytes(name).toString('hex'), hex)
    t.ok(Buffer.isBuffer(fsPath(name)), 'fs gets the bytes')
  }
  // Random byte strings (deterministic): every one round-trips.
  let seed = 12345
  const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) % 256
  for (let i = 0; i < 2000; i++) {
    const bytes = Buffer.from(Array.from({ length: 1 + (i % 12) }, rand))
    if (!nameBytes(nameFromBytes(bytes)).equals(bytes)) t.fail(`round trip of ${bytes.toString('hex')}`)
  }
  t.equal(nameBytes('a\ud800b').toString('hex'), Buffer.from('a\ufffdb').toString('hex'), 'another lone surrogate: U+FFFD, as Node')
})

t.test('host calls take escaped names (and Buffers) and give them back', async t => {
  const raw = Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x66, 0xff, 0xfe])]) // "f\xff\xfe"
  const name = nameFromBytes(raw)
  t.ok(hasRawBytes(name))
  host.mknod(name, 0o100600, 0) // a regular file (user.* xattrs are refused on a FIFO)
  const listed = fs.readdirSync(dir, { encoding: 'buffer' }).map(b => b.toString('hex'))
  t.ok(listed.includes('66fffe'), 'the exact bytes on disk')
  host.lsetxattr(name, nameFromBytes(Buffer.from('757365722e78ff', 'hex')), Buffer.from('v'), 0) // user.x\xff
  t.same(host.llistxattr(raw), ['user.x\udcff'], 'llistxattr escapes, a Buffer path works')
  t.equal(host.lgetxattr(raw, Buffer.from('757365722e78ff', 'hex'))?.toString(), 'v', 'Buffer xattr name')
  host.lutimens(name, 5n, 7n)
  t.equal(fs.lstatSync(raw, { bigint: true }).mtimeNs, 7n)
  const dest = nameFromBytes(Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x80])]))
  host.renameAt(AT_FDCWD, name, AT_FDCWD, dest, 0)
  t.ok(fs.existsSync(Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x80])])))
  t.throws(() => host.lremovexattr(name, 'user.x'), {
    code: 'ENOENT', path: name, message: `ENOENT: no such file or directory, lremovexattr '${name}'`,
  }, 'an error names the path in the same codec')
  t.throws(() => host.mknod(Buffer.from('a\0b'), 0o010600, 0), { code: 'ERR_INVALID_ARG_VALUE' }, 'NUL in a Buffer')
  t.throws(() => host.mknod(5 as unknown as string, 0o010600, 0), { code: 'ERR_INVALID_ARG_TYPE' })
})

t.test('openBeneath: no symlink in any component, nothing outside the dir', async t => {
  const root = p('beneath')
  fs.mkdirSync(`${root}/d`, { recursive: true })
  fs.writeFileSync(`${root}/d/f`, 'inside')
  fs.writeFileSync(p('outside'), 'outside')
  fs.symlinkSync(dir, `${root}/up`)
  fs.symlinkSync('d', `${root}/dl`)
  fs.symlinkSync('d/f', `${root}/fl`)
  fs.writeFileSync(Buffer.from(`${root}/d/raw\xff`, 'latin1'), 'raw')
  const rfd = fs.openSync(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
  t.teardown(() => fs.closeSync(rfd))
  const read = (fd: number): string => {
    try { return fs.readFileSync(fd, 'utf8') } finally { fs.closeSync(fd) }
  }
  t.equal(read(host.openBeneath(rfd, '/d/f', fs.constants.O_RDONLY, 0)), 'inside')
  t.equal(read(host.openBeneath(rfd, 'd/raw\udcff', fs.constants.O_RDONLY, 0)), 'raw', 'escaped names')
  t.throws(() => host.openBeneath(rfd, '/up/outside', fs.constants.O_RDONLY, 0), { code: 'ELOOP', syscall: 'openat2', path: '/up/outside' }, 'a symlinked dir out of the tree')
  t.throws(() => host.openBeneath(rfd, '/dl/f', fs.constants.O_RDONLY, 0), { code: 'ELOOP' }, 'a symlinked dir inside the tree')
  t.throws(() => host.openBeneath(rfd, '/fl', fs.constants.O_WRONLY, 0), { code: 'ELOOP' }, 'a final symlink')
  t.throws(() => host.openBeneath(rfd, '/../outside', fs.constants.O_RDONLY, 0), { code: 'EXDEV' }, '.. out of the tree')
  // FUSE hands on the kernel's __FMODE_EXEC (0x20) for an execve: open(2) ignores it, openat2 must too.
  const O_LARGEFILE = 0o100000
  t.equal(read(host.openBeneath(rfd, '/d/f', fs.constants.O_RDONLY | 0x20 | O_LARGEFILE, 0)), 'inside', 'flags open(2) ignores')
  t.equal(read(host.openBeneath(rfd, '/d/f', fs.constants.O_RDONLY, 0o644)), 'inside', 'a mode without O_CREAT is ignored')
  fs.closeSync(host.openBeneath(rfd, '/d', fs.constants.O_RDONLY | fs.constants.O_DIRECTORY, 0o644))
  const fd = host.openBeneath(rfd, '/d/new', fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o640)
  t.equal(fs.fstatSync(fd).mode & 0o7777, 0o640 & ~process.umask(), 'O_CREAT takes the mode')
  fs.closeSync(fd)
  t.equal(fs.readFileSync(p('outside'), 'utf8'), 'outside')
})

t.test('statAt: what lstat gives, by directory fd and name, without following a symlink', async t => {
  fs.mkdirSync(p('sa'))
  fs.writeFileSync(p('sa/f'), 'hello')
  fs.symlinkSync('f', p('sa/l'))
  host.mknod(p('sa/wh'), 0o020000, 0)
  const dfd = fs.openSync(p('sa'), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
  t.teardown(() => fs.closeSync(dfd))
  const slots = new BigInt64Array(16)
  // A time after 2262 (beyond int64 nanoseconds): seconds and nanoseconds apart.
  host.lutimens(p('sa/f'), 10_000_000_000n * 1_000_000_000n + 5n, 'now')
  const B = 1_000_000_000n
  for (const name of ['f', 'l', 'wh', '', '.']) {
    t.equal(host.statAt(dfd, name, slots), true, name)
    const st = fs.lstatSync(name === '' || name === '.' ? p('sa') : p(`sa/${name}`), { bigint: true })
    t.same([...slots], [st.mode, st.uid, st.gid, st.nlink, st.size, st.blocks, st.blksize, st.rdev, st.ino, st.dev,
      st.atimeNs / B, st.atimeNs % B, st.mtimeNs / B, st.mtimeNs % B, st.ctimeNs / B, st.ctimeNs % B],
    `every slot of ${name || '(the dir itself)'}`)
  }
  t.equal(statAt(dfd, 'f')?.atimeNs, 10_000_000_000n * 1_000_000_000n + 5n, 'statAt: the year 2286, exact')
  t.equal(statAt(dfd, 'f')?.mtimeNs, fs.lstatSync(p('sa/f'), { bigint: true }).mtimeNs)
  t.equal(host.statAt(dfd, 'missing', slots), false, 'ENOENT: false')
  t.equal(host.statAt(AT_FDCWD, p('sa/f'), slots), true, 'AT_FDCWD: a path')
  t.equal(slots[4], 5n)
  t.equal(host.statAt(dfd, 'f/x', slots), false, 'ENOTDIR: false')
  t.throws(() => host.statAt(99999, 'f', slots), { code: 'EBADF', syscall: 'fstatat' })
  t.throws(() => host.statAt(dfd, 'f', new BigInt64Array(13)), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => host.statAt(dfd, 'f', new Float64Array(16) as unknown as BigInt64Array), { code: 'ERR_INVALID_ARG_TYPE' })
  // A name that is not UTF-8, in the name codec.
  const raw = Buffer.concat([Buffer.from(p('sa') + '/'), Buffer.from([0x67, 0xfe])])
  fs.writeFileSync(raw, 'xy')
  t.equal(host.statAt(dfd, nameFromBytes(Buffer.from([0x67, 0xfe])), slots), true)
  t.equal(slots[4], 2n, 'the escaped name is the file')
})

t.test('changes by directory fd and name: what the path calls do, no symlink followed', async t => {
  const d = p('at-calls')
  fs.mkdirSync(d)
  const dfd = fs.openSync(d, 0o10000000 /* O_PATH */ | fs.constants.O_DIRECTORY)
  t.teardown(() => fs.closeSync(dfd))
  host.mkdirAt(dfd, 'sub', 0o1751)
  t.equal(fs.statSync(`${d}/sub`).mode & 0o7777, 0o1751 & ~process.umask(), 'mkdirAt: the mode, sticky bit too (less the umask)')
  t.throws(() => host.mkdirAt(dfd, 'sub', 0o755), { code: 'EEXIST', syscall: 'mkdir', path: `fd ${dfd}/sub` })
  host.mkdirAt(AT_FDCWD, `${d}/abs`, 0o700)
  t.ok(fs.statSync(`${d}/abs`).isDirectory(), 'AT_FDCWD: a path')
  fs.writeFileSync(`${d}/f`, 'x')
  fs.symlinkSync('f', `${d}/l`)
  // renameAt: flags as renameat2's.
  host.renameAt(dfd, 'f', dfd, 'g', 0)
  t.equal(fs.readFileSync(`${d}/g`, 'utf8'), 'x')
  fs.writeFileSync(`${d}/h`, 'h')
  t.throws(() => host.renameAt(dfd, 'h', dfd, 'g', 1 /* NOREPLACE */), { code: 'EEXIST', syscall: 'renameat2' })
  host.renameAt(dfd, 'h', AT_FDCWD, `${d}/sub/h`, 1)
  t.equal(fs.readFileSync(`${d}/sub/h`, 'utf8'), 'h', 'across directories, one by path')
  host.renameAt(dfd, 'g', dfd, 'sub', 2 /* EXCHANGE */)
  t.ok(fs.statSync(`${d}/g`).isDirectory(), 'exchanged')
  host.renameAt(dfd, 'g', dfd, 'sub', 2)
  // chownAt: the symlink itself; -1 keeps one.
  host.chownAt(dfd, 'l', 1234, 5678)
  t.same([fs.lstatSync(`${d}/l`).uid, fs.lstatSync(`${d}/l`).gid], [1234, 5678])
  t.equal(fs.statSync(`${d}/sub`).uid, 0, 'its target untouched')
  host.chownAt(dfd, 'l', -1, 42)
  t.same([fs.lstatSync(`${d}/l`).uid, fs.lstatSync(`${d}/l`).gid], [1234, 42])
  host.chownAt(dfd, '', 7, 0xffffffff)
  t.equal(fs.statSync(d).uid, 7, '"" is the directory itself')
  host.chownAt(dfd, '', 0, 0)
  // utimensAt: nanoseconds, the symlink itself, "" the directory.
  host.utimensAt(dfd, 'l', 1_000_000_001n, 2_000_000_002n)
  t.same(times(`${d}/l`), [1_000_000_001n, 2_000_000_002n])
  t.not(times(`${d}/sub`)[1], 2_000_000_002n, 'its target untouched')
  host.utimensAt(dfd, '', 'omit', 3_000_000_003n)
  t.equal(times(d)[1], 3_000_000_003n)
  // nameToHandleAt: the handle nameToHandle gives.
  t.same(host.nameToHandleAt(dfd, 'l'), host.nameToHandleAt(AT_FDCWD, `${d}/l`), 'by fd and name as by path')
  t.same(host.nameToHandleAt(dfd, ''), host.nameToHandleAt(AT_FDCWD, d), 'the directory itself')
  // unlinkAt: files, and directories with AT_REMOVEDIR.
  t.throws(() => host.unlinkAt(dfd, 'sub', 0), { code: 'EISDIR', syscall: 'unlink' })
  t.throws(() => host.unlinkAt(dfd, 'sub', 0x200), { code: 'ENOTEMPTY', syscall: 'rmdir' })
  host.unlinkAt(dfd, 'l', 0)
  t.notOk(fs.existsSync(`${d}/l`))
  host.unlinkAt(dfd, 'abs', 0x200)
  t.notOk(fs.existsSync(`${d}/abs`))
  t.throws(() => host.unlinkAt(dfd, 'missing', 0), { code: 'ENOENT', syscall: 'unlink' })
})

// chmodAt: fchmodat2(2) where the kernel has it (6.6), an O_PATH fd otherwise; the fallback
// second (once taken, it stays for the process).
for (const how of ['fchmodat2', 'O_PATH'] as const) {
  t.test(`chmodAt through ${how}: the mode, never through a last symlink`, async t => {
    if (how === 'O_PATH') host.disableFchmodat2()
    const d = p(`chmod-${how}`)
    fs.mkdirSync(d)
    fs.writeFileSync(`${d}/f`, '')
    fs.symlinkSync('f', `${d}/l`)
    const dfd = fs.openSync(d, 0o10000000 /* O_PATH */ | fs.constants.O_DIRECTORY)
    t.teardown(() => fs.closeSync(dfd))
    host.chmodAt(dfd, 'f', 0o4751)
    t.equal(fs.statSync(`${d}/f`).mode & 0o7777, 0o4751)
    t.throws(() => host.chmodAt(dfd, 'l', 0o600), { code: 'ELOOP', syscall: 'chmod' }, 'a symlink: ELOOP')
    t.equal(fs.statSync(`${d}/f`).mode & 0o7777, 0o4751, 'its target untouched')
    host.chmodAt(dfd, '', 0o1700)
    t.equal(fs.statSync(d).mode & 0o7777, 0o1700, '"" is the directory itself')
    host.chmodAt(AT_FDCWD, `${d}/f`, 0o640)
    t.equal(fs.statSync(`${d}/f`).mode & 0o7777, 0o640, 'AT_FDCWD: a path')
    t.throws(() => host.chmodAt(dfd, 'missing', 0o600), { code: 'ENOENT', syscall: 'chmod' })
  })
}

// Both ways of reaching an xattr by directory fd: getxattrat(2)/listxattrat(2) where the
// kernel has them (6.13), "/proc/self/fd/N/name" otherwise. The fallback runs second: once
// taken, it stays for the process.
for (const mode of ['*xattrat', 'procfs'] as const) {
  t.test(`getxattrAt / listxattrAt through ${mode}`, async t => {
    if (mode === 'procfs') host.disableXattrAt()
    // Where the calls are used the kernel has them (6.13); a kernel that has them may still
    // refuse them (a container's seccomp profile), then the procfs path serves.
    const [major = 0, minor = 0] = os.release().split('.').map(Number)
    if (mode === 'procfs') t.equal(host.xattrAtSupport(), false, 'the procfs path from now on')
    else if (host.xattrAtSupport()) t.ok(major > 6 || (major === 6 && minor >= 13), `kernel ${os.release()} has *xattrat`)
    const d = p(`xa-${mode}`)
    fs.mkdirSync(d)
    fs.writeFileSync(`${d}/x`, '')
    fs.symlinkSync('x', `${d}/xl`)
    host.lsetxattr(`${d}/x`, 'user.small', Buffer.from('y'), 0)
    const big = Buffer.alloc(3000, 7)
    fs.writeFileSync(`${d}/b`, '')
    host.lsetxattr(`${d}/b`, 'user.big', big, 0)
    host.lsetxattr(d, 'trusted.overlay.opaque', Buffer.from('y'), 0)
    host.lsetxattr(`${d}/xl`, 'trusted.t', Buffer.from('1'), 0)
    const dfd = fs.openSync(d, 0o10000000 /* O_PATH */ | fs.constants.O_DIRECTORY)
    t.teardown(() => fs.closeSync(dfd))
    t.equal(host.getxattrAt(dfd, 'x', 'user.small')?.toString(), 'y')
    t.equal(host.getxattrAt(AT_FDCWD, `${d}/x`, 'user.small')?.toString(), 'y', 'AT_FDCWD: a path')
    t.same(host.listxattrAt(AT_FDCWD, `${d}/xl`), ['trusted.t'])
    t.same(host.getxattrAt(dfd, 'b', 'user.big'), big, 'larger than the first buffer')
    t.equal(host.getxattrAt(dfd, 'x', 'user.none'), undefined, 'ENODATA: undefined')
    t.equal(host.getxattrAt(dfd, '', 'trusted.overlay.opaque')?.toString(), 'y', 'the directory itself')
    t.same(host.listxattrAt(dfd, 'x'), ['user.small'])
    t.same(host.listxattrAt(dfd, 'xl'), ['trusted.t'], 'a symlink is not followed')
    t.same(host.listxattrAt(dfd, '.'), ['trusted.overlay.opaque'])
    t.throws(() => host.getxattrAt(dfd, 'missing', 'user.x'), { code: 'ENOENT', syscall: 'lgetxattr' })
    t.throws(() => host.listxattrAt(dfd, 'missing'), { code: 'ENOENT', syscall: 'llistxattr' })
    const names = Array.from({ length: 30 }, (_, i) => `user.n${i}-${'x'.repeat(20)}`)
    for (const n of names) host.lsetxattr(`${d}/x`, n, Buffer.from('1'), 0)
    t.equal(host.listxattrAt(dfd, 'x').length, 31, 'a long list')
    // setxattrAt: the same two ways.
    host.setxattrAt(dfd, 'b', 'user.set', Buffer.from('v1'), 0)
    t.equal(host.lgetxattr(`${d}/b`, 'user.set')?.toString(), 'v1')
    t.throws(() => host.setxattrAt(dfd, 'b', 'user.set', Buffer.from('v2'), 1 /* XATTR_CREATE */), { code: 'EEXIST', syscall: 'lsetxattr' })
    host.setxattrAt(dfd, 'b', 'user.set', Buffer.from('v2'), 2 /* XATTR_REPLACE */)
    t.equal(host.lgetxattr(`${d}/b`, 'user.set')?.toString(), 'v2')
    host.setxattrAt(dfd, 'xl', 'trusted.s', Buffer.from('l'), 0)
    t.equal(host.lgetxattr(`${d}/xl`, 'trusted.s')?.toString(), 'l', 'on the symlink itself')
    t.equal(host.lgetxattr(`${d}/x`, 'trusted.s'), undefined, 'not on its target')
    host.setxattrAt(dfd, '', 'trusted.overlay.impure', Buffer.from('y'), 0)
    t.equal(host.lgetxattr(d, 'trusted.overlay.impure')?.toString(), 'y', 'the directory itself')
    host.setxattrAt(AT_FDCWD, `${d}/x`, 'user.p', Buffer.from('p'), 0)
    t.equal(host.lgetxattr(`${d}/x`, 'user.p')?.toString(), 'p', 'AT_FDCWD: a path')
    t.throws(() => host.setxattrAt(dfd, 'missing', 'user.x', Buffer.from('1'), 0), { code: 'ENOENT', syscall: 'lsetxattr' })
  })
}

t.test('ficlone: a reflink where the filesystem has them, else a Node-shaped ENOTSUP (what libuv calls EOPNOTSUPP) or EXDEV', async t => {
  fs.writeFileSync(p('clone-src'), 'data')
  const src = fs.openSync(p('clone-src'), 'r')
  const dst = fs.openSync(p('clone-dst'), 'w')
  t.teardown(() => {
    fs.closeSync(src)
    fs.closeSync(dst)
  })
  let cloned = false
  try {
    host.ficlone(dst, src)
    cloned = true
  } catch (e) {
    t.match(e, { code: /^(ENOTSUP|EOPNOTSUPP|EXDEV|EINVAL)$/, syscall: 'ficlone' })
  }
  if (cloned) t.equal(fs.readFileSync(p('clone-dst'), 'utf8'), 'data', 'the clone has the data')
  t.throws(() => host.ficlone(99999, src), { code: 'EBADF', syscall: 'ficlone' })
  t.throws(() => host.ficlone(dst, -1), { code: 'ERR_OUT_OF_RANGE' })
})

t.test('releaseStartUpMemory: read-only file mappings leave the RSS, the process goes on, private pages stay', async t => {
  const status = (): Record<string, number> =>
    Object.fromEntries([...fs.readFileSync('/proc/self/status', 'utf8').matchAll(/^(Rss\w+):\s+(\d+) kB/gm)].map(m => [m[1]!, Number(m[2])]))
  // A private mapping that has copies of its pages (RELRO: relocated, then read-only) is kept.
  const anonOfFiles = (): number => {
    let sum = 0
    let file = false
    for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
      const h = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ (\d+)/.exec(line)
      if (h) file = h[2] !== '0' && h[1]![1] !== 'w'
      else if (file && line.startsWith('Anonymous:')) sum += Number(line.split(/\s+/)[1])
    }
    return sum
  }
  const before = status()
  const anonBefore = anonOfFiles()
  const advised = host.releaseStartUpMemory()
  const after = status()
  t.ok(advised > 10 * 2 ** 20, `advised ${(advised / 2 ** 20).toFixed(1)} MB (node's binary at least)`)
  t.ok(after['RssFile']! < before['RssFile']!, `RssFile ${before['RssFile']} -> ${after['RssFile']} kB`)
  t.equal(anonOfFiles(), anonBefore, 'no private page of a read-only file mapping dropped')
  // Everything still runs: code of node's binary faults back in.
  t.equal(JSON.parse(JSON.stringify({ a: [1, 'x'] })).a[1], 'x')
  t.equal(createHash('sha256').update('x').digest('hex').slice(0, 8), '2d711642', 'OpenSSL in the binary runs')
  t.equal(new Intl.NumberFormat('en').format(1234.5), '1,234.5', 'ICU data in the binary reads back')
})

t.test('linkFdAt: a name for an O_TMPFILE file, through /proc/self/fd', async t => {
  const O_TMPFILE = 0o20200000
  const sub = p('tmpdir')
  fs.mkdirSync(sub)
  const dfd = fs.openSync(sub, 'r')
  t.teardown(() => fs.closeSync(dfd))
  const fd = host.openBeneath(dfd, '.', O_TMPFILE | fs.constants.O_RDWR, 0o640)
  fs.writeSync(fd, 'tmp\n')
  t.same(fs.readdirSync(sub), [], 'unnamed')
  host.linkFdAt(fd, dfd, 'named')
  t.equal(fs.readFileSync(path.join(sub, 'named'), 'utf8'), 'tmp\n')
  t.equal(fs.fstatSync(fd).nlink, 1)
  t.throws(() => host.linkFdAt(fd, dfd, 'named'), { code: 'EEXIST', syscall: 'link' })
  fs.closeSync(fd)
  const excl = host.openBeneath(dfd, '.', O_TMPFILE | fs.constants.O_RDWR | fs.constants.O_EXCL, 0o640)
  t.throws(() => host.linkFdAt(excl, dfd, 'never'), { code: 'ENOENT', syscall: 'link' }, 'O_EXCL: not linkable')
  fs.closeSync(excl)
  t.same(fs.readdirSync(sub), ['named'])
})
