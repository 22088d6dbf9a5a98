// Regression (test/engines): with DEBUG in its environment, the mount command's daemon kept the
// command's stderr; podman reads its mount program's stderr through a pipe until it ends, so it
// waited as long as the mount lived. The daemon keeps stderr only where it is a terminal or a
// file; `2>file` still gets the traces.
import fs from 'node:fs'
import t from 'tap'
import { run } from '../helpers/run.js'
import { cliPath, freshDir, isMounted, registerMount, unregisterMount } from '../helpers/scratch.js'

t.test('DEBUG set, stderr a pipe: the command returns with the mount live', async t => {
  const root = freshDir('debug')
  for (const d of ['l', 'u', 'w', 'm']) fs.mkdirSync(`${root}/${d}`)
  const mnt = `${root}/m`
  registerMount(mnt, 'layerfs')
  t.teardown(async () => {
    if (isMounted(mnt)) await run(process.execPath, [cliPath, 'umount', mnt])
    unregisterMount(mnt)
  })
  const opts = `lowerdir=${root}/l,upperdir=${root}/u,workdir=${root}/w`
  // run() resolves when the command's stdout and stderr pipes close.
  const r = await run(process.execPath, [cliPath, '-o', opts, mnt], { env: { DEBUG: 'layerfs:*' }, timeout: 20_000 })
  t.notOk(r.timedOut, 'the pipes closed: the daemon keeps none of them')
  t.equal(r.code, 0, r.stderr)
  t.ok(isMounted(mnt), 'mounted')
  t.equal((await run(process.execPath, [cliPath, 'umount', mnt])).code, 0)
  // Into a file, the traces are kept.
  const log = `${root}/trace.log`
  const w = await run('sh', ['-c', `DEBUG=layerfs:* "$0" "$1" -o "$2" "$3" 2>"$4"`, process.execPath, cliPath, opts, mnt, log], { timeout: 20_000 })
  t.equal(w.code, 0)
  t.match(fs.readFileSync(log, 'utf8'), /layerfs:mount mounted/, 'the daemon traces into the file')
})
