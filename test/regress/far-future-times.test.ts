// Regression (found in review): times after 2262 do not fit in 64-bit nanoseconds. The
// fd-relative stat packed them so and they wrapped (a file of 2300 showed 1715), and a copy-up
// (which sets the upper file's times) failed with EIO on any such file. Seconds and
// nanoseconds now travel apart, and times reach utimensat in 128 bits.
import t from 'tap'
import { utimesSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { twinMounts } from '../helpers/twin.js'

t.test('a lower file and directory dated 2300: stat, copy-up by chmod and by write, as the kernel', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    const year2300 = new Date('2300-01-01T00:00:00Z')
    mkdirSync(join(lowers[0]!, 'd'))
    writeFileSync(join(lowers[0]!, 'd/f'), 'old\n')
    writeFileSync(join(lowers[0]!, 'd/g'), 'old\n')
    utimesSync(join(lowers[0]!, 'd/f'), year2300, year2300)
    utimesSync(join(lowers[0]!, 'd/g'), year2300, year2300)
    utimesSync(join(lowers[0]!, 'd'), year2300, year2300)
  })
  const stat = 'stat -c "%n %y" d d/f d/g'
  const [lf] = await tw.same(t, stat, { code: 0 })
  t.match(lf.stdout, /d\/f 2300-01-01 00:00:00\.000000000/, 'the lower file shows 2300')
  await tw.same(t, 'chmod 600 d/f && stat -c "%n %y %a" d/f', { code: 0 })
  await tw.same(t, 'echo more >> d/g && stat -c "%n %s" d/g && cat d/g', { code: 0 })
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
