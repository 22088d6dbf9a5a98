// The stacking mode (issue 12): layers stacked the way container builds stack them
// (containerd's and BuildKit's overlay snapshotters, unionmount-testsuite's rotation mode).
// Round after round, each side mounts a fresh upper over all its earlier uppers:
//
// 1. Build every case's fixture (profile 'stacking') once, copied exact to side A (layerfs)
//    and side B (kernel overlayfs), as engine.ts does.
// 2. Each round: mount a fresh upper and workdir over the side's stack, compare the merged
//    views before any op ('pushdown'), run the round's ops of every case (one syscalls.py
//    process per case and side), compare the calls, the merged trees, the round's upper on
//    disk and a readdir of every directory; unmount; the upper becomes the top lower layer.
// 3. The final stacks, read-only: layerfs on A's and the kernel on B's ('final'), then the
//    other way round: the kernel on A's layers must show what layerfs showed there and layerfs
//    on B's what the kernel showed, raw inode numbers included ('cross-*').
// 4. `layer export` of every upper of each final stack (the layers below it as --lower),
//    `layer import` of each tarball: the kernel over the imported layers must show what it
//    shows over the uppers ('export'; inode numbers and hard links across layers aside).
// 5. Every lower layer is byte- and inode-identical at the end to when it became a lower.
//
// A difference of a merged tree (path and field) is reported in the round it first shows, not
// again in every later round.
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Mounted, TeardownHost } from '../../helpers/mount.js'
import { mountKind } from '../../helpers/mount.js'
import { syscalls, type Op, type SysResult } from '../../helpers/syscalls.js'
import { diffSnapshots, hashTree, snapshotTree, type Snapshot } from '../../helpers/tree.js'
import { exportLayer } from '../../../src/image/layer-export.js'
import { importLayer } from '../../../src/image/layer-import.js'
import { compareCalls, compareTrees, comparableTree, unshareWhiteouts, type TreeDiff } from './compare.js'
import { alive, buildLayers, caseDir, inos, pool, readdirAll, type Difference, type Where } from './engine.js'
import type { Features } from './features.js'

export interface StackedCase {
  /** Label for reports (e.g. "seed 17"). */
  label: string
  /** The ops of each round, bottom-most layer first. */
  rounds: Op[][]
}

type Results = { layerfs: SysResult[]; overlay: SysResult[] }

export interface StackedOutcome {
  label: string
  dir: string
  diffs: Difference[]
  /** Raw results of each round's ops, per side (undefined where the round's syscalls failed). */
  results: Array<Results | undefined>
}

export interface StackOptions {
  /** Cases run at once on each side. Default 4. */
  jobs?: number
  /** Per-case syscalls timeout (ms). Default 60 s. */
  timeout?: number
  /** Progress lines. */
  log?: (s: string) => void
  features?: Features
  /**
   * Every mount with metacopy=on (the final stacks read-only too: a lower metacopy file is
   * EPERM without it). No export step: `layer export` refuses metacopy files.
   */
  metacopy?: boolean
}

/** One side's stack: its root dir and its lower layers, top-most first. */
interface Stack {
  root: string
  lowers: string[]
}

/**
 * Runs every case's rounds on layerfs (side A) and kernel overlayfs (side B) and returns each
 * case's differences. A case with fewer rounds than the longest gets empty rounds (empty
 * layers) at its end. Every mount is registered with host and off again when this returns.
 */
export async function runStacked(host: TeardownHost, cases: readonly StackedCase[], opts: StackOptions = {}): Promise<StackedOutcome[]> {
  const log = opts.log ?? (() => {})
  const jobs = opts.jobs ?? 4
  const timeout = opts.timeout ?? 60_000
  const nRounds = Math.max(0, ...cases.map(c => c.rounds.length))
  const outcomes: StackedOutcome[] = cases.map((c, i) => ({ label: c.label, dir: caseDir(i), diffs: [], results: [] }))
  /** Per case: the merged-tree differences (path, field) reported so far. */
  const seenTree = cases.map(() => new Set<string>())
  const add = (i: number, where: Where, round: number | undefined, sig: string, detail: Difference['detail']): void => {
    outcomes[i]!.diffs.push({ where, sig: `${where}:${sig}`, detail, ...(round !== undefined ? { round } : {}) })
  }
  const addAll = (where: Where, round: number | undefined, sig: string, detail: string): void => cases.forEach((_, i) => add(i, where, round, sig, detail))
  const addExport = (i: number, ds: TreeDiff[]): void => ds.forEach(d => add(i, 'export', undefined, d.sig, d))
  const addTree = (i: number, where: Where, round: number | undefined, ds: TreeDiff[]): void => {
    for (const d of ds) {
      const k = `${d.path}\0${d.field}`
      if (seenTree[i]!.has(k)) continue
      seenTree[i]!.add(k)
      add(i, where, round, d.sig, d)
    }
  }

  const [A0, B0] = await buildLayers(cases.length, opts.features ?? {}, 'stacking')
  const stacks: [Stack, Stack] = [{ root: A0.root, lowers: [...A0.lowers] }, { root: B0.root, lowers: [...B0.lowers] }]
  /** Every lower layer's hash when it became a lower, per side. */
  const lowerHashes: Array<Map<string, Awaited<ReturnType<typeof hashTree>>>> = [new Map(), new Map()]
  await Promise.all(stacks.map(async (s, k) => {
    for (const l of s.lowers) lowerHashes[k]!.set(l, await hashTree(l))
  }))
  log(`layers built for ${cases.length} cases, ${nRounds} rounds`)

  const down = async (m: Mounted | undefined, what: string, round?: number): Promise<void> => {
    if (!m) return
    try {
      await m.unmount()
    } catch (e) {
      addAll('error', round, `unmount ${what}`, String((e as Error).message).slice(0, 2000))
    }
  }
  /** Mounts a stack: with a fresh upper and workdir for round r, read-only without. */
  const mount = async (kind: 'layerfs' | 'overlay', s: Stack, r?: number): Promise<Mounted> => {
    const metacopy = opts.metacopy ?? opts.features?.metacopy ?? false
    if (r === undefined) return mountKind(host, kind, { lowers: s.lowers, metacopy })
    const upper = join(s.root, `u${r}`)
    const work = join(s.root, `w${r}`)
    mkdirSync(upper)
    mkdirSync(work)
    return mountKind(host, kind, { lowers: s.lowers, upper, work, metacopy })
  }
  /** Mounts both; on a failure, reports it for every case and takes off what did mount. */
  const mountBoth = async (kinds: ['layerfs' | 'overlay', 'layerfs' | 'overlay'], r: number | undefined, what: string): Promise<[Mounted, Mounted] | undefined> => {
    const got = await Promise.allSettled([mount(kinds[0], stacks[0], r), mount(kinds[1], stacks[1], r)])
    const failed = got.filter((g): g is PromiseRejectedResult => g.status === 'rejected')
    if (!failed.length) return got.map(g => (g as PromiseFulfilledResult<Mounted>).value) as [Mounted, Mounted]
    for (const f of failed) addAll('error', r, `mount ${what}`, String((f.reason as Error).message).slice(0, 2000))
    for (const g of got) if (g.status === 'fulfilled') await down(g.value, what, r)
    return undefined
  }

  let broken = false
  for (let r = 1; r <= nRounds && !broken; r++) {
    const ms = await mountBoth(['layerfs', 'overlay'], r, `round ${r}`)
    if (!ms) {
      broken = true
      break
    }
    const [lf, ov] = ms
    log(`round ${r}: mounted`)
    try {
      // The stacked layers as they come, before this round's ops.
      await pool(cases, jobs, async (_, i) => {
        const view = (m: Mounted): Promise<Snapshot | Error> => snapshotTree(join(m.mnt, caseDir(i)), { identity: true, dirNlink: true }).catch(e => e as Error)
        const [a, b] = await Promise.all([view(lf), view(ov)])
        if (a instanceof Error || b instanceof Error) add(i, 'error', r, 'pushdown snapshot failed', String((a instanceof Error ? a : (b as Error)).message))
        else addTree(i, 'pushdown', r, compareTrees(comparableTree(a), comparableTree(b), 'merged'))
      })
      log(`round ${r}: stacked views compared`)
      await pool(cases, jobs, async (c, i) => {
        const ops = c.rounds[r - 1] ?? []
        if (!ops.length) return
        const dir = `${caseDir(i)}/r`
        let res: [SysResult[], SysResult[]]
        try {
          res = await Promise.all([lf, ov].map(m => syscalls(join(m.mnt, dir), ops, { timeout }))) as [SysResult[], SysResult[]]
        } catch (e) {
          add(i, 'error', r, 'syscalls failed', String((e as Error).message).slice(0, 2000))
          return
        }
        outcomes[i]!.results[r - 1] = { layerfs: res[0], overlay: res[1] }
        for (const d of compareCalls(ops, res[0], res[1])) add(i, 'calls', r, d.sig, d)
      })
      log(`round ${r}: ops run`)
      const origins = stacks.map((s, k) => originIndex(s, lowerHashes[k]!))
      const snap = async (m: Mounted, k: number, dir: string): Promise<{ merged: Snapshot; upper: Snapshot }> => ({
        merged: await snapshotTree(join(m.mnt, dir), { identity: true, dirNlink: true }),
        upper: unshareWhiteouts(withOrigins(await snapshotTree(join(m.upper!, dir), { dropXattrs: /^trusted\.overlay\.(uuid|impure)$/ }).catch(() => ({}) as Snapshot), origins[k]!)),
      })
      await pool(cases, jobs, async (_, i) => {
        const [a, b] = await Promise.all([snap(lf, 0, caseDir(i)), snap(ov, 1, caseDir(i))])
        addTree(i, 'tree', r, compareTrees(comparableTree(a.merged), comparableTree(b.merged), 'merged'))
        for (const d of compareTrees(a.upper, b.upper, 'upper')) add(i, 'upper', r, d.sig, d)
        const rd = await readdirAll(lf, ov, caseDir(i), a.merged, timeout)
        if (typeof rd === 'string') add(i, 'error', r, 'readdir failed', rd)
        else for (const d of rd) add(i, 'readdir', r, d.sig, d)
      })
      log(`round ${r}: trees, uppers and readdirs compared`)
      if (!(await alive(lf))) {
        addAll('error', r, 'layerfs mount dead after ops', 'stat of the mount point failed (daemon crashed?)')
        broken = true
      }
    } finally {
      await down(lf, `layerfs (round ${r})`, r)
      await down(ov, `overlay (round ${r})`, r)
    }
    // The round's upper becomes the top lower layer; its workdir goes.
    for (const [k, s] of stacks.entries()) {
      const upper = join(s.root, `u${r}`)
      rmSync(join(s.root, `w${r}`), { recursive: true, force: true })
      s.lowers.unshift(upper)
      lowerHashes[k]!.set(upper, await hashTree(upper))
    }
    log(`round ${r} of ${nRounds} done`)
  }

  if (!broken && nRounds > 0) {
    // The final stacks read-only, each by its own implementation...
    const own = await mountBoth(['layerfs', 'overlay'], undefined, 'final stacks')
    const views: Array<[Snapshot, Snapshot] | undefined> = []
    if (own) {
      try {
        for (const [i] of cases.entries()) {
          const [a, b] = await Promise.all(own.map(m => snapshotTree(join(m.mnt, caseDir(i)), { identity: true, dirNlink: true })))
          views[i] = [a!, b!]
          addTree(i, 'final', undefined, compareTrees(comparableTree(a!), comparableTree(b!), 'merged'))
          const rd = await readdirAll(own[0], own[1], caseDir(i), a!, timeout)
          if (typeof rd === 'string') add(i, 'error', undefined, 'final readdir failed', rd)
          else for (const d of rd) add(i, 'final-readdir', undefined, d.sig, d)
        }
      } finally {
        await down(own[0], 'layerfs (final)')
        await down(own[1], 'overlay (final)')
      }
    }
    // ...then by the other one: the kernel on layerfs's layers (A), layerfs on the kernel's (B).
    const cross = own && (await mountBoth(['overlay', 'layerfs'], undefined, 'final stacks, crossed'))
    /** What the kernel shows over each side's final stack. */
    const kernelViews: Array<Array<Snapshot | undefined>> = [[], views.map(v => v?.[1])]
    if (cross) {
      const [ovA, lfB] = cross
      try {
        for (const [i] of cases.entries()) {
          const v = views[i]
          if (!v) continue
          const [onA, onB] = await Promise.all([ovA, lfB].map(m => snapshotTree(join(m.mnt, caseDir(i)), { identity: true, dirNlink: true })))
          kernelViews[0]![i] = onA
          for (const d of compareTrees(comparableTree(v[0]), comparableTree(onA!), 'kernel on layerfs layers')) add(i, 'cross-kernel', undefined, d.sig, d)
          for (const d of compareTrees(comparableTree(onB!), comparableTree(v[1]), 'layerfs on kernel layers')) add(i, 'cross-layerfs', undefined, d.sig, d)
          const [ia, ka, ib, kb] = [inos(v[0]), inos(onA!), inos(onB!), inos(v[1])]
          for (const p of Object.keys(ia)) if (p in ka && ia[p] !== ka[p]) add(i, 'cross-ino', undefined, 'st_ino A', { path: p, field: 'ino (layerfs vs kernel, layerfs layers)', layerfs: ia[p], overlay: ka[p], sig: 'ino' })
          for (const p of Object.keys(ib)) if (p in kb && ib[p] !== kb[p]) add(i, 'cross-ino', undefined, 'st_ino B', { path: p, field: 'ino (layerfs vs kernel, kernel layers)', layerfs: ib[p], overlay: kb[p], sig: 'ino' })
          const rd = await readdirAll(lfB, ovA, caseDir(i), onB!, timeout)
          if (typeof rd === 'string') add(i, 'error', undefined, 'cross readdir failed', rd)
          else for (const d of rd) add(i, 'cross-readdir', undefined, d.sig, d)
        }
        if (!(await alive(lfB))) addAll('error', undefined, 'layerfs mount (kernel layers) dead', 'stat of the mount point failed (daemon crashed?)')
      } finally {
        await down(ovA, 'overlay (crossed)')
        await down(lfB, 'layerfs (crossed)')
      }
      if (!(opts.metacopy ?? opts.features?.metacopy)) for (const [k, s] of stacks.entries()) await checkExport(host, s, nRounds, k ? 'kernel layers' : 'layerfs layers', kernelViews[k]!, addExport, addAll)
    }
  }

  // Every lower layer as it was when it became one.
  for (const [k, side] of ['A', 'B'].entries()) {
    for (const [layer, before] of lowerHashes[k]!) {
      const after = await hashTree(layer)
      if (after.hash === before.hash) continue
      const name = layer.slice(stacks[k]!.root.length + 1)
      for (const line of diffSnapshots(before.snapshot, after.snapshot, ['before', 'after'])) {
        const i = Number(/^c(\d+)/.exec(line)?.[1] ?? NaN)
        const detail = `side ${side} ${name}: ${line}`
        if (Number.isNaN(i)) addAll('lowers', undefined, 'changed', detail)
        else add(i, 'lowers', undefined, 'changed', detail)
      }
    }
  }
  return outcomes
}

/** Inode number -> 'layer:path' of each object of a side's lower layers (the first path of a hard-linked one). */
function originIndex(s: Stack, hashes: ReadonlyMap<string, { snapshot: Snapshot }>): Map<string, string> {
  const out = new Map<string, string>()
  for (const layer of s.lowers) {
    const name = layer.slice(s.root.length + 1)
    for (const [p, e] of Object.entries(hashes.get(layer)?.snapshot ?? {})) if (e.ino !== undefined && !out.has(e.ino)) out.set(e.ino, `${name}:${p}`)
  }
  return out
}

/**
 * trusted.overlay.origin is a file handle (struct ovl_fb: a header of 21 bytes, then the
 * filesystem's handle), different in the two copies of the layers: each becomes the layer and
 * path of the object it names, which must be the same on both sides. Handle type 1 as ext4
 * makes it (8 bytes: the 32-bit inode, the generation) and as tmpfs does (12 bytes: the
 * generation, the 64-bit inode in two halves).
 */
function withOrigins(s: Snapshot, index: ReadonlyMap<string, string>): Snapshot {
  for (const e of Object.values(s)) {
    const hex = e.xattrs?.['trusted.overlay.origin']
    if (hex === undefined) continue
    const b = Buffer.from(hex, 'hex')
    const fid = b[1] === 0xfb && b[4] === 1 ? b.subarray(21) : Buffer.alloc(0)
    const ino = fid.length === 8 ? String(fid.readUInt32LE(0))
      : fid.length === 12 ? String(BigInt(fid.readUInt32LE(4)) | (BigInt(fid.readUInt32LE(8)) << 32n))
      : undefined
    e.xattrs!['trusted.overlay.origin'] = ino === undefined ? `a handle of ${b.length} bytes, type ${b[4]}` : (index.get(ino) ?? `inode ${ino}, in no lower layer`)
  }
  return s
}

/**
 * Exports every upper of a final stack as a layer tarball (the layers below it as its lowers),
 * imports each into a layer of its own, mounts the imports (over the original lowers) with the
 * kernel read-only and compares each case's view with `want`, the kernel's view of the stack.
 * A tarball cannot hold a hard link to a file in another layer: link counts and hard-link
 * partners are left out (the layer-export test checks hard links within a layer).
 */
async function checkExport(
  host: TeardownHost,
  s: Stack,
  nRounds: number,
  tag: string,
  want: ReadonlyArray<Snapshot | undefined>,
  report: (i: number, ds: TreeDiff[]) => void,
  reportAll: (where: Where, round: number | undefined, sig: string, detail: string) => void,
): Promise<void> {
  const imported: string[] = []
  try {
    for (let j = 0; j < nRounds; j++) {
      const round = nRounds - j // s.lowers[j] is the upper of this round
      const tar = join(s.root, `export${round}.tar`)
      await exportLayer(s.lowers[j]!, tar, { lowers: s.lowers.slice(j + 1) })
      const dir = join(s.root, `import${round}`)
      await importLayer(tar, dir)
      rmSync(tar)
      imported.push(dir)
    }
  } catch (e) {
    reportAll('error', undefined, `export of the ${tag} failed`, String((e as Error).stack ?? e).slice(0, 2000))
    return
  }
  const m = await mountKind(host, 'overlay', { lowers: [...imported, ...s.lowers.slice(nRounds)] }).catch(e => e as Error)
  if (m instanceof Error) {
    reportAll('error', undefined, `kernel mount of the ${tag} exported`, m.message.slice(0, 2000))
    return
  }
  const plain = (x: Snapshot): Snapshot => {
    const out = comparableTree(x)
    for (const e of Object.values(out)) {
      delete e.nlink
      delete e.hardlinkOf
    }
    return out
  }
  try {
    for (const [i, w] of want.entries()) {
      if (!w) continue
      const got = await snapshotTree(join(m.mnt, caseDir(i)), { identity: true })
      report(i, compareTrees(plain(got), plain(w), `${tag} exported`))
    }
  } finally {
    await m.unmount().catch(e => reportAll('error', undefined, 'unmount (exported layers)', String((e as Error).message)))
  }
}

/** The rounds a case runs: the same list cut after the first call difference of sig (later ops and rounds cannot matter to it). */
export function cutAfterFirstStackedCallDiff(c: StackedCase, oc: StackedOutcome, sig: string): StackedCase {
  const d = oc.diffs.find(x => x.sig === sig)
  if (!d || d.round === undefined) return c
  const rounds = c.rounds.slice(0, d.round).map(ops => [...ops])
  if (d.where === 'calls' && typeof d.detail === 'object' && 'index' in d.detail) rounds[d.round - 1] = rounds[d.round - 1]!.slice(0, d.detail.index + 1)
  return { ...c, rounds }
}
