// Regression (found by reading the crash/soak paths of scripts/stress): a copy-up in flight
// renamed its temp over whatever its path held when it finished. When the directory is
// renamed away and back meanwhile, with the name deleted (a whiteout) or copied up anew on the
// way, the stale lower copy replaced it: a deleted file came back, or a newer write was lost.
// libfuse 2's path locks keep a rename of the directory out while an open below it copies up,
// so through the mount this cannot happen today; a lowlevel (inode) binding has no such locks.
// Hence the union core here, on real layers, without FUSE: the copy-up is a sparse file copied
// chunk by chunk off the event loop, so the other operations run while it is in flight.
import fs from 'node:fs'
import t from 'tap'
import * as attr from '../../src/union/attr-ops.js'
import * as dir from '../../src/union/dir-ops.js'
import * as file from '../../src/union/file-ops.js'
import { Union } from '../../src/union/union.js'
import { isWhiteout } from '../helpers/layers.js'
import { freshDir } from '../helpers/scratch.js'

function fixture(): { u: Union; upper: string; work: string } {
  const root = freshDir('copy-up-overtaken')
  const [lower, upper, work] = ['l', 'u', 'w'].map(n => `${root}/${n}`) as [string, string, string]
  for (const d of [lower, upper, work]) fs.mkdirSync(d)
  fs.mkdirSync(`${lower}/d`)
  fs.writeFileSync(`${lower}/d/other`, 'other\n')
  // 32 MiB of data then a hole: copied in 1 MiB chunks, each an await.
  const fd = fs.openSync(`${lower}/d/big`, 'w')
  const chunk = Buffer.alloc(1 << 20, 7)
  for (let i = 0; i < 32; i++) fs.writeSync(fd, chunk)
  fs.ftruncateSync(fd, 64 << 20)
  fs.closeSync(fd)
  const u = new Union({ lowerdirs: [lower], upperdir: upper, workdir: work })
  u.upper!.cleanWork()
  return { u, upper, work }
}

t.test('a name deleted while its copy-up was in flight stays deleted', async t => {
  const { u, upper, work } = fixture()
  const opening = file.open(u, '/d/big', fs.constants.O_RDWR)
  const outcome = opening.then(() => 'opened', (e: { code?: string }) => e.code)
  t.ok(u.copyUps.has('/d/big'), 'the copy-up is in flight')
  await dir.rename(u, '/d', '/e')
  await dir.unlink(u, '/e/big')
  await dir.rename(u, '/e', '/d')
  t.ok(u.copyUps.has('/d/big'), 'still in flight after the rename, unlink and rename back')
  t.equal(await outcome, 'ENOENT', 'the open finds the name gone')
  t.equal(u.tryResolve('/d/big'), undefined, 'd/big stays deleted')
  t.ok(isWhiteout(`${upper}/d/big`), 'the upper keeps the whiteout')
  t.same(attr.readdir(u, '/d').names.filter(n => n !== '.' && n !== '..'), ['other'])
  t.same(fs.readdirSync(`${work}/work`), [], 'the temp copy is gone from the workdir')
})

t.test('a newer copy made while a copy-up was in flight is not replaced', async t => {
  const { u, upper, work } = fixture()
  const first = file.open(u, '/d/big', fs.constants.O_RDWR).then(id => file.release(u, id), () => {})
  t.ok(u.copyUps.has('/d/big'), 'the copy-up is in flight')
  await dir.rename(u, '/d', '/e')
  // The same lower file along its new path: made at once here (O_TRUNC copies no data).
  const id = await file.open(u, '/e/big', fs.constants.O_RDWR | fs.constants.O_TRUNC)
  t.equal(file.write(u, id, Buffer.from('newer'), 5, 0), 5)
  file.release(u, id)
  await dir.rename(u, '/e', '/d')
  t.ok(u.copyUps.has('/d/big'), 'the first copy-up is still in flight')
  await first
  t.equal(fs.readFileSync(`${upper}/d/big`, 'utf8'), 'newer', 'the newer copy stays')
  t.same(fs.readdirSync(`${work}/work`), [], 'the stale copy is gone from the workdir')
})
