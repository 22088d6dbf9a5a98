// metacopy=on in the union core (no FUSE): what a metadata-only copy-up leaves on disk, and
// the crash windows of the data copy-up that follows it, by fault injection: whatever step
// fails, a fresh union over the same layers (what a remount shows) has the file's full data,
// from the lower layer (still a metacopy file) or from the upper one (the mark gone only after
// the data is there and fsync'd). Never an upper file that claims data it lacks.
import fs from 'node:fs'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import * as attr from '../../src/union/attr-ops.js'
import * as dir from '../../src/union/dir-ops.js'
import * as file from '../../src/union/file-ops.js'
import { Union } from '../../src/union/union.js'
import { freshDir } from '../helpers/scratch.js'
import { getXattr, setXattr } from '../helpers/layers.js'

const DATA = randomBytes(200 * 1024)

function fixture(metacopy = true): { u: Union; root: string } {
  const root = freshDir('metacopy')
  for (const d of ['l', 'u', 'w']) fs.mkdirSync(`${root}/${d}`)
  fs.writeFileSync(`${root}/l/f`, DATA)
  fs.writeFileSync(`${root}/l/small`, 'small\n')
  fs.chmodSync(`${root}/l/f`, 0o644)
  fs.utimesSync(`${root}/l/f`, 1000, 2000)
  setXattr(`${root}/l/f`, 'user.tag', 'kept')
  const u = new Union({ lowerdirs: [`${root}/l`], upperdir: `${root}/u`, workdir: `${root}/w`, metacopy })
  u.cleanWork()
  return { u, root }
}

const remount = (root: string, metacopy = true): Union => new Union({ lowerdirs: [`${root}/l`], upperdir: `${root}/u`, workdir: `${root}/w`, metacopy })

/** The whole file through the union: open, read, release. */
async function readUnion(u: Union, path: string): Promise<Buffer> {
  const id = await file.open(u, path, fs.constants.O_RDONLY)
  const size = attr.getattr(u, path).size
  const buf = Buffer.alloc(size + 1)
  let n = 0
  for (let r; (r = file.read(u, id, buf.subarray(n), buf.length - n, n)) > 0;) n += r
  file.release(u, id)
  return buf.subarray(0, n)
}

const isMetacopy = (root: string, p: string): boolean => getXattr(`${root}/u${p}`, 'trusted.overlay.metacopy') !== undefined

t.test('chmod copies up the inode only: the metacopy mark, the lower size as a hole, the data read from below', async t => {
  const { u, root } = fixture()
  const before = attr.getattr(u, '/f')
  await attr.chmod(u, '/f', 0o600)
  const up = fs.statSync(`${root}/u/f`)
  t.ok(isMetacopy(root, '/f'), 'the upper file is marked metacopy')
  t.equal(getXattr(`${root}/u/f`, 'user.tag'), 'kept', 'xattrs copied')
  t.equal(up.size, DATA.length, 'the lower size')
  t.ok(up.blocks < 16, `no data in the upper (${up.blocks} blocks)`)
  const st = attr.getattr(u, '/f')
  t.equal(st.mode & 0o7777, 0o600, 'the new mode')
  t.equal(st.blocks, before.blocks, "st_blocks: the lower data's")
  t.equal(st.ino, before.ino, 'st_ino kept (origin)')
  t.equal(st.mtimeNs, 2_000_000_000_000n, 'mtime kept')
  t.ok((await readUnion(u, '/f')).equals(DATA), 'reads give the lower data')
  t.ok((await readUnion(remount(root), '/f')).equals(DATA), 'and after a remount')
  t.ok(fs.readFileSync(`${root}/l/f`).equals(DATA), 'lower untouched')
  t.same(fs.readdirSync(`${root}/w/work`), [], 'workdir left empty')
})

t.test('metacopy off: the same chmod copies the data; a metacopy upper is refused (EPERM)', async t => {
  const { u, root } = fixture(false)
  await attr.chmod(u, '/f', 0o600)
  t.notOk(isMetacopy(root, '/f'), 'a full copy-up')
  t.ok(fs.readFileSync(`${root}/u/f`).equals(DATA), 'with the data')
  const m = fixture(true)
  await attr.chmod(m.u, '/small', 0o600)
  t.throws(() => attr.getattr(remount(m.root, false), '/small'), { code: 'EPERM' }, 'a mount without metacopy refuses the metacopy file')
})

t.test('data copy-up at the first open for write: in place, the mark removed last', async t => {
  const { u, root } = fixture()
  await attr.chmod(u, '/f', 0o600)
  const inode = fs.statSync(`${root}/u/f`).ino
  const upper = u.upper!
  const steps: string[] = []
  const fsyncFd = upper.fsyncFd.bind(upper)
  const removexattr = upper.removexattr.bind(upper)
  upper.fsyncFd = async (fd: number) => {
    steps.push('fsync')
    return fsyncFd(fd)
  }
  upper.removexattr = (p: string, name: string) => {
    steps.push(`removexattr ${name}`)
    removexattr(p, name)
  }
  const reader = await file.open(u, '/f', fs.constants.O_RDONLY)
  const id = await file.open(u, '/f', fs.constants.O_WRONLY)
  file.write(u, id, Buffer.from('NEW'), 3, 0)
  file.release(u, id)
  t.same(steps, ['fsync', 'removexattr trusted.overlay.metacopy'], 'data fsync\'d before the mark goes')
  t.equal(fs.statSync(`${root}/u/f`).ino, inode, 'the same upper inode (written in place)')
  t.notOk(isMetacopy(root, '/f'), 'no mark left')
  const buf = Buffer.alloc(3)
  file.read(u, reader, buf, 3, 0)
  file.release(u, reader)
  t.equal(buf.toString(), 'NEW', 'a reader opened before reads the upper data')
  const want = Buffer.concat([Buffer.from('NEW'), DATA.subarray(3)])
  t.ok((await readUnion(remount(root), '/f')).equals(want), 'the data after a remount')
})

t.test('crash windows of the data copy-up: a remount always shows the full data', async t => {
  for (const step of ['copy', 'fsync', 'removexattr']) {
    const { u, root } = fixture()
    await attr.chmod(u, '/f', 0o600)
    const upper = u.upper!
    const crash = (): never => {
      throw Object.assign(new Error('injected crash'), { code: 'EIO' })
    }
    if (step === 'copy') {
      // Half the data written, then the daemon dies.
      upper.copyDataInto = async (_from, _path, fd: number) => {
        fs.writeSync(fd, DATA, 0, DATA.length / 2, 0)
        crash()
      }
    } else if (step === 'fsync') upper.fsyncFd = async () => crash()
    else upper.removexattr = () => crash()
    await t.rejects(file.open(u, '/f', fs.constants.O_RDWR), /injected crash/, `${step}: the open fails`)
    t.ok(isMetacopy(root, '/f'), `${step}: the upper file is still a metacopy file`)
    t.ok((await readUnion(remount(root), '/f')).equals(DATA), `${step}: a remount reads the full data`)
  }
  // O_TRUNC: the file is truncated before the mark goes.
  const { u, root } = fixture()
  await attr.chmod(u, '/f', 0o600)
  u.upper!.removexattr = () => {
    throw Object.assign(new Error('injected crash'), { code: 'EIO' })
  }
  await t.rejects(file.open(u, '/f', fs.constants.O_WRONLY | fs.constants.O_TRUNC), /injected crash/)
  t.ok(isMetacopy(root, '/f'), 'O_TRUNC: still a metacopy file')
  t.equal(attr.getattr(remount(root), '/f').size, 0, 'O_TRUNC: a remount shows it empty, claiming no data')
})

t.test('hard links of a metacopy file: one inode; the data copied up once', async t => {
  const { u, root } = fixture()
  await dir.link(u, '/f', '/g')
  t.equal(getXattr(`${root}/u/f`, 'trusted.overlay.redirect'), '/f', 'an absolute redirect before the link')
  t.ok((await readUnion(u, '/g')).equals(DATA), 'the second name reads the data')
  // Both names looked up (and cached) as metacopy; the write through one name must not be
  // overwritten by a data copy-up through the other.
  attr.getattr(u, '/f')
  attr.getattr(u, '/g')
  const id = await file.open(u, '/g', fs.constants.O_WRONLY)
  file.write(u, id, Buffer.from('NEW'), 3, 0)
  file.release(u, id)
  const id2 = await file.open(u, '/f', fs.constants.O_WRONLY)
  file.release(u, id2)
  const want = Buffer.concat([Buffer.from('NEW'), DATA.subarray(3)])
  t.ok((await readUnion(u, '/f')).equals(want), 'the first name sees the write')
  t.equal(attr.getattr(u, '/f').nlink, 2, 'nlink 2')
  t.ok(fs.readFileSync(`${root}/l/f`).equals(DATA), 'lower untouched')
})

t.test('layer diff reads layers a metacopy mount wrote; layer export refuses their metacopy files in one line', async t => {
  const { diffLayer } = await import('../../src/image/layer-diff.js')
  const { exportLayer } = await import('../../src/image/layer-export.js')
  const { u, root } = fixture()
  await attr.chmod(u, '/f', 0o600)
  await dir.rename(u, '/small', '/moved')
  t.same(diffLayer(`${root}/u`, [`${root}/l`]).map(c => `${c.kind} ${c.path}`), ['C /f', 'A /moved', 'D /small'], 'a metacopy file is a changed file')
  await t.rejects(exportLayer(`${root}/u`, `${root}/out.tar`, { lowers: [`${root}/l`] }), /is a metacopy file/, 'export: refused, with the reason')
})
