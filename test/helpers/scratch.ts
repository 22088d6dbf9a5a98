// Scratch space and the safety net: one /tmp/harness-* dir per test process, a registry of
// the mounts made in it, and two nets that unmount whatever a test left mounted: a
// process 'exit' hook, and a detached reaper that outlives a test process killed by a signal
// (tap's timeout sends SIGALRM, then SIGKILL). Never removes a dir with a live mount under it.
import { spawn, spawnSync } from 'node:child_process'
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root, found from this file. */
export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
/** The CLI under test (built by `make build`), run by node. */
export const cliPath = join(projectRoot, 'dist/cli.js')
/** The command as installed (package.json's bin): a mount starts one Node.js process, the daemon. */
export const launcherPath = join(projectRoot, 'bin/layerfs')
/** Keep scratch dirs after the run (for debugging): LAYERFS_TEST_KEEP=1. */
export const keepScratch = !!process.env.LAYERFS_TEST_KEEP

export type MountKind = 'layerfs' | 'overlay'
/** What the safety nets unmount: a union, or a filesystem a test made for its layers (scratch-fs.ts). */
export type RegisteredKind = MountKind | 'fs'

let root: string | undefined
const live = new Map<string, RegisteredKind>()

/** The per-process scratch root, created on first use. */
export function scratchRoot(): string {
  if (root) return root
  root = mkdtempSync('/tmp/harness-')
  writeFileSync(join(root, '.mounts'), '')
  startReaper(root)
  process.on('exit', onExit)
  return root
}

/** A fresh empty directory under the scratch root. */
export function freshDir(name = 'd'): string {
  return mkdtempSync(join(scratchRoot(), `${name.replace(/[^\w.-]/g, '_')}-`))
}

/** /proc/mounts as a list of mount points (octal escapes decoded), in mount order. */
export function mountPoints(): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(l => l.split(' ')[1]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
}

export const isMounted = (mnt: string): boolean => mountPoints().includes(mnt)

/** The fs type /proc/mounts gives for mnt (the last mount on it), or undefined. */
export function mountType(mnt: string): string | undefined {
  let type: string | undefined
  for (const l of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const f = l.split(' ')
    if (f[1] === mnt) type = f[2]
  }
  return type
}

/** Mount points at or below dir. */
export const mountsUnder = (dir: string): string[] => mountPoints().filter(m => m === dir || m.startsWith(dir + '/'))

/**
 * Live processes (not zombies, not us) with an argument that names mnt: the layerfs daemon
 * serving it, or a fusermount auto_unmount helper.
 */
export function processesFor(mnt: string): number[] {
  const pids: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue
    try {
      const args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0')
      if (!args.some(a => names(a, mnt))) continue
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue
      pids.push(Number(name))
    } catch {
      // gone meanwhile
    }
  }
  return pids
}

/** Whether arg mentions the path p as a whole (not as a prefix of a longer name). */
function names(arg: string, p: string): boolean {
  for (let i = arg.indexOf(p); i >= 0; i = arg.indexOf(p, i + 1)) {
    const next = arg[i + p.length]
    if (next === undefined || !/[\w.\-/]/.test(next)) return true
  }
  return false
}

/** Whether a process is a layerfs daemon: it calls itself `layerfs MOUNTPOINT` (src/cli.ts). */
export function isLayerfsDaemon(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('layerfs /')
  } catch {
    return false
  }
}

/** The pid of the layerfs daemon serving mnt, if any. */
export function daemonOf(mnt: string): number | undefined {
  return processesFor(mnt).find(isLayerfsDaemon)
}

export function registerMount(mnt: string, kind: RegisteredKind): void {
  live.set(mnt, kind)
  appendFileSync(join(scratchRoot(), '.mounts'), `${kind}\t${mnt}\n`)
}

export function unregisterMount(mnt: string): void {
  live.delete(mnt)
}

/** Synchronous last resort: lazy-unmount mnt and SIGKILL whatever serves it. */
export function forceUnmountSync(mnt: string, kind: RegisteredKind): void {
  for (let i = 0; i < 3 && isMounted(mnt); i++) {
    if (kind === 'layerfs') spawnSync('fusermount', ['-uz', mnt], { stdio: 'ignore', timeout: 5000 })
    if (isMounted(mnt)) spawnSync('umount', ['-l', mnt], { stdio: 'ignore', timeout: 5000 })
  }
  if (kind === 'layerfs') for (const pid of processesFor(mnt)) try { process.kill(pid, 'SIGKILL') } catch {}
}

function onExit(): void {
  // Innermost first, so that nested mounts come off.
  for (const [mnt, kind] of [...live].reverse()) {
    if (isMounted(mnt) || processesFor(mnt).length) {
      process.stderr.write(`harness: ${kind} mount ${mnt} was still live at exit; forcing it off\n`)
      forceUnmountSync(mnt, kind)
    }
  }
  live.clear()
  if (root && !keepScratch) {
    if (mountsUnder(root).length === 0) rmSync(root, { recursive: true, force: true })
    else process.stderr.write(`harness: not removing ${root}: still mounted: ${mountsUnder(root).join(' ')}\n`)
  } else if (root) process.stderr.write(`harness: kept ${root}\n`)
}

/** Starts reaper.sh, which cleans up after this process however it ends. */
function startReaper(dir: string): void {
  const reaper = fileURLToPath(new URL('./reaper.sh', import.meta.url))
  const child = spawn('bash', [reaper, String(process.pid), dir, keepScratch ? '1' : ''], {
    detached: true,
    stdio: 'ignore',
  })
  child.unref()
}
