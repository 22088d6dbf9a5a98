// Regression (rootless podman: a build's `RUN mv /bin/tr /bin/tr2` got "Operation not
// permitted"): in the userxattr format (user.overlay.*, what layerfs writes where trusted.* is
// not allowed), copy-up of a symlink or a special file failed with EPERM, because it wrote its
// origin record as a user.* xattr, and those exist only on regular files and directories. The
// kernel's overlayfs (userxattr) copies them up without one; layerfs now does the same.
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { mountLayerfs } from '../helpers/mount.js'
import { run, runOk } from '../helpers/run.js'
import { freshDir, isMounted } from '../helpers/scratch.js'
import { syscalls, type Op } from '../helpers/syscalls.js'
import { snapshotTree } from '../helpers/tree.js'

const ops: Op[] = [
  { op: 'rename', path: 'tr', to: 'tr2' },
  { op: 'readlink', path: 'tr2' },
  { op: 'chmod', path: 'fifo', mode: 0o600 },
  { op: 'utimensat', path: 'link', mtime: 1_000_000_000_000_000_000, atime: 'omit', follow: false },
  { op: 'chmod', path: 'f', mode: 0o600 },
]

t.test('userxattr: a lower symlink and a FIFO are copied up (rename, chmod, utimensat -h)', async t => {
  const build = (d: string): void => writeTree(d, { tr: { type: 'symlink', target: 'busybox' }, link: { type: 'symlink', target: 'f' }, fifo: { type: 'fifo' }, f: 'x\n' })
  const results: Record<string, unknown> = {}
  const uppers: Record<string, unknown> = {}
  // The kernel: userxattr excludes redirect_dir=on, so this mount is made here, not by mountOverlay.
  {
    const [l, u, w, m] = ['l', 'u', 'w', 'm'].map(n => freshDir(`kernel-${n}`)) as [string, string, string, string]
    build(l)
    await runOk('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${l},upperdir=${u},workdir=${w},userxattr`, m])
    try {
      results.kernel = await syscalls(m, ops)
    } finally {
      await run('umount', [m])
    }
    t.notOk(isMounted(m))
    uppers.kernel = await snapshotTree(u, { xattrs: 'all' })
  }
  {
    const l = freshDir('layerfs-l')
    build(l)
    const upper = freshDir('layerfs-u')
    const m = await mountLayerfs(t, { lowers: [l], upper, options: ['userxattr'] })
    results.layerfs = await syscalls(m.mnt, ops)
    await m.unmount()
    uppers.layerfs = await snapshotTree(upper, { xattrs: 'all' })
  }
  t.same(results.kernel, ops.map(o => (o.op === 'readlink' ? { ok: true, value: 'busybox' } : { ok: true })), 'the kernel does them all')
  t.same(results.layerfs, results.kernel, 'layerfs gives what the kernel gives')
  const xattrsOf = (s: unknown, p: string): unknown => (s as Record<string, { xattrs?: unknown }>)[p]?.xattrs
  for (const p of ['tr2', 'fifo', 'link']) {
    t.equal(xattrsOf(uppers.kernel, p), undefined, `kernel: no xattr on the copied-up ${p}`)
    t.equal(xattrsOf(uppers.layerfs, p), undefined, `layerfs: no xattr on the copied-up ${p}`)
  }
  t.ok(xattrsOf(uppers.layerfs, 'f'), 'a regular file still gets its origin record')
})
