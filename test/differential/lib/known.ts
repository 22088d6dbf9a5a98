// Differences between layerfs and kernel overlayfs that are known and understood. The
// differential test reports them as TODO instead of failing; anything not explained here fails.
// Each rule is narrow (a field, a direction, a context) so that it cannot hide other bugs.
//
// Two kinds:
// - 'layerfs-bug': reported with a minimized reproduction; its regression test is committed
//   with the fix, and then the rule goes (the test's TODO line says it still matches).
// - 'kernel-quirk': the kernel does something that layerfs rightly does not copy.
//
// Bugs whose trigger can simply be left out are switched off in features.ts instead (no rule).
import type { Op, SysResult } from '../../helpers/syscalls.js'
import type { CallDiff, Norm, TreeDiff } from './compare.js'
import type { Case, CaseOutcome, Difference, Where } from './engine.js'
import type { StackedCase, StackedOutcome } from './stacking.js'

export interface Known {
  id: string
  kind: 'layerfs-bug' | 'kernel-quirk'
  what: string
  /** The regression test that will pin the fix (written, not committed while it fails). */
  regress?: string
  matches(d: Difference, ctx: Context): boolean
}

export interface Context {
  c: Case
  oc: CaseOutcome
}

const isTree = (d: Difference): d is Difference & { detail: TreeDiff } => typeof d.detail === 'object' && !('index' in d.detail)
const isCall = (d: Difference): d is Difference & { detail: CallDiff } => typeof d.detail === 'object' && 'index' in d.detail
const NOW = 'now'

/** 'r' and 'r/a', 'r/a/b', ... for op path a/b (tree paths are relative to the case's dir, whose ops run in r). */
function withAncestors(path: string): string[] {
  const out = ['r']
  let p = 'r'
  for (const part of path.split('/')) {
    if (part === '.' || part === '') continue
    p += '/' + part
    out.push(p)
  }
  return out
}

/**
 * A rename's path as the kernel resolved it: symlinks among the parent components followed
 * (the last component is the name itself). Relative targets only, as the generator makes.
 */
function resolveParents(path: string, links: ReadonlyMap<string, string>): string {
  const parts = path.split('/').filter(x => x !== '' && x !== '.')
  const name = parts.pop()
  let dir: string[] = []
  for (let hops = 0; parts.length && hops < 40; hops++) {
    const next = parts.shift()!
    const p = [...dir, next].join('/')
    const target = links.get(p)
    if (target === undefined) {
      if (next === '..') dir.pop()
      else dir.push(next)
      continue
    }
    parts.unshift(...target.split('/').filter(x => x !== '' && x !== '.'))
  }
  dir = dir.filter(Boolean)
  return name === undefined ? dir.join('/') : [...dir, name].join('/')
}

/**
 * What the kernel touched in a rename that failed with ENOTEMPTY on both sides (the source dir
 * and its ancestors), where those dirs are after the op lists: in one pass, each moves with every
 * rename that succeeded afterwards (its paths resolved through the symlinks made so far), as
 * the kernel's copies and marks move with their dirs.
 */
function touchedByFailedRenames(lists: ReadonlyArray<readonly [readonly Op[], Results | undefined]>): Set<string> {
  const touched = new Set<string>()
  const links = new Map<string, string>()
  for (const [ops, res] of lists) {
    ops.forEach((op, i) => {
      const k = res?.overlay[i]
      const l = res?.layerfs[i]
      if (op.op === 'symlink' && k && 'ok' in k) links.set(op.path!, String(op.target))
      if ((op.op !== 'rename' && op.op !== 'renameat2') || !k) return
      if ('errno' in k) {
        if (op.op === 'rename' && k.errno === 'ENOTEMPTY' && l && 'errno' in l && l.errno === 'ENOTEMPTY') for (const p of withAncestors(op.path!)) touched.add(p)
        return
      }
      const a = withAncestors(resolveParents(op.path!, links)).pop()!
      const b = withAncestors(resolveParents(String(op.to), links)).pop()!
      // RENAME_EXCHANGE moves both ways.
      const ways: Array<[string, string]> = String(op.flags ?? '').includes('EXCHANGE') ? [[a, b], [b, a]] : [[a, b]]
      const moved: string[] = []
      for (const [from, to] of ways) {
        for (const p of [...touched]) {
          if (moved.includes(p) || (p !== from && !p.startsWith(from + '/'))) continue
          touched.delete(p)
          const q = to + p.slice(from.length)
          touched.add(q)
          moved.push(q)
        }
      }
    })
  }
  return touched
}

/** Indices of ops (in `ops` or `more`) that are a rename failing with errno on both sides. */
type Results = { layerfs: SysResult[]; overlay: SysResult[] }

function failedRenames(ops: readonly Op[], res: Results | undefined, errno: string): number[] {
  if (!res) return []
  const out: number[] = []
  ops.forEach((op, i) => {
    const a = res.layerfs[i]
    const b = res.overlay[i]
    if (op.op === 'rename' && a && b && 'errno' in a && 'errno' in b && a.errno === errno && b.errno === errno) out.push(i)
  })
  return out
}

const value = (n: Norm): Record<string, unknown> | undefined =>
  'ok' in n && n.value && typeof n.value === 'object' && !Array.isArray(n.value) ? (n.value as Record<string, unknown>) : undefined

/**
 * A readdir difference where only d_ino differs, and only because the kernel's d_ino is not the
 * entry's st_ino (layerfs's is).
 */
function kernelDinoOff(d: Difference): boolean {
  if (!isCall(d) || d.detail.op.op !== 'readdir') return false
  const a = d.detail.layerfs
  const b = d.detail.overlay
  if (!('ok' in a) || !('ok' in b) || !Array.isArray(a.value) || !Array.isArray(b.value)) return false
  const ea = a.value as Array<Record<string, unknown>>
  const eb = b.value as Array<Record<string, unknown>>
  if (ea.length !== eb.length) return false
  let some = false
  for (const [k, x] of ea.entries()) {
    const y = eb[k]!
    if (JSON.stringify(x) === JSON.stringify(y)) continue
    const { d_ino: dx, ...rx } = x
    const { d_ino: dy, ...ry } = y
    if (JSON.stringify(rx) !== JSON.stringify(ry)) return false // more than d_ino differs
    if (dx !== x.ino || dy === y.ino) return false // layerfs's consistent, the kernel's not
    some = true
  }
  return some
}

/**
 * Stacking mode: two origin records (compared as 'layer:path', stacking.ts) naming the same
 * path, the kernel's in a newer layer ('u3' above 'u2', any 'uN' above the fixture's 'lowerK').
 */
function kernelOriginNewer(lf: unknown, kernel: unknown): boolean {
  const parse = (x: unknown): { age: number; path: string } | undefined => {
    const m = typeof x === 'string' ? /^(?:u(\d+)|lower(\d+)):(.*)$/.exec(x) : null
    return m ? { age: m[1] !== undefined ? Number(m[1]) : -1 - Number(m[2]), path: m[3]! } : undefined
  }
  const a = parse(lf)
  const b = parse(kernel)
  return !!a && !!b && a.path === b.path && b.age > a.age
}

const hasOk = (ops: readonly Op[], res: { layerfs: SysResult[]; overlay: SysResult[] } | undefined, op: string): boolean =>
  !!res && ops.some((o, i) => o.op === op && res.overlay[i] !== undefined && 'ok' in res.overlay[i]!)

export const KNOWN: readonly Known[] = [
  {
    id: 'kernel-stale-impure-readdir-cache',
    kind: 'kernel-quirk',
    what:
      'link(2) into a directory that is impure (holds copied-up or moved entries) after it was read: the kernel keeps its cached ' +
      'readdir of that dir, and gives the new entry its upper inode number as d_ino while st_ino is the origin\'s (right again ' +
      'after a remount). layerfs gives d_ino == st_ino.',
    matches(d, { c, oc }) {
      if (!kernelDinoOff(d)) return false
      if (d.where === 'calls' || d.where === 'readdir') return hasOk(c.ops, oc.results, 'link')
      if (d.where === 'calls2' || d.where === 'readdir2') return hasOk(c.more, oc.results2, 'link')
      return false
    },
  },
  {
    id: 'failed-dir-rename-side-effects',
    kind: 'kernel-quirk',
    what:
      'rename(2) of a directory onto a non-empty directory that exists only in the upper layer fails with ENOTEMPTY on both, ' +
      'but the kernel has already copied up the source and its parents, set (or rewritten to absolute) its redirect or marked ' +
      'it opaque before the upper fs refuses (ovl_rename); on ext4 (not tmpfs) the source\'s parent also shows a new mtime (the ' +
      'failed RENAME_WHITEOUT rewrites the source entry). layerfs fails without side effects. In the stacking mode the ' +
      'kernel\'s copy stays in that layer: a copy-up of the dir one layer up (or more) records it as its origin, where ' +
      'layerfs\'s names the dir in an older layer.',
    matches(d, { c, oc }) {
      const r1 = failedRenames(c.ops, oc.results, 'ENOTEMPTY')
      const r2 = failedRenames(c.more, oc.results2, 'ENOTEMPTY')
      const phase1: Where[] = ['tree', 'upper', 'calls', 'readdir']
      const touched = touchedByFailedRenames(phase1.includes(d.where) ? [[c.ops, oc.results]] : [[c.ops, oc.results], [c.more, oc.results2]])
      if (!touched.size) return false
      if (isTree(d)) {
        const t = d.detail
        if (!touched.has(t.path)) return false
        if (t.field === 'mtime') return t.layerfs === NOW || t.overlay === NOW
        if (t.field === 'exists') return /upper/.test(t.sig) && (t.layerfs === 'dir') !== (t.overlay === 'dir') && (t.layerfs === null || t.overlay === null)
        if (t.field === 'xattr trusted.overlay.opaque') return d.where === 'upper2' || (t.layerfs === null && t.overlay === '79')
        if (t.field === 'xattr trusted.overlay.origin') return kernelOriginNewer(t.layerfs, t.overlay)
        return t.field === 'xattr trusted.overlay.redirect'
      }
      if (isCall(d) && (d.detail.op.op === 'lstat' || d.detail.op.op === 'stat')) {
        const first = d.where === 'calls' ? r1[0] : r2[0] ?? -1
        if (first === undefined || d.detail.index < first) return false
        if (!withAncestors(d.detail.op.path ?? '.').slice(-1).every(p => touched.has(p))) return false
        const a = value(d.detail.layerfs)
        const b = value(d.detail.overlay)
        if (!a || !b || a.type !== 'dir') return false
        const diff = Object.keys({ ...a, ...b }).filter(k => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
        return diff.length === 1 && diff[0] === 'mtime_ns' && (a.mtime_ns === NOW || b.mtime_ns === NOW)
      }
      return false
    },
  },
]

/** Splits a case's differences into the unexplained ones and the known ones (by rule id). */
export function classify(c: Case, oc: CaseOutcome): { unexplained: Difference[]; known: Map<string, Difference[]> } {
  const unexplained: Difference[] = []
  const known = new Map<string, Difference[]>()
  for (const d of oc.diffs) {
    const k = KNOWN.find(r => r.matches(d, { c, oc }))
    if (k) known.set(k.id, [...(known.get(k.id) ?? []), d])
    else unexplained.push(d)
  }
  return { unexplained, known }
}

/** What a stacking-mode difference counts as for the rules: the first mounts' kinds. */
const FLAT_WHERE: Partial<Record<Where, Where>> = { pushdown: 'tree', final: 'tree', 'final-readdir': 'readdir' }

/**
 * Splits a stacked case's differences like classify(): the rounds are read as one op list
 * (a rule follows renames across rounds as within one), cut at the end of the round the
 * difference was seen in (a 'pushdown' one: of the round before; the final stacks: all), each
 * difference as its counterpart on the first mounts (calls by their index in that list). The
 * cross-mounts compare two implementations on the same layers: no rule applies to them.
 */
export function classifyStacked(c: StackedCase, oc: StackedOutcome): { unexplained: Difference[]; known: Map<string, Difference[]> } {
  const flats = new Map<number, { c: Case; oc: CaseOutcome; offsets: number[] }>()
  /** Rounds 1..n as one op list, with their results. */
  const flat = (n: number): { c: Case; oc: CaseOutcome; offsets: number[] } => {
    let f = flats.get(n)
    if (f) return f
    const offsets: number[] = []
    const ops: Op[] = []
    const results: Results = { layerfs: [], overlay: [] }
    c.rounds.slice(0, n).forEach((round, r) => {
      offsets[r] = ops.length
      ops.push(...round)
      const res = oc.results[r]
      for (let k = 0; k < round.length; k++) {
        results.layerfs.push(res?.layerfs[k] ?? { errno: 'NO RESULT' })
        results.overlay.push(res?.overlay[k] ?? { errno: 'NO RESULT' })
      }
    })
    f = { c: { label: c.label, ops, more: [] }, oc: { label: oc.label, dir: oc.dir, diffs: [], results }, offsets }
    flats.set(n, f)
    return f
  }
  const unexplained: Difference[] = []
  const known = new Map<string, Difference[]>()
  for (const d of oc.diffs) {
    const upTo = d.round === undefined ? c.rounds.length : d.where === 'pushdown' ? d.round - 1 : d.round
    const { c: fc, oc: foc, offsets } = flat(upTo)
    let f: Difference = { ...d, where: FLAT_WHERE[d.where] ?? d.where }
    if (isCall(d) && d.round !== undefined) {
      const detail: CallDiff = { ...(d.detail as CallDiff), index: d.detail.index + (offsets[d.round - 1] ?? 0) }
      f = { ...f, detail }
    }
    const k = d.where.startsWith('cross') ? undefined : KNOWN.find(rule => rule.matches(f, { c: fc, oc: foc }))
    if (k) known.set(k.id, [...(known.get(k.id) ?? []), d])
    else unexplained.push(d)
  }
  return { unexplained, known }
}
