// A write makes the kernel drop the size and times it caches, so fstat, lseek(SEEK_END) and a
// read past the old size send a GETATTR with the file's handle. For a regular file open for
// writing in the upper layer those are answered in C from an fstat of the handle (lowlevel.c,
// "attributes of open files"). Here they must still give what kernel overlayfs gives: sizes,
// modes, link counts and inode numbers (st_ino kept across copy-up, the same as by name) of a
// new file, a copied-up lower file, a hard-linked, renamed and unlinked open file; and they
// must really stop reaching JS.
import { readFileSync, statSync } from 'node:fs'
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { twinMounts } from '../helpers/twin.js'

/** Each line: what fstat, lseek(SEEK_END) and stat by name say of an open file after each step. */
const SCRIPT = String.raw`
import os, sys
def show(tag, fd, path=None):
    end = os.lseek(fd, 0, os.SEEK_END)
    st = os.fstat(fd)
    by_name = os.stat(path).st_ino == st.st_ino if path else '-'
    print(tag, oct(st.st_mode), st.st_nlink, st.st_size, end, st.st_blocks > 0, by_name, st.st_ino == inos.get(tag.split(':')[0], st.st_ino))
inos = {'lower': os.stat('lower').st_ino}
fd = os.open('new', os.O_CREAT | os.O_RDWR, 0o640)
inos['new'] = os.fstat(fd).st_ino
for i in range(5):
    os.write(fd, b'x' * (1000 * i + 1))
    os.pread(fd, 4096, 0)
    show('new:%d' % i, fd, 'new')
lo = os.open('lower', os.O_RDWR | os.O_APPEND)
# Write, then ask for the size through the handle: each asks the filesystem (the write dropped it).
for i in range(50):
    os.write(fd, b'y')
    os.write(lo, b'z')
    assert os.lseek(fd, 0, os.SEEK_END) == os.fstat(fd).st_size
    assert os.lseek(lo, 0, os.SEEK_END) == os.fstat(lo).st_size
for i in range(3):
    os.write(lo, b'more\n' * 100)
    show('lower:%d' % i, lo, 'lower')
os.link('new', 'new-link')
os.write(fd, b'after link')
show('new:link', fd, 'new-link')
os.rename('new', 'renamed')
os.write(fd, b'after rename')
show('new:renamed', fd, 'renamed')
os.fchmod(fd, 0o600)
os.write(fd, b'after chmod')
show('new:chmod', fd, 'renamed')
os.unlink('renamed'); os.unlink('new-link')
os.write(fd, b'after unlink')
show('new:unlinked', fd)
os.ftruncate(lo, 10)
show('lower:truncated', lo, 'lower')
os.close(fd); os.close(lo)
`

/** The GETATTR requests a daemon's log shows from byte `from` on. */
function getattrsSince(log: string, from: number): number {
  return [...readFileSync(log).subarray(from).toString().matchAll(/layerfs:request getattr /g)].length
}

for (const [label, env] of [['the JS thread reads requests', {}], ['LAYERFS_FUSE_THREAD=1', { LAYERFS_FUSE_THREAD: '1' }]] as const) {
  t.test(label, async t => {
    const tw = await twinMounts(t, ({ lowers, outside }) => {
      writeTree(lowers[0]!, { lower: 'lower file\n'.repeat(50) })
      writeTree(outside, { 'attrs.py': SCRIPT })
    }, { env: { ...env, DEBUG: 'layerfs:request' } })
    const log = tw.layerfs.log!
    const from = statSync(log).size
    const [l] = await tw.same(t, 'python3 "$OUT/attrs.py"', { code: 0 })
    t.equal(l.stdout.trim().split('\n').length, 13, 'every step printed')
    t.notMatch(l.stdout, / False/, 'fstat gives the inode number the name gives, the same before and after copy-up')
    const getattrs = getattrsSince(log, from)
    // 113 writes, each followed by an lseek(SEEK_END) (the kernel asks with the handle), and a
    // stat by name after 13 of them.
    t.ok(getattrs < 20, `${getattrs} GETATTRs reached JS for 113 writes (the handles' own are answered in C)`)
    await tw.same(t, 'stat -c "%n %s %h %a" lower; ls', { code: 0 })
    await tw.sameTree(t)
    await tw.sameUpper(t)
  })
}
