#!/usr/bin/env node
// The layerfs command: argv -> MountOptions -> mount(); daemonizing, unmount, exit codes.
// Every failure is one line on stderr and a non-zero exit.
// First: its mark is Node.js's start-up, before any module of ours has run (src/start-up.ts).
import { markStartUp, startUpMarks } from './start-up.js'
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Command } from 'commander'
// Only what a mount needs is imported here; the daemon's code (FUSE, the union, the native
// addons), commander and the image tools load when used: a mount's whole cost is its start-up
// (native-notes/mount-program.md, "What a mount costs").
import { checkLayout, isMountPoint, remountedFlags, parseMountinfo } from './layout.js'
import type { Mounted } from './mount.js'
import { type MountOptions, formatMountOptions, parseMountOptions, remountFlags } from './options.js'
import type { ImageMountFlags } from './image/cli-image.js'
import { IMAGE_SUBCOMMANDS } from './image/subcommands.js'

const CLI = fileURLToPath(import.meta.url)
const SUBCOMMANDS = new Set(['mount', 'umount', 'unmount', 'help', 'layer', 'diff', ...IMAGE_SUBCOMMANDS])

/**
 * The readiness pipe of a daemon (--notify-fd): whoever started it (bin/layerfs, or this
 * command's daemonize) waits on it for `ready` or `error: MESSAGE`, and the daemon's stderr
 * goes nowhere, so a failure is told there too.
 */
let notifyFd: number | undefined

function fail(message: string, code = 1): never {
  if (notifyFd !== undefined) {
    // Not closed: the pipe ends when this process has exited, so that nothing of ours is
    // running any more once the command that waits on it has returned.
    try {
      fs.writeSync(notifyFd, `error: ${message}\n`)
    } catch {
      // Nobody waits any more.
    }
  }
  process.stderr.write(`layerfs: ${message}\n`)
  process.exit(code)
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))

const collect = (v: string, prev: string[]): string[] => [...prev, v]

interface MountFlags extends ImageMountFlags {
  foreground?: boolean
  debug?: boolean
  options: string[]
  notifyFd?: string
  source?: string
}

/** What the daemon calls itself (its command line, `ps`, `pgrep layerfs`): the name and the mount point. */
const daemonTitle = (mnt: string): string => `layerfs ${mnt}`

async function mountCommand(mountpoint: string, flags: MountFlags): Promise<void> {
  if (flags.notifyFd !== undefined && flags.foreground) notifyFd = Number(flags.notifyFd)
  let o: MountOptions
  try {
    if (flags.image !== undefined) {
      const { imageMountOptions } = await import('./image/cli-image.js')
      flags.options = [await imageMountOptions(flags, mountpoint), ...flags.options]
    }
    // mount.fuse's SOURCE is what /proc/mounts shows; `-d` is fuse-overlayfs's (and libfuse's) -o debug.
    const extra = [...(flags.source === undefined ? [] : [`fsname=${flags.source.replace(/([\\,])/g, '\\$1')}`]), ...(flags.debug ? ['debug'] : [])]
    const remounting = remountFlags(flags.options)
    if (remounting) {
      await remount(remounting, mountpoint)
      return notify('ready')
    }
    o = parseMountOptions([...flags.options, ...extra])
    await clearStaleMount(mountpoint)
    checkLayout(o, mountpoint)
  } catch (e) {
    return fail(messageOf(e))
  }
  if (flags.debug) flags.foreground = true
  // The daemon gets the absolute mount point: its name says it (layerfs umount and users find
  // the daemon by it).
  if (!flags.foreground) return daemonize(formatMountOptions(o), fs.realpathSync(mountpoint))
  process.title = daemonTitle(fs.realpathSync(mountpoint))
  // Signals are caught from the start: one that comes while mounting unmounts once mounted.
  let m: Mounted | undefined
  let stopping = false
  const stop = (): void => {
    stopping = true
    m?.unmount().finally(() => process.exit(0))
  }
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, stop)
  try {
    markStartUp('checked')
    const { mount } = await import('./mount.js')
    markStartUp('modules')
    m = await mount(o, mountpoint)
  } catch (e) {
    return fail(messageOf(e))
  }
  if (stopping) return stop()
  notify('ready')
  markStartUp('ready')
  const { mountLog } = await import('./log.js')
  mountLog('start-up (ms): %s', startUpMarks())
  // Start-up is over: the pages of node's binary and libraries that it alone touched (~20 of
  // the ~40 MB mapped) leave our RSS (they stay in the page cache and come back when used),
  // and malloc gives back what it holds free. Peak RSS of a 60,000-file walk 83 -> 61 MB
  // (native-notes/memory.md, "The node binary").
  const { host } = await import('./layers/native.js')
  host.releaseStartUpMemory()
  await m.closed
  process.exit(0)
}

/** Tells whoever waits on the readiness pipe (if any) that the mount serves, and closes it. */
function notify(msg: 'ready'): void {
  if (notifyFd === undefined) return
  const fd = notifyFd
  notifyFd = undefined
  try {
    fs.writeSync(fd, msg + '\n')
    fs.closeSync(fd)
  } catch {
    // The parent is gone; nothing to tell.
  }
}

/**
 * V8 flags of the daemon (bin/layerfs starts it with the same; test/hygiene/launcher compares
 * them). Its objects live long (nodes, cached entries) and its garbage is short-lived (paths,
 * stats, replies): 1 MB semi-spaces (V8's default is 16) and an old generation that grows by
 * 20% between full collections (V8's factor is up to 4x on a small heap) keep the peak near
 * what is live. (They cost a mount's start-up nothing: 4 scavenges either way.) A walk of 60,000 files: peak RSS 107 -> 94 MB, daemon
 * CPU 0.73 -> 0.83 s (native-notes/memory.md).
 */
const DAEMON_NODE_FLAGS = ['--max-semi-space-size=1', '--heap-growing-percent=20']

/** Start the daemon (this command again, in the foreground) and return once it serves. */
function daemonize(options: string, mountpoint: string): Promise<void> {
  const debug = process.env['DEBUG'] !== undefined && process.env['DEBUG'] !== ''
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, CLI, 'mount', '-f', '--notify-fd', '3', '-o', options, mountpoint], {
    detached: true,
    // With DEBUG set the daemon's traces go to our stderr, where that is a terminal or a file;
    // otherwise it keeps nothing of ours. Never a pipe: whoever reads it (podman collects its
    // mount program's stderr) would wait for its end as long as the mount lives.
    stdio: ['ignore', 'ignore', debug && !stderrIsPipe() ? 'inherit' : 'ignore', 'pipe'],
  })
  return new Promise(() => {
    let msg = ''
    const pipe = child.stdio[3] as NodeJS.ReadableStream
    pipe.setEncoding('utf8')
    pipe.on('data', (d: string) => (msg += d))
    pipe.on('end', () => {
      const line = msg.trim()
      if (line === 'ready') {
        child.unref()
        process.exit(0)
      }
      fail(line.startsWith('error: ') ? line.slice(7) : 'the daemon exited before the mount was ready')
    })
  })
}

/** Whether our stderr is a pipe or a socket (not a terminal, a file or /dev/null). */
function stderrIsPipe(): boolean {
  try {
    const st = fs.fstatSync(2)
    return st.isFIFO() || st.isSocket()
  } catch {
    return true
  }
}

/** Pids of layerfs daemons serving `mnt` (by their name, daemonTitle). */
function daemonsOf(mnt: string): number[] {
  const out: number[] = []
  const title = daemonTitle(mnt)
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue
    let name: string
    try {
      name = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]!
    } catch {
      continue
    }
    // Compared as text, never resolved: resolving another daemon's mount point looks it up,
    // and a lookup racing that mount's own unmount makes the unmount fail with EBUSY. Whole:
    // the daemon's command line (node, its flags, the options, the mount point) is always
    // longer than its name, so the name is never cut, and a prefix would be another mount's
    // (/mnt/a's daemon is not /mnt/ab's).
    if (name === title) out.push(Number(pid))
  }
  return out
}

/** The mount table's entry of the layerfs mount at `mnt` (real path; `mountpoint` as given, for the message), or a failure. */
function layerfsMount(mnt: string, mountpoint: string): { flags: string[] } {
  const entry = parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8')).findLast(m => m.point === mnt)
  if (!entry) return fail(`'${mountpoint}' is not mounted`)
  if (entry.fstype !== 'fuse.layerfs') return fail(`'${mountpoint}' is not a layerfs mount (it is ${entry.fstype})`)
  return entry
}

/**
 * `mount -o remount,...` (mount(8) runs mount.fuse, which runs `layerfs SOURCE MNT -o
 * remount,...`): the mount's flags change in the kernel (ro, rw, nosuid, noexec, ...); the
 * layers stay what they were (options naming them are taken as given at mount and ignored).
 */
async function remount(mountFlags: readonly string[], mountpoint: string): Promise<void> {
  const mnt = fs.realpathSync(mountpoint)
  const entry = layerfsMount(mnt, mountpoint)
  // As the kernel's remount: what it names (ro, nosuid, nodev, noexec; mount(8) passes the
  // current ones too unless given a type and source), the atime flags kept unless named.
  const flags = ['remount', ...remountedFlags(entry.flags, mountFlags)]
  // -i: mount(8) must not run mount.fuse (and so us) again.
  const err = await new Promise<string | undefined>(resolve =>
    execFile('mount', ['-i', '-o', flags.join(','), mnt], { encoding: 'utf8' }, (e, _out, stderr) =>
      resolve(e ? (stderr || e.message).trim().replace(/^mount: /, '') : undefined)))
  if (err !== undefined) fail(`cannot remount '${mountpoint}': ${err}`)
}

async function umountCommand(mountpoint: string): Promise<void> {
  let mnt: string
  try {
    mnt = fs.realpathSync(mountpoint)
  } catch (e) {
    return fail(`'${mountpoint}': ${(e as { code?: string }).code ?? messageOf(e)}`)
  }
  layerfsMount(mnt, mountpoint)
  const pids = daemonsOf(mnt)
  const err = await fusermount(['-u', mnt])
  if (err !== undefined) return fail(`cannot unmount '${mountpoint}': ${err}`)
  // The daemon notices and exits once its copy-ups are on disk (src/layers/copy-up-commits.ts:
  // an fsync of up to the dirty page cache); wait for it so that nothing is left when we return.
  const deadline = Date.now() + 60_000
  while (pids.some(alive) && Date.now() < deadline) await new Promise(r => setTimeout(r, 50))
  const left = pids.filter(alive)
  if (left.length > 0) fail(`unmounted '${mountpoint}', but daemon ${left.join(', ')} is still running`)
  if (isMountPoint(mnt)) fail(`'${mountpoint}' is still mounted`)
}

/** Run fusermount; resolves to its complaint (one line) when it fails. */
function fusermount(args: string[]): Promise<string | undefined> {
  return new Promise(resolve =>
    execFile('fusermount', args, { encoding: 'utf8' }, (e, _out, stderr) =>
      resolve(e ? (stderr || e.message).trim().replace(/^fusermount3?: /, '') : undefined)))
}

/**
 * A mount point whose daemon died without unmounting answers ENOTCONN. If it is a layerfs
 * mount, take the dead mount off so that it can be mounted again (fuse-native's `force`).
 */
async function clearStaleMount(mountpoint: string): Promise<void> {
  try {
    fs.statSync(mountpoint)
    return
  } catch (e) {
    if ((e as { code?: string }).code !== 'ENOTCONN') return
  }
  const abs = resolve(mountpoint)
  const entry = parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8')).findLast(m => m.point === abs)
  if (entry?.fstype !== 'fuse.layerfs') return
  const err = await fusermount(['-uz', entry.point])
  if (err !== undefined) fail(`'${mountpoint}' is a dead layerfs mount and cannot be unmounted: ${err}`)
}

/** Whether a process still runs (a zombie waiting for its reaper has finished). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/** `layerfs --version`: podman's `info` shows it for its mount_program. */
function versionText(): string {
  // dist/cli.js, or the bundle a level deeper (dist/bundle/layerfs.mjs).
  const file = ['../package.json', '../../package.json'].map(p => new URL(p, import.meta.url)).find(u => fs.existsSync(u))!
  const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }
  return `layerfs: version ${pkg.version}\nNode.js ${process.version}\nFUSE kernel interface: what the kernel offers, up to 7.40\n`
}

/** Top-level flags that are fuse-overlayfs's mount form (`layerfs [-f] [-d] -o OPTS MOUNTPOINT`), not a subcommand's. */
const MOUNT_FORM = /^(-o|-o.+|--options(=.*)?|-f|--foreground|-d|--debug)$/

/**
 * The daemon's command line as bin/layerfs (and daemonize) write it, `mount -f --notify-fd N
 * [--source SOURCE] (-o OPTS)... MOUNTPOINT`, read without commander (whose loading is ~10 ms
 * of a mount); anything else is undefined, for commander.
 */
function daemonArgs(args: readonly string[]): { mountpoint: string; flags: MountFlags } | undefined {
  if (args[0] !== 'mount' || args[1] !== '-f' || args[2] !== '--notify-fd' || !/^\d+$/.test(args[3] ?? '')) return undefined
  const flags: MountFlags = { foreground: true, notifyFd: args[3], options: [] }
  const last = args.length - 1
  let i = 4
  if (args[i] === '--source' && i + 1 < last) flags.source = args[(i += 2) - 1]
  for (; i < last; i++) {
    const a = args[i]!
    if ((a === '-o' || a === '--options') && i + 1 < last) flags.options.push(args[++i]!)
    else if (a.startsWith('--options=')) flags.options.push(a.slice('--options='.length))
    else if (a.startsWith('-o') && a.length > 2) flags.options.push(a.slice(2))
    else return undefined
  }
  const mountpoint = args[last]
  if (i !== last || mountpoint === undefined || mountpoint.startsWith('-')) return undefined
  return { mountpoint, flags }
}

export async function main(argv: string[]): Promise<void> {
  markStartUp('main')
  const args = argv.slice(2)
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
    process.stdout.write(versionText())
    return
  }
  const daemon = daemonArgs(args)
  if (daemon !== undefined) return mountCommand(daemon.mountpoint, daemon.flags)
  if (args.length >= 2 && !args[0]!.startsWith('-') && !SUBCOMMANDS.has(args[0]!)) {
    // mount.fuse's form: layerfs SOURCE MOUNTPOINT [-o OPTS]
    args.splice(0, 2, 'mount', args[1]!, '--source', args[0]!)
  } else if (args.length > 0 && MOUNT_FORM.test(args[0]!)) {
    // fuse-overlayfs's form, as containers/storage runs its mount_program.
    args.unshift('mount')
  }
  const { Command, CommanderError, Option } = await import('commander')
  const { registerLayerCommands } = await import('./image/cli-layer.js')
  const { registerImageCommands } = await import('./image/cli-image.js')
  const program: Command = new Command('layerfs')
    .description('A union filesystem with the semantics and on-disk format of kernel overlayfs')
    .exitOverride()
    .configureOutput({ writeErr: s => process.stderr.write(s.startsWith('error: ') ? `layerfs: ${s.slice(7)}` : s) })
  program
    .command('mount')
    .description('mount lower layers (and an upper layer) at MOUNTPOINT')
    .argument('<mountpoint>')
    .option('-f, --foreground', 'stay in the foreground (SIGINT/SIGTERM/SIGHUP unmount)')
    .option('-d, --debug', 'the FUSE request trace on stderr, in the foreground (-o debug)')
    .option('-o, --options <opts>', 'lowerdir=L1[:L2...][,upperdir=U,workdir=W][,ro][,...] (repeatable; README lists every option)', collect, [] as string[])
    .addOption(new Option('--notify-fd <fd>').hideHelp())
    .addOption(new Option('--source <source>', 'what /proc/mounts shows as the source (mount.fuse\'s SOURCE)').hideHelp())
    .option('--image <name[:tag]>', "mount an image's layers with a container's writable layer (see --name, --root)")
    .option('--name <container>', 'the container to create or reuse (default: a new one, name printed)')
    .option('--root <dir>', 'image storage root (default: $LAYERFS_ROOT, else /var/lib/layerfs)')
    .action((mnt: string, flags: MountFlags) => mountCommand(mnt, flags))
  program
    .command('umount')
    .alias('unmount')
    .description('unmount a layerfs mount and wait for its daemon to exit')
    .argument('<mountpoint>')
    .action((mnt: string) => umountCommand(mnt))
  registerLayerCommands(program)
  registerImageCommands(program)
  try {
    await program.parseAsync(args, { from: 'user' })
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2)
    fail(messageOf(e))
  }
}

await main(process.argv)
