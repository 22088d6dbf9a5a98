// Attributes are right immediately after a change made through another name or another
// object: the other name of a hard link, the parent directory of a new entry. (Caches in a
// FUSE filesystem make this a story of its own; the kernel is always right at once.)
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { OK, val } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

t.test('hard links: both names agree at once', async t => {
  const tw = await twinMounts(t, d => writeTree(d.lowers[0]!, { a: 'lower a\n', new: {} }))
  const nlink = (path: string) => ({ op: 'lstat', path, fields: ['nlink', 'size', 'mode'] })
  await tw.sameSys(t, [
    nlink('a'),
    { op: 'link', path: 'a', to: 'b' },          // a lower file: copy-up, then link
    nlink('a'), nlink('b'),
    { op: 'writefile', path: 'b', data: 'written through b, longer\n', flags: 'O_WRONLY|O_TRUNC' },
    nlink('a'),
    { op: 'chmod', path: 'b', mode: 0o600 },
    nlink('a'),
    { op: 'unlink', path: 'b' },
    nlink('a'),
    { op: 'writefile', path: 'new/c', data: 'c' }, // an upper file
    { op: 'link', path: 'new/c', to: 'new/d' },
    nlink('new/c'),
    { op: 'link', path: 'new/d', to: 'e' },
    nlink('new/c'), nlink('new/d'), nlink('e'),
  ], [
    val({ nlink: 1, size: 8, mode: '0o644' }), OK,
    val({ nlink: 2, size: 8, mode: '0o644' }), val({ nlink: 2, size: 8, mode: '0o644' }),
    OK, val({ nlink: 2, size: 26, mode: '0o644' }),
    OK, val({ nlink: 2, size: 26, mode: '0o600' }),
    OK, val({ nlink: 1, size: 26, mode: '0o600' }),
    OK, OK, val({ nlink: 2, size: 1, mode: '0o644' }),
    OK, val({ nlink: 3, size: 1, mode: '0o644' }), val({ nlink: 3, size: 1, mode: '0o644' }), val({ nlink: 3, size: 1, mode: '0o644' }),
  ])
  await tw.sameTree(t)
})

t.test('a directory\'s mtime moves at once when an entry is made or removed in it', async t => {
  const tw = await twinMounts(t, d => writeTree(d.lowers[0]!, { dir: { type: 'dir', mtime: 1_000_000_000, entries: { old: 'o\n' } } }))
  const [lf, ov] = await tw.sys([
    { op: 'stat', path: 'dir', fields: ['mtime_ns'] },
    { op: 'writefile', path: 'dir/new', data: 'n' },
    { op: 'stat', path: 'dir', fields: ['mtime_ns'] },
    { op: 'utime', path: 'dir', atime_ns: '2000000000000000000', mtime_ns: '2000000000000000000' },
    { op: 'stat', path: 'dir', fields: ['mtime_ns'] },
    { op: 'unlink', path: 'dir/old' },
    { op: 'stat', path: 'dir', fields: ['mtime_ns'] },
  ])
  const mtimes = (r: typeof lf) => [r[0], r[2], r[4], r[6]].map(x => BigInt((x as { value: { mtime_ns: string } }).value.mtime_ns))
  for (const [role, r] of [['kernel', ov], ['layerfs', lf]] as const) {
    const [m0, m1, m2, m3] = mtimes(r)
    t.equal(m0, 1_000_000_000_000_000_000n, `${role}: the lower dir's mtime`)
    t.ok(m1! > m0!, `${role}: creating an entry moves it at once`, { m0, m1 })
    t.equal(m2, 2_000_000_000_000_000_000n, `${role}: utimes sets it`)
    t.ok(m3! > 1_700_000_000_000_000_000n && m3! < m2!, `${role}: removing an entry moves it to now at once`, { m2, m3 })
  }
})
