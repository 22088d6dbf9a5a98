// The kernel's node ids for the union: one node per union inode (st_ino), so the hard links of
// a file are one kernel inode with one set of cached attributes, as on kernel overlayfs. A node
// knows its names (parent node + name; a file's hard links give it several, a directory has
// one), from which its union path is built; it lives while the kernel holds a lookup count on
// it (lookup/create/mkdir/... add one, forget takes them away). Ids are never reused.

/**
 * What makes two names one node: the union st_ino, except for a lower file with other hard
 * links, which is a node per name (its path): copy-up breaks such a link, and kernel overlayfs
 * gives each name its own inode too (native-notes/lowlevel-binding.md).
 */
export type NodeKey = bigint | string

export interface Node {
  readonly id: number
  /** What this node stands for. */
  key: NodeKey
  /** Its st_ino, as last seen. */
  ino: bigint
  readonly isDir: boolean
  /** Its names: [parent, name], the first one used for its path. Empty: unlinked (or root). */
  names: [Node, string][]
  /** Lookups the kernel holds on it. */
  nlookup: number
  /** size:mtime at the last open, for keeping the page cache of an unchanged file. */
  cacheStamp?: string
}

export const ROOT_ID = 1

const key = (parent: Node, name: string): string => `${parent.id}/${name}`

export class Nodes {
  readonly #byId = new Map<number, Node>()
  readonly #byKey = new Map<NodeKey, Node>()
  readonly #byName = new Map<string, Node>()
  #nextId = ROOT_ID + 1
  readonly root: Node

  constructor(rootIno: bigint) {
    this.root = { id: ROOT_ID, key: rootIno, ino: rootIno, isDir: true, names: [], nlookup: 1 }
    this.#byId.set(ROOT_ID, this.root)
    this.#byKey.set(rootIno, this.root)
  }

  get(id: number): Node | undefined {
    return this.#byId.get(id)
  }

  /** The node at `name` in `parent`, when the kernel knows one. */
  child(parent: Node, name: string): Node | undefined {
    return this.#byName.get(key(parent, name))
  }

  get size(): number {
    return this.#byId.size
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
      const first = n.names[0]
      if (first === undefined) return undefined
      parts.push(first[1])
      n = first[0]
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
      node = { id: this.#nextId++, key, ino, isDir, names: [], nlookup: 0 }
      this.#byId.set(node.id, node)
      this.#byKey.set(key, node)
    }
    this.#bind(parent, name, node)
    node.nlookup++
    return node
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
    const k = key(parent, name)
    const node = this.#byName.get(k)
    if (node === undefined) return
    this.#byName.delete(k)
    node.names = node.names.filter(([p, n]) => !(p === parent && n === name))
    this.#retireIfNameless(node)
  }

  /**
   * An object whose last name went is gone, though the kernel may hold its node a while: its
   * st_ino is free, and the host fs may give it to a new object, which must get a node of its
   * own (the kernel would otherwise see a new directory under an old directory's node id).
   */
  #retireIfNameless(node: Node): void {
    if (node.names.length === 0 && node !== this.root && this.#byKey.get(node.key) === node) this.#byKey.delete(node.key)
  }

  /** rename(2) succeeded: whatever was at the new name is gone, the old name's node moves. */
  rename(parent: Node, name: string, newParent: Node, newName: string): void {
    const k = key(parent, name)
    const node = this.#byName.get(k)
    // Two names of one inode: rename(2) does nothing.
    if (node !== undefined && node === this.#byName.get(key(newParent, newName))) return
    this.removeName(newParent, newName)
    if (node === undefined) return
    this.#byName.delete(k)
    node.names = node.names.filter(([p, n]) => !(p === parent && n === name))
    this.#bind(newParent, newName, node)
  }

  /** The kernel drops `n` lookups. */
  forget(id: number, n: number): void {
    const node = this.#byId.get(id)
    if (node === undefined || node === this.root) return
    node.nlookup -= n
    if (node.nlookup > 0) return
    this.#byId.delete(id)
    if (this.#byKey.get(node.key) === node) this.#byKey.delete(node.key)
    for (const [p, name] of node.names) {
      const k = key(p, name)
      if (this.#byName.get(k) === node) this.#byName.delete(k)
    }
    node.names = []
  }

  #bind(parent: Node, name: string, node: Node): void {
    const k = key(parent, name)
    const was = this.#byName.get(k)
    if (was === node) return
    if (was !== undefined) {
      was.names = was.names.filter(([p, n]) => !(p === parent && n === name))
      this.#retireIfNameless(was)
    }
    // A directory has one name: a new one means it moved.
    if (node.isDir) {
      for (const [p, n] of node.names) this.#byName.delete(key(p, n))
      node.names = []
    }
    node.names.push([parent, name])
    this.#byName.set(k, node)
  }
}
