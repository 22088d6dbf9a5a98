// layerfs as containers/storage runs its mount_program (the way it runs fuse-overlayfs):
// `PROGRAM -o lowerdir=l/A:l/B,upperdir=U,workdir=W,,volatile MOUNTPOINT`, cwd the storage
// home, the lowers symbolic links l/SHORTID -> ../ID/diff. Also what podman and mount(8) ask
// of a mount program besides: --version, the process found by its name, the source shown,
// remount.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import t, { type Test } from 'tap'
import { runCli } from '../helpers/mount.js'
import { run, sh } from '../helpers/run.js'
import { cliPath, daemonOf, launcherPath, freshDir, isMounted, processesFor, registerMount, unregisterMount } from '../helpers/scratch.js'

/** A containers/storage-like home: overlay/<id>/diff layers, overlay/l/<short> links to them. */
function storage(): { home: string; lowers: string; upper: string; work: string; mnt: string } {
  const home = freshDir('storage')
  for (const id of ['aaa', 'bbb', 'ccc']) fs.mkdirSync(`${home}/${id}/diff`, { recursive: true })
  fs.mkdirSync(`${home}/l`)
  fs.symlinkSync('../aaa/diff', `${home}/l/SHORTA`)
  fs.symlinkSync('../bbb/diff', `${home}/l/SHORTB`)
  fs.mkdirSync(`${home}/aaa/diff/etc/dir`, { recursive: true })
  fs.writeFileSync(`${home}/aaa/diff/etc/hosts`, 'hosts\n')
  fs.writeFileSync(`${home}/aaa/diff/etc/dir/a`, 'a\n')
  fs.mkdirSync(`${home}/bbb/diff/etc`, { recursive: true })
  fs.writeFileSync(`${home}/bbb/diff/etc/passwd`, 'root\n')
  fs.mkdirSync(`${home}/ccc/merged`)
  fs.mkdirSync(`${home}/ccc/work`)
  return { home, lowers: 'l/SHORTB:l/SHORTA', upper: `${home}/ccc/diff`, work: `${home}/ccc/work`, mnt: `${home}/ccc/merged` }
}

/** Runs the command as installed with cwd `cwd` (containers/storage runs its mount program in its home). */
function cliIn(cwd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(launcherPath, args, { cwd, timeout: 30_000 })
}

async function takeDown(mnt: string): Promise<void> {
  if (isMounted(mnt)) await run('fusermount', ['-uz', mnt])
  const deadline = Date.now() + 5000
  while (processesFor(mnt).length > 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 50))
  unregisterMount(mnt)
}

t.test("the mount_program form: symlinked lowers, ',,volatile', copy-ups into them", async t => {
  const s = storage()
  registerMount(s.mnt, 'layerfs')
  t.teardown(() => takeDown(s.mnt))
  const r = await cliIn(s.home, ['-o', `lowerdir=${s.lowers},upperdir=${s.upper},workdir=${s.work},,volatile`, s.mnt])
  t.equal(r.code, 0, r.stderr)
  t.same(fs.readdirSync(`${s.mnt}/etc`).sort(), ['dir', 'hosts', 'passwd'])
  // Every copy-up from a symlinked lower: creating beside, appending, linking, renaming.
  const w = await sh('ln -s hosts etc/hosts.link && touch etc/dir/a && echo more >> etc/hosts && ln etc/passwd etc/passwd.hard && mv etc/dir etc/dir2 && mkdir etc/new && cat etc/hosts etc/dir2/a', { cwd: s.mnt })
  t.same([w.code, w.stderr, w.stdout], [0, '', 'hosts\nmore\na\n'])
  t.equal(fs.readFileSync(`${s.home}/aaa/diff/etc/hosts`, 'utf8'), 'hosts\n', 'the lower is untouched')
  t.equal(fs.readFileSync(`${s.upper}/etc/hosts`, 'utf8'), 'hosts\nmore\n', 'the upper has the copy')
  t.ok(fs.existsSync(`${s.work}/work/incompat/volatile`), 'volatile: the workdir carries the kernel\'s mark')
  await takeDown(s.mnt)
  // As with the kernel: the marked workdir is refused until its mark is removed.
  const again = await cliIn(s.home, ['-o', `lowerdir=${s.lowers},upperdir=${s.upper},workdir=${s.work}`, s.mnt])
  t.not(again.code, 0)
  t.match(again.stderr, /^layerfs: workdir '.*' was used by a volatile mount: remove '.*work\/incompat\/volatile' to mount it again\n$/)
  t.notOk(isMounted(s.mnt), 'nothing mounted')
  fs.rmSync(`${s.work}/work/incompat`, { recursive: true })
  registerMount(s.mnt, 'layerfs')
  // Several -o, and -f: the daemon stays in the foreground.
  const child = spawn(process.execPath, [cliPath, '-f', '-o', `lowerdir=${s.lowers}`, '-o', `upperdir=${s.upper},workdir=${s.work}`, s.mnt], { cwd: s.home, stdio: 'ignore' })
  t.teardown(() => child.kill('SIGKILL'))
  const deadline = Date.now() + 10_000
  while (!isMounted(s.mnt) && Date.now() < deadline) await new Promise(r => setTimeout(r, 50))
  t.equal(fs.readFileSync(`${s.mnt}/etc/hosts`, 'utf8'), 'hosts\nmore\n', 'mounted again: the same view')
  t.ok(fs.existsSync(`${s.mnt}/etc/dir2/a`) && !fs.existsSync(`${s.mnt}/etc/dir`), 'the renamed directory kept its redirect')
  const exited = new Promise(res => child.on('exit', res))
  child.kill('SIGTERM')
  t.equal(await exited, 0, '-f: SIGTERM unmounts and exits 0')
  t.notOk(isMounted(s.mnt))
})

t.test('the daemon is found by its name: layerfs and its mount point', async t => {
  const s = storage()
  registerMount(s.mnt, 'layerfs')
  t.teardown(() => takeDown(s.mnt))
  t.equal((await cliIn(s.home, ['-o', `lowerdir=${s.lowers},upperdir=${s.upper},workdir=${s.work}`, s.mnt])).code, 0)
  const pid = daemonOf(s.mnt)
  t.ok(pid, 'a daemon')
  t.equal(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, ''), `layerfs ${s.mnt}`, 'its command line')
  t.match(fs.readFileSync(`/proc/${pid}/comm`, 'utf8'), /^layerfs/, 'its comm (what ps and pgrep show)')
  const pg = await run('pgrep', ['-f', `^layerfs ${s.mnt}$`])
  t.equal(pg.stdout.trim(), String(pid), 'pgrep -f finds it')
  t.equal((await runCli(['umount', s.mnt])).code, 0, 'layerfs umount finds it too')
  // fusermount's auto_unmount helper ends once it sees the daemon's end: a moment later.
  for (let i = 0; i < 40 && processesFor(s.mnt).length > 0; i++) await new Promise(r => setTimeout(r, 50))
  t.same(processesFor(s.mnt), [], 'nothing left')
})

t.test('--version answers as a mount program does', async t => {
  const r = await runCli(['--version'])
  t.equal(r.code, 0)
  t.match(r.stdout, /^layerfs: version \d+\.\d+\.\d+\n/)
  t.equal(r.stderr, '')
})

t.test('refused in the mount_program form too: one line, nothing mounted', async t => {
  const s = storage()
  for (const [opt, msg] of [['xattr_permissions=2', /'xattr_permissions=2' is not supported/], ['plugins=/x.so', /unknown option 'plugins=\/x.so'/], ['uidmapping=0:1', /LAYER:MOUNT:COUNT/]] as const) {
    const r = await cliIn(s.home, ['-o', `lowerdir=${s.lowers},upperdir=${s.upper},workdir=${s.work},${opt}`, s.mnt])
    t.not(r.code, 0, opt)
    t.match(r.stderr, new RegExp(`^layerfs: .*${msg.source}.*\\n$`), opt)
    t.notOk(isMounted(s.mnt))
  }
  t.same(fs.readdirSync(s.upper), [], 'the upper untouched')
  t.same(fs.readdirSync(s.work), [], 'the workdir untouched')
})

/**
 * How mount(8) reaches layerfs: mount.fuse runs `layerfs SOURCE MOUNTPOINT -o OPTS` from a PATH
 * of its own (/usr/local/bin among it). Where that `layerfs` is this checkout's (or can be made
 * so: CI), through mount(8); where another checkout's is installed, the same command mount.fuse
 * would run, run directly.
 */
async function viaMount(t: Test, args: { source?: string; mnt: string; options: string; current?: string[] }): Promise<{ code: number | null; stderr: string }> {
  const link = '/usr/local/bin/layerfs'
  if (!fs.existsSync(link)) {
    fs.symlinkSync(launcherPath, link)
    t.teardown(() => fs.rmSync(link, { force: true }))
  }
  if (fs.realpathSync(link) === fs.realpathSync(launcherPath)) {
    const typed = args.source === undefined ? [] : ['-t', 'fuse.layerfs', args.source]
    return run('mount', [...typed, args.mnt, '-o', args.options])
  }
  // Without mount(8) (another layerfs is installed as `layerfs`): what mount(8) would hand
  // mount.fuse for `mount MNT -o OPTIONS` (no type and source: the mount's current flags first).
  const options = args.current ? [...args.current, args.options].join(',') : args.options
  return runCli([args.source ?? 'layerfs', args.mnt, '-o', options])
}

t.test("mount.fuse's SOURCE is the mount's source; remount ro and rw through mount(8)", async t => {
  const s = storage()
  registerMount(s.mnt, 'layerfs')
  t.teardown(() => takeDown(s.mnt))
  const r = await viaMount(t, { source: 'my-source', mnt: s.mnt, options: `lowerdir=${s.home}/l/SHORTA,upperdir=${s.upper},workdir=${s.work}` })
  t.equal(r.code, 0, r.stderr)
  const entry = (): string[] => fs.readFileSync('/proc/mounts', 'utf8').split('\n').find(l => l.split(' ')[1] === s.mnt)?.split(' ') ?? []
  t.equal(entry()[0], 'my-source', '/proc/mounts shows the source given')
  t.equal(entry()[2], 'fuse.layerfs')
  const ro = await viaMount(t, { source: 'my-source', mnt: s.mnt, options: 'remount,ro' })
  t.equal(ro.code, 0, ro.stderr)
  t.ok(entry()[3]?.split(',').includes('ro'), 'read-only now')
  const w = await sh('echo x > new', { cwd: s.mnt })
  t.match(w.stderr, /Read-only file system/)
  const rw = await viaMount(t, { source: 'my-source', mnt: s.mnt, options: 'remount,rw' })
  t.equal(rw.code, 0, rw.stderr)
  t.ok(entry()[3]?.split(',').includes('rw'), 'read-write again')
  t.equal((await sh('echo x > new && cat new', { cwd: s.mnt })).stdout, 'x\n')
  t.ok(daemonOf(s.mnt) !== undefined, 'the same daemon serves on')
  t.equal((await run('umount', [s.mnt])).code, 0)

  // Flags given at mount are kept (fusermount takes only some: the rest are put on after), and
  // a remount gives what the kernel's overlayfs gets from the same mount(8) command line:
  // ro, nosuid, nodev, noexec as named (the current ones merged in by mount(8) unless it is
  // given the type and source), the atime flags kept unless one is named.
  const m2 = await viaMount(t, { source: 'my-source', mnt: s.mnt, options: `lowerdir=${s.home}/l/SHORTA,upperdir=${s.upper},workdir=${s.work},nosuid,noexec,noatime` })
  t.equal(m2.code, 0, m2.stderr)
  const flagsOf = (mnt: string): string[] => fs.readFileSync('/proc/mounts', 'utf8').split('\n').find(l => l.split(' ')[1] === mnt)?.split(' ')[3]?.split(',') ?? []
  const vfs = (mnt: string): string[] => flagsOf(mnt).filter(f => /^(ro|rw|nosuid|nodev|noexec|noatime|relatime|strictatime|nodiratime)$/.test(f))
  t.same(vfs(s.mnt), ['rw', 'nosuid', 'noexec', 'noatime'], 'mounted rw,nosuid,noexec,noatime')
  const ovl = `${s.home}/ovl`
  for (const d of ['u', 'w', 'm']) fs.mkdirSync(`${ovl}/${d}`, { recursive: true })
  registerMount(`${ovl}/m`, 'overlay')
  t.teardown(async () => {
    if (isMounted(`${ovl}/m`)) await run('umount', [`${ovl}/m`])
    unregisterMount(`${ovl}/m`)
  })
  const k = await run('mount', ['-t', 'overlay', 'x', '-o', `lowerdir=${s.home}/aaa/diff,upperdir=${ovl}/u,workdir=${ovl}/w,nosuid,noexec,noatime`, `${ovl}/m`])
  t.equal(k.code, 0, k.stderr)
  t.same(vfs(`${ovl}/m`), vfs(s.mnt), 'the kernel mounted the same flags')
  const steps: { typed: boolean; options: string }[] = [
    { typed: true, options: 'remount,ro' }, // nosuid, noexec go; noatime stays
    { typed: true, options: 'remount,rw,nosuid,noexec' },
    { typed: false, options: 'remount,ro' }, // mount(8) merges the current flags: nosuid, noexec stay
    { typed: true, options: 'remount,rw,strictatime,nodev' },
    // Options other than the flags are ignored on a remount, known or not, as by the kernel's
    // overlayfs (the old mount API).
    { typed: true, options: 'remount,noexec,lowerdir=/nowhere,frobnicate' },
  ]
  for (const step of steps) {
    const label = `${step.typed ? 'mount -t TYPE SOURCE MNT' : 'mount MNT'} -o ${step.options}`
    const kernel = await run('mount', [...(step.typed ? ['-t', 'overlay', 'x'] : []), `${ovl}/m`, '-o', step.options])
    t.equal(kernel.code, 0, `kernel: ${label}: ${kernel.stderr}`)
    const ours = step.typed ? await viaMount(t, { source: 'my-source', mnt: s.mnt, options: step.options })
      : await viaMount(t, { mnt: s.mnt, options: step.options, current: flagsOf(s.mnt) })
    t.equal(ours.code, 0, `layerfs: ${label}: ${ours.stderr}`)
    t.same(vfs(s.mnt), vfs(`${ovl}/m`), `${label}: the kernel's flags (${vfs(`${ovl}/m`).join(',')})`)
  }
  t.equal((await run('umount', [`${ovl}/m`])).code, 0)
  const bad = await runCli(['my-source', `${s.home}/aaa`, '-o', 'remount,ro'])
  t.match(bad.stderr, /^layerfs: '.*aaa' is not mounted\n$/, 'remount of what is not mounted: one line')
  t.equal((await run('umount', [s.mnt])).code, 0)
})
