// The engine tests (root.test.ts and rootless.test.ts run it, one file per mode so that each
// stays well within tap's per-file timeout): layerfs as containers/storage's mount_program,
// under podman and buildah, as root and rootless (issue 11's acceptance test). One scenario
// (lib.ts: import, a 6-step build deleting and renaming across layers, a run with writes,
// deletes, hard links, chmod/chown and renames, restart, diff, commit, --uidmap, buildah
// from/run/commit, image save) in private storages: the kernel's overlay (as storage mounts it
// by default, and with redirect_dir=on), fuse-overlayfs (Debian's, the usual mount_program) and
// layerfs. Compared entry by entry: every container's view of its tree, `podman diff`, every
// entry of every layer of every saved image (whiteouts included).
//
// The oracle is root/kernel-redirect: the kernel's semantics, directory renames as layerfs does
// them as root (redirects), and storage's naive diff, the one storage uses for every
// mount_program (it mounts the layer and its parent and compares them), so layer tarballs come
// from the same code. Rootless legs are held to the same oracle: inside the user namespace the
// container sees the same owners and the layers hold the same entries, and the directories the
// scenario renames are such that EXDEV with `mv`'s copy (what rootless gives) leaves the same.
// root/kernel's trees are asserted equal to the oracle's (its native diff writes other layers);
// fuse-overlayfs is run and reported, not asserted against: it differs from the oracle by its
// own bugs (native-notes/container-engines.md). Under --uidmap, podman 4.3 (storage 1.43) hands
// a mount_program idmapped lowers *and* uidmapping=, so the owners there are the mount_program
// contract's: compared with fuse-overlayfs's in the same mode.
import type { Test } from 'tap'
import { rmSync } from 'node:fs'
import { mountPoints } from '../helpers/scratch.js'
import {
  compareReport, describeProcess, diffArtifact, engineScratch, hostStateAbsent, Leg, makeBaseTarball, missingPrerequisites, prepareRootless, processesNaming,
  removeHostState, runScenario, saveResult, type LegResult, type Mode, type Storage, type TestUser,
} from './lib.js'

const LEGS: Record<Mode, Storage[]> = {
  root: ['kernel-redirect', 'kernel', 'fuse-overlayfs', 'layerfs'],
  rootless: ['kernel', 'fuse-overlayfs', 'layerfs'],
}
const ORACLE = 'root/kernel-redirect'
/** LAYERFS_ENGINES_RESULTS=DIR keeps every leg's listings and mount_program log there. */
const resultsDir = process.env.LAYERFS_ENGINES_RESULTS

/** The engine tests for one mode (the rootless one runs the root oracle leg first). */
export async function engineSuite(t: Test, mode: Mode): Promise<void> {
  const missing = await missingPrerequisites()
  if (missing.length) {
    t.fail(`the engine tests cannot run here:\n${missing.join('\n')}`)
    return
  }
  const root = engineScratch()
  const absent = hostStateAbsent()
  t.teardown(() => {
    if (!process.env.LAYERFS_TEST_KEEP && !mountPoints().some(m => m.startsWith(root + '/'))) rmSync(root, { recursive: true, force: true })
    removeHostState(absent)
  })
  const user = mode === 'rootless' ? await prepareRootless() : undefined
  const base = await makeBaseTarball(root)
  const results = new Map<string, LegResult>()

  /** Runs the scenario in one leg; the leg is destroyed right after (and at teardown, whatever happens). */
  const runLeg = async (tt: Test, m: Mode, storage: Storage, u?: TestUser): Promise<LegResult> => {
    const leg = new Leg({ mode: m, storage, root, ...(u ? { user: u } : {}) })
    tt.teardown(async () => {
      const problems = await leg.destroy()
      if (problems.length) throw new Error(problems.join('\n'))
    })
    const r = await runScenario(leg, base)
    results.set(r.leg, r)
    if (resultsDir) saveResult(resultsDir, r)
    const problems = await leg.destroy()
    tt.same(problems, [], `${leg.name}: destroyed without leftovers`)
    const failed = r.steps.filter(s => !s.ok)
    tt.same(failed.map(s => s.name), [], `${leg.name}: every step succeeds (${r.steps.filter(s => s.ok).length}/${r.steps.length}, ${r.seconds.toFixed(0)} s)`,
      { failure: failed[0]?.failure?.slice(0, 4000), mountProgram: r.mountProgramLog.split('\n').slice(-6).join('\n') })
    if (storage === 'fuse-overlayfs' || storage === 'layerfs') {
      tt.match(r.mountProgramLog, /argv=-o lowerdir=/, `${leg.name}: podman ran the mount_program`)
    }
    return r
  }

  /** Asserts every artifact of leg b is the oracle's (the --uidmap owners: fuse-overlayfs's in b's mode). */
  const sameAsOracle = (tt: Test, b: LegResult): void => {
    const oracle = results.get(ORACLE)!
    const fo = results.get(`${b.leg.split('/')[0]!}/fuse-overlayfs`)!
    for (const name of Object.keys(oracle.artifacts)) {
      const [a, commonOnly] = name === 'owners: --uidmap container' ? [fo, true] : [oracle, false]
      const d = diffArtifact(name, a, b, { commonOnly })
      tt.same(d, [], `${b.leg} == ${a.leg}: ${name}`, { differences: d.slice(0, 60).join('\n') })
    }
  }

  await t.test(`${mode}: podman and buildah on each storage`, async tt => {
    if (mode === 'rootless') await runLeg(tt, 'root', 'kernel-redirect')
    for (const storage of LEGS[mode]) await runLeg(tt, mode, storage, user)
    const oracle = results.get(ORACLE)!
    sameAsOracle(tt, results.get(`${mode}/layerfs`)!)
    if (mode === 'root') {
      // The scenario renames only what EXDEV and `mv`'s copy leave the same: the kernel as
      // storage mounts it by default (EXDEV there) must then see what the oracle sees.
      const k = results.get('root/kernel')!
      for (const name of Object.keys(oracle.artifacts).filter(n => n.startsWith('tree:') || n.startsWith('owners:'))) {
        const d = diffArtifact(name, oracle, k)
        tt.same(d, [], `root/kernel == ${ORACLE}: ${name}`, { differences: d.slice(0, 60).join('\n') })
      }
    }
    for (const storage of LEGS[mode]) {
      const r = results.get(`${mode}/${storage}`)!
      if (r !== oracle) tt.comment(compareReport(oracle, r))
    }
  })

  await t.test('nothing left behind', async tt => {
    tt.same(processesNaming(root).map(describeProcess), [], 'no process names the scratch dir (conmon, pause, mount_program daemons)')
    tt.same(mountPoints().filter(m => m.startsWith(root + '/')), [], 'nothing mounted under it')
  })
  if (resultsDir) t.comment(`listings kept in ${resultsDir}`)
}
