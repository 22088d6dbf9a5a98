// The kernel's nodes (src/fuse/nodes.ts) without a mount: names, hard links, renames, and
// that a FORGET frees a node from every index, so the daemon holds what the kernel holds.
import t from 'tap'
import { Nodes, inoKey } from '../../src/fuse/nodes.js'

t.test('a node per inode, its path from its first name', async t => {
  const n = new Nodes(2n)
  const d = n.lookedUp(n.root, 'd', 10, 10n, true)
  const f = n.lookedUp(d, 'f', 11, 11n, false)
  t.equal(n.path(f), '/d/f')
  t.equal(n.find('/d/f'), f)
  t.equal(n.child(d, 'f'), f)
  t.equal(n.lookedUp(d, 'f', 11, 11n, false), f, 'a second lookup: the same node')
  t.equal(n.nlookup(f), 2)
  t.equal(n.size, 3)
})

t.test('hard links: one node, several names; removing the first keeps the others', async t => {
  const n = new Nodes(2n)
  const a = n.lookedUp(n.root, 'a', 20, 20n, false)
  t.equal(n.lookedUp(n.root, 'b', 20, 20n, false), a)
  t.equal(n.child(n.root, 'b'), a)
  n.removeName(n.root, 'a')
  t.equal(n.path(a), '/b', 'the path follows the name left')
  t.equal(n.child(n.root, 'a'), undefined)
  n.removeName(n.root, 'b')
  t.notOk(n.isNamed(a))
  t.equal(n.path(a), undefined)
  const fresh = n.lookedUp(n.root, 'c', 20, 20n, false)
  t.not(fresh, a, 'a nameless node is retired: its st_ino gets a new node')
})

t.test('rename moves a node, replaces the target, and moves a directory once', async t => {
  const n = new Nodes(2n)
  const d1 = n.lookedUp(n.root, 'd1', 30, 30n, true)
  const d2 = n.lookedUp(n.root, 'd2', 31, 31n, true)
  const f = n.lookedUp(d1, 'f', 32, 32n, false)
  const g = n.lookedUp(d2, 'g', 33, 33n, false)
  n.rename(d1, 'f', d2, 'g')
  t.equal(n.path(f), '/d2/g')
  t.equal(n.child(d1, 'f'), undefined)
  t.notOk(n.isNamed(g), 'the replaced node has no name')
  n.rename(n.root, 'd2', d1, 'sub')
  t.equal(n.path(f), '/d1/sub/g', 'paths below a moved directory follow it')
  t.equal(n.lookedUp(n.root, 'again', 31, 31n, true), d2, 'a directory looked up elsewhere: moved, one name')
  t.equal(n.child(d1, 'sub'), undefined)
  t.equal(n.path(f), '/again/g')
})

t.test('exchange: two names trade nodes; a directory moves once, a hard link keeps its other names', async t => {
  const n = new Nodes(2n)
  const d1 = n.lookedUp(n.root, 'd1', 40, 40n, true)
  const d2 = n.lookedUp(n.root, 'd2', 41, 41n, true)
  const f = n.lookedUp(d1, 'f', 42, 42n, false)
  const link = n.lookedUp(n.root, 'flink', 42, 42n, false)
  t.equal(link, f, 'a hard link: one node')
  const below = n.lookedUp(d2, 'below', 43, 43n, false)
  n.exchange(d1, 'f', n.root, 'd2')
  t.equal(n.child(d1, 'f'), d2, 'the directory is at the file\'s name')
  t.equal(n.child(n.root, 'd2'), f, 'the file is at the directory\'s name')
  t.equal(n.path(below), '/d1/f/below', 'paths below the moved directory follow it')
  t.equal(n.child(n.root, 'flink'), f, 'the other name of the file stays')
  t.equal(n.lookedUp(n.root, 'other', 41, 41n, true), d2, 'the directory has one name: looked up elsewhere, it moves')
  t.equal(n.child(d1, 'f'), undefined)
  n.exchange(n.root, 'd2', n.root, 'flink')
  t.equal(n.child(n.root, 'd2'), f, 'two names of one node: nothing changes')
  n.exchange(n.root, 'unknown', n.root, 'd1')
  t.equal(n.child(n.root, 'unknown'), d1, 'a name the kernel never looked up: the known node moves there')
  t.equal(n.child(n.root, 'd1'), undefined)
})

t.test('forget frees the node from every index', async t => {
  const n = new Nodes(2n)
  const d = n.lookedUp(n.root, 'd', 40, 40n, true)
  const f = n.lookedUp(d, 'f', 41, 41n, false)
  n.lookedUp(d, 'f', 41, 41n, false)
  n.forget(f, 1)
  t.equal(n.get(f), f, 'still held once')
  n.forget(f, 1)
  t.equal(n.get(f), undefined)
  t.equal(n.child(d, 'f'), undefined)
  t.notOk(n.hasChildren(d), 'no name known in it')
  t.not(n.lookedUp(d, 'f', 41, 41n, false), f, 'a new lookup: a new node')
  t.equal(n.size, 3)
})

t.test('inode numbers: numbers when exact, so one inode has one key', async t => {
  t.equal(inoKey(5n), 5)
  t.equal(inoKey(2n ** 53n - 1n), 2 ** 53 - 1)
  t.equal(inoKey(1n << 56n | 7n), 1n << 56n | 7n)
  const n = new Nodes(2n)
  const big = 1n << 56n | 7n
  const a = n.lookedUp(n.root, 'a', inoKey(big), big, false)
  t.equal(n.lookedUp(n.root, 'b', inoKey(big), big, false), a)
})

t.test('evictable nodes: leaves, least recently looked up first; counted until forgotten or looked up again', async t => {
  const n = new Nodes(2n)
  const d = n.lookedUp(n.root, 'd', 10, 10n, true)
  const a = n.lookedUp(d, 'a', 11, 11n, false)
  const b = n.lookedUp(d, 'b', 12, 12n, false)
  const c = n.lookedUp(d, 'c', 13, 13n, false)
  n.lookedUp(d, 'a', 11, 11n, false) // a is the most recent now
  t.equal(n.held, 5, 'the root counts too')
  t.same(n.evictable(2, () => false), [b, c], 'd has children: not a leaf; b and c are the oldest leaves')
  n.dropping(b)
  n.dropping(c)
  t.equal(n.held, 3, 'b and c are being dropped')
  t.same(n.evictable(5, node => node === a), [], 'a is kept (open, say)')
  n.lookedUp(d, 'b', 12, 12n, false)
  t.equal(n.held, 4, 'b looked up again: held again')
  n.forget(c, 1)
  t.equal(n.held, 4, 'c forgotten: gone from both counts')
  t.equal(n.size, 4)
  t.same(n.evictable(5, () => false), [a, b], 'a went to the back when kept; b after it')
  n.dropping(a)
  t.equal(n.held, 3)
  n.rename(d, 'a', n.root, 'a2')
  t.equal(n.held, 4, 'a dropping node that moves is held again (the kernel has its new name)')
  t.same(n.evictable(5, () => false), [b, a])
})

t.test('a directory forgotten under a hard link: the link takes its next name (regression)', async t => {
  // Found by the fuzzer under a node cap: the kernel dropped one name of a hard-linked
  // symlink and then the directory that held it; the link's path was built from that first
  // name, whose directory had no name any more: ENOENT for readlink through its other name.
  const n = new Nodes(2n)
  const x = n.lookedUp(n.root, 'x', 10, 10n, true)
  const a = n.lookedUp(n.root, 'a', 11, 11n, true)
  const l = n.lookedUp(x, 'l1', 12, 12n, false)
  t.equal(n.lookedUp(a, 'q', 12, 12n, false), l, 'one node, two names')
  t.equal(n.path(l), '/x/l1')
  n.forget(x, 1)
  t.equal(n.path(l), '/a/q', 'the path goes through the name the kernel still has')
  t.equal(n.child(a, 'q'), l)
})

t.test('the table grows past its first slots, and a freed slot gives a new id (never one given before)', async t => {
  const n = new Nodes(2n)
  const d = n.lookedUp(n.root, 'd', 10, 10n, true)
  const ids = new Set<number>([n.root, d])
  const files: number[] = []
  for (let i = 0; i < 5000; i++) {
    const f = n.lookedUp(d, `f${i}`, 100 + i, BigInt(100 + i), false)
    if (ids.has(f)) t.fail(`id ${f} twice`)
    ids.add(f)
    files.push(f)
  }
  t.equal(ids.size, 5002, 'every id a new one')
  t.equal(n.size, 5002)
  t.equal(n.child(d, 'f4321'), files[4321], 'found after the table grew')
  t.equal(n.path(files[17]!), '/d/f17')
  t.equal(n.keyed(100 + 4999), files[4999])
  for (const f of files.slice(0, 3000)) n.forget(f, 1)
  t.equal(n.size, 2002)
  t.equal(n.get(files[0]!), undefined)
  for (let i = 0; i < 3000; i++) {
    const f = n.lookedUp(d, `g${i}`, 20000 + i, BigInt(20000 + i), false)
    if (ids.has(f)) t.fail(`id ${f} given again`)
    ids.add(f)
  }
  t.equal(n.size, 5002)
  t.equal(n.path(n.child(d, 'g2999')!), '/d/g2999')
  t.equal(n.child(d, 'f0'), undefined, 'a forgotten name is not found')
  t.equal(n.child(d, 'f3000'), files[3000])
})

t.test('a directory forgotten while a child still names it: the child has no path, the slot waits for it', async t => {
  const n = new Nodes(2n)
  const d = n.lookedUp(n.root, 'd', 10, 10n, true)
  const f = n.lookedUp(d, 'f', 11, 11n, false)
  n.forget(d, 1)
  t.equal(n.get(d), undefined, 'the kernel forgot it')
  t.equal(n.path(f), undefined, 'its child has no path through it')
  t.equal(n.child(n.root, 'd'), undefined)
  const d2 = n.lookedUp(n.root, 'd', 10, 10n, true)
  t.not(d2, d, 'looked up again: a new node')
  t.equal(n.path(f), undefined, 'the old child still leads nowhere')
  n.forget(f, 1)
  t.equal(n.size, 2, 'the root and the new d')
  const g = n.lookedUp(d2, 'f', 11, 11n, false)
  t.equal(n.path(g), '/d/f')
})

t.test('inode numbers that change, and BigInt ones', async t => {
  const n = new Nodes(2n)
  const a = n.lookedUp(n.root, 'a', '/a', 50n, false)
  t.equal(n.keyed('/a'), a, 'a lower hard link: keyed by its path')
  t.equal(n.keyed(50), undefined)
  n.setIno(a, 60n)
  n.rekey(a, 60)
  t.equal(n.ino(a), 60)
  t.equal(n.keyed(60), a, 'copied up: keyed by its own st_ino')
  t.equal(n.keyed('/a'), undefined)
  const b = n.lookedUp(n.root, 'b', 70, 70n, false)
  n.setIno(b, 71n)
  t.equal(n.keyed(70), b, 'the key stays until rekeyed')
  n.rekey(b, 71)
  t.equal(n.keyed(70), undefined)
  t.equal(n.keyed(71), b)
  const big = (1n << 60n) + 3n
  const c = n.lookedUp(n.root, 'c', inoKey(big), big, false)
  t.equal(n.ino(c), big)
  t.equal(n.keyed(big), c)
  t.equal(n.lookedUp(n.root, 'c2', inoKey(big), big, false), c, 'a hard link of it')
  n.forget(c, 2)
  t.equal(n.keyed(big), undefined)
})

t.test('random names, links, renames, exchanges and forgets: every named node is found at its path', async t => {
  let seed = 12345
  const rand = (k: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return (seed >>> 8) % k
  }
  const n = new Nodes(2n)
  const dirs = [n.root]
  const held = new Map<number, number>() // id -> lookups held
  const seen = new Set<number>([n.root])
  for (let step = 0; step < 30000; step++) {
    const op = rand(10)
    const parent = dirs[rand(dirs.length)]!
    if (!n.has(parent)) continue
    const name = `n${rand(40)}`
    if (op < 4) {
      const isDir = rand(4) === 0
      const ino = 1000 + rand(3000)
      const prior = n.keyed(ino)
      if (prior !== undefined && n.isDir(prior) && isDir && n.path(prior) !== undefined && n.path(parent)?.startsWith(n.path(prior)!)) continue
      const id = n.lookedUp(parent, name, ino, BigInt(ino), isDir)
      if (!held.has(id) && seen.has(id)) t.fail(`id ${id} given twice`)
      seen.add(id)
      held.set(id, (held.get(id) ?? 0) + 1)
      if (isDir) dirs.push(id)
    } else if (op < 6) n.removeName(parent, name)
    else if (op < 8 && rand(4) === 0) {
      // an exchange, where neither is inside the other
      const to = dirs[rand(dirs.length)]!
      const toName = `n${rand(40)}`
      const a = n.child(parent, name)
      const b = n.has(to) ? n.child(to, toName) : undefined
      const pa = n.path(parent)
      const pb = n.path(to)
      if (!n.has(to) || pa === undefined || pb === undefined) continue
      const inside = (x: number | undefined, p: string): boolean => x !== undefined && n.isDir(x) && (p + '/').startsWith((n.path(x) ?? '\0') + '/')
      if (inside(a, pb) || inside(b, pa)) continue
      n.exchange(parent, name, to, toName)
    } else if (op < 8) {
      const to = dirs[rand(dirs.length)]!
      const moved = n.child(parent, name)
      const toPath = n.path(to)
      if (!n.has(to) || (moved !== undefined && n.isDir(moved) && (toPath === undefined || toPath.startsWith(n.path(moved) ?? '\0')))) continue
      n.rename(parent, name, to, `n${rand(40)}`)
    } else {
      const ids = [...held.keys()]
      if (ids.length === 0) continue
      const id = ids[rand(ids.length)]!
      if (n.hasChildren(id)) continue
      const k = held.get(id)!
      n.forget(id, k)
      held.delete(id)
    }
  }
  t.equal(n.size, held.size + 1, 'live nodes: the held ones and the root')
  let checked = 0
  for (const id of held.keys()) {
    const p = n.path(id)
    if (p === undefined) continue
    if (n.find(p) !== id || n.child(n.parentOf(id)!, n.nameOf(id)) !== id) t.fail(`${id} is not found at ${p}`)
    checked++
  }
  t.ok(checked > 100, `${checked} paths checked`)
})
