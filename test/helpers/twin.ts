// Twin mounts: the same layers, built once and copied with `cp -a` (xattrs, owners, times,
// device nodes), mounted once with layerfs and once with kernel overlayfs, so that a test can
// run the same thing on both and compare, the kernel being the oracle.
import { mkdirSync, mkdtempSync } from 'node:fs'
import type { Test } from 'tap'
import { join } from 'node:path'
import { mountKind, subjectKind, type MountSpec, type Mounted } from './mount.js'
import { describeFailure, run, sh, type RunOptions, type RunResult } from './run.js'
import { labelled, syscalls, type Op, type SysResult } from './syscalls.js'
import { freshDir, type MountKind } from './scratch.js'
import { scratchFs, type ScratchFsType } from './scratch-fs.js'
import { diffSnapshots, hashTree, snapshotTree, type Snapshot, type SnapshotOptions } from './tree.js'

/** Empty layer dirs handed to a builder: fill them. */
export interface LayerDirs {
  /** Top-most first. */
  lowers: string[]
  /** Present when the twin has an upper layer (it may be pre-filled, like a used upper). */
  upper?: string
  /** A scratch dir next to the layers that is not mounted (for archives, sources, ...). */
  outside: string
}

export type Builder = (dirs: LayerDirs) => unknown

export interface TwinOptions {
  /** How many lower layers. Default 1. */
  lowers?: number
  /** Whether there is an upper layer (else a read-only union). Default true. */
  upper?: boolean
  /** Extra -o options for layerfs. */
  options?: readonly string[]
  /** More environment for the layerfs daemon. */
  env?: Record<string, string>
  /**
   * Put both sides' layers (upper and workdir included) on a fresh filesystem of this type
   * (scratch-fs.ts) instead of the scratch dir's own.
   */
  fs?: ScratchFsType
  /**
   * Rewrites the layerfs side's copy of the layers before it is mounted: the same layers in
   * another on-disk format the kernel cannot read (AUFS whiteouts, fuse-overlayfs's marks).
   */
  layerfsLayers?: (dirs: LayerDirs) => unknown
  /** Both sides mounted with metacopy=on (the kernel with redirect_dir=on, as always here). */
  metacopy?: boolean
}

export interface Side extends Mounted {
  /** 'layerfs' or 'overlay': the role in the comparison (kind says what really serves it). */
  role: 'layerfs' | 'overlay'
  /** The copy of LayerDirs.outside for this side. */
  outside: string
  /** The root holding this side's layers, for normalizing paths in output. */
  root: string
}

export interface Twin {
  layerfs: Side
  overlay: Side
  sides: [Side, Side]
  /** Runs fn on both sides at once; results in [layerfs, overlay] order. */
  both<T>(fn: (s: Side) => Promise<T>): Promise<[T, T]>
  /** Runs a bash script in each mount (cwd = mount point, $MNT and $OUT set). */
  sh(script: string, opts?: TwinRunOptions): Promise<[RunResult, RunResult]>
  /**
   * Runs a script on both sides and asserts the same exit code, stdout and stderr (paths
   * normalized, then `normalize` applied). Returns the results.
   */
  same(t: Assert, script: string, opts?: SameOptions): Promise<[RunResult, RunResult]>
  /** Asserts the merged views are the same (snapshotTree of both mounts). */
  sameTree(t: Assert, opts?: SnapshotOptions, msg?: string): Promise<[Snapshot, Snapshot]>
  /**
   * Asserts the upper layers on disk are the same (whiteouts, opaque and redirect xattrs and
   * all). By default leaves out the kernel's private bookkeeping (dropXattrs) and whiteouts'
   * link counts.
   */
  sameUpper(t: Assert, opts?: SnapshotOptions, msg?: string): Promise<[Snapshot, Snapshot]>
  /** Asserts each side's lower layers are byte-for-byte and inode-for-inode as before mounting. */
  lowersUnchanged(t: Assert): Promise<void>
  /** Runs the same syscalls in both mounts (cwd = mount point). */
  sys(ops: readonly Op[]): Promise<[SysResult[], SysResult[]]>
  /**
   * Runs syscalls on both sides; asserts layerfs gives what the kernel gives, and (when
   * `expected` is given) that the kernel gives what the story expects.
   */
  sameSys(t: Assert, ops: readonly Op[], expected?: readonly SysResult[], msg?: string): Promise<[SysResult[], SysResult[]]>
  /** Replaces this side's mount paths with $MNT, $OUT, $ROOT. */
  normalize(s: string, side: Side): string
}

/**
 * Kernel bookkeeping in upper whose values are host-specific (file handles, a random uuid) and
 * whose absence does not change what the kernel shows: origin (a file handle of the lower
 * inode), uuid (of the upper fs, on its root), impure (a dir holds copied-up or moved objects).
 */
export const KERNEL_PRIVATE_XATTRS = /^trusted\.overlay\.(origin|uuid|impure)$/

/**
 * The kernel hard-links one whiteout inode for many whiteouts (so they show nlink > 1); a
 * whiteout of its own is the same on-disk format. Forget whiteouts' link counts (and times:
 * a shared whiteout has the time it was first made).
 */
export function unshareWhiteouts(s: Snapshot): Snapshot {
  for (const e of Object.values(s)) {
    if (e.type === 'chardev' && e.rdev === '0:0') {
      delete e.nlink
      delete e.hardlinkOf
      delete e.mtime
    }
  }
  return s
}

type Hashed = Awaited<ReturnType<typeof hashTree>>

export interface TwinRunOptions extends RunOptions {
  /** Per-side environment (e.g. HOME in the side's outside dir), merged over env. */
  envFor?: (s: Side) => Record<string, string | undefined>
}

export interface SameOptions extends TwinRunOptions {
  /** Applied to stdout and stderr of both sides after path normalization. */
  normalize?: (s: string) => string
  /** Compare stderr too. Default true. */
  stderr?: boolean
  /** Also require this exit code. */
  code?: number
}

/** tap's test object (what `t.test(name, t => ...)` hands the callback). */
export type Assert = Test

/**
 * Builds the layers once, copies them twice, mounts one copy with layerfs (or the kernel when
 * LAYERFS_TEST_TARGETS=overlay) and one with kernel overlayfs.
 */
export async function twinMounts(t: Assert, build: Builder, opts: TwinOptions = {}): Promise<Twin> {
  const nLowers = opts.lowers ?? 1
  const withUpper = opts.upper ?? true
  const template = freshDir('template')
  const layerDirs = (root: string): LayerDirs => ({
    lowers: Array.from({ length: nLowers }, (_, i) => join(root, `lower${i}`)),
    ...(withUpper ? { upper: join(root, 'upper') } : {}),
    outside: join(root, 'outside'),
  })
  const tdirs = layerDirs(template)
  for (const d of [...tdirs.lowers, tdirs.outside, ...(tdirs.upper ? [tdirs.upper] : [])]) mkdirSync(d)
  await build(tdirs)
  const fsRoot = opts.fs ? await scratchFs(t, opts.fs) : undefined

  const templateHash = await hashTree(template, { identity: false })
  const makeSide = async (role: 'layerfs' | 'overlay', kind: MountKind): Promise<[Side, Hashed[]]> => {
    const root = fsRoot !== undefined ? mkdtempSync(join(fsRoot, `${role}-`)) : freshDir(role)
    const r = await run('cp', ['-a', '--', `${template}/.`, root])
    if (r.code !== 0) throw new Error(describeFailure(r))
    const copy = await hashTree(root, { identity: false })
    if (copy.hash !== templateHash.hash) {
      throw new Error(`cp -a did not copy the layers exactly:\n${diffSnapshots(templateHash.snapshot, copy.snapshot, ['template', 'copy']).join('\n')}`)
    }
    const d = layerDirs(root)
    if (role === 'layerfs') await opts.layerfsLayers?.(d)
    const spec: MountSpec = { lowers: d.lowers, ...(d.upper ? { upper: d.upper } : {}), ...(opts.options ? { options: opts.options } : {}),
      ...(opts.env ? { env: opts.env } : {}), ...(opts.metacopy ? { metacopy: true } : {}) }
    // The workdir must be on the upper's filesystem.
    if (d.upper && fsRoot !== undefined) mkdirSync((spec.work = join(root, 'work')))
    const lowerHashes = await Promise.all(d.lowers.map(l => hashTree(l)))
    const m = await mountKind(t, kind, spec)
    return [Object.assign(m, { role, outside: d.outside, root }), lowerHashes]
  }
  const [[lf, lfBefore], [ov, ovBefore]] = await Promise.all([makeSide('layerfs', subjectKind), makeSide('overlay', 'overlay')])
  const before = [lfBefore, ovBefore]

  const normalize = (s: string, side: Side): string =>
    s.split(side.mnt).join('$MNT').split(side.outside).join('$OUT').split(side.root).join('$ROOT')
  const both = <T>(fn: (s: Side) => Promise<T>): Promise<[T, T]> => Promise.all([fn(lf), fn(ov)])
  const twinSh = (script: string, o: TwinRunOptions = {}): Promise<[RunResult, RunResult]> =>
    both(s => sh(script, { cwd: s.mnt, ...o, env: { MNT: s.mnt, OUT: s.outside, ...o.env, ...o.envFor?.(s) } }))

  const twin: Twin = {
    layerfs: lf,
    overlay: ov,
    sides: [lf, ov],
    both,
    sh: twinSh,
    normalize,
    sys: ops => both(s => syscalls(s.mnt, ops)),
    async sameSys(t, ops, expected, msg = 'syscalls') {
      const [a, b] = await both(s => syscalls(s.mnt, ops))
      t.same(labelled(ops, a), labelled(ops, b), `${msg}: layerfs gives what the kernel gives`)
      if (expected) t.same(labelled(ops, b), labelled(ops, expected), `${msg}: the kernel gives what the story expects`)
      return [a, b]
    },
    async same(t, script, o = {}) {
      const res = await twinSh(script, o)
      const view = (r: RunResult, s: Side) => {
        const n = (x: string) => (o.normalize ?? (y => y))(normalize(x, s))
        return { code: r.code, signal: r.signal, timedOut: r.timedOut, stdout: n(r.stdout), ...(o.stderr === false ? {} : { stderr: n(r.stderr) }) }
      }
      const [a, b] = [view(res[0], lf), view(res[1], ov)]
      t.same(a, b, `same result on layerfs and overlay: ${script}`)
      if (o.code !== undefined) t.equal(b.code, o.code, `overlay exit code ${o.code}: ${script}`, { stdout: b.stdout, stderr: b.stderr })
      return res
    },
    async sameTree(t, o = {}, msg = 'merged views are the same') {
      const [a, b] = await both(s => snapshotTree(s.mnt, o))
      t.same(a, b, msg, { differences: diffSnapshots(a, b, ['layerfs', 'overlay']).slice(0, 40) })
      return [a, b]
    },
    async sameUpper(t, o = {}, msg = 'upper layers on disk are the same') {
      if (!lf.upper || !ov.upper) throw new Error('sameUpper: no upper layer')
      const opts = { dropXattrs: KERNEL_PRIVATE_XATTRS, ...o }
      const [a, b] = (await both(s => snapshotTree(s.upper!, opts))).map(unshareWhiteouts) as [Snapshot, Snapshot]
      t.same(a, b, msg, { differences: diffSnapshots(a, b, ['layerfs', 'overlay']).slice(0, 40) })
      return [a, b]
    },
    async lowersUnchanged(t) {
      const after = await Promise.all([lf, ov].map(s => Promise.all(s.lowers.map(l => hashTree(l)))))
      for (const [i, s] of [lf, ov].entries()) {
        for (const j of s.lowers.keys()) {
          const b = before[i]![j]!
          const a = after[i]![j]!
          const extra = a.hash === b.hash ? {} : { differences: diffSnapshots(b.snapshot, a.snapshot, ['before', 'after']).slice(0, 40) }
          t.equal(a.hash, b.hash, `${s.role}: lower${j} unchanged`, extra)
        }
      }
    },
  }
  return twin
}
