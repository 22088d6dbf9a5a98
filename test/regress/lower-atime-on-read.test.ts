// Regression (found by xfstests' generic/003 on layerfs, native-notes/xfstests.md): reading a
// lower file through the mount changed the lower layer's atime on disk (the daemon opened it
// without O_NOATIME, so the host's relatime rule applied). Kernel overlayfs opens every real
// file O_NOATIME (ovl_path_open): a lower layer is never written, its atimes included.
import fs from 'node:fs'
import t from 'tap'
import { twinMounts } from '../helpers/twin.js'

const OLD = new Date('2020-01-01T00:00:00Z')

t.test('reading a lower file through the mount leaves its atime in the lower layer', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    fs.writeFileSync(`${lowers[0]}/f`, 'lower bytes\n')
    fs.mkdirSync(`${lowers[0]}/d`)
    fs.writeFileSync(`${lowers[0]}/d/g`, 'deeper\n')
    // An atime older than the mtime: the host's relatime would update it on the first read.
    fs.utimesSync(`${lowers[0]}/f`, OLD, new Date())
    fs.utimesSync(`${lowers[0]}/d/g`, OLD, new Date())
  })
  // The twin reads the lowers (to check them afterwards), so relatime may have moved the atimes
  // already: put them back, then read through the mounts.
  for (const side of tw.sides) for (const p of ['f', 'd/g']) fs.utimesSync(`${side.lowers[0]}/${p}`, OLD, fs.statSync(`${side.lowers[0]}/${p}`).mtime)
  const [lf, ov] = await tw.sh('cat f d/g && python3 -c "import os; fd = os.open(\'f\', os.O_RDONLY); os.pread(fd, 4, 2); os.close(fd)"')
  t.equal(lf.code, 0, lf.stderr)
  t.equal(ov.code, 0, ov.stderr)
  t.equal(lf.stdout, ov.stdout)
  for (const side of tw.sides) {
    for (const p of ['f', 'd/g']) {
      t.equal(fs.statSync(`${side.lowers[0]}/${p}`).atime.toISOString(), OLD.toISOString(), `${side.role}: lower ${p} atime kept`)
    }
  }
})
