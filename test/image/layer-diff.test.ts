// layerfs diff: the docker diff listing of an upper written by kernel overlayfs over two
// lowers: copy-ups (C), new names (A), whiteouts (D), an opaque dir (its lower names D), a
// renamed dir (old name D, new name and its contents A), in docker's walk order ('/a/f'
// before '/a-b', which a plain sort would swap).
import t from 'tap'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { writeTree } from '../helpers/layers.js'
import { mountOverlay } from '../helpers/mount.js'
import { shOk } from '../helpers/run.js'
import { freshDir } from '../helpers/scratch.js'
import { diffLayer } from '../../src/image/layer-diff.js'
import { type UpperFormat, cli, formatUppers } from './lib.js'

t.test('docker diff of a kernel-made upper', async t => {
  const root = freshDir('diff')
  const [l1, l2, upper] = ['l1', 'l2', 'upper'].map(n => join(root, n)) as [string, string, string]
  writeTree(l2, {
    a: { type: 'dir', mtime: 1_600_000_000, entries: { f: 'f\n' } },
    'a-b': 'ab\n',
    'a.b': 'a.b\n',
    dir: { type: 'dir', mtime: 1_600_000_000, entries: { 1: '1', 2: '2' } },
    gone: 'gone\n',
    hidden: 'whited out by l1\n',
    keep: { type: 'dir', mtime: 1_600_000_000, entries: { x: 'x' } },
    opq: { type: 'dir', mtime: 1_600_000_000, entries: { p: 'p', q: 'q' } },
    ren: { type: 'dir', mtime: 1_600_000_000, entries: { r: 'r' } },
  })
  writeTree(l1, { hidden: { type: 'whiteout' }, keep: { type: 'dir', mtime: 1_600_000_000, entries: { y: 'y' } } })
  mkdirSync(upper)
  const m = await mountOverlay(t, { lowers: [l1, l2], upper })
  await shOk(`
    set -e
    echo more >> a/f
    touch a/new
    echo more >> a-b
    rm -r dir gone
    echo new > hidden
    rm -r opq && mkdir opq && touch opq/n
    mv ren ren2
    touch newtop
  `, { cwd: m.mnt })
  await m.unmount()

  const want = [
    'C /a',
    'C /a/f',
    'A /a/new',
    'C /a-b',
    'D /dir',
    'D /gone',
    'A /hidden', // l1 whited it out: new to the lowers' view
    'A /newtop',
    'C /opq',
    'A /opq/n',
    'D /opq/p',
    'D /opq/q',
    'D /ren',
    'A /ren2',
    'A /ren2/r',
  ]
  t.same(diffLayer(upper, [l1, l2]).map(c => `${c.kind} ${c.path}`), want)
  const r = await cli(['diff', upper, '--lower', `${l1}:${l2}`])
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stdout, want.join('\n') + '\n', 'the CLI prints the same')
  const bad = await cli(['diff', upper, '--lower', join(root, 'missing')])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /^layerfs: '.*missing' is not a directory\n$/)
})

t.test('the same changes in every format of an upper: the same listing', async t => {
  const { lowers, uppers } = await formatUppers(t)
  const want = diffLayer(uppers.kernel, lowers).map(c => `${c.kind} ${c.path}`)
  t.same(want, [
    'C /bin/sh',
    'C /data',
    'D /data/keep',
    'A /data/kept',
    'C /etc',
    'C /etc/passwd',
    'A /etc/passwd2',
    'D /etc/shadow',
    'C /home',
    'C /home/u',
    'A /home/u/new',
    'D /home/u/profile',
    'D /home/u/sub',
    'A /new',
    'A /new/deep',
    'A /new/deep/f',
  ])
  for (const format of Object.keys(uppers) as UpperFormat[]) {
    t.same(diffLayer(uppers[format], lowers).map(c => `${c.kind} ${c.path}`), want, format)
  }
  const r = await cli(['diff', '--userxattr', uppers['kernel-userxattr'], '--lower', lowers.join(':')])
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stdout, want.join('\n') + '\n', 'the CLI with --userxattr')
})
