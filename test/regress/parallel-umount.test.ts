// `layerfs umount` of several mounts at once: each must succeed. Found by the ten-container
// test (test/image/containers.test.ts): umount looked for the daemons to wait for by resolving
// every daemon's mount point (realpath), a lookup into the other mounts; one racing the
// unmount of that other mount made it fail with EBUSY (about one umount in thirty here).
// The daemons' mount points are now compared as text.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { mountLayerfs, runCli } from '../helpers/mount.js'
import { freshDir, isMounted } from '../helpers/scratch.js'

const lower = freshDir('lower')
writeFileSync(join(lower, 'f'), 'x\n')

// The race is rare per umount: ten at once give it ninety chances (each umount scans all).
t.test('ten mounts unmounted at once', async t => {
  const mounts = await Promise.all(Array.from({ length: 10 }, () => mountLayerfs(t, { lowers: [lower], upper: freshDir('upper') })))
  const results = await Promise.all(mounts.map(m => runCli(['umount', m.mnt])))
  for (const [i, r] of results.entries()) {
    t.equal(r.code, 0, `umount ${i}: ${r.stderr.trim()}`)
    t.notOk(isMounted(mounts[i]!.mnt))
  }
})
