// The two kernel behaviours the differential test tolerates (lib/known.ts), pinned with
// minimized reproductions: what the kernel does, and what layerfs does instead. When the
// kernel's half changes, the rule in known.ts can go.
import t from 'tap'
import { lstatSync } from 'node:fs'
import { join } from 'node:path'
import { getXattr, setTimes, writeTree } from '../helpers/layers.js'
import { err, OK, syscalls, type Op } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

t.test('failed-dir-rename-side-effects: ENOTEMPTY onto an upper-only dir', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[0]!, { d1: { x: 'x\n' } })
    writeTree(lowers[1]!, { d1: { d2: { q: 'q\n' } } })
    setTimes(join(lowers[0]!, 'd1'), 1_000_000_000, 5) // the merged d1's times are lower0's
  }, { lowers: 2 })
  const ops: Op[] = [
    { op: 'mkdir', path: 'full' },
    { op: 'mkdir', path: 'full/x' },
    { op: 'rename', path: 'd1/d2', to: 'full' },
    { op: 'lstat', path: 'd1', fields: ['mtime_ns'] },
  ]
  const [lf, ov] = await tw.both(s => syscalls(s.mnt, ops))
  t.same(ov.slice(0, 3), [OK, OK, err('ENOTEMPTY')], 'kernel: ENOTEMPTY')
  t.same(lf.slice(0, 3), [OK, OK, err('ENOTEMPTY')], 'layerfs: ENOTEMPTY')
  const ovUp = join(tw.overlay.upper!, 'd1/d2')
  t.equal(getXattr(ovUp, 'trusted.overlay.redirect'), '/d1/d2', 'kernel: the source was copied up and given a redirect to itself anyway')
  t.not((ov[3] as { value: { mtime_ns: string } }).value.mtime_ns, '1000000000000000005', 'kernel: its parent got a new mtime')
  t.throws(() => lstatSync(join(tw.layerfs.upper!, 'd1')), 'layerfs: nothing copied up')
  t.same(lf[3], { ok: true, value: { mtime_ns: '1000000000000000005' } }, 'layerfs: the parent keeps its mtime')
  await tw.lowersUnchanged(t)
})

t.test('kernel-stale-impure-readdir-cache: link into an impure dir that was read', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[0]!, { c: 'c\n', y: 'y\n', e: {} })
  })
  const ops: Op[] = [
    { op: 'mkdir', path: 'e/f' },
    { op: 'mkdir', path: 'e/f/q' }, // upper-only
    { op: 'rename', path: 'y', to: 'e/f/q/y' }, // q is now impure
    { op: 'readdir', path: 'e/f/q', stat: true }, // read once
    { op: 'link', path: 'c', to: 'e/f/q/x' },
    { op: 'readdir', path: 'e/f/q', stat: true },
  ]
  const [lf, ov] = await tw.both(s => syscalls(s.mnt, ops))
  type Ent = { name: string; d_ino: number; ino: number }
  const x = (r: typeof lf) => (r[5] as { value: Ent[] }).value.find(e => e.name === 'x')!
  t.not(x(ov).d_ino, x(ov).ino, 'kernel: the new entry\'s d_ino is not its st_ino')
  t.equal(x(lf).d_ino, x(lf).ino, 'layerfs: d_ino == st_ino')
  await tw.sameTree(t)
  await tw.lowersUnchanged(t)
})
