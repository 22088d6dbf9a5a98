// Normalizing what each side answered, so that layerfs and kernel overlayfs can be compared
// call by call:
// - inode numbers (st_ino, d_ino) become labels in order of first appearance, per side, so
//   that what is compared is which observations name the same inode (hard links, d_ino ==
//   st_ino, st_ino kept across copy-up), not the numbers, which differ between the two copies
//   of the layers. Labels restart (an "epoch") after every op that may free an inode (unlink,
//   rmdir, a rename that replaced its target): the host fs may reuse a freed number for a new
//   object, and does so differently on the two sides.
// - times: a time set explicitly (by the fixture or utimensat: all before 2020) is compared to
//   the nanosecond; any later time was "now" and becomes "now". atime and ctime are not read.
// - readdir: sorted by name (the order is the host fs's business), directory sizes dropped.
import type { Op, SysResult } from '../../helpers/syscalls.js'
import type { Entry, Snapshot } from '../../helpers/tree.js'
import { EXPLICIT_BEFORE } from './fixture.js'

export type Norm = { errno: string } | { ok: true; value?: unknown }

export const normTime = (ns: string | undefined): string | undefined =>
  ns === undefined ? undefined : BigInt(ns) < EXPLICIT_BEFORE ? ns : 'now'

class Labeller {
  private map = new Map<string, string>()
  /**
   * The label of an inode number is where it was first seen in this epoch ("12" for op 12's
   * stat, "12:name" for an entry of op 12's readdir): a difference does not shift every later label.
   */
  label(ino: unknown, where: string): string {
    const k = String(ino)
    let l = this.map.get(k)
    if (l === undefined) this.map.set(k, (l = `ino@${where}`))
    return l
  }
  epoch(): void {
    this.map.clear()
  }
}

type Rec = Record<string, unknown>

/** One side's results, normalized. */
export function normalizeResults(ops: readonly Op[], res: readonly SysResult[]): Norm[] {
  const L = new Labeller()
  return ops.map((op, i) => {
    const r = res[i]
    if (r === undefined) return { errno: 'NO RESULT' }
    if ('errno' in r) return r
    let value = r.value
    if ((op.op === 'lstat' || op.op === 'stat') && value && typeof value === 'object') {
      const v: Rec = { ...(value as Rec) }
      if (v.type === 'dir') delete v.size
      if ('ino' in v) v.ino = L.label(v.ino, String(i))
      if ('mtime_ns' in v) v.mtime_ns = normTime(v.mtime_ns as string)
      value = v
    } else if (op.op === 'readdir' && Array.isArray(value)) {
      // Sorted first, then labelled, so that labels come in the same order on both sides.
      value = [...(value as Rec[])]
        .sort((a, b) => (String(a.name) < String(b.name) ? -1 : String(a.name) > String(b.name) ? 1 : 0))
        .map(e => {
          const x: Rec = { ...e, d_ino: L.label(e.d_ino, `${i}:${String(e.name)}`) }
          if ('ino' in e) x.ino = L.label(e.ino, `${i}:${String(e.name)}`)
          return x
        })
    }
    const freed = op.op === 'unlink' || op.op === 'rmdir' || (op.op === 'rename' && (value as Rec | undefined)?.replaced !== false)
    if (freed) L.epoch()
    return value === undefined ? { ok: true } : { ok: true, value }
  })
}

export interface CallDiff {
  index: number
  op: Op
  layerfs: Norm
  overlay: Norm
  /** What kind of difference, for minimizing (keep failing the same way). */
  sig: string
  /** readdir: the entries that differ (layerfs vs kernel). */
  delta?: string
}

const outcome = (n: Norm): string => ('errno' in n ? n.errno : 'ok')

/** Per-call differences between the two sides' normalized results. */
export function compareCalls(ops: readonly Op[], lf: readonly SysResult[], ov: readonly SysResult[]): CallDiff[] {
  const a = normalizeResults(ops, lf)
  const b = normalizeResults(ops, ov)
  const out: CallDiff[] = []
  ops.forEach((op, index) => {
    const x = a[index]!
    const y = b[index]!
    if (JSON.stringify(x) === JSON.stringify(y)) return
    let sig = `${op.op}:${outcome(x)}/${outcome(y)}`
    let delta: string | undefined
    if ('ok' in x && 'ok' in y) {
      const vx = x.value
      const vy = y.value
      if (vx && vy && typeof vx === 'object' && typeof vy === 'object' && !Array.isArray(vx) && !Array.isArray(vy)) {
        const fields = [...new Set([...Object.keys(vx), ...Object.keys(vy)])].filter(k => JSON.stringify((vx as Rec)[k]) !== JSON.stringify((vy as Rec)[k]))
        sig += ':' + fields.sort().join(',')
      } else if (Array.isArray(vx) && Array.isArray(vy) && op.op === 'readdir') {
        // Entries by name: which names differ, and in which fields.
        const byName = (v: unknown[]) => new Map((v as Rec[]).map(e => [String(e.name), e]))
        const mx = byName(vx)
        const my = byName(vy)
        const fields = new Set<string>()
        const names: string[] = []
        for (const n of new Set([...mx.keys(), ...my.keys()])) {
          const ex = mx.get(n)
          const ey = my.get(n)
          if (!ex || !ey) fields.add('names')
          else for (const k of new Set([...Object.keys(ex), ...Object.keys(ey)])) if (JSON.stringify(ex[k]) !== JSON.stringify(ey[k])) fields.add(k)
          if (JSON.stringify(ex) !== JSON.stringify(ey)) names.push(`${n}: ${JSON.stringify(ex ?? null)} vs ${JSON.stringify(ey ?? null)}`)
        }
        sig += ':' + [...fields].sort().join(',')
        delta = names.join('; ')
      } else sig += ':value'
    }
    out.push({ index, op, layerfs: x, overlay: y, sig, ...(delta ? { delta } : {}) })
  })
  return out
}

/** A tree snapshot made comparable across the two copies: no inode numbers or ctimes, "now" times. */
export function comparableTree(s: Snapshot): Snapshot {
  const out: Snapshot = {}
  for (const [k, e] of Object.entries(s)) {
    const x: Entry = { ...e }
    delete x.ino
    delete x.ctime
    if (x.mtime !== undefined) x.mtime = normTime(x.mtime)!
    out[k] = x
  }
  return out
}

/** The kernel hard-links one whiteout for many: forget whiteouts' link counts and times. */
export function unshareWhiteouts(s: Snapshot): Snapshot {
  for (const e of Object.values(s)) {
    if (e.type === 'chardev' && e.rdev === '0:0') {
      delete e.nlink
      delete e.hardlinkOf
      delete e.mtime
      delete e.ctime
      delete e.ino
    }
  }
  return s
}

export interface TreeDiff {
  path: string
  /** The entry's type (layerfs's, else the kernel's). */
  type?: string
  field: string
  layerfs: unknown
  overlay: unknown
  sig: string
}

/** Field-by-field differences between two snapshots (a = layerfs, b = overlay). */
export function compareTrees(a: Snapshot, b: Snapshot, tag: string): TreeDiff[] {
  const out: TreeDiff[] = []
  for (const path of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const x = a[path]
    const y = b[path]
    if (!x || !y) {
      out.push({ path, field: 'exists', layerfs: x?.type ?? null, overlay: y?.type ?? null, sig: `${tag}:exists` })
      continue
    }
    for (const f of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort() as Array<keyof Entry>) {
      if (f === 'xattrs') {
        const xa = x.xattrs ?? {}
        const ya = y.xattrs ?? {}
        for (const n of [...new Set([...Object.keys(xa), ...Object.keys(ya)])].sort()) {
          if (xa[n] !== ya[n]) out.push({ path, type: x.type, field: `xattr ${n}`, layerfs: xa[n] ?? null, overlay: ya[n] ?? null, sig: `${tag}:xattr ${n}` })
        }
      } else if (JSON.stringify(x[f]) !== JSON.stringify(y[f])) {
        out.push({ path, type: x.type, field: f, layerfs: x[f] ?? null, overlay: y[f] ?? null, sig: `${tag}:${f}` })
      }
    }
  }
  return out
}
