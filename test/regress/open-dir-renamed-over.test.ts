// Regression (xfstests generic/035): a directory open in a process, then replaced by a rename
// of another directory onto its name. On kernel overlayfs the fd still reaches it: fstat gives
// its attributes with st_nlink 0 (what the upper fs leaves of it; 1 for a merged one), fchmod,
// fchown, futimens and xattrs change it, a listing is empty (getdents is ENOENT, which readdir(3)
// reads as the end), and nothing can be created in it. layerfs answered ENOENT to everything:
// the node had lost its name, and with it its path. Now the directory is held by an fd from
// just before the rename (src/union/detached-dir.ts); and an empty upper directory is replaced
// by the rename itself, as the kernel does (it was moved aside and removed, which on ext4 also
// truncated it: st_size 0 where the kernel's kept 1024).
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { DIR_FIELDS, SET_NS, opsOnGoneDir } from '../helpers/open-dir-ops.js'
import { SCRATCH_FS_TYPES } from '../helpers/scratch-fs.js'
import { err, OK, syscalls, type Op, type SysResult } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

const value = (r: SysResult | undefined): unknown => (r as { value?: unknown } | undefined)?.value

for (const fs of SCRATCH_FS_TYPES) {
  t.test(`an open directory replaced by a rename (${fs} upper)`, async t => {
    const tw = await twinMounts(t, ({ lowers }) => {
      writeTree(lowers[0]!, { merged: { x: 'x\n' }, lower: {} })
    }, { fs })
    // 'upper' exists only in the upper layer; 'merged' is a lower dir emptied (its upper dir
    // holds a whiteout).
    await tw.sameSys(t, [{ op: 'mkdir', path: 'upper' }, { op: 'unlink', path: 'merged/x' }], [OK, OK], 'setup')
    for (const [dir, nlink] of [['upper', 0], ['merged', 1]] as const) {
      const ops: Op[] = [
        { op: 'open', path: dir, flags: 'O_RDONLY|O_DIRECTORY', as: 'd' },
        { op: 'mkdir', path: `new-${dir}` },
        { op: 'writefile', path: `new-${dir}/inside`, data: 'i' },
        { op: 'rename', path: `new-${dir}`, to: dir },
        ...opsOnGoneDir('d'),
        { op: 'lstat', path: dir, fields: DIR_FIELDS },
        { op: 'listdir', path: dir },
      ]
      const [, ov] = await tw.sameSys(t, ops, undefined, `${dir} dir`)
      const at = (name: string, n = 0): number => ops.findIndex((o, i) => o.op === name && ops.slice(0, i).filter(x => x.op === name).length === n)
      t.match(value(ov[at('fstat')]), { type: 'dir', nlink }, `${dir}: kernel: fstat gives it, nlink ${nlink}`)
      t.same(ov[at('getdents')], err('ENOENT'), `${dir}: kernel: getdents is ENOENT`)
      t.same(value(ov[at('flistdir')]), [], `${dir}: kernel: readdir(3) lists nothing`)
      t.match(value(ov[at('fstat', 1)]), { mode: '0o700', uid: 1234, gid: 5678, mtime_ns: SET_NS }, `${dir}: kernel: fchmod, fchown, futimens changed it`)
      t.same(ov[at('openat')], err('ENOENT'), `${dir}: kernel: nothing is created in it`)
      t.same(value(ov[at('listdir')]), ['inside'], `${dir}: kernel: the new directory is untouched`)
    }
    await tw.sameTree(t)
    await tw.sameUpper(t)
    await tw.lowersUnchanged(t)
  })
}

// The kernel's copy-up of a removed lower-only directory renames the copy onto its old name,
// where the new directory now is, and replaces it (ovl_copy_up_one does not check that the
// dentry is still hashed): the new directory is gone from the upper layer. layerfs refuses
// (ENOTDIR, what the kernel gives once the name holds a whiteout: open-dir-removed) and
// changes nothing. Both halves pinned; when the kernel's changes, this can be revisited.
t.test('an open lower-only directory replaced by a rename: the kernel copies it up over the new one', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[0]!, { lower: {} })
  })
  const ops: Op[] = [
    { op: 'open', path: 'lower', flags: 'O_RDONLY|O_DIRECTORY', as: 'd' },
    { op: 'mkdir', path: 'new' },
    { op: 'rename', path: 'new', to: 'lower' },
    { op: 'fstat', fd: 'd', fields: DIR_FIELDS },
    { op: 'flistdir', fd: 'd' },
    { op: 'fchmod', fd: 'd', mode: 0o700 },
    { op: 'close', fd: 'd' },
  ]
  const [lf, ov] = await tw.both(s => syscalls(s.mnt, ops))
  t.same(lf.slice(0, 5), ov.slice(0, 5), 'the same up to the fchmod: the lower dir\'s attributes, an empty listing')
  t.match(value(ov[3]), { nlink: 2 }, 'kernel: the lower directory\'s own link count')
  t.same(ov[5], OK, 'kernel: fchmod succeeds')
  t.same(lf[5], err('ENOTDIR'), 'layerfs: fchmod is ENOTDIR')
  const [lfUp, ovUp] = await tw.both(s => syscalls(s.upper!, [{ op: 'getxattr', path: 'lower', name: 'trusted.overlay.origin' }, { op: 'lstat', path: 'lower', fields: ['mode'] }]))
  t.ok(ovUp[0] && 'ok' in ovUp[0], 'kernel: the upper \'lower\' is now the copy-up (it has an origin)', { got: ovUp[0] })
  t.match(value(ovUp[1]), { mode: '0o700' }, 'kernel: ... with the mode fchmod gave')
  t.same(lfUp, [err('ENODATA'), { ok: true, value: { mode: '0o755' } }], 'layerfs: the upper \'lower\' is the new directory, untouched')
})
