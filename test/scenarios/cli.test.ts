// The CLI contract as a user meets it: `layerfs mount` returns once the mount is live and
// leaves a daemon (named by the mount point) that exits when the mount goes; bad input gives
// one line on stderr, a non-zero exit and nothing mounted; `$(layerfs mount ...)` does not hang
// on a daemon holding the caller's pipes. Layerfs only (the kernel has no CLI to compare).
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { mountLayerfs, runCli, subjectKind } from '../helpers/mount.js'
import { run } from '../helpers/run.js'
import { cliPath, freshDir, isMounted, mountType, processesFor, registerMount, unregisterMount, forceUnmountSync } from '../helpers/scratch.js'

if (subjectKind !== 'layerfs') {
  t.pass('LAYERFS_TEST_TARGETS=overlay: the CLI contract is layerfs-only')
} else {
  const layers = () => {
    const root = freshDir('cli')
    const d = { lower: join(root, 'lower'), upper: join(root, 'upper'), work: join(root, 'work'), mnt: join(root, 'mnt'), root }
    for (const p of [d.lower, d.upper, d.work, d.mnt]) mkdirSync(p)
    writeFileSync(join(d.lower, 'f'), 'f\n')
    return d
  }

  t.test('mount returns with the mount live; the daemon names the mount point and exits on umount', async t => {
    const d = layers()
    const m = await mountLayerfs(t, { lowers: [d.lower], upper: d.upper, work: d.work, mnt: d.mnt })
    t.equal(mountType(m.mnt), 'fuse.layerfs', '/proc/mounts says fuse.layerfs')
    t.ok(processesFor(m.mnt).length >= 1, 'a daemon with the mount point on its command line')
    const r = await run('cat', [join(m.mnt, 'f')])
    t.equal(r.stdout, 'f\n', 'the mount serves the lower file')
    const u = await runCli(['umount', m.mnt])
    t.equal(u.code, 0, '`layerfs umount` exits 0', { stderr: u.stderr })
    t.notOk(isMounted(m.mnt), 'no longer mounted')
    t.same(processesFor(m.mnt), [], 'the daemon is gone when umount returns')
  })

  t.test('a read-only union mounts without upperdir and workdir', async t => {
    const d = layers()
    const m = await mountLayerfs(t, { lowers: [d.lower], mnt: d.mnt })
    const r = await run('sh', ['-c', `cat f && touch g`], { cwd: m.mnt })
    t.equal(r.stdout, 'f\n')
    t.match(r.stderr, /Read-only file system/)
  })

  t.test('$(layerfs mount ...) returns: the daemon does not keep the caller\'s stdout open', async t => {
    const d = layers()
    registerMount(d.mnt, 'layerfs')
    t.teardown(async () => {
      if (isMounted(d.mnt)) await runCli(['umount', d.mnt])
      forceUnmountSync(d.mnt, 'layerfs')
      unregisterMount(d.mnt)
    })
    const r = await run('bash', ['-c', `out=$(node ${cliPath} mount -o lowerdir=${d.lower},upperdir=${d.upper},workdir=${d.work} ${d.mnt} 2>&1); echo "code=$? out=[$out]"`], { timeout: 20_000 })
    t.notOk(r.timedOut, 'the command substitution finished (within 20 s)')
    t.match(r.stdout, /^code=0 out=\[\]$/m, 'exit 0, nothing printed')
    t.ok(isMounted(d.mnt), 'and the mount is live')
  })

  const BAD: Array<[string, (d: ReturnType<typeof layers>) => string[]]> = [
    ['no lowerdir', d => ['mount', '-o', `upperdir=${d.upper},workdir=${d.work}`, d.mnt]],
    ['a lowerdir that does not exist', d => ['mount', '-o', `lowerdir=${d.root}/nope`, d.mnt]],
    ['upperdir without workdir', d => ['mount', '-o', `lowerdir=${d.lower},upperdir=${d.upper}`, d.mnt]],
    ['workdir without upperdir', d => ['mount', '-o', `lowerdir=${d.lower},workdir=${d.work}`, d.mnt]],
    ['a mount point that does not exist', d => ['mount', '-o', `lowerdir=${d.lower}`, `${d.root}/no-mnt`]],
    ['an upperdir that is a file', d => ['mount', '-o', `lowerdir=${d.lower},upperdir=${d.lower}/f,workdir=${d.work}`, d.mnt]],
    ['workdir inside upperdir', d => ['mount', '-o', `lowerdir=${d.lower},upperdir=${d.upper},workdir=${d.upper}/w`, d.mnt]],
    ['an unknown option', d => ['mount', '-o', `lowerdir=${d.lower},no_such_option=1`, d.mnt]],
    ['no mount point', d => ['mount', '-o', `lowerdir=${d.lower}`]],
  ]
  for (const [what, args] of BAD) {
    t.test(`bad input: ${what}`, async t => {
      const d = layers()
      if (what === 'workdir inside upperdir') mkdirSync(join(d.upper, 'w'))
      registerMount(d.mnt, 'layerfs')
      t.teardown(() => {
        forceUnmountSync(d.mnt, 'layerfs')
        unregisterMount(d.mnt)
      })
      const r = await runCli(args(d), { timeout: 15_000 })
      t.not(r.code, 0, 'non-zero exit')
      t.equal(r.stderr.trim().split('\n').length, 1, 'one line on stderr', { stderr: r.stderr })
      t.ok(r.stderr.trim().length > 0, 'that says something', { stderr: r.stderr })
      t.notOk(isMounted(d.mnt), 'nothing mounted')
      await new Promise(res => setTimeout(res, 300))
      t.same(processesFor(d.mnt), [], 'no daemon left')
    })
  }

  t.test('umount of something that is not a layerfs mount fails with one line', async t => {
    const d = layers()
    const r = await runCli(['umount', d.mnt])
    t.not(r.code, 0)
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line on stderr', { stderr: r.stderr })
  })
}
