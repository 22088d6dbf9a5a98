// Regression: `layerfs layer export` and `layerfs diff` read every upper as trusted.overlay.*
// and as if it held no AUFS names. An upper in the kernel's userxattr format (a rootless
// mount's) lost its opaque directories (no `.wh..wh..opq`: deleted lower content came back)
// and its user.overlay.* records went into the tarball as the user's xattrs; an upper in the
// AUFS format (an upper on overlayfs) had its `.wh.NAME` files exported as plain files and a
// second `.wh..wh..opq` for each opaque directory. Now the same changes in any format give
// the same bytes, and the same listing.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimes, setXattr, writeTree, type TreeSpec } from '../helpers/layers.js'
import { freshDir } from '../helpers/scratch.js'
import { exportLayer } from '../../src/image/layer-export.js'
import { diffLayer } from '../../src/image/layer-diff.js'
import { runOk } from '../helpers/run.js'

const T = 1_700_000_000
type Format = 'trusted' | 'userxattr' | 'aufs'

/** One upper: `gone` deleted, `d` made opaque with a new file, `kept` with the user's xattrs. */
function upper(root: string, format: Format): string {
  const dir = join(root, format)
  const [ns, esc] = format === 'userxattr' ? ['user.overlay.', 'trusted.overlay.'] : ['trusted.overlay.', 'user.overlay.']
  const spec: TreeSpec = {
    a: { type: 'file', content: 'a\n', mtime: T },
    d: {
      type: 'dir', mtime: T, xattrs: format === 'aufs' ? {} : { [ns + 'opaque']: 'y' },
      entries: { new: { type: 'file', content: 'new\n', mtime: T }, ...(format === 'aufs' ? { '.wh..wh..opq': '' } : {}) },
    },
    // The user's own user.overlay.mine and trusted.overlay.bar: the one in the format's
    // namespace stored escaped, the other as it is.
    kept: { type: 'file', content: 'k\n', mtime: T, xattrs: { [ns + 'overlay.' + (ns === 'user.overlay.' ? 'mine' : 'bar')]: 'v', [esc + (esc === 'user.overlay.' ? 'mine' : 'bar')]: 'v', [ns + 'origin']: 'junk' } },
    z: { type: 'file', content: 'z\n', mtime: T },
    ...(format === 'aufs' ? { '.wh.gone': '' } : { gone: { type: 'whiteout' } }),
  }
  writeTree(dir, spec)
  setXattr(dir, ns + 'impure', 'y')
  setTimes(join(dir, 'd'), T)
  setTimes(dir, T)
  return dir
}

t.test('an upper in the userxattr or the AUFS format exports and diffs as in the trusted format', async t => {
  const root = freshDir('upper-format')
  const lower = join(root, 'lower')
  writeTree(lower, { a: 'a\n', gone: 'gone\n', d: { old: 'old\n' }, kept: 'k\n', z: 'z\n' })
  const tars: Record<Format, Buffer> = {} as never
  const diffs: Record<Format, string[]> = {} as never
  for (const format of ['trusted', 'userxattr', 'aufs'] as const) {
    const u = upper(root, format)
    const tar = join(root, `${format}.tar`)
    await exportLayer(u, tar, { lowers: [lower] })
    tars[format] = readFileSync(tar)
    diffs[format] = diffLayer(u, [lower]).map(c => `${c.kind} ${c.path}`)
  }
  const list = (await runOk('tar', ['-tf', join(root, 'trusted.tar')])).stdout
  t.equal(list, ['./', 'a', 'd/', 'd/.wh..wh..opq', 'd/new', '.wh.gone', 'kept', 'z', ''].join('\n'))
  const xattrs = (await runOk('tar', ['--xattrs', "--xattrs-include=*", '-tvvf', join(root, 'trusted.tar')])).stdout
  t.notMatch(xattrs, /origin|impure|opaque/, 'no overlay records')
  t.ok(tars.userxattr.equals(tars.trusted), 'userxattr: the same bytes')
  t.ok(tars.aufs.equals(tars.trusted), 'AUFS: the same bytes')
  t.same(diffs.trusted, ['C /a', 'C /d', 'A /d/new', 'D /d/old', 'D /gone', 'C /kept', 'C /z'])
  t.same(diffs.userxattr, diffs.trusted, 'userxattr: the same listing')
  t.same(diffs.aufs, diffs.trusted, 'AUFS: the same listing')
})
