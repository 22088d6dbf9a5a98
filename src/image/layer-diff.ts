// The `docker diff` of an upper layer: what the union over the lowers shows, compared with
// what the lowers alone show. 'A' added, 'C' changed, 'D' deleted, one line per path, in the
// order docker prints them: a depth-first walk with each directory's names sorted bytewise,
// and a directory that holds an added or deleted name listed 'C' before that name.
import { nameBytes } from '../layers/native.js'
import type { UpperLayer } from '../layers/upper.js'
import { type Layers, lookupChild, lookupRoot } from '../union/lookup.js'
import { type Entry, joinPath } from '../union/entry.js'
import { mergedNames } from '../union/readdir.js'
import type { Layer } from '../layers/layer.js'
import { openLayers } from './layer-export.js'

export type ChangeKind = 'A' | 'C' | 'D'

export interface Change {
  kind: ChangeKind
  /** Union path ("/a/b", name codec). */
  path: string
}

export interface DiffOptions {
  /**
   * The layers are in the kernel's userxattr format (user.overlay.*), as `-o userxattr`
   * writes them. Undefined: detected from the upper (layer-export.ts: overlayXattrsOf).
   */
  userxattr?: boolean
}

/**
 * The changes an upper layer makes to its lowers (top-most first). Only what the upper
 * touches is walked: a directory no layer of the upper reaches is the same on both sides.
 */
export function diffLayer(upperDir: string, lowerDirs: readonly string[], options: DiffOptions = {}): Change[] {
  const layers = openLayers(upperDir, lowerDirs, options.userxattr)
  try {
    return diffLayers(layers.upper, layers.lowers)
  } finally {
    layers.close()
  }
}

function diffLayers(upper: Layer, lowers: Layer[]): Change[] {
  // The union lookup only reads through the upper (tryLstat, isOpaque, redirect, origin).
  // Layers a metacopy=on mount wrote: a metacopy file is a changed file, its data below.
  const after: Layers = { upper: upper as UpperLayer, lowers, metacopy: true }
  const before: Layers = { upper: undefined, lowers, metacopy: true }
  const out: Change[] = []
  const listed = new Set<string>()
  const record = (kind: ChangeKind, path: string): void => {
    if (kind !== 'C') {
      // docker lists the parent of an added or deleted name as changed, once, before it.
      const i = path.lastIndexOf('/')
      const parent = i <= 0 ? '/' : path.slice(0, i)
      if (parent !== '/' && !listed.has(parent)) {
        out.push({ kind: 'C', path: parent })
        listed.add(parent)
      }
    }
    out.push({ kind, path })
    listed.add(path)
  }

  const walk = (now: Entry, was: Entry | undefined): void => {
    const nowNames = mergedNames(now)
    const wasNames = was ? mergedNames(was) : new Map<string, number>()
    const names = [...new Set([...nowNames.keys(), ...wasNames.keys()])].sort((a, b) => Buffer.compare(nameBytes(a), nameBytes(b)))
    for (const name of names) {
      const path = joinPath(now.path, name)
      const n = nowNames.has(name) ? lookupChild(after, now, name) : undefined
      const o = was && wasNames.has(name) ? lookupChild(before, was, name) : undefined
      if (!n) {
        if (o) record('D', path)
        continue
      }
      if (!o) {
        record('A', path)
        if (n.isDir) walk(n, undefined)
        continue
      }
      const same = n.upper === undefined && n.top.layer === o.top.layer && n.top.path === o.top.path
      if (same) continue
      if (n.isDir && o.isDir) {
        const a = n.top.stat
        const b = o.top.stat
        // docker's rule: a directory whose size, mode and mtime did not change is not listed
        // for itself (only as the parent of an added or deleted name).
        if (a.size !== b.size || a.mode !== b.mode || a.mtimeNs !== b.mtimeNs) record('C', path)
        walk(n, o)
        continue
      }
      record('C', path)
      if (n.isDir) walk(n, undefined)
    }
  }
  walk(lookupRoot(after), lowers.length > 0 ? lookupRoot(before) : undefined)
  return out
}

/** The listing as `docker diff` prints it. */
export function formatChanges(changes: readonly Change[]): Buffer {
  return Buffer.concat(changes.map(c => Buffer.concat([Buffer.from(`${c.kind} `), nameBytes(c.path), Buffer.from('\n')])))
}
