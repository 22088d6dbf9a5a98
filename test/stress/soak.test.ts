// The concurrency soak in its short form (scripts/stress/soak): 16 processes racing on one
// mount for a few seconds, every check on (progress watchdog, lost writes, errno, one copy-up
// per file, exact race outcomes, kernel overlayfs view). The long form is for a person:
// scripts/stress/soak --procs 24 --seconds 3600 (README).
import fs from 'node:fs'
import t from 'tap'
import { run } from '../helpers/run.js'

const script = new URL('../../scripts/stress/soak', import.meta.url).pathname

t.test('soak: 16 processes, no hang, no lost write, no wrong errno, one copy-up per file', async t => {
  const r = await run(script, ['--procs', '16', '--seconds', '12', '--seed', '4242'], {
    timeout: 120_000,
    env: { STRESS_DISCARD: '1' },
  })
  t.equal(r.code, 0, `exit 0\n${r.stdout}\n${r.stderr}`)
  t.match(r.stdout, /soak summary: seed 4242, 16 processes for 12 s/)
  const m = /copy-up rounds: (\d+) files raced by up to (\d+) processes \((\d+) opens for write\), (\d+) copy-ups traced/.exec(r.stdout)
  t.ok(m, 'the copy-up rounds ran')
  if (m) {
    t.ok(Number(m[1]) >= 10, 'at least 10 files raced')
    t.ok(Number(m[2]) >= 2, 'by more than one process at once')
    t.equal(m[4], m[1], 'one copy-up per raced file')
  }
  t.match(r.stdout, /tree: \d+ names, the same in kernel overlayfs/)
  t.match(r.stdout, /\n {2}failures: 0 /, 'no failures')
  t.notMatch(r.stdout, /^FAIL/m)
  // This run's directory only: other runs (a long one by hand) may be mounted meanwhile.
  const runDir = /run dir (\/tmp\/stress-soak\.\w+)/.exec(r.stdout)?.[1]
  t.ok(runDir, 'the run directory is named')
  const left = fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter(l => runDir && l.split(' ')[1]?.startsWith(runDir))
  t.same(left, [], 'nothing left mounted')
  t.notOk(runDir && fs.existsSync(runDir), 'the run directory is removed')
})
