// Minimizing a failing case: drop ops while the case still fails the same way (the same
// difference signature). Each round's candidates run together in one pair of mounts (in the
// stacking mode, one series of mounts).
import type { Op } from '../../helpers/syscalls.js'
import type { TeardownHost } from '../../helpers/mount.js'
import { runCases, type Case, type CaseOutcome, type Difference, type Where } from './engine.js'
import type { Features } from './features.js'
import { runStacked, type StackedCase, type StackedOutcome } from './stacking.js'

type Item = { phase: 1 | 2; op: Op }

const toCase = (label: string, items: readonly Item[]): Case => ({
  label,
  ops: items.filter(x => x.phase === 1).map(x => x.op),
  more: items.filter(x => x.phase === 2).map(x => x.op),
})

/** Where-kinds that need the swapped mounts. */
const AFTER_SWAP: readonly Where[] = ['swap-kernel', 'swap-layerfs', 'swap-ino', 'swap-readdir', 'calls2', 'tree2', 'upper2', 'readdir2']

export interface MinimizeOptions {
  /** Cases per pair of mounts. Default 40. */
  batch?: number
  log?: (s: string) => void
  /** When given, a candidate fails only by differences this leaves unexplained (known.ts). */
  classify?: (c: Case, oc: CaseOutcome) => { unexplained: CaseOutcome['diffs'] }
  /** Switches the case was generated with. */
  features?: Features
  /** A fresh teardown scope per batch (mounts are unmounted by runCases itself; this catches the rest). */
  host: () => { host: TeardownHost; close: () => Promise<void> }
}

/** Runs candidate cases; a crash or hang in a shared batch is re-run case by case, so it is blamed right. */
async function evaluate(cands: Case[], sig: string, swap: boolean, o: MinimizeOptions, all = false): Promise<boolean[]> {
  const batch = o.batch ?? 40
  const out: boolean[] = []
  for (let i = 0; i < cands.length; i += batch) {
    const chunk = cands.slice(i, i + batch)
    const outcomes = await withHost(o, h => runCases(h, chunk, { swap, ...(o.features ? { features: o.features } : {}) }))
    const shared = chunk.length > 1 && outcomes.some(x => x.diffs.some(d => d.where === 'error'))
    const judge = (oc: CaseOutcome, c: Case): boolean => fails(o.classify ? { ...oc, diffs: o.classify(c, oc).unexplained } : oc, sig)
    for (const [k, oc] of outcomes.entries()) {
      if (shared && oc.diffs.some(d => d.where === 'error')) {
        const [alone] = await withHost(o, h => runCases(h, [chunk[k]!], { swap, ...(o.features ? { features: o.features } : {}) }))
        out.push(judge(alone!, chunk[k]!))
      } else out.push(judge(oc, chunk[k]!))
    }
    if (!all && out.some(Boolean)) break // the caller wants only the first failing candidate
  }
  return out
}

async function withHost<T>(o: { host: MinimizeOptions['host'] }, fn: (h: TeardownHost) => Promise<T>): Promise<T> {
  const { host, close } = o.host()
  try {
    return await fn(host)
  } finally {
    await close()
  }
}

export const fails = (oc: { diffs: readonly Difference[] }, sig: string): boolean => oc.diffs.some(d => d.sig === sig)

/**
 * Minimizes c's ops (both phases) while it still shows `sig`, using the batch: every candidate
 * of a round runs in the same pair of mounts (shrink() says how).
 */
export async function minimize(c: Case, sig: string, o: MinimizeOptions): Promise<Case> {
  const where = sig.split(':')[0] as Where
  const swap = AFTER_SWAP.includes(where) || where === 'error'
  const items: Item[] = [...c.ops.map(op => ({ phase: 1 as const, op })), ...(swap ? c.more.map(op => ({ phase: 2 as const, op })) : [])]
  let round = 0
  const tryAll = async (cands: Item[][], all: boolean): Promise<boolean[]> => {
    round++
    return evaluate(cands.map((x, k) => toCase(`${c.label} min ${round}.${k}`, x)), sig, swap, o, all)
  }
  return toCase(c.label, await shrink(items, tryAll, o.log ?? (() => {})))
}

/** Candidate lists of items -> whether each still fails; `all` false: stop at the first that does. */
export type TryAll<T> = (cands: T[][], all: boolean) => Promise<boolean[]>

/**
 * Shrinks a failing list of items (each holding an op) while tryAll says it still fails:
 * 1. The shortest failing prefix, by two rounds of evenly spaced cut points.
 * 2. Chunk removal (ddmin-like): split into n chunks, try dropping each; drop every chunk whose
 *    removal alone kept the failure if dropping them all together still fails (else the first);
 *    when no chunk can go, halve the chunks, down to single ops. The result is 1-minimal.
 * 3. Shorter write data, if the failure stays.
 */
export async function shrink<T extends { op: Op }>(start: readonly T[], tryAll: TryAll<T>, log: (s: string) => void): Promise<T[]> {
  let items = [...start]

  // 1. Shortest failing prefix.
  let lo = 0 // longest prefix known to pass
  let hi = items.length // shortest prefix known to fail
  for (let pass = 0; pass < 3 && hi - lo > 1; pass++) {
    const step = Math.max(1, Math.ceil((hi - lo) / 24))
    const cuts: number[] = []
    for (let k = lo + step; k < hi; k += step) cuts.push(k)
    const res = await tryAll(cuts.map(k => items.slice(0, k)), true)
    const first = res.findIndex(Boolean)
    if (first >= 0) {
      hi = cuts[first]!
      lo = first > 0 ? cuts[first - 1]! : lo
    } else lo = cuts[cuts.length - 1] ?? lo
  }
  items = items.slice(0, hi)
  log(`  prefix: ${items.length} ops`)

  // 2. Chunk removal.
  let n = Math.min(8, items.length)
  while (items.length > 1) {
    const size = Math.ceil(items.length / n)
    const chunks: Array<[number, number]> = []
    for (let i = 0; i < items.length; i += size) chunks.push([i, Math.min(i + size, items.length)])
    const without = (drop: ReadonlyArray<[number, number]>): T[] => items.filter((_, i) => !drop.some(([a, b]) => i >= a && i < b))
    const res = await tryAll(chunks.map(ch => without([ch])), true)
    const ok = chunks.filter((_, k) => res[k])
    if (ok.length) {
      let next = without([ok[0]!])
      if (ok.length > 1) {
        const [together] = await tryAll([without(ok)], false)
        if (together) next = without(ok)
      }
      items = next
      n = Math.min(n, items.length)
    } else if (size > 1) {
      n = Math.min(n * 2, items.length)
    } else break
    log(`  chunks of ${size}: ${items.length} ops`)
  }

  // 3. Shorter data.
  if (items.some(x => typeof x.op.data === 'string' && x.op.data.length > 8)) {
    const short = items.map(x => (typeof x.op.data === 'string' && x.op.data.length > 8 ? { ...x, op: { ...x.op, data: x.op.data.slice(0, 8) } } : x))
    const [ok] = await tryAll([short], false)
    if (ok) items = short
  }
  return items
}

/** Cuts a case after the op of its first call difference (later ops cannot matter to it). */
export function cutAfterFirstCallDiff(c: Case, oc: CaseOutcome, sig: string): Case {
  const d = oc.diffs.find(x => x.sig === sig)
  if (!d || typeof d.detail !== 'object' || !('index' in d.detail)) return c
  const k = d.detail.index
  return d.where === 'calls' ? { ...c, ops: c.ops.slice(0, k + 1), more: [] } : d.where === 'calls2' ? { ...c, more: c.more.slice(0, k + 1) } : c
}

export interface MinimizeStackedOptions {
  /** Cases per series of mounts. Default 40. */
  batch?: number
  log?: (s: string) => void
  classify?: (c: StackedCase, oc: StackedOutcome) => { unexplained: StackedOutcome['diffs'] }
  features?: Features
  host: () => { host: TeardownHost; close: () => Promise<void> }
}

type RoundItem = { round: number; op: Op }

const toStacked = (label: string, items: readonly RoundItem[], rounds: number): StackedCase => ({
  label,
  rounds: Array.from({ length: rounds }, (_, r) => items.filter(x => x.round === r).map(x => x.op)),
})

/**
 * Runs stacked candidates; those with the same number of rounds share one series of mounts.
 * A crash or hang in a shared batch is re-run case by case, so it is blamed right.
 */
async function evaluateStacked(cands: StackedCase[], sig: string, o: MinimizeStackedOptions, all: boolean): Promise<boolean[]> {
  const batch = o.batch ?? 40
  const out: boolean[] = new Array(cands.length).fill(false)
  const judge = (oc: StackedOutcome, c: StackedCase): boolean => fails(o.classify ? { ...oc, diffs: o.classify(c, oc).unexplained } : oc, sig)
  const groups = new Map<number, number[]>()
  cands.forEach((c, k) => groups.set(c.rounds.length, [...(groups.get(c.rounds.length) ?? []), k]))
  for (const ks of groups.values()) {
    for (let i = 0; i < ks.length; i += batch) {
      const idx = ks.slice(i, i + batch)
      const chunk = idx.map(k => cands[k]!)
      const run = (cs: StackedCase[]) => withHost(o, h => runStacked(h, cs, o.features ? { features: o.features } : {}))
      const outcomes = await run(chunk)
      const shared = chunk.length > 1 && outcomes.some(x => x.diffs.some(d => d.where === 'error'))
      for (const [j, oc] of outcomes.entries()) {
        if (shared && oc.diffs.some(d => d.where === 'error')) {
          const [alone] = await run([chunk[j]!])
          out[idx[j]!] = judge(alone!, chunk[j]!)
        } else out[idx[j]!] = judge(oc, chunk[j]!)
      }
      if (!all && out.some(Boolean)) return out
    }
  }
  return out
}

/**
 * Minimizes a stacked case while it still shows `sig`: first its ops (shrink(), the rounds
 * kept), then its rounds: trailing empty rounds go, then each empty round, then each boundary
 * between two rounds (the two merged into one layer), as long as it still fails.
 */
export async function minimizeStacked(c: StackedCase, sig: string, o: MinimizeStackedOptions): Promise<StackedCase> {
  const log = o.log ?? (() => {})
  let n = c.rounds.length
  let k = 0
  const run = (cands: StackedCase[], all: boolean) => {
    k++
    return evaluateStacked(cands.map((x, j) => ({ ...x, label: `${c.label} min ${k}.${j}` })), sig, o, all)
  }
  const start: RoundItem[] = c.rounds.flatMap((ops, round) => ops.map(op => ({ round, op })))
  const items = await shrink(start, (cands, all) => run(cands.map(x => toStacked(c.label, x, n)), all), log)
  let rounds = toStacked(c.label, items, n).rounds

  // Fewer rounds: first the empty ones at the end, then any empty one, then boundaries.
  let last = rounds.length
  while (last > 1 && !rounds[last - 1]!.length) last--
  if (last < rounds.length) {
    const [ok] = await run([{ label: c.label, rounds: rounds.slice(0, last) }], false)
    if (ok) rounds = rounds.slice(0, last)
  }
  for (let r = rounds.length - 1; r >= 0 && rounds.length > 1; r--) {
    // Round r empty: drop it; else merge it into the round before (one layer instead of two).
    const merged = rounds[r]!.length
      ? r > 0 ? [...rounds.slice(0, r - 1), [...rounds[r - 1]!, ...rounds[r]!], ...rounds.slice(r + 1)] : undefined
      : [...rounds.slice(0, r), ...rounds.slice(r + 1)]
    if (!merged) continue
    const [ok] = await run([{ label: c.label, rounds: merged }], false)
    if (ok) rounds = merged
  }
  n = rounds.length
  log(`  rounds: ${n}`)
  return { label: c.label, rounds }
}
