// bin/layerfs, the command as installed: a mount without -f starts its daemon itself (one
// Node.js process) and returns when the daemon says the mount serves. Its contract is the
// CLI's: 0 only once the mount serves; otherwise one line on stderr, a non-zero exit, nothing
// mounted and nothing of ours running when it returns; the daemon's name `layerfs REALPATH`.
import fs from 'node:fs'
import t, { type Test } from 'tap'
import { run } from '../helpers/run.js'
import { daemonOf, freshDir, isMounted, launcherPath, processesFor, registerMount, unregisterMount } from '../helpers/scratch.js'

function layout(): { root: string; l: string; u: string; w: string; m: string } {
  const root = freshDir('launcher')
  const d = { root, l: `${root}/l`, u: `${root}/u`, w: `${root}/w`, m: `${root}/m` }
  for (const p of [d.l, d.u, d.w, d.m]) fs.mkdirSync(p)
  fs.writeFileSync(`${d.l}/file`, 'data\n')
  return d
}

const layers = (d: ReturnType<typeof layout>): string => `lowerdir=${d.l},upperdir=${d.u},workdir=${d.w}`

/** Registers mnt for the safety nets and takes it off at teardown (`layerfs umount`). */
function cleanUp(t: Test, mnt: string): void {
  registerMount(mnt, 'layerfs')
  t.teardown(async () => {
    if (isMounted(mnt)) await run(launcherPath, ['umount', mnt], { timeout: 15_000 })
    unregisterMount(mnt)
  })
}

/** Fails the test unless nothing is mounted at mnt and no process names it. */
function nothingLeft(t: Test, mnt: string): void {
  t.notOk(isMounted(mnt), 'nothing mounted')
  t.same(processesFor(mnt), [], 'nothing of ours running')
}

const failures: { name: string; args: (d: ReturnType<typeof layout>) => string[]; stderr: RegExp }[] = [
  // Refused by the daemon's checks, before it loads the mount code.
  { name: 'a missing lowerdir', args: d => ['-o', `lowerdir=${d.root}/nope`, d.m], stderr: /^layerfs: lowerdir '.*\/nope': no such directory\n$/ },
  { name: 'a missing mount point', args: d => ['-o', `lowerdir=${d.l}`, `${d.root}/nomnt`], stderr: /^layerfs: mount point '.*nomnt': no such directory\n$/ },
  // mount.fuse's form.
  { name: "mount.fuse's form, a bad option", args: d => ['src', d.m, '-o', `lowerdir=${d.l},bogus=1`], stderr: /^layerfs: unknown option 'bogus=1'\n$/ },
]

for (const c of failures) {
  t.test(`a failing mount (${c.name}): one line, non-zero, nothing left`, async t => {
    const d = layout()
    cleanUp(t, d.m)
    const r = await run(launcherPath, c.args(d), { timeout: 30_000 })
    t.not(r.code, 0, 'non-zero exit')
    t.match(r.stderr, c.stderr)
    t.equal(r.stderr.split('\n').filter(Boolean).length, 1, 'one line')
    t.equal(r.stdout, '')
    nothingLeft(t, d.m)
  })
}

t.test("a failure once the union's code has loaded (the workdir cannot be emptied): one line, nothing left", async t => {
  const d = layout()
  cleanUp(t, d.m)
  // W/work an immutable file: emptying the workdir fails in mount(), after the checks.
  fs.writeFileSync(`${d.w}/work`, '')
  const chattr = await run('chattr', ['+i', `${d.w}/work`])
  if (chattr.code !== 0) return t.skip(`chattr +i: ${chattr.stderr.trim()}`)
  t.teardown(() => run('chattr', ['-i', `${d.w}/work`]).then(() => undefined))
  const r = await run(launcherPath, ['-o', layers(d), d.m], { timeout: 30_000 })
  t.not(r.code, 0)
  t.match(r.stderr, /^layerfs: ENOTDIR: .*work'\n$/)
  nothingLeft(t, d.m)
})

t.test('the daemon dies before saying ready: the command says so, nothing is left', async t => {
  const d = layout()
  cleanUp(t, d.m)
  // Node.js refuses to start.
  const r = await run(launcherPath, ['-o', layers(d), d.m], { env: { NODE_OPTIONS: '--no-such-node-flag' }, timeout: 30_000 })
  t.not(r.code, 0)
  t.equal(r.stderr, 'layerfs: the daemon exited before the mount was ready\n')
  nothingLeft(t, d.m)
})

t.test('the daemon exits before saying ready: the command says so, nothing is left', async t => {
  // A mount point that is not a directory passes no check of the shell's; node refuses it.
  const d = layout()
  fs.writeFileSync(`${d.root}/f`, '')
  const r = await run(launcherPath, ['-o', `lowerdir=${d.l}`, `${d.root}/f`], { timeout: 30_000 })
  t.not(r.code, 0)
  t.match(r.stderr, /^layerfs: .*\n$/)
  nothingLeft(t, `${d.root}/f`)
})

t.test('the three forms mount, with the daemon named after the real mount point', async t => {
  for (const [form, args] of [
    ['fuse-overlayfs', (d: ReturnType<typeof layout>) => ['-o', layers(d), d.m]],
    ['mount', (d: ReturnType<typeof layout>) => ['mount', `-o${layers(d)}`, d.m]],
    ['mount.fuse', (d: ReturnType<typeof layout>) => ['my-src', d.m, '-o', 'rw,nosuid', '--options', layers(d)]],
  ] as const) {
    const d = layout()
    cleanUp(t, d.m)
    const r = await run(launcherPath, args(d), { timeout: 30_000 })
    t.equal(r.code, 0, `${form}: ${r.stderr}`)
    t.equal(fs.readFileSync(`${d.m}/file`, 'utf8'), 'data\n', `${form}: serves at once`)
    const pid = daemonOf(d.m)
    t.ok(pid, `${form}: a daemon named layerfs ${d.m}`)
    if (pid) t.equal(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0], `layerfs ${d.m}`)
    if (form === 'mount.fuse') t.match(fs.readFileSync('/proc/self/mountinfo', 'utf8'), new RegExp(` ${d.m} .* fuse\\.layerfs my-src `), 'its source')
    const u = await run(launcherPath, ['umount', d.m], { timeout: 15_000 })
    t.equal(u.code, 0, u.stderr)
    nothingLeft(t, d.m)
  }
})

t.test('a relative mount point from a deep directory: the daemon still has its whole name', async t => {
  const d = layout()
  // The name is written over the daemon's command line, so that must hold `layerfs REALPATH`.
  let deep = d.root
  for (let i = 0; i < 6; i++) fs.mkdirSync((deep = `${deep}/a-rather-long-directory-name-${i}`))
  fs.mkdirSync(`${deep}/m`)
  const mnt = `${deep}/m`
  cleanUp(t, mnt)
  const r = await run(launcherPath, ['-o', 'lowerdir=../../../../../../l', 'm'], { cwd: deep, timeout: 30_000 })
  t.equal(r.code, 0, r.stderr)
  t.ok(daemonOf(mnt), `a daemon named layerfs ${mnt}`)
  const u = await run(launcherPath, ['umount', mnt], { timeout: 15_000 })
  t.equal(u.code, 0, u.stderr)
  nothingLeft(t, mnt)
})

t.test('stdout and stderr pipes: the command returns, the daemon holds neither', async t => {
  const d = layout()
  cleanUp(t, d.m)
  // run() resolves only when both pipes have closed.
  const r = await run(launcherPath, ['-o', layers(d), d.m], { timeout: 30_000 })
  t.notOk(r.timedOut)
  t.equal(r.code, 0, r.stderr)
  t.ok(isMounted(d.m))
})

t.test('anything but a background mount is dist/cli.js itself', async t => {
  const v = await run(launcherPath, ['--version'])
  t.equal(v.code, 0)
  t.match(v.stdout, /^layerfs: version /)
  const h = await run(launcherPath, ['mount', '--help'])
  t.equal(h.code, 0)
  t.match(h.stdout, /Usage: layerfs mount/)
  const bad = await run(launcherPath, ['mount', '--bogus', '-o', 'lowerdir=/', '/nonexistent'])
  t.not(bad.code, 0)
  t.match(bad.stderr, /^layerfs: unknown option '--bogus'/)
})
