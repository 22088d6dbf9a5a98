// Regression (podman 4.3 as root, `podman run --uidmap ...` with layerfs as mount_program:
// "creating /etc/mtab symlink: no such file or directory"): containers/storage 1.43 gives the
// mount program its lowers through idmapped mounts (.../mapped/0/l/ID) and detaches them
// (MNT_DETACH) as soon as the program returns. layerfs still reached a layer's root by its
// path in two places, the filesystem uuid for an origin record (read lazily, at the first
// copy-up) and the root directory itself ('/': lstat, xattrs, statfs), so the first copy-up
// failed with ENOENT. Everything now goes through the root's fd, opened at mount, as every
// path below the root already did.
import t from 'tap'
import { mkdirSync, readdirSync, readlinkSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { writeTree } from '../helpers/layers.js'
import { mountLayerfs } from '../helpers/mount.js'
import { run, runOk } from '../helpers/run.js'
import { freshDir, isMounted } from '../helpers/scratch.js'
import { syscalls } from '../helpers/syscalls.js'

for (const rw of [true, false]) {
  t.test(`${rw ? 'read-write' : 'read-only'} union whose lower path is detached after the mount`, async t => {
    // containers/storage's layout: overlay/ID/diff, overlay/l/SHORT -> ../ID/diff, all of
    // overlay/ mounted again elsewhere and the lower given through that mount.
    const store = freshDir('overlay')
    writeTree(join(store, 'ID/diff'), { etc: { passwd: 'root\n' }, top: 'top\n' })
    mkdirSync(join(store, 'l'))
    symlinkSync('../ID/diff', join(store, 'l/SHORT'))
    const mapped = freshDir('mapped')
    await runOk('mount', ['--bind', store, mapped])
    t.teardown(async () => {
      if (isMounted(mapped)) await run('umount', ['-l', mapped])
    })
    const m = await mountLayerfs(t, { lowers: [join(mapped, 'l/SHORT')], ...(rw ? { upper: freshDir('upper') } : {}) })
    await runOk('umount', ['-l', mapped])
    t.same(readdirSync(mapped), [], 'the path given as lowerdir leads nowhere now')

    const r = await syscalls(m.mnt, [
      { op: 'lstat', path: '.' },
      { op: 'listdir', path: '.' },
      { op: 'statvfs', path: '.' },
      { op: 'listxattr', path: '.' },
      { op: 'readfile', path: 'etc/passwd' },
    ])
    t.same(r.map(x => ('errno' in x ? x.errno : 'ok')), ['ok', 'ok', 'ok', 'ok', 'ok'], 'the root and below it still answer', { r })
    t.same((r[1] as { value: unknown }).value, ['etc', 'top'])
    if (rw) {
      const w = await syscalls(m.mnt, [
        { op: 'symlink', path: 'etc/mtab', target: '/proc/mounts' },
        { op: 'chmod', path: '.', mode: 0o700 },
      ])
      t.same(w, [{ ok: true }, { ok: true }], 'copy-up of a lower directory and of the root work')
      t.equal(readlinkSync(join(m.mnt, 'etc/mtab')), '/proc/mounts')
    }
  })
}
