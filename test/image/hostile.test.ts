// Hostile layer tarballs: each refused with one line on stderr and a non-zero exit, the target
// never created, and nothing written outside it (the whole scratch dir around it, with the
// decoy files a breakout would hit, compared before and after to the ns and inode).
import t from 'tap'
import { lstatSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getXattr, isOpaque } from '../helpers/layers.js'
import { freshDir } from '../helpers/scratch.js'
import { diffSnapshots, hashTree } from '../helpers/tree.js'
import { ImageError } from '../../src/image/image-error.js'
import { importLayer } from '../../src/image/layer-import.js'
import { cli, type MkEntry, mktar, mktars } from './lib.js'

const area = freshDir('hostile')
const outside = join(area, 'outside')
mkdirSync(outside)
writeFileSync(join(outside, 'secret'), 'secret\n')
const tars = join(area, 'tars')
mkdirSync(tars)
const targets = join(area, 'targets')
mkdirSync(targets)

interface Case {
  name: string
  entries: MkEntry[]
  truncate?: number
  /** What the one line must say. */
  error: RegExp
}

const cases: Case[] = [
  { name: 'dotdot', entries: [{ name: '../outside/evil', data: 'x' }], error: /'\.\.' component/ },
  { name: 'dotdot-inner', entries: [{ name: 'a/', type: 'dir' }, { name: 'a/../../outside/evil', data: 'x' }], error: /'\.\.' component/ },
  { name: 'dotdot-link', entries: [{ name: 'hl', type: 'link', linkname: '../outside/secret' }], error: /hard link 'hl' to '\.\.\/outside\/secret': a '\.\.' component/ },
  {
    name: 'symlink-out-abs',
    entries: [{ name: 'esc', type: 'symlink', linkname: outside }, { name: 'esc/evil', data: 'x' }],
    error: /'esc\/evil': its path goes through the symlink 'esc'/,
  },
  {
    name: 'symlink-out-rel',
    entries: [{ name: 'd/', type: 'dir' }, { name: 'd/esc', type: 'symlink', linkname: '../../outside' }, { name: 'd/esc/sub/evil', data: 'x' }],
    error: /goes through the symlink 'd\/esc'/,
  },
  {
    name: 'symlink-in-then-prefix',
    entries: [{ name: 'real/', type: 'dir' }, { name: 'alias', type: 'symlink', linkname: 'real' }, { name: 'alias/f', data: 'x' }],
    error: /goes through the symlink 'alias'/,
  },
  {
    name: 'hardlink-through-symlink',
    entries: [{ name: 'esc', type: 'symlink', linkname: outside }, { name: 'hl', type: 'link', linkname: 'esc/secret' }],
    error: /goes through the symlink 'esc'/,
  },
  {
    name: 'hardlink-abs',
    entries: [{ name: 'hl', type: 'link', linkname: join(outside, 'secret') }],
    error: /hard link to '.*secret', which is not in the layer/,
  },
  {
    name: 'whiteout-through-symlink',
    entries: [{ name: 'esc', type: 'symlink', linkname: outside }, { name: 'esc/.wh.secret' }],
    error: /goes through the symlink 'esc'/,
  },
  {
    name: 'opaque-through-symlink',
    entries: [{ name: 'esc', type: 'symlink', linkname: outside }, { name: 'esc/.wh..wh..opq' }],
    error: /goes through the symlink 'esc'/,
  },
  { name: 'wh-empty', entries: [{ name: 'd/', type: 'dir' }, { name: 'd/.wh.' }], error: /a whiteout \('\.wh\.'\) with no name after it/ },
  { name: 'wh-dotdot', entries: [{ name: '.wh...' }], error: /a whiteout of '\.\.'/ },
  { name: 'opq-root', entries: [{ name: '.wh..wh..opq' }], error: /opaque marker at the layer root/ },
  { name: 'opq-in-file', entries: [{ name: 'f', data: 'f' }, { name: 'f/.wh..wh..opq' }], error: /'f' is not a directory/ },
  { name: 'forged-whiteout', entries: [{ name: 'x', type: 'chardev', devmajor: 0, devminor: 0 }], error: /0\/0 character device/ },
  { name: 'file-as-parent', entries: [{ name: 'f', data: 'f' }, { name: 'f/x', data: 'x' }], error: /'f' is not a directory/ },
  { name: 'truncated', entries: [{ name: 'big', data: 'x'.repeat(5000) }], truncate: 2000, error: /truncated/ },
]

t.test('each refused, nothing written', async t => {
  await mktars(Object.fromEntries(cases.map(c => [join(tars, `${c.name}.tar`), { entries: c.entries, truncate: c.truncate }])))
  const before = await hashTree(area)
  // In-process for speed; the CLI's one line is checked on a few below.
  for (const c of cases) {
    const target = join(targets, c.name)
    const e = await importLayer(join(tars, `${c.name}.tar`), target).then(() => undefined, (e: unknown) => e)
    t.ok(e instanceof ImageError, `${c.name}: refused`)
    t.match((e as Error).message, /^[^\n]+$/, `${c.name}: one line`)
    t.match((e as Error).message, c.error, c.name)
    t.notOk(lstatSync(target, { throwIfNoEntry: false }), `${c.name}: the target was not created`)
    t.same(readdirSync(targets), [], `${c.name}: no stage left beside it`)
  }
  const after = await hashTree(area)
  // Each stage was made and removed beside its target: that parent's times move (as they do
  // for any import); nothing else may.
  const changes = diffSnapshots(before.snapshot, after.snapshot).filter(d => !/^targets: (mtime|ctime) /.test(d))
  t.same(changes, [], 'nothing outside changed')
})

t.test('the CLI: one line on stderr, non-zero exit', async t => {
  for (const name of ['dotdot', 'symlink-out-abs', 'wh-empty']) {
    const r = await cli(['layer', 'import', join(tars, `${name}.tar`), join(targets, name)])
    t.equal(r.code, 1, `${name}: exit 1`)
    t.match(r.stderr, new RegExp(`^layerfs: ${tars}/${name}\\.tar: entry '[^\n]+\n$`), `${name}: one line`)
    t.same(readdirSync(targets), [])
  }
})

t.test("a tarball's trusted.overlay.* xattrs cannot make the overlay's own", async t => {
  const tar = await mktar(join(tars, 'xattr.tar'), [
    { name: 'd/', type: 'dir', pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y', 'SCHILY.xattr.trusted.overlay.redirect': '/etc' } },
  ])
  const target = join(targets, 'xattr')
  await importLayer(tar, target)
  t.notOk(isOpaque(join(target, 'd')), 'not opaque')
  t.equal(getXattr(join(target, 'd'), 'trusted.overlay.redirect'), undefined, 'no redirect')
  t.equal(getXattr(join(target, 'd'), 'trusted.overlay.overlay.opaque'), 'y', "stored as the user's own, escaped")
  t.equal(getXattr(join(target, 'd'), 'trusted.overlay.overlay.redirect'), '/etc')
  rmSync(target, { recursive: true })
})

t.test('garbage is not a tar archive', async t => {
  const bad = join(tars, 'garbage.tar')
  writeFileSync(bad, Buffer.alloc(1024, 'z'))
  await t.rejects(importLayer(bad, join(targets, 'garbage')), /not a tar archive, or corrupt \(bad header checksum at byte 0\)$/)
  t.same(readdirSync(targets), [])
})

t.test('an absolute name lands inside the target, as docker and containerd put it', async t => {
  const tar = await mktar(join(tars, 'abs.tar'), [{ name: join(outside, 'evil'), data: 'x' }, { name: '/etc/hosts', data: 'h' }])
  const target = join(targets, 'abs')
  const before = await hashTree(outside)
  await importLayer(tar, target)
  t.ok(lstatSync(join(target, outside.slice(1), 'evil')).isFile())
  t.ok(lstatSync(join(target, 'etc/hosts')).isFile())
  t.equal((await hashTree(outside)).hash, before.hash)
})

t.test('a symlink pointing out is kept as data (never followed)', async t => {
  const tar = await mktar(join(tars, 'link-out.tar'), [{ name: 'esc', type: 'symlink', linkname: '../../../outside/secret' }])
  const target = join(targets, 'link-out')
  await importLayer(tar, target)
  t.ok(lstatSync(join(target, 'esc')).isSymbolicLink())
})
