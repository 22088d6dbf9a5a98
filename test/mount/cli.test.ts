// The CLI on bad input: one clear line on stderr, a non-zero exit, nothing mounted, nothing
// on disk changed. And the good paths: the mount.fuse form, `mount -t fuse.layerfs`, umount.
import fs from 'node:fs'
import t from 'tap'
import { mountLayerfs, runCli } from '../helpers/mount.js'
import { run } from '../helpers/run.js'
import { cliPath, freshDir, isLayerfsDaemon, isMounted, launcherPath, processesFor } from '../helpers/scratch.js'

/** Every path under dir with its type, size and mtime: what "nothing changed" compares. */
function listing(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = `${d}/${e.name}`
      const st = fs.lstatSync(p, { bigint: true })
      out.push(`${p} ${st.mode} ${st.size} ${st.mtimeNs}`)
      if (e.isDirectory()) walk(p)
    }
  }
  walk(dir)
  return out.sort()
}

function layout(): { root: string; l1: string; l2: string; u: string; w: string; m: string } {
  const root = freshDir('cli')
  const d = { root, l1: `${root}/l1`, l2: `${root}/l2`, u: `${root}/u`, w: `${root}/w`, m: `${root}/m` }
  for (const p of [d.l1, d.l2, d.u, d.w, d.m]) fs.mkdirSync(p)
  fs.writeFileSync(`${d.l2}/file`, 'data\n')
  fs.mkdirSync(`${d.l1}/sub`)
  return d
}

const bad: { name: string; args: (d: ReturnType<typeof layout>) => string[]; stderr: RegExp; before?: (d: ReturnType<typeof layout>) => void }[] = [
  { name: 'no lowerdir', args: d => ['mount', '-o', `upperdir=${d.u},workdir=${d.w}`, d.m], stderr: /missing option 'lowerdir'/ },
  { name: 'no -o at all', args: d => ['mount', d.m], stderr: /missing option 'lowerdir'/ },
  { name: 'a missing lowerdir', args: d => ['mount', '-o', `lowerdir=${d.l1}:${d.root}/nope,upperdir=${d.u},workdir=${d.w}`, d.m], stderr: /lowerdir '.*\/nope': no such directory/ },
  { name: 'a lowerdir that is a file', args: d => ['mount', '-o', `lowerdir=${d.l2}/file`, d.m], stderr: /is not a directory/ },
  { name: 'upperdir inside a lower', args: d => ['mount', '-o', `lowerdir=${d.l1}:${d.l2},upperdir=${d.l1}/sub,workdir=${d.w}`, d.m], stderr: /overlap/ },
  { name: 'workdir inside upper', before: d => fs.mkdirSync(`${d.u}/w`), args: d => ['mount', '-o', `lowerdir=${d.l1},upperdir=${d.u},workdir=${d.u}/w`, d.m], stderr: /overlap/ },
  { name: 'upperdir without workdir', args: d => ['mount', '-o', `lowerdir=${d.l1},upperdir=${d.u}`, d.m], stderr: /'upperdir' needs 'workdir'/ },
  { name: 'an unknown option', args: d => ['mount', '-o', `lowerdir=${d.l1},bogus=1`, d.m], stderr: /unknown option 'bogus=1'/ },
  { name: 'an unsupported overlayfs option value', args: d => ['mount', '-o', `lowerdir=${d.l1},index=on`, d.m], stderr: /index=on/ },
  { name: 'a missing mount point', args: d => ['mount', '-o', `lowerdir=${d.l1}`, `${d.root}/nomnt`], stderr: /mount point '.*nomnt': no such directory/ },
  { name: 'a mount point inside a layer', args: d => ['mount', '-o', `lowerdir=${d.l1}:${d.l2}`, `${d.l1}/sub`], stderr: /overlaps lowerdir/ },
  { name: 'an unknown command flag', args: d => ['mount', '--bogus', '-o', `lowerdir=${d.l1}`, d.m], stderr: /unknown option '--bogus'/ },
]

for (const c of bad) {
  t.test(`refused: ${c.name}`, async t => {
    const d = layout()
    c.before?.(d)
    const before = listing(d.root)
    const r = await runCli(c.args(d))
    t.not(r.code, 0, 'non-zero exit')
    const lines = r.stderr.split('\n').filter(Boolean)
    t.equal(lines.length, 1, `one line on stderr: ${JSON.stringify(r.stderr)}`)
    t.match(lines[0] ?? '', /^layerfs: /)
    t.match(r.stderr, c.stderr)
    t.equal(r.stdout, '')
    t.notOk(isMounted(d.m), 'nothing mounted')
    t.same(listing(d.root), before, 'nothing on disk changed')
  })
}

t.test('refused: a mount point that is already mounted', async t => {
  const d = layout()
  await mountLayerfs(t, { lowers: [d.l1, d.l2], upper: d.u, work: d.w, mnt: d.m })
  const d2 = layout()
  const before = listing(d2.root)
  const r = await runCli(['mount', '-o', `lowerdir=${d2.l1},upperdir=${d2.u},workdir=${d2.w}`, d.m])
  t.not(r.code, 0)
  t.match(r.stderr, /^layerfs: mount point '.*' is already mounted on\n$/)
  t.same(listing(d2.root), before, 'the second upper and workdir untouched')
  t.equal(fs.readFileSync(`${d.m}/file`, 'utf8'), 'data\n', 'the first mount still serves')
})

t.test('refused: workdir on another filesystem than upperdir', async t => {
  const d = layout()
  const other = freshDir('otherfs')
  await run('mount', ['-t', 'tmpfs', 'tmpfs', other])
  t.teardown(() => run('umount', [other]).then(() => undefined))
  const before = listing(d.root)
  const r = await runCli(['mount', '-o', `lowerdir=${d.l1},upperdir=${d.u},workdir=${other}`, d.m])
  t.not(r.code, 0)
  t.match(r.stderr, /^layerfs: workdir '.*' and upperdir '.*' must be on the same filesystem\n$/)
  t.notOk(isMounted(d.m))
  t.same(listing(d.root), before)
  t.same(fs.readdirSync(other), [], 'the other workdir untouched')
})

t.test('the mount.fuse form and umount', async t => {
  const d = layout()
  const r = await runCli(['layerfs', d.m, '-o', `rw,nosuid,nodev,lowerdir=${d.l1}:${d.l2},upperdir=${d.u},workdir=${d.w}`])
  t.equal(r.code, 0, r.stderr)
  t.teardown(() => (isMounted(d.m) ? run('fusermount', ['-uz', d.m]).then(() => undefined) : undefined))
  t.ok(isMounted(d.m), 'mounted')
  t.same(fs.readdirSync(d.m).sort(), ['file', 'sub'])
  const pids = processesFor(d.m)
  t.ok(pids.length > 0, 'a daemon serves it')
  const u = await runCli(['umount', d.m])
  t.equal(u.code, 0, u.stderr)
  t.notOk(isMounted(d.m), 'unmounted')
  t.same(processesFor(d.m), [], 'the daemon is gone when umount returns')
  const again = await runCli(['umount', d.m])
  t.not(again.code, 0)
  t.match(again.stderr, /^layerfs: '.*' is not mounted\n$/)
})

t.test('mount -t fuse.layerfs with layerfs on PATH, and umount(8) stops the daemon', async t => {
  const link = '/usr/local/bin/layerfs'
  const had = fs.existsSync(link)
  if (!had) {
    fs.symlinkSync(launcherPath, link)
    t.teardown(() => fs.rmSync(link, { force: true }))
  }
  const d = layout()
  const r = await run('mount', ['-t', 'fuse.layerfs', 'layerfs', d.m, '-o', `lowerdir=${d.l1}:${d.l2},upperdir=${d.u},workdir=${d.w}`])
  t.equal(r.code, 0, r.stderr)
  t.teardown(() => (isMounted(d.m) ? run('fusermount', ['-uz', d.m]).then(() => undefined) : undefined))
  t.equal(fs.readFileSync(`${d.m}/file`, 'utf8'), 'data\n')
  t.equal((await run('umount', [d.m])).code, 0)
  const deadline = Date.now() + 5000
  while (processesFor(d.m).length > 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 50))
  t.same(processesFor(d.m), [], 'the daemon exits once unmounted')
})

t.test('-f stays in the foreground; SIGTERM unmounts and exits 0', async t => {
  const d = layout()
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, [cliPath, 'mount', '-f', '-o', `lowerdir=${d.l1}:${d.l2},upperdir=${d.u},workdir=${d.w}`, d.m], { stdio: 'ignore' })
  t.teardown(() => {
    if (isMounted(d.m)) spawn('fusermount', ['-uz', d.m])
    child.kill('SIGKILL')
  })
  const deadline = Date.now() + 10_000
  while (!isMounted(d.m) && Date.now() < deadline) await new Promise(r => setTimeout(r, 50))
  t.ok(isMounted(d.m), 'mounted')
  const exited = new Promise<number | null>(res => child.on('exit', code => res(code)))
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'exit 0')
  t.notOk(isMounted(d.m), 'unmounted')
})

t.test('a daemon killed by SIGKILL leaves no mount behind; mounting again works', async t => {
  const d = layout()
  const r = await runCli(['mount', '-o', `lowerdir=${d.l1}:${d.l2},upperdir=${d.u},workdir=${d.w}`, d.m])
  t.equal(r.code, 0, r.stderr)
  t.teardown(() => (isMounted(d.m) ? run('fusermount', ['-uz', d.m]).then(() => undefined) : undefined))
  fs.writeFileSync(`${d.m}/kept`, 'written before the crash\n')
  // The daemon only, not the fusermount helper that watches it.
  const daemons = processesFor(d.m).filter(isLayerfsDaemon)
  t.equal(daemons.length, 1, 'one daemon')
  for (const pid of daemons) process.kill(pid, 'SIGKILL')
  const deadline = Date.now() + 5000
  while (isMounted(d.m) && Date.now() < deadline) await new Promise(res => setTimeout(res, 50))
  t.notOk(isMounted(d.m), 'the auto_unmount helper took the mount off')
  const again = await runCli(['mount', '-o', `lowerdir=${d.l1}:${d.l2},upperdir=${d.u},workdir=${d.w}`, d.m])
  t.equal(again.code, 0, again.stderr)
  t.equal(fs.readFileSync(`${d.m}/kept`, 'utf8'), 'written before the crash\n', 'the upper layer kept it')
  t.equal((await runCli(['umount', d.m])).code, 0)
})

t.test('as root: setuid files and device nodes work (no nosuid,nodev) unless asked for', async t => {
  const d = layout()
  await run('mknod', [`${d.l2}/null`, 'c', '1', '3'])
  fs.chmodSync(`${d.l2}/null`, 0o666)
  const flagsOf = (): string[] => {
    const line = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').find(l => l.split(' ')[1] === d.m)
    return (line?.split(' ')[3] ?? '').split(',')
  }
  const r = await runCli(['mount', '-o', `lowerdir=${d.l1}:${d.l2},upperdir=${d.u},workdir=${d.w}`, d.m])
  t.equal(r.code, 0, r.stderr)
  t.teardown(() => (isMounted(d.m) ? run('fusermount', ['-uz', d.m]).then(() => undefined) : undefined))
  t.notOk(flagsOf().includes('nosuid'), 'no nosuid')
  t.notOk(flagsOf().includes('nodev'), 'no nodev')
  fs.writeFileSync(`${d.m}/null`, 'into the device\n')
  t.equal(fs.readFileSync(`${d.m}/null`, 'utf8'), '', 'the device node is /dev/null')
  t.equal((await runCli(['umount', d.m])).code, 0)
  const r2 = await runCli(['mount', '-o', `nosuid,nodev,lowerdir=${d.l1}:${d.l2},upperdir=${d.u},workdir=${d.w}`, d.m])
  t.equal(r2.code, 0, r2.stderr)
  t.ok(flagsOf().includes('nosuid') && flagsOf().includes('nodev'), 'nosuid,nodev as asked')
  t.throws(() => fs.writeFileSync(`${d.m}/null`, 'x'), { code: 'EACCES' }, 'nodev refuses the device')
  t.equal((await runCli(['umount', d.m])).code, 0)
})

t.test('a dead layerfs mount (daemon gone, no helper) is cleared by the next mount', async t => {
  const d = layout()
  const r = await runCli(['mount', '-o', `lowerdir=${d.l1}:${d.l2},upperdir=${d.u},workdir=${d.w}`, d.m])
  t.equal(r.code, 0, r.stderr)
  t.teardown(() => (isMounted(d.m) ? run('fusermount', ['-uz', d.m]).then(() => undefined) : undefined))
  // Kill the helper first, then the daemon: the mount stays, dead.
  const pids = processesFor(d.m)
  const isDaemon = isLayerfsDaemon
  for (const pid of pids.filter(p => !isDaemon(p))) process.kill(pid, 'SIGKILL')
  await new Promise(res => setTimeout(res, 100))
  for (const pid of pids.filter(isDaemon)) process.kill(pid, 'SIGKILL')
  await new Promise(res => setTimeout(res, 300))
  t.ok(isMounted(d.m), 'the dead mount is still there')
  t.throws(() => fs.statSync(d.m), { code: 'ENOTCONN' })
  const again = await runCli(['mount', '-o', `lowerdir=${d.l1}:${d.l2},upperdir=${d.u},workdir=${d.w}`, d.m])
  t.equal(again.code, 0, again.stderr)
  t.equal(fs.readFileSync(`${d.m}/file`, 'utf8'), 'data\n')
  t.equal((await runCli(['umount', d.m])).code, 0)
  t.notOk(isMounted(d.m))
})
