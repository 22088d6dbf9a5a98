// The kernel's nodes (src/fuse/nodes.ts) without a mount: names, hard links, renames, and
// that a FORGET frees a node from every index, so the daemon holds what the kernel holds.
import t from 'tap'
import { Nodes, inoKey, isNamed } from '../../src/fuse/nodes.js'

t.test('a node per inode, its path from its first name', async t => {
  const n = new Nodes(2n)
  const d = n.lookedUp(n.root, 'd', 10, 10n, true)
  const f = n.lookedUp(d, 'f', 11, 11n, false)
  t.equal(n.path(f), '/d/f')
  t.equal(n.find('/d/f'), f)
  t.equal(n.child(d, 'f'), f)
  t.equal(n.lookedUp(d, 'f', 11, 11n, false), f, 'a second lookup: the same node')
  t.equal(f.nlookup, 2)
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
  t.notOk(isNamed(a))
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
  t.notOk(isNamed(g), 'the replaced node has no name')
  n.rename(n.root, 'd2', d1, 'sub')
  t.equal(n.path(f), '/d1/sub/g', 'paths below a moved directory follow it')
  t.equal(n.lookedUp(n.root, 'again', 31, 31n, true), d2, 'a directory looked up elsewhere: moved, one name')
  t.equal(n.child(d1, 'sub'), undefined)
  t.equal(n.path(f), '/again/g')
})

t.test('forget frees the node from every index', async t => {
  const n = new Nodes(2n)
  const d = n.lookedUp(n.root, 'd', 40, 40n, true)
  const f = n.lookedUp(d, 'f', 41, 41n, false)
  n.lookedUp(d, 'f', 41, 41n, false)
  n.forget(f.id, 1)
  t.equal(n.get(f.id), f, 'still held once')
  n.forget(f.id, 1)
  t.equal(n.get(f.id), undefined)
  t.equal(n.child(d, 'f'), undefined)
  t.equal(d.children, undefined, 'an empty children map is dropped')
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
  n.forget(c.id, 1)
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
  n.forget(x.id, 1)
  t.equal(n.path(l), '/a/q', 'the path goes through the name the kernel still has')
  t.equal(n.child(a, 'q'), l)
})
