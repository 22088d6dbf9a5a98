// Ten containers from one image, mounted at once, each writing the same paths: each sees only
// its own writes, the image layers never change, `ps -s` sizes are what du counts for each
// upper and the total counts the shared layers once; `rm` removes a writable layer only, and
// never while it is mounted.
import t from 'tap'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../helpers/mount.js'
import { shOk } from '../helpers/run.js'
import { freshDir } from '../helpers/scratch.js'
import { hashTree } from '../helpers/tree.js'
import { buildTestImage, cliOk, mountImage } from './test-images.js'

const N = 10
const img = await buildTestImage('multi')
const root = freshDir('root-multi')
await cliOk(['image', 'import', img.oci], root)
const names = Array.from({ length: N }, (_, i) => `c${i}`)

interface Ps {
  containers: { name: string; image: string; mountpoint?: string; size: number; virtualSize: number }[]
  totalOnDisk: number
  sharedLayers: number
}

t.test('ten containers on one image', async t => {
  const layersBefore = await hashTree(join(root, 'layers'))
  const mnts = await Promise.all(names.map(n => mountImage(t, root, 'multi:v1', n)))

  // The same paths in every container; the i-th writes i+1 KiB so that sizes differ.
  await Promise.all(mnts.map((m, i) => shOk(`set -e
    echo '${names[i]}' > etc/config
    rm etc/keep bin/tool-hardlink
    rm -r opq
    mkdir -p data/own && head -c ${(i + 1) * 1024} /dev/zero > data/own/blob
    echo '${names[i]}' >> usr/share/doc/notes`, { cwd: m })))

  for (const [i, m] of mnts.entries()) {
    t.equal(readFileSync(join(m, 'etc/config'), 'utf8'), `${names[i]}\n`, `${names[i]} sees its own config`)
    t.equal(readFileSync(join(m, 'usr/share/doc/notes'), 'utf8'), `notes\n${names[i]}\n`)
    t.equal(readFileSync(join(m, 'data/own/blob')).length, (i + 1) * 1024)
    t.notOk(existsSync(join(m, 'etc/keep')))
    t.notOk(existsSync(join(m, 'opq')))
    t.equal(readFileSync(join(m, 'bin/tool'), 'utf8'), '#!/bin/sh\necho hi\n', 'image data unchanged')
  }

  const layersAfter = await hashTree(join(root, 'layers'))
  t.equal(layersAfter.hash, layersBefore.hash, "the image layers' bytes, metadata and inodes never changed")

  // ps -s: size is du of each upper; virtual adds the layers; the total counts them once.
  const report = JSON.parse(await cliOk(['ps', '-s', '--json'], root)) as Ps
  t.same(report.containers.map(c => c.name), names, 'every mounted container listed')
  const layerBytes = Number((await shOk(`du -scB1 ${img.diffIds.map(d => `'${join(root, 'layers', d.slice(7), 'diff')}'`).join(' ')} | tail -1`)).stdout.split(/\s/)[0])
  let sum = 0
  for (const c of report.containers) {
    const du = Number((await shOk(`du -sB1 '${join(root, 'containers', c.name, 'upper')}'`)).stdout.split(/\s/)[0])
    t.equal(c.size, du, `${c.name}: size ${c.size} = du of its upper`)
    t.equal(c.virtualSize, du + layerBytes, `${c.name}: virtual size = size + image layers`)
    t.equal(c.mountpoint, mnts[names.indexOf(c.name)])
    sum += c.size
  }
  t.equal(report.sharedLayers, layerBytes)
  t.equal(report.totalOnDisk, sum + layerBytes, 'total = sum of sizes + one virtual size minus its size')
  const table = await cliOk(['ps', '-s'], root)
  t.match(table, /^CONTAINER\s+IMAGE\s+MOUNTED AT\s+SIZE\n/)
  t.match(table, /c9\s+multi:v1\s+\S+\s+\d+(\.\d)?kB \(virtual \d+(\.\d)?kB\)/)
  t.comment(`ps -s for ${N} containers:\n${table}`)
  t.comment(`bytes: ${report.containers.map(c => `${c.name}=${c.size}`).join(' ')}; image layers ${layerBytes}; total ${report.totalOnDisk}`)

  // rm refuses a mounted container, and leaves it whole.
  const busy = await runCli(['rm', 'c3', '--root', root])
  t.not(busy.code, 0)
  t.match(busy.stderr, /^layerfs: container 'c3' is mounted at '.*': unmount it first\n$/)
  t.equal(readFileSync(join(mnts[3]!, 'etc/config'), 'utf8'), 'c3\n')

  // A second mount of one container is refused while the first serves it.
  const twice = await runCli(['mount', '--image', 'multi:v1', '--name', 'c4', '--root', root, freshDir('mnt-twice')])
  t.not(twice.code, 0)
  t.match(twice.stderr, /container 'c4' is already mounted at/)

  for (const r of await Promise.all(mnts.map(m => runCli(['umount', m])))) t.equal(r.code, 0, r.stderr)
  t.equal(JSON.parse(await cliOk(['ps', '--json'], root)).containers.length, 0, 'none mounted')
  t.equal(JSON.parse(await cliOk(['ps', '-a', '--json'], root)).containers.length, N, 'ps -a lists them all')

  // Remounting a container keeps its writes; rm then drops them and only them.
  const again = await mountImage(t, root, 'multi:v1', 'c7')
  t.equal(readFileSync(join(again, 'etc/config'), 'utf8'), 'c7\n')
  await runCli(['umount', again])
  t.equal((await runCli(['rm', ...names, '--root', root])).code, 0)
  t.same(readdirSync(join(root, 'containers')), [], 'every writable layer gone')
  t.equal((await hashTree(join(root, 'layers'))).hash, layersBefore.hash, 'no image layer touched by rm')
  const gone = await runCli(['rm', 'c0', '--root', root])
  t.match(gone.stderr, /^layerfs: no container 'c0'/)
  const fresh = await mountImage(t, root, 'multi:v1', 'c0')
  t.equal(readFileSync(join(fresh, 'etc/config'), 'utf8'), 'config v2\n', 'a new c0 starts from the image')
})

t.test('bad input: one line, non-zero, nothing created', async t => {
  const before = readdirSync(join(root, 'containers')).sort()
  const cases: [string[], RegExp][] = [
    [['mount', '--image', 'nosuch:1', '--name', 'x1', '--root', root, freshDir('m')], /no image 'nosuch:1'/],
    [['mount', '--image', 'multi:v1', '--name', '../evil', '--root', root, freshDir('m')], /invalid container name/],
    [['mount', '--image', 'multi:v1', '--name', 'x2', '--root', root, '/nonexistent/mnt'], /no such directory/],
    [['mount', '--image', 'multi:v1', '-o', 'lowerdir=/tmp', '--root', root, freshDir('m')], /cannot be given with it/],
    [['image', 'import', '/nonexistent', '--root', root], /no such file/],
  ]
  for (const [args, re] of cases) {
    const r = await runCli(args)
    t.not(r.code, 0, args.join(' '))
    t.match(r.stderr, re)
    t.equal(r.stderr.trim().split('\n').length, 1)
  }
  t.same(readdirSync(join(root, 'containers')).sort(), before)
})
