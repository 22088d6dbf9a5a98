// Lookup: which real objects a union path names. Upper first, then the lowers top-down;
// a whiteout ends the search, a non-directory ends it, an opaque directory ends it below,
// a redirected directory continues at its redirect (the kernel's ovl_lookup).
import type { Layer } from '../layers/layer.js'
import { isDirMode, isWhiteoutStat } from '../layers/layer.js'
import type { UpperLayer } from '../layers/upper.js'
import { fsError } from '../errors.js'
import { type Entry, type OriginIno, type RealObject, type RealPath, joinPath } from './entry.js'
import { inoOfOrigin } from '../layers/origin.js'
import type { EntryCache } from './cache.js'

export interface Layers {
  readonly upper: UpperLayer | undefined
  readonly lowers: readonly Layer[]
  /** The union path of the root: a volume's mount point; '/' when absent. */
  readonly rootPath?: string
}


/** The root entry: the upper root merged with every lower root. */
export function lookupRoot(layers: Layers): Entry {
  const root = layers.rootPath ?? '/'
  const lowerDirs = layers.lowers.map(layer => ({ layer, path: root, stat: layer.lstat(root) }))
  const upper = layers.upper ? { layer: layers.upper, path: root, stat: layers.upper.lstat(root) } : undefined
  const top = upper ?? lowerDirs[0]
  if (!top) throw fsError('EINVAL', 'lookup', root)
  return { path: root, top, upper, lowerDirs, origin: undefined, isDir: true }
}

/**
 * Look up `name` in the merged directory `parent`: the entry, or undefined when the union
 * has no such name (absent everywhere, or whited out).
 */
export function lookupChild(layers: Layers, parent: Entry, name: string): Entry | undefined {
  const path = joinPath(parent.path, name)
  let upper: RealObject | undefined
  // Where to search the lowers: each lower directory of the parent, for `name`; a redirect
  // changes the name (relative) or restarts from the layer roots (absolute).
  let stack: readonly RealPath[] = parent.lowerDirs
  let relName = name
  let absPath: string | undefined
  let below = 0 // only layers with index > below are searched

  if (parent.upper && layers.upper) {
    const up = layers.upper
    const realPath = joinPath(parent.upper.path, name)
    const st = up.tryLstat(realPath)
    if (st) {
      if (isWhiteoutStat(st)) return undefined
      upper = { layer: up, path: realPath, stat: st }
      if (isDirMode(Number(st.mode))) {
        if (up.isOpaque(realPath)) {
          return { path, top: upper, upper, lowerDirs: [], origin: originIno(layers, upper), isDir: true }
        }
        const r = up.redirect(realPath)
        if (r !== undefined) {
          if (r.startsWith('/')) {
            absPath = r
            stack = rootStack(layers)
          } else relName = r
        }
      }
    }
  }

  const isDir = upper ? isDirMode(Number(upper.stat.mode)) : undefined
  const lowerDirs: RealObject[] = []
  let lowerTop: RealObject | undefined

  for (let i = 0; i < stack.length; i++) {
    const dir = stack[i]!
    if (dir.layer.index <= below) continue
    const realPath = absPath ?? joinPath(dir.path, relName)
    const st = dir.layer.tryLstat(realPath)
    if (!st) continue
    if (isWhiteoutStat(st)) break
    const obj = { layer: dir.layer, path: realPath, stat: st }
    const objIsDir = isDirMode(Number(st.mode))
    if (upper) {
      // An upper non-directory shadows everything below; an upper directory merges lower ones.
      if (!isDir || !objIsDir) break
    } else if (!lowerTop) {
      lowerTop = obj
      if (!objIsDir) break
    } else if (!objIsDir) break
    lowerDirs.push(obj)
    if (dir.layer.isOpaque(realPath)) break
    const r = dir.layer.redirect(realPath)
    if (r !== undefined) {
      below = dir.layer.index
      if (r.startsWith('/')) {
        absPath = r
        stack = rootStack(layers)
        i = -1
      } else relName = r
    }
  }

  if (upper) {
    const origin = originIno(layers, upper)
    return { path, top: upper, upper, lowerDirs: isDir ? lowerDirs : [], origin, isDir: isDir! }
  }
  if (!lowerTop) return undefined
  const lowerIsDir = isDirMode(Number(lowerTop.stat.mode))
  return { path, top: lowerTop, upper: undefined, lowerDirs: lowerIsDir ? lowerDirs : [], origin: undefined, isDir: lowerIsDir }
}

/**
 * The inode of an upper object's copy-up origin: the record names a filesystem by uuid; the
 * first lower layer on it resolves the handle. Undefined without a record, or when the
 * record names no lower layer here (the kernel ignores such a record too).
 */
function originIno(layers: Layers, upper: RealObject): OriginIno | undefined {
  const o = upper.layer.origin(upper.path)
  if (!o) return undefined
  for (const layer of layers.lowers) {
    if (!layer.uuid.equals(o.uuid)) continue
    const ino = inoOfOrigin(o, layer)
    return ino === undefined ? undefined : { layer, ino }
  }
  return undefined
}

function rootStack(layers: Layers): RealPath[] {
  return layers.lowers.map(layer => ({ layer, path: '/' }))
}

/**
 * Whether a lower layer shows an object at `name` in `parent` (ignoring the upper layer):
 * then removing the name from the union needs a whiteout.
 */
export function lowerHasName(parent: Entry, name: string): boolean {
  for (const dir of parent.lowerDirs) {
    const st = dir.layer.tryLstat(joinPath(dir.path, name))
    if (!st) continue
    return !isWhiteoutStat(st)
  }
  return false
}

/** Resolve a union path through the cache, component by component. */
export function resolve(layers: Layers, cache: EntryCache, path: string): Entry {
  const e = tryResolve(layers, cache, path)
  if (!e) throw fsError('ENOENT', 'lookup', path)
  return e
}

export function tryResolve(layers: Layers, cache: EntryCache, path: string): Entry | undefined {
  const hit = cache.get(path)
  if (hit !== undefined) return hit ?? undefined
  if (path === (layers.rootPath ?? '/')) {
    const root = lookupRoot(layers)
    cache.set(path, root)
    return root
  }
  const i = path.lastIndexOf('/')
  const parent = tryResolve(layers, cache, i === 0 ? '/' : path.slice(0, i))
  if (!parent) return undefined
  if (!parent.isDir) throw fsError('ENOTDIR', 'lookup', path)
  const e = lookupChild(layers, parent, path.slice(i + 1))
  cache.set(path, e ?? null)
  return e
}
