// The harness checked against kernel overlayfs: what snapshotTree sees of a known union, that
// hashTree notices every kind of change, and that teardown and the safety nets leave nothing
// mounted even when a test throws or its process is killed.
import t from 'tap'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isWhiteout, sampleLowers, setXattr, writeTree } from './layers.js'
import { mountLayerfs, mountOverlay, subjectKind, type TeardownHost } from './mount.js'
import { run } from './run.js'
import { freshDir, isLayerfsDaemon, isMounted, mountsUnder, processesFor } from './scratch.js'
import { syscalls } from './syscalls.js'
import { hashTree, snapshotTree } from './tree.js'
import { twinMounts } from './twin.js'

t.test('snapshotTree of a kernel overlay over sampleLowers', async t => {
  const [l0, l1, upper] = [freshDir('l0'), freshDir('l1'), freshDir('upper')]
  sampleLowers([l0, l1])
  const m = await mountOverlay(t, { lowers: [l0, l1], upper })
  const snap = await snapshotTree(m.mnt)
  t.same(Object.keys(snap), [
    '.', 'bottom.txt', 'file-vs-dir', 'link0', 'merged', 'merged/a0', 'merged/a1', 'merged/sub', 'merged/sub/s0',
    'merged/sub/s1', 'only0', 'only0/x', 'only1', 'only1/deep', 'only1/deep/z', 'only1/y', 'opq', 'opq/visible',
    'shared.txt', 'top.txt',
  ], 'whiteouts hidden, opaque dir stops the merge, a file hides a dir below it')
  t.match(snap['shared.txt'], { type: 'file', mode: '644', uid: 0, gid: 0, size: 12, nlink: 1 })
  t.equal(snap['shared.txt']?.sha256, createHash('sha256').update('from lower0\n').digest('hex'), 'the top-most copy, hashed')
  t.equal(snap['link0']?.target, 'top.txt')
  t.equal(snap['file-vs-dir']?.type, 'file')
  t.notOk(snap['opq']?.xattrs, 'trusted.overlay.opaque is not visible through the mount')

  const r = await syscalls(m.mnt, [{ op: 'unlink', path: 'top.txt' }, { op: 'rmdir', path: 'top.txt' }, { op: 'mkdir', path: 'gone' }])
  t.same(r, [{ ok: true }, { errno: 'ENOENT' }, { ok: true }], 'syscalls.py reports results and errno names')
  t.ok(isWhiteout(join(upper, 'top.txt')), 'unlink left a whiteout in upper')
  const up = await snapshotTree(upper)
  t.same(up['top.txt'], { type: 'chardev', mode: '0', uid: 0, gid: 0, size: 0, nlink: up['top.txt']?.nlink, rdev: '0:0' }, 'upper snapshot shows a 0:0 device')
  t.same(up['gone']?.xattrs, { 'trusted.overlay.opaque': '79' }, 'mkdir over a whiteout is opaque (seen in upper)')
})

t.test('hashTree notices content, mode, xattr, rdev, time and inode changes', async t => {
  const d = freshDir('hash')
  writeTree(d, { f: 'x', dir: { g: 'y' }, wh: { type: 'whiteout' }, l: { type: 'symlink', target: 'f' } })
  const h0 = (await hashTree(d)).hash
  t.equal((await hashTree(d)).hash, h0, 'stable')
  await run('cat', [join(d, 'f')])
  t.equal((await hashTree(d)).hash, h0, 'reading (atime) does not count')
  const changes: Array<[string, string]> = [
    ['content', `printf z > ${d}/dir/g`],
    ['mode', `chmod 600 ${d}/f`],
    ['xattr', `setfattr -n user.k -v v ${d}/f`],
    ['trusted xattr on a dir', `setfattr -n trusted.overlay.opaque -v y ${d}/dir`],
    ['whiteout device number', `rm ${d}/wh && mknod ${d}/wh c 0 1`],
    ['mtime', `touch -d @1 ${d}/f`],
    ['inode (same content)', `cp -p ${d}/f ${d}/f2 && mv ${d}/f2 ${d}/f`],
    ['symlink target', `ln -sfn dir ${d}/l`],
  ]
  let prev = h0
  for (const [what, cmd] of changes) {
    await run('bash', ['-c', cmd])
    const h = (await hashTree(d)).hash
    t.not(h, prev, `${what} changes the hash`)
    prev = h
  }
})

t.test('snapshotTree: hard links, xattrs with odd names, ignore, errors', async t => {
  const d = freshDir('snap')
  writeTree(d, { a: 'same', 'sp ace': { 'q=1': 'v' }, dev: { type: 'chardev', dev: [1, 3] } })
  await run('ln', [join(d, 'a'), join(d, 'sp ace', 'b')])
  setXattr(join(d, 'sp ace', 'q=1'), 'user.odd name', 'v\n1')
  writeFileSync(join(d, 'nl\nname'), '')
  const s = await snapshotTree(d)
  t.equal(s['sp ace/b']?.hardlinkOf, 'a')
  t.equal(s['a']?.hardlinkOf, 'a')
  t.equal(s['a']?.nlink, 2)
  t.same(s['sp ace/q=1']?.xattrs, { 'user.odd name': Buffer.from('v\n1').toString('hex') })
  t.equal(s['dev']?.rdev, '1:3')
  t.ok(s['nl\nname'], 'a newline in a name')
  const s2 = await snapshotTree(d, { ignore: [/^sp ace$/], ignoreContent: [/^a$/] })
  t.notOk(s2['sp ace/q=1'], 'ignore drops a subtree')
  t.notOk(s2['a']?.sha256, 'ignoreContent drops the hash')
})

t.test('teardown unmounts even when the test body throws', async t => {
  const fns: Array<() => unknown> = []
  const host: TeardownHost = { teardown: fn => void fns.push(fn) }
  const l = freshDir('l')
  writeTree(l, { f: 'x' })
  let mnt = ''
  await t.rejects(
    (async () => {
      const m = await mountOverlay(host, { lowers: [l], upper: freshDir('u') })
      mnt = m.mnt
      t.ok(isMounted(mnt), 'mounted')
      throw new Error('the test failed halfway')
    })(),
    /halfway/,
  )
  for (const fn of fns) await fn()
  t.notOk(isMounted(mnt), 'the teardown unmounted it')
})

t.test('a failed kernel mount throws and leaves nothing mounted', async t => {
  const fns: Array<() => unknown> = []
  const host: TeardownHost = { teardown: fn => void fns.push(fn) }
  const mnt = freshDir('mnt')
  await t.rejects(mountOverlay(host, { lowers: [join(mnt, 'missing')], upper: freshDir('u'), mnt }), /kernel overlay mount failed/)
  for (const fn of fns) await fn()
  t.notOk(isMounted(mnt))
})

for (const kind of ['overlay', 'layerfs'] as const) t.test(`the reaper cleans up a ${kind} mount after its test process is SIGKILLed`, { skip: kind === 'layerfs' && subjectKind !== 'layerfs' && 'layerfs only' }, async t => {
  const fixture = fileURLToPath(new URL('./fixtures/orphan-mount.ts', import.meta.url))
  const child = spawn(process.execPath, [...process.execArgv, fixture, kind], { stdio: ['ignore', 'pipe', 'inherit'] })
  const line = await new Promise<string>((res, rej) => {
    let buf = ''
    child.stdout.on('data', (b: Buffer) => {
      buf += b.toString()
      if (buf.includes('\n')) res(buf.split('\n')[0]!)
    })
    child.on('exit', c => rej(new Error(`fixture exited ${c} before mounting`)))
  })
  const { mnt, root } = JSON.parse(line) as { mnt: string; root: string }
  t.ok(isMounted(mnt), `the fixture mounted ${kind}`)
  child.kill('SIGKILL')
  let waited = 0
  while ((isMounted(mnt) || existsSync(root)) && waited < 10_000) {
    await new Promise(r => setTimeout(r, 100))
    waited += 100
  }
  t.notOk(isMounted(mnt), `unmounted by the reaper (after ${waited} ms)`)
  t.notOk(existsSync(root), 'and its scratch root removed')
  t.same(mountsUnder(root), [])
  t.same(processesFor(mnt), [], 'nothing serves it any more')
})

t.test('twinMounts copies layers exactly and compares both sides', async t => {
  const tw = await twinMounts(
    t,
    d => {
      sampleLowers(d.lowers)
      writeTree(d.upper!, { 'upper-only': 'u' })
      mkdirSync(join(d.outside, 'src'))
    },
    { lowers: 2 },
  )
  await tw.same(t, 'cat shared.txt; ls; echo $MNT; ls $OUT', { code: 0 })
  await tw.sameSys(t, [{ op: 'rename', path: 'top.txt', to: 'top2.txt' }, { op: 'rmdir', path: 'merged' }], [{ ok: true }, { errno: 'ENOTEMPTY' }])
  await tw.sameTree(t, { mtime: false })
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})

t.test('teardown after the layerfs daemon died: unmounts the dead mount and says so', { skip: subjectKind !== 'layerfs' && 'layerfs only' }, async t => {
  const fns: Array<() => unknown> = []
  const host: TeardownHost = { teardown: fn => void fns.push(fn) }
  const l = freshDir('l')
  writeTree(l, { f: 'x' })
  const m = await mountLayerfs(host, { lowers: [l], upper: freshDir('u') })
  const pids = processesFor(m.mnt)
  t.ok(pids.length > 0, 'found the daemon by its command line')
  // The fusermount auto_unmount helper first (it would take the mount off), then the daemon.
  const isDaemon = isLayerfsDaemon
  for (const p of pids.filter(p => !isDaemon(p))) process.kill(p, 'SIGKILL')
  await new Promise(r => setTimeout(r, 100))
  for (const p of pids.filter(isDaemon)) process.kill(p, 'SIGKILL')
  await new Promise(r => setTimeout(r, 300))
  const r = await run('ls', [m.mnt])
  t.match(r.stderr, /Transport endpoint is not connected/, 'a dead mount')
  let error: unknown
  for (const fn of fns) await Promise.resolve(fn()).catch((e: unknown) => (error = e))
  t.match(String(error), /layerfs teardown of .*umount/s, 'the teardown reports the failed umount')
  t.notOk(isMounted(m.mnt), 'and the dead mount is gone')
  t.same(processesFor(m.mnt), [], 'no process left')
})
