// Lookup: which real objects a union path names, as the kernel's ovl_lookup finds them. Upper
// first, then the lowers top-down; a whiteout ends the search, a non-directory ends it, an
// opaque directory ends it below, and a redirected directory continues at its redirect:
// relative (a new last name in the same lower directories) or absolute (a path walked from
// every lower layer's root below the one that holds it). Redirects are followed through any
// number of layers, as stacked layers (each upper pushed down as the next lower) make them.
// A metacopy file (metacopy=on: its metadata copied up, its data not) does not end the search:
// it goes on below, through the file's own redirect if it was renamed, to the file holding
// the data.
import type { Layer } from '../layers/layer.js'
import { isAufsName } from '../layers/format.js'
import { S_IFREG, isDirMode, isWhiteoutStat } from '../layers/layer.js'
import type { UpperLayer } from '../layers/upper.js'
import { fsError } from '../errors.js'
import { type Entry, NO_LOWER_DIRS, type OriginIno, type RealObject, type RealPath, joinPath } from './entry.js'
import { type Origin, inoOfOrigin } from '../layers/origin.js'
import type { EntryCache } from './cache.js'

export interface Layers {
  readonly upper: UpperLayer | undefined
  readonly lowers: readonly Layer[]
  /** Redirects in the layers are followed (else a lookup that meets one fails: EPERM). Default true. */
  readonly followRedirects?: boolean
  /**
   * metacopy=on: metacopy files are followed to their data (else a lookup that meets one fails:
   * EPERM, as the kernel's "refusing to follow metacopy origin"). Default false.
   */
  readonly metacopy?: boolean
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
 * The state of one lookup across the layers (the kernel's struct ovl_lookup_data). `name` is
 * what is looked up in the next layer: the union name, a relative redirect, or an absolute
 * path from a layer's root.
 */
interface LookupData {
  name: string
  /** A directory was found: a non-directory below it ends the merge and is not part of it. */
  isDir: boolean
  /** Nothing below this layer is looked at. */
  stop: boolean
  /** The bottom layer: no opaque or redirect mark is read there (nothing is below). */
  last: boolean
  /** A redirect has changed `name`. */
  redirected: boolean
  /** The last object found is a metacopy file: its data is further down. */
  metacopy: boolean
}

const S_IFMT = 0o170000

/**
 * Whether a regular file is a metacopy file (the kernel's ovl_check_metacopy_xattr): the
 * overlay's metacopy xattr, empty (what the kernel writes without fs-verity) or a 4- to
 * 68-byte struct ovl_metacopy (with a verity digest). A shorter value is EIO.
 */
function isMetacopy(layer: Layer, realPath: string): boolean {
  let v: Buffer | undefined
  try {
    v = layer.getxattr(realPath, layer.xattrs.metacopy)
  } catch (e) {
    const code = (e as { code?: string }).code
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return false
    throw e
  }
  if (v === undefined) return false
  if (v.length > 0 && v.length < 4) throw fsError('EIO', 'lookup', realPath)
  return true
}

/** Follow redirect `r` found at `realPath` (a directory's, or a metacopy file's): d.name becomes where to look below. */
function followRedirect(d: LookupData, r: string, realPath: string, prefix: number, post: string): void {
  d.redirected = true
  // As the kernel: an empty redirect, an absolute one with an empty component, a relative
  // one with a '/', fail the lookup.
  if (r.startsWith('/') ? /\/\/|\/$/.test(r) : r === '' || r.includes('/')) throw fsError('EINVAL', 'lookup', realPath)
  if (r.startsWith('/')) {
    // Whatever stopped the walk above (an opaque directory on the way), an absolute
    // redirect below it starts the lower layers again.
    d.stop = false
    d.name = r + post
  } else d.name = d.name.slice(0, prefix) + r + post
}

/**
 * One name in one directory of a layer (the kernel's ovl_lookup_single). `prefix`: the
 * bytes of d.name before this name, `post`: those after it (an absolute path walked
 * component by component); a redirect found here rewrites d.name keeping both.
 */
function lookupSingle(layer: Layer, realPath: string, d: LookupData, prefix: number, post: string): RealObject | undefined {
  const st = layer.tryLstat(realPath)
  if (!st) {
    if (layer.hasAufsWhiteout(realPath)) d.stop = true
    return undefined
  }
  if (isWhiteoutStat(st)) {
    d.stop = true
    return undefined
  }
  const obj = { layer, path: realPath, stat: st }
  const mode = st.mode
  if (!isDirMode(mode)) {
    d.stop = true
    if (d.isDir) return undefined
    if (post !== '') return obj // the walk ends here (lookupLayer)
    d.metacopy = (mode & S_IFMT) === S_IFREG && isMetacopy(layer, realPath)
    if (!d.metacopy) return obj
    // Its data is below: the search goes on, at its redirect if it was renamed.
    d.stop = false
    if (d.last) return obj
    const r = layer.redirect(realPath)
    if (r !== undefined) followRedirect(d, r, realPath, prefix, post)
    return obj
  }
  const lastElement = post === ''
  if (lastElement) d.isDir = true
  if (d.last) return obj
  const { opaque, redirect: r } = layer.dirMarks(realPath)
  if (opaque) {
    d.stop = true
    return obj
  }
  if (r !== undefined) followRedirect(d, r, realPath, prefix, post)
  return obj
}

/**
 * d.name in one layer (the kernel's ovl_lookup_layer): a name in directory `base`, or an
 * absolute path walked from the layer's root, each component as lookupSingle sees it (so
 * whiteouts, opaque directories and redirects on the way count). The walk counts from the
 * end of d.name: a redirect met on the way changes what comes before, never what is left.
 */
function lookupLayer(layer: Layer, base: string, d: LookupData, unionPath: string): RealObject | undefined {
  if (!d.name.startsWith('/')) {
    const p = joinPath(base, d.name)
    // The real path is most often the union path: one string for both.
    return lookupSingle(layer, p === unionPath ? unionPath : p, d, 0, '')
  }
  let rem = d.name.length - 1
  let dir = '/'
  for (;;) {
    const s = d.name.length - rem
    let next = d.name.indexOf('/', s)
    if (next < 0) next = d.name.length
    const name = d.name.slice(s, next)
    const post = d.name.slice(next)
    const obj = lookupSingle(layer, joinPath(dir, name), d, s, post)
    if (post === '' || !obj || !isDirMode(obj.stat.mode)) return post === '' ? obj : undefined
    dir = obj.path
    rem -= name.length + 1
  }
}

/**
 * Look up `name` in the merged directory `parent`: the entry, or undefined when the union
 * has no such name (absent everywhere, or whited out).
 */
export function lookupChild(layers: Layers, parent: Entry, name: string): Entry | undefined {
  // The AUFS format's names are whiteouts and markers, never shown (format.ts).
  if (isAufsName(name)) return undefined
  const path = joinPath(parent.path, name)
  const d: LookupData = { name, isDir: false, stop: false, last: layers.lowers.length === 0, redirected: false, metacopy: false }
  // The lower directories to search: the parent's, until an absolute redirect switches to
  // the layer roots (the kernel's poe and roe).
  let stack: readonly RealPath[] = parent.lowerDirs
  let rooted = false
  let upper: RealObject | undefined
  let upperMetacopy = false

  if (parent.upper && layers.upper) {
    upper = lookupLayer(layers.upper, parent.upper.path, d, path)
    if (!upper && d.stop) return undefined // a whiteout
    upperMetacopy = upper !== undefined && d.metacopy
    if (d.name.startsWith('/')) {
      stack = rootStack(layers)
      rooted = true
    }
  }

  const found: RealObject[] = []
  let sawMetacopy = upperMetacopy
  for (let i = 0; !d.stop && i < stack.length; i++) {
    const dir = stack[i]!
    d.last = dir.layer.index === layers.lowers.length
    const obj = lookupLayer(dir.layer, dir.path, d, path)
    if (!obj) continue
    // redirect_dir=nofollow (the userxattr format's): a redirect leads nowhere, as the kernel's
    // "refusing to follow redirect".
    if (d.redirected && layers.followRedirects === false) throw fsError('EPERM', 'lookup', path)
    // Of the metacopy files between the top and the data, only the top-most lower one is
    // kept (the kernel's lower stack): its metadata shows when there is no upper.
    const objMetacopy = d.metacopy && !isDirMode(obj.stat.mode)
    sawMetacopy ||= objMetacopy
    if (!objMetacopy || found.length === 0) found.push(obj)
    if (d.stop) break
    if (!rooted && d.name.startsWith('/')) {
      // Go on from the layer below this one, from the roots.
      stack = rootStack(layers)
      rooted = true
      i = dir.layer.index - 1
    }
  }

  // A metacopy file on a mount without metacopy is refused, as a redirect without
  // redirect_dir: it is like a symlink into a lower layer that skips permission checks. One
  // whose data was not found (a whiteout, a directory or nothing below it) is EIO.
  if (sawMetacopy && layers.metacopy !== true) throw fsError('EPERM', 'lookup', path)
  if (d.metacopy || (upperMetacopy && found.length === 0)) throw fsError('EIO', 'lookup', path)

  if (upper) {
    const isDir = isDirMode(upper.stat.mode)
    const origin = originIno(layers, upper)
    if (upperMetacopy) return { path, top: upper, upper, lowerDirs: NO_LOWER_DIRS, origin, isDir, lowerData: dataOf(found, path), lowerTop: found[0] }
    return { path, top: upper, upper, lowerDirs: isDir && found.length > 0 ? found : NO_LOWER_DIRS, origin, isDir }
  }
  const top = found[0]
  if (!top) return undefined
  const isDir = isDirMode(top.stat.mode)
  // A lower metacopy file (an upper made with metacopy=on, pushed down): found[0] has the
  // metadata, the last one the data.
  if (!isDir && found.length > 1) return { path, top, upper: undefined, lowerDirs: NO_LOWER_DIRS, origin: undefined, isDir, lowerData: dataOf(found, path) }
  return { path, top, upper: undefined, lowerDirs: isDir ? found : NO_LOWER_DIRS, origin: undefined, isDir }
}

/**
 * The data of a metacopy file: the last object found. Only a regular file can hold it (the
 * kernel does not check; a layer made so by hand is refused here: EIO).
 */
function dataOf(found: readonly RealObject[], path: string): RealObject {
  const data = found[found.length - 1]!
  if ((data.stat.mode & S_IFMT) !== S_IFREG) throw fsError('EIO', 'lookup', path)
  return data
}

/**
 * The inode of an upper object's copy-up origin: the record names a filesystem by uuid; the
 * first lower layer on it resolves the handle. Undefined without a record, or when the
 * record names no lower layer here (the kernel ignores such a record too).
 */
function originIno(layers: Layers, upper: RealObject): OriginIno | undefined {
  const o = upper.layer.origin(upper.path)
  return o && originInoOf(layers, o)
}

/** The inode an origin record names in this union's lower layers (originIno), undefined when none. */
export function originInoOf(layers: Layers, o: Origin): OriginIno | undefined {
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
    const path = joinPath(dir.path, name)
    const st = dir.layer.tryLstat(path)
    if (!st) {
      if (dir.layer.hasAufsWhiteout(path)) return false
      continue
    }
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
    cache.fill(path, root)
    return root
  }
  const i = path.lastIndexOf('/')
  const parent = tryResolve(layers, cache, i === 0 ? '/' : path.slice(0, i))
  if (!parent) return undefined
  return lookupAndFill(layers, cache, parent, path, path.slice(i + 1))
}

/**
 * tryResolve of `name` in the directory entry `parent` (`path`: the child's union path), for a
 * caller that holds the parent's entry already (ll-ops.ts, by node): no walk of the path.
 */
export function tryResolveIn(layers: Layers, cache: EntryCache, parent: Entry, path: string, name: string): Entry | undefined {
  const hit = cache.get(path)
  if (hit !== undefined) return hit ?? undefined
  return lookupAndFill(layers, cache, parent, path, name)
}

function lookupAndFill(layers: Layers, cache: EntryCache, parent: Entry, path: string, name: string): Entry | undefined {
  if (!parent.isDir) throw fsError('ENOTDIR', 'lookup', path)
  const e = lookupChild(layers, parent, name)
  cache.fill(path, e ?? null)
  return e
}
