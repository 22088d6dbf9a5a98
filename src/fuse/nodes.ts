// The kernel's node ids for the union: one node per union inode (st_ino), so the hard links of
// a file are one kernel inode with one set of cached attributes, as on kernel overlayfs. A node
// knows its names (parent node + name; a file's hard links give it several, a directory has
// one), from which its union path is built; it lives while the kernel holds a lookup count on
// it (lookup/create/mkdir/... add one, forget takes them away). Ids are never reused.
//
// The table is typed arrays indexed by a slot, with the id made of the slot and the slot's
// generation: the kernel keeps a node per inode it has seen for as long as it likes (a walk of
// a million files keeps a million), and as objects in Maps a node cost ~300 bytes of heap;
// here ~90 (native-notes/memory.md, "The node table").
import { fsError } from '../errors.js'

/**
 * What makes two names one node: the union st_ino, except for a lower file with other hard
 * links, which is a node per name (its path): copy-up breaks such a link, and kernel overlayfs
 * gives each name its own inode too (native-notes/lowlevel-binding.md). An st_ino that fits a
 * double exactly is kept as a number.
 */
export type NodeKey = number | bigint | string

/** The NodeKey of st_ino `ino`: a number when exact, so that one inode always has one key. */
export const inoKey = (ino: bigint): number | bigint => (ino <= MAX_SAFE ? Number(ino) : ino)
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

/** A kernel node: its id (the FUSE nodeid). */
export type Node = number

export const ROOT_ID = 1

/**
 * An id is `generation * SLOTS + slot`: the slot's generation goes up each time the slot is
 * freed, so an id is never given twice, and the slot of an id is arithmetic, not a lookup.
 */
const SLOTS = 2 ** 24
/** Generations stay below this, so that ids stay exact doubles; a slot that reaches it is not used again. */
const MAX_GEN = 2 ** 29 - 1
const NONE = -1

// Slot flags.
const USED = 1
const DIR = 2
/** Forgotten by the kernel, kept while children still name it as their parent (their paths end there). */
const FORGOTTEN = 4
/** Its key is its inode number (#ino), else it is in #otherKeys. */
const KEY_INO = 8
/** It holds its key in the key index. */
const KEYED = 16

/** The hash of a name in a parent slot (FNV-1a over the UTF-16 units, then mixed). */
function nameHash(parent: number, name: string): number {
  let h = Math.imul(parent ^ 0x811c9dc5, 0x01000193)
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193)
  h ^= h >>> 15
  return Math.imul(h, 0x2c1b3c6d) ^ (h >>> 12)
}

/** The hash of an inode number (an exact double). */
function inoHash(ino: number): number {
  const h = Math.imul((ino | 0) ^ ((ino / 0x100000000) | 0), 0x9e3779b1)
  return h ^ (h >>> 16)
}

const linkKey = (parent: number, name: string): string => `${parent}/${name}`

export class Nodes {
  #cap = 0
  /** Slots in use are below #top; #free holds the ones given back. */
  #top = ROOT_ID + 1
  readonly #free: number[] = []
  #gen = new Uint32Array(0)
  #flags = new Uint8Array(0)
  /** The inode number as last seen, NaN when it is a BigInt (#bigInos). */
  #ino = new Float64Array(0)
  #nlookup = new Float64Array(0)
  /** The slot of its first name's parent, NONE when it has no name (or is the root). */
  #parent = new Int32Array(0)
  /** Names bound in it (first names and other names). */
  #children = new Int32Array(0)
  /** Chains of the (parent, first name) index and of the key index. */
  #nameHash = new Int32Array(0)
  #nameNext = new Int32Array(0)
  #keyNext = new Int32Array(0)
  #nameBuckets = new Int32Array(0)
  #keyBuckets = new Int32Array(0)
  /** First names, '' when none. */
  #names: string[] = []
  #size = 0
  // What few nodes have, by slot:
  readonly #bigInos = new Map<number, bigint>()
  /** A key that is not the inode number (a lower hard link's path; an st_ino seen before it changed). */
  readonly #otherKeys = new Map<number, NodeKey>()
  /** The key index for keys that are not a slot's inode number. */
  readonly #keyed = new Map<NodeKey, number>()
  /** A file's other names (hard links), after the first: parent slot and name. */
  readonly #links = new Map<number, [number, string][]>()
  /** The same, by linkKey(parent slot, name). */
  readonly #linkIndex = new Map<string, number>()
  /** size:mtime at the last open, for keeping the page cache of an unchanged file. */
  readonly #stamps = new Map<number, string>()
  /**
   * Every node but the root, least recently looked up first (a Set keeps insertion order),
   * kept only for the node cap (`ordered`): without it, a table as large as the node table and
   * a delete and add per lookup for nothing.
   */
  readonly #recent: Set<Node> | undefined
  /** Nodes whose name the kernel was asked to drop (evictable), until it forgets or looks them up again. */
  readonly #dropping = new Set<Node>()
  readonly root: Node = ROOT_ID

  /** `ordered`: keep the order of lookups, which `evictable` needs (the node cap is on). */
  constructor(rootIno: bigint, ordered = true) {
    this.#recent = ordered ? new Set() : undefined
    this.#names[0] = '' // a packed array: slots are handed out in order
    this.#grow(1024)
    this.#init(ROOT_ID, inoKey(rootIno), rootIno, true)
    this.#nlookup[ROOT_ID] = 1
  }

  // --- slots ---

  #id(s: number): Node {
    return this.#gen[s]! * SLOTS + s
  }

  /** The slot of a node the kernel holds, or NONE. */
  #slot(id: Node): number {
    const s = id % SLOTS
    if (!(s > 0) || s >= this.#top || this.#id(s) !== id || (this.#flags[s]! & (USED | FORGOTTEN)) !== USED) return NONE
    return s
  }

  #grow(cap: number): void {
    if (cap > SLOTS) throw fsError('ENOMEM', 'lookup')
    const grow = <T extends Uint32Array | Uint8Array | Float64Array | Int32Array>(a: T, fill?: number): T => {
      const b = new (a.constructor as new (n: number) => T)(cap)
      b.set(a)
      if (fill !== undefined) b.fill(fill, a.length)
      return b
    }
    this.#gen = grow(this.#gen)
    this.#flags = grow(this.#flags)
    this.#ino = grow(this.#ino)
    this.#nlookup = grow(this.#nlookup)
    this.#parent = grow(this.#parent, NONE)
    this.#children = grow(this.#children)
    this.#nameHash = grow(this.#nameHash)
    this.#nameNext = grow(this.#nameNext, NONE)
    this.#keyNext = grow(this.#keyNext, NONE)
    this.#cap = cap
    // The indexes: one bucket per slot, chains rebuilt.
    this.#nameBuckets = new Int32Array(cap).fill(NONE)
    this.#keyBuckets = new Int32Array(cap).fill(NONE)
    const mask = cap - 1
    for (let s = 1; s < this.#top; s++) {
      const f = this.#flags[s]!
      if (!(f & USED)) continue
      if (this.#parent[s] !== NONE) {
        const b = this.#nameHash[s]! & mask
        this.#nameNext[s] = this.#nameBuckets[b]!
        this.#nameBuckets[b] = s
      }
      if ((f & (KEYED | KEY_INO)) === (KEYED | KEY_INO)) {
        const b = inoHash(this.#ino[s]!) & mask
        this.#keyNext[s] = this.#keyBuckets[b]!
        this.#keyBuckets[b] = s
      }
    }
  }

  #alloc(): number {
    const s = this.#free.pop() ?? this.#top++
    if (s >= this.#cap) this.#grow(this.#cap * 2)
    return s
  }

  /** A new node at slot `s`, unnamed, no lookup counted, holding `key` in the index. */
  #init(s: number, key: NodeKey, ino: bigint, isDir: boolean): void {
    this.#flags[s] = USED | (isDir ? DIR : 0)
    this.#setIno(s, ino)
    this.#nlookup[s] = 0
    this.#parent[s] = NONE
    this.#children[s] = 0
    this.#names[s] = ''
    this.#setKey(s, key)
    const holder = this.#keyGet(key)
    if (holder !== NONE) this.#unkey(holder)
    this.#keyAdd(s)
    this.#size++
  }

  /** Slot `s` is free again (the kernel forgot it and no child names it). */
  #release(s: number): void {
    this.#flags[s] = 0
    this.#names[s] = ''
    this.#parent[s] = NONE
    this.#children[s] = 0
    this.#bigInos.delete(s)
    this.#otherKeys.delete(s)
    this.#stamps.delete(s)
    if (++this.#gen[s]! < MAX_GEN) this.#free.push(s)
  }

  #setIno(s: number, ino: bigint): void {
    const k = inoKey(ino)
    if (typeof k === 'number') {
      this.#ino[s] = k
      this.#bigInos.delete(s)
    } else {
      this.#ino[s] = NaN
      this.#bigInos.set(s, k)
    }
  }

  // --- the key index ---

  #keyOf(s: number): NodeKey {
    return this.#flags[s]! & KEY_INO ? this.#ino[s]! : this.#otherKeys.get(s)!
  }

  /** Set the key of a slot that is not in the index. */
  #setKey(s: number, key: NodeKey): void {
    if (typeof key === 'number' && key === this.#ino[s]) {
      this.#flags[s]! |= KEY_INO
      this.#otherKeys.delete(s)
    } else {
      this.#flags[s]! &= ~KEY_INO
      this.#otherKeys.set(s, key)
    }
  }

  /** The slot holding `key` in the index, or NONE. */
  #keyGet(key: NodeKey): number {
    if (typeof key === 'number') {
      for (let s = this.#keyBuckets[inoHash(key) & (this.#cap - 1)]!; s !== NONE; s = this.#keyNext[s]!) {
        if (this.#ino[s] === key) return s
      }
    }
    return this.#keyed.get(key) ?? NONE
  }

  #keyAdd(s: number): void {
    this.#flags[s]! |= KEYED
    if (this.#flags[s]! & KEY_INO) {
      const b = inoHash(this.#ino[s]!) & (this.#cap - 1)
      this.#keyNext[s] = this.#keyBuckets[b]!
      this.#keyBuckets[b] = s
    } else this.#keyed.set(this.#otherKeys.get(s)!, s)
  }

  /** Slot `s` no longer holds its key in the index (if it did). */
  #unkey(s: number): void {
    const f = this.#flags[s]!
    if (!(f & KEYED)) return
    this.#flags[s] = f & ~KEYED
    if (!(f & KEY_INO)) {
      this.#keyed.delete(this.#otherKeys.get(s)!)
      return
    }
    const b = inoHash(this.#ino[s]!) & (this.#cap - 1)
    let prev = NONE
    for (let c = this.#keyBuckets[b]!; c !== NONE; prev = c, c = this.#keyNext[c]!) {
      if (c !== s) continue
      if (prev === NONE) this.#keyBuckets[b] = this.#keyNext[s]!
      else this.#keyNext[prev] = this.#keyNext[s]!
      this.#keyNext[s] = NONE
      return
    }
  }

  // --- names ---

  /** The slot bound at `name` in parent slot `p`, or NONE. */
  #childSlot(p: number, name: string): number {
    const h = nameHash(p, name)
    for (let s = this.#nameBuckets[h & (this.#cap - 1)]!; s !== NONE; s = this.#nameNext[s]!) {
      if (this.#nameHash[s] === h && this.#parent[s] === p && this.#names[s] === name) return s
    }
    return this.#linkIndex.size === 0 ? NONE : this.#linkIndex.get(linkKey(p, name)) ?? NONE
  }

  #setFirstName(s: number, p: number, name: string): void {
    const h = nameHash(p, name)
    const b = h & (this.#cap - 1)
    this.#parent[s] = p
    this.#names[s] = name
    this.#nameHash[s] = h
    this.#nameNext[s] = this.#nameBuckets[b]!
    this.#nameBuckets[b] = s
  }

  #clearFirstName(s: number): void {
    const b = this.#nameHash[s]! & (this.#cap - 1)
    let prev = NONE
    for (let c = this.#nameBuckets[b]!; c !== NONE; prev = c, c = this.#nameNext[c]!) {
      if (c !== s) continue
      if (prev === NONE) this.#nameBuckets[b] = this.#nameNext[s]!
      else this.#nameNext[prev] = this.#nameNext[s]!
      break
    }
    this.#nameNext[s] = NONE
    this.#parent[s] = NONE
    this.#names[s] = ''
  }

  /** One name fewer in parent slot `p`: a forgotten parent goes with its last. */
  #childGone(p: number): void {
    if (--this.#children[p]! === 0 && this.#flags[p]! & FORGOTTEN) this.#release(p)
  }

  /** Slot `s` loses its name `name` in parent slot `p`. */
  #unbind(p: number, name: string, s: number): void {
    if (this.#parent[s] === p && this.#names[s] === name) {
      this.#clearFirstName(s)
      // Its next name becomes its first.
      const links = this.#links.get(s)
      const next = links?.shift()
      if (next !== undefined) {
        this.#linkIndex.delete(linkKey(next[0], next[1]))
        this.#setFirstName(s, next[0], next[1])
        if (links!.length === 0) this.#links.delete(s)
      }
    } else {
      const links = this.#links.get(s)
      const i = links === undefined ? -1 : links.findIndex(([lp, ln]) => lp === p && ln === name)
      if (i < 0) return
      links!.splice(i, 1)
      if (links!.length === 0) this.#links.delete(s)
      this.#linkIndex.delete(linkKey(p, name))
    }
    this.#childGone(p)
  }

  #bind(p: number, name: string, s: number): void {
    const was = this.#childSlot(p, name)
    if (was === s) return
    if (was !== NONE) {
      this.#unbind(p, name, was)
      this.#retireIfNameless(was)
    }
    // A directory has one name: a new one means it moved.
    if (this.#flags[s]! & DIR && this.#parent[s] !== NONE) this.#unbind(this.#parent[s]!, this.#names[s]!, s)
    if (this.#parent[s] === NONE) this.#setFirstName(s, p, name)
    else {
      let links = this.#links.get(s)
      if (links === undefined) this.#links.set(s, (links = []))
      links.push([p, name])
      this.#linkIndex.set(linkKey(p, name), s)
    }
    this.#children[p]!++
    // A new name (a rename, a link): whatever the kernel was asked to drop, this it holds.
    const id = this.#id(s)
    if (this.#dropping.delete(id)) this.#recent?.add(id)
  }

  /**
   * An object whose last name went is gone, though the kernel may hold its node a while: its
   * st_ino is free, and the host fs may give it to a new object, which must get a node of its
   * own (the kernel would otherwise see a new directory under an old directory's node id).
   */
  #retireIfNameless(s: number): void {
    if (this.#parent[s] === NONE && s !== ROOT_ID) this.#unkey(s)
  }

  // --- what requests ask ---

  /** The node of `id`, when the kernel holds it. */
  get(id: number): Node | undefined {
    return this.#slot(id) === NONE ? undefined : id
  }

  has(id: number): boolean {
    return this.#slot(id) !== NONE
  }

  /** The node at `name` in `parent`, when the kernel knows one. */
  child(parent: Node, name: string): Node | undefined {
    const p = this.#slot(parent)
    if (p === NONE) return undefined
    const s = this.#childSlot(p, name)
    return s === NONE ? undefined : this.#id(s)
  }

  get size(): number {
    return this.#size
  }

  /** The nodes the kernel holds and was not asked to drop. */
  get held(): number {
    return this.#size - this.#dropping.size
  }

  isDir(n: Node): boolean {
    const s = this.#slot(n)
    return s !== NONE && (this.#flags[s]! & DIR) !== 0
  }

  /** Its st_ino as last seen (as inoKey gives it: a number when exact). */
  ino(n: Node): number | bigint {
    const s = this.#slot(n)
    if (s === NONE) return NaN
    const ino = this.#ino[s]!
    return ino === ino ? ino : this.#bigInos.get(s)!
  }

  /** Lookups the kernel holds on it (0 once forgotten). */
  nlookup(n: Node): number {
    const s = this.#slot(n)
    return s === NONE ? 0 : this.#nlookup[s]!
  }

  /** Whether it has a name. */
  isNamed(n: Node): boolean {
    const s = this.#slot(n)
    return s !== NONE && this.#parent[s] !== NONE
  }

  /** Its first name's parent, if it has a name. */
  parentOf(n: Node): Node | undefined {
    const s = this.#slot(n)
    const p = s === NONE ? NONE : this.#parent[s]!
    return p === NONE ? undefined : this.#id(p)
  }

  /** Its first name ('' when none). */
  nameOf(n: Node): string {
    const s = this.#slot(n)
    return s === NONE ? '' : this.#names[s]!
  }

  /** Whether a file has names besides its first (hard links). */
  hasLinks(n: Node): boolean {
    const s = this.#slot(n)
    return s !== NONE && this.#links.has(s)
  }

  /** Whether the kernel knows names in it. */
  hasChildren(n: Node): boolean {
    const s = this.#slot(n)
    return s !== NONE && this.#children[s]! > 0
  }

  /** size:mtime at its last open (see ll-ops.ts #keepCache). */
  cacheStamp(n: Node): string | undefined {
    const s = this.#slot(n)
    return s === NONE ? undefined : this.#stamps.get(s)
  }

  setCacheStamp(n: Node, stamp: string): void {
    const s = this.#slot(n)
    if (s !== NONE) this.#stamps.set(s, stamp)
  }

  /**
   * Up to `n` nodes the kernel may be asked to drop, least recently looked up first: leaves
   * (no child known) with a name, that `keep` does not refuse (a refused one goes to the
   * back). Nothing changes for them until `dropping` says the kernel was asked.
   */
  evictable(n: number, keep: (node: Node) => boolean): Node[] {
    const out: Node[] = []
    const kept: Node[] = []
    if (this.#recent === undefined) return out
    for (const node of this.#recent) {
      if (out.length >= n) break
      if (!this.isNamed(node) || this.hasChildren(node)) continue
      if (keep(node)) kept.push(node)
      else out.push(node)
    }
    for (const node of kept) {
      this.#recent.delete(node)
      this.#recent.add(node)
    }
    return out
  }

  /**
   * The kernel was asked to drop `node`'s name: off the order, counted as dropping until the
   * kernel forgets it, looks it up again, or it moves.
   */
  dropping(node: Node): void {
    this.#recent?.delete(node)
    this.#dropping.add(node)
  }

  /** The node the kernel knows at a union path, if any. */
  find(path: string): Node | undefined {
    let s = ROOT_ID
    for (const part of path.split('/')) {
      if (part === '') continue
      s = this.#childSlot(s, part)
      if (s === NONE) return undefined
    }
    return this.#id(s)
  }

  /** The union path of a node, or undefined when it (or a directory above it) has no name. */
  path(node: Node): string | undefined {
    if (node === ROOT_ID) return '/'
    const s = this.#slot(node)
    if (s === NONE) return undefined
    const parts: string[] = []
    for (let c = s; c !== ROOT_ID;) {
      const p = this.#parent[c]!
      if (p === NONE) return undefined
      parts.push(this.#names[c]!)
      c = p
      if (parts.length > 4096) return undefined // a cycle would be a bug; never loop forever
    }
    return '/' + parts.reverse().join('/')
  }

  /**
   * The kernel learnt `name` in `parent` (lookup, or an object made there): the node of that
   * inode, with one more lookup counted.
   */
  lookedUp(parent: Node, name: string, key: NodeKey, ino: bigint, isDir: boolean): Node {
    const p = this.#slot(parent)
    if (p === NONE) throw fsError('ESTALE', 'lookup')
    let s = this.#keyGet(key)
    if (s === NONE || ((this.#flags[s]! & DIR) !== 0) !== isDir) {
      s = this.#alloc()
      this.#init(s, key, ino, isDir)
    }
    this.#bind(p, name, s)
    this.#nlookup[s]!++
    const id = this.#id(s)
    this.#recent?.delete(id)
    this.#recent?.add(id)
    this.#dropping.delete(id)
    return id
  }

  /** The node that stands for `key`, if any. */
  keyed(key: NodeKey): Node | undefined {
    const s = this.#keyGet(key)
    return s === NONE ? undefined : this.#id(s)
  }

  /**
   * `node` no longer stands for its key: the object it named went behind our back (a layer
   * changed under the mount) and the host filesystem gave its inode number to a new object,
   * which must get a node of its own (else the kernel reaches the new object through the old
   * node, whose names lead to the object that went).
   */
  retire(node: Node): void {
    const s = this.#slot(node)
    if (s !== NONE) this.#unkey(s)
  }

  /** A fresh stat gave the node another st_ino (a broken lower hard link); its key stays until `rekey`. */
  setIno(node: Node, ino: bigint): void {
    const s = this.#slot(node)
    if (s === NONE) return
    if (this.#flags[s]! & KEY_INO) {
      // Its key was its old inode number: kept as a key of its own.
      const keyed = (this.#flags[s]! & KEYED) !== 0
      const key = this.#ino[s]!
      this.#unkey(s)
      this.#setIno(s, ino)
      this.#flags[s]! &= ~KEY_INO
      this.#otherKeys.set(s, key)
      if (keyed) this.#keyAdd(s)
    } else this.#setIno(s, ino)
  }

  /** What a node stands for changed (a lower hard link copied up has its own st_ino). */
  rekey(node: Node, key: NodeKey): void {
    const s = this.#slot(node)
    if (s === NONE || this.#keyOf(s) === key) return
    this.#unkey(s)
    this.#setKey(s, key)
    if (this.#keyGet(key) === NONE) this.#keyAdd(s)
  }

  /** `name` in `parent` is gone (unlink, rmdir, replaced by a rename). */
  removeName(parent: Node, name: string): void {
    const p = this.#slot(parent)
    const s = p === NONE ? NONE : this.#childSlot(p, name)
    if (s === NONE) return
    this.#unbind(p, name, s)
    this.#retireIfNameless(s)
  }

  /** rename(2) succeeded: whatever was at the new name is gone, the old name's node moves. */
  rename(parent: Node, name: string, newParent: Node, newName: string): void {
    const p = this.#slot(parent)
    const np = this.#slot(newParent)
    if (p === NONE || np === NONE) return
    const s = this.#childSlot(p, name)
    // Two names of one inode: rename(2) does nothing.
    if (s !== NONE && s === this.#childSlot(np, newName)) return
    this.removeName(newParent, newName)
    if (s === NONE) return
    this.#unbind(p, name, s)
    this.#bind(np, newName, s)
  }

  /**
   * A nameless node (an O_TMPFILE file) got a name (linkat(2)): it stands for its key again,
   * and the kernel counts the reply as one more lookup of it.
   */
  named(node: Node, parent: Node, name: string): void {
    const s = this.#slot(node)
    const p = this.#slot(parent)
    if (s === NONE || p === NONE) return
    if (!(this.#flags[s]! & KEYED)) this.#keyAdd(s)
    this.#bind(p, name, s)
    this.#nlookup[s]!++
  }

  /** renameat2(RENAME_EXCHANGE) succeeded: the two names' nodes trade places. */
  exchange(parent: Node, name: string, newParent: Node, newName: string): void {
    const p = this.#slot(parent)
    const np = this.#slot(newParent)
    if (p === NONE || np === NONE) return
    const a = this.#childSlot(p, name)
    const b = this.#childSlot(np, newName)
    if (a === b) return
    if (a !== NONE) this.#unbind(p, name, a)
    if (b !== NONE) this.#unbind(np, newName, b)
    if (a !== NONE) this.#bind(np, newName, a)
    if (b !== NONE) this.#bind(p, name, b)
  }

  /** The kernel drops `n` lookups. */
  forget(id: number, n: number): void {
    const s = this.#slot(id)
    if (s === NONE || s === ROOT_ID) return
    this.#nlookup[s]! -= n
    if (this.#nlookup[s]! > 0) return
    this.#size--
    this.#recent?.delete(id)
    this.#dropping.delete(id)
    this.#unkey(s)
    const links = this.#links.get(s)
    if (links !== undefined) {
      this.#links.delete(s)
      for (const [p, name] of links) {
        this.#linkIndex.delete(linkKey(p, name))
        this.#childGone(p)
      }
    }
    const p = this.#parent[s]!
    if (p !== NONE) {
      this.#clearFirstName(s)
      this.#childGone(p)
    }
    this.#stamps.delete(s)
    // Its children keep their names in it (the kernel forgets a directory only after its
    // children, but a child may still be held through an open file): their paths end here.
    // A child with other names (a hard link the kernel reached another way, whose name here
    // it dropped: memory pressure, or an invalidation) takes its next name as its first, so
    // that its path is still one the kernel can reach.
    if (this.#children[s]! > 0 && this.#links.size > 0) {
      for (const c of [...this.#links.keys()]) {
        if (this.#parent[c] === s) this.#unbind(s, this.#names[c]!, c)
      }
    }
    if (this.#children[s]! === 0) this.#release(s)
    else this.#flags[s]! |= FORGOTTEN
  }
}
