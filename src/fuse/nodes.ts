// The kernel's node ids for the union: one node per union inode (st_ino), so the hard links of
// a file are one kernel inode with one set of cached attributes, as on kernel overlayfs. A node
// knows its names (parent node + name; a file's hard links give it several, a directory has
// one), from which its union path is built; it lives while the kernel holds a lookup count on
// it (lookup/create/mkdir/... add one, forget takes them away). Ids are never reused.

/**
 * What makes two names one node: the union st_ino, except for a lower file with other hard
 * links, which is a node per name (its path): copy-up breaks such a link, and kernel overlayfs
 * gives each name its own inode too (native-notes/lowlevel-binding.md). An st_ino that fits a
 * double exactly is kept as a number: a Map keyed by small numbers costs no object per key.
 */
export type NodeKey = number | bigint | string

/** The NodeKey of st_ino `ino`: a number when exact, so that one inode always has one key. */
export const inoKey = (ino: bigint): number | bigint => (ino <= MAX_SAFE ? Number(ino) : ino)
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

/**
 * One kernel node. The kernel holds one per inode it has seen, for as long as it likes (a
 * walk of a million files keeps a million): so a node holds only what requests need, its
 * first name in two fields and only a hard-linked file's other names in an array.
 */
export interface Node {
  readonly id: number
  /** What this node stands for. */
  key: NodeKey
  /** Its st_ino, as last seen (as inoKey gives it: a number when exact). */
  ino: number | bigint
  readonly isDir: boolean
  /** Its first name (the one its path is built from): parent node and name; none when unlinked (or root). */
  parent: Node | undefined
  name: string
  /** A file's other names (hard links), after the first. */
  links: [Node, string][] | undefined
  /** A directory's children the kernel knows, by name. */
  children: Map<string, Node> | undefined
  /** Lookups the kernel holds on it. */
  nlookup: number
  /** size:mtime at the last open, for keeping the page cache of an unchanged file. */
  cacheStamp: string | undefined
}

export const ROOT_ID = 1

const newNode = (id: number, key: NodeKey, ino: bigint, isDir: boolean, nlookup: number): Node =>
  ({ id, key, ino: inoKey(ino), isDir, parent: undefined, name: '', links: undefined, children: undefined, nlookup, cacheStamp: undefined })

/** Whether a node has a name. */
export const isNamed = (node: Node): boolean => node.parent !== undefined

export class Nodes {
  readonly #byId = new Map<number, Node>()
  readonly #byKey = new Map<NodeKey, Node>()
  /**
   * Every node but the root, least recently looked up first (a Set keeps insertion order),
   * kept only for the node cap (`ordered`): without it, a table as large as #byId's and a
   * delete and add per lookup for nothing (a 60,000-file walk: 1.3 MB of the heap).
   */
  readonly #recent: Set<Node> | undefined
  /** Nodes whose name the kernel was asked to drop (evictable), until it forgets or looks them up again. */
  readonly #dropping = new Set<Node>()
  #nextId = ROOT_ID + 1
  readonly root: Node

  /** `ordered`: keep the order of lookups, which `evictable` needs (the node cap is on). */
  constructor(rootIno: bigint, ordered = true) {
    this.#recent = ordered ? new Set() : undefined
    this.root = newNode(ROOT_ID, inoKey(rootIno), rootIno, true, 1)
    this.#byId.set(ROOT_ID, this.root)
    this.#byKey.set(this.root.key, this.root)
  }

  get(id: number): Node | undefined {
    return this.#byId.get(id)
  }

  /** The node at `name` in `parent`, when the kernel knows one. */
  child(parent: Node, name: string): Node | undefined {
    return parent.children?.get(name)
  }

  get size(): number {
    return this.#byId.size
  }

  /** The nodes the kernel holds and was not asked to drop. */
  get held(): number {
    return this.#byId.size - this.#dropping.size
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
      if (node.parent === undefined || node.children !== undefined) continue
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
    let n: Node | undefined = this.root
    for (const part of path.split('/')) {
      if (part === '') continue
      n = this.child(n, part)
      if (n === undefined) return undefined
    }
    return n
  }

  /** The union path of a node, or undefined when it (or a directory above it) has no name. */
  path(node: Node): string | undefined {
    if (node === this.root) return '/'
    const parts: string[] = []
    for (let n: Node = node; n !== this.root;) {
      if (n.parent === undefined) return undefined
      parts.push(n.name)
      n = n.parent
      if (parts.length > 4096) return undefined // a cycle would be a bug; never loop forever
    }
    return '/' + parts.reverse().join('/')
  }

  /**
   * The kernel learnt `name` in `parent` (lookup, or an object made there): the node of that
   * inode, with one more lookup counted.
   */
  lookedUp(parent: Node, name: string, key: NodeKey, ino: bigint, isDir: boolean): Node {
    let node = this.#byKey.get(key)
    if (node === undefined || node.isDir !== isDir) {
      node = newNode(this.#nextId++, key, ino, isDir, 0)
      this.#byId.set(node.id, node)
      this.#byKey.set(key, node)
    }
    this.#bind(parent, name, node)
    node.nlookup++
    this.#recent?.delete(node)
    this.#recent?.add(node)
    this.#dropping.delete(node)
    return node
  }

  /** The node that stands for `key`, if any. */
  keyed(key: NodeKey): Node | undefined {
    return this.#byKey.get(key)
  }

  /**
   * `node` no longer stands for its key: the object it named went behind our back (a layer
   * changed under the mount) and the host filesystem gave its inode number to a new object,
   * which must get a node of its own (else the kernel reaches the new object through the old
   * node, whose names lead to the object that went).
   */
  retire(node: Node): void {
    if (this.#byKey.get(node.key) === node) this.#byKey.delete(node.key)
  }

  /** What a node stands for changed (a lower hard link copied up has its own st_ino). */
  rekey(node: Node, key: NodeKey): void {
    if (node.key === key) return
    if (this.#byKey.get(node.key) === node) this.#byKey.delete(node.key)
    node.key = key
    if (!this.#byKey.has(key)) this.#byKey.set(key, node)
  }

  /** `name` in `parent` is gone (unlink, rmdir, replaced by a rename). */
  removeName(parent: Node, name: string): void {
    const node = parent.children?.get(name)
    if (node === undefined) return
    this.#unbind(parent, name, node)
    this.#retireIfNameless(node)
  }

  /**
   * An object whose last name went is gone, though the kernel may hold its node a while: its
   * st_ino is free, and the host fs may give it to a new object, which must get a node of its
   * own (the kernel would otherwise see a new directory under an old directory's node id).
   */
  #retireIfNameless(node: Node): void {
    if (node.parent === undefined && node !== this.root && this.#byKey.get(node.key) === node) this.#byKey.delete(node.key)
  }

  /** rename(2) succeeded: whatever was at the new name is gone, the old name's node moves. */
  rename(parent: Node, name: string, newParent: Node, newName: string): void {
    const node = parent.children?.get(name)
    // Two names of one inode: rename(2) does nothing.
    if (node !== undefined && node === newParent.children?.get(newName)) return
    this.removeName(newParent, newName)
    if (node === undefined) return
    this.#unbind(parent, name, node)
    this.#bind(newParent, newName, node)
  }

  /** The kernel drops `n` lookups. */
  forget(id: number, n: number): void {
    const node = this.#byId.get(id)
    if (node === undefined || node === this.root) return
    node.nlookup -= n
    if (node.nlookup > 0) return
    this.#byId.delete(id)
    this.#recent?.delete(node)
    this.#dropping.delete(node)
    if (this.#byKey.get(node.key) === node) this.#byKey.delete(node.key)
    if (node.parent !== undefined) this.#dropChild(node.parent, node.name, node)
    if (node.links !== undefined) for (const [p, name] of node.links) this.#dropChild(p, name, node)
    node.parent = undefined
    node.name = ''
    node.links = undefined
    // Its children keep their nodes (the kernel forgets a directory only after its children,
    // but a child may still be held through an open file): they keep this node as parent.
    // A child with other names (a hard link the kernel reached another way, whose name here
    // it dropped: memory pressure, or an invalidation) takes its next name as its first, so
    // that its path is still one the kernel can reach.
    if (node.children !== undefined) {
      for (const [name, child] of [...node.children]) {
        if (child.parent === node && child.links !== undefined) this.#unbind(node, name, child)
      }
    }
  }

  /** Take `node` off `parent`'s children at `name`, if it is there. */
  #dropChild(parent: Node, name: string, node: Node): void {
    const c = parent.children
    if (c === undefined || c.get(name) !== node) return
    c.delete(name)
    if (c.size === 0) parent.children = undefined
  }

  /** `node` loses its name `name` in `parent` (children and its own names). */
  #unbind(parent: Node, name: string, node: Node): void {
    this.#dropChild(parent, name, node)
    if (node.parent === parent && node.name === name) {
      const next = node.links?.shift()
      if (next === undefined) {
        node.parent = undefined
        node.name = ''
      } else [node.parent, node.name] = next
    } else if (node.links !== undefined) {
      const i = node.links.findIndex(([p, n]) => p === parent && n === name)
      if (i >= 0) node.links.splice(i, 1)
    }
    if (node.links?.length === 0) node.links = undefined
  }

  #bind(parent: Node, name: string, node: Node): void {
    const was = parent.children?.get(name)
    if (was === node) return
    if (was !== undefined) {
      this.#unbind(parent, name, was)
      this.#retireIfNameless(was)
    }
    // A directory has one name: a new one means it moved.
    if (node.isDir && node.parent !== undefined) this.#unbind(node.parent, node.name, node)
    if (node.parent === undefined) {
      node.parent = parent
      node.name = name
    } else (node.links ??= []).push([parent, name])
    ;(parent.children ??= new Map()).set(name, node)
    // A new name (a rename, a link): whatever the kernel was asked to drop, this it holds.
    if (this.#dropping.delete(node)) this.#recent?.add(node)
  }
}
