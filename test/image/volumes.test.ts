// Volumes (-o volume=HOSTDIR:PATH): PATH inside the mount is HOSTDIR itself. Writes land in
// HOSTDIR in place (no copy-up, no whiteouts, nothing in the upper layer or the container's
// size), the data outlives the container, and the boundary behaves like the kernel's bind
// mount on kernel overlayfs (EXDEV across it, EBUSY for the mount point).
import t from 'tap'
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { mountOverlay, runCli } from '../helpers/mount.js'
import { run, shOk } from '../helpers/run.js'
import { freshDir, registerMount, unregisterMount } from '../helpers/scratch.js'
import { type Op, syscalls } from '../helpers/syscalls.js'
import { buildTestImage, cliOk, mountImage } from './test-images.js'

const img = await buildTestImage('volimg')
const root = freshDir('root-vol')
await cliOk(['image', 'import', img.oci], root)

function hostDir(): string {
  const h = freshDir('host')
  writeFileSync(join(h, 'h'), 'host\n')
  writeFileSync(join(h, 'gone'), 'bye\n')
  return h
}

interface Ps { containers: { name: string; size: number }[] }
const sizeOf = async (name: string): Promise<number> =>
  (JSON.parse(await cliOk(['ps', '-s', '-a', '--json'], root)) as Ps).containers.find(c => c.name === name)!.size
const du = async (dir: string): Promise<number> => Number((await shOk(`du -sB1 '${dir}'`)).stdout.split(/\s/)[0])

t.test('writes land in the host directory, in place, and are not the container', async t => {
  const host = hostDir()
  const hIno = statSync(join(host, 'h')).ino
  const mnt = await mountImage(t, root, 'volimg:v1', 'withvol', { options: `volume=${host}:/data/vol` })
  const upper = join(root, 'containers/withvol/upper')
  const sizeBefore = await sizeOf('withvol')

  await shOk(`set -e
    echo more >> data/vol/h
    head -c 1048576 /dev/urandom > data/vol/big
    mkdir -p data/vol/d/e && echo x > data/vol/d/e/x && mv data/vol/d data/vol/d2
    rm data/vol/gone
    ln data/vol/h data/vol/h-link
    echo 'config in container' > etc/config`, { cwd: mnt })

  t.equal(readFileSync(join(host, 'h'), 'utf8'), 'host\nmore\n', 'the host file changed')
  t.equal(statSync(join(host, 'h')).ino, hIno, 'in place: the same inode, no copy-up')
  t.equal(statSync(join(host, 'h')).nlink, 2, 'a hard link in the volume is a host hard link')
  t.equal(statSync(join(host, 'big')).size, 1048576)
  t.equal(readFileSync(join(host, 'd2/e/x'), 'utf8'), 'x\n')
  t.notOk(existsSync(join(host, 'gone')), 'removed from the host')
  t.same(readdirSync(host).sort(), ['big', 'd2', 'h', 'h-link'], 'no whiteout, nothing else in the host dir')
  t.same(readdirSync(join(upper, 'data')), ['vol'], 'the upper has only the mount point')
  t.same(readdirSync(join(upper, 'data/vol')), [], '... and nothing in it')
  t.same(readdirSync(join(root, 'containers/withvol/work/volumes/0/work')), [], 'no temp object left')

  // The inode numbers are the host's (the volume is on the upper's filesystem).
  const [st] = await syscalls(mnt, [{ op: 'stat', path: 'data/vol/h', fields: ['ino'] }])
  t.same(st, { ok: true, value: { ino: hIno } })

  // A file unlinked while open (libfuse parks it under a hidden name): still readable through
  // the fd, gone from the volume and the host at once, nothing left behind after the close.
  writeFileSync(join(host, 'open'), 'still here\n')
  const r = await syscalls(mnt, [
    { op: 'open', path: 'data/vol/open', flags: 'O_RDONLY', as: 'f' },
    { op: 'unlink', path: 'data/vol/open' },
    { op: 'listdir', path: 'data/vol' },
    { op: 'read', fd: 'f' },
    { op: 'close', fd: 'f' },
  ])
  t.same(r.slice(1), [{ ok: true }, { ok: true, value: ['big', 'd2', 'h', 'h-link'] }, { ok: true, value: 'still here\n' }, { ok: true }])
  t.same(readdirSync(host).sort(), ['big', 'd2', 'h', 'h-link'], 'nothing parked in the host dir')

  const sizeAfter = await sizeOf('withvol')
  t.equal(sizeAfter, await du(upper), 'size = du of the upper')
  t.ok(sizeAfter - sizeBefore < 64 * 1024, `the 1 MiB written to the volume is not in the size (${sizeBefore} -> ${sizeAfter})`)

  // The data outlives the container.
  t.equal((await runCli(['umount', mnt])).code, 0)
  // Nor in the container's export (layer export of its upper, part A).
  const tar = join(freshDir('export'), 'c.tar')
  const ex = await runCli(['layer', 'export', upper, tar])
  t.equal(ex.code, 0, ex.stderr)
  const members = (await shOk(`tar -tf '${tar}'`)).stdout.split('\n').filter(Boolean).map(m => m.replace(/^\.\//, '').replace(/\/$/, ''))
  t.ok(members.includes('etc/config'), "the container's own change is exported")
  // The mount point is a directory made in a merged one: opaque, as the kernel makes it.
  t.same(members.filter(m => m.startsWith('data/vol/')), ['data/vol/.wh..wh..opq'], 'nothing of the volume is exported')
  t.equal((await runCli(['rm', 'withvol', '--root', root])).code, 0)
  t.equal(readFileSync(join(host, 'h'), 'utf8'), 'host\nmore\n', 'still there after rm')
  t.equal(statSync(join(host, 'big')).size, 1048576)
})

t.test('a volume file the host changes is read afresh at the next open', async t => {
  // The kernel keeps a file's pages across opens in the main union (nothing changes its data
  // but the kernel's own writes there); a volume's host directory may change behind the mount:
  // there the pages are dropped at an open once the file's size or mtime moved (ll-ops.ts
  // #keepCache). A host write of the same size still moves the mtime.
  const host = hostDir()
  const mnt = await mountImage(t, root, 'volimg:v1', 'hostwrites', { options: `volume=${host}:/data/vol` })
  t.equal((await shOk('cat data/vol/h', { cwd: mnt })).stdout, 'host\n', 'read through the mount (now cached)')
  await new Promise(resolve => setTimeout(resolve, 20))
  writeFileSync(join(host, 'h'), 'HOST\n')
  t.equal((await shOk('cat data/vol/h', { cwd: mnt })).stdout, 'HOST\n', 'the host\'s new bytes, same size')
  writeFileSync(join(host, 'h'), 'host, longer now\n')
  t.equal((await shOk('cat data/vol/h', { cwd: mnt })).stdout, 'host, longer now\n', 'and a new size')
})

t.test('the boundary behaves like a bind mount on kernel overlayfs', async t => {
  const ours = hostDir()
  const theirs = hostDir()
  const mnt = await mountImage(t, root, 'volimg:v1', 'edges', { options: `volume=${ours}:/data/vol` })
  const lowers = [...img.diffIds].reverse().map(d => join(root, 'layers', d.slice(7), 'diff'))
  const kernel = await mountOverlay(t, { lowers, upper: freshDir('k-upper') })
  mkdirSync(join(kernel.mnt, 'data/vol'), { recursive: true })
  const bind = join(kernel.mnt, 'data/vol')
  await shOk(`mount --bind '${theirs}' '${bind}'`)
  registerMount(bind, 'overlay')
  const ops: Op[] = [
    { op: 'rename', path: 'data/vol/h', to: 'etc/h' },
    { op: 'rename', path: 'etc/keep', to: 'data/vol/keep' },
    { op: 'link', path: 'data/vol/h', to: 'etc/h-link' },
    { op: 'link', path: 'etc/keep', to: 'data/vol/keep-link' },
    { op: 'rmdir', path: 'data/vol' },
    { op: 'unlink', path: 'data/vol' },
    { op: 'mkdir', path: 'data/vol' },
    { op: 'rename', path: 'data/vol', to: 'data/elsewhere' },
    { op: 'rename', path: 'etc', to: 'data/vol' },
    { op: 'rename', path: 'data/vol/h', to: 'data/vol/h2' },
    { op: 'readfile', path: 'data/vol/h2' },
    { op: 'mkdir', path: 'data/vol/sub' },
    { op: 'rename', path: 'data/vol/sub', to: 'data/vol/sub2' },
    { op: 'rmdir', path: 'data/vol/sub2' },
    { op: 'stat', path: 'data/vol', fields: ['type', 'mode'] },
  ]
  try {
    const [a, b] = [await syscalls(mnt, ops), await syscalls(kernel.mnt, ops)]
    t.same(ops.map((o, i) => ({ ...o, result: a[i] })), ops.map((o, i) => ({ ...o, result: b[i] })), 'same results, errno for errno')
    t.same([a[0], a[1], a[2], a[4], a[5], a[6], a[7], a[8], a[9]], [
      { errno: 'EXDEV' }, { errno: 'EXDEV' }, { errno: 'EXDEV' }, { errno: 'EBUSY' }, { errno: 'EISDIR' },
      { errno: 'EEXIST' }, { errno: 'EBUSY' }, { errno: 'EBUSY' }, { ok: true },
    ], 'what a bind mount answers')
    t.same(readdirSync(ours).sort(), readdirSync(theirs).sort(), 'same host directory after')
    const ls = await syscalls(mnt, [{ op: 'listdir', path: 'data' }])
    t.same(ls, await syscalls(kernel.mnt, [{ op: 'listdir', path: 'data' }]))
  } finally {
    await run('umount', [bind])
    unregisterMount(bind)
  }
})

t.test('volume options: bad input is one line, nothing mounted', async t => {
  const host = hostDir()
  const other = freshDir('m')
  const cases: [string, RegExp][] = [
    [`volume=${host}`, /needs HOSTDIR:PATH/],
    [`volume=${host}:rel/path`, /must be absolute/],
    [`volume=${host}:/`, /cannot be mounted at '\/'/],
    [`volume=${host}:/a,volume=${host}:/a/b`, /overlap/],
    [`volume=/nonexistent:/a`, /volume '\/nonexistent': no such directory/],
  ]
  for (const [opt, re] of cases) {
    const r = await runCli(['mount', '--image', 'volimg:v1', '--name', 'badvol', '--root', root, '-o', opt, other])
    t.not(r.code, 0, opt)
    t.match(r.stderr, re, opt)
    t.equal(r.stderr.trim().split('\n').length, 1)
  }
  const plain = await runCli(['mount', '-o', `lowerdir=${host},volume=${host}:/x`, other])
  t.match(plain.stderr, /needs 'upperdir' and 'workdir'/)
})
