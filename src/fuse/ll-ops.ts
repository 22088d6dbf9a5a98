// The lowlevel op table: each request is turned into a union path (nodes.ts), one union call,
// and one reply. No semantics here; errors are errno from the core (errnoOf). Requests are
// answered as their union calls settle, so a slow copy-up never holds up other requests.
import { type BigIntStats, fstatSync, lstatSync } from 'node:fs'
import { constants } from 'node:os'
import { errnoOf, fsError } from '../errors.js'
import type { TimeSpec } from '../layers/native.js'
import { nameBytes } from '../layers/native/names.js'
import * as attr from '../union/attr-ops.js'
import * as dir from '../union/dir-ops.js'
import * as detached from '../union/detached-dir.js'
import type { DetachedDir } from '../union/detached-dir.js'
import { type Entry, joinPath, parentOf } from '../union/entry.js'
import * as file from '../union/file-ops.js'
import type { IdMap } from '../union/id-map.js'
import type { UnionStat } from '../union/inode.js'
import type { Union } from '../union/union.js'
import { fuseLog, requestLog } from '../log.js'
import type { Handle } from '../union/handles.js'
import { DIRENTPLUS_HEADER, type LowLevelSession, OP_NAMES, Op, OpenFlags, type Request, SetAttr, type SetAttrValues, kernelFd,
  RING_TOKEN, putDirentPlus } from './lowlevel.js'
import { type Node, type NodeKey, Nodes, inoKey } from './nodes.js'
import { RenameLock } from './rename-lock.js'
import { S_IFREG } from '../layers/layer.js'
import { RENAME_EXCHANGE } from '../layers/upper.js'
import { LRUCache } from 'lru-cache'

const E = constants.errno

/** How long the kernel may trust what we tell it (seconds). */
export interface CacheTimeouts {
  /** A name's lookup. */
  entry: number
  /** A node's attributes. */
  attr: number
  /** A name's absence. */
  negative: number
}

interface DirHandle {
  /** The directory's node: its path is taken when listing (it may have moved since opendir). */
  node: Node
  listing: attr.Listing | undefined
}

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const O_ACCMODE = 3
const S_ISUID = 0o4000
const S_ISGID = 0o2000
const O_RDONLY = 0
const DIRENT_HEADER = 24

/**
 * Names kept in listings past their directory handles: ~40 bytes each (the name, its type and
 * inode number). A walk reads each listing once (the kernel keeps its own copy), so these
 * serve only re-opens after the kernel dropped its copy.
 */
const MAX_LISTED_NAMES = 20_000
/** Directory entries kept by node for LOOKUPs (#dirEntries): a walk needs the few it is in. */
const DIR_ENTRIES = 4096

/**
 * LAYERFS_MAX_NODES (opt-in; unset or 0: no cap): the nodes the kernel may hold before it is
 * asked to drop some. A node costs ~55 bytes here (nodes.ts), and the kernel keeps
 * every inode it has looked up while it has memory to spare (a walk of a million files: a
 * million nodes). Past the cap the least recently looked-up files are invalidated
 * (FUSE_NOTIFY_INVAL_ENTRY), the kernel forgets them, and a later use looks them up again.
 * Opt-in because an invalidation is d_invalidate(): a bind mount on that file (a container's
 * /etc/resolv.conf, made in a namespace the daemon cannot see) is detached. Directories are
 * never invalidated (mount points, working directories: getcwd() would fail).
 */
export const MIN_MAX_NODES = 100

/** Requests that create, remove or move names (see #listingsChangedBy). */
const CHANGES_NAMES: ReadonlySet<number> = new Set([Op.MKNOD, Op.MKDIR, Op.SYMLINK, Op.CREATE, Op.LINK, Op.UNLINK,
  Op.RMDIR, Op.RENAME])

/** Requests whose union call awaits with union paths in hand (see rename-lock.ts). */
const HOLDS_PATHS: ReadonlySet<number> = new Set([Op.OPEN, Op.SETATTR, Op.LINK, Op.UNLINK, Op.RENAME, Op.SETXATTR,
  Op.REMOVEXATTR, Op.FSYNCDIR])

/** The name a tmpfile's node is bound to for an instant: no directory can hold a NUL. */
const TMPFILE_NAME = '\0tmpfile'

/** A SETATTR's atime and mtime as utimensat(2) takes them: 'now', the time given, or 'omit'. */
function timesOf(set: number, atimeNs: bigint, mtimeNs: bigint): [TimeSpec, TimeSpec] {
  const time = (given: number, now: number, ns: bigint): TimeSpec => (set & now ? 'now' : set & given ? ns : 'omit')
  return [time(SetAttr.ATIME, SetAttr.ATIME_NOW, atimeNs), time(SetAttr.MTIME, SetAttr.MTIME_NOW, mtimeNs)]
}

/** The union's stat of a file from an fstat of its handle, showing inode number `ino`. */
function statOfFstat(ids: IdMap, st: BigIntStats, ino: bigint): UnionStat {
  return {
    mode: Number(st.mode), uid: ids.uidOut(Number(st.uid)), gid: ids.gidOut(Number(st.gid)), size: Number(st.size),
    nlink: Number(st.nlink), ino, rdev: Number(st.rdev), blksize: Number(st.blksize),
    blocks: Number(st.blocks), atimeNs: st.atimeNs, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs,
  }
}

/** The xattr a write drops, which the kernel looks for before each write (lowlevel.c, "capability probes"). */
const CAPABILITY = 'security.capability'

/** Thrown inside a handler to answer with a bare errno. */
const enoent = (syscall: string): Error => fsError('ENOENT', syscall)

export class LowLevelOps {
  readonly #u: Union
  readonly #t: CacheTimeouts
  readonly #nodes: Nodes
  #session: LowLevelSession | undefined
  readonly #dirs = new Map<number, DirHandle>()
  readonly #renames = new RenameLock()
  /**
   * Merged listings by directory node, for the opens whose listing the kernel no longer holds
   * (it keeps one per directory inode while the inode lives, FOPEN_CACHE_DIR): dropped for a
   * directory whenever a request creates, removes or moves a name in it or moves it (its
   * '..'), and all at once on a copy-up (a broken lower hard link's d_ino changes).
   */
  readonly #listings = new LRUCache<Node, attr.Listing>({ max: 2000, maxSize: MAX_LISTED_NAMES, sizeCalculation: l => l.names.length })
  /** Open file handles (union handle ids) per node: an unlinked open file is reached through them. */
  readonly #openFiles = new Map<Node, Set<number>>()
  /** The kernel's handle (a dup of the real fd, see lowlevel.c) -> the union handle id, and back. */
  readonly #handleOf = new Map<number, number>()
  readonly #kernelFdOf = new Map<Handle, number>()
  /**
   * Passthrough: the backing id of each node with files open so (one per node while any is
   * open, as the kernel wants it), how many, and the node of each such kernel handle.
   */
  readonly #backing = new Map<Node, { id: number; open: number; attrFd: number | undefined }>()
  readonly #passedThrough = new Map<number, Node>()
  /** Whether opens are still tried for passthrough (off once the kernel refused one for good). */
  #passthrough = true
  /**
   * Directory nodes whose name went (rmdir, replaced by a rename) while the kernel holds them:
   * their real directories, until the kernel forgets them (union/detached-dir.ts).
   */
  readonly #detached = new Map<Node, DetachedDir>()
  readonly #maxNodes: number
  /**
   * The entries of directories the kernel looks up in, by node, so that a LOOKUP builds no
   * path of its parent and walks none through the entry cache. Each is the entry cache's own
   * answer for the node's path, good while the cache's epoch stays (any change there empties
   * this); at most DIR_ENTRIES of them, else emptied too.
   */
  readonly #dirEntries = new Map<Node, Entry>()
  #dirEntriesEpoch = -1
  /** See #createdWithoutCapability. */
  #createdNoCap: boolean | undefined

  constructor(u: Union, timeouts: CacheTimeouts, maxNodes = maxNodesFromEnv()) {
    this.#u = u
    this.#t = timeouts
    this.#maxNodes = maxNodes
    this.#nodes = new Nodes(attr.getattr(u, '/').ino, maxNodes > 0)
    u.onCopyUp = path => this.#copiedUp(path)
    u.onHandleMoved = h => {
      const kfd = this.#kernelFdOf.get(h)
      if (kfd !== undefined) kernelFd.retarget(kfd, h.fd)
    }
  }

  /**
   * Whether a getxattr of security.capability on a file just created answers ENODATA (not
   * ENOTSUP: noxattrs, an upper without xattrs). Asked of the first file created; the upper
   * layer is one filesystem.
   */
  #createdWithoutCapability(path: string): boolean {
    if (this.#createdNoCap === undefined) {
      try {
        this.#createdNoCap = attr.getxattr(this.#u, path, CAPABILITY) === undefined
      } catch {
        this.#createdNoCap = false
      }
    }
    return this.#createdNoCap
  }

  /**
   * A handle that writes a regular file of the upper layer: the GETATTRs the kernel sends with
   * it (after each write it drops the size and times it caches) are answered in C from an fstat
   * of the handle, which is what tryGetattr would answer (the upper file's stat, the union's
   * st_ino) unless owners are mapped or the file is a metacopy file. Its writes and fallocates
   * also drop S_ISGID without group-exec for a caller outside the file's group (lowlevel.c,
   * ll_kill_sgid), which needs the same: the file's group in the caller's terms.
   */
  #attrsInC(kfd: number, id: number, path: string, attrTimeout: number): void {
    const h = this.#u.handles.get(id)
    if (h === undefined || (h.flags & O_ACCMODE) === O_RDONLY) return
    const ino = this.#inoForC(id, path)
    if (ino !== undefined) kernelFd.attrsInC(kfd, ino, attrTimeout)
  }

  /**
   * The union's st_ino of the file of handle `id`, where its fstat is the union's stat (an
   * upper regular file with its data, owners not mapped): undefined elsewhere.
   */
  #inoForC(id: number, path: string): bigint | undefined {
    if (!this.#u.handles.get(id)?.upper) return undefined
    const u = this.#u.route(path)
    const e = u.tryResolve(path)
    if (e === undefined || e.lowerData !== undefined || (e.top.stat.mode & S_IFMT) !== S_IFREG || !u.inodes.ids.identity) return undefined
    return u.inodes.inoOf(e)
  }

  /**
   * How long the kernel may keep a node's attributes: the mount's timeout, but none while files
   * of the node are passed through. The kernel drops them itself after a write(2) there, not
   * after a store through a shared mapping, which changes the backing file's mtime and ctime
   * behind its cache (xfstests generic/215 found it): each stat then asks, answered from the
   * upper file. #backingFor and #releaseBacking drop what was cached before and during.
   */
  #attrTimeout(node: Node): number {
    return this.#backing.has(node) ? 0 : this.#t.attr
  }

  /**
   * The mode of the regular file at `path` when its data is in the main union's upper layer
   * (so passthrough may be right for it, #backingFor); undefined otherwise. A volume's files
   * may change behind the mount and stay on the served path.
   */
  #upperDataMode(path: string): number | undefined {
    if (this.#u.route(path) !== this.#u.main) return undefined
    const e = this.#u.main.tryResolve(path)
    return e === undefined || e.upper === undefined || e.lowerData !== undefined ? undefined : e.top.stat.mode
  }

  /**
   * Passthrough for an open just made: the backing id to answer it with, or 0 for the served
   * path. The kernel reads and writes a passthrough file on its backing file itself, which is
   * right only where no copy-up can come between: the file's data in the upper layer (`mode`:
   * #upperDataMode). A lower file stays served, so that a reader sees the data a copy-up moves
   * to the upper, as on kernel overlayfs (the kernel cannot move a passthrough file to another
   * backing file). The kernel wants every open of an inode the same way at a time, on one
   * backing file (else EIO to the caller): a node with files open served stays served until
   * they close, and one open passed through passes every later open through. Setuid and setgid
   * files stay served: a write's dropping of the bits is done by lowlevel.c there. `path`: where
   * the node's stats can be answered in C from then on (#inoForC); none for a nameless file.
   */
  #backingFor(node: Node, kfd: number, id: number, mode: number | undefined, path?: string, fresh = false): number {
    const b = this.#backing.get(node)
    if (b !== undefined) {
      b.open++
      this.#passedThrough.set(kfd, node)
      return b.id
    }
    if (!this.#passthrough || mode === undefined || (mode & S_IFMT) !== S_IFREG || (mode & (S_ISUID | S_ISGID)) !== 0) return 0
    if (!this.#u.handles.get(id)?.upper || (this.#openFiles.get(node)?.size ?? 0) > 1) return 0
    const r = this.#session!.backingOpen(kfd)
    if (r < 0) {
      // No CAP_SYS_ADMIN, not negotiated, or the upper sits on a stacked filesystem: for good.
      fuseLog('passthrough off: errno %d', -r)
      this.#passthrough = false
      return 0
    }
    // Its stats come without a handle and uncached (#attrTimeout): answered in C where they can.
    const ino = path === undefined ? undefined : this.#inoForC(id, path)
    let attrFd: number | undefined
    if (ino !== undefined) {
      try {
        attrFd = kernelFd.dup(kfd)
        kernelFd.attrsInC(attrFd, ino, 0)
        kernelFd.nodeAttrsInC(node, attrFd)
      } catch {
        // Out of descriptors: its stats are answered in JS instead.
      }
    }
    this.#backing.set(node, { id: r, open: 1, attrFd })
    this.#passedThrough.set(kfd, node)
    // Attributes cached before (for a day) would hide what shared mappings change (#attrTimeout).
    // A node a CREATE or TMPFILE is making has nothing cached yet: no write to the device.
    if (!fresh) this.#session!.invalidateInode(node)
    return r
  }

  /** A kernel handle released: its node's backing id goes with the last passthrough file. */
  #releaseBacking(kfd: number): void {
    const node = this.#passedThrough.get(kfd)
    if (node === undefined) return
    this.#passedThrough.delete(kfd)
    const b = this.#backing.get(node)!
    if (--b.open > 0) return
    this.#backing.delete(node)
    this.#session!.backingClose(b.id)
    if (b.attrFd !== undefined) {
      kernelFd.nodeAttrsInC(node, -1)
      kernelFd.close(b.attrFd)
    }
    this.#session!.invalidateInode(node)
  }

  /** The union handle behind the kernel's handle. */
  #handle(kfd: number | undefined): number {
    const id = kfd === undefined ? undefined : this.#handleOf.get(kfd)
    if (id === undefined) throw fsError('EBADF', 'handle')
    return id
  }

  /** A union handle just opened: the kernel gets a descriptor of the same file as its handle. */
  #kernelHandle(node: Node, id: number): number {
    const h = this.#u.handles.get(id)!
    let kfd: number
    try {
      kfd = kernelFd.dup(h.fd)
    } catch (err) {
      file.release(this.#u, id)
      throw err
    }
    this.#handleOf.set(kfd, id)
    this.#kernelFdOf.set(h, kfd)
    let set = this.#openFiles.get(node)
    if (set === undefined) this.#openFiles.set(node, (set = new Set()))
    set.add(id)
    return kfd
  }

  get nodes(): Nodes {
    return this.#nodes
  }

  attach(session: LowLevelSession): void {
    this.#session = session
  }

  /** Entry point for every request: one reply, always. */
  readonly handle = (r: Request): void => {
    const s = this.#session!
    if (requestLog.enabled) requestLog('%s %d %s%s', OP_NAMES[r.op], r.ino, r.name ?? '', r.req >= RING_TOKEN ? ' (ring)' : '')
    const changed = CHANGES_NAMES.has(r.op) ? this.#listingsChangedBy(r) : undefined
    const dropListings = (): void => {
      if (changed) for (const n of changed) this.#listings.delete(n)
    }
    dropListings()
    if (!HOLDS_PATHS.has(r.op)) {
      this.#run(s, r)
      dropListings()
      return
    }
    void this.#renames.acquire(r.op === Op.RENAME && this.#renamesDirectory(r)).then(release => {
      const p = this.#run(s, r)
      if (p) p.finally(() => { dropListings(); release() }).catch(() => {})
      else {
        dropListings()
        release()
      }
    })
  }

  /**
   * The directories whose cached listings a request may change: its parent(s) and, for a
   * rename, the moved directory (its '..'). Dropped before the request runs and again when it
   * is done (a listing taken meanwhile, while it awaited, is already stale).
   */
  #listingsChangedBy(r: Request): Node[] {
    const nodes: Node[] = []
    const add = (id: number): void => {
      const n = this.#nodes.get(id)
      if (n) nodes.push(n)
    }
    if (r.op === Op.LINK) {
      add(r.ino2)
      return nodes
    }
    add(r.ino)
    if (r.op === Op.RENAME) {
      add(r.ino2)
      const moved = nodes[0] && r.name ? this.#nodes.child(nodes[0], r.name) : undefined
      if (moved) nodes.push(moved)
      // An exchange moves the other one too.
      const newParent = r.flags & RENAME_EXCHANGE ? this.#nodes.get(r.ino2) : undefined
      const other = newParent && typeof r.name2 === 'string' ? this.#nodes.child(newParent, r.name2) : undefined
      if (other) nodes.push(other)
    }
    return nodes
  }

  /** Dispatch one request; a promise when it is still running. */
  #run(s: LowLevelSession, r: Request): Promise<void> | undefined {
    let p: Promise<void> | void
    try {
      p = this.#dispatch(s, r)
    } catch (err) {
      this.#fail(s, r, err)
      return undefined
    }
    return p ? p.catch((err: unknown) => this.#fail(s, r, err)) : undefined
  }

  /** Whether a RENAME moves a directory (so the paths below it change): an exchange moves two. */
  #renamesDirectory(r: Request): boolean {
    try {
      if (this.#u.tryResolve(joinPath(this.#path(r.ino), r.name!))?.isDir) return true
      return (r.flags & RENAME_EXCHANGE) !== 0 && (this.#u.tryResolve(joinPath(this.#path(r.ino2), r.name2 as string))?.isDir ?? false)
    } catch {
      return false
    }
  }

  #fail(s: LowLevelSession, r: Request, err: unknown): void {
    const n = errnoOf(err)
    if (n === -E.EIO) fuseLog('%s %d: %O', OP_NAMES[r.op], r.ino, err)
    s.err(r.req, -n)
  }

  #node(id: number): Node {
    const n = this.#nodes.get(id)
    if (n === undefined) throw fsError('ESTALE', 'node')
    return n
  }

  #path(id: number): string {
    const p = this.#nodes.path(this.#node(id))
    if (p === undefined) throw enoent('path')
    return p
  }

  /** A node's union path, or its held directory once its name went; ENOENT when neither. */
  #target(id: number): string | DetachedDir {
    const node = this.#node(id)
    const p = this.#nodes.path(node)
    if (p !== undefined) return p
    const d = this.#detached.get(node)
    if (d === undefined) throw enoent('path')
    return d
  }

  /**
   * The directory node at `name` in `parent`, whose name a request is about to take away:
   * its real directory held (taken before the union removes or replaces it).
   */
  #holdDir(parent: Node, name: string, path: string): { node: Node; d: DetachedDir } | undefined {
    const node = this.#nodes.child(parent, name)
    if (node === undefined || !this.#nodes.isDir(node)) return undefined
    const d = detached.detachDir(this.#u, path)
    return d && { node, d }
  }

  /** The name went: a node left without one keeps its held directory (kernel fds, cwds). */
  #detach(held: { node: Node; d: DetachedDir } | undefined): void {
    if (held === undefined) return
    const { node, d } = held
    if (this.#nodes.isNamed(node) || !this.#nodes.has(node) || this.#detached.has(node)) detached.releaseDetached(d)
    else this.#detached.set(node, d)
  }

  /**
   * The entry of directory node `id` for a LOOKUP in it (#dirEntries), or undefined where the
   * path is the way: a union with volumes, a node without a path (its name
   * went), anything not a directory, an error (the path way gives it).
   */
  #dirEntry(id: number): Entry | undefined {
    const u = this.#u
    if (u.volumes.length > 0) return undefined
    const epoch = u.cache.epoch
    if (epoch !== this.#dirEntriesEpoch || this.#dirEntries.size >= DIR_ENTRIES) {
      this.#dirEntries.clear()
      this.#dirEntriesEpoch = epoch
    }
    const node = this.#nodes.get(id)
    if (node === undefined) return undefined
    const known = this.#dirEntries.get(node)
    if (known !== undefined) return known
    const path = this.#nodes.path(node)
    if (path === undefined) return undefined
    let e: Entry | undefined
    try {
      e = u.tryResolve(path)
    } catch {
      return undefined
    }
    if (e === undefined || !e.isDir || u.cache.epoch !== epoch) return undefined
    this.#dirEntries.set(node, e)
    return e
  }

  #stat(path: string): UnionStat {
    const st = attr.tryGetattr(this.#u, path)
    if (!st) throw enoent('getattr')
    return st
  }

  /** What makes the object at `path` one node with others (nodes.ts NodeKey). */
  #keyOf(path: string, st: UnionStat): NodeKey {
    if ((st.mode & S_IFMT) === S_IFDIR || st.nlink < 2) return inoKey(st.ino)
    return this.#u.tryResolve(path)?.upper ? inoKey(st.ino) : path
  }

  /** The kernel learns `name` in `parent`: its node, one more lookup counted. */
  #lookedUp(parentId: number, name: string, path: string, st: UnionStat): Node {
    const parent = this.#node(parentId)
    const key = this.#keyOf(path, st)
    const prior = this.#nodes.keyed(key)
    // Another name of the same inode (a hard link), or a node whose object went behind our
    // back and whose inode number the host reused: only the first still resolves to it.
    if (prior !== undefined && this.#nodes.child(parent, name) !== prior && !this.#stillNames(prior, st.ino)) this.#nodes.retire(prior)
    const node = this.#nodes.lookedUp(parent, name, key, st.ino, (st.mode & S_IFMT) === S_IFDIR)
    if (this.#maxNodes > 0 && this.#nodes.held > this.#maxNodes) this.#dropSome()
    return node
  }

  /**
   * Whether `node`'s first name still leads to an object of union inode number `ino`, looked
   * at afresh: the entry cache keeps a lower object's lstat as it was (the layers are not to
   * change behind the mount, and this is where they did).
   */
  #stillNames(node: Node, ino: bigint): boolean {
    const path = this.#nodes.path(node)
    if (path === undefined) return false
    try {
      const e = this.#u.tryResolve(path)
      const real = e?.top.layer.tryLstat(e.top.path)
      return e !== undefined && real !== undefined && real.ino === e.top.stat.ino && attr.tryGetattr(this.#u, path)?.ino === ino
    } catch {
      return false
    }
  }

  /**
   * Past the cap, ask the kernel to drop the least recently looked-up files, down to 15/16
   * of it (a batch, not one per request). Directories stay, open files (their node is how the
   * kernel reaches their handles), and files with several names. The notifications go out
   * from a thread of the addon: the kernel takes the parent's lock for one, which a LOOKUP
   * pending here may hold.
   */
  #dropSome(): void {
    const s = this.#session
    if (s === undefined) return
    const want = this.#nodes.held - this.#maxNodes + (this.#maxNodes >> 4)
    // A hard link's other names keep its inode: dropping one name frees nothing.
    const nodes = this.#nodes
    const keep = (n: Node): boolean => nodes.isDir(n) || nodes.hasLinks(n) || this.#openFiles.has(n) || this.#detached.has(n)
    for (const node of this.#nodes.evictable(want, keep)) {
      if (!s.queueInvalidateEntry(this.#nodes.parentOf(node)!, nameBytes(this.#nodes.nameOf(node)))) break
      this.#nodes.dropping(node)
    }
  }

  /** Reply an entry for `name` in `parent` (just made or looked up). */
  #entry(s: LowLevelSession, r: Request, parentId: number, name: string, path: string, st: UnionStat): void {
    const node = this.#lookedUp(parentId, name, path, st)
    s.entry(r.req, node, st, this.#t.entry, this.#attrTimeout(node))
  }

  /** A fresh stat of a node's object: a changed st_ino (a broken lower hard link) re-keys it. */
  #saw(node: Node, path: string, st: UnionStat): void {
    if (inoKey(st.ino) === this.#nodes.ino(node)) return
    this.#nodes.setIno(node, st.ino)
    this.#nodes.rekey(node, this.#keyOf(path, st))
  }

  /**
   * What the kernel caches of a copied-up object is stale: its ctime, maybe st_ino, nlink. So
   * are its parent's attributes: the parent's upper directory got an entry (a tmpfs directory's
   * size grows with its entries), its times put back and maybe an impure mark (its ctime), and
   * no request of the kernel's was about the parent (test/regress/stale-merged-dir-attrs). A
   * broken lower hard link (its st_ino changes) also has a stale d_ino in the listing the
   * kernel keeps of its directory (FOPEN_CACHE_DIR): that listing's pages are dropped too
   * (found by scripts/fuzz/run, seed 60053). Directory pages are never locked across a request
   * to us, so this cannot wait on a request of ours.
   */
  #copiedUp(path: string): void {
    // (lru-cache's clear() walks its whole table: 23 ms over a chmod of 1,000 lower files.)
    if (this.#listings.size > 0) this.#listings.clear()
    const node = this.#nodes.find(path)
    const parent = path === '/' ? undefined : this.#nodes.find(parentOf(path))
    let inoChanged = false
    if (node !== undefined) {
      const inoBefore = this.#nodes.ino(node)
      // The inode number from the entry (no stat): a fresh stat only when it changed.
      const e = this.#u.tryResolve(path)
      if (e === undefined || inoKey(this.#u.route(path).inodes.inoOf(e)) !== inoBefore) {
        const st = attr.tryGetattr(this.#u, path)
        if (st) this.#saw(node, path, st)
        inoChanged = st !== undefined && inoKey(st.ino) !== inoBefore
      }
      this.#session?.invalidateInode(node)
    }
    if (parent !== undefined) {
      if (inoChanged) this.#session?.invalidateInode(parent, 0, 0)
      else this.#session?.invalidateInode(parent)
    }
  }

  #dispatch(s: LowLevelSession, r: Request): Promise<void> | void {
    const u = this.#u
    const caller = { uid: r.uid, gid: r.gid }
    switch (r.op) {
      case Op.LOOKUP: {
        const name = r.name!
        const parent = this.#dirEntry(r.ino)
        if (parent === undefined) {
          const path = joinPath(this.#path(r.ino), name)
          const st = attr.tryGetattr(u, path)
          if (!st) return s.negative(r.req, this.#t.negative)
          return this.#entry(s, r, r.ino, name, path, st)
        }
        const path = joinPath(parent.path, name)
        const found = attr.tryGetattrIn(u, parent, path, name)
        if (!found) return s.negative(r.req, this.#t.negative)
        const node = this.#lookedUp(r.ino, name, path, found.st)
        if (found.e.isDir && this.#dirEntriesEpoch === u.cache.epoch) this.#dirEntries.set(node, found.e)
        return s.entry(r.req, node, found.st, this.#t.entry, this.#attrTimeout(node))
      }
      case Op.FORGET: {
        const node = this.#nodes.get(r.ino)
        this.#nodes.forget(r.ino, r.size)
        const d = node && this.#nodes.get(r.ino) === undefined ? this.#detached.get(node) : undefined
        if (d) {
          this.#detached.delete(node!)
          detached.releaseDetached(d)
        }
        return
      }
      case Op.GETATTR: {
        const node = this.#node(r.ino)
        return s.attr(r.req, this.#getattr(node, r.fh), this.#attrTimeout(node))
      }
      case Op.STATX: {
        // statx(2) asking for the birth time (lowlevel.c answers those of open upper files).
        const node = this.#node(r.ino)
        return s.statx(r.req, this.#getattr(node, r.fh), this.#btime(node, r.fh), this.#attrTimeout(node))
      }
      case Op.SETATTR:
        return this.#setattr(s, r)
      case Op.READLINK:
        return s.readlink(r.req, nameBytes(attr.readlink(u, this.#path(r.ino))))
      case Op.MKNOD: case Op.MKDIR: case Op.SYMLINK: {
        const name = r.name!
        const path = joinPath(this.#path(r.ino), name)
        if (r.op === Op.MKNOD) dir.mknod(u, path, r.mode, r.extra as number, caller)
        else if (r.op === Op.MKDIR) dir.mkdir(u, path, r.mode, caller)
        else dir.symlink(u, (r.name2 as string), path, caller)
        return this.#entry(s, r, r.ino, name, path, this.#stat(path))
      }
      case Op.LINK: {
        const tmp = this.#node(r.ino)
        const tmpId = this.#nodes.path(tmp) === undefined ? this.#anyHandle(tmp) : undefined
        if (tmpId !== undefined && file.isTmpfile(u, tmpId)) {
          // linkat(2) of an O_TMPFILE file: its first name, on its own node (file.linkTmpfile).
          const name = (r.name2 as string)
          const to = joinPath(this.#path(r.ino2), name)
          file.linkTmpfile(u, tmpId, to)
          this.#nodes.named(tmp, this.#node(r.ino2), name)
          return s.entry(r.req, tmp, this.#stat(to), this.#t.entry, this.#attrTimeout(tmp))
        }
        const from = this.#path(r.ino)
        const name = (r.name2 as string)
        const to = joinPath(this.#path(r.ino2), name)
        return dir.link(u, from, to).then(() => {
          this.#entry(s, r, r.ino2, name, to, this.#stat(to))
        })
      }
      case Op.UNLINK: case Op.RMDIR: {
        const name = r.name!
        const path = joinPath(this.#path(r.ino), name)
        const parent = this.#node(r.ino)
        if (r.op === Op.UNLINK) {
          return dir.unlink(u, path).then(() => {
            this.#nodes.removeName(parent, name)
            s.err(r.req, 0)
          })
        }
        const held = this.#holdDir(parent, name, path)
        try {
          dir.rmdir(u, path)
        } catch (err) {
          if (held) detached.releaseDetached(held.d)
          throw err
        }
        this.#nodes.removeName(parent, name)
        this.#detach(held)
        return s.err(r.req, 0)
      }
      case Op.RENAME: {
        // renameat2's flags come with RENAME2 (lowlevel.c): NOREPLACE and EXCHANGE.
        const name = r.name!
        const newName = (r.name2 as string)
        const parent = this.#node(r.ino)
        const newParent = this.#node(r.ino2)
        const from = joinPath(this.#path(r.ino), name)
        const to = joinPath(this.#path(r.ino2), newName)
        if (r.flags & RENAME_EXCHANGE) {
          return dir.rename(u, from, to, r.flags).then(() => {
            this.#nodes.exchange(parent, name, newParent, newName)
            s.err(r.req, 0)
          })
        }
        const moved = this.#nodes.child(parent, name)
        const replaced = this.#nodes.child(newParent, newName)
        const held = moved !== undefined && this.#nodes.isDir(moved) && replaced !== moved ? this.#holdDir(newParent, newName, to) : undefined
        return dir.rename(u, from, to, r.flags).then(() => {
          this.#nodes.rename(parent, name, newParent, newName)
          this.#detach(held)
          s.err(r.req, 0)
        }, (err: unknown) => {
          if (held) detached.releaseDetached(held.d)
          throw err
        })
      }
      case Op.OPEN: {
        const node = this.#node(r.ino)
        const path = this.#path(r.ino)
        // The caller, for what open(O_TRUNC) does to setuid/setgid bits (file.killPrivs). What a
        // write does to them, the kernel asks for itself (a SETATTR before the write), except
        // S_ISGID without group-exec for a caller outside the group: writes never reach JS, and
        // lowlevel.c drops that one (#attrsInC).
        return file.open(u, path, r.flags, { uid: r.uid, gid: r.gid, pid: r.pid }).then(id => {
          const kfd = this.#kernelHandle(node, id)
          const backing = this.#backingFor(node, kfd, id, this.#upperDataMode(path), path)
          this.#attrsInC(kfd, id, path, this.#attrTimeout(node))
          if (backing > 0) s.open(r.req, kfd, OpenFlags.PASSTHROUGH, backing)
          else s.open(r.req, kfd, this.#keepCache(node, path))
        })
      }
      case Op.CREATE: {
        const name = r.name!
        const path = joinPath(this.#path(r.ino), name)
        const fh = file.create(u, path, r.mode, caller)
        let st: UnionStat
        try {
          st = this.#stat(path)
        } catch (err) {
          file.release(u, fh)
          throw err
        }
        const node = this.#lookedUp(r.ino, name, path, st)
        this.#nodes.setCacheStamp(node, stampOf(st))
        // A new file has no security.capability (nothing is inherited): the kernel's probe
        // before each write need not reach us, where we would answer ENODATA.
        if (this.#createdWithoutCapability(path)) s.noCapability(node, r)
        const kfd = this.#kernelHandle(node, fh)
        const backing = this.#backingFor(node, kfd, fh, this.#upperDataMode(path), path, true)
        this.#attrsInC(kfd, fh, path, this.#attrTimeout(node))
        s.create(r.req, node, st, this.#t.entry, this.#attrTimeout(node), kfd, backing > 0 ? OpenFlags.PASSTHROUGH : 0, backing)
        return
      }
      case Op.TMPFILE: {
        // open(dir, O_TMPFILE), handed over by lowlevel.c as a CREATE: an unnamed upper file
        // (file.tmpfile). Its node is nameless from the start, as an unlinked open file's,
        // reached through its open handles until a link names it or the kernel forgets it.
        const dirPath = this.#path(r.ino)
        const fh = file.tmpfile(u, dirPath, r.flags, r.mode, caller)
        let st: UnionStat
        try {
          st = this.#tmpfileStat(fh, dirPath)
        } catch (err) {
          file.release(u, fh)
          throw err
        }
        const parent = this.#node(r.ino)
        const node = this.#nodes.lookedUp(parent, TMPFILE_NAME, inoKey(st.ino), st.ino, false)
        this.#nodes.removeName(parent, TMPFILE_NAME)
        const kfd = this.#kernelHandle(node, fh)
        const mode = this.#u.route(dirPath) === this.#u.main ? st.mode : undefined
        const backing = this.#backingFor(node, kfd, fh, mode, undefined, true)
        // Its attributes as they are: nlink 0, as fstat shows it on kernel overlayfs.
        s.create(r.req, node, st, this.#t.entry, this.#attrTimeout(node), kfd, backing > 0 ? OpenFlags.PASSTHROUGH : 0, backing)
        return
      }
      case Op.RELEASE: {
        const id = this.#handle(r.fh)
        const h = u.handles.get(id)
        if (h) this.#kernelFdOf.delete(h)
        this.#handleOf.delete(r.fh!)
        this.#releaseBacking(r.fh!)
        kernelFd.close(r.fh!)
        file.release(u, id)
        const node = this.#nodes.get(r.ino)
        if (node) {
          const open = this.#openFiles.get(node)
          open?.delete(id)
          if (open?.size === 0) this.#openFiles.delete(node)
        }
        return s.err(r.req, 0)
      }
      case Op.FSYNC:
        return file.fsync(u, this.#handle(r.fh), r.flags !== 0).then(() => s.err(r.req, 0))
      case Op.READDIR:
        return this.#readdir(s, r)
      case Op.READDIRPLUS:
        return this.#readdirplus(s, r)
      case Op.RELEASEDIR:
        // Answered in C (lowlevel.c, ll_opendir): only reported.
        this.#dirs.delete(r.fh!)
        return
      case Op.FSYNCDIR: {
        const path = this.#target(r.ino)
        if (typeof path !== 'string') {
          detached.detachedFsync(path)
          return s.err(r.req, 0)
        }
        return file.fsyncDir(u, path).then(() => s.err(r.req, 0))
      }
      case Op.STATFS:
        return s.statfs(r.req, attr.statfs(u))
      case Op.SETXATTR: {
        const path = this.#target(r.ino)
        if (typeof path !== 'string') {
          detached.detachedSetxattr(path, r.name!, r.name2 as Buffer, r.flags)
          return s.err(r.req, 0)
        }
        return attr.setxattr(u, path, r.name!, r.name2 as Buffer, r.flags).then(() => s.err(r.req, 0))
      }
      case Op.GETXATTR: {
        const path = this.#target(r.ino)
        const value = typeof path === 'string' ? attr.getxattr(u, path, r.name!) : detached.detachedGetxattr(path, r.name!)
        if (value === undefined) {
          // The kernel asks this before every write of the file: the same answer is given in C
          // until a SETXATTR of the node.
          if (r.name === CAPABILITY && typeof path === 'string') s.noCapability(r.ino, r)
          return s.err(r.req, E.ENODATA)
        }
        return this.#sized(s, r, value)
      }
      case Op.LISTXATTR: {
        const path = this.#target(r.ino)
        const names = typeof path === 'string' ? attr.listxattr(u, path) : detached.detachedListxattr(path)
        return this.#sized(s, r, Buffer.concat(names.flatMap(n => [nameBytes(n), NUL])))
      }
      case Op.REMOVEXATTR: {
        const path = this.#target(r.ino)
        if (typeof path !== 'string') {
          detached.detachedRemovexattr(path, r.name!)
          return s.err(r.req, 0)
        }
        return attr.removexattr(u, path, r.name!).then(() => s.err(r.req, 0))
      }
      default:
        return s.err(r.req, E.ENOSYS)
    }
  }

  /** A getxattr/listxattr answer: the size for a size query, ERANGE when it does not fit. */
  #sized(s: LowLevelSession, r: Request, value: Buffer): void {
    if (r.size === 0) return s.xattrSize(r.req, value.length)
    if (value.length > r.size) return s.err(r.req, E.ERANGE)
    return s.buf(r.req, value)
  }

  /**
   * Whether the kernel keeps its pages of a file at an open. In the main union, always: every
   * change to a file's data comes through the kernel's page cache of its node (writes, mmap,
   * truncate; a copy-up copies the same bytes; an upper file's names are one node, and a lower
   * hard link broken by a copy-up leaves its other names their own nodes and the old data, as
   * the kernel's), and changing the layers behind the mount is not supported. fuse-overlayfs
   * keeps them too; dropping them at each open made every program re-read what it had just
   * written or read (`make -j2` of 200 objects: 615 READs and 1,783 GETATTRs, 415 and 1,583
   * kept). A volume's host directory may change behind the mount: there the pages stay only
   * while the file's size and mtime are as at its last open (libfuse's auto_cache).
   */
  #keepCache(node: Node, path: string): number {
    if (this.#u.route(path) === this.#u.main) return OpenFlags.KEEP_CACHE
    const st = attr.tryGetattr(this.#u, path)
    if (!st) return 0
    const stamp = stampOf(st)
    const keep = this.#nodes.cacheStamp(node) === stamp
    this.#nodes.setCacheStamp(node, stamp)
    return keep ? OpenFlags.KEEP_CACHE : 0
  }

  /** A tmpfile's attributes, from its handle: an upper object of its own (no origin). */
  #tmpfileStat(fh: number, dir: string): UnionStat {
    const u = this.#u.route(dir)
    const st = file.fstat(u, fh)
    return statOfFstat(u.inodes.ids, st, u.inodes.ino(u.requireUpper('open', dir), st.ino))
  }

  /** Some open handle (union handle id) of a node, if any. */
  #anyHandle(node: Node): number | undefined {
    return this.#openFiles.get(node)?.values().next().value
  }

  /**
   * The attributes of a node: by its path, or through an open handle once it has no name.
   * `kfd`: the kernel's handle, when it sent one.
   */
  #getattr(node: Node, kfd: number | undefined): UnionStat {
    const fh = kfd === undefined ? undefined : this.#handleOf.get(kfd)
    const path = this.#nodes.path(node)
    if (path !== undefined) {
      const st = attr.tryGetattr(this.#u, path)
      if (st) {
        this.#saw(node, path, st)
        return st
      }
    }
    const held = this.#detached.get(node)
    if (held) return detached.detachedStat(held)
    const id = fh ?? this.#anyHandle(node)
    if (id === undefined) throw enoent('getattr')
    return statOfFstat(this.#u.inodes.ids, file.fstat(this.#u, id), BigInt(this.#nodes.ino(node)))
  }

  /**
   * The birth time of a node's real object, as kernel overlayfs gives it (the upper copy's once
   * there is one: a copy-up is a new file); undefined where the filesystem keeps none.
   */
  #btime(node: Node, kfd: number | undefined): bigint | undefined {
    const path = this.#nodes.path(node)
    let st: BigIntStats | undefined
    try {
      if (path !== undefined) {
        const e = this.#u.route(path).tryResolve(path)
        if (e !== undefined) st = lstatSync(e.top.layer.hostPath(e.top.path), { bigint: true, throwIfNoEntry: false })
      } else {
        const id = (kfd === undefined ? undefined : this.#handleOf.get(kfd)) ?? this.#anyHandle(node)
        const h = id === undefined ? undefined : this.#u.handles.get(id)
        if (h !== undefined) st = fstatSync(h.fd, { bigint: true })
      }
    } catch {
      // The attributes are what was asked for; a birth time that cannot be read is left out.
      return undefined
    }
    return st === undefined || st.birthtimeNs === 0n ? undefined : st.birthtimeNs
  }

  async #setattr(s: LowLevelSession, r: Request): Promise<void> {
    const u = this.#u
    const node = this.#node(r.ino)
    const path = this.#nodes.path(node)
    const set = r.mode
    const [mode, uid, gid, size, atimeNs, mtimeNs] = r.extra as SetAttrValues
    const held = path === undefined ? this.#detached.get(node) : undefined
    if (held) {
      // A directory whose name went (detached-dir.ts).
      if (set & SetAttr.MODE) detached.detachedChmod(held, mode)
      if (set & (SetAttr.UID | SetAttr.GID)) {
        detached.detachedChown(held, set & SetAttr.UID ? uid : 0xffffffff, set & SetAttr.GID ? gid : 0xffffffff)
      }
      if (set & SetAttr.SIZE) throw fsError('EISDIR', 'truncate')
      if (set & (SetAttr.ATIME | SetAttr.MTIME | SetAttr.ATIME_NOW | SetAttr.MTIME_NOW)) detached.detachedUtimens(held, ...timesOf(set, atimeNs, mtimeNs))
      return s.attr(r.req, detached.detachedStat(held), this.#t.attr)
    }
    if (path === undefined) {
      // An unlinked open file, or an O_TMPFILE one: through an open handle (the kernel's, or
      // any), as kernel overlayfs changes its upper file.
      const id = r.fh !== undefined ? this.#handleOf.get(r.fh) : this.#anyHandle(node)
      if (id === undefined) throw enoent('setattr')
      const [atime, mtime] = timesOf(set, atimeNs, mtimeNs)
      file.fsetattr(u, id, {
        mode: set & SetAttr.MODE ? mode : undefined,
        uid: set & SetAttr.UID ? uid : undefined,
        gid: set & SetAttr.GID ? gid : undefined,
        size: set & SetAttr.SIZE ? size : undefined,
        atime,
        mtime,
      })
      return s.attr(r.req, this.#getattr(node, r.fh), this.#attrTimeout(node))
    }
    if (set & SetAttr.MODE) await attr.chmod(u, path, mode)
    if (set & (SetAttr.UID | SetAttr.GID)) {
      await attr.chown(u, path, set & SetAttr.UID ? uid : 0xffffffff, set & SetAttr.GID ? gid : 0xffffffff)
    }
    if (set & SetAttr.SIZE) {
      const id = r.fh === undefined ? undefined : this.#handleOf.get(r.fh)
      if (id !== undefined && u.handles.get(id)?.upper) file.ftruncate(u, id, size)
      else await file.truncate(u, path, size)
    }
    if (set & (SetAttr.ATIME | SetAttr.MTIME | SetAttr.ATIME_NOW | SetAttr.MTIME_NOW)) await attr.utimens(u, path, ...timesOf(set, atimeNs, mtimeNs))
    s.attr(r.req, this.#getattr(node, r.fh), this.#attrTimeout(node))
  }

  /** The listing a READDIR(PLUS) reads from: taken at the first read and again at a rewind (offset 0), as getdents sees it. */
  #listingFor(r: Request): { d: DirHandle; listing: attr.Listing } {
    // OPENDIR is answered in C (lowlevel.c, ll_opendir): the handle is made at its first read.
    let d = this.#dirs.get(r.fh!)
    if (d === undefined) this.#dirs.set(r.fh!, (d = { node: this.#node(r.ino), listing: undefined }))
    if (d.listing === undefined || r.off === 0) {
      const path = this.#nodes.path(d.node)
      if (path === undefined) {
        // A directory whose name went is empty (the kernel does not even ask for a removed one).
        if (!this.#detached.has(d.node)) throw enoent('readdir')
        d.listing = { names: [], modes: new Uint16Array(0), inos: new BigUint64Array(0) }
        return { d, listing: d.listing }
      }
      let listing = this.#listings.get(d.node)
      if (listing === undefined) this.#listings.set(d.node, (listing = attr.readdir(this.#u, path, this.#knownIno(d.node))))
      d.listing = listing
    }
    return { d, listing: d.listing }
  }

  /**
   * The st_ino of the names in `dir` the kernel holds nodes for, as last seen: current, since
   * a copy-up that changes one (a lower hard link broken) updates it (#copiedUp, #saw), and a
   * name that moves or goes moves or drops its node. So a listing (`git status` lists every
   * directory after it looked up every file) needs no lookup of them for their d_ino.
   */
  #knownIno(dir: Node): (name: string) => bigint | undefined {
    return name => {
      const n = this.#nodes.child(dir, name)
      return n === undefined ? undefined : BigInt(this.#nodes.ino(n))
    }
  }

  #readdir(s: LowLevelSession, r: Request): void {
    const { names, modes, inos } = this.#listingFor(r).listing
    const out = Buffer.alloc(r.size)
    let used = 0
    for (let i = r.off; i < names.length; i++) {
      const name = nameBytes(names[i]!)
      const size = (DIRENT_HEADER + name.length + 7) & ~7
      if (used + size > r.size) break
      out.writeBigUInt64LE(inos[i]!, used)
      out.writeBigUInt64LE(BigInt(i + 1), used + 8)
      out.writeUInt32LE(name.length, used + 16)
      out.writeUInt32LE((modes[i]! & S_IFMT) >>> 12, used + 20)
      name.copy(out, used + DIRENT_HEADER)
      used += size
    }
    s.buf(r.req, out, used)
  }

  /**
   * READDIRPLUS: each name with its attributes and node, as a LOOKUP of it would answer (the
   * kernel counts it as one), so listing-then-stat programs (ls -l, du, tar, find -type) send
   * no LOOKUP per name. '.' and '..', a name gone since the listing, and a name whose node the
   * kernel already holds, carry no node.
   */
  #readdirplus(s: LowLevelSession, r: Request): void {
    const { d, listing } = this.#listingFor(r)
    const { names, modes, inos } = listing
    const dirPath = this.#nodes.path(d.node)
    const out = Buffer.allocUnsafe(r.size)
    let used = 0
    for (let i = r.off; i < names.length; i++) {
      const name = names[i]!
      const bytes = nameBytes(name)
      if (used + ((DIRENTPLUS_HEADER + bytes.length + 7) & ~7) > r.size) break
      let st: UnionStat | undefined
      let nodeid = 0
      // A name the kernel already has a node for is sent without one (nodeid 0: no
      // attributes, no lookup counted; the kernel keeps what it has, which is current: every
      // change we make invalidates it), so it costs no lookup here: `git status` looks up every
      // file before it lists the directories, and the entry cache no longer holds them all.
      if (dirPath !== undefined && i >= 2 && this.#nodes.child(d.node, name) === undefined) {
        const path = joinPath(dirPath, name)
        st = listedStat(this.#u, path)
        if (st) nodeid = this.#lookedUp(d.node, name, path, st)
      }
      const type = ((st?.mode ?? modes[i]!) & S_IFMT) >>> 12
      used = putDirentPlus(out, used, bytes, i + 1, type, st?.ino ?? inos[i]!, nodeid, st, this.#t.entry,
        nodeid === 0 ? this.#t.attr : this.#attrTimeout(nodeid))
    }
    s.buf(r.req, out, used)
  }
}

/**
 * The attributes of a listed name, or undefined (no node in the entry) when it is gone or its
 * lookup is refused (EPERM, EIO: a metacopy file the layers cannot serve, listed as the
 * kernel lists it: attr-ops.ts readdir); a later LOOKUP gets the error.
 */
function listedStat(u: Union, path: string): UnionStat | undefined {
  try {
    return attr.tryGetattr(u, path)
  } catch (e) {
    const code = (e as { code?: string }).code
    if (code === 'EPERM' || code === 'EIO') return undefined
    throw e
  }
}

const NUL = Buffer.from([0])

const stampOf = (st: UnionStat): string => `${st.size}:${st.mtimeNs}`

/** LAYERFS_MAX_NODES: an integer of at least MIN_MAX_NODES turns the cap on; else 0 (off). */
export function maxNodesFromEnv(env = process.env): number {
  const n = Number(env.LAYERFS_MAX_NODES ?? 0)
  return Number.isInteger(n) && n >= MIN_MAX_NODES ? n : 0
}
