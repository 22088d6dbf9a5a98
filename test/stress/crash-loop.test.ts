// The crash loop in its short form (scripts/stress/crash-loop): a few SIGKILLs of the daemon
// in the middle of a journaled workload, each followed by a remount and every check (journal,
// no partial copy-up, empty workdir, lowers' hash, kernel overlayfs view). The long form is
// for a person: scripts/stress/crash-loop --seconds 3600 (README).
import t from 'tap'
import { run } from '../helpers/run.js'
import fs from 'node:fs'

const script = new URL('../../scripts/stress/crash-loop', import.meta.url).pathname

t.test('crash loop: 3 kills, nothing lost, nothing half-done, remount at once', async t => {
  const r = await run(script, ['--iterations', '3', '--big-mib', '16', '--seed', '4242', '--verbose'], {
    timeout: 120_000,
    env: { STRESS_DISCARD: '1' },
  })
  t.equal(r.code, 0, `exit 0\n${r.stdout}\n${r.stderr}`)
  t.match(r.stdout, /crash-loop summary: seed 4242, 3 iterations/, 'three rounds ran')
  t.match(r.stdout, /kills: 3;/, 'three kills')
  t.match(r.stdout, /verified: [1-9]\d* completed ops \([1-9]\d* fsync'd writes\)/, 'the journal had fsync\'d writes to check')
  t.match(r.stdout, /\n {2}failures: 0\n/, 'no failures')
  t.notMatch(r.stdout, /^FAIL/m)
  // This run's directory only: other runs (a long one by hand) may be mounted meanwhile.
  const runDir = /run dir (\/tmp\/stress-crash-loop\.\w+)/.exec(r.stdout)?.[1]
  t.ok(runDir, 'the run directory is named')
  const left = fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter(l => runDir && l.split(' ')[1]?.startsWith(runDir))
  t.same(left, [], 'nothing left mounted')
  t.notOk(runDir && fs.existsSync(runDir), 'the run directory is removed')
})
