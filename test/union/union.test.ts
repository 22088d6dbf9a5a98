// The union core without FUSE: each operation's effect on the merged view and on the layers
// on disk, exactly as the kernel's overlayfs would leave them.
import fs from 'node:fs'
import t from 'tap'
import * as attr from '../../src/union/attr-ops.js'
import * as dir from '../../src/union/dir-ops.js'
import * as file from '../../src/union/file-ops.js'
import { Union } from '../../src/union/union.js'
import { freshDir } from '../helpers/scratch.js'
import { getXattr, isOpaque, isWhiteout, opaque, setXattr, whiteout } from '../helpers/layers.js'

interface Fixture {
  u: Union
  upper: string
  lower1: string
  lower2: string
}

/** lower2 (bottom): a, d/{x,y}, e/, gone; lower1 (top): b, d/z, whiteout of gone, opaque o/. */
/** As at the end of a mount: copy-ups' fsyncs done, their journal gone (copy-up-commits.ts). */
async function endOfMount(u: Union): Promise<void> {
  await u.upper!.commits.settled()
  u.upper!.commits.end()
}

function fixture(opts: { readOnly?: boolean } = {}): Fixture {
  const root = freshDir('union')
  const [lower1, lower2, upper, work] = ['l1', 'l2', 'u', 'w'].map(n => `${root}/${n}`) as [string, string, string, string]
  for (const d of [lower1, lower2, upper, work]) fs.mkdirSync(d)
  fs.writeFileSync(`${lower2}/a`, 'lower a\n')
  fs.mkdirSync(`${lower2}/d`)
  fs.writeFileSync(`${lower2}/d/x`, 'x\n')
  fs.writeFileSync(`${lower2}/d/y`, 'y\n')
  fs.mkdirSync(`${lower2}/e`)
  fs.writeFileSync(`${lower2}/gone`, 'gone\n')
  fs.mkdirSync(`${lower2}/o`)
  fs.writeFileSync(`${lower2}/o/hidden`, 'hidden\n')
  fs.writeFileSync(`${lower1}/b`, 'lower b\n')
  fs.mkdirSync(`${lower1}/d`)
  fs.writeFileSync(`${lower1}/d/z`, 'z\n')
  whiteout(`${lower1}/gone`)
  fs.mkdirSync(`${lower1}/o`)
  fs.writeFileSync(`${lower1}/o/seen`, 'seen\n')
  opaque(`${lower1}/o`)
  fs.chmodSync(`${lower2}/a`, 0o640)
  fs.utimesSync(`${lower2}/a`, 1000, 2000)
  setXattr(`${lower2}/a`, 'user.color', 'blue')
  const u = opts.readOnly
    ? new Union({ lowerdirs: [lower1, lower2] })
    : new Union({ lowerdirs: [lower1, lower2], upperdir: upper, workdir: work })
  u.upper?.cleanWork()
  return { u, upper, lower1, lower2 }
}

const names = (u: Union, path: string): string[] =>
  attr.readdir(u, path).names.filter(n => n !== '.' && n !== '..').sort()

const readAll = (u: Union, path: string): string => {
  const st = attr.getattr(u, path)
  const e = u.resolve(path)
  return fs.readFileSync(e.top.layer.hostPath(e.top.path), 'utf8').slice(0, st.size)
}

t.test('lookup and readdir merge the layers', async t => {
  const { u } = fixture()
  t.same(names(u, '/'), ['a', 'b', 'd', 'e', 'o'], 'root: each name once, whiteout hides gone')
  t.same(names(u, '/d'), ['x', 'y', 'z'], 'merged directory')
  t.same(names(u, '/o'), ['seen'], 'an opaque directory stops the merge')
  t.throws(() => u.resolve('/gone'), { code: 'ENOENT' })
  t.throws(() => u.resolve('/a/x'), { code: 'ENOTDIR' })
  t.equal(attr.getattr(u, '/d').nlink, 1, 'merged directory reports nlink 1')
  t.equal(attr.getattr(u, '/e').nlink, 2, 'a lower-only directory reports its real nlink')
  const listing = attr.readdir(u, '/d')
  for (const [i, n] of listing.names.entries()) {
    if (n === '.' || n === '..') continue
    t.equal(listing.inos[i], attr.getattr(u, `/d/${n}`).ino, `d_ino of ${n} equals st_ino`)
  }
})

t.test('copy-up keeps content, mode, times, xattrs and the inode number', async t => {
  const { u, upper, lower2 } = fixture()
  const before = attr.getattr(u, '/a')
  await attr.chmod(u, '/a', 0o600)
  t.ok(fs.existsSync(`${upper}/a`), 'copied up')
  const st = fs.lstatSync(`${upper}/a`, { bigint: true })
  t.equal(Number(st.mode) & 0o7777, 0o600)
  t.equal(st.mtimeNs, 2000n * 1_000_000_000n, 'mtime kept to the nanosecond')
  t.equal(getXattr(`${upper}/a`, 'user.color'), 'blue', 'xattr copied')
  t.equal(fs.readFileSync(`${upper}/a`, 'utf8'), 'lower a\n')
  t.equal(attr.getattr(u, '/a').ino, before.ino, 'st_ino survives copy-up')
  t.equal(Number(fs.statSync(`${lower2}/a`).mode) & 0o7777, 0o640, 'lower untouched')
  await endOfMount(u)
  t.same(fs.readdirSync(`${upper}/../w/work`), [], 'workdir left empty')
})

t.test('open for write copies up; a reader opened before sees the new data', async t => {
  const { u, upper, lower2 } = fixture()
  const rfd = await file.open(u, '/d/x', fs.constants.O_RDONLY)
  const wfd = await file.open(u, '/d/x', fs.constants.O_WRONLY)
  t.ok(fs.existsSync(`${upper}/d/x`), 'copied up on open for write')
  t.ok(fs.statSync(`${upper}/d`).isDirectory(), 'parent copied up first')
  const data = Buffer.from('X!')
  t.equal(file.write(u, wfd, data, 2, 1), 2)
  const buf = Buffer.alloc(8)
  const n = file.read(u, rfd, buf, 8, 0)
  t.equal(buf.subarray(0, n).toString(), 'xX!', 'the early reader reads the upper copy')
  file.release(u, rfd)
  file.release(u, wfd)
  t.equal(fs.readFileSync(`${lower2}/d/x`, 'utf8'), 'x\n', 'lower untouched')
})

t.test('a truncating open copies up metadata but no data', async t => {
  const { u, upper, lower2 } = fixture()
  const fd = await file.open(u, '/a', fs.constants.O_WRONLY | fs.constants.O_TRUNC)
  file.release(u, fd)
  const st = fs.lstatSync(`${upper}/a`)
  t.equal(st.size, 0)
  t.equal(st.mode & 0o7777, 0o640, 'mode kept')
  t.equal(getXattr(`${upper}/a`, 'user.color'), 'blue', 'xattrs kept')
  t.equal(fs.readFileSync(`${lower2}/a`, 'utf8'), 'lower a\n', 'lower untouched')
})

t.test('unlink and rmdir of lower names leave whiteouts', async t => {
  const { u, upper, lower2 } = fixture()
  await dir.unlink(u, '/a')
  t.ok(isWhiteout(`${upper}/a`), 'whiteout for a lower file')
  t.throws(() => u.resolve('/a'), { code: 'ENOENT' })
  t.ok(fs.existsSync(`${lower2}/a`), 'lower untouched')
  t.throws(() => dir.rmdir(u, '/d'), { code: 'ENOTEMPTY' })
  for (const n of ['x', 'y', 'z']) await dir.unlink(u, `/d/${n}`)
  dir.rmdir(u, '/d')
  t.ok(isWhiteout(`${upper}/d`), 'whiteout for a lower directory whose upper held only whiteouts')
  t.same(names(u, '/'), ['b', 'e', 'o'])
  // A new upper-only file is removed for real.
  file.release(u, file.create(u, '/new', 0o644))
  await dir.unlink(u, '/new')
  t.notOk(fs.existsSync(`${upper}/new`), 'no whiteout where no lower has the name')
})

t.test('mkdir over a whiteout makes an opaque directory', async t => {
  const { u, upper } = fixture()
  for (const n of ['x', 'y', 'z']) await dir.unlink(u, `/d/${n}`)
  dir.rmdir(u, '/d')
  dir.mkdir(u, '/d', 0o755)
  t.ok(isOpaque(`${upper}/d`), 'opaque')
  t.same(names(u, '/d'), [], 'nothing of the lower d shows')
  t.same(fs.readdirSync(`${upper}/../w/work`), [], 'the whiteout left the workdir')
  // A file created over a whiteout replaces it.
  await dir.unlink(u, '/b')
  file.release(u, file.create(u, '/b', 0o600))
  t.ok(fs.lstatSync(`${upper}/b`).isFile())
  t.equal(attr.getattr(u, '/b').size, 0)
})

t.test('rename: files leave a whiteout, directories get a redirect', async t => {
  const { u, upper, lower2 } = fixture()
  await dir.rename(u, '/a', '/a2')
  t.ok(isWhiteout(`${upper}/a`), 'whiteout at the source')
  t.equal(readAll(u, '/a2'), 'lower a\n')
  await dir.rename(u, '/d', '/d2')
  t.ok(isWhiteout(`${upper}/d`))
  t.equal(getXattr(`${upper}/d2`, 'trusted.overlay.redirect'), 'd', 'relative redirect in the same parent')
  t.same(names(u, '/d2'), ['x', 'y', 'z'], 'the lower content follows the directory')
  dir.mkdir(u, '/sub', 0o755)
  await dir.rename(u, '/d2', '/sub/d3')
  t.equal(getXattr(`${upper}/sub/d3`, 'trusted.overlay.redirect'), '/d', 'absolute redirect elsewhere')
  t.same(names(u, '/sub/d3'), ['x', 'y', 'z'])
  t.ok(fs.existsSync(`${lower2}/d/x`), 'lower untouched')
  await t.rejects(dir.rename(u, '/sub', '/sub/d3/in'), { code: 'EINVAL' })
  await t.rejects(dir.rename(u, '/b', '/e'), { code: 'EISDIR' })
  await t.rejects(dir.rename(u, '/e', '/b'), { code: 'ENOTDIR' })
  await t.rejects(dir.rename(u, '/e', '/sub'), { code: 'ENOTEMPTY' })
})

t.test('the overlay xattrs are private; a user trusted.overlay.* is escaped', async t => {
  const { u, upper } = fixture()
  t.equal(attr.getxattr(u, '/o', 'trusted.overlay.opaque'), undefined, 'hidden: ENODATA')
  t.notOk(attr.listxattr(u, '/o').includes('trusted.overlay.opaque'))
  await attr.setxattr(u, '/b', 'trusted.overlay.mine', Buffer.from('v'), 0)
  t.equal(getXattr(`${upper}/b`, 'trusted.overlay.overlay.mine'), 'v')
  t.equal(attr.getxattr(u, '/b', 'trusted.overlay.mine')?.toString(), 'v')
  t.ok(attr.listxattr(u, '/b').includes('trusted.overlay.mine'))
})

t.test('unlink while the name is being copied up: the name stays gone', async t => {
  const { u, upper, lower2 } = fixture()
  fs.writeFileSync(`${lower2}/big`, Buffer.alloc(8 << 20, 1))
  const opening = file.open(u, '/big', fs.constants.O_RDWR) // copy-up on the threadpool
  const unlinking = dir.unlink(u, '/big')
  const fd = await opening
  await unlinking
  file.release(u, fd)
  t.throws(() => u.resolve('/big'), { code: 'ENOENT' })
  t.ok(isWhiteout(`${upper}/big`), 'a whiteout, not the copied-up file')
  await endOfMount(u)
  t.same(fs.readdirSync(`${upper}/../w/work`), [], 'workdir clean')
})

t.test('mknod c 0 0 is refused: a user cannot forge a whiteout', async t => {
  const { u } = fixture()
  t.throws(() => dir.mknod(u, '/wh', 0o020644, 0), { code: 'EPERM' })
})

t.test('a union without an upper layer is read-only', async t => {
  const { u } = fixture({ readOnly: true })
  await t.rejects(dir.unlink(u, '/a'), { code: 'EROFS' })
  t.throws(() => dir.mkdir(u, '/n', 0o755), { code: 'EROFS' })
  await t.rejects(file.open(u, '/a', fs.constants.O_RDWR), { code: 'EROFS' })
  await t.rejects(attr.chmod(u, '/a', 0o600), { code: 'EROFS' })
  const fd = await file.open(u, '/a', fs.constants.O_RDONLY)
  const buf = Buffer.alloc(16)
  t.equal(buf.subarray(0, file.read(u, fd, buf, 16, 0)).toString(), 'lower a\n')
  file.release(u, fd)
})
