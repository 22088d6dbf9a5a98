// The layers every differential case starts from: two lowers in the kernel's on-disk format,
// with overlapping names, a whiteout (of a file and of a directory) and an opaque directory in
// the upper lower layer, merged directories, a file over a directory, symlinks, a hard-link
// pair, a device node, a sparse file, xattrs, odd modes and owners. Every object gets a fixed
// mtime to the nanosecond (before 2020: see `EXPLICIT_BEFORE`), so copy-up's preservation of
// times is compared exactly.
import { execFileSync } from 'node:child_process'
import { closeSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { writeTree, type Node, type NodeSpec, type TreeSpec } from '../../helpers/layers.js'
import { feature, type Features } from './features.js'

/** Top-most lower first (lowerdir= order). */
const LOWER_SPECS: readonly TreeSpec[] = [
  {
    a: { type: 'file', content: 'a from lower0\n', mode: 0o640, xattrs: { 'user.a': 'la0' } },
    c: { type: 'file', content: 'c from lower0\n', mode: 0o600, uid: 1000, gid: 1000 },
    w: { type: 'whiteout' },
    dw: { type: 'whiteout' },
    d1: { type: 'dir', xattrs: { 'user.d': 'd1 of lower0' }, entries: { y: 'd1/y from lower0\n', x2: 'x2\n', d2: { q: 'q\n' } } },
    o: { type: 'dir', opaque: true, entries: { v: 'v in the opaque dir\n' } },
    f2d: 'a file over a dir\n',
    l: { type: 'symlink', target: 'a' },
    ld: { type: 'symlink', target: 'd1' },
    h1: 'hard-linked in lower0\n',
    h2: { type: 'hardlink', target: 'h1' },
    e: {},
    n: { type: 'chardev', dev: [1, 3], mode: 0o666 },
    t: { type: 'file', content: '#!/bin/sh\n', mode: 0o4755 },
  },
  {
    a: 'a from lower1\n',
    b: { type: 'file', content: 'b from lower1\n', xattrs: { 'user.b': 'lb1', 'trusted.t': 'tt' } },
    w: 'w from lower1, whited out\n',
    dw: { k: 'k under a whited-out dir\n' },
    d1: { x: 'd1/x from lower1\n', y: 'd1/y from lower1\n', d2: { z: 'z\n' } },
    o: { hidden: 'hidden by the opaque dir\n', x: 'o/x hidden too\n' },
    f2d: { inside: 'under a file\n' },
    lk: { type: 'symlink', target: 'b' },
    e: { old: 'e/old from lower1\n' },
  },
]

/**
 * Which layers a case starts from: 'classic' (above), or 'stacking': the same plus deeper
 * directories for the stacking mode (stacking.ts) to move around across layers: `p/dir1`
 * (holding `f1` and `sub/g1`, only in lower0) next to an empty `p/empty1`, as in issue 12;
 * a merged `p/m` with a merged subdir; a lower1-only `p/gone`; a chain `s/t/u`; a hard-linked
 * pair in a dir; a whited-out dir `g`.
 */
export type Profile = 'classic' | 'stacking'

const STACKING_SPECS: readonly TreeSpec[] = [
  {
    p: {
      dir1: { f1: 'p/dir1/f1\n', sub: { g1: 'p/dir1/sub/g1\n' } },
      empty1: {},
      m: { h: 'p/m/h from lower0\n', mm: { i: 'p/m/mm/i from lower0\n' } },
      hl: 'p/hl hard-linked in lower0\n',
      hl2: { type: 'hardlink', target: 'p/hl' },
    },
    s: { t: { u: { deep: 's/t/u/deep\n' } } },
    g: { type: 'whiteout' },
  },
  {
    p: {
      m: { k: 'p/m/k from lower1\n', mm: { j: 'p/m/mm/j from lower1\n' } },
      gone: { r: 'p/gone/r from lower1\n' },
    },
    s: { t: { v: 's/t/v from lower1\n' }, w2: { x: 's/w2/x from lower1\n' } },
    g: { gg: 'g/gg under a whiteout\n' },
  },
]

/** The lowers' specs for these options. */
export function lowerSpecs(o: Features = {}, profile: Profile = 'classic'): TreeSpec[] {
  const specs = LOWER_SPECS.map((s, k) => ({ ...s, ...(profile === 'stacking' ? STACKING_SPECS[k] : {}) }))
  if (!feature(o, 'lowerHardLinks')) {
    delete specs[0]!.h2
    if (profile === 'stacking') specs[0]!.p = { ...(specs[0]!.p as TreeSpec), hl2: 'p/hl2, not a hard link\n' }
  }
  return specs
}

/** Sparse files (holes) added by hand: [lower index, relative path, [offset, data][]] */
const SPARSE: ReadonlyArray<[number, string, Array<[number, string]>]> = [
  [1, 'sp', [[0, 'S'], [70000, 'E']]],
  [0, 'd1/sp2', [[8192, 'middle'], [200000, 'end']]],
]

/** A time in ns below this (2020-09-13) was set explicitly (fixture or utimensat); above, it is "now". */
export const EXPLICIT_BEFORE = 1_600_000_000n * 1_000_000_000n

export type Kind = 'file' | 'dir' | 'symlink' | 'dev'

const isSpec = (n: Node): n is NodeSpec => typeof n === 'object' && !Buffer.isBuffer(n) && typeof (n as NodeSpec).type === 'string'

/** The merged view of LOWER_SPECS (plus the sparse files), as kernel overlayfs shows it: path -> kind. */
export function mergedView(o: Features = {}, profile: Profile = 'classic'): Map<string, Kind> {
  const out = new Map<string, Kind>()
  const merge = (specs: Array<TreeSpec | undefined>, prefix: string): void => {
    const names = new Set(specs.flatMap(s => (s ? Object.keys(s) : [])))
    for (const name of [...names].sort()) {
      const below: Array<TreeSpec | undefined> = []
      let kind: Kind | undefined
      for (const s of specs) {
        const n = s?.[name]
        if (n === undefined) continue
        const spec: NodeSpec = typeof n === 'string' || Buffer.isBuffer(n) ? { type: 'file' } : isSpec(n) ? n : { type: 'dir', entries: n as TreeSpec }
        if (spec.type === 'whiteout') break
        if (kind === undefined) kind = spec.type === 'dir' ? 'dir' : spec.type === 'symlink' ? 'symlink' : spec.type === 'chardev' || spec.type === 'blockdev' || spec.type === 'fifo' ? 'dev' : 'file'
        if (kind !== 'dir' || spec.type !== 'dir') break
        below.push(spec.entries ?? {})
        if (spec.opaque) break
      }
      if (kind === undefined) continue
      const p = prefix + name
      out.set(p, kind)
      if (kind === 'dir') merge(below, p + '/')
    }
  }
  merge(lowerSpecs(o, profile), '')
  for (const [, p] of SPARSE) out.set(p, 'file')
  return out
}

/**
 * Writes one case's layers: `lowers[k]/<dir>` gets LOWER_SPECS[k]. Call fixTimes() on each
 * lower once every case is written.
 */
export function writeCase(lowers: readonly string[], dir: string, o: Features = {}, profile: Profile = 'classic'): void {
  lowerSpecs(o, profile).forEach((spec, k) => writeTree(join(lowers[k]!, dir), spec))
  for (const [k, p, extents] of SPARSE) {
    const fd = openSync(join(lowers[k]!, dir, p), 'w', 0o644)
    for (const [off, data] of extents) writeSync(fd, Buffer.from(data), 0, data.length, off)
    closeSync(fd)
  }
}

const TIMES_PY = `
import hashlib, os, sys
root = sys.argv[1]
for d, dirs, files in os.walk(root, topdown=False):
    for n in files + dirs + ([] if d != root else ['.']):
        p = os.path.normpath(os.path.join(d, n))
        h = int(hashlib.sha256((sys.argv[2] + os.path.relpath(p, root)).encode()).hexdigest(), 16)
        sec = 1_000_000_000 + h % 400_000_000
        os.utime(p, ns=(sec * 10**9 + (h >> 64) % 10**9, sec * 10**9 + (h >> 96) % 10**9), follow_symlinks=False)
`

/** Gives every object under root (root too) a fixed atime and mtime with nanoseconds, derived from its path and salt. */
export function fixTimes(root: string, salt: string): void {
  execFileSync('python3', ['-c', TIMES_PY, root, salt])
}
