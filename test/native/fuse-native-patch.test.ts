// The fuse-native patch (scripts/fuse-native/), through a real mount: a passthrough daemon
// (fixtures/passthrough.ts) in its own process, driven by touch/python in other processes.
// Each assertion here fails on the unpatched module; see native-notes/fuse-native.md.
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { host } from '../../src/layers/native.js'
import { describeFailure, run, type RunResult } from '../helpers/run.js'
import { forceUnmountSync, freshDir, isMounted, projectRoot, registerMount, scratchRoot, unregisterMount } from '../helpers/scratch.js'

const fixture = path.join(projectRoot, 'test/native/fixtures/passthrough.ts')

interface Daemon {
  backing: string
  mnt: string
  /** What the daemon wrote on stderr so far (it logs every utimens it gets). */
  log(): string
}

/** Starts the passthrough daemon on a fresh backing dir; teardown always unmounts and kills it. */
async function daemon(tt: Test, options: string[], env: Record<string, string> = {}): Promise<Daemon> {
  const backing = freshDir('backing')
  const mnt = freshDir('mnt')
  const child: ChildProcess = spawn(process.execPath,
    ['--import=@tapjs/typescript/import', fixture, backing, mnt, options.join(',')],
    { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env, TS_NODE_TRANSPILE_ONLY: '1' } })
  registerMount(mnt, 'layerfs')
  let stderr = ''
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()))
  tt.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise(resolve => child.once('exit', resolve))
      child.kill('SIGTERM')
      await Promise.race([exited, new Promise(resolve => setTimeout(resolve, 5000))])
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    forceUnmountSync(mnt, 'layerfs')
    unregisterMount(mnt)
  })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not mount in 30 s:\n${stderr}`)), 30_000)
    child.stdout!.on('data', (b: Buffer) => {
      if (b.toString().includes('MOUNTED')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', code => {
      clearTimeout(timer)
      reject(new Error(`daemon exited (${code}) before mounting:\n${stderr}`))
    })
  })
  return { backing, mnt, log: () => stderr }
}

async function ok(cmd: string, args: string[]): Promise<RunResult> {
  const r = await run(cmd, args, { timeout: 20_000 })
  if (r.code !== 0) throw new Error(describeFailure(r))
  return r
}

/** [atime_ns, mtime_ns, ino] of p as the kernel reports them (lstat in a python child). */
async function pyStat(p: string): Promise<[bigint, bigint, bigint]> {
  const r = await ok('python3', ['-c',
    'import os,sys; s=os.lstat(sys.argv[1]); print(s.st_atime_ns, s.st_mtime_ns, s.st_ino)', p])
  const [a, m, i] = r.stdout.trim().split(' ').map(BigInt)
  return [a!, m!, i!]
}

const backingTimes = (p: string): [bigint, bigint] => {
  const st = fs.lstatSync(p, { bigint: true })
  return [st.atimeNs, st.mtimeNs]
}

// No attribute caching, so every stat reaches the daemon.
const OPTS = ['attr_timeout=0', 'entry_timeout=0', 'negative_timeout=0']
const A0 = 1111111111_111111111n
const M0 = 1222222222_222222222n

t.test('utimens', async t => {
  const d = await daemon(t, OPTS)
  const f = path.join(d.mnt, 'f')
  const bf = path.join(d.backing, 'f')
  fs.writeFileSync(bf, 'x')
  const reset = (): void => host.lutimens(bf, A0, M0)

  await t.test('touch -d with nanoseconds sets both times exactly', async t => {
    reset()
    await ok('touch', ['-d', '@1000000000.123456789', f])
    t.same(await pyStat(f).then(s => s.slice(0, 2)), [1000000000123456789n, 1000000000123456789n], 'via the mount')
    t.same(backingTimes(bf), [1000000000123456789n, 1000000000123456789n], 'in the backing file')
  })

  await t.test('touch -m changes only mtime', async t => {
    reset()
    await ok('touch', ['-m', '-d', '@2000000000.5', f])
    t.same(backingTimes(bf), [A0, 2000000000_500000000n])
    t.same(await pyStat(f).then(s => s.slice(0, 2)), [A0, 2000000000_500000000n])
  })

  await t.test('touch -a changes only atime', async t => {
    reset()
    await ok('touch', ['-a', '-d', '@1500000000.25', f])
    t.same(backingTimes(bf), [1500000000_250000000n, M0])
  })

  await t.test('touch -a without a date: atime now (UTIME_NOW), mtime omitted', async t => {
    reset()
    const before = BigInt(Date.now() - 5000) * 1_000_000n
    await ok('touch', ['-a', f])
    const [a, m] = backingTimes(bf)
    t.ok(a >= before, `atime ${a} is recent`)
    t.equal(m, M0, 'mtime untouched')
    t.match(d.log(), /utimens \/f now omit/, 'the op saw now/omit')
  })

  await t.test('os.utime with different atime and mtime (ns) sets both exactly', async t => {
    reset()
    await ok('python3', ['-c', 'import os,sys; os.utime(sys.argv[1], ns=(1234567890123456789, 987654321987654321))', f])
    t.same(backingTimes(bf), [1234567890123456789n, 987654321987654321n])
    t.same(await pyStat(f).then(s => s.slice(0, 2)), [1234567890123456789n, 987654321987654321n])
  })

  await t.test('times before 1970 survive both ways', async t => {
    reset()
    await ok('python3', ['-c', 'import os,sys; os.utime(sys.argv[1], ns=(-1500000001, -2))', f])
    t.same(backingTimes(bf), [-1500000001n, -2n])
    t.same(await pyStat(f).then(s => s.slice(0, 2)), [-1500000001n, -2n])
  })
})

t.test('getattr carries nanosecond times', async t => {
  const d = await daemon(t, OPTS)
  const bf = path.join(d.backing, 'g')
  fs.writeFileSync(bf, 'x')
  host.lutimens(bf, 1700000000_000000001n, 1700000000_999999999n)
  t.same(await pyStat(path.join(d.mnt, 'g')).then(s => s.slice(0, 2)), [1700000000_000000001n, 1700000000_999999999n])
})

t.test('use_ino: 64-bit inode numbers in stat and readdir', async t => {
  const d = await daemon(t, [...OPTS, 'use_ino'])
  const inos = [4294967303n, 9007199254740993n, 18446744073709551614n]
  for (const ino of inos) fs.writeFileSync(path.join(d.backing, `ino-${ino}`), '')
  for (const ino of inos) t.equal((await pyStat(path.join(d.mnt, `ino-${ino}`)))[2], ino, `stat ino ${ino}`)
  const r = await ok('python3', ['-c',
    'import os,sys; [print(e.name, e.inode()) for e in os.scandir(sys.argv[1])]', d.mnt])
  const dino = new Map(r.stdout.trim().split('\n').map(l => l.split(' ') as [string, string]))
  for (const ino of inos) t.equal(dino.get(`ino-${ino}`), String(ino), `d_ino ${ino}`)
})

t.test('xattrs: sizes, ERANGE, large values and lists', async t => {
  const d = await daemon(t, OPTS)
  const bf = path.join(d.backing, 'x')
  fs.writeFileSync(bf, '')
  const f = path.join(d.mnt, 'x')
  // python asks with a 128-byte (get) / 256-byte (list) buffer first and retries larger on ERANGE;
  // the unpatched module answered EIO (get) or died (list).
  const script = `
import os, sys, errno
p = sys.argv[1]
os.setxattr(p, 'user.big', b'v' * 3000)
assert os.getxattr(p, 'user.big') == b'v' * 3000
for i in range(20):
    os.setxattr(p, 'user.name-%02d-%s' % (i, 'n' * 20), b'1')
names = os.listxattr(p)
assert len(names) == 21, names
assert os.getxattr(p, 'user.name-03-' + 'n' * 20) == b'1'
try:
    os.getxattr(p, 'user.none'); sys.exit('no ENODATA')
except OSError as e:
    assert e.errno == errno.ENODATA, e
os.removexattr(p, 'user.big')
print('ok')
`
  const r = await ok('python3', ['-c', script, f])
  t.equal(r.stdout.trim(), 'ok')
  t.equal(host.lgetxattr(bf, 'user.big'), undefined, 'removed in the backing file')
  // A C program's view: the exact size query and a too small buffer.
  const c = await ok('python3', ['-c', `
import ctypes, ctypes.util, sys
libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
p = sys.argv[1].encode()
libc.setxattr(p, b'user.v', b'0123456789', 10, 0)
n = libc.getxattr(p, b'user.v', None, 0)
buf = ctypes.create_string_buffer(4)
m = libc.getxattr(p, b'user.v', buf, 4)
e = ctypes.get_errno()
ln = libc.listxattr(p, None, 0)
lbuf = ctypes.create_string_buffer(3)
lm = libc.listxattr(p, lbuf, 3)
le = ctypes.get_errno()
print(n, m, e, ln, lm, le)
`, f])
  const names = host.llistxattr(bf)
  const listSize = names.reduce((n, s) => n + Buffer.byteLength(s) + 1, 0)
  t.equal(c.stdout.trim(), `10 -1 34 ${listSize} -1 34`, 'size query, then ERANGE for a small buffer')
})

t.test('statfs counts above 2^32', async t => {
  const d = await daemon(t, OPTS, { PASSTHROUGH_BIG_STATFS: '1' })
  const r = await ok('python3', ['-c',
    'import os,sys; s=os.statvfs(sys.argv[1]); print(s.f_blocks, s.f_bfree, s.f_files, s.f_ffree)', d.mnt])
  const s = fs.statfsSync(d.backing, { bigint: true })
  const big = 1n << 40n
  // blocks/bfree also depend on other writers of the backing fs: compare loosely there.
  const [blocks, bfree, files, ffree] = r.stdout.trim().split(' ').map(BigInt)
  t.equal(blocks, s.blocks + big, 'f_blocks')
  t.ok(bfree! > big, `f_bfree ${bfree} above 2^40`)
  t.equal(files, s.files + big, 'f_files')
  t.ok(ffree! > big, `f_ffree ${ffree} above 2^40`)
})

t.test('hard_remove: an unlinked open file keeps working through its fd', async t => {
  const d = await daemon(t, [...OPTS, 'hard_remove'])
  const f = path.join(d.mnt, 'u')
  fs.writeFileSync(path.join(d.backing, 'u'), 'abc')
  // Unpatched, every op on the fd fails with ENOENT once the name is gone: libfuse cannot build
  // a path and fuse-native did not set nullpath_ok. lseek(SEEK_END) asks GETATTR with the fh
  // (fgetattr); fstat(2) and fchmod(2) reach libfuse without one, so they still fail (libfuse
  // 2.9 high-level API limit).
  const r = await ok('python3', ['-c', `
import os, sys
def err(f):
    try:
        f(); return 'ok'
    except OSError as e:
        return e.strerror
p = sys.argv[1]
fd = os.open(p, os.O_RDWR)
os.unlink(p)
assert not os.path.exists(p)
os.write(fd, b'XY')
os.lseek(fd, 0, os.SEEK_SET)
data = os.read(fd, 10)
end = os.lseek(fd, 0, os.SEEK_END)
os.ftruncate(fd, 1)
end2 = os.lseek(fd, 0, os.SEEK_END)
fsync = err(lambda: os.fsync(fd))
fstat = err(lambda: os.fstat(fd))
fchmod = err(lambda: os.fchmod(fd, 0o600))
os.close(fd)
print(data.decode(), end, end2, fsync, '|', fstat, '|', fchmod)
`, f])
  t.equal(r.stdout.trim(), 'XYc 3 1 ok | No such file or directory | No such file or directory')
  t.same(fs.readdirSync(d.backing), [], 'no .fuse_hidden file')
})

t.test('patch rev 3: each op gets the caller of its request (uid, gid, pid, umask)', async t => {
  // Another user must reach the mount point: the per-process scratch root is 0700.
  fs.chmodSync(scratchRoot(), 0o711)
  const d = await daemon(t, [...OPTS, 'allow_other', 'default_permissions'], { PASSTHROUGH_LOG_CALLERS: '1' })
  fs.chmodSync(d.backing, 0o1777)
  // uid 1000 and gid 1234 (different, so a swap shows), umask 027, no supplementary groups.
  // python drops root itself (the python3 on PATH may live where uid 1000 cannot run it).
  const script = `
import os, sys, stat
d = sys.argv[1]
os.setgroups([])
os.setgid(1234)
os.setuid(1000)
os.umask(0o027)
print(os.getpid(), flush=True)
fd = os.open(d + '/f', os.O_CREAT | os.O_WRONLY, 0o666)
os.write(fd, b'x')
os.close(fd)
os.mkdir(d + '/dir', 0o777)
os.mknod(d + '/fifo', stat.S_IFIFO | 0o666)
os.symlink('f', d + '/sl')
try:
    os.link(d + '/f', d + '/hl')  # EPERM (protected_hardlinks) if f is not the caller's
    os.unlink(d + '/hl')
except OSError as e:
    print('link:', e, file=sys.stderr)
s = os.lstat(d + '/f')
print(s.st_uid, s.st_gid, oct(s.st_mode & 0o7777))
`
  const r = await ok('python3', ['-c', script, d.mnt])
  const [pid, kernelView] = r.stdout.trim().split('\n')
  t.equal(kernelView, '1000 1234 0o640', 'the file is the caller\'s through the mount, mode already umasked')
  /** "uid gid pid umask" that the daemon logged for the first `op` on `arg`. */
  const seen = (op: string, arg: string): string | undefined =>
    d.log().split('\n').find(l => l.startsWith(`caller ${op} ${arg} `))?.split(' ').slice(3).join(' ')
  t.equal(seen('create', '/f'), `1000 1234 ${pid} 27`, 'create: uid, gid, pid and umask of the caller')
  t.equal(seen('mkdir', '/dir'), `1000 1234 ${pid} 27`, 'mkdir')
  t.equal(seen('mknod', '/fifo'), `1000 1234 ${pid} 27`, 'mknod')
  t.equal(seen('symlink', 'f'), `1000 1234 ${pid} 0`, 'symlink (no umask: no mode)')
  t.equal(seen('link', '/f'), `1000 1234 ${pid} 0`, 'link')
  t.equal(seen('unlink', '/hl'), `1000 1234 ${pid} 0`, 'unlink: every op gets its caller')
  t.equal(seen('write', '/f'), `1000 1234 ${pid} 0`, 'write')
  for (const [name, mode] of [['f', 0o100640], ['dir', 0o40750], ['fifo', 0o10640], ['sl', -1]] as const) {
    const st = fs.lstatSync(path.join(d.backing, name))
    t.same([st.uid, st.gid], [1000, 1234], `${name} belongs to the caller in the backing dir`)
    if (mode >= 0) t.equal(st.mode, mode, `${name} mode`)
  }
  // The daemon's own user through the same mount: root.
  const root = await ok('python3', ['-c', 'import os,sys; print(os.getpid()); open(sys.argv[1] + "/g", "w")', d.mnt])
  t.equal(seen('create', '/g')?.split(' ').slice(0, 3).join(' '), `0 0 ${root.stdout.trim()}`, 'root creates as root')
  t.equal(fs.lstatSync(path.join(d.backing, 'g')).uid, 0)
})

t.test('patch rev 4: names that are not UTF-8 keep their exact bytes, both ways', async t => {
  const d = await daemon(t, OPTS)
  // Invalid UTF-8 of every kind next to valid names that must not change (a real U+FFFD, an
  // emoji, a BOM, é): latin-1, lone continuation and lead bytes, an encoded surrogate, an
  // overlong '/', a code point above U+10FFFF, and bytes that look like an escape's UTF-8.
  const names = ['636166e9', 'fffe', 'feff', '6f6b2dc3a9', 'eda080', 'c3', 'c0af', 'f4908080',
    '6d69782de282ac2d80', 'efbfbd2d7265616c', 'f09f98802d656d6f6a69', 'efbbbf626f6d', 'edb2802d6573632d75746638']
  // Each step prints ERR instead of stopping, so a broken build shows every wrong answer.
  const script = `
import os, sys
d, b = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2])
names = [bytes.fromhex(h) for h in sys.argv[3].split(',')]
def q(f):
    try:
        return f()
    except OSError as e:
        return 'ERR ' + e.strerror
def write(p, data):
    with open(p, 'wb') as f:
        f.write(data)
def read(p):
    with open(p, 'rb') as f:
        return f.read()
for n in names:
    q(lambda: write(d + b'/' + n, n))
q(lambda: os.mkdir(d + b'/dir\\xff'))
q(lambda: os.rename(d + b'/\\xff\\xfe', d + b'/dir\\xff/moved\\x80'))
q(lambda: os.symlink(b'target-\\xfe\\xff', d + b'/link\\xfe'))
q(lambda: os.link(d + b'/caf\\xe9', d + b'/hard\\xe9'))
q(lambda: os.setxattr(d + b'/caf\\xe9', b'user.x\\xff', b'v'))
h = lambda l: l if isinstance(l, str) else ','.join(sorted(x.hex() for x in l))
hx = lambda v: v if isinstance(v, str) else v.hex()
print(h(q(lambda: os.listdir(d))))
print(h(q(lambda: os.listdir(b))))
print(h(q(lambda: os.listdir(d + b'/dir\\xff'))))
print(hx(q(lambda: os.readlink(d + b'/link\\xfe'))), hx(q(lambda: os.readlink(b + b'/link\\xfe'))))
print(all(q(lambda: read(d + b'/' + n)) == n for n in names if n != b'\\xff\\xfe'))
print(hx(q(lambda: read(d + b'/hard\\xe9'))), q(lambda: os.stat(d + b'/hard\\xe9').st_nlink))
print(h(q(lambda: [os.fsencode(x) for x in os.listxattr(d + b'/caf\\xe9')])), q(lambda: os.getxattr(d + b'/caf\\xe9', b'user.x\\xff')))
`
  const r = await ok('python3', ['-c', script, d.mnt, d.backing, names.join(',')])
  const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex')
  const top = [...names.filter(n => n !== 'fffe'), hex('dir\xff'), hex('link\xfe'), hex('hard\xe9')].sort().join(',')
  const [mntList, backingList, sub, links, contents, hard, xattrs] = r.stdout.trim().split('\n')
  t.equal(mntList, top, 'readdir through the mount gives back the exact bytes')
  t.equal(backingList, top, 'the backing dir holds the exact bytes')
  t.equal(sub, hex('moved\x80'), 'rename into a non-UTF-8 dir under a non-UTF-8 name')
  t.equal(links, `${hex('target-\xfe\xff')} ${hex('target-\xfe\xff')}`, 'symlink targets and readlink, both sides')
  t.equal(contents, 'True', 'each file opens under its own name (no two names collide)')
  t.equal(hard, '636166e9 2', 'link')
  t.equal(xattrs, `${hex('user.x\xff')} b'v'`, 'xattr names too')
  t.same(fs.readdirSync(d.backing, { encoding: 'buffer' }).map(b => b.toString('hex')).sort().join(','), top, 'as Node sees it')
})

t.test('an unknown -o option leaves no dead mount', async t => {
  const mnt = freshDir('mnt')
  registerMount(mnt, 'layerfs')
  t.teardown(() => {
    forceUnmountSync(mnt, 'layerfs')
    unregisterMount(mnt)
  })
  const r = await run(process.execPath, [path.join(projectRoot, 'test/native/fixtures/raw-mount.cjs'), mnt, 'bogus_option'],
    { timeout: 20_000 })
  t.match(r.stdout, /mount failed: fuse failed/, 'the mount fails')
  t.notOk(isMounted(mnt), 'and nothing stays mounted')
})
