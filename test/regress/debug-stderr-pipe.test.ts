// Regression (test/engines): with DEBUG in its environment, the mount command's daemon kept the
// command's stderr; podman reads its mount program's stderr through a pipe until it ends, so it
// waited as long as the mount lived. The daemon keeps stderr only where it is a terminal or a
// file; `2>file` still gets the traces. Both ways a mount starts: bin/layerfs (the daemon
// started by the script) and `node dist/cli.js` (by the command's node).
import fs from 'node:fs'
import t from 'tap'
import { run } from '../helpers/run.js'
import { cliPath, freshDir, isMounted, launcherPath, registerMount, unregisterMount } from '../helpers/scratch.js'

for (const [name, command] of [['bin/layerfs', [launcherPath]], ['node dist/cli.js', [process.execPath, cliPath]]] as const) t.test(`${name}: DEBUG set, stderr a pipe: the command returns with the mount live`, async t => {
  const [exe, ...pre] = command
  const root = freshDir('debug')
  for (const d of ['l', 'u', 'w', 'm']) fs.mkdirSync(`${root}/${d}`)
  const mnt = `${root}/m`
  registerMount(mnt, 'layerfs')
  t.teardown(async () => {
    if (isMounted(mnt)) await run(exe, [...pre, 'umount', mnt])
    unregisterMount(mnt)
  })
  const opts = `lowerdir=${root}/l,upperdir=${root}/u,workdir=${root}/w`
  // run() resolves when the command's stdout and stderr pipes close.
  const r = await run(exe, [...pre, '-o', opts, mnt], { env: { DEBUG: 'layerfs:*' }, timeout: 20_000 })
  t.notOk(r.timedOut, 'the pipes closed: the daemon keeps none of them')
  t.equal(r.code, 0, r.stderr)
  t.ok(isMounted(mnt), 'mounted')
  t.equal((await run(exe, [...pre, 'umount', mnt])).code, 0)
  // Into a file, the traces are kept.
  const log = `${root}/trace.log`
  const w = await run('sh', ['-c', 'o=$0 m=$1 l=$2; shift 2; DEBUG=layerfs:* "$@" -o "$o" "$m" 2>"$l"', opts, mnt, log, exe, ...pre], { timeout: 20_000 })
  t.equal(w.code, 0)
  t.match(fs.readFileSync(log, 'utf8'), /layerfs:mount mounted/, 'the daemon traces into the file')
})
