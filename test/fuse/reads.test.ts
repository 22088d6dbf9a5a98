// READs are answered in C with a pread on the handle's descriptor (lowlevel.c, ll_read). They
// must give the kernel's bytes: whole files, unaligned and short reads, reads across the end
// of a file and of a hole, random reads, cold and warm, and a reader whose handle a copy-up
// moves from the lower file to the upper copy mid-read. (Splicing them, as fuse-overlayfs
// does, was tried and taken out: native-notes/lowlevel-binding.md.)
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { twinMounts } from '../helpers/twin.js'

/** Deterministic bytes (no compression or zero-page luck). */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n)
  let x = seed >>> 0
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    b[i] = x >>> 24
  }
  return b
}

const SCRIPT = String.raw`
import hashlib, os, random
def h(b): return hashlib.sha256(b).hexdigest()[:16]
for name in ['big', 'odd', 'small', 'sparse']:
    with open(name, 'rb') as f: print(name, 'whole', h(f.read()))
    with open(name, 'rb', buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        for off, n in [(0, 1), (1, 8191), (4095, 8194), (size - 5, 100), (size, 10), (size + 4096, 10)]:
            print(name, off, n, h(os.pread(f.fileno(), n, max(0, off))))
r = random.Random(7)
fd = os.open('big', os.O_RDONLY)
print('random', h(b''.join(os.pread(fd, r.choice([4096, 65536, 300000]), r.randrange(0, 3 << 20)) for _ in range(200))))
# A reader across a copy-up: the first half before, the rest after another writer appended.
first = os.pread(fd, 1 << 20, 0)
w = os.open('big', os.O_WRONLY | os.O_APPEND)
os.write(w, b'appended by another handle\n' * 1000)
os.close(w)
rest = os.pread(fd, 4 << 20, 1 << 20)
print('across copy-up', h(first + rest), len(first + rest))
os.close(fd)
`

t.test('reads give the kernel\'s bytes', async t => {
  const tw = await twinMounts(t, ({ lowers, outside }) => {
    writeTree(lowers[0]!, {
      big: bytes(3 << 20, 1),
      odd: bytes((1 << 20) + 12345, 2),
      small: bytes(5000, 3),
    })
    writeTree(outside, { 'reads.py': SCRIPT })
  })
  // A sparse upper file: data, a 1 MiB hole, data.
  await tw.same(t, 'python3 -c "import os; fd = os.open(\'sparse\', os.O_CREAT | os.O_WRONLY, 0o644); ' +
    'os.pwrite(fd, b\'a\' * 10000, 0); os.pwrite(fd, b\'z\' * 10000, (1 << 20) + 10000); os.close(fd)"', { code: 0 })
  // Cold (the lower file's pages read from disk), then warm (with the copy-up made above).
  const [cold] = await tw.same(t, 'echo 3 > /proc/sys/vm/drop_caches; python3 "$OUT/reads.py"', { code: 0 })
  t.match(cold.stdout, /across copy-up [0-9a-f]{16} 3172728\n/, 'the reader sees the appended data')
  await tw.same(t, 'python3 "$OUT/reads.py"', { code: 0 })
  await tw.sameTree(t)
})
