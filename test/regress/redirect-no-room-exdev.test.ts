// Regression (found by scripts/fuzz/run --stacking, seed 47010, minimized to 15 ops): a lower
// directory whose upper copy has filled its xattr room (a big user xattr set through the
// mount), then moved to another parent. It needs a redirect xattr that no longer fits: the
// kernel logs "failed to set redirect (-28)" and answers EXDEV, so that mv copies instead
// (ovl_set_redirect); layerfs passed ENOSPC on. On ext4, whose xattrs share one block.
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { twinMounts } from '../helpers/twin.js'

// The largest user.big the directory takes (bisected, 4-byte steps: ext4 pads values to 4),
// then moves of it: to another parent (an absolute redirect, which no longer fits), within
// its parent (a relative one, one name: may fit or not, the same on both), and back.
const script = `python3 - <<'PY'
import errno, os
def fits(n):
    try:
        os.setxattr('d', 'user.big', b'x' * n)
        return True
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.E2BIG): raise
        return False
lo, hi = 0, 65536
while hi - lo > 4:
    mid = (lo + hi) // 2
    if fits(mid): lo = mid
    else: hi = mid
fits(lo)
for a, b in [('d', 'other/d'), ('d', 'd-renamed'), ('d-renamed', 'd')]:
    try:
        os.rename(a, b)
        print(a, b, 'ok')
    except OSError as e:
        print(a, b, errno.errorcode[e.errno])
print(sorted(os.listdir('.')), sorted(os.listdir('d' if os.path.isdir('d') else 'd-renamed')))
PY`

t.test('a moved directory whose redirect does not fit among its xattrs: EXDEV, as the kernel gives', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[0]!, { d: { f: 'f\n' }, other: {} })
  }, { fs: 'ext4' })
  const [lf] = await tw.same(t, script, { code: 0 })
  t.match(lf.stdout, /^d other\/d EXDEV$/m, 'the move to another parent: EXDEV')
  await tw.sameTree(t)
  await tw.lowersUnchanged(t)
})
