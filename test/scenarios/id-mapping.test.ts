// Owners between the layers and the mount, as containers/storage asks a mount program for
// them: uidmapping=/gidmapping= (LAYER:MOUNT:COUNT triples), squash_to_uid/gid/root, and
// static_nlink. The oracle is fuse-overlayfs itself (Debian's), given the same options and the
// same calls: what each shows, and what each stores in its upper layer.
import fs from 'node:fs'
import t, { type Test } from 'tap'
import { run, sh } from '../helpers/run.js'
import { cliPath, freshDir, isMounted, processesFor, registerMount, unregisterMount } from '../helpers/scratch.js'

/** Lower files with owners in the mapped ranges and out of them. */
function lower(dir: string): void {
  fs.mkdirSync(`${dir}/sub`)
  for (const [name, id] of [['root', 0], ['one', 1], ['mid', 5000], ['far', 70000], ['sub/deep', 2]] as const) {
    fs.writeFileSync(`${dir}/${name}`, `${name}\n`)
    fs.chownSync(`${dir}/${name}`, id, id)
  }
}

/** What a mount shows and what its upper stores, after the same calls. */
const CALLS = `
show() { stat -c '%n %u:%g %h' * sub sub/* | sort; }
show
chown 100005:100006 one
chown 1000 mid
echo by-root > by-root
setpriv --reuid=1000 --regid=1000 --clear-groups sh -c 'echo by-1000 > by-1000; mkdir dir-1000'
setpriv --reuid=100001 --regid=100001 --clear-groups sh -c 'echo by-100001 > sub/by-100001' 2>&1 | sed 's/^sh: [0-9]*: //'
echo --
show
`

async function mountWith(program: 'layerfs' | 'fuse-overlayfs', options: string): Promise<{ mnt: string; upper: string; down: () => Promise<void> }> {
  const root = freshDir(program)
  for (const d of ['l', 'u', 'w', 'm']) fs.mkdirSync(`${root}/${d}`)
  lower(`${root}/l`)
  fs.chmodSync(`${root}/l`, 0o777)
  const mnt = `${root}/m`
  registerMount(mnt, 'layerfs')
  const opts = `lowerdir=${root}/l,upperdir=${root}/u,workdir=${root}/w,${options}`
  const r = program === 'layerfs' ? await run(process.execPath, [cliPath, '-o', opts, mnt]) : await run('fuse-overlayfs', ['-o', opts, mnt])
  if (r.code !== 0) throw new Error(`${program}: ${r.stderr}`)
  return {
    mnt,
    upper: `${root}/u`,
    down: async () => {
      if (isMounted(mnt)) await run('fusermount3', ['-u', mnt])
      for (let i = 0; i < 100 && processesFor(mnt).length > 0; i++) await new Promise(r => setTimeout(r, 50))
      unregisterMount(mnt)
    },
  }
}

async function compare(t: Test, options: string, check: (view: string, upper: string) => void): Promise<void> {
  const lf = await mountWith('layerfs', options)
  t.teardown(lf.down)
  const fo = await mountWith('fuse-overlayfs', options)
  t.teardown(fo.down)
  const [a, b] = await Promise.all([sh(CALLS, { cwd: lf.mnt }), sh(CALLS, { cwd: fo.mnt })])
  t.equal(a.stdout, b.stdout, `${options}: the mount shows what fuse-overlayfs shows`)
  t.equal(a.stderr, b.stderr, `${options}: the same errors`)
  const stored = async (u: string): Promise<string> => (await sh(`stat -c '%n %u:%g' $(find . -mindepth 1 ! -name '.wh.*' ! -type c) | sort`, { cwd: u })).stdout
  const [su, sfo] = await Promise.all([stored(lf.upper), stored(fo.upper)])
  t.equal(su, sfo, `${options}: the upper stores what fuse-overlayfs stores`)
  check(a.stdout, su)
}

t.test('uidmapping/gidmapping: layer IDs shown as mount IDs, and stored back', async t => {
  await compare(t, 'uidmapping=0:1000:1:1:100000:65536,gidmapping=0:1000:1:1:100000:65536', (view, upper) => {
    t.match(view, /^root 1000:1000 /m, 'layer 0 shows as 1000')
    t.match(view, /^mid 104999:104999 /m, 'layer 5000 shows as 100000 + 4999')
    t.match(view, /^far 65534:65534 /m, 'an ID no triple covers shows as the overflow ID')
    t.match(upper, /^\.\/one 6:7$/m, 'chown 100005:100006 is stored as 6:7')
    t.match(upper, /^\.\/by-1000 0:0$/m, "a new file of the mount's 1000 is stored as 0")
    t.match(upper, /^\.\/by-root 65534:65534$/m, 'root (unmapped in the mount) creates as the overflow ID')
  })
})

t.test('squash_to_uid/squash_to_gid, squash_to_root: every owner shown as one', async t => {
  await compare(t, 'squash_to_uid=7,squash_to_gid=8', view => {
    t.notMatch(view, / (?!7:8 )\d+:\d+ /, 'all 7:8')
  })
  await compare(t, 'squash_to_root', view => {
    t.notMatch(view, / (?!0:0 )\d+:\d+ /, 'all 0:0')
  })
})

t.test('static_nlink: directories show one link', async t => {
  await compare(t, 'static_nlink', view => {
    t.match(view, /^sub \d+:\d+ 1$/m)
  })
})
