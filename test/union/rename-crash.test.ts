// Crash windows of rename(2) over an empty merged directory, by fault injection in the union
// core (no FUSE): the host rename that would follow a given step fails, as if the daemon had
// been killed there. At no step may the target name show the lower directory's entries.
import fs from 'node:fs'
import t from 'tap'
import * as attr from '../../src/union/attr-ops.js'
import * as dir from '../../src/union/dir-ops.js'
import { Union } from '../../src/union/union.js'
import { freshDir } from '../helpers/scratch.js'
import { whiteout } from '../helpers/layers.js'

function fixture(): { u: Union; root: string } {
  const root = freshDir('rename-crash')
  for (const d of ['l', 'u', 'w']) fs.mkdirSync(`${root}/${d}`)
  // target: merged (lower has an entry, the upper whites it out: empty in the union)
  fs.mkdirSync(`${root}/l/target`)
  fs.writeFileSync(`${root}/l/target/lower-entry`, 'must never show again\n')
  fs.mkdirSync(`${root}/u/target`)
  whiteout(`${root}/u/target/lower-entry`)
  fs.mkdirSync(`${root}/u/src`)
  fs.writeFileSync(`${root}/u/src/mine`, 'moved\n')
  const u = new Union({ lowerdirs: [`${root}/l`], upperdir: `${root}/u`, workdir: `${root}/w` })
  u.cleanWork()
  return { u, root }
}

t.test('rename of a directory over an empty merged directory: no step shows the lower entries', async t => {
  // The host renames of the successful path: the exchange with an empty opaque directory, then
  // the rename itself; a third never happens (the loop's last round completes).
  for (let failAt = 0; failAt < 3; failAt++) {
    const { u } = fixture()
    const upper = u.upper!
    const real = upper.rename.bind(upper)
    let n = 0
    upper.rename = (from: string, to: string, flags?: number): void => {
      if (n++ === failAt) throw Object.assign(new Error('injected crash'), { code: 'EIO' })
      real(from, to, flags)
    }
    let crashed = false
    await dir.rename(u, '/src', '/target').catch((e: unknown) => {
      crashed = true
      t.match(String(e), /injected crash/, 'only the injected failure')
    })
    upper.rename = real
    // What a remount would show: a fresh union over the same layers.
    const again = new Union({ lowerdirs: u.lowers.map(l => l.root), upperdir: upper.root, workdir: upper.work.replace(/\/work$/, '') })
    const names = attr.readdir(again, '/target').names.filter(x => x !== '.' && x !== '..')
    t.notOk(names.includes('lower-entry'), `crash before host rename #${failAt + 1} (${crashed ? 'crashed' : 'completed'}): /target shows ${JSON.stringify(names)}`)
    if (!crashed) t.same(names, ['mine'], 'the rename completed')
  }
})
