// Regression (a flaky failure of test/hostile/changing-layers in CI): a lower file the kernel
// had looked up was removed behind the mount, ext4 gave its inode number to a file then made
// through the mount in the upper (same filesystem), and the new file got the old file's node:
// `echo x > new && cat new` failed with ENOENT, the node's name being the removed file's. A
// lookup that finds the inode's node under another name now checks that name still leads to
// that inode (a hard link's does), else the node is retired and the new file gets its own.
import t from 'tap'
import fs from 'node:fs'
import { join } from 'node:path'
import { mountLayerfs } from '../helpers/mount.js'
import { sh } from '../helpers/run.js'
import { scratchFs } from '../helpers/scratch-fs.js'

t.test('a removed lower file\'s inode number reused by a new upper file: its own node', async t => {
  const root = await scratchFs(t, 'ext4')
  const [L, U, W] = ['lower', 'upper', 'work'].map(d => join(root, d))
  for (const d of [L, U, W]) fs.mkdirSync(d)
  const N = 20
  for (let i = 0; i < N; i++) fs.writeFileSync(join(L, `old${i}`), `old ${i}\n`)
  const m = await mountLayerfs(t, { lowers: [L], upper: U, work: W })
  const seen = await sh(`for i in $(seq 0 ${N - 1}); do stat -c %i old$i; done`, { cwd: m.mnt })
  t.equal(seen.code, 0, seen.stderr)
  const oldInos = new Set(seen.stdout.trim().split('\n'))
  // Behind the mount (not supported, but it must not make new files unreachable).
  for (let i = 0; i < N; i++) fs.unlinkSync(join(L, `old${i}`))
  const made = await sh(`for i in $(seq 0 ${N - 1}); do echo "new $i" > new$i && cat new$i; done`, { cwd: m.mnt })
  t.equal(made.code, 0, `every new file can be read back (${made.stderr.trim().split('\n').slice(-3).join(' ')})`)
  t.equal(made.stdout, Array.from({ length: N }, (_, i) => `new ${i}\n`).join(''))
  const inos = await sh(`for i in $(seq 0 ${N - 1}); do stat -c %i new$i; done`, { cwd: m.mnt })
  const reused = inos.stdout.trim().split('\n').filter(ino => oldInos.has(ino)).length
  t.ok(reused > 0, `ext4 gave new files inode numbers of the removed ones (${reused} of ${N}): else this shows nothing`)
})
