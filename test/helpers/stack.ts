// Stacked twins: the same layers on two sides (layerfs, kernel overlayfs), used the way container
// builds use them: each step mounts a fresh upper over every earlier upper, runs, unmounts, and
// its upper becomes the top lower layer of the next step. A step compares what twin.ts compares;
// crossed() mounts each side's whole stack with the other implementation.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { mountKind, subjectKind, type Mounted } from './mount.js'
import { describeFailure, run } from './run.js'
import { freshDir, type MountKind } from './scratch.js'
import { labelled, syscalls, type Op, type SysResult } from './syscalls.js'
import { diffSnapshots, hashTree, snapshotTree, type Snapshot } from './tree.js'
import { KERNEL_PRIVATE_XATTRS, type Assert, unshareWhiteouts } from './twin.js'

interface SideStack {
  role: 'layerfs' | 'overlay'
  kind: MountKind
  root: string
  /** Top-most first. */
  lowers: string[]
}

export interface TwinStack {
  /** Each side's layers now (top-most first), for assertions on disk. */
  readonly layerfs: { readonly lowers: readonly string[] }
  readonly overlay: { readonly lowers: readonly string[] }
  /**
   * One step: a fresh upper on both sides, the ops run on both (layerfs must give what the
   * kernel gives; the kernel what `expected` says, when given), the merged views and the uppers
   * on disk compared; then both unmounted and the uppers pushed down. Returns the results
   * ([layerfs, kernel]) and the step's uppers.
   */
  step(t: Assert, ops: readonly Op[], expected?: readonly SysResult[], msg?: string): Promise<{ results: [SysResult[], SysResult[]]; uppers: [string, string] }>
  /**
   * The stacks read-only: each side's by its own implementation, then by the other. The views
   * must be the same, and the same on the same layers, inode numbers included.
   */
  crossed(t: Assert): Promise<void>
  /** Every layer below the current stack top is as it was when it became a lower. */
  lowersUnchanged(t: Assert): Promise<void>
}

/** Snapshots of the final stacks: inode numbers, times and directory link counts too. */
const IDENTITY = { identity: true, dirNlink: true } as const
const drop = (s: Snapshot, keys: ReadonlyArray<'ino' | 'ctime' | 'mtime'>): Snapshot =>
  Object.fromEntries(Object.entries(s).map(([k, e]) => {
    const x = { ...e }
    for (const f of keys) delete x[f]
    return [k, x]
  }))

/**
 * Builds `lowers` lower layers once (build fills them, top-most first), copies them exact to a
 * layerfs side and a kernel side. Mounts are made and taken off by each step.
 */
export async function twinStack(t: Assert, build: (lowers: string[]) => unknown, opts: { lowers?: number } = {}): Promise<TwinStack> {
  const n = opts.lowers ?? 1
  const template = freshDir('stack-template')
  const lowers = Array.from({ length: n }, (_, k) => join(template, `lower${k}`))
  for (const l of lowers) mkdirSync(l)
  await build(lowers)
  const want = await hashTree(template, { identity: false })
  const side = async (role: 'layerfs' | 'overlay', kind: MountKind): Promise<SideStack> => {
    const root = freshDir(role)
    const r = await run('cp', ['-a', '--', `${template}/.`, root])
    if (r.code !== 0) throw new Error(describeFailure(r))
    const got = await hashTree(root, { identity: false })
    if (got.hash !== want.hash) throw new Error(`cp -a did not copy the layers exactly:\n${diffSnapshots(want.snapshot, got.snapshot).join('\n')}`)
    return { role, kind, root, lowers: lowers.map((_, k) => join(root, `lower${k}`)) }
  }
  const sides = await Promise.all([side('layerfs', subjectKind), side('overlay', 'overlay')])
  const hashes = new Map<string, string>()
  for (const s of sides) for (const l of s.lowers) hashes.set(l, (await hashTree(l)).hash)
  let steps = 0

  const mountBoth = async (kinds: [MountKind, MountKind], upper: boolean): Promise<[Mounted, Mounted]> => {
    const mounts: Mounted[] = []
    try {
      for (const [k, s] of sides.entries()) {
        const spec = upper ? { lowers: s.lowers, upper: join(s.root, `u${steps}`), work: join(s.root, `w${steps}`) } : { lowers: s.lowers }
        if (spec.upper) for (const d of [spec.upper, spec.work!]) mkdirSync(d)
        mounts.push(await mountKind(t, kinds[k]!, spec))
      }
      return mounts as [Mounted, Mounted]
    } catch (e) {
      for (const m of mounts) await m.unmount()
      throw e
    }
  }

  return {
    layerfs: sides[0],
    overlay: sides[1],
    async step(t, ops, expected, msg = `step ${steps + 1}`) {
      steps++
      const [lf, ov] = await mountBoth([sides[0].kind, sides[1].kind], true)
      let results: [SysResult[], SysResult[]]
      try {
        results = await Promise.all([lf, ov].map(m => syscalls(m.mnt, ops))) as [SysResult[], SysResult[]]
        t.same(labelled(ops, results[0]), labelled(ops, results[1]), `${msg}: layerfs gives what the kernel gives`)
        if (expected) t.same(labelled(ops, results[1]), labelled(ops, expected), `${msg}: the kernel gives what the story expects`)
        const [a, b] = await Promise.all([lf, ov].map(m => snapshotTree(m.mnt)))
        t.same(a, b, `${msg}: the merged views are the same`, { differences: diffSnapshots(a!, b!, ['layerfs', 'overlay']).slice(0, 40) })
        const [ua, ub] = (await Promise.all([lf, ov].map(m => snapshotTree(m.upper!, { dropXattrs: KERNEL_PRIVATE_XATTRS })))).map(unshareWhiteouts)
        t.same(ua, ub, `${msg}: the uppers on disk are the same`, { differences: diffSnapshots(ua!, ub!, ['layerfs', 'overlay']).slice(0, 40) })
      } finally {
        await lf.unmount()
        await ov.unmount()
      }
      const uppers = sides.map(s => join(s.root, `u${steps}`)) as [string, string]
      for (const [k, s] of sides.entries()) {
        s.lowers.unshift(uppers[k]!)
        hashes.set(uppers[k]!, (await hashTree(uppers[k]!)).hash)
      }
      return { results, uppers }
    },
    async crossed(t) {
      const own = await mountBoth([sides[0].kind, sides[1].kind], false)
      let views: Snapshot[]
      try {
        views = await Promise.all(own.map(m => snapshotTree(m.mnt, IDENTITY)))
      } finally {
        for (const m of own) await m.unmount()
      }
      // Two copies of the layers: the objects each side made have times and inode numbers of their own.
      const [a, b] = views.map(v => drop(v, ['ino', 'ctime', 'mtime']))
      t.same(a, b, 'the final stacks: the same merged views', { differences: diffSnapshots(a!, b!, ['layerfs', 'overlay']).slice(0, 40) })
      const cross = await mountBoth([sides[1].kind, sides[0].kind], false)
      try {
        const [onA, onB] = await Promise.all(cross.map(m => snapshotTree(m.mnt, IDENTITY)))
        t.same(drop(onA!, ['ctime']), drop(views[0]!, ['ctime']), 'the kernel on the layerfs stack shows what layerfs showed, inode numbers too', {
          differences: diffSnapshots(views[0]!, onA!, ['layerfs', 'kernel']).slice(0, 40),
        })
        t.same(drop(onB!, ['ctime']), drop(views[1]!, ['ctime']), 'layerfs on the kernel stack shows what the kernel showed, inode numbers too', {
          differences: diffSnapshots(onB!, views[1]!, ['layerfs', 'kernel']).slice(0, 40),
        })
      } finally {
        for (const m of cross) await m.unmount()
      }
    },
    async lowersUnchanged(t) {
      for (const s of sides) {
        for (const l of s.lowers) {
          const now = (await hashTree(l)).hash
          t.equal(now, hashes.get(l), `${s.role}: ${l.slice(s.root.length + 1)} unchanged since it became a lower`)
        }
      }
    },
  }
}
