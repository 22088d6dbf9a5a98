// The host addon (src/layers/native/host.c) against a scratch dir: results and Node-shaped errors.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { host } from '../../src/layers/native.js'

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
  t.throws(() => host.renameat2(missing, p('b'), 0), { code: 'ENOENT', syscall: 'renameat2', path: missing, dest: p('b') })
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
  t.throws(() => host.renameat2(p('r1'), p('r2'), 1), { code: 'EEXIST' })
  host.renameat2(p('r1'), p('r2'), 2)
  t.equal(fs.readFileSync(p('r1'), 'utf8'), '2')
  t.equal(fs.readFileSync(p('r2'), 'utf8'), '1')
  host.renameat2(p('r1'), p('r3'), 4)
  const wh = fs.lstatSync(p('r1'))
  t.ok(wh.isCharacterDevice() && wh.rdev === 0, 'RENAME_WHITEOUT leaves a 0/0 char device')
  t.equal(fs.readFileSync(p('r3'), 'utf8'), '2')
})
