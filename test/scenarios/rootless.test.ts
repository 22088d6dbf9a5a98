// Rootless: layerfs run by an unprivileged user, and by root in a user namespace (as rootless
// podman runs its mount program). trusted.* xattrs are out of reach there, so the upper is
// written in the kernel's userxattr format (user.overlay.*; no redirects: a merged directory
// is not renamed, EXDEV, and mv copies it), with 0/0 whiteouts, which the kernel lets a user
// make. The oracle: kernel overlayfs mounted with userxattr in a user namespace (`unshare -rm`)
// gets the same calls; each side's upper is then mounted by the other.
import fs from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { run } from '../helpers/run.js'
import { freshDir, launcherPath, mountsUnder, scratchRoot } from '../helpers/scratch.js'

/** Calls made on both; their output (errors included) is compared too. */
const OPS = `
rm d/a
mv d d2 2>&1 | sed 's/^mv: //'
echo new > d2/c
mkdir z
ln d2/b hl
chmod 600 d2/b
rm -r e
touch f
mkdir -p deep/x
echo more >> f
`

/** The merged view: every name with its type, mode, size, link count (files), and content hash. */
const DUMP = `find . -mindepth 1 \\( -type d -printf '%p %y %m\\n' \\) -o \\( -printf '%p %y %m %s %n ' -exec sh -c 'md5sum < "$1" | cut -c1-8' _ {} \\; \\) | sort`

type Impl = 'layerfs' | 'kernel'

/** tap's spawn hooks give node children NODE_OPTIONS that write where the user may not. */
const NO_TAP = 'unset NODE_OPTIONS'

/**
 * A shell line that mounts ROOT/U (with `impl`), runs `body` in the mount, and unmounts. The
 * kernel's overlayfs is mounted with userxattr, in a user namespace of its own when `userns`
 * (an unprivileged user may mount it nowhere else).
 */
function inMount(root: string, impl: Impl, body: string, userns: boolean): string {
  const opts = `lowerdir=${root}/L,upperdir=${root}/U,workdir=${root}/WU`
  const m = `${root}/MU`
  if (impl === 'layerfs') return `${launcherPath} -o ${opts} ${m} && (cd ${m} && ${body}); ${launcherPath} umount ${m}`
  const line = `mount -t overlay overlay -o userxattr,${opts} ${m} && (cd ${m} && ${body}); umount ${m}`
  return userns ? `unshare -rm bash -c '${line}'` : line
}

/**
 * One side: `first` makes the upper (OPS, then a dump), then the other mounts that upper and
 * dumps it. Scripts go to files, so that no quoting stands between them and the shells.
 */
function side(root: string, first: Impl, userns: boolean): string {
  fs.writeFileSync(`${root}/ops.sh`, `(${OPS}) > ${root}/ops.out 2>&1\n${DUMP} > ${root}/view\n`)
  fs.writeFileSync(`${root}/dump.sh`, `${DUMP} > "$1"\n`)
  const second: Impl = first === 'layerfs' ? 'kernel' : 'layerfs'
  return [inMount(root, first, `bash ${root}/ops.sh`, userns), inMount(root, second, `bash ${root}/dump.sh ${root}/view-by-${second}`, userns)].join('\n')
}

function layers(owner: number): string {
  const root = freshDir('rootless')
  // The user must reach it: the scratch dirs are made 0700.
  fs.chmodSync(scratchRoot(), 0o755)
  fs.chmodSync(root, 0o755)
  fs.mkdirSync(`${root}/L/d`, { recursive: true })
  fs.mkdirSync(`${root}/L/e/sub`, { recursive: true })
  fs.writeFileSync(`${root}/L/d/a`, 'a\n')
  fs.writeFileSync(`${root}/L/d/b`, 'b\n')
  fs.writeFileSync(`${root}/L/e/sub/s`, 's\n')
  fs.writeFileSync(`${root}/L/f`, 'f\n')
  for (const d of ['U', 'WU', 'MU']) fs.mkdirSync(join(root, d))
  if (owner !== 0) for (const p of ['', '/L', '/L/d', '/L/d/a', '/L/d/b', '/L/e', '/L/e/sub', '/L/e/sub/s', '/L/f', '/U', '/WU', '/MU']) fs.chownSync(root + p, owner, owner)
  return root
}

/**
 * The uid of a plain user for the test (made if missing: fusermount3 wants a user with a
 * name, as every real user has).
 */
async function unprivilegedUser(): Promise<number> {
  const name = 'layerfs-user'
  let r = await run('id', ['-u', name])
  if (r.code !== 0) {
    const add = await run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name])
    if (add.code !== 0) throw new Error(`useradd ${name}: ${add.stderr}`)
    r = await run('id', ['-u', name])
  }
  return Number(r.stdout.trim())
}

const read = (p: string): string => fs.readFileSync(p, 'utf8')

async function xattrsOf(dir: string): Promise<string> {
  return (await run('getfattr', ['-R', '-d', '-m', '-', '--absolute-names', dir])).stdout
}

/** Compares the two runs: same output of the calls, same views everywhere, the userxattr format on disk. */
async function compare(t: Test, lf: string, kernel: string): Promise<void> {
  t.equal(read(`${lf}/ops.out`), read(`${kernel}/ops.out`), 'the calls answer the same (mv of a merged dir falls back to copying)')
  t.match(read(`${kernel}/ops.out`), /cannot move|Invalid cross-device link|^$/m)
  t.equal(read(`${lf}/view`), read(`${kernel}/view`), 'the same merged view')
  t.equal(read(`${lf}/view-by-kernel`), read(`${lf}/view`), "the kernel (userxattr) reads layerfs's upper the same")
  t.equal(read(`${kernel}/view-by-layerfs`), read(`${kernel}/view`), "layerfs reads the kernel's upper the same")
  const x = await xattrsOf(`${lf}/U`)
  t.match(x, /user\.overlay\.opaque="y"/, 'opaque directories: user.overlay.opaque')
  t.notMatch(x, /trusted\./, 'no trusted.* xattr')
  t.ok(fs.lstatSync(`${lf}/U/e`).isCharacterDevice() && fs.lstatSync(`${lf}/U/e`).rdev === 0, 'whiteouts: 0/0 devices')
}

t.test('root in a user namespace (unshare -rm): the userxattr format, as the kernel reads and writes it', async t => {
  const lf = layers(0)
  const k = layers(0)
  const r = await run('unshare', ['-rm', 'bash', '-c', `${NO_TAP}\nset -e\n${side(lf, 'layerfs', false)}\n${side(k, 'kernel', false)}`], { timeout: 120_000 })
  t.equal(r.code, 0, r.stderr)
  await compare(t, lf, k)
  t.same([...mountsUnder(lf), ...mountsUnder(k)], [], 'nothing stays mounted')
})

t.test('an unprivileged user (setuid fusermount3, /dev/fuse 0666 as distributions ship it)', async t => {
  // This machine keeps /dev/fuse 0600; a distribution makes it 0666.
  fs.chmodSync('/dev/fuse', 0o666)
  const uid = await unprivilegedUser()
  const lf = layers(uid)
  const k = layers(uid)
  // layerfs as the user itself; the kernel's overlayfs in a user namespace of the user's.
  const r = await run('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'bash', '-c', `${NO_TAP}\nset -e\n${side(lf, 'layerfs', true)}\n${side(k, 'kernel', true)}`], { timeout: 120_000 })
  t.equal(r.code, 0, r.stderr)
  await compare(t, lf, k)
  t.equal(fs.statSync(`${lf}/U/d2/c`).uid, uid, 'new files belong to the user')
  t.same([...mountsUnder(lf), ...mountsUnder(k)], [], 'nothing stays mounted')
})
