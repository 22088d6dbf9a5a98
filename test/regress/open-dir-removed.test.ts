// Regression: a directory open in a process (or its cwd), then removed by rmdir. On kernel
// overlayfs the fd still reaches it: fstat gives its attributes (st_nlink 0 for an upper-only
// one, 1 for a merged one, the lower's own for a lower-only one), fchmod, fchown, futimens and
// xattrs change an upper one (a lower-only one has nothing left to copy up to: ENOTDIR, its
// name is a whiteout), a listing is empty (getdents ENOENT, which readdir(3) reads as the end),
// nothing can be created in it; `stat .` in it works. layerfs answered ENOENT to all of it:
// the node had lost its name, and with it its path. Now the directory is held by an fd from
// just before the rmdir (src/union/detached-dir.ts).
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { DIR_FIELDS, SET_NS, opsOnGoneDir } from '../helpers/open-dir-ops.js'
import { SCRATCH_FS_TYPES } from '../helpers/scratch-fs.js'
import { err, OK, type Op, type SysResult } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

const value = (r: SysResult | undefined): unknown => (r as { value?: unknown } | undefined)?.value

for (const fs of SCRATCH_FS_TYPES) {
  t.test(`an open directory removed by rmdir (${fs} upper)`, async t => {
    const tw = await twinMounts(t, ({ lowers }) => {
      writeTree(lowers[0]!, { merged: { x: 'x\n' }, lower: {}, cwd: {} })
    }, { fs })
    await tw.sameSys(t, [{ op: 'mkdir', path: 'upper' }, { op: 'unlink', path: 'merged/x' }], [OK, OK], 'setup')
    for (const [dir, nlink, changes] of [['upper', 0, true], ['merged', 1, true], ['lower', 2, false]] as const) {
      const ops: Op[] = [
        { op: 'open', path: dir, flags: 'O_RDONLY|O_DIRECTORY', as: 'd' },
        { op: 'rmdir', path: dir },
        ...opsOnGoneDir('d'),
        { op: 'lstat', path: dir },
      ]
      const [, ov] = await tw.sameSys(t, ops, undefined, `${dir} dir`)
      const at = (name: string, n = 0): number => ops.findIndex((o, i) => o.op === name && ops.slice(0, i).filter(x => x.op === name).length === n)
      t.match(value(ov[at('fstat')]), { type: 'dir', nlink }, `${dir}: kernel: fstat gives it, nlink ${nlink}`)
      t.same(ov[at('getdents')], err('ENOENT'), `${dir}: kernel: getdents is ENOENT`)
      t.same(value(ov[at('flistdir')]), [], `${dir}: kernel: readdir(3) lists nothing`)
      if (changes) {
        t.match(value(ov[at('fstat', 1)]), { mode: '0o700', uid: 1234, gid: 5678, mtime_ns: SET_NS }, `${dir}: kernel: fchmod, fchown, futimens changed it`)
      } else {
        t.same([ov[at('fchmod')], ov[at('fchown')], ov[at('futimens')], ov[at('fsetxattr')]], Array(4).fill(err('ENOTDIR')),
          `${dir}: kernel: fchmod, fchown, futimens, fsetxattr are ENOTDIR`)
      }
      t.same(ov[at('openat')], err('ENOENT'), `${dir}: kernel: nothing is created in it`)
      t.same(ov.at(-1), err('ENOENT'), `${dir}: kernel: the name is gone`)
    }
    // A process whose cwd it was (a lower-only one, and one made in the upper layer).
    for (const dir of ['cwd', 'upper-cwd']) {
      const ops: Op[] = [
        ...(dir === 'upper-cwd' ? [{ op: 'mkdir', path: dir }] : []),
        { op: 'chdir', path: dir },
        { op: 'rmdir', path: `../${dir}` },
        { op: 'stat', path: '.', fields: DIR_FIELDS },
        { op: 'listdir', path: '.' },
        { op: 'mkdir', path: 'x' },
      ]
      const [, ov] = await tw.sameSys(t, ops, undefined, `cwd in ${dir}`)
      t.match(value(ov.at(-3)), { type: 'dir', nlink: dir === 'cwd' ? 2 : 0 }, `${dir}: kernel: stat . gives it`)
      t.same(ov.slice(-2), [{ ok: true, value: [] }, err('ENOENT')], `${dir}: kernel: it lists nothing, nothing is made in it`)
    }
    await tw.sameTree(t)
    await tw.sameUpper(t)
    await tw.lowersUnchanged(t)
  })
}
