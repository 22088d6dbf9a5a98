// Runs differential cases: many cases share one pair of mounts (each case works in its own
// directory, c00/r, c01/r, ..., built from the same fixture in both lowers), so that 30 seeds
// cost one mount of each kind instead of 30.
//
// 1. Build the layers once (every case's fixture in both lowers, fixed times), copy them
//    twice with `cp -a` (checked exact): side A for layerfs, side B for kernel overlayfs.
// 2. Mount; run each case's ops in one syscalls.py process per side (cwd = the case's dir);
//    compare every call (compare.ts), then the merged trees and the upper layers on disk.
// 3. Swap: unmount both; mount A's layers (upper written by layerfs) with the kernel and B's
//    (upper written by the kernel) with layerfs. Each view must be what the other
//    implementation showed over the same layers, inode numbers included. Then run each case's
//    `more` ops on the swapped mounts and compare calls and trees again.
// 4. The lowers must be byte- and inode-identical to before, on both sides.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { mountKind, type Mounted, type TeardownHost } from '../../helpers/mount.js'
import { describeFailure, run } from '../../helpers/run.js'
import { freshDir, type MountKind } from '../../helpers/scratch.js'
import { syscalls, type Op, type SysResult } from '../../helpers/syscalls.js'
import { diffSnapshots, hashTree, snapshotTree, type Snapshot } from '../../helpers/tree.js'
import { KERNEL_PRIVATE_XATTRS } from '../../helpers/twin.js'
import { compareCalls, compareTrees, comparableTree, unshareWhiteouts, type CallDiff, type TreeDiff } from './compare.js'
import type { Features } from './features.js'
import { fixTimes, writeCase, type Profile } from './fixture.js'

export interface Case {
  /** Label for reports (e.g. "seed 17"). */
  label: string
  /** Ops on the first mounts. */
  ops: Op[]
  /** Ops on the swapped mounts (may be empty). */
  more: Op[]
}

export type Where =
  | 'calls' | 'tree' | 'upper' | 'readdir'
  | 'swap-kernel' | 'swap-layerfs' | 'swap-ino' | 'swap-readdir'
  | 'calls2' | 'tree2' | 'upper2' | 'readdir2'
  | 'lowers' | 'error'
  // Stacking mode (stacking.ts): the view of freshly stacked layers before a round's ops; the
  // final stack mounted read-only by each side, then by the other side.
  | 'pushdown' | 'final' | 'final-readdir'
  | 'cross-kernel' | 'cross-layerfs' | 'cross-ino' | 'cross-readdir'
  // Stacking mode: every upper of a final stack as a layer tarball (layer export), imported
  // again; the kernel over the imports against the kernel over the uppers.
  | 'export'

export interface Difference {
  where: Where
  sig: string
  detail: CallDiff | TreeDiff | string
  /** Stacking mode: the round (1-based) it was seen in; absent for the final stack. */
  round?: number
}

/** One difference in a line: where, the op and both results (or the field) cut short. */
export function briefDifference(d: Difference): string {
  const x = d.detail
  const at = `${d.where}${d.round !== undefined ? ` (round ${d.round})` : ''}`
  if (typeof x === 'string') return `${at}: ${x.slice(0, 500)}`
  if ('index' in x) return `${at} #${x.index} ${JSON.stringify(x.op)}: layerfs ${JSON.stringify(x.layerfs).slice(0, 400)} kernel ${JSON.stringify(x.overlay).slice(0, 400)}${x.delta ? ` (${x.delta.slice(0, 400)})` : ''}`
  return `${at} ${x.path} ${x.field}: layerfs ${JSON.stringify(x.layerfs)} kernel ${JSON.stringify(x.overlay)}`
}

export interface CaseOutcome {
  label: string
  dir: string
  diffs: Difference[]
  /** Raw results of `ops` (and of `more` as results2), per side. */
  results?: { layerfs: SysResult[]; overlay: SysResult[] }
  results2?: { layerfs: SysResult[]; overlay: SysResult[] }
}

export interface RunOptions {
  /** Swap the uppers and run `more`. Default true. */
  swap?: boolean
  /** Cases run at once on each side. Default 4. */
  jobs?: number
  /** Per-case syscalls timeout (ms). Default 60 s. */
  timeout?: number
  /** Progress lines. */
  log?: (s: string) => void
  /** Fixture and generator switches (the same as the cases were generated with). */
  features?: Features
  /** Every mount with metacopy=on (the kernel's and layerfs's); default: features.metacopy. */
  metacopy?: boolean
}

const NLOWERS = 2
export const caseDir = (i: number): string => `c${String(i).padStart(2, '0')}`

export interface SideLayers {
  root: string
  lowers: string[]
  upper: string
}

/** Builds the layers of all cases once, copies them to two roots, returns both. */
export async function buildLayers(n: number, features: Features, profile: Profile = 'classic'): Promise<[SideLayers, SideLayers]> {
  const template = freshDir('diff-template')
  const lowers = Array.from({ length: NLOWERS }, (_, k) => join(template, `lower${k}`))
  for (const l of lowers) mkdirSync(l)
  mkdirSync(join(template, 'upper'))
  for (let i = 0; i < n; i++) writeCase(lowers, `${caseDir(i)}/r`, features, profile)
  lowers.forEach((l, k) => fixTimes(l, `lower${k}:`))
  const want = await hashTree(template, { identity: false })
  const copy = async (name: string): Promise<SideLayers> => {
    const root = freshDir(name)
    const r = await run('cp', ['-a', '--', `${template}/.`, root])
    if (r.code !== 0) throw new Error(describeFailure(r))
    const got = await hashTree(root, { identity: false })
    if (got.hash !== want.hash) throw new Error(`cp -a did not copy the layers exactly:\n${diffSnapshots(want.snapshot, got.snapshot).slice(0, 20).join('\n')}`)
    return { root, lowers: Array.from({ length: NLOWERS }, (_, k) => join(root, `lower${k}`)), upper: join(root, 'upper') }
  }
  return Promise.all([copy('side-a'), copy('side-b')])
}

export const mountOn = (host: TeardownHost, kind: MountKind, s: SideLayers, metacopy = false): Promise<Mounted> =>
  mountKind(host, kind, { lowers: s.lowers, upper: s.upper, work: freshDir('work'), metacopy })

/** Runs fn over items, at most `jobs` at a time. */
export async function pool<T>(items: readonly T[], jobs: number, fn: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, async () => {
    while (next < items.length) {
      const i = next++
      await fn(items[i]!, i)
    }
  }))
}

export async function alive(m: Mounted): Promise<boolean> {
  const r = await run('stat', ['-c', '%i', m.mnt], { timeout: 10_000 })
  return r.code === 0
}

export interface Snapped {
  merged: Snapshot
  upper: Snapshot
}

export async function snap(m: Mounted, dir: string): Promise<Snapped> {
  const merged = await snapshotTree(join(m.mnt, dir), { identity: true, dirNlink: true })
  const upper = unshareWhiteouts(await snapshotTree(join(m.upper!, dir), { dropXattrs: KERNEL_PRIVATE_XATTRS }).catch(() => ({}) as Snapshot))
  return { merged, upper }
}

/**
 * readdir (with an lstat of each entry) of every directory of the tree, on both mounts, compared
 * like calls: d_ino == st_ino and hard links, whatever readdir ops the case happened to make.
 */
export async function readdirAll(a: Mounted, b: Mounted, dir: string, tree: Snapshot, timeout: number): Promise<CallDiff[] | string> {
  const ops: Op[] = Object.entries(tree).filter(([, e]) => e.type === 'dir').map(([p]) => ({ op: 'readdir', path: p, stat: true }))
  try {
    const [x, y] = await Promise.all([a, b].map(m => syscalls(join(m.mnt, dir), ops, { timeout })))
    return compareCalls(ops, x!, y!)
  } catch (e) {
    return String((e as Error).message).slice(0, 2000)
  }
}

export const inos = (s: Snapshot): Record<string, string | undefined> => Object.fromEntries(Object.entries(s).map(([k, e]) => [k, e.ino]))

/**
 * Runs every case on layerfs (side A) and kernel overlayfs (side B) and returns each case's
 * differences (none: the same). Mounts are registered with host (tap's t, or the fuzzer's own
 * teardown list) and are all off again when this returns, unless it throws.
 */
export async function runCases(host: TeardownHost, cases: readonly Case[], opts: RunOptions = {}): Promise<CaseOutcome[]> {
  const log = opts.log ?? (() => {})
  const jobs = opts.jobs ?? 4
  const timeout = opts.timeout ?? 60_000
  const swap = opts.swap ?? true
  const metacopy = opts.metacopy ?? opts.features?.metacopy ?? false
  const outcomes: CaseOutcome[] = cases.map((c, i) => ({ label: c.label, dir: caseDir(i), diffs: [] }))
  const add = (i: number, where: Where, sig: string, detail: Difference['detail']): void => {
    outcomes[i]!.diffs.push({ where, sig: `${where}:${sig}`, detail })
  }
  const addAll = (where: Where, sig: string, detail: string): void => cases.forEach((_, i) => add(i, where, sig, detail))

  const [A, B] = await buildLayers(cases.length, opts.features ?? {})
  const lowersBefore = await Promise.all([A, B].map(s => Promise.all(s.lowers.map(l => hashTree(l)))))
  log(`layers built for ${cases.length} cases`)

  /** Runs ops lists on two mounts and compares; returns the final snapshots. */
  const phase = async (lf: Mounted, ov: Mounted, pick: (c: Case) => Op[], callsWhere: Where, treeWhere: Where, upperWhere: Where, readdirWhere: Where, inherited?: Array<Set<string>>) => {
    const snaps: Array<[Snapped, Snapped] | undefined> = []
    await pool(cases, jobs, async (c, i) => {
      const dir = `${caseDir(i)}/r`
      const ops = pick(c)
      let res: [SysResult[], SysResult[]]
      try {
        res = await Promise.all([lf, ov].map(m => syscalls(join(m.mnt, dir), ops, { timeout }))) as [SysResult[], SysResult[]]
      } catch (e) {
        add(i, 'error', `${callsWhere} syscalls failed`, String((e as Error).message).slice(0, 2000))
        return
      }
      outcomes[i]![callsWhere === 'calls' ? 'results' : 'results2'] = { layerfs: res[0], overlay: res[1] }
      for (const d of compareCalls(ops, res[0], res[1])) add(i, callsWhere, d.sig, d)
    })
    for (const [i] of cases.entries()) {
      const [a, b] = await Promise.all([snap(lf, caseDir(i)), snap(ov, caseDir(i))])
      for (const d of compareTrees(comparableTree(a.merged), comparableTree(b.merged), 'merged')) {
        if (inherited?.[i]?.has(`tree\0${d.path}\0${d.field}`)) continue
        add(i, treeWhere, d.sig, d)
      }
      for (const d of compareTrees(a.upper, b.upper, 'upper')) {
        if (inherited?.[i]?.has(`upper\0${d.path}\0${d.field}`)) continue
        add(i, upperWhere, d.sig, d)
      }
      snaps[i] = [a, b]
      const rd = await readdirAll(lf, ov, caseDir(i), a.merged, timeout)
      if (typeof rd === 'string') add(i, 'error', `${readdirWhere} failed`, rd)
      else for (const d of rd) add(i, readdirWhere, d.sig, d)
    }
    return snaps
  }

  const down = async (m: Mounted, what: string): Promise<void> => {
    try {
      await m.unmount()
    } catch (e) {
      addAll('error', `unmount ${what}`, String((e as Error).message).slice(0, 2000))
    }
  }

  // Phase 1: layerfs on A, kernel on B.
  const lf1 = await mountOn(host, 'layerfs', A, metacopy)
  const ov1 = await mountOn(host, 'overlay', B, metacopy)
  log('mounted; running ops')
  const first = await phase(lf1, ov1, c => c.ops, 'calls', 'tree', 'upper', 'readdir')
  if (!(await alive(lf1))) addAll('error', 'layerfs mount dead after ops', 'stat of the mount point failed (daemon crashed?)')
  await down(lf1, 'layerfs (phase 1)')
  await down(ov1, 'overlay (phase 1)')

  if (swap) {
    // Phase 2: the kernel on layerfs's upper (A), layerfs on the kernel's upper (B).
    log('swapping uppers')
    const ov2 = await mountOn(host, 'overlay', A, metacopy).catch(e => {
      addAll('error', 'kernel refused layerfs upper', String((e as Error).message))
      return undefined
    })
    const lf2 = await mountOn(host, 'layerfs', B, metacopy).catch(e => {
      addAll('error', 'layerfs refused kernel upper', String((e as Error).message))
      return undefined
    })
    if (ov2 && lf2) {
      for (const [i] of cases.entries()) {
        const f = first[i]
        if (!f) continue
        const [onA, onB] = await Promise.all([snap(ov2, caseDir(i)), snap(lf2, caseDir(i))])
        // The same layers, the other implementation: the same view, the same inode numbers.
        for (const d of compareTrees(comparableTree(f[0].merged), comparableTree(onA.merged), 'kernel on layerfs upper')) add(i, 'swap-kernel', d.sig, d)
        for (const d of compareTrees(comparableTree(onB.merged), comparableTree(f[1].merged), 'layerfs on kernel upper')) add(i, 'swap-layerfs', d.sig, d)
        const ia = inos(f[0].merged)
        const ka = inos(onA.merged)
        const ib = inos(onB.merged)
        const kb = inos(f[1].merged)
        for (const p of Object.keys(ia)) if (p in ka && ia[p] !== ka[p]) add(i, 'swap-ino', 'st_ino A', { path: p, field: 'ino (layerfs vs kernel, layerfs upper)', layerfs: ia[p], overlay: ka[p], sig: 'ino' })
        for (const p of Object.keys(ib)) if (p in kb && ib[p] !== kb[p]) add(i, 'swap-ino', 'st_ino B', { path: p, field: 'ino (layerfs vs kernel, kernel upper)', layerfs: ib[p], overlay: kb[p], sig: 'ino' })
        const rd = await readdirAll(lf2, ov2, caseDir(i), onB.merged, timeout)
        if (typeof rd === 'string') add(i, 'error', 'swap-readdir failed', rd)
        else for (const d of rd) add(i, 'swap-readdir', d.sig, d)
      }
      if (cases.some(c => c.more.length)) {
        log('running more ops on the swapped mounts')
        // After the swap the sides trade uppers: a difference already reported for the first
        // mounts shows up again (values swapped); report only new ones.
        const inherited = outcomes.map(o => new Set(o.diffs.filter(d => d.where === 'upper' || d.where === 'tree').map(d => `${d.where}\0${(d.detail as TreeDiff).path}\0${(d.detail as TreeDiff).field}`)))
        await phase(lf2, ov2, c => c.more, 'calls2', 'tree2', 'upper2', 'readdir2', inherited)
      }
      if (!(await alive(lf2))) addAll('error', 'layerfs mount (on kernel upper) dead', 'stat of the mount point failed (daemon crashed?)')
    }
    if (lf2) await down(lf2, 'layerfs (swapped)')
    if (ov2) await down(ov2, 'overlay (swapped)')
  }

  // Lowers: byte- and inode-identical on both sides.
  const after = await Promise.all([A, B].map(s => Promise.all(s.lowers.map(l => hashTree(l)))))
  for (const [si, side] of ['A', 'B'].entries()) {
    for (let k = 0; k < NLOWERS; k++) {
      const b = lowersBefore[si]![k]!
      const a = after[si]![k]!
      if (a.hash === b.hash) continue
      for (const line of diffSnapshots(b.snapshot, a.snapshot, ['before', 'after'])) {
        const i = Number(/^c(\d+)/.exec(line)?.[1] ?? NaN)
        const detail = `side ${side} lower${k}: ${line}`
        if (Number.isNaN(i)) addAll('lowers', 'changed', detail)
        else add(i, 'lowers', 'changed', detail)
      }
    }
  }
  return outcomes
}
