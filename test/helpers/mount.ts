// Mounts for tests: layerfs through its CLI, kernel overlayfs through mount(8). Each mount
// registers a teardown that always takes it off again, even when the test throws halfway,
// and fails the test when layerfs does not unmount cleanly or its daemon does not exit.
import { spawn } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { run } from './run.js'
import {
  cliPath,
  forceUnmountSync,
  launcherPath,
  freshDir,
  isMounted,
  mountType,
  processesFor,
  projectRoot,
  registerMount,
  unregisterMount,
  type MountKind,
} from './scratch.js'

/** What a test needs from tap's `t`: a place to register cleanup. */
export interface TeardownHost {
  teardown(fn: () => unknown): void
}

export interface MountSpec {
  /** Lower layers, top-most first (as in lowerdir=). */
  lowers: readonly string[]
  /** Upper layer; none means a read-only union. */
  upper?: string
  /** Work dir; created next to a fresh upper when upper is given and work is not. */
  work?: string
  /** Mount point; a fresh empty dir when not given. */
  mnt?: string
  /** More -o options for layerfs (e.g. ['noatime']). Ignored for the kernel. */
  options?: readonly string[]
  /** More environment for the layerfs daemon (e.g. DEBUG). Ignored for the kernel. */
  env?: Record<string, string>
  /** metacopy=on on both (the kernel's default here, and layerfs's, is off). */
  metacopy?: boolean
}

export interface Mounted {
  /** What really serves the mount. */
  kind: MountKind
  mnt: string
  lowers: string[]
  upper?: string
  work?: string
  /** The -o string used. */
  options: string
  /** layerfs: the file that got the CLI's (and the daemon's inherited) stdout and stderr. */
  log?: string
  /** Takes the mount off now (idempotent); the teardown then only checks the daemon is gone. */
  unmount(): Promise<void>
}

/**
 * Which implementation the "layerfs" side of a test runs on. LAYERFS_TEST_TARGETS=overlay runs
 * both sides on kernel overlayfs (to develop tests before layerfs mounts); anything else, or
 * unset, means the real layerfs.
 */
export const subjectKind: MountKind = process.env.LAYERFS_TEST_TARGETS === 'overlay' ? 'overlay' : 'layerfs'

const KERNEL_OPTIONS = 'redirect_dir=on,index=off,metacopy=off,xino=off'
const escapeLayer = (p: string): string => p.replace(/\\/g, '\\\\').replace(/:/g, '\\:').replace(/,/g, '\\,')

function prepare(spec: MountSpec): { mnt: string; lowers: string[]; upper?: string; work?: string } {
  const mnt = spec.mnt ?? freshDir('mnt')
  mkdirSync(mnt, { recursive: true })
  let work = spec.work
  if (spec.upper !== undefined && work === undefined) work = freshDir('work')
  return { mnt, lowers: [...spec.lowers], ...(spec.upper !== undefined ? { upper: spec.upper } : {}), ...(work !== undefined ? { work } : {}) }
}

function layerOptions(d: { lowers: string[]; upper?: string; work?: string }): string[] {
  const o = [`lowerdir=${d.lowers.map(escapeLayer).join(':')}`]
  if (d.upper !== undefined) o.push(`upperdir=${escapeLayer(d.upper)}`)
  if (d.work !== undefined) o.push(`workdir=${escapeLayer(d.work)}`)
  return o
}

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  timedOut: boolean
}

/**
 * Runs `bin/layerfs args...` (the command as installed; dist/cli.js behind it) with stdout/stderr
 * going to files, and waits for the CLI process itself to exit (a daemon it leaves behind may
 * keep those files open; pipes would never close).
 */
export async function runCli(args: readonly string[], opts: { timeout?: number; env?: Record<string, string> } = {}): Promise<CliResult & { logDir: string }> {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} does not exist: run \`make build\` first (or set LAYERFS_TEST_TARGETS=overlay)`)
  const logDir = freshDir('cli')
  const out = openSync(join(logDir, 'stdout'), 'w')
  const err = openSync(join(logDir, 'stderr'), 'w')
  const child = spawn(launcherPath, [...args], {
    cwd: projectRoot,
    stdio: ['ignore', out, err],
    env: { ...process.env, ...opts.env },
  })
  closeSync(out)
  closeSync(err)
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, opts.timeout ?? 30_000)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(res => {
    child.on('error', () => res([127, null]))
    child.on('exit', (c, s) => res([c, s]))
  })
  clearTimeout(timer)
  return {
    code,
    signal,
    timedOut,
    stdout: readFileSync(join(logDir, 'stdout'), 'utf8'),
    stderr: readFileSync(join(logDir, 'stderr'), 'utf8'),
    logDir,
  }
}

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))
const tail = (s: string, n = 15): string => s.trim().split('\n').slice(-n).join('\n')

/**
 * Takes a layerfs mount off: `layerfs umount`, then `fusermount -uz`, then `umount -l`; then
 * waits up to 5 s for the daemon to exit and SIGKILLs it otherwise. Returns the problems seen
 * (empty when layerfs behaved).
 */
async function takeDownLayerfs(mnt: string, logDir?: string): Promise<string[]> {
  const problems: string[] = []
  if (isMounted(mnt)) {
    const r = await runCli(['umount', mnt], { timeout: 15_000 })
    if (r.code !== 0) problems.push(`\`layerfs umount ${mnt}\` exited ${r.timedOut ? '(timed out)' : r.code}: ${r.stderr.trim()}`)
    if (isMounted(mnt)) {
      problems.push(`${mnt} still mounted after \`layerfs umount\`; used fusermount -uz`)
      await run('fusermount', ['-uz', mnt], { timeout: 10_000 })
      if (isMounted(mnt)) await run('umount', ['-l', mnt], { timeout: 10_000 })
    }
  }
  let pids = processesFor(mnt)
  for (let waited = 0; pids.length && waited < 5000; waited += 100) {
    await sleep(100)
    pids = processesFor(mnt)
  }
  if (pids.length) {
    const cmds = pids.map(p => {
      try {
        return `${p}: ${readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ')}`
      } catch {
        return String(p)
      }
    })
    for (const p of pids) try { process.kill(p, 'SIGKILL') } catch {}
    problems.push(`layerfs daemon did not exit within 5 s of unmounting ${mnt}; SIGKILLed:\n  ${cmds.join('\n  ')}`)
  }
  if (isMounted(mnt)) forceUnmountSync(mnt, 'layerfs')
  if (problems.length && logDir) {
    const log = readFileSync(join(logDir, 'stderr'), 'utf8')
    if (log.trim()) problems.push(`daemon stderr (tail):\n${tail(log)}`)
  }
  return problems
}

async function takeDownOverlay(mnt: string): Promise<string[]> {
  const problems: string[] = []
  if (isMounted(mnt)) {
    const r = await run('umount', [mnt], { timeout: 15_000 })
    if (r.code !== 0 || isMounted(mnt)) {
      problems.push(`umount ${mnt} failed (${r.stderr.trim()}); used umount -l`)
      await run('umount', ['-l', mnt], { timeout: 15_000 })
    }
  }
  if (isMounted(mnt)) forceUnmountSync(mnt, 'overlay')
  return problems
}

/** Mounts layerfs with `bin/layerfs mount -o ... MNT`; unmounted again at t's teardown. */
export async function mountLayerfs(t: TeardownHost, spec: MountSpec): Promise<Mounted> {
  const d = prepare(spec)
  const options = [...layerOptions(d), ...(spec.metacopy ? ['metacopy=on'] : []), ...(spec.options ?? [])].join(',')
  registerMount(d.mnt, 'layerfs')
  let logDir: string | undefined
  let down: Promise<string[]> | undefined
  const unmount = async (): Promise<string[]> => (down ??= takeDownLayerfs(d.mnt, logDir).finally(() => unregisterMount(d.mnt)))
  t.teardown(async () => {
    const problems = await unmount()
    if (problems.length) throw new Error(`layerfs teardown of ${d.mnt}:\n${problems.join('\n')}`)
  })
  const r = await runCli(['mount', '-o', options, d.mnt], spec.env ? { env: spec.env } : {})
  logDir = r.logDir
  if (r.code !== 0 || r.timedOut) {
    const was = isMounted(d.mnt)
    await unmount()
    throw new Error(
      `layerfs mount failed (${r.timedOut ? 'timed out after 30 s' : `exit ${r.code}`}${was ? ', and left a mount behind' : ''}): ` +
        `mount -o ${options} ${d.mnt}\n${tail(r.stderr)}`,
    )
  }
  if (!isMounted(d.mnt)) throw new Error(`layerfs mount exited 0 but ${d.mnt} is not in /proc/mounts\n${tail(r.stderr)}`)
  const type = mountType(d.mnt)
  if (!type?.startsWith('fuse')) throw new Error(`layerfs mount: ${d.mnt} has fs type ${type}, expected fuse.*`)
  return {
    kind: 'layerfs',
    ...d,
    options,
    log: join(r.logDir, 'stderr'),
    unmount: async () => {
      const problems = await unmount()
      if (problems.length) throw new Error(`layerfs unmount of ${d.mnt}:\n${problems.join('\n')}`)
    },
  }
}

/**
 * Mounts kernel overlayfs (redirect_dir=on, index=off, metacopy=off or on, xino=off); unmounted again
 * at t's teardown. A read-only union with a single lower gets an extra empty lower below it,
 * because the kernel wants two lowers when there is no upper.
 */
export async function mountOverlay(t: TeardownHost, spec: MountSpec): Promise<Mounted> {
  const d = prepare(spec)
  const lowers = d.upper === undefined && d.lowers.length === 1 ? [...d.lowers, freshDir('empty-lower')] : d.lowers
  const options = [...layerOptions({ ...d, lowers }), spec.metacopy ? KERNEL_OPTIONS.replace('metacopy=off', 'metacopy=on') : KERNEL_OPTIONS].join(',')
  registerMount(d.mnt, 'overlay')
  let down: Promise<string[]> | undefined
  const unmount = (): Promise<string[]> => (down ??= takeDownOverlay(d.mnt).finally(() => unregisterMount(d.mnt)))
  t.teardown(async () => {
    const problems = await unmount()
    if (problems.length) throw new Error(`overlay teardown of ${d.mnt}:\n${problems.join('\n')}`)
  })
  const r = await run('mount', ['-t', 'overlay', 'overlay', '-o', options, d.mnt], { timeout: 30_000 })
  if (r.code !== 0) {
    const dmesg = await run('dmesg', [])
    throw new Error(`kernel overlay mount failed: -o ${options} ${d.mnt}\n${r.stderr.trim()}\n${tail(dmesg.stdout, 3)}`)
  }
  return {
    kind: 'overlay',
    ...d,
    options,
    unmount: async () => {
      const problems = await unmount()
      if (problems.length) throw new Error(problems.join('\n'))
    },
  }
}

/** Mounts the implementation under test: layerfs, or the kernel when LAYERFS_TEST_TARGETS=overlay. */
export function mountSubject(t: TeardownHost, spec: MountSpec): Promise<Mounted> {
  return subjectKind === 'layerfs' ? mountLayerfs(t, spec) : mountOverlay(t, spec)
}

/** Mounts with the given implementation. */
export function mountKind(t: TeardownHost, kind: MountKind, spec: MountSpec): Promise<Mounted> {
  return kind === 'layerfs' ? mountLayerfs(t, spec) : mountOverlay(t, spec)
}
