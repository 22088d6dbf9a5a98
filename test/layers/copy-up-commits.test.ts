// The journal of copy-up commits (src/layers/copy-up-commits.ts) on real filesystems: on ext4 an
// entry is an empty file whose xattr records the union path, and dropping the last entry takes
// the directory with it; where the workdir's filesystem takes no xattrs (ramfs) no entry can
// be made, and from then on nothing is deferred (copy-ups fsync before they answer).
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { CopyUpCommits } from '../../src/layers/copy-up-commits.js'
import { scratchFs } from '../helpers/scratch-fs.js'

const target = {
  openRead: () => { throw new Error('not reached') },
  fsyncFd: async () => {},
  fsyncNow: () => {},
  unlink: () => {},
  tryLstat: () => undefined,
}

t.test('ext4: an entry records the union path; the last one dropped takes the directory', async t => {
  const work = join(await scratchFs(t, 'ext4'), 'work')
  fs.mkdirSync(work)
  const c = new CopyUpCommits(work, 'trusted.overlay.', target)
  t.ok(c.canDefer, 'copy-ups may be deferred')
  const j = c.journal('/d/f', 12n)
  const entry = j?.entry
  t.ok(entry?.startsWith(join(work, 'incompat/layerfs-commits/')), `an entry (${entry})`)
  t.match(entry, /\/[0-9a-f]{32}\.12\.0$/, 'named by boot id, inode and sequence')
  const v = execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', 'trusted.layerfs.path', entry!], { encoding: 'utf8' })
  t.equal(v, '/d/f', 'its xattr holds the union path')
  c.drop(j!)
  t.same(fs.readdirSync(work), [], 'dropped: no entry, no journal directory, no incompat directory')
})

t.test('ramfs (no xattrs): no entry, and nothing deferred from then on', async t => {
  const work = join(await scratchFs(t, 'ramfs'), 'work')
  fs.mkdirSync(work)
  const c = new CopyUpCommits(work, 'user.overlay.', target)
  t.ok(c.canDefer, 'deferred until the journal is refused')
  t.equal(c.journal('/f', 5n), undefined, 'no entry')
  t.notOk(c.canDefer, 'copy-ups fsync before they answer')
  t.same(fs.readdirSync(work), [], 'no half-made entry, no journal directory left (the kernel would refuse the workdir)')
})
