// layer import: the three sample layers of issue 5 (GNU tar, pax) imported in the kernel's
// format; on disk (whiteouts, opaque xattr, escaped trusted.overlay.*, modes, owners, ns times,
// hard links) and merged: the kernel's overlay and layerfs over the imported dirs both show
// what the layers define (a naive rm-and-extract of the same tarballs).
import t from 'tap'
import { lchownSync, lstatSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { getXattr, isOpaque, isWhiteout, writeTree } from '../helpers/layers.js'
import { runOk } from '../helpers/run.js'
import { mountLayerfs, mountOverlay } from '../helpers/mount.js'
import { freshDir } from '../helpers/scratch.js'
import { diffSnapshots, snapshotTree, type SnapshotOptions } from '../helpers/tree.js'
import { importLayer } from '../../src/image/layer-import.js'
import { applyNaive, cli, mktar, sampleLayerTars } from './lib.js'

t.test('the three sample layers, imported, on disk and merged', async t => {
  const { tars } = await sampleLayerTars()
  const root = freshDir('imported')
  const dirs = tars.map((_, i) => join(root, `l${i}`))
  // The CLI for one (the others in-process: a node start costs seconds on a loaded machine).
  const r = await cli(['layer', 'import', tars[0], dirs[0]!])
  t.equal(r.code, 0, `import ${tars[0]}: ${r.stderr}`)
  t.equal(r.stderr + r.stdout, '', 'quiet when stderr is not a terminal')
  t.same(await importLayer(tars[1], dirs[1]!), { entries: 11, whiteouts: 3, opaques: 0, bytes: 32 })
  t.same(await importLayer(tars[2], dirs[2]!), { entries: 8, whiteouts: 0, opaques: 1, bytes: 8 })
  const [l1, l2, l3] = dirs as [string, string, string]

  t.test('on disk, in the kernel format', async t => {
    t.ok(isWhiteout(join(l2, 'data/old')), '.wh.old -> a 0/0 whiteout')
    t.ok(isWhiteout(join(l2, 'data/dir')), '.wh.dir -> a 0/0 whiteout')
    t.ok(isWhiteout(join(l2, 'lib')), '.wh.lib at the root')
    t.notOk(lstatSync(join(l2, 'data/.wh.old'), { throwIfNoEntry: false }), 'no .wh. file left')
    t.ok(isOpaque(join(l3, 'opq')), 'opq/ opaque')
    t.notOk(lstatSync(join(l3, 'opq/.wh..wh..opq'), { throwIfNoEntry: false }), 'no marker file left')
    t.equal(readFileSync(join(l3, 'opq/x'), 'utf8'), 'x\n', 'an entry written before the marker stays')
    t.equal(readFileSync(join(l3, 'opq/sub/d'), 'utf8'), 'd\n')
    t.notOk(isOpaque(join(l1, 'opq')), 'the base layer has no opaque dir')
    t.equal(getXattr(join(l1, 'etc'), 'trusted.overlay.overlay.foo'), 'users-own', "a tarball's trusted.overlay.foo is stored escaped")
    t.equal(getXattr(join(l1, 'etc'), 'trusted.overlay.foo'), undefined, 'never raw')
    t.equal(getXattr(join(l1, 'etc/passwd'), 'user.comment'), 'accounts')
    const su = lstatSync(join(l1, 'bin/su'))
    t.equal(su.mode & 0o7777, 0o4755, 'setuid kept')
    const sg = lstatSync(join(l1, 'bin/sgid'))
    t.same([sg.mode & 0o7777, sg.uid, sg.gid], [0o2711, 7, 8], 'setgid and numeric owner kept')
    t.equal(lstatSync(join(l1, 'tmp')).mode & 0o7777, 0o1777, 'sticky kept')
    t.equal(lstatSync(join(l1, 'bin/sh')).ino, lstatSync(join(l1, 'bin/bash')).ino, 'hard link: one inode')
    t.equal(lstatSync(join(l1, 'dev/null')).rdev, lstatSync('/dev/null').rdev, 'char device 1:3')
    t.ok(lstatSync(join(l1, 'dev/fifo')).isFIFO())
    t.equal(lstatSync(join(l1, 'etc/passwd'), { bigint: true }).mtimeNs, 1_600_000_000_123_456_789n, 'ns mtime from pax')
    t.equal(lstatSync(join(l1, 'etc'), { bigint: true }).mtimeNs, 1_600_000_100_000_000_000n, 'dir mtime set after its contents')
    t.equal(lstatSync(l1, { bigint: true }).mtimeNs, 1_600_000_900_000_000_000n, 'root mtime from ./')
  })

  // What the layers define: a naive application to one plain directory.
  const expected = freshDir('expected')
  for (const tar of tars) await applyNaive(tar, expected)
  const opts: SnapshotOptions = { xattrs: 'all', mtime: true }
  const want = await snapshotTree(expected, opts)

  t.test('kernel overlayfs over the imported dirs shows what the layers define', async t => {
    const m = await mountOverlay(t, { lowers: [l3, l2, l1] })
    const got = await snapshotTree(m.mnt, opts)
    t.same(diffSnapshots(got, want, ['overlay', 'layers']), [])
  })

  t.test('layerfs over the imported dirs shows the same', async t => {
    const m = await mountLayerfs(t, { lowers: [l3, l2, l1] })
    const got = await snapshotTree(m.mnt, opts)
    t.same(diffSnapshots(got, want, ['layerfs', 'layers']), [])
  })
})

t.test('gzip is detected by magic, and gives the same tree; progress reaches the total', async t => {
  const out = freshDir('gz')
  const tar = await mktar(join(out, 'l.tar'), [
    { name: 'a/', type: 'dir' },
    { name: 'a/big', data: 'x'.repeat(300_000) },
    { name: 'a/.wh.gone' },
  ])
  const gz = join(out, 'layer.bin')
  writeFileSync(gz, gzipSync(readFileSync(tar)))
  const calls: Array<[number, number]> = []
  const s1 = await importLayer(gz, join(out, 'from-gz'), { progress: (d, n) => calls.push([d, n]) })
  const s2 = await importLayer(tar, join(out, 'from-tar'))
  t.same(s1, { entries: 3, whiteouts: 1, opaques: 0, bytes: 300_000 })
  t.same(s2, s1)
  // The root has no './' entry here: its mtime is the import's.
  const snap = (d: string) => snapshotTree(d, { xattrs: 'all', mtime: true, ignoreMtime: [/^\.$/] })
  t.same(diffSnapshots(await snap(join(out, 'from-gz')), await snap(join(out, 'from-tar'))), [])
  const size = readFileSync(gz).length
  t.ok(calls.length > 0)
  t.same(calls.at(-1), [size, size], 'the last call says all of the compressed file')
  t.ok(calls.every(([d], i) => i === 0 || d >= calls[i - 1]![0]), 'monotonic')
})

t.test('a non-empty or non-directory target is refused before anything is read', async t => {
  const out = freshDir('target')
  const tar = await mktar(join(out, 'l.tar'), [{ name: 'f', data: 'f' }])
  writeFileSync(join(out, 'file'), '')
  const r1 = await cli(['layer', 'import', tar, join(out, 'file')])
  t.equal(r1.code, 1)
  t.match(r1.stderr, /^layerfs: '.*file' exists and is not a directory\n$/)
  await t.rejects(importLayer(tar, out), /^'.*' is not empty$/)
  await t.rejects(importLayer(join(out, 'missing.tar'), join(out, 'new')), /^cannot open '.*missing.tar': ENOENT$/)
  await t.rejects(importLayer(tar, join(out, 'no/such/dir')), /^'.*no\/such' is not a directory$/)
  t.notOk(lstatSync(join(out, 'new'), { throwIfNoEntry: false }))
})

t.test('later entries replace earlier ones; a dir over a dir merges; a whiteout hides only the layers below', async t => {
  const out = freshDir('replace')
  const tar = await mktar(join(out, 'l.tar'), [
    { name: 'x', data: 'first' },
    { name: 'x', type: 'symlink', linkname: 'target' },
    { name: 'd/', type: 'dir', mode: 0o700 },
    { name: 'd/in', data: 'in' },
    { name: 'd/', type: 'dir', mode: 0o711 },
    { name: 'w', data: 'w' },
    { name: '.wh.w' },
    { name: 'u/', type: 'dir' },
    { name: 'u/in', data: 'u' },
    { name: '.wh.u' },
    { name: '.wh.v' },
    { name: 'v/', type: 'dir' },
    { name: '.wh.p' },
    { name: 'p/in', data: 'p' },
  ])
  const dir = join(out, 'l')
  await importLayer(tar, dir)
  t.ok(lstatSync(join(dir, 'x')).isSymbolicLink())
  t.equal(lstatSync(join(dir, 'd')).mode & 0o7777, 0o711)
  t.equal(readFileSync(join(dir, 'd/in'), 'utf8'), 'in')
  // OCI image-spec (layer.md): whiteouts apply to the layers below only; an entry of the same
  // layer can be hidden only by a later layer.
  t.equal(readFileSync(join(dir, 'w'), 'utf8'), 'w', "the layer's own file stays")
  t.ok(isOpaque(join(dir, 'u')), "the layer's own dir stays, and no longer merges with the one below")
  t.equal(readFileSync(join(dir, 'u/in'), 'utf8'), 'u')
  t.ok(isOpaque(join(dir, 'v')), 'a dir made after the whiteout of its name: opaque')
  t.ok(isOpaque(join(dir, 'p')), 'so is a parent made implicitly over a whiteout')
  t.equal(readFileSync(join(dir, 'p/in'), 'utf8'), 'p')
})

t.test('GNU format: long names and link targets (L/K records), big ids (base-256)', async t => {
  const src = freshDir('gnu-src')
  const long = 'd'.repeat(90) + '/' + 'f'.repeat(90)
  writeTree(src, { ['d'.repeat(90)]: { ['f'.repeat(90)]: 'long\n', ['l'.repeat(120)]: { type: 'symlink', target: 't'.repeat(150) } } })
  lchownSync(join(src, long), 3_000_000, 2)
  const tar = join(freshDir('gnu'), 'gnu.tar')
  await runOk('tar', ['--format=gnu', '--numeric-owner', '-C', src, '-cf', tar, '.'])
  const dir = join(freshDir('gnu-out'), 'l')
  await importLayer(tar, dir)
  t.equal(readFileSync(join(dir, long), 'utf8'), 'long\n')
  t.equal(lstatSync(join(dir, long)).uid, 3_000_000)
  t.equal(readlinkSync(join(dir, 'd'.repeat(90), 'l'.repeat(120))), 't'.repeat(150))
})

t.test('on a terminal, a progress bar on stderr, erased at the end', async t => {
  const out = freshDir('tty')
  const tar = await mktar(join(out, 'l.tar'), [{ name: 'f', data: 'x'.repeat(2_000_000) }])
  const cliPath = join(import.meta.dirname, '../../dist/cli.js')
  // script(1) gives the CLI a pseudo-terminal.
  const r = await runOk('script', ['-qec', `${process.execPath} ${cliPath} layer import ${tar} ${join(out, 'l')}`, '/dev/null'])
  t.match(r.stdout, /\rimporting .*l\.tar \[#+ *\] [\d.]+\/1\.9 MiB/, 'the bar')
  t.match(r.stdout, /\[#{10,}\] 1\.9\/1\.9 MiB\r\x1b\[K$/, 'full, then erased')
  t.equal(readFileSync(join(out, 'l/f'), 'utf8').length, 2_000_000)
})
