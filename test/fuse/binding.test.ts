// LayerFuse without a mount: -o validation, the reply guard, xattr sizes and utimens decoding,
// driven through the private _op_* hooks with a fake native signal.
import t from 'tap'
import { FuseErrno, LayerFuse, processCaller, validateFuseOptions, type Caller, type FuseOps } from '../../src/fuse/binding.js'

type Call = [number, ...unknown[]]
type Hook = (signal: (...a: unknown[]) => void, ...args: unknown[]) => void

/** A LayerFuse over ops (never mounted) and a way to call one of its _op_* hooks. */
function harness(ops: FuseOps, options: string[] = []) {
  const fuse = new LayerFuse('/nonexistent-mnt', ops, { options })
  const call = (op: string, ...args: unknown[]): Promise<Call> => callAs(null, op, ...args)
  /** As the patched index.js dispatches: _requestCaller is set only while the hook runs synchronously. */
  const callAs = (caller: Caller | null, op: string, ...args: unknown[]): Promise<Call> =>
    new Promise(resolve => {
      const hook = (fuse as unknown as Record<string, Hook>)[`_op_${op}`]!
      const slot = fuse as unknown as { _requestCaller: Caller | null }
      slot._requestCaller = caller
      try {
        hook.call(fuse, (...reply: unknown[]) => resolve(reply as Call), ...args)
      } finally {
        slot._requestCaller = null
      }
    })
  return { fuse, call, callAs }
}

t.test('-o options', async t => {
  const good = ['use_ino', 'big_writes', 'max_write=131072', 'kernel_cache', 'auto_cache', 'entry_timeout=1.5',
    'attr_timeout=0', 'negative_timeout=60', 'ac_attr_timeout=2', 'default_permissions', 'allow_other',
    'auto_unmount', 'fsname=layerfs', 'subtype=layerfs', 'hard_remove', 'debug', 'ro', 'max_read=4096',
    'noforget', 'nonempty', 'readdir_ino', 'nodev', 'nosuid', 'noatime']
  t.doesNotThrow(() => validateFuseOptions(good))
  for (const bad of ['bogus', 'use_ino=1', 'max_write=', 'max_write=x', 'attr_timeout=-1', 'fsname=a,use_ino',
    'fsname=', 'subtype=a b', 'kernel_cache ', ''])
    t.throws(() => validateFuseOptions([bad]), { code: 'ERR_FUSE_OPTION' }, `rejects '${bad}'`)
  t.throws(() => validateFuseOptions(Array(200).fill('kernel_cache')), { code: 'ERR_FUSE_OPTION' }, 'too long')
  t.throws(() => new LayerFuse('/x', {}, { options: ['nope'] }), { code: 'ERR_FUSE_OPTION' }, 'before mounting')
  const { fuse } = harness({}, ['use_ino', 'fsname=a'])
  t.equal((fuse as unknown as { _fuseOptions(): string })._fuseOptions(), '-ouse_ino,fsname=a')
  t.equal((harness({}).fuse as unknown as { _fuseOptions(): string })._fuseOptions(), '')
})

t.test('the guard: every reply is a well-formed number, exactly once', async t => {
  const { call } = harness({
    getattr(p, reply) {
      if (p === '/throw') throw Object.assign(new Error('x'), { errno: -13 })
      if (p === '/weird') throw new Error('no errno')
      if (p === '/nostat') return reply(0)
      if (p === '/null') return (reply as (c: unknown) => void)(null)
      if (p === '/twice') { reply(-2); reply(0, { mode: 0o100644 }); return }
      reply(0, { mode: 0o100644, size: 1n })
    },
    readlink(_p, reply) { (reply as (c: number, t: unknown) => void)(0, 42) },
    open(_p, _f, reply) { reply(0, -1) },
    read(_p, _fh, _b, len, _pos, reply) { reply(len) },
  })
  t.equal((await call('getattr', '/throw'))[0], -13, 'a throw with errno answers it')
  t.equal((await call('getattr', '/weird'))[0], FuseErrno.EIO, 'other throws answer EIO')
  t.equal((await call('getattr', '/nostat'))[0], FuseErrno.EIO, 'success without a stat is EIO')
  t.equal((await call('getattr', '/null'))[0], FuseErrno.EIO, 'a null code is EIO')
  t.equal((await call('getattr', '/twice'))[0], -2, 'the first reply wins')
  const [code, arr] = await call('getattr', '/ok')
  t.equal(code, 0)
  t.equal((arr as Uint32Array).length, 22, 'the patched stat layout')
  t.equal((await call('readlink', '/l'))[0], FuseErrno.EIO, 'readlink target must be a string')
  t.equal((await call('open', '/f', 0))[0], FuseErrno.EIO, 'a negative fh is refused')
  t.equal((await call('read', '/f', 3, Buffer.alloc(8), 8, 0, 0))[0], 8, 'read may answer a byte count')
})

t.test("'' (libfuse's NULL path) reaches only fh-based ops", async t => {
  const seen: string[] = []
  const { call } = harness({
    chmod(p, _m, done) { seen.push(`chmod ${p}`); done(0) },
    fgetattr(p, fh, reply) { seen.push(`fgetattr ${p} ${fh}`); reply(0, { mode: 0o100644 }) },
  })
  t.equal((await call('chmod', '', 0o600))[0], FuseErrno.ENOENT)
  t.equal((await call('fgetattr', '', 7))[0], 0)
  t.same(seen, ['fgetattr  7'])
})

t.test('getxattr and listxattr: size query, ERANGE, ENODATA', async t => {
  const { call } = harness({
    getxattr(_p, name, reply) { reply(0, name === 'user.v' ? Buffer.from('0123456789') : undefined) },
    listxattr(_p, reply) { reply(0, ['user.a', 'user.bb']) },
  })
  t.equal((await call('getxattr', '/f', 'user.v', Buffer.alloc(0), 0))[0], 10, 'size query')
  t.equal((await call('getxattr', '/f', 'user.v', Buffer.alloc(4), 0))[0], FuseErrno.ERANGE, 'too small')
  const buf = Buffer.alloc(16)
  t.equal((await call('getxattr', '/f', 'user.v', buf, 0))[0], 10)
  t.equal(buf.subarray(0, 10).toString(), '0123456789')
  t.equal((await call('getxattr', '/f', 'user.none', Buffer.alloc(16), 0))[0], FuseErrno.ENODATA)
  t.equal((await call('listxattr', '/f', Buffer.alloc(0)))[0], 15, 'size query')
  t.equal((await call('listxattr', '/f', Buffer.alloc(3)))[0], FuseErrno.ERANGE, 'too small')
  const lbuf = Buffer.alloc(15)
  t.equal((await call('listxattr', '/f', lbuf))[0], 15)
  t.equal(lbuf.toString(), 'user.a\0user.bb\0')
})

t.test('utimens decodes (sec, nsec) pairs and the UTIME_NOW / UTIME_OMIT sentinels', async t => {
  const seen: unknown[] = []
  const { call } = harness({ utimens(_p, a, m, done) { seen.push(a, m); done(0) } })
  await call('utimens', '/f', 1000000000, 123456789, -2, 999999999)
  await call('utimens', '/f', 0, (1 << 30) - 1, 0, (1 << 30) - 2)
  t.same(seen, [1000000000123456789n, -1000000001n, 'now', 'omit'])
})

t.test('setxattr drops the macOS position argument', async t => {
  const seen: unknown[] = []
  const { call } = harness({ setxattr(_p, name, value, flags, done) { seen.push(name, value.toString(), flags); done(0) } })
  t.equal((await call('setxattr', '/f', 'user.x', Buffer.from('v'), 0, 1))[0], 0)
  t.same(seen, ['user.x', 'v', 1])
})

t.test('every op gets the Caller of its own request, also after an await', async t => {
  const seen: string[] = []
  const tick = (): Promise<void> => new Promise(resolve => setTimeout(resolve, 5))
  const { callAs } = harness({
    init(done, ...rest: unknown[]) { seen.push(`init ${rest.length}`); done(0) },
    async create(p, mode, reply, caller) {
      await tick()
      seen.push(`create ${p} ${mode.toString(8)} ${caller.uid}:${caller.gid} ${caller.pid} ${caller.umask.toString(8)}`)
      reply(0, 3)
    },
    mkdir(p, _mode, done, caller) { seen.push(`mkdir ${p} ${caller.uid}`); done(0) },
    getattr(p, reply, caller) { seen.push(`getattr ${p} ${caller.uid}`); reply(0, { mode: 0o100644 }) },
    utimens(p, _a, _m, done, caller) { seen.push(`utimens ${p} ${caller.uid}`); done(0) },
  })
  const alice = { uid: 1000, gid: 1001, pid: 42, umask: 0o22 }
  const bob = { uid: 2000, gid: 2001, pid: 43, umask: 0o77 }
  // Both creates are in flight together; each op reads its caller after an await.
  const [a, b] = await Promise.all([callAs(alice, 'create', '/a', 0o644), callAs(bob, 'create', '/b', 0o600)])
  t.same([a[0], b[0]], [0, 0])
  await callAs(bob, 'mkdir', '/d', 0o755)
  await callAs(alice, 'getattr', '/a')
  await callAs(bob, 'utimens', '/a', 0, (1 << 30) - 1, 0, (1 << 30) - 1)
  await callAs(alice, 'init')
  t.same(seen.sort(), ['create /a 644 1000:1001 42 22', 'create /b 600 2000:2001 43 77', 'getattr /a 1000',
    'init 0', 'mkdir /d 2000', 'utimens /a 2000'].sort(), 'init alone gets no caller')
  seen.length = 0
  await callAs(null, 'mkdir', '/e', 0o755)
  t.same(seen, [`mkdir /e ${processCaller().uid}`], 'outside a request: the daemon process itself')
  t.same(processCaller(), { uid: process.getuid!(), gid: process.getgid!(), pid: process.pid, umask: 0 })
})

t.test('opendir gets the open flags (the C passes path, fh, flags)', async t => {
  const seen: number[] = []
  const { call } = harness({ opendir(_p, flags, reply) { seen.push(flags); reply(0, 5) } })
  t.same(await call('opendir', '/d', 0, 0o200000), [0, 5])
  t.same(seen, [0o200000])
})

t.test('listxattr replies escaped names (rev 4) as their bytes', async t => {
  const { call } = harness({ listxattr(_p, reply) { reply(0, ['user.\udcff', 'user.é']) } })
  t.equal((await call('listxattr', '/f', Buffer.alloc(0)))[0], 15, 'size: user.\\xff\\0 is 7 bytes, user.é\\0 8')
  const buf = Buffer.alloc(15)
  t.equal((await call('listxattr', '/f', buf))[0], 15)
  t.equal(buf.toString('hex'), Buffer.concat([Buffer.from('user.'), Buffer.from([0xff, 0]), Buffer.from('user.é\0')]).toString('hex'))
})
