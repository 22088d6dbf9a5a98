// Runs the engine scenario (test/engines/lib.ts) in the legs named on the command line, one
// after the other, and prints each leg against the first: a way to look at one difference by
// hand. scripts/engines/compare root/kernel-redirect root/layerfs [--out DIR]
import { mkdirSync } from 'node:fs'
import { compareReport, engineScratch, hostStateAbsent, Leg, makeBaseTarball, missingPrerequisites, prepareRootless, removeHostState, runScenario, saveResult, type LegResult, type Mode, type Storage, type TestUser } from '../../test/engines/lib.js'

const args = process.argv.slice(2)
const outIdx = args.indexOf('--out')
const out = outIdx >= 0 ? args.splice(outIdx, 2)[1] : undefined
const legs = args.map(a => a.split('/') as [Mode, Storage])
if (!legs.length) {
  console.error('usage: scripts/engines/compare MODE/STORAGE... [--out DIR]   (MODE: root|rootless; STORAGE: kernel|kernel-redirect|fuse-overlayfs|layerfs)')
  process.exit(2)
}
const missing = await missingPrerequisites()
if (missing.length) {
  console.error(missing.join('\n'))
  process.exit(2)
}
const root = engineScratch()
const absent = hostStateAbsent()
const user: TestUser | undefined = legs.some(([m]) => m === 'rootless') ? await prepareRootless() : undefined
const base = await makeBaseTarball(root)
const results: LegResult[] = []
let failed = false
for (const [mode, storage] of legs) {
  // LAYERFS_ENGINES_PROGRAM: another program behind the layerfs leg's mount_program wrapper;
  // LAYERFS_ENGINES_DEBUG=1: the layerfs daemons trace (DEBUG=layerfs:*) into the leg's
  // mount-program.stderr (keep it with LAYERFS_TEST_KEEP=1).
  const program = storage === 'layerfs' ? process.env.LAYERFS_ENGINES_PROGRAM : undefined
  const programEnv = storage === 'layerfs' && process.env.LAYERFS_ENGINES_DEBUG ? { DEBUG: 'layerfs:*' } : undefined
  const leg = new Leg({ mode, storage, root, ...(user ? { user } : {}), ...(program ? { program } : {}), ...(programEnv ? { programEnv } : {}) })
  try {
    const r = await runScenario(leg, base)
    results.push(r)
    if (out) {
      mkdirSync(out, { recursive: true })
      saveResult(out, r)
    }
    const bad = r.steps.find(s => !s.ok)
    console.log(`${r.leg}: ${r.steps.filter(s => s.ok).length}/${r.steps.length} steps in ${r.seconds.toFixed(1)} s${bad ? `; FAILED at '${bad.name}':\n${bad.failure}` : ''}`)
    if (bad) failed = true
  } finally {
    const problems = await leg.destroy()
    if (problems.length) {
      failed = true
      console.log(problems.join('\n'))
    }
  }
}
removeHostState(absent)
for (const r of results.slice(1)) console.log(compareReport(results[0]!, r))
process.exitCode = failed ? 1 : 0
