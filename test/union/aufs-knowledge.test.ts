// A miss in a layer directory is checked for an AUFS whiteout (`.wh.NAME`) with a second
// stat, unless the directory is known to hold no AUFS name (dir-fds.ts: learnt when listed or
// made by us). That knowledge must go when we write an AUFS name there ourselves: an upper
// without whiteout devices (mknod refused: rootless on older kernels, fuse-overlayfs's
// format) gets `.wh.NAME` files for removals and `.wh..wh..opq` for opaque directories.
import fs from 'node:fs'
import t from 'tap'
import * as attr from '../../src/union/attr-ops.js'
import * as dir from '../../src/union/dir-ops.js'
import { Union } from '../../src/union/union.js'
import { freshDir } from '../helpers/scratch.js'
import { isOpaque } from '../helpers/layers.js'

function fixture(): { u: Union; upper: string } {
  const root = freshDir('aufs-knowledge')
  const [lower, upper, work] = ['l', 'u', 'w'].map(n => `${root}/${n}`) as [string, string, string]
  for (const d of [lower, upper, work]) fs.mkdirSync(d)
  fs.mkdirSync(`${lower}/d`)
  for (const n of ['f', 'g', 'h']) fs.writeFileSync(`${lower}/d/${n}`, `${n}\n`)
  fs.mkdirSync(`${lower}/d/sub`)
  fs.writeFileSync(`${lower}/d/sub/inner`, 'inner\n')
  const u = new Union({ lowerdirs: [lower], upperdir: upper, workdir: work })
  u.upper!.cleanWork()
  // As a mount on an upper that refuses whiteout devices.
  u.upper!.aufsWhiteouts = true
  return { u, upper }
}

const names = (u: Union, path: string): string[] =>
  attr.readdir(u, path).names.filter(n => n !== '.' && n !== '..').sort()

t.test('an AUFS whiteout written in a directory known to hold none is seen', async t => {
  const { u, upper } = fixture()
  // The upper d comes to be (a copy-up below it), then is listed: known to hold no AUFS name.
  dir.mkdir(u, '/d/new', 0o755)
  t.same(names(u, '/d'), ['f', 'g', 'h', 'new', 'sub'])
  t.same(fs.readdirSync(`${upper}/d`).sort(), ['new'])
  await dir.unlink(u, '/d/f')
  t.ok(fs.existsSync(`${upper}/d/.wh.f`), 'the removal is an AUFS whiteout')
  u.cache.clear()
  t.equal(attr.tryGetattr(u, '/d/f'), undefined, 'a fresh lookup finds the whiteout')
  t.same(names(u, '/d'), ['g', 'h', 'new', 'sub'])
  // In a directory we made (known empty): remove a lower name through a rename onto it, then
  // look up again.
  await dir.rename(u, '/d/g', '/d/new/g')
  await dir.unlink(u, '/d/new/g')
  u.cache.clear()
  t.equal(attr.tryGetattr(u, '/d/g'), undefined)
  t.equal(attr.tryGetattr(u, '/d/new/g'), undefined)
  t.same(names(u, '/d/new'), [])
  t.same(names(u, '/d'), ['h', 'new', 'sub'])
})

t.test('an opaque directory made over a removed one, in AUFS form, hides the lower names', async t => {
  const { u, upper } = fixture()
  t.same(names(u, '/d/sub'), ['inner'])
  await dir.unlink(u, '/d/sub/inner')
  await dir.rmdir(u, '/d/sub')
  dir.mkdir(u, '/d/sub', 0o755)
  u.cache.clear()
  t.same(names(u, '/d/sub'), [], 'the new directory is empty')
  t.equal(attr.tryGetattr(u, '/d/sub/inner'), undefined)
  t.ok(isOpaque(`${upper}/d/sub`) || fs.existsSync(`${upper}/d/sub/.wh..wh..opq`), 'the new directory is opaque on disk')
})
