// Regression (review of issue 11): building the union opened each volume's host directory a
// second time (a whole Layer, only to read its st_dev) and never closed it: one descriptor per
// volume for the daemon's life. Each host directory is now held once, by its volume's layer.
import fs from 'node:fs'
import t from 'tap'
import { mountLayerfs } from '../helpers/mount.js'
import { daemonOf, freshDir } from '../helpers/scratch.js'

t.test('a volume\'s host directory is open once in the daemon', async t => {
  const root = freshDir('volume-fds')
  const hosts = ['v1', 'v2'].map(v => `${root}/${v}`)
  for (const d of ['lower/data', 'upper', 'work', ...hosts.map(h => h.slice(root.length + 1))]) fs.mkdirSync(`${root}/${d}`, { recursive: true })
  const m = await mountLayerfs(t, {
    lowers: [`${root}/lower`], upper: `${root}/upper`, work: `${root}/work`,
    options: hosts.map((h, i) => `volume=${h}:/data/vol${i}`),
  })
  const pid = daemonOf(m.mnt)
  t.ok(pid, 'the daemon')
  const targets = fs.readdirSync(`/proc/${pid}/fd`).map(fd => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`)
    } catch {
      return ''
    }
  })
  for (const h of hosts) t.equal(targets.filter(x => x === h).length, 1, `${h}: one descriptor`)
  fs.writeFileSync(`${m.mnt}/data/vol0/f`, 'x')
  t.equal(fs.readFileSync(`${hosts[0]}/f`, 'utf8'), 'x', 'the volume works')
})
