// Real container engines (podman, buildah) on real storage. A "leg" is one private
// containers/storage (graph root, run root, engine config, all in its own scratch dir) run as
// root or as the rootless test user, with mount_program = fuse-overlayfs, = layerfs, or none
// (the kernel's overlay). The same scenario runs in every leg and leaves canonical listings
// (what each container saw, what `podman diff` said, what every saved image layer holds) to be
// compared leg against leg. Leg.destroy() removes every container, image, mount and process a
// leg started; reaper.sh does it when the test process is killed.
import { spawn } from 'node:child_process'
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeFailure, run, runOk, type RunResult } from '../helpers/run.js'
import { launcherPath, mountPoints } from '../helpers/scratch.js'

export type Mode = 'root' | 'rootless'
/**
 * fuse-overlayfs and layerfs: the mount_program. kernel: no mount_program, storage's default
 * (the kernel's redirect_dir=off here, so a directory rename is EXDEV and `mv` copies; native
 * diff: layers are tarred from the upper dir). kernel-redirect: mountopt redirect_dir=on, which
 * makes storage use its naive diff (mount the layer and its parent, compare), as it does for
 * every mount_program: the same rename semantics and the same diff code as the layerfs leg.
 */
export type Storage = 'fuse-overlayfs' | 'layerfs' | 'kernel' | 'kernel-redirect'

export const TEST_USER = 'layerfs-test'
export const FUSE_OVERLAYFS = '/usr/bin/fuse-overlayfs'
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
/** This machine: crun refuses the hybrid cgroup setup, hard limits are low, no network. */
export const PODMAN_GLOBAL = ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file']
export const RUN_FLAGS = ['--pull=never', '--network=none', '--ulimit', 'nofile=10000:10000', '--ulimit', 'nproc=1000:1000']
/** A tarball's and the base image's fixed mtime: older than any run, so it can be compared as is. */
export const BASE_MTIME = 1_700_000_000
const LAYERS_PY = fileURLToPath(new URL('./image-layers.py', import.meta.url))
const REAPER = fileURLToPath(new URL('./reaper.sh', import.meta.url))
const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

// ---------------------------------------------------------------- the host

/** What is missing on this machine for the engine tests (empty when all is there). */
export async function missingPrerequisites(): Promise<string[]> {
  const problems: string[] = []
  if (process.getuid?.() !== 0) problems.push('must run as root')
  for (const p of ['podman', 'buildah', 'runc', 'conmon', 'catatonit', 'fuse-overlayfs', 'newuidmap', 'newgidmap', 'fusermount3', 'setpriv', 'python3']) {
    if ((await run('sh', ['-c', `command -v ${p}`])).code !== 0) problems.push(`${p} is not installed`)
  }
  for (const p of ['/usr/bin/fusermount3', '/usr/bin/newuidmap', '/usr/bin/newgidmap']) {
    if (existsSync(p) && !(lstatSync(p).mode & 0o4000)) problems.push(`${p} is not setuid`)
  }
  // The base image is /bin/busybox alone: it must need no shared library.
  const ldd = await run('ldd', ['/bin/busybox'])
  if (!existsSync('/bin/busybox')) problems.push('/bin/busybox is missing (Debian: busybox-static)')
  else if (!/not a dynamic executable/.test(ldd.stdout + ldd.stderr)) problems.push('/bin/busybox is not static (Debian: busybox-static)')
  if (!existsSync(launcherPath)) problems.push(`${launcherPath} is missing: run scripts/setup.sh`)
  if (problems.length) problems.push('scripts/setup.sh installs them (Debian: podman buildah runc catatonit uidmap busybox-static fuse-overlayfs)')
  return problems
}

export interface TestUser {
  name: string
  uid: number
  gid: number
}

/** A subordinate-ID range that overlaps no other user's (after the highest one in use). */
function freeRange(file: string): number {
  let end = 100_000
  for (const line of existsSync(file) ? readFileSync(file, 'utf8').split('\n') : []) {
    const [, start, count] = line.split(':')
    if (start && count) end = Math.max(end, Number(start) + Number(count))
  }
  return Math.ceil(end / 65_536) * 65_536
}

/**
 * The rootless test user (created when missing: a system user without a home or a shell)
 * with 65,536 subordinate uids and gids that overlap no other user's, and /dev/fuse usable
 * by it: mode 0666, as distributions ship it (this machine has 0600).
 */
export async function prepareRootless(): Promise<TestUser> {
  if ((await run('id', ['-u', TEST_USER])).code !== 0) {
    await runOk('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', TEST_USER])
  }
  const uid = Number((await runOk('id', ['-u', TEST_USER])).stdout)
  const gid = Number((await runOk('id', ['-g', TEST_USER])).stdout)
  for (const [file, flag] of [['/etc/subuid', '--add-subuids'], ['/etc/subgid', '--add-subgids']] as const) {
    const has = existsSync(file) && readFileSync(file, 'utf8').split('\n').some(l => l.startsWith(`${TEST_USER}:`) || l.startsWith(`${uid}:`))
    if (!has) {
      const start = freeRange(file)
      await runOk('usermod', [flag, `${start}-${start + 65_535}`, TEST_USER])
    }
  }
  if ((lstatSync('/dev/fuse').mode & 0o777) !== 0o666) chmodSync('/dev/fuse', 0o666)
  return { name: TEST_USER, uid, gid }
}

/**
 * The scratch root for one test process: /tmp/engines-XXXX, traversable by the test user,
 * with reaper.sh watching this process (it cleans up the legs if this process is killed).
 */
export function engineScratch(): string {
  const root = mkdtempSync('/tmp/engines-')
  chmodSync(root, 0o755)
  const keep = process.env.LAYERFS_TEST_KEEP ? '1' : ''
  spawn('bash', [REAPER, String(process.pid), root, keep], { detached: true, stdio: 'ignore' }).unref()
  return root
}

/**
 * What root podman leaves outside its storage whatever storage.conf says: containers/image's
 * blob-info cache (/var/lib/containers/cache) and runc's state dir (/run/runc, empty once the
 * containers are gone). hostStateAbsent() says which are absent now; removeHostState takes
 * those away again at the end.
 */
const HOST_STATE = ['/var/lib/containers', '/run/runc']
export const hostStateAbsent = (): string[] => HOST_STATE.filter(p => !existsSync(p))
export function removeHostState(absent: readonly string[]): void {
  for (const p of absent) rmSync(p, { recursive: true, force: true })
}

/** busybox applets the scenario and the listings use, as symlinks in /bin. */
const APPLETS = ['sh', 'ls', 'rm', 'mv', 'ln', 'chmod', 'chown', 'cat', 'mkdir', 'touch', 'find', 'stat', 'sha256sum', 'echo',
  'printf', 'sort', 'readlink', 'cp', 'rmdir', 'xargs', 'tr', 'sed', 'awk', 'head', 'wc', 'test', 'true', 'mkfifo', 'cut',
  'truncate', 'grep', 'id', 'sleep', 'env', 'dd']

/**
 * A root filesystem tarball for `podman import`: /bin/busybox (static) and its applets, a few
 * owners, modes and a hard link for the scenario, every mtime BASE_MTIME.
 */
export async function makeBaseTarball(dir: string): Promise<string> {
  const fs = join(dir, 'rootfs')
  for (const d of ['bin', 'etc', 'tmp', 'root', 'srv/owned', 'var/lib/hl', 'opt/tree/a/b/c']) mkdirSync(join(fs, d), { recursive: true })
  copyFileSync('/bin/busybox', join(fs, 'bin/busybox'))
  chmodSync(join(fs, 'bin/busybox'), 0o755)
  for (const a of APPLETS) symlinkSync('busybox', join(fs, 'bin', a))
  writeFileSync(join(fs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n')
  writeFileSync(join(fs, 'etc/group'), 'root:x:0:\n')
  chmodSync(join(fs, 'tmp'), 0o1777)
  chmodSync(join(fs, 'root'), 0o700)
  writeFileSync(join(fs, 'srv/owned/f'), 'secret\n')
  chownSync(join(fs, 'srv/owned/f'), 1234, 2345)
  chownSync(join(fs, 'srv/owned'), 1234, 2345)
  chmodSync(join(fs, 'srv/owned'), 0o750)
  writeFileSync(join(fs, 'var/lib/hl/a'), 'hard-linked in the base layer\n')
  await runOk('ln', [join(fs, 'var/lib/hl/a'), join(fs, 'var/lib/hl/b')])
  writeFileSync(join(fs, 'opt/tree/x.txt'), 'x\n')
  writeFileSync(join(fs, 'opt/tree/a/b/c/deep.txt'), 'deep\n')
  writeFileSync(join(fs, 'opt/tree/a/a.txt'), 'a\n')
  await runOk('ln', ['-s', 'tree/x.txt', join(fs, 'opt/to-x')])
  const tar = join(dir, 'base.tar')
  await runOk('tar', ['--numeric-owner', '--sort=name', `--mtime=@${BASE_MTIME}`, '-C', fs, '-cf', tar, '.'])
  chmodSync(tar, 0o644)
  rmSync(fs, { recursive: true })
  return tar
}

// ---------------------------------------------------------------- one leg

export interface LegOptions {
  mode: Mode
  storage: Storage
  /** The scratch root (engineScratch()). */
  root: string
  /** The rootless user (prepareRootless()); needed for mode 'rootless'. */
  user?: TestUser
  /** The real program behind the mount_program wrapper; default fuse-overlayfs or bin/layerfs. */
  program?: string
  /** Environment for the mount program (e.g. DEBUG for layerfs): its stderr then goes to a file. */
  programEnv?: Record<string, string>
  /** Where the storage lives (default: a dir under root), e.g. an ext4 mount for a benchmark. */
  dir?: string
}

/** Short names for the legs' dirs (rootless podman wants a short run root). */
const SHORT: Record<Storage, string> = { kernel: 'k', 'kernel-redirect': 'kr', 'fuse-overlayfs': 'fo', layerfs: 'lf' }

/** One engine setup: its own storage and config, podman and buildah run as root or as the test user. */
export class Leg {
  readonly mode: Mode
  readonly storage: Storage
  readonly name: string
  readonly dir: string
  readonly #user: TestUser | undefined
  readonly #env: Record<string, string>
  #destroyed: Promise<string[]> | undefined

  constructor(o: LegOptions) {
    this.mode = o.mode
    this.storage = o.storage
    this.name = `${o.mode}/${o.storage}`
    this.dir = o.dir ?? join(o.root, `${o.mode === 'root' ? 'root' : 'rl'}-${SHORT[o.storage]}`)
    this.#user = o.mode === 'rootless' ? o.user : undefined
    if (o.mode === 'rootless' && !o.user) throw new Error('a rootless leg needs the test user')
    // Rootless podman's run root is $XDG_RUNTIME_DIR/containers, and podman (4.3) refuses a run
    // root longer than 50 characters in every command but the first: conmon's exit command
    // (`podman container cleanup`) then fails and each attached run waits 20 s for it.
    if (o.mode === 'rootless' && join(this.dir, 'xdg/containers').length > 50) throw new Error(`${this.dir}: too long for rootless podman's run root`)
    const d = this.dir
    for (const sub of ['', 'home', 'xdg', 'tmp', 'out', 'ctx', 'cni']) mkdirSync(join(d, sub), { recursive: true, mode: 0o755 })
    chmodSync(join(d, 'xdg'), 0o700)
    const program = o.storage === 'fuse-overlayfs' ? o.program ?? FUSE_OVERLAYFS : o.storage === 'layerfs' ? o.program ?? launcherPath : undefined
    if (program) this.#writeWrapper(program, o.programEnv)
    writeFileSync(join(d, 'storage.conf'), [
      '[storage]',
      'driver = "overlay"',
      `graphroot = "${d}/graph"`,
      `runroot = "${d}/run"`,
      `rootless_storage_path = "${d}/graph"`,
      '[storage.options.overlay]',
      ...(program ? [`mount_program = "${d}/mount-program"`] : []),
      ...(o.storage === 'kernel-redirect' ? ['mountopt = "redirect_dir=on"'] : []),
      '',
    ].join('\n'))
    writeFileSync(join(d, 'containers.conf'), [
      '[containers]',
      'netns = "none"',
      'default_ulimits = ["nofile=10000:10000", "nproc=1000:1000"]',
      '[network]',
      `network_config_dir = "${d}/cni"`,
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'runtime = "runc"',
      'events_logger = "file"',
      `events_logfile_path = "${d}/events.log"`,
      `tmp_dir = "${d}/tmp"`,
      ...(o.mode === 'root' ? [`static_dir = "${d}/graph/libpod"`, `volume_path = "${d}/graph/volumes"`] : []),
      '',
    ].join('\n'))
    writeFileSync(join(d, 'registries.conf'), 'unqualified-search-registries = []\n')
    this.#env = {
      PATH,
      LANG: 'C',
      HOME: join(d, 'home'),
      TMPDIR: join(d, 'tmp'),
      CONTAINERS_STORAGE_CONF: join(d, 'storage.conf'),
      CONTAINERS_CONF: join(d, 'containers.conf'),
      CONTAINERS_REGISTRIES_CONF: join(d, 'registries.conf'),
      ...(o.mode === 'rootless' ? { XDG_RUNTIME_DIR: join(d, 'xdg') } : {}),
    }
    if (this.#user) chownTree(d, this.#user)
  }

  /**
   * The mount_program is a wrapper that logs each call (uid, cwd, argv, exit code) to
   * mount-program.log and runs the real program with podman's own stdio, so that a daemon
   * that kept podman's stderr pipe open would hang podman here as it would without it.
   */
  #writeWrapper(program: string, env: Record<string, string> = {}): void {
    const log = join(this.dir, 'mount-program.log')
    const debug = Object.keys(env).length > 0
    writeFileSync(join(this.dir, 'mount-program'), [
      '#!/bin/sh',
      `log='${log}'`,
      `printf 'uid=%s cwd=%s argv=%s\\n' "$(id -u)" "$PWD" "$*" >> "$log"`,
      ...Object.entries(env).map(([k, v]) => `export ${k}='${v}'`),
      debug ? `'${program}' "$@" 2>> '${join(this.dir, 'mount-program.stderr')}'` : `'${program}' "$@"`,
      'rc=$?',
      `printf 'exit=%s\\n' "$rc" >> "$log"`,
      'exit $rc',
      '',
    ].join('\n'))
    chmodSync(join(this.dir, 'mount-program'), 0o755)
    writeFileSync(log, '')
  }

  /** What the mount_program wrapper logged (argv and exit codes), '' for the kernel. */
  mountProgramLog(): string {
    const f = join(this.dir, 'mount-program.log')
    return existsSync(f) ? readFileSync(f, 'utf8') : ''
  }

  /** Runs a command as this leg's user, with this leg's environment only. */
  exec(cmd: string, args: readonly string[], opts: { timeout?: number; input?: string } = {}): Promise<RunResult> {
    const env = Object.entries(this.#env).map(([k, v]) => `${k}=${v}`)
    const argv = ['env', '-i', ...env, cmd, ...args]
    const o = { cwd: this.dir, timeout: opts.timeout ?? 90_000, ...(opts.input !== undefined ? { input: opts.input } : {}) }
    if (!this.#user) return run(argv[0]!, argv.slice(1), o)
    const u = this.#user
    return run('setpriv', [`--reuid=${u.uid}`, `--regid=${u.gid}`, '--init-groups', ...argv], o)
  }

  podman(args: readonly string[], opts: { timeout?: number; input?: string } = {}): Promise<RunResult> {
    return this.exec('podman', [...PODMAN_GLOBAL, ...args], opts)
  }

  buildah(args: readonly string[], opts: { timeout?: number } = {}): Promise<RunResult> {
    return this.exec('buildah', args, opts)
  }

  /** Writes a file in the leg's dir, owned by the leg's user. */
  writeFile(rel: string, content: string | Buffer): string {
    const p = join(this.dir, rel)
    writeFileSync(p, content)
    if (this.#user) chownSync(p, this.#user.uid, this.#user.gid)
    return p
  }

  /**
   * Removes everything: containers, images, storage (`podman system reset`, in the user
   * namespace for rootless, which also ends the pause process), then checks that no process
   * names the leg's dir and nothing is mounted under it (killing and unmounting what is, and
   * saying so), and removes the dir. Idempotent; resolves to the problems seen.
   */
  destroy(): Promise<string[]> {
    return (this.#destroyed ??= this.#destroy())
  }

  async #destroy(): Promise<string[]> {
    const problems: string[] = []
    await this.podman(['rm', '--all', '--force', '--time', '0'], { timeout: 120_000 })
    await this.buildah(['rm', '--all'], { timeout: 120_000 })
    const reset = await this.podman(['system', 'reset', '--force'], { timeout: 120_000 })
    if (reset.code !== 0) problems.push(`podman system reset failed: ${describeFailure(reset)}`)
    // The rootless pause process keeps the user namespace (and its mounts) alive: reset ends it.
    let pids = processesNaming(this.dir)
    for (let waited = 0; pids.length && waited < 5000; waited += 100) {
      await sleep(100)
      pids = processesNaming(this.dir)
    }
    if (pids.length) {
      problems.push(`${this.name}: processes still running after podman system reset (killed):\n  ${pids.map(describeProcess).join('\n  ')}`)
      for (const p of pids) try { process.kill(p, 'SIGKILL') } catch {}
      await sleep(300)
    }
    const mounts = mountPoints().filter(m => m.startsWith(this.dir + '/')).reverse()
    // storage bind-mounts graph/overlay on itself (private) as root; reset takes it off.
    if (mounts.length) problems.push(`${this.name}: still mounted after podman system reset (unmounted): ${mounts.join(' ')}`)
    for (const m of mounts) await run('umount', ['-l', m])
    if (!process.env.LAYERFS_TEST_KEEP) {
      const rm = await run('rm', ['-rf', '--one-file-system', this.dir])
      if (rm.code !== 0) problems.push(`rm -rf ${this.dir}: ${rm.stderr.trim()}`)
    }
    return problems
  }
}

function chownTree(dir: string, u: TestUser): void {
  chownSync(dir, u.uid, u.gid)
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) chownTree(p, u)
    else chownSync(p, u.uid, u.gid)
  }
}

/** Live processes (not zombies, not this one, not reaper.sh) whose command line or environment names dir. */
export function processesNaming(dir: string): number[] {
  const pids: number[] = []
  const needle = Buffer.from(dir)
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue
      const names = (f: string): boolean => {
        const b = readFileSync(`/proc/${name}/${f}`)
        for (let i = b.indexOf(needle); i >= 0; i = b.indexOf(needle, i + 1)) {
          const next = b[i + needle.length]
          if (next === undefined || next === 0 || next === 0x2f /* / */ || next === 0x3a /* : */ || next === 0x2c /* , */ || next === 0x22) return true
        }
        return false
      }
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(REAPER)) continue
      if (names('cmdline') || names('environ')) pids.push(Number(name))
    } catch {
      // gone meanwhile, or not readable
    }
  }
  return pids
}

export function describeProcess(pid: number): string {
  try {
    return `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()}`
  } catch {
    return String(pid)
  }
}

// ---------------------------------------------------------------- the scenario

/**
 * Four RUN steps over the base image, each deleting or renaming what a lower layer made: a
 * file, a hard link, a directory with content, a renamed directory, a directory deleted and
 * made again (opaque) twice over, a base-layer file and symlink; and a COPY.
 */
export const CONTAINERFILE = `FROM localhost/engines-base:1
COPY added.txt /data/added.txt
RUN mkdir -p /data/keep /data/gone/deep /data/mvdir/sub /data/lowerdir && echo keep-a > /data/keep/a && echo keep-b > /data/keep/b && echo gone > /data/gone/deep/f && echo mv > /data/mvdir/sub/f && echo mv2 > /data/mvdir/g && echo x > /data/lowerdir/x && ln /data/keep/a /data/keep/a.hl && chmod 0640 /data/keep/b && mkfifo /data/fifo && ln -s keep/a /data/sym && chown 1000:1000 /data/keep/b && touch -d @1600000000 /data/lowerdir/x
RUN rm /data/keep/b && rm -rf /data/gone && mv /data/mvdir /data/moved && echo more >> /data/keep/a && chmod 4755 /data/moved/g && mv /data/keep/a.hl /data/keep/hl-renamed && rm /opt/tree/a/a.txt
RUN mkdir /data/gone && echo back > /data/gone/again && mv /data/moved/sub /data/sub2 && rm /bin/rmdir && touch /data/keep/b2 && mv /bin/tr /bin/tr2 && echo changed > /srv/owned/f
RUN rm -rf /data/gone && mkdir /data/gone && echo third > /data/gone/t && chmod 2775 /data/gone && rm -rf /data/sub2 && mkdir /data/sub2 && echo q > /data/sub2/q
`

/**
 * What the scenario's container does to the built image, once (a restart only lists; no single
 * quote in it, it is passed as sh -ec '...'): writes, deletes of lower files and directories,
 * hard links to lower and upper files, chmod and chown of lower files, renames of lower
 * directories, of a lower hard-linked file and of a lower symlink, a lower directory deleted
 * and made again.
 *
 * The lower directories renamed (here, in the build and in buildah's step) hold only files and
 * directories: what such a rename leaves is then the same whether the filesystem renames them
 * (a redirect: the kernel with redirect_dir=on, layerfs as root) or answers EXDEV and `mv`
 * copies them (the kernel's default here, fuse-overlayfs, the kernel's and layerfs's userxattr
 * format rootless), so every leg can be held to one oracle. busybox `mv`'s copy would give a
 * symlink a new mtime and break a hard-link pair inside.
 */
export const MUTATE = `echo new > /newfile
mkdir -p /newdir/x && echo y > /newdir/x/y
rm /data/keep/hl-renamed
rm /bin/mkfifo
rm -r /opt/tree/a/b
ln /data/keep/a /data/keep/a.hl2
ln /newfile /newfile.hl
echo more >> /var/lib/hl/a
chmod 600 /data/keep/b2
chown 42:43 /data/keep/b2
chmod 0700 /srv/owned
chmod 4711 /newfile
mv /opt/tree /opt/tree-renamed
echo append >> /opt/tree-renamed/x.txt
mv /data/lowerdir /data/lowerdir-renamed
echo append >> /data/sub2/q
rm -rf /data/moved
mkdir /data/moved
echo m > /data/moved/n
mv /data/keep/a /data/keep/a-renamed
mv /var/lib/hl/b /var/lib/hl/b-renamed
mv /opt/to-x /opt/to-x-renamed
touch /.mutated
`

/** What `buildah run` does to the committed image. */
export const BUILDAH_MUTATE = `set -e
rm -rf /newdir
mv /data/lowerdir-renamed /data/ld2
echo ld2 >> /data/ld2/x
rm /bin/tr2
mkdir /opt/tree-renamed/a/b
echo b > /opt/tree-renamed/a/b/new
chmod 0755 /srv/owned
ln -s /newfile /bsym
rm /data/keep/a.hl2
`

/** Files made under a --uidmap container: their owners go through the mapping. */
export const UIDMAP_MUTATE = `set -e
echo u > /tmp/u
chown 7:8 /tmp/u
mkdir /uidmap-dir
chown 1234:2345 /uidmap-dir
echo more >> /srv/owned/f
`

/**
 * Lists the container's own tree (not /proc, /sys, /dev, nor the files podman bind-mounts over
 * it) with busybox: path, raw mode, perms, owner, size, nlink, inode, mtime, rdev, then the
 * content's sha256 or the symlink's target. canonicalTree turns it into comparable lines.
 */
export const TREE = `find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /etc/hosts -o -path /etc/hostname -o -path /etc/resolv.conf -o -path /run/.containerenv -o -path /run/secrets \\) -prune -o -print | sort | while IFS= read -r p; do
  s=$(stat -c '%f %a %u %g %s %h %i %Y %t %T' "$p")
  case $s in
    8*) c=$(sha256sum < "$p"); c=\${c%% *} ;;
    a*) c=$(readlink "$p") ;;
    *) c=- ;;
  esac
  printf '%s\\t%s\\t%s\\n' "$p" "$s" "$c"
done
`

const TYPES: Record<string, string> = { '1': 'fifo', '2': 'chardev', '4': 'dir', '6': 'blockdev', '8': 'file', a: 'symlink', c: 'socket' }

/**
 * TREE's output as one line per path: type, perms, owner, size (files and symlinks), links
 * (nlink and, for a hard link, the first path of its inode), mtime (as is when older than t0,
 * else 'new'), content. Directories' sizes and link counts differ between file systems and
 * are left out; inode numbers only group hard links.
 */
export function canonicalTree(raw: string, t0: number): string[] {
  const rows = raw.split('\n').filter(Boolean).map(l => {
    const [path, stat, content] = l.split('\t')
    const [f, a, u, g, s, h, i, y, maj, min] = (stat ?? '').split(' ')
    return { path: path!, type: TYPES[(f ?? '?')[0]!] ?? `raw-${f}`, a, u, g, s, nlink: Number(h), ino: i!, mtime: Number(y), maj, min, content: content ?? '' }
  })
  const firstOfInode = new Map<string, string>()
  for (const r of rows) if (r.type !== 'dir' && r.nlink > 1 && !firstOfInode.has(r.ino)) firstOfInode.set(r.ino, r.path)
  return rows.map(r => {
    const dir = r.type === 'dir'
    const size = r.type === 'file' || r.type === 'symlink' ? r.s : '-'
    const links = dir ? '-' : r.nlink > 1 ? `${r.nlink}@${firstOfInode.get(r.ino)}` : '1'
    const mtime = r.mtime < t0 ? String(r.mtime) : 'new'
    const content = r.type === 'file' ? r.content.slice(0, 16) : r.type === 'symlink' ? `-> ${r.content}`
      : r.type === 'chardev' || r.type === 'blockdev' ? `${parseInt(r.maj ?? '0', 16)}:${parseInt(r.min ?? '0', 16)}` : '-'
    return `${r.path} ${r.type} ${r.a} ${r.u}:${r.g} ${size} ${links} ${mtime} ${content}`
  })
}

export interface Step {
  name: string
  ok: boolean
  seconds: number
  /** The failing command and its output, when not ok. */
  failure?: string
}

export interface LegResult {
  leg: string
  steps: Step[]
  /** Artifact name -> canonical lines (sorted). */
  artifacts: Record<string, string[]>
  /** Facts from `podman info`: graph root, driver options, native diff. */
  info: Record<string, string>
  mountProgramLog: string
  seconds: number
}

export const IMAGES = { base: 'localhost/engines-base:1', built: 'localhost/engines-built:1', committed: 'localhost/engines-committed:1', buildah: 'localhost/engines-buildah:1' }
const CTR = 'engines-ctr'
const BCTR = 'engines-bctr'

/**
 * Runs the scenario in a leg: import, build, run (mutate and list), restart (list again from a
 * fresh mount), diff, commit, containers of the built and committed images, a --uidmap
 * container, buildah from/run/commit, image save of the three images. Stops at the first step
 * that fails; what was collected until then is in the result.
 */
export async function runScenario(leg: Leg, baseTar: string): Promise<LegResult> {
  const started = Date.now()
  const t0 = Math.floor(started / 1000)
  const res: LegResult = { leg: leg.name, steps: [], artifacts: {}, info: {}, mountProgramLog: '', seconds: 0 }
  copyFileSync(baseTar, join(leg.dir, 'base.tar'))
  leg.writeFile('ctx/Containerfile', CONTAINERFILE)
  leg.writeFile('ctx/added.txt', 'added by COPY\n')
  const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
    const s = Date.now()
    try {
      await fn()
      res.steps.push({ name, ok: true, seconds: (Date.now() - s) / 1000 })
    } catch (e) {
      res.steps.push({ name, ok: false, seconds: (Date.now() - s) / 1000, failure: e instanceof Error ? e.message : String(e) })
      throw e
    }
  }
  const ok = async (p: Promise<RunResult>): Promise<RunResult> => {
    const r = await p
    if (r.code !== 0) throw new Error(describeFailure(r))
    return r
  }
  const tree = (r: RunResult): string[] => canonicalTree(r.stdout, t0)
  const podman = (...args: string[]): Promise<RunResult> => ok(leg.podman(args))
  try {
    await step('podman info', async () => {
      const info = JSON.parse((await podman('info', '--format', 'json')).stdout) as { store: { graphRoot: string; graphDriverName: string; graphOptions: Record<string, { Executable?: string } | string>; graphStatus: Record<string, string> } }
      const mp = info.store.graphOptions['overlay.mount_program']
      res.info = {
        graphRoot: info.store.graphRoot,
        driver: info.store.graphDriverName,
        mountProgram: typeof mp === 'object' ? mp.Executable ?? '' : mp ?? '',
        nativeDiff: info.store.graphStatus['Native Overlay Diff'] ?? '',
      }
      const want = { graphRoot: join(leg.dir, 'graph'), driver: 'overlay', mountProgram: leg.storage === 'fuse-overlayfs' || leg.storage === 'layerfs' ? join(leg.dir, 'mount-program') : '',
        nativeDiff: leg.storage === 'kernel' ? 'true' : 'false' }
      if (JSON.stringify(res.info) !== JSON.stringify(want)) throw new Error(`podman info: the leg's storage is not as configured:\n  got  ${JSON.stringify(res.info)}\n  want ${JSON.stringify(want)}`)
    })
    await step('podman import', async () => void await podman('import', '--change', 'CMD ["/bin/sh"]', 'base.tar', IMAGES.base))
    await step('podman build', async () => void await podman('build', ...RUN_FLAGS, '--layers', '-t', IMAGES.built, '-f', 'ctx/Containerfile', 'ctx'))
    await step('podman run', async () => {
      res.artifacts['tree: running container'] = tree(await podman('run', ...RUN_FLAGS, '--name', CTR, IMAGES.built, 'sh', '-c', `if [ ! -e /.mutated ]; then sh -ec '${MUTATE}' || exit 1; fi\n${TREE}`))
    })
    await step('podman start (fresh mount)', async () => {
      res.artifacts['tree: restarted container'] = tree(await podman('start', '--attach', CTR))
    })
    await step('podman diff', async () => {
      res.artifacts['podman diff'] = (await podman('container', 'diff', CTR)).stdout.split('\n').filter(Boolean).sort()
    })
    await step('podman commit', async () => void await podman('commit', '--quiet', CTR, IMAGES.committed))
    await step('run committed image', async () => {
      res.artifacts['tree: committed image'] = tree(await podman('run', ...RUN_FLAGS, '--rm', IMAGES.committed, 'sh', '-c', TREE))
    })
    await step('run built image', async () => {
      res.artifacts['tree: built image'] = tree(await podman('run', ...RUN_FLAGS, '--rm', IMAGES.built, 'sh', '-c', TREE))
    })
    await step('run with --uidmap', async () => {
      const map = ['--uidmap', '0:1000:60000', '--gidmap', '0:1000:60000']
      const lines = tree(await podman('run', ...RUN_FLAGS, ...map, '--rm', IMAGES.built, 'sh', '-c', `${UIDMAP_MUTATE}\n${TREE}`))
      const fields = lines.map(l => l.split(' '))
      res.artifacts['tree: --uidmap container, owners aside'] = fields.map(f => [...f.slice(0, 3), '*', ...f.slice(4)].join(' '))
      res.artifacts['owners: --uidmap container'] = fields.map(f => `${f[0]} ${f[3]}`)
    })
    await step('buildah from/run/commit', async () => {
      const flags = ['--network', 'none', '--ulimit', 'nofile=10000:10000', '--ulimit', 'nproc=1000:1000']
      await ok(leg.buildah(['from', '--pull=never', '--name', BCTR, ...flags, IMAGES.committed]))
      await ok(leg.buildah(['run', '--network', 'none', '--runtime', 'runc', BCTR, '--', 'sh', '-c', BUILDAH_MUTATE]))
      await ok(leg.buildah(['commit', '--rm', '--quiet', BCTR, IMAGES.buildah]))
    })
    await step('run buildah image', async () => {
      res.artifacts['tree: buildah image'] = tree(await podman('run', ...RUN_FLAGS, '--rm', IMAGES.buildah, 'sh', '-c', TREE))
    })
    await step('podman image save', async () => {
      for (const img of ['built', 'committed', 'buildah'] as const) {
        const out = join(leg.dir, 'out', `${img}.tar`)
        await podman('image', 'save', '--format', 'docker-archive', '-o', out, IMAGES[img])
        const r = await runOk('python3', [LAYERS_PY, out, String(t0)])
        res.artifacts[`layers: ${img} image`] = r.stdout.split('\n').filter(Boolean)
        rmSync(out)
      }
    })
    await step('podman rm', async () => void await podman('rm', CTR))
  } catch {
    // recorded in steps
  } finally {
    res.mountProgramLog = leg.mountProgramLog()
    res.seconds = (Date.now() - started) / 1000
  }
  return res
}

// ---------------------------------------------------------------- comparing

/** The key of a canonical line: its path (trees), layer and path (layers), the line (diff). */
function keyOf(artifact: string, line: string): string {
  if (artifact.startsWith('tree:')) return line.split(' ')[0]!
  if (artifact.startsWith('layers:')) return line.split(' ').slice(0, 2).join(' ')
  return line
}

/**
 * The differences of one artifact between two legs, entry by entry: '- ' what a has (the
 * oracle), '+ ' what b has instead; empty when the same. An artifact one leg lacks (its
 * scenario stopped earlier) is one line saying so. commonOnly: only the entries (paths) both
 * legs have.
 */
export function diffArtifact(artifact: string, a: LegResult, b: LegResult, opts: { commonOnly?: boolean } = {}): string[] {
  const la = a.artifacts[artifact]
  const lb = b.artifacts[artifact]
  if (!la || !lb) return la === lb ? [] : [`${!la ? a.leg : b.leg} has no '${artifact}' (its scenario stopped before)`]
  const ma = new Map(la.map(l => [keyOf(artifact, l), l]))
  const mb = new Map(lb.map(l => [keyOf(artifact, l), l]))
  const out: string[] = []
  for (const k of [...new Set([...ma.keys(), ...mb.keys()])].sort()) {
    const x = ma.get(k)
    const y = mb.get(k)
    if (x === y || (opts.commonOnly && (x === undefined || y === undefined))) continue
    if (x) out.push(`- ${x}`)
    if (y) out.push(`+ ${y}`)
  }
  return out
}

/** Every artifact either leg has, in the scenario's order. */
export function artifactsOf(...legs: LegResult[]): string[] {
  const names: string[] = []
  for (const l of legs) for (const n of Object.keys(l.artifacts)) if (!names.includes(n)) names.push(n)
  return names
}

/** A readable report of b against the oracle a: per artifact, 'same' or its differences. */
export function compareReport(a: LegResult, b: LegResult): string {
  const lines = [`${b.leg} against ${a.leg}:`]
  for (const n of artifactsOf(a, b)) {
    const d = diffArtifact(n, a, b)
    lines.push(d.length ? `  ${n}: ${d.length} lines differ\n${d.map(l => `      ${l}`).join('\n')}` : `  ${n}: same`)
  }
  return lines.join('\n')
}

/** Saves a leg's result (steps, artifacts, mount-program log) as text files under dir. */
export function saveResult(dir: string, r: LegResult): void {
  const d = join(dir, r.leg.replace('/', '-'))
  mkdirSync(d, { recursive: true })
  writeFileSync(join(d, 'steps.txt'), r.steps.map(s => `${s.ok ? 'ok  ' : 'FAIL'} ${s.seconds.toFixed(1).padStart(5)}s ${s.name}${s.failure ? `\n${s.failure}` : ''}`).join('\n') + '\n')
  for (const [n, lines] of Object.entries(r.artifacts)) writeFileSync(join(d, `${n.replace(/[^\w]+/g, '-')}.txt`), lines.join('\n') + '\n')
  writeFileSync(join(d, 'mount-program.log'), r.mountProgramLog)
}
