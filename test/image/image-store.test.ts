// The image store: an OCI layout and a docker save tarball of one image import to the same
// layers, each stored once by digest; a digest mismatch is refused with nothing stored; the
// image mounted as a container shows what kernel overlayfs shows over the same layers; a
// moved root keeps working.
import t from 'tap'
import { cpSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { mountOverlay } from '../helpers/mount.js'
import { freshDir } from '../helpers/scratch.js'
import { diffSnapshots, snapshotTree } from '../helpers/tree.js'
import { runCli } from '../helpers/mount.js'
import { buildTestImage, cliOk, mountImage } from './test-images.js'

const img = await buildTestImage('testimg')

/** Every file and directory under the root's layers (to show that nothing was stored twice). */
function countUnder(dir: string): number {
  let n = 0
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      n++
      if (e.isDirectory()) walk(join(d, e.name))
    }
  }
  walk(dir)
  return n
}

const layerDirs = (root: string): string[] => readdirSync(join(root, 'layers')).sort()

t.test('OCI layout and docker save of one image: layers stored once, by diff_id', async t => {
  const root = freshDir('root')
  const out1 = await cliOk(['image', 'import', img.oci], root)
  t.match(out1, /testimg:v1: 3 layers, 3 new/)
  t.same(layerDirs(root), img.diffIds.map(d => d.slice(7)).sort(), 'one directory per layer, named by diff_id')
  const files = countUnder(join(root, 'layers'))
  const out2 = await cliOk(['image', 'import', img.dockerSave], root)
  t.match(out2, /testimg-save:1: 3 layers, 0 new/)
  t.equal(countUnder(join(root, 'layers')), files, 'the second import stored no file')
  t.same(layerDirs(root), img.diffIds.map(d => d.slice(7)).sort())
  const ls = await cliOk(['image', 'ls'], root)
  const id = img.configDigest.slice(7, 19)
  t.match(ls, new RegExp(`testimg:v1\\s+${id}\\s+3`))
  t.match(ls, new RegExp(`testimg-save:1\\s+${id}\\s+3`))
  // Importing again changes nothing either.
  t.match(await cliOk(['image', 'import', img.oci], root), /3 layers, 0 new/)
  t.equal(countUnder(join(root, 'layers')), files)
})

t.test('a digest mismatch is refused and nothing is stored', async t => {
  // OCI: one byte of layer 3's blob changed.
  const bad = join(freshDir('bad-oci'), 'bad')
  cpSync(img.oci, bad, { recursive: true })
  const index = JSON.parse(readFileSync(join(bad, 'index.json'), 'utf8'))
  const manifest = JSON.parse(readFileSync(join(bad, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'))
  const blob = join(bad, 'blobs/sha256', manifest.layers[2].digest.slice(7))
  const bytes = readFileSync(blob)
  bytes[600] = bytes[600]! ^ 1
  writeFileSync(blob, bytes)
  const root = freshDir('root-bad')
  const r = await runCli(['image', 'import', bad, '--root', root])
  t.not(r.code, 0)
  t.match(r.stderr, /^layerfs: layer sha256:[0-9a-f]{64}: digest mismatch/)
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
  t.same(readdirSync(join(root, 'layers')), [], 'no layer stored')
  t.same(readdirSync(join(root, 'images')), [], 'no image stored')

  // docker save: a layer tar that is not the config's diff_id.
  const save = freshDir('bad-save')
  await cliOk(['image', 'import', img.dockerSave], root).then(() => {})
  const before = countUnder(join(root, 'layers'))
  const dir = freshDir('bad-save-dir')
  const { shOk } = await import('../helpers/run.js')
  await shOk(`tar -xf '${img.dockerSave}' -C '${dir}'`)
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))
  const cfgPath = join(dir, m[0].Config)
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'))
  cfg.rootfs.diff_ids[0] = 'sha256:' + '0'.repeat(64)
  // The config is named by its digest too: rename it so only the diff_id check can catch this.
  const { createHash } = await import('node:crypto')
  const cfgText = JSON.stringify(cfg)
  const hex = createHash('sha256').update(cfgText).digest('hex')
  writeFileSync(join(dir, `${hex}.json`), cfgText)
  m[0].Config = `${hex}.json`
  m[0].RepoTags = ['tampered:1']
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m))
  await shOk(`tar -cf '${save}/bad.tar' -C '${dir}' .`)
  const r2 = await runCli(['image', 'import', `${save}/bad.tar`, '--root', root])
  t.not(r2.code, 0)
  t.match(r2.stderr, /^layerfs: layer sha256:0{64}: diff_id mismatch/)
  t.equal(countUnder(join(root, 'layers')), before, 'nothing added')
  t.notMatch(await cliOk(['image', 'ls'], root), /tampered/)
})

t.test('a hostile docker save archive is refused', async t => {
  const dir = freshDir('hostile')
  const { shOk } = await import('../helpers/run.js')
  await shOk(`mkdir -p a && echo x > a/f && tar -cf evil.tar --transform 's,^a/f,../escaped,' a/f`, { cwd: dir })
  const root = freshDir('root-hostile')
  const r = await runCli(['image', 'import', join(dir, 'evil.tar'), '--root', root])
  t.not(r.code, 0)
  t.match(r.stderr, /refusing member '\.\.\/escaped'/)
  t.same(readdirSync(dir).sort(), ['a', 'evil.tar'], 'nothing written beside the archive')
})

t.test('an image mounted as a container shows what kernel overlayfs shows over its layers', async t => {
  const root = freshDir('root-mount')
  await cliOk(['image', 'import', img.oci], root)
  const mnt = await mountImage(t, root, 'testimg:v1', 'c1')
  const lowers = [...img.diffIds].reverse().map(d => join(root, 'layers', d.slice(7), 'diff'))
  const kernel = await mountOverlay(t, { lowers })
  const opts = { mtime: true }
  const [ours, theirs] = await Promise.all([snapshotTree(mnt, opts), snapshotTree(kernel.mnt, opts)])
  // The root is the container's own upper directory here, the top layer's root there.
  delete ours['.']
  delete theirs['.']
  t.same(diffSnapshots(ours, theirs, ['layerfs', 'kernel']), [], 'same merged tree')
  t.same(ours, theirs)
  // What the layers define, stated independently of both.
  t.notOk(ours['etc/remove-me'], 'deleted by layer 2')
  t.notOk(ours['data/old'], 'directory deleted by layer 2')
  t.equal(readFileSync(join(mnt, 'etc/config'), 'utf8'), 'config v2\n', 'changed by layer 2')
  t.same(readdirSync(join(mnt, 'opq')).sort(), ['c'], 'opaque in layer 3')
  t.equal(ours['bin/tool']!.mode, '4755')
  t.equal(ours['bin/tool']!.nlink, 2, 'hard link kept')
  t.equal(ours['bin/config-link']!.target, '../etc/config')
  t.equal(ours['usr/share/doc/big.bin']!.size, 200000)
  t.equal(ours['etc/keep']!.xattrs?.['user.image'], Buffer.from('base').toString('hex'), 'xattr kept')
})

t.test('a moved root keeps working: images, layers and containers', async t => {
  const root = freshDir('root-old')
  await cliOk(['image', 'import', img.dockerSave], root)
  const mnt = await mountImage(t, root, 'testimg-save:1', 'keeper')
  writeFileSync(join(mnt, 'etc/config'), 'mine\n')
  const r = await runCli(['umount', mnt])
  t.equal(r.code, 0, r.stderr)
  const moved = join(freshDir('root-new'), 'store')
  renameSync(root, moved)
  const mnt2 = await mountImage(t, moved, 'testimg-save:1', 'keeper')
  t.equal(readFileSync(join(mnt2, 'etc/config'), 'utf8'), 'mine\n', "the container's writes are there")
  t.equal(readFileSync(join(mnt2, 'opq/c'), 'utf8'), 'c\n')
  t.match(await cliOk(['ps'], moved), /keeper\s+testimg-save:1/)
  // LAYERFS_ROOT does what --root does.
  const env = await runCli(['image', 'ls'], { env: { LAYERFS_ROOT: moved } })
  t.match(env.stdout, /testimg-save:1/)
})

t.test('progress: a bar on a terminal, nothing otherwise', async t => {
  const { cliPath } = await import('../helpers/scratch.js')
  const { run } = await import('../helpers/run.js')
  const quiet = await runCli(['image', 'import', img.dockerSave, '--root', freshDir('root-quiet')])
  t.equal(quiet.code, 0)
  t.equal(quiet.stderr, '', 'nothing on stderr when it is not a terminal')
  // script(1) gives the command a pseudo-terminal.
  const root = freshDir('root-tty')
  const r = await run('script', ['-qec', `${process.execPath} ${cliPath} image import ${img.oci} --root ${root}`, '/dev/null'], { timeout: 60_000 })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /verifying [0-9a-f]{12} \[#+/, 'the verification bar')
  t.match(r.stdout, /layer 3\/3 [0-9a-f]{12} \[#+/, 'a bar per layer')
  t.match(r.stdout, /testimg:v1: 3 layers, 3 new/)
})

