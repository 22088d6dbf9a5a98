// Copy-up commits (src/layers/copy-up-commits.ts): a copy-up answers before its fsync, which a
// journal entry in the workdir (W/work/incompat/layerfs-commits) stands for until it is done;
// while the journal is there kernel overlayfs refuses the workdir, as after a volatile mount. On ext4 (on
// tmpfs nothing is fsync'd, nothing deferred). LAYERFS_COMMIT_HOLD=1 keeps commits from
// starting until something waits for them, so that each test sees what waits:
// - fsync(2) of the file, unlink of it, a rename (of anything), a link, and the end of the mount;
// - after a SIGKILL the next mount fsyncs the file (same boot: the data is in the page cache);
//   file shows again, on layerfs and on the kernel's overlayfs, the parent's times as before.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { mountLayerfs, mountOverlay } from '../helpers/mount.js'
import { run, sh } from '../helpers/run.js'
import { scratchFs } from '../helpers/scratch-fs.js'
import { daemonOf, isMounted } from '../helpers/scratch.js'

const HOLD = { LAYERFS_COMMIT_HOLD: '1' }
const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

interface Dirs {
  L: string
  U: string
  W: string
  mnt: string
}

async function layers(t: Test): Promise<Dirs> {
  const root = await scratchFs(t, 'ext4')
  const d = { L: join(root, 'lower'), U: join(root, 'upper'), W: join(root, 'work'), mnt: join(root, 'mnt') }
  for (const p of Object.values(d)) fs.mkdirSync(p)
  fs.mkdirSync(join(d.L, 'dir'))
  fs.writeFileSync(join(d.L, 'dir', 'a'), 'lower a\n')
  fs.writeFileSync(join(d.L, 'dir', 'b'), Buffer.alloc(3 << 20, 'b'))
  fs.writeFileSync(join(d.L, 'c'), 'lower c\n')
  fs.writeFileSync(join(d.L, 'e'), 'lower e\n')
  return d
}

const mount = (t: Test, d: Dirs, env: Record<string, string> = HOLD) => mountLayerfs(t, { lowers: [d.L], upper: d.U, work: d.W, mnt: d.mnt, env })

/** The journal: the union path each entry records (its xattr; the entry is empty). */
function journal(d: Dirs): string[] {
  const dir = join(d.W, 'work/incompat/layerfs-commits')
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir)
    .map(name => execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', 'trusted.layerfs.path', join(dir, name)], { encoding: 'utf8' }))
    .sort()
}

t.test('a copy-up answers before its fsync; each thing that must wait for it does', async t => {
  const d = await layers(t)
  const m = await mount(t, d)
  const w = await sh('echo more >> dir/a && echo more >> dir/b && echo more >> c', { cwd: d.mnt })
  t.equal(w.code, 0, `written (${w.stderr})`)
  t.same(journal(d), ['/c', '/dir/a', '/dir/b'], 'three commits pending, each in the journal')
  t.equal(fs.readFileSync(join(d.U, 'c'), 'utf8'), 'lower c\nmore\n', 'the copy is in place meanwhile')

  const f = await run('python3', ['-c', 'import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY); os.fsync(fd)', join(d.mnt, 'c')])
  t.equal(f.code, 0, `fsync(2) (${f.stderr})`)
  t.same(journal(d), ['/dir/a', '/dir/b'], 'fsync(2) of a file waits for its commit')

  const u = await sh('rm dir/a', { cwd: d.mnt })
  t.equal(u.code, 0, `unlink (${u.stderr})`)
  t.same(journal(d), ['/dir/b'], 'unlink waits for the commit of its name')

  const r = await sh('mv dir dir2', { cwd: d.mnt })
  t.equal(r.code, 0, `rename (${r.stderr})`)
  t.same(journal(d), [], 'a rename waits for every commit')

  const l = await sh('touch dir2/new && ln dir2/new c2 && echo y >> e', { cwd: d.mnt })
  t.equal(l.code, 0, `a link, and another copy-up (${l.stderr})`)
  t.same(journal(d), ['/e'], 'a copy-up made while nothing holds is deferred again')

  await m.unmount()
  t.same(fs.readdirSync(join(d.W, 'work')), [], 'the end of the mount waits for every commit; the journal is gone')
  t.equal(fs.readFileSync(join(d.U, 'e'), 'utf8'), 'lower e\ny\n', 'the data is in the upper')
  t.equal(fs.readFileSync(join(d.U, 'dir2', 'b'), 'utf8').length, (3 << 20) + 'more\n'.length, 'and the big file\'s')
})

t.test('more commits pending than keep their copy-up\'s descriptor: each one still done', async t => {
  // A pending commit keeps the copy-up's descriptor of its file for the fsync, up to 64 of
  // them (copy-up-commits.ts KEPT_FDS); the rest find their file again by path.
  const d = await layers(t)
  fs.mkdirSync(join(d.L, 'many'))
  for (let i = 0; i < 100; i++) fs.writeFileSync(join(d.L, 'many', `f${i}`), `lower ${i}\n`)
  const m = await mount(t, d)
  const pid = daemonOf(d.mnt)!
  const fds = (): number => fs.readdirSync(`/proc/${pid}/fd`).length
  const before = fds()
  const w = await sh('for i in $(seq 0 99); do echo more >> many/f$i; done', { cwd: d.mnt })
  t.equal(w.code, 0, `written (${w.stderr})`)
  t.equal(journal(d).length, 100, 'a hundred commits pending')
  t.ok(fds() - before <= 64 + 4, `the daemon holds at most 64 descriptors more for them (${fds() - before})`)
  // One of the last (found by path) and one of the first (its descriptor kept) on demand.
  const f = await run('python3', ['-c', 'import os,sys\nfor p in sys.argv[1:]: os.fsync(os.open(p, os.O_RDONLY))', join(d.mnt, 'many/f99'), join(d.mnt, 'many/f0')])
  t.equal(f.code, 0, `fsync(2) (${f.stderr})`)
  t.notOk(journal(d).includes('/many/f99') || journal(d).includes('/many/f0'), 'their commits are done')
  await m.unmount()
  t.same(fs.readdirSync(join(d.W, 'work')), [], 'the end of the mount waits for every commit; the journal is gone')
  const wrong = Array.from({ length: 100 }, (_, i) => i).filter(i => fs.readFileSync(join(d.U, 'many', `f${i}`), 'utf8') !== `lower ${i}\nmore\n`)
  t.same(wrong, [], 'every copy is in the upper with its data')
})

t.test('without a hold, commits run by themselves', async t => {
  const d = await layers(t)
  const m = await mount(t, d, {})
  const w = await sh('for f in dir/a dir/b c; do echo more >> $f; done', { cwd: d.mnt })
  t.equal(w.code, 0, `written (${w.stderr})`)
  // The directory goes a second after the last commit.
  for (let i = 0; i < 100 && fs.readdirSync(join(d.W, 'work')).length > 0; i++) await sleep(50)
  t.same(fs.readdirSync(join(d.W, 'work')), [], 'the journal empties and goes while mounted')
  await m.unmount()
})

t.test('after a SIGKILL, the next mount makes the copies durable and keeps them', async t => {
  const d = await layers(t)
  await mount(t, d)
  const w = await sh('echo more >> dir/a && echo more >> c', { cwd: d.mnt })
  t.equal(w.code, 0, `written (${w.stderr})`)
  t.same(journal(d), ['/c', '/dir/a'], 'two commits pending')
  const pid = daemonOf(d.mnt)
  t.ok(pid, 'the daemon')
  process.kill(pid!, 'SIGKILL')
  for (let i = 0; i < 100 && isMounted(d.mnt); i++) await sleep(50)
  t.same(journal(d), ['/c', '/dir/a'], 'the journal outlives the daemon')
  await t.rejects(mountOverlay(t, { lowers: [d.L], upper: d.U, work: d.W }), 'kernel overlayfs refuses the workdir until a layerfs mount has recovered it')
  const m = await mount(t, d, {})
  t.same(fs.readdirSync(join(d.W, 'work')), [], 'the next mount finished the commits; the journal is gone')
  const r = await sh('cat c dir/a', { cwd: d.mnt })
  t.same([r.code, r.stdout], [0, 'lower c\nmore\nlower a\nmore\n'], 'the writes are kept')
  await m.unmount()
})

t.test('after a crash of the host, the next mount takes back the copies never fsync\'d', async t => {
  const d = await layers(t)
  await mount(t, d)
  const w = await sh('echo more >> c && echo more >> dir/a', { cwd: d.mnt })
  t.equal(w.code, 0, `written (${w.stderr})`)
  const upperTimes = [fs.statSync(d.U).mtimeMs, fs.statSync(join(d.U, 'dir')).mtimeMs]
  const pid = daemonOf(d.mnt)
  process.kill(pid!, 'SIGKILL')
  for (let i = 0; i < 100 && isMounted(d.mnt); i++) await sleep(50)
  // What a reboot would leave: entries of another boot.
  const dir = join(d.W, 'work/incompat/layerfs-commits')
  for (const name of fs.readdirSync(dir)) fs.renameSync(join(dir, name), join(dir, '0'.repeat(32) + name.slice(name.indexOf('.'))))
  const m = await mount(t, d, {})
  t.same(fs.readdirSync(join(d.W, 'work')), [], 'the journal is gone')
  t.notOk(fs.existsSync(join(d.U, 'c')), 'the copy of c is taken away')
  t.notOk(fs.existsSync(join(d.U, 'dir', 'a')), 'the copy of dir/a is taken away')
  t.same([fs.statSync(d.U).mtimeMs, fs.statSync(join(d.U, 'dir')).mtimeMs], upperTimes, 'the parents keep their times')
  const r = await sh('cat c dir/a', { cwd: d.mnt })
  t.same([r.code, r.stdout], [0, 'lower c\nlower a\n'], 'layerfs shows the lower files again')
  await m.unmount()
  const k = await mountOverlay(t, { lowers: [d.L], upper: d.U, work: d.W })
  const kr = await sh('cat c dir/a', { cwd: k.mnt })
  t.same([kr.code, kr.stdout], [0, 'lower c\nlower a\n'], 'so does the kernel\'s overlayfs')
  await k.unmount()
})
