// Inode numbers when the layers live on different filesystems (two tmpfs lowers whose own
// numbers overlap, an upper on the scratch fs): every object of the mount has its own st_ino,
// d_ino equals st_ino, and both stay the same through copy-up, rename and a remount.
// No kernel twin here: with xino=off (the oracle's options) the kernel gives non-directories
// their layer's st_dev and directories raw numbers that can collide, which a FUSE mount with
// one st_dev cannot copy; the issue's contract is unique numbers in the mount.
import { lstatSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { writeTree, type TreeSpec } from '../helpers/layers.js'
import { mountLayerfs, type Mounted } from '../helpers/mount.js'
import { run, shOk } from '../helpers/run.js'
import { freshDir } from '../helpers/scratch.js'

/** Every object under the mount: path -> st_ino (a string: 64 bits); and the entries whose d_ino is not their st_ino. */
const WALK = String.raw`
import os, json
inos, off = {}, []
for top, dirs, files in os.walk('.'):
    for e in os.scandir(top):
        st = os.lstat(e.path)
        inos[e.path[2:]] = str(st.st_ino)
        if e.inode() != st.st_ino: off.append([e.path[2:], str(e.inode()), str(st.st_ino)])
inos['.'] = str(os.lstat('.').st_ino)
print(json.dumps({'inos': inos, 'off': off}))
`

interface Walk {
  inos: Record<string, string>
  off: Array<[string, string, string]>
}

async function walk(m: Mounted): Promise<Walk> {
  const r = await shOk('python3 -c "$WALK"', { cwd: m.mnt, env: { WALK } })
  return JSON.parse(r.stdout) as Walk
}

/** st_ino values that more than one path shows. */
function shared(w: Walk): Record<string, string[]> {
  const by = new Map<string, string[]>()
  for (const [p, ino] of Object.entries(w.inos)) by.set(ino, [...(by.get(ino) ?? []), p])
  return Object.fromEntries([...by].filter(([, ps]) => ps.length > 1))
}

/** The same tree in each lower, made in the same order: a fresh tmpfs gives the same numbers. */
const tree = (tag: string): TreeSpec => {
  const files: TreeSpec = {}
  for (let i = 0; i < 20; i++) files[`f${i}`] = `${tag} ${i}\n`
  return { d: files, [`only-${tag}`]: { x: 'x\n', sub: { y: 'y\n' } }, [`file-${tag}`]: `${tag}\n` }
}

t.test('layers on three filesystems: unique st_ino, d_ino == st_ino, stable through copy-up and remount', async t => {
  const root = freshDir('inode-fs')
  const lowers = [join(root, 'l0'), join(root, 'l1')]
  for (const l of lowers) {
    mkdirSync(l)
    await shOk(`mount -t tmpfs -o size=8m tmpfs ${l}`)
    t.teardown(async () => {
      if ((await run('umount', [l])).code !== 0) await run('umount', ['-l', l])
    })
  }
  writeTree(lowers[0]!, tree('l0'))
  writeTree(lowers[1]!, tree('l1'))
  const raw = (l: string, p: string): number => Number(lstatSync(join(l, p)).ino)
  const clash = ['d', 'd/f0', 'd/f7', 'd/f19'].filter(p => raw(lowers[0]!, p) === raw(lowers[1]!, p))
  t.ok(clash.length >= 3, `the lowers' own inode numbers overlap (${clash.join(', ')}): the test can fail`)

  const upper = join(root, 'upper')
  const work = join(root, 'work')
  mkdirSync(upper)
  mkdirSync(work)
  let m = await mountLayerfs(t, { lowers, upper, work })

  const before = await walk(m)
  t.ok(Object.keys(before.inos).length >= 32, `${Object.keys(before.inos).length} objects`)
  t.same(shared(before), {}, 'no two objects share an st_ino')
  t.same(before.off, [], 'd_ino == st_ino everywhere')

  await shOk(`set -e
    chmod 600 d/f3 file-l1                     # copy-up from each lower
    echo more >> only-l1/sub/y
    mv only-l0 moved-l0                        # a lower dir: redirect
    mv d/f5 d/f5-renamed
    echo new > new-file && mkdir new-dir && echo n > new-dir/n
  `, { cwd: m.mnt })
  const after = await walk(m)
  t.same(shared(after), {}, 'after the changes: no two objects share an st_ino')
  t.same(after.off, [], 'after the changes: d_ino == st_ino')
  const kept = (p: string, q = p): void => {
    t.equal(after.inos[q], before.inos[p], `${p}${q === p ? '' : ` -> ${q}`}: st_ino kept`)
  }
  kept('d/f3')
  kept('file-l1')
  kept('only-l1/sub/y')
  kept('only-l0', 'moved-l0')
  kept('only-l0/sub/y', 'moved-l0/sub/y')
  kept('d/f5', 'd/f5-renamed')
  kept('d')

  await m.unmount()
  m = await mountLayerfs(t, { lowers, upper, work })
  const again = await walk(m)
  t.same(again.inos, after.inos, 'remounted: the same st_ino for every object')
  t.same(again.off, [], 'remounted: d_ino == st_ino')
  await m.unmount()
})
