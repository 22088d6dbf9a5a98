// Regression (review of issue 11): `layerfs umount MNT` waits for MNT's daemon to exit, found by
// its name `layerfs MNT`; a daemon whose name was a prefix of it counted too, so with mounts at
// .../a and .../ab, `umount .../ab` waited 10 s for .../a's daemon (which stays, serving .../a)
// and failed with "daemon N is still running" after unmounting .../ab.
import fs from 'node:fs'
import t from 'tap'
import { run } from '../helpers/run.js'
import { cliPath, daemonOf, freshDir, isMounted, registerMount, unregisterMount } from '../helpers/scratch.js'

t.test('umount of .../ab leaves .../a and its daemon alone, and returns at once', async t => {
  const root = freshDir('umount-prefix')
  const mounts = ['a', 'ab'].map(name => {
    for (const d of ['l', 'u', 'w']) fs.mkdirSync(`${root}/layers-${name}/${d}`, { recursive: true })
    return `lowerdir=${root}/layers-${name}/l,upperdir=${root}/layers-${name}/u,workdir=${root}/layers-${name}/w`
  })
  const [a, ab] = [`${root}/mnt/a`, `${root}/mnt/ab`]
  fs.mkdirSync(a, { recursive: true })
  fs.mkdirSync(ab)
  for (const [i, mnt] of [a, ab].entries()) {
    registerMount(mnt, 'layerfs')
    t.teardown(async () => {
      if (isMounted(mnt)) await run(process.execPath, [cliPath, 'umount', mnt])
      unregisterMount(mnt)
    })
    const r = await run(process.execPath, [cliPath, '-o', mounts[i]!, mnt], { timeout: 30_000 })
    t.equal(r.code, 0, `${mnt} mounted ${r.stderr}`)
  }
  const daemonA = daemonOf(a)
  t.ok(daemonA, '.../a has its daemon')
  const started = Date.now()
  const r = await run(process.execPath, [cliPath, 'umount', ab], { timeout: 30_000 })
  t.equal(r.code, 0, `umount .../ab succeeds: ${r.stderr}`)
  t.equal(r.stderr, '', 'and says nothing')
  t.ok(Date.now() - started < 8_000, 'without waiting for another mount\'s daemon')
  t.notOk(isMounted(ab), '.../ab unmounted')
  t.ok(isMounted(a), '.../a still mounted')
  t.equal(daemonOf(a), daemonA, '.../a still served by its daemon')
  t.equal((await run(process.execPath, [cliPath, 'umount', a])).code, 0)
})
