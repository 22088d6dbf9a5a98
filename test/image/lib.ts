// Shared by the layer tests: real layer tarballs made with GNU tar (and mktar.py for what GNU
// tar will not write), the three sample layers of issue 5, and a naive applier (rm for each
// whiteout, then plain GNU tar extraction) that says what a stack of layers defines.
import { createHash } from 'node:crypto'
import { chmodSync, createReadStream, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimes, toAufs, whiteout, writeTree } from '../helpers/layers.js'
import { type TeardownHost, mountLayerfs, mountOverlay } from '../helpers/mount.js'
import { run, runOk, shOk } from '../helpers/run.js'
import { freshDir, mountsUnder } from '../helpers/scratch.js'
import { TarReader } from '../../src/image/tar-reader.js'

const MKTAR = join(dirname(fileURLToPath(import.meta.url)), 'mktar.py')

/** GNU tar, pax format (ns times, SCHILY.xattr), numeric owners, all xattrs. */
export const GNU_TAR = ['--format=posix', '--numeric-owner', '--xattrs', "--xattrs-include=*"]

export interface MkEntry {
  name: string
  type?: 'file' | 'dir' | 'symlink' | 'link' | 'chardev' | 'blockdev' | 'fifo'
  data?: string
  linkname?: string
  mode?: number
  uid?: number
  gid?: number
  mtime?: number
  devmajor?: number
  devminor?: number
  pax?: Record<string, string>
}

/** A tarball of exactly these entries, in this order (python's tarfile, pax format). */
export async function mktar(out: string, entries: MkEntry[], truncateTo?: number): Promise<string> {
  await runOk('python3', [MKTAR, out, ...(truncateTo === undefined ? [] : [`truncate:${truncateTo}`])], { input: JSON.stringify(entries) })
  return out
}

/** Several tarballs in one go: path -> entries (and where to cut it). */
export async function mktars(specs: Record<string, { entries: MkEntry[]; truncate?: number }>): Promise<void> {
  await runOk('python3', [MKTAR, '--batch'], { input: JSON.stringify(specs) })
}

/** GNU tar of a directory: every entry (sorted), or the given names in the given order. */
export async function gnuTar(src: string, out: string, names?: string[]): Promise<string> {
  const args = names ? ['--no-recursion', '-C', src, '-cf', out, ...names] : ['--sort=name', '-C', src, '-cf', out, '.']
  await runOk('tar', [...GNU_TAR, ...args])
  return out
}

/**
 * What a layer stack defines, applied naively to a plain directory (as docker's vfs driver
 * does): for each layer, its whiteouts remove, its opaque markers empty their directory, then
 * GNU tar extracts everything else over it.
 */
export async function applyNaive(tarPath: string, dir: string): Promise<void> {
  const list = (await runOk('tar', ['-tf', tarPath])).stdout.split('\n').filter(Boolean)
  for (const name of list) {
    const base = basename(name)
    const parent = join(dir, dirname(name))
    if (base === '.wh..wh..opq') {
      for (const n of readdirSync(parent)) rmSync(join(parent, n), { recursive: true, force: true })
    } else if (base.startsWith('.wh.')) {
      rmSync(join(parent, base.slice(4)), { recursive: true, force: true })
    }
  }
  await runOk('tar', [...GNU_TAR, '-xpf', tarPath, '-C', dir, '--exclude=.wh.*'])
}

/** Runs the CLI; resolves with its result (never rejects). */
export const cli = (args: string[]) => run(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), '../../dist/cli.js'), ...args])

export interface SampleLayers {
  /** Layer tarballs, bottom first: base tree; deletes and changes; an opaque directory. */
  tars: [string, string, string]
}

/**
 * The three layers of issue 5 as GNU tar tarballs. Fixed times (some with ns) so that the
 * trees can be compared to the ns.
 */
export async function sampleLayerTars(): Promise<SampleLayers> {
  const src = freshDir('layer-src')
  const [s1, s2, s3] = ['base', 'change', 'opaque'].map(n => join(src, n)) as [string, string, string]
  writeTree(s1, {
    etc: {
      type: 'dir', mode: 0o755, mtime: 1_600_000_100, xattrs: { 'user.dir': 'etc', 'trusted.overlay.foo': 'users-own' },
      entries: {
        passwd: { type: 'file', content: 'root:x:0:0\n', mode: 0o644, xattrs: { 'user.comment': 'accounts' } },
        shadow: { type: 'file', content: 'root:*:1\n', mode: 0o640, gid: 42, mtime: 1_600_000_001 },
      },
    },
    bin: {
      type: 'dir', mtime: 1_600_000_200,
      entries: {
        sh: { type: 'file', content: '#!shell\n', mode: 0o755, mtime: 1_600_000_002 },
        bash: { type: 'hardlink', target: 'bin/sh' },
        su: { type: 'file', content: 'su\n', mode: 0o4755, mtime: 1_600_000_003 },
        sgid: { type: 'file', content: 'sg\n', mode: 0o2711, uid: 7, gid: 8, mtime: 1_600_000_004 },
      },
    },
    lib: { type: 'symlink', target: 'usr/lib' },
    usr: { type: 'dir', mtime: 1_600_000_300, entries: { lib: { type: 'dir', mtime: 1_600_000_301, entries: { 'libc.so': { type: 'file', content: 'ELF', mtime: 1_600_000_005 } } } } },
    tmp: { type: 'dir', mode: 0o1777, mtime: 1_600_000_400, entries: {} },
    dev: { type: 'dir', mtime: 1_600_000_500, entries: { null: { type: 'chardev', dev: [1, 3], mode: 0o666 }, loop0: { type: 'blockdev', dev: [7, 0], mode: 0o660 }, fifo: { type: 'fifo', mode: 0o600 } } },
    home: { type: 'dir', mtime: 1_600_000_600, entries: { u: { type: 'dir', uid: 1000, gid: 1000, mode: 0o700, mtime: 1_600_000_601, entries: { profile: { type: 'file', content: 'PS1=$\n', uid: 1000, gid: 1000, mtime: 1_600_000_006 } } } } },
    data: {
      type: 'dir', mtime: 1_600_000_700,
      entries: {
        keep: { type: 'file', content: 'keep\n', mtime: 1_600_000_007 },
        old: { type: 'file', content: 'old\n', mtime: 1_600_000_008 },
        dir: { type: 'dir', mtime: 1_600_000_701, entries: { inner: { type: 'file', content: 'inner\n', mtime: 1_600_000_009 } } },
      },
    },
    opq: {
      type: 'dir', mtime: 1_600_000_800,
      entries: { a: 'a\n', b: 'b\n', sub: { type: 'dir', entries: { c: 'c\n' } } },
    },
  })
  setTimes(join(s1, 'etc/passwd'), 1_600_000_000, 123_456_789)
  setTimes(join(s1, 'opq/a'), 1_600_000_010, 5)
  setTimes(join(s1, 'opq/b'), 1_600_000_011)
  setTimes(join(s1, 'opq/sub/c'), 1_600_000_012)
  setTimes(join(s1, 'opq/sub'), 1_600_000_013)
  setTimes(join(s1, 'etc'), 1_600_000_100)
  setTimes(s1, 1_600_000_900)

  // Layer 2: deletes a file and a directory, changes a file, adds files (parents included,
  // as docker writes them).
  writeTree(s2, {
    // A directory entry carries all its xattrs (the overlay shows the top-most one's only).
    etc: { type: 'dir', mtime: 1_600_001_100, xattrs: { 'user.dir': 'etc2', 'trusted.overlay.foo': 'users-own' }, entries: { passwd: { type: 'file', content: 'root:x:0:0\nu:x:1000:1000\n', mtime: 1_600_001_001 } } },
    data: {
      type: 'dir', mtime: 1_600_001_700,
      entries: { '.wh.old': { type: 'file', content: '' }, '.wh.dir': { type: 'file', content: '' }, new: { type: 'file', content: 'new\n', mode: 0o600, mtime: 1_600_001_007 } },
    },
    home: { type: 'dir', mtime: 1_600_001_600, entries: { u: { type: 'dir', uid: 1000, gid: 1000, mode: 0o700, mtime: 1_600_001_601, entries: { '.bash_history': { type: 'file', content: 'ls\n', uid: 1000, gid: 1000, mode: 0o600, mtime: 1_600_001_006 } } } } },
    '.wh.lib': { type: 'file', content: '' },
  })
  setTimes(join(s2, 'etc/passwd'), 1_600_001_001, 999_999_999)
  setTimes(s2, 1_600_001_900)

  // Layer 3: opq/ made opaque, the marker written after the directory's new entries.
  writeTree(s3, {
    opq: { type: 'dir', mode: 0o750, mtime: 1_600_002_800, entries: { x: { type: 'file', content: 'x\n', mtime: 1_600_002_001 }, '.wh..wh..opq': '', sub: { type: 'dir', mtime: 1_600_002_802, entries: { d: 'd\n' } } } },
    lib: { type: 'dir', mtime: 1_600_002_300, entries: { 'new.so': { type: 'file', content: 'ELF2', mtime: 1_600_002_005 } } },
  })
  setTimes(join(s3, 'opq/sub/d'), 1_600_002_003)
  setTimes(join(s3, 'opq/sub'), 1_600_002_802)
  setTimes(join(s3, 'opq'), 1_600_002_800)
  setTimes(s3, 1_600_002_900)

  const out = freshDir('layer-tars')
  const t1 = await gnuTar(s1, join(out, 'base.tar'))
  const t2 = await gnuTar(s2, join(out, 'change.tar'))
  const t3 = await gnuTar(s3, join(out, 'opaque.tar'), ['.', 'opq', 'opq/x', 'opq/sub', 'opq/sub/d', 'opq/.wh..wh..opq', 'lib', 'lib/new.so'])
  return { tars: [t1, t2, t3] }
}

/**
 * The same changes written in every format an upper comes in: by the kernel (trusted.overlay.*),
 * by layerfs (the same), by layerfs with -o userxattr and by the kernel with userxattr in a
 * user namespace (user.overlay.*), by layerfs on an upper on overlayfs (`.wh.NAME` files), and
 * the kernel's upper rewritten in the AUFS format containers/storage extracts (`.wh.NAME`,
 * `.wh..wh..opq`). The changes are those every format can hold: no renamed directory (the
 * userxattr format has none).
 */
export const FORMAT_CHANGES = `
set -e
rm etc/shadow                                    # whiteout
rm -r home/u && mkdir home/u && echo hi > home/u/new   # opaque dir
echo more >> etc/passwd                          # copy-up (origin, impure)
ln etc/passwd etc/passwd2                        # hard link
mv data/keep data/kept                           # a file renamed: whiteout and copy-up
setfattr -n user.note -v yes etc/passwd
setfattr -n user.overlay.mine -v users etc/passwd   # the user's own (escaped in the userxattr format)
mkdir -p new/deep && echo n > new/deep/f
chmod 700 bin/sh
`

export type UpperFormat = 'kernel' | 'layerfs' | 'layerfs-userxattr' | 'kernel-userxattr' | 'layerfs-on-overlayfs' | 'aufs'

/** Lowers (top-most first) and one upper per format, each made by FORMAT_CHANGES. */
export async function formatUppers(t: TeardownHost): Promise<{ lowers: string[]; uppers: Record<UpperFormat, string> }> {
  const root = freshDir('formats')
  const [l1, l2] = [join(root, 'l1'), join(root, 'l2')]
  writeTree(l2, {
    etc: { passwd: { type: 'file', content: 'root:x:0:0\n', xattrs: { 'user.comment': 'accounts' } }, shadow: 'root:*:1\n' },
    home: { u: { profile: 'PS1=$\n', sub: { x: 'x\n' } } },
    data: { keep: 'keep\n', old: 'old\n' },
    bin: { sh: { type: 'file', content: '#!shell\n', mode: 0o755 } },
  })
  writeTree(l1, { data: { extra: 'extra\n' } })
  whiteout(join(l1, 'data/old'))
  const upper = (name: string, base = root): string => {
    const u = join(base, name)
    mkdirSync(u)
    chmodSync(u, 0o755)
    return u
  }
  const lowers = [l1, l2]
  const uppers = {} as Record<UpperFormat, string>

  uppers.kernel = upper('kernel')
  let m = await mountOverlay(t, { lowers, upper: uppers.kernel })
  await shOk(FORMAT_CHANGES, { cwd: m.mnt })
  await m.unmount()

  for (const [name, options] of [['layerfs', []], ['layerfs-userxattr', ['userxattr']]] as const) {
    uppers[name] = upper(name)
    m = await mountLayerfs(t, { lowers, upper: uppers[name], options })
    await shOk(FORMAT_CHANGES, { cwd: m.mnt })
    await m.unmount()
  }

  // The kernel in its userxattr mode: root in a user namespace (as rootless podman).
  uppers['kernel-userxattr'] = upper('kernel-userxattr')
  for (const d of ['kw', 'km']) mkdirSync(join(root, d))
  const script = join(root, 'changes.sh')
  writeFileSync(script, FORMAT_CHANGES)
  const opts = `userxattr,lowerdir=${l1}:${l2},upperdir=${uppers['kernel-userxattr']},workdir=${root}/kw`
  const r = await run('unshare', ['-rm', 'bash', '-c', `mount -t overlay overlay -o ${opts} ${root}/km && (cd ${root}/km && bash ${script}); s=$?; umount ${root}/km; exit $s`], { timeout: 60_000 })
  if (r.code !== 0 || mountsUnder(join(root, 'km')).length > 0) throw new Error(`kernel userxattr mount: ${r.stderr}`)

  // An upper on overlayfs: layerfs cannot make 0/0 devices there and writes `.wh.NAME` files.
  const ovl = await mountOverlay(t, { lowers: [freshDir('base')], upper: freshDir('ovl-upper') })
  uppers['layerfs-on-overlayfs'] = upper('upper', ovl.mnt)
  mkdirSync(join(ovl.mnt, 'work'))
  m = await mountLayerfs(t, { lowers, upper: uppers['layerfs-on-overlayfs'], work: join(ovl.mnt, 'work') })
  await shOk(FORMAT_CHANGES, { cwd: m.mnt })
  await m.unmount()

  uppers.aufs = join(root, 'aufs')
  await runOk('cp', ['-a', uppers.kernel, uppers.aufs])
  toAufs(uppers.aufs)
  return { lowers, uppers }
}

/**
 * A tarball's entries, one line each (type, name, mode, owner, size, link target, device,
 * xattrs), mtimes left out: the uppers of formatUppers were written at different times.
 */
export async function tarEntries(tar: string): Promise<string[]> {
  const out: string[] = []
  const r = new TarReader(createReadStream(tar))
  for (let e = await r.next(); e; e = await r.next()) {
    const x = [...e.xattrs].map(([k, v]) => `${k}=${v.toString('hex')}`).sort().join(',')
    const hash = createHash('sha256')
    for await (const b of r.body()) hash.update(b)
    out.push(`${e.type} ${e.path} ${e.mode.toString(8)} ${e.uid}:${e.gid} ${e.size} ${hash.digest('hex').slice(0, 12)} ${e.linkpath} ${e.devmajor}:${e.devminor} [${x}]`)
  }
  return out
}
