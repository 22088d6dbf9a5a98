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

/** Symlinks the ops made (that the kernel made) before index `end`: path -> target. */
function symlinksBefore(ops: readonly Op[], res: Results | undefined, end: number, into = new Map<string, string>()): Map<string, string> {
  ops.forEach((op, i) => {
    if (i < end && op.op === 'symlink' && res?.overlay[i] && 'ok' in res.overlay[i]!) into.set(op.path!, String(op.target))
  })
  return into
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
      'failed RENAME_WHITEOUT rewrites the source entry). layerfs fails without side effects.',
    matches(d, { c, oc }) {
      const r1 = failedRenames(c.ops, oc.results, 'ENOTEMPTY')
      const r2 = failedRenames(c.more, oc.results2, 'ENOTEMPTY')
      const phase1: Where[] = ['tree', 'upper', 'calls', 'readdir']
      // What the kernel touched: the source dir and its ancestors, followed through the
      // renames that succeeded afterwards.
      const touched = new Set<string>()
      // Rename paths are resolved through the symlinks made so far (a move through a link).
      const follow = (ops: readonly Op[], res: Results | undefined, from: number): void => {
        const earlier = ops === c.more ? symlinksBefore(c.ops, oc.results, c.ops.length) : new Map<string, string>()
        ops.forEach((op, i) => {
          if (i <= from || op.op !== 'rename' || !res?.overlay[i] || !('ok' in res.overlay[i]!)) return
          const links = symlinksBefore(ops, res, i, new Map(earlier))
          const [a, b] = [withAncestors(resolveParents(op.path!, links)).pop()!, withAncestors(resolveParents(String(op.to), links)).pop()!]
          for (const p of [...touched]) if (p === a || p.startsWith(a + '/')) touched.add(b + p.slice(a.length))
        })
      }
      for (const i of r1) {
        for (const p of withAncestors(c.ops[i]!.path!)) touched.add(p)
        follow(c.ops, oc.results, i)
      }
      if (!phase1.includes(d.where)) {
        follow(c.more, oc.results2, -1)
        for (const i of r2) {
          for (const p of withAncestors(c.more[i]!.path!)) touched.add(p)
          follow(c.more, oc.results2, i)
        }
      }
      if (!touched.size) return false
      if (isTree(d)) {
        const t = d.detail
        if (!touched.has(t.path)) return false
        if (t.field === 'mtime') return t.layerfs === NOW || t.overlay === NOW
        if (t.field === 'exists') return /upper/.test(t.sig) && (t.layerfs === 'dir') !== (t.overlay === 'dir') && (t.layerfs === null || t.overlay === null)
        if (t.field === 'xattr trusted.overlay.opaque') return d.where === 'upper2' || (t.layerfs === null && t.overlay === '79')
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
