// Regression guard (copy-up cost, native-notes/copy-up.md): the upper layer remembers which
// directories carry the impure mark, so that a copy-up into one does not read the xattr again.
// That knowledge belongs to the directory, not to its path: once the directory is renamed
// away and another one takes its path, a copy-up there must mark the newcomer impure (the
// kernel marks the parent of every copy-up that records an origin, and readdir of an
// unmarked directory on the kernel gives d_ino != st_ino). Also: the copy-up's own entry,
// made without a lookup, gives the same st_ino as a lookup after a fresh start.
import fs from 'node:fs'
import t from 'tap'
import * as attr from '../../src/union/attr-ops.js'
import * as dir from '../../src/union/dir-ops.js'
import * as file from '../../src/union/file-ops.js'
import { Union } from '../../src/union/union.js'
import { getXattr } from '../helpers/layers.js'
import { freshDir } from '../helpers/scratch.js'

function fixture(): { u: Union; lower: string; upper: string; work: string } {
  const root = freshDir('impure-known-after-rename')
  const [lower, upper, work] = ['l', 'u', 'w'].map(n => `${root}/${n}`) as [string, string, string]
  for (const d of [lower, upper, work]) fs.mkdirSync(d)
  for (const d of ['a', 'b']) fs.mkdirSync(`${lower}/${d}`)
  fs.writeFileSync(`${lower}/a/f`, 'f\n')
  fs.writeFileSync(`${lower}/b/g`, 'g\n')
  const u = new Union({ lowerdirs: [lower], upperdir: upper, workdir: work })
  u.upper!.cleanWork()
  return { u, lower, upper, work }
}

t.test('a directory that takes the path of an impure one is marked at its first copy-up', async t => {
  const { u, lower, upper, work } = fixture()
  file.release(u, await file.open(u, '/a/f', fs.constants.O_RDWR))
  t.equal(getXattr(`${upper}/a`, 'trusted.overlay.impure'), 'y', 'a is impure after the copy-up of a/f')
  await dir.rename(u, '/a', '/c')
  await dir.rename(u, '/b', '/a')
  t.equal(getXattr(`${upper}/a`, 'trusted.overlay.impure'), undefined, 'the directory now at a (was b) is not marked yet')
  file.release(u, await file.open(u, '/a/g', fs.constants.O_RDWR))
  t.equal(getXattr(`${upper}/a`, 'trusted.overlay.impure'), 'y', 'the copy-up of a/g marks it')
  t.equal(getXattr(`${upper}/c`, 'trusted.overlay.impure'), 'y', 'the moved directory keeps its mark')

  // The entry a copy-up leaves behind (made without a lookup) and a fresh lookup agree.
  const ino = fs.lstatSync(`${lower}/b/g`).ino
  t.equal(attr.tryGetattr(u, '/a/g')?.ino, BigInt(ino), 'st_ino is the lower inode, from the copy-up\'s entry')
  const again = new Union({ lowerdirs: [lower], upperdir: upper, workdir: work })
  t.equal(attr.tryGetattr(again, '/a/g')?.ino, BigInt(ino), 'and from a fresh lookup')
  t.equal(fs.readFileSync(`${upper}/a/g`, 'utf8'), 'g\n', 'the data came along')
})
