// Real paths reached through directory fds (src/layers/dir-fds.ts): no symlink followed in a
// middle component, paths past PATH_MAX, and fds dropped without a path in use ever meeting a
// reused fd number.
import fs from 'node:fs'
import t from 'tap'
import { Layer } from '../../src/layers/layer.js'
import { UpperLayer } from '../../src/layers/upper.js'
import { freshDir } from '../helpers/scratch.js'

t.test('a directory swapped for a symlink is never followed', async t => {
  const root = freshDir('dirfds')
  fs.mkdirSync(`${root}/layer/d`, { recursive: true })
  fs.mkdirSync(`${root}/outside`)
  fs.writeFileSync(`${root}/outside/f`, 'host')
  fs.writeFileSync(`${root}/layer/d/f`, 'layer')
  const l = new Layer(`${root}/layer`, 1, false)
  t.equal(l.tryLstat('/d/f')?.size, 5)
  fs.rmSync(`${root}/layer/d`, { recursive: true })
  fs.symlinkSync(`${root}/outside`, `${root}/layer/d`)
  // A fresh layer (no kept fd) and the old one (its fd kept on the removed dir) both refuse.
  const fresh = new Layer(`${root}/layer`, 1, false)
  t.equal(fresh.tryLstat('/d/f'), undefined, 'lstat through the symlink: absent')
  t.throws(() => fresh.readdir('/d'), { code: 'ELOOP' }, 'readdir of the symlink: ELOOP')
  t.throws(() => fresh.open('/d/f', fs.constants.O_RDONLY), { code: 'ELOOP' })
  t.equal(l.tryLstat('/d/f'), undefined, 'the kept fd is the removed dir: nothing there')
})

t.test('paths past PATH_MAX', async t => {
  const root = freshDir('dirfds-long')
  fs.mkdirSync(`${root}/u`)
  fs.mkdirSync(`${root}/w/work`, { recursive: true })
  const up = new UpperLayer(`${root}/u`, `${root}/w`)
  let p = ''
  for (let i = 0; i < 25; i++) {
    p += '/' + String(i).padStart(3, '0') + 'd'.repeat(197)
    up.mkdir(p, 0o755)
  }
  t.ok(p.length > 5000, `a ${p.length}-byte real path`)
  const fd = up.open(`${p}/f`, fs.constants.O_CREAT | fs.constants.O_WRONLY, 0o644)
  fs.writeSync(fd, 'deep')
  fs.closeSync(fd)
  t.equal(up.lstat(`${p}/f`).size, 4)
  up.setxattr(`${p}/f`, 'user.x', Buffer.from('1'))
  t.equal(up.getxattr(`${p}/f`, 'user.x')?.toString(), '1')
  up.rename(`${p}/f`, `${p}/g`)
  t.same(up.readdir(p).map(d => d.name), ['g'])
  up.truncate(`${p}/g`, 2)
  up.chmod(`${p}/g`, 0o600)
  t.match(up.lstat(`${p}/g`), { size: 2 })
  t.equal(Number(up.lstat(`${p}/g`).mode) & 0o777, 0o600)
})

t.test('dropping kept fds never lets a path in use meet a reused fd', async t => {
  const root = freshDir('dirfds-evict')
  fs.mkdirSync(`${root}/w/work`, { recursive: true })
  for (let i = 0; i < 70; i++) {
    fs.mkdirSync(`${root}/u/d${i}`, { recursive: true })
    fs.writeFileSync(`${root}/u/d${i}/f`, `${i}`)
  }
  const up = new UpperLayer(`${root}/u`, `${root}/w`)
  // 63 directories kept: the rename's source makes 64, its target's lookup must drop them.
  for (let i = 0; i < 63; i++) up.lstat(`/d${i}/f`)
  up.rename('/d68/f', '/d69/moved')
  t.same(fs.readdirSync(`${root}/u/d68`), [], 'the source left its own dir')
  t.same(fs.readdirSync(`${root}/u/d69`).sort(), ['f', 'moved'], 'the target is the right dir')
  t.equal(fs.readFileSync(`${root}/u/d69/moved`, 'utf8'), '68')
  for (let i = 0; i < 200; i++) up.lstat(`/d${i % 70}/${i % 70 === 68 ? '' : 'f'}`)
  await new Promise(r => setImmediate(r))
  const open = fs.readdirSync('/proc/self/fd').length
  t.ok(open < 200, `fds stay bounded (${open} open)`)
})

t.test('a directory made where one was removed behind our back: the stale kept fd goes', async t => {
  const root = freshDir('dirfds-made-again')
  fs.mkdirSync(`${root}/u/a`, { recursive: true })
  fs.mkdirSync(`${root}/w/work`, { recursive: true })
  const up = new UpperLayer(`${root}/u`, `${root}/w`)
  fs.writeFileSync(`${root}/u/a/old`, '')
  t.ok(up.tryLstat('/a/old'), 'through a kept fd of /a')
  fs.rmSync(`${root}/u/a`, { recursive: true })
  // By mkdir:
  up.mkdir('/a', 0o755)
  const fd = up.open('/a/new', fs.constants.O_CREAT | fs.constants.O_WRONLY, 0o644)
  fs.closeSync(fd)
  t.ok(fs.existsSync(`${root}/u/a/new`), 'made in the new directory, not the removed one')
  // By a copy-up's rename of a temp to where nothing was:
  fs.rmSync(`${root}/u/a`, { recursive: true })
  const temp = up.tempName()
  up.mkdir(temp, 0o755)
  t.ok(up.renameNoReplace(temp, '/a'))
  const fd2 = up.open('/a/again', fs.constants.O_CREAT | fs.constants.O_WRONLY, 0o644)
  fs.closeSync(fd2)
  t.ok(fs.existsSync(`${root}/u/a/again`), 'made in the renamed-in directory')
})
