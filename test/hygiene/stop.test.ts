// Stopping the daemon every way a user or the system does (SIGTERM, SIGINT, umount(8),
// fusermount -u, `layerfs umount`, SIGKILL) leaves no process (daemon nor auto_unmount helper),
// no mount, no temporary file (the workdir's work dir empty, nothing in the daemon's TMPDIR),
// keeps what was written; after SIGKILL the mount point takes the next `layerfs mount` at once.
import fs from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { mountLayerfs, runCli } from '../helpers/mount.js'
import { run, sh } from '../helpers/run.js'
import { daemonOf, freshDir, isMounted, processesFor } from '../helpers/scratch.js'

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

function daemonPid(mnt: string): number {
  const pid = daemonOf(mnt)
  if (pid === undefined) throw new Error(`no daemon for ${mnt}`)
  return pid
}

const ways: [string, (mnt: string, pid: number) => Promise<unknown>][] = [
  ['SIGTERM', async (_mnt, pid) => process.kill(pid, 'SIGTERM')],
  ['SIGINT', async (_mnt, pid) => process.kill(pid, 'SIGINT')],
  ['umount(8)', mnt => run('umount', [mnt])],
  ['fusermount -u', mnt => run('fusermount', ['-u', mnt])],
  ['layerfs umount', mnt => runCli(['umount', mnt])],
  ['SIGKILL', async (_mnt, pid) => process.kill(pid, 'SIGKILL')],
]

t.test('every way of stopping the daemon leaves nothing behind', async t => {
  // The daemon's temporary files, if it ever made any, would land here.
  const tmpdir = freshDir('daemon-tmp')
  const oldTmp = process.env.TMPDIR
  process.env.TMPDIR = tmpdir
  t.teardown(() => {
    if (oldTmp === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = oldTmp
  })
  for (const [way, stop] of ways) {
    const root = freshDir('stop')
    const [L, U, W, mnt] = ['lower', 'upper', 'work', 'mnt'].map(d => join(root, d)) as [string, string, string, string]
    for (const d of [L, U, W, mnt]) fs.mkdirSync(d)
    fs.writeFileSync(join(L, 'lowerfile'), 'lower\n')
    const m = await mountLayerfs(t, { lowers: [L], upper: U, work: W, mnt })
    const pid = daemonPid(mnt)
    const pids = processesFor(mnt)
    const w = await sh('echo data > new && sync new && echo more >> lowerfile && cat lowerfile >/dev/null && ls >/dev/null', { cwd: mnt })
    t.equal(w.code, 0, `${way}: writes before stopping ${w.stderr}`)
    await stop(mnt, pid)
    let left = processesFor(mnt)
    for (let i = 0; i < 100 && (left.length || isMounted(mnt)); i++) {
      await sleep(100)
      left = processesFor(mnt)
    }
    t.same(left, [], `${way}: no process left (was ${pids.join(', ')})`)
    t.notOk(isMounted(mnt), `${way}: not mounted`)
    // A SIGKILL within a second of the copy-up of lowerfile leaves the journal of copy-up
    // commits (src/layers/copy-up-commits.ts) for the next mount, which takes it away (below).
    const journal = way === 'SIGKILL' ? ['incompat'] : []
    t.same(fs.readdirSync(join(W, 'work')).filter(n => !journal.includes(n)), [], `${way}: workdir/work empty`)
    t.same(fs.readdirSync(W), ['work'], `${way}: nothing else in the workdir`)
    t.same(fs.readdirSync(tmpdir), [], `${way}: nothing in the daemon's TMPDIR`)
    t.same([fs.readFileSync(join(U, 'new'), 'utf8'), fs.readFileSync(join(U, 'lowerfile'), 'utf8')], ['data\n', 'lower\nmore\n'], `${way}: the upper holds what was written`)
    t.equal(fs.readFileSync(join(L, 'lowerfile'), 'utf8'), 'lower\n', `${way}: lower untouched`)
    await m.unmount()
    // After the hardest stop, the next mount takes the mount point at once and shows the same.
    if (way !== 'SIGKILL') continue
    const again = await mountLayerfs(t, { lowers: [L], upper: U, work: W, mnt })
    const r = await sh('cat new lowerfile', { cwd: mnt })
    t.same([r.code, r.stdout], [0, 'data\nlower\nmore\n'], `${way}: mounted again, same content`)
    await again.unmount()
    t.same([fs.readdirSync(W), fs.readdirSync(join(W, 'work'))], [['work'], []], `${way}: after the next mount, nothing else in the workdir`)
  }
})
