// layerfs benchmark: the plain directory, kernel overlayfs, fuse-overlayfs and layerfs on the
// same layer data, each workload from a separate process on a fresh mount, targets
// interleaved (round 1: w1 on A B C D, w2 on A B C D, ...; round 2: ...). Prints a markdown
// table of medians and ratios; writes it and the raw timings (JSON) to a results dir.
// Run through ./run (it adds a safety net that unmounts and kills what this left behind).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { defaultParams, generate, isBuilt } from './gen.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const REPO = path.resolve(HERE, '../..')
const MiB = 1 << 20
// layerfs-served: layerfs with passthrough off (LAYERFS_PASSTHROUGH=0), every read and write
// served by the daemon as before FUSE 7.40 (or as an unprivileged mount does).
const ALL_TARGETS = ['plain', 'kernel', 'fuse-overlayfs', 'layerfs', 'layerfs-served']
const isLayerfs = t => t === 'layerfs' || t === 'layerfs-served'

// ---------------------------------------------------------------- arguments
const USAGE = `usage: scripts/bench/run [--quick] [--runs N] [--targets a,b] [--workloads a,b]
                         [--storage ext4|xfs|tmpfs] [--data DIR] [--results DIR] [--profile DIR] [--layerfs REPO]
                         [--list] [--render FILE]
  --quick          1 run, smaller workloads (pipeline check, < 3 min)
  --runs N         rounds (default 5)
  --targets        ${ALL_TARGETS.join(',')} (default: all)
  --workloads      names from --list (default: all)
  --storage KIND   where lower, upper and workdir live: ext4 (default: a fresh ext4 on a loop device, as
                   users keep layers: fsync and disk reads cost what they cost), xfs (the same, xfs with
                   reflinks, as RHEL-family container hosts keep them: copy-ups may clone) or tmpfs
                   (flatters FUSE)
  --data DIR       layer data: built there if absent, reused if built (default: built fresh on the storage)
  --results DIR    where results.md and results.json go (default /tmp/bench-results/<date>)
  --profile DIR    run the layerfs daemon under node --cpu-prof, one profile per mount, in DIR
  --layerfs REPO   the layerfs checkout to run (default: this one; its dist/ must be built)
  --list           the workloads
  --render FILE    print the tables of a results.json again`

function parseArgs(argv) {
  const a = { quick: false, runs: undefined, targets: ALL_TARGETS, workloads: undefined, data: undefined, results: undefined,
    profile: undefined, layerfs: REPO, runDir: undefined, list: false, storage: 'ext4' }
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]
    const v = () => {
      if (i + 1 >= argv.length) die(`${k} needs a value\n${USAGE}`)
      return argv[++i]
    }
    if (k === '--quick') a.quick = true
    else if (k === '--runs') a.runs = Number(v())
    else if (k === '--targets') a.targets = v().split(',').filter(Boolean)
    else if (k === '--workloads') a.workloads = v().split(',').filter(Boolean)
    else if (k === '--data') a.data = path.resolve(v())
    else if (k === '--storage') a.storage = v()
    else if (k === '--results') a.results = path.resolve(v())
    else if (k === '--profile') a.profile = path.resolve(v())
    else if (k === '--layerfs') a.layerfs = path.resolve(v())
    else if (k === '--run-dir') a.runDir = path.resolve(v())
    else if (k === '--list') a.list = true
    else if (k === '--render') a.render = path.resolve(v())
    else if (k === '-h' || k === '--help') {
      console.log(USAGE)
      process.exit(0)
    } else die(`unknown argument ${k}\n${USAGE}`)
  }
  a.runs ??= a.quick ? 1 : 5
  if (!(a.runs >= 1)) die('--runs must be a positive number')
  if (!['ext4', 'xfs', 'tmpfs'].includes(a.storage)) die(`--storage is ext4, xfs or tmpfs, not ${a.storage}`)
  for (const t of a.targets) if (!ALL_TARGETS.includes(t)) die(`unknown target ${t} (${ALL_TARGETS.join(', ')})`)
  return a
}

function die(msg) {
  console.error(`bench: ${msg}`)
  process.exit(2)
}
const log = msg => console.error(`bench: ${msg}`)

// ---------------------------------------------------------------- workloads
// A workload is one fresh mount ("session") with steps: untimed setup, drops of the caches,
// and timed steps (each a shell command in its own process). `restore` undoes the workload in
// the plain directory (the overlay targets get a fresh upper layer per session instead). A
// workload with `lower: 'debian'` runs on a lower of its own instead of the generated data (the
// Debian root below, copied onto the storage at the start); its plain target runs on a fresh
// copy of it.

// The apt-install workload: the Debian bookworm minbase root of test/programs/apt.test.ts
// (scripts/debian-root.sh: built once, cached in /var/cache/layerfs-test, the .debs of its
// packages in its apt archive, so that the install needs no network), in a chroot with a clean
// environment; no /proc or /dev/pts (apt and dpkg do without).
const DEBIAN_ROOT = path.join(REPO, 'scripts', 'debian-root.sh')
const CHROOT = 'chroot "$M" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C TZ=UTC DEBIAN_FRONTEND=noninteractive'
const APT = `${CHROOT} apt-get -y -q -o Dpkg::Use-Pty=0`
let aptPackages
const debianPackages = () => (aptPackages ??= run('bash', [DEBIAN_ROOT, '--packages']).stdout.trim())

function workloads(q) {
  const sh = s => ({ kind: 'sh', cmd: s })
  const time = (name, cmd, extra = {}) => ({ kind: 'time', name, cmd, ...extra })
  const drop = { kind: 'drop' }
  const rss = { kind: 'rss' }
  const scope = q ? 'src/arch' : '' // --quick: the tree walks cover 3k entries only
  const lsScope = q ? 'src/arch' : 'src'
  const statList = q ? 'all-10k.txt' : 'all.txt'
  const readFile = q ? 'mid.bin' : 'big.bin'
  const writeMiB = q ? 256 : 1024
  const nRand = q ? 2000 : 20000
  const nCreate = q ? 2000 : 10000
  const chmodList = q ? 'chmod-200.txt' : 'chmod.txt'
  const delList = q ? 'delete-2k.txt' : 'delete.txt'
  const probeFile = q ? 'mid.bin' : 'big.bin'
  const probeSize = (q ? 256 : 1024) * MiB
  return [
    { name: 'stat', desc: `lstat of every entry (${q ? '~9k' : '56k'}), cold after remount+drop_caches, then warm`,
      steps: [drop, time('stat-cold', `$BIN/statlist "$M" "$LISTS/${statList}"`), time('stat-warm', `$BIN/statlist "$M" "$LISTS/${statList}"`), rss] },
    { name: 'find', desc: `find over ${q ? 'src/arch (3k entries)' : 'the whole tree (56k entries)'}, cold then warm`,
      steps: [drop, time('find-cold', `find "$M/${scope}" >/dev/null`), time('find-warm', `find "$M/${scope}" >/dev/null`)] },
    { name: 'ls-lR', desc: `ls -lR of ${q ? 'src/arch (3k entries)' : 'the git work tree src/ (13k entries)'}, cold`,
      steps: [drop, time('ls-lR', `ls -lR "$M/${lsScope}" >/dev/null`)] },
    { name: 'du', desc: `du -s of ${q ? 'src/arch (3k entries)' : 'the whole tree (56k entries)'}, cold`,
      steps: [drop, time('du-s', `du -s "$M/${scope}" >/dev/null`)] },
    { name: 'read', desc: `sequential read of ${readFile} (dd bs=1M), cold then warm`,
      steps: [drop, time('read-cold', `dd if="$M/${readFile}" of=/dev/null bs=1M status=none`, { bytes: (q ? 256 : 1024) * MiB }),
        time('read-warm', `dd if="$M/${readFile}" of=/dev/null bs=1M status=none`, { bytes: (q ? 256 : 1024) * MiB })] },
    { name: 'randread', desc: `${nRand} random 4 KiB preads of big.bin, cold`,
      steps: [drop, time('randread-4k', `$BIN/randread "$M/big.bin" ${nRand} 7`)] },
    { name: 'write', desc: `sequential write of ${writeMiB} MiB (dd bs=1M conv=fsync) to a new file`,
      steps: [time('write', `dd if=/dev/zero of="$M/out.bin" bs=1M count=${writeMiB} conv=fsync status=none`, { bytes: writeMiB * MiB })],
      restore: ctx => fs.rmSync(path.join(ctx.M, 'out.bin'), { force: true }) },
    { name: 'create', desc: `create ${nCreate} files of 100 bytes (open O_CREAT|O_EXCL, write, close) in new directories`,
      steps: [time('create', `$BIN/mkfiles "$M/created" ${nCreate}`)],
      restore: ctx => fs.rmSync(path.join(ctx.M, 'created'), { recursive: true, force: true }) },
    { name: 'copyup-append', desc: 'append one byte to a lower 256 MiB file (copy-up)',
      steps: [time('copyup-append', `printf x >> "$M/mid.bin"`)],
      restore: ctx => restoreSize(path.join(ctx.M, 'mid.bin'), 256 * MiB) },
    { name: 'copyup-chmod', desc: `chmod of ${q ? 200 : 1000} lower files (xargs chmod)`,
      steps: [time('copyup-chmod', `cd "$M" && xargs -d '\\n' -a "$LISTS/${chmodList}" chmod 600`)],
      restore: ctx => forList(ctx, chmodList, p => fs.chmodSync(p, 0o644)) },
    { name: 'delete', desc: `delete ${q ? 2000 : 10000} lower files (xargs rm -f)`,
      prepPlain: ctx => forList(ctx, delList, (p, i) => fs.linkSync(p, path.join(ctx.keep, `d${i}`)), () => fs.mkdirSync(ctx.keep)),
      steps: [time('delete', `cd "$M" && xargs -d '\\n' -a "$LISTS/${delList}" rm -f`)],
      restore: ctx => forList(ctx, delList, (p, i) => fs.renameSync(path.join(ctx.keep, `d${i}`), p), undefined, () => fs.rmSync(ctx.keep, { recursive: true })) },
    { name: 'git-status', desc: 'git status in the lower work tree src/ (12k files), cold then warm',
      steps: [drop, time('git-status-cold', 'git -C "$M/src" status --porcelain >/dev/null'), time('git-status-warm', 'git -C "$M/src" status --porcelain >/dev/null')] },
    { name: 'tar-x', desc: 'tar -xf of a 5,000-file package tree (15 MB) into the mount',
      steps: [time('tar-x', 'mkdir "$M/extract" && tar -xf "$DATA/pkg.tar" -C "$M/extract"')],
      restore: ctx => fs.rmSync(path.join(ctx.M, 'extract'), { recursive: true, force: true }) },
    { name: 'tar-c', desc: `tar -cf of ${q ? 'src/arch (3k entries)' : 'src/ (13k entries, 170 MB)'} from the mount to tmpfs, cold`,
      steps: [drop, time('tar-c', `tar -cf "$SCRATCH/out.tar" -C "$M" ${lsScope}`)],
      cleanup: ctx => fs.rmSync(path.join(ctx.scratch, 'out.tar'), { force: true }) },
    { name: 'make', desc: 'make -j2 of 200 small C files in a lower tree',
      steps: [time('make-j2', 'make -C "$M/cproj" -j2 -s >/dev/null')],
      restore: ctx => {
        fs.rmSync(path.join(ctx.M, 'cproj/obj'), { recursive: true, force: true })
        fs.rmSync(path.join(ctx.M, 'cproj/prog'), { force: true })
      } },
    { name: 'copyup-latency', desc: `lstat of other files every 10 ms while a ${probeSize / MiB} MiB lower file is copied up (append 1 byte)`,
      steps: [time('copyup-1g', `$BIN/latprobe "$M" "$LISTS/probe.txt" 10 -- sh -c 'printf x >> "$M/${probeFile}"'`, { probe: true })],
      restore: ctx => restoreSize(path.join(ctx.M, probeFile), probeSize) },
    // The chroot's /dev/null is the root's own device node, through the mount.
    { name: 'apt-install', lower: 'debian', devices: true,
      desc: `apt-get install of ${debianPackages()} (and dependencies, .debs from the local archive: maintainer scripts, alternatives, triggers) ` +
        'in a chroot on a Debian bookworm minbase lower, cold; then purge (tzdata of the lower too: whiteouts) + autoremove',
      steps: [drop, time('apt-install', `${APT} install --no-download ${debianPackages()} >/dev/null`),
        sh(`${CHROOT} sh -c 'python3 -c "import sqlite3" && sqlite3 :memory: "select 1" && make --version' >/dev/null`),
        time('apt-purge', `${APT} purge ${debianPackages()} tzdata >/dev/null && ${APT} autoremove --purge >/dev/null`)] },
  ]
}

function restoreSize(file, size) {
  const st = fs.statSync(file)
  fs.truncateSync(file, size)
  fs.utimesSync(file, st.atime, new Date(1_700_000_000_000))
}

function forList(ctx, list, fn, before, after) {
  before?.()
  const lines = fs.readFileSync(path.join(ctx.lists, list), 'utf8').split('\n').filter(Boolean)
  lines.forEach((rel, i) => fn(path.join(ctx.M, rel), i))
  after?.()
}

// ---------------------------------------------------------------- host helpers
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts })
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? `exit ${r.status ?? r.signal}`}: ${(r.stderr ?? '').trim().slice(0, 500)}`)
  }
  return r
}

const mountsUnder = prefix => fs.readFileSync('/proc/mounts', 'utf8').split('\n')
  .map(l => l.split(' ')[1]).filter(Boolean)
  .map(p => p.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))))
  .filter(p => p === prefix || p.startsWith(prefix + '/'))
const isMounted = p => mountsUnder(p).includes(p)
const sleep = ms => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
const alive = pid => {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return !/^\d+ \(.*\) Z/.test(st)
  } catch {
    return false
  }
}

/**
 * Pids whose command line has `arg` as one argument (fuse-overlayfs serving a mount point), or
 * that call themselves `layerfs ARG` (a layerfs daemon: src/cli.ts).
 */
function pidsWithArg(arg) {
  const out = []
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue
    try {
      const args = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0')
      if ((args.includes(arg) || args[0] === `layerfs ${arg}`) && !/fusermount|umount/.test(args[0])) out.push(Number(d))
    } catch {
      // gone
    }
  }
  return out
}

function procStatus(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = k => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN)
    return { hwmMB: kb('VmHWM') / 1024, rssMB: kb('VmRSS') / 1024 }
  } catch {
    return undefined
  }
}

const CLK_TCK = 100
function cpuSeconds(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
    return (Number(f[11]) + Number(f[12])) / CLK_TCK // utime, stime
  } catch {
    return NaN
  }
}

function dropCaches() {
  execFileSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches'])
}

// ---------------------------------------------------------------- targets
class Targets {
  constructor(env) {
    this.env = env // { fsDir, lower, mnt, layerfsCli, layerfsBin, profile }
    this.daemon = undefined
    this.state = { mounted: new Set(), pids: new Set() }
  }

  /**
   * Fresh upper+work for an overlay target; returns the directory the workload sees. `lower`:
   * the workload's own lower (default the generated data), which the plain target gets a
   * throwaway copy of (`copy`, removed by unmount) when `plainCopy`. `devices`: device nodes
   * must work (fuse-overlayfs mounts nodev unless told `dev`; the kernel and layerfs as root
   * do not).
   */
  mount(target, label, lower = this.env.lower, { plainCopy = false, devices = false } = {}) {
    const { fsDir, mnt } = this.env
    if (target === 'plain' && !plainCopy) return { M: lower, pid: undefined }
    if (target === 'plain') {
      const copy = path.join(fsDir, 'plain-copy')
      fs.rmSync(copy, { recursive: true, force: true })
      run('cp', ['-a', lower, copy])
      return { M: copy, pid: undefined, copy }
    }
    const up = path.join(fsDir, 'ovl', 'upper')
    const wk = path.join(fsDir, 'ovl', 'work')
    fs.rmSync(path.join(fsDir, 'ovl'), { recursive: true, force: true })
    fs.mkdirSync(up, { recursive: true })
    fs.mkdirSync(wk)
    const o = `lowerdir=${lower},upperdir=${up},workdir=${wk}`
    this.state.mounted.add(mnt)
    let pid
    if (target === 'kernel') {
      run('mount', ['-t', 'overlay', 'overlay', '-o', `${o},redirect_dir=on`, mnt])
    } else if (target === 'fuse-overlayfs') {
      run('fuse-overlayfs', ['-o', devices ? `dev,${o}` : o, mnt])
      pid = this.#findDaemon(mnt)
    } else if (this.env.profile) {
      const env = target === 'layerfs-served' ? { ...process.env, LAYERFS_PASSTHROUGH: '0' } : process.env
      const dir = path.join(this.env.profile, label)
      fs.mkdirSync(dir, { recursive: true })
      const child = spawn(process.execPath, [`--cpu-prof`, `--cpu-prof-dir=${dir}`, this.env.layerfsCli, 'mount', '-f', '-o', o, mnt],
        { detached: true, stdio: 'ignore', env })
      child.unref()
      pid = child.pid
      this.state.pids.add(pid)
      const deadline = Date.now() + 20_000
      while (!isMounted(mnt)) {
        if (Date.now() > deadline || !alive(pid)) throw new Error(`layerfs (profiled) did not mount ${mnt}`)
        sleep(20)
      }
    } else {
      // What users and podman run: the launcher (bin/layerfs) and the bundled daemon; a
      // checkout older than the launcher, through dist/cli.js.
      const env = target === 'layerfs-served' ? { ...process.env, LAYERFS_PASSTHROUGH: '0' } : process.env
      if (this.env.layerfsBin) run(this.env.layerfsBin, ['mount', '-o', o, mnt], { env })
      else run(process.execPath, [this.env.layerfsCli, 'mount', '-o', o, mnt], { env })
      pid = this.#findDaemon(mnt)
    }
    if (pid) this.state.pids.add(pid)
    return { M: mnt, pid }
  }

  #findDaemon(mnt) {
    const pids = pidsWithArg(mnt)
    if (pids.length !== 1) throw new Error(`expected one daemon for ${mnt}, found ${pids.length}`)
    return pids[0]
  }

  unmount(target, pid, copy) {
    const { mnt } = this.env
    if (copy) fs.rmSync(copy, { recursive: true, force: true })
    if (target === 'plain') return
    if (target === 'kernel') run('umount', [mnt])
    else if (target === 'fuse-overlayfs') run('fusermount3', ['-u', mnt])
    // What `layerfs umount` does, minus its wait: it waits until the daemon's pid is gone, and on
    // this machine PID 1 reaps orphaned zombies only after ~2 s. waitGone counts a zombie as gone.
    else run('fusermount', ['-u', mnt])
    this.state.mounted.delete(mnt)
    if (pid) {
      waitGone(pid, 20_000)
      this.state.pids.delete(pid)
    }
  }

  /** Best effort, for failures and signals: unmount, end our daemons (by pid). */
  cleanup() {
    for (const m of [...this.state.mounted]) {
      if (isMounted(m)) spawnSync('umount', ['-l', m])
      this.state.mounted.delete(m)
    }
    for (const pid of [...this.state.pids]) {
      if (alive(pid)) {
        try {
          process.kill(pid, 'SIGTERM')
        } catch {
          // gone
        }
        waitGone(pid, 5000)
      }
      this.state.pids.delete(pid)
    }
  }
}

function waitGone(pid, ms) {
  const deadline = Date.now() + ms
  while (alive(pid)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone
      }
      sleep(200)
      return
    }
    sleep(20)
  }
}

// ---------------------------------------------------------------- statistics and tables
const median = xs => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const geomean = xs => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length)
const fmtS = x => (!Number.isFinite(x) ? '–' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3))
const fmtR = x => (Number.isFinite(x) ? x.toFixed(2) : '–')

function tables(res, targets) {
  const steps = [...new Set(res.measurements.filter(m => m.seconds !== undefined).map(m => m.step))]
  const byKey = {}
  for (const m of res.measurements) if (m.ok) (byKey[`${m.step}|${m.target}`] ??= []).push(m)
  const med = (step, t, f = m => m.seconds) => median((byKey[`${step}|${t}`] ?? []).map(f))
  const has = t => targets.includes(t)
  const lines = []
  const head = ['workload', ...targets.map(t => `${t} (s)`)]
  if (has('layerfs') && has('fuse-overlayfs')) head.push('layerfs / fuse-overlayfs')
  if (has('layerfs') && has('kernel')) head.push('layerfs / kernel')
  if (has('layerfs-served') && has('kernel')) head.push('layerfs-served / kernel')
  lines.push(`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i ? ' ---: ' : ' --- ')).join('|')}|`)
  const ratiosF = []
  const summary = { medians: {}, ratios: {} }
  for (const s of steps) {
    const row = [s]
    summary.medians[s] = {}
    for (const t of targets) {
      const v = med(s, t)
      summary.medians[s][t] = v
      const n = (byKey[`${s}|${t}`] ?? []).length
      const fails = res.measurements.filter(m => m.step === s && m.target === t && !m.ok).length
      row.push(fmtS(v) + (fails ? ` (${fails} failed)` : '') + (n && n < res.args.runs && !fails ? ` (n=${n})` : ''))
    }
    const L = summary.medians[s].layerfs
    if (has('layerfs') && has('fuse-overlayfs')) {
      const r = L / summary.medians[s]['fuse-overlayfs']
      row.push(`**${fmtR(r)}**`)
      summary.ratios[s] = { fuse: r }
      if (Number.isFinite(r)) ratiosF.push(r)
    }
    if (has('layerfs') && has('kernel')) {
      const r = L / summary.medians[s].kernel
      row.push(fmtR(r))
      ;(summary.ratios[s] ??= {}).kernel = r
    }
    if (has('layerfs-served') && has('kernel')) {
      const r = summary.medians[s]['layerfs-served'] / summary.medians[s].kernel
      row.push(fmtR(r))
      ;(summary.ratios[s] ??= {}).servedKernel = r
    }
    lines.push(`| ${row.join(' | ')} |`)
  }
  const out = [lines.join('\n')]
  if (ratiosF.length) {
    summary.geomeanFuse = geomean(ratiosF)
    out.push(`\nGeometric mean layerfs / fuse-overlayfs over ${ratiosF.length} workloads: **${fmtR(summary.geomeanFuse)}**`)
  }

  // Throughput, latency probe, daemon memory and CPU.
  const extra = []
  for (const s of steps) {
    const ms = res.measurements.filter(m => m.step === s && m.bytes)
    if (!ms.length) continue
    extra.push(`| ${s} MB/s | ${targets.map(t => fmtS(median(ms.filter(m => m.target === t && m.ok).map(m => m.bytes / MiB / m.seconds)))).join(' | ')} |`)
  }
  for (const s of steps) {
    const ms = res.measurements.filter(m => m.step === s && m.probe && m.ok)
    if (!ms.length) continue
    const cell = (t, k) => fmtS(median(ms.filter(m => m.target === t).map(m => m.probe[k])))
    extra.push(`| ${s}: other-file lstat max (ms) | ${targets.map(t => cell(t, 'max_ms')).join(' | ')} |`)
    extra.push(`| ${s}: other-file lstat p99 (ms) | ${targets.map(t => cell(t, 'p99_ms')).join(' | ')} |`)
    extra.push(`| ${s}: other-file lstat worst max of all runs (ms) | ${targets.map(t => fmtS(Math.max(...ms.filter(m => m.target === t).map(m => m.probe.max_ms)))).join(' | ')} |`)
    extra.push(`| ${s}: lstats answered during the copy-up | ${targets.map(t => fmtS(median(ms.filter(m => m.target === t).map(m => m.probe.n)))).join(' | ')} |`)
  }
  const rssAfterStat = t => res.measurements.filter(m => m.target === t && m.step === 'rss-after-stat').map(m => m.daemon?.hwmMB)
  for (const t of ['fuse-overlayfs', 'layerfs', 'layerfs-served']) {
    if (!has(t)) continue
    const a = rssAfterStat(t).filter(Number.isFinite)
    if (a.length) extra.push(`| ${t} daemon peak RSS (VmHWM) after stat of every entry, MB (median / max) | ${targets.map(x => (x === t ? `${fmtS(median(a))} / ${fmtS(Math.max(...a))}` : '')).join(' | ')} |`)
    const all = res.measurements.filter(m => m.target === t && m.daemon).map(m => m.daemon.hwmMB).filter(Number.isFinite)
    if (all.length) extra.push(`| ${t} daemon peak RSS over all workloads, MB | ${targets.map(x => (x === t ? fmtS(Math.max(...all)) : '')).join(' | ')} |`)
    summary[`rssAfterStat_${t}`] = a.length ? Math.max(...a) : undefined
  }
  if (extra.length) out.push(`\n| measure | ${targets.join(' | ')} |\n|---|${targets.map(() => '---:').join('|')}|\n${extra.join('\n')}`)

  // Daemon CPU seconds per timed step (where it is attributable): where the time goes.
  const cpuRows = []
  for (const s of steps) {
    const cells = ['fuse-overlayfs', 'layerfs', 'layerfs-served'].filter(has).map(t => fmtS(median(res.measurements
      .filter(m => m.step === s && m.target === t && m.ok && Number.isFinite(m.daemonCpu)).map(m => m.daemonCpu))))
    if (cells.some(c => c !== '–')) cpuRows.push(`| ${s} | ${cells.join(' | ')} |`)
  }
  if (cpuRows.length) {
    const ts = ['fuse-overlayfs', 'layerfs', 'layerfs-served'].filter(has)
    out.push(`\nDaemon CPU seconds (user+sys) during the timed step, median:\n\n| workload | ${ts.join(' | ')} |\n|---|${ts.map(() => '---:').join('|')}|\n${cpuRows.join('\n')}`)
  }

  // The issue's targets.
  const checks = []
  const R = (s, k) => summary.ratios[s]?.[k]
  if (summary.geomeanFuse !== undefined) {
    checks.push(`- geometric mean layerfs/fuse-overlayfs ≤ 1.3: ${fmtR(summary.geomeanFuse)} ${summary.geomeanFuse <= 1.3 ? 'PASS' : 'FAIL'}`)
    const over = steps.filter(s => R(s, 'fuse') > 2)
    checks.push(`- no workload > 2.0x fuse-overlayfs: ${over.length ? `FAIL (${over.map(s => `${s} ${fmtR(R(s, 'fuse'))}`).join(', ')})` : 'PASS'}`)
  }
  for (const s of ['stat-warm', 'find-warm', 'read-warm']) {
    if (R(s, 'kernel') !== undefined) checks.push(`- ${s} within 1.2x of kernel overlayfs: ${fmtR(R(s, 'kernel'))} ${R(s, 'kernel') <= 1.2 ? 'PASS' : 'FAIL'}`)
  }
  if (R('write', 'fuse') !== undefined) {
    const tp = 1 / R('write', 'fuse')
    checks.push(`- sequential write ≥ 0.8x fuse-overlayfs throughput: ${fmtR(tp)} ${tp >= 0.8 ? 'PASS' : 'FAIL'}`)
  }
  if (summary.rssAfterStat_layerfs !== undefined) {
    checks.push(`- daemon RSS < 200 MB after stat of every entry: ${fmtS(summary.rssAfterStat_layerfs)} MB ${summary.rssAfterStat_layerfs < 200 ? 'PASS' : 'FAIL'}`)
  }
  const probe = res.measurements.filter(m => m.target === 'layerfs' && m.probe && m.ok)
  if (probe.length) {
    const worst = Math.max(...probe.map(m => m.probe.max_ms))
    checks.push(`- lstat of another file during a copy-up answers in < 50 ms: worst ${fmtS(worst)} ms ${worst < 50 ? 'PASS' : 'FAIL'}`)
  }
  if (checks.length) out.push(`\nTargets (issue 4):\n\n${checks.join('\n')}`)

  // Issue 13's targets (mount time: scripts/bench/mount-time).
  const c13 = []
  const pass = ok => (ok ? 'PASS' : 'FAIL')
  if (summary.geomeanFuse !== undefined) {
    c13.push(`- geometric mean layerfs/fuse-overlayfs ≤ 0.8: ${fmtR(summary.geomeanFuse)} ${pass(summary.geomeanFuse <= 0.8)}`)
    const over = steps.filter(s => R(s, 'fuse') > 1.2)
    c13.push(`- no workload > 1.2x fuse-overlayfs: ${over.length ? `FAIL (${over.map(s => `${s} ${fmtR(R(s, 'fuse'))}`).join(', ')})` : 'PASS'}`)
    const want08 = ['stat-cold', 'find-cold', 'git-status-cold', 'tar-c', 'tar-x', 'create'].filter(s => R(s, 'fuse') !== undefined)
    const over08 = want08.filter(s => R(s, 'fuse') > 0.8)
    if (want08.length) c13.push(`- ${want08.join(', ')} each ≤ 0.8x fuse-overlayfs: ${over08.length ? `FAIL (${over08.map(s => `${s} ${fmtR(R(s, 'fuse'))}`).join(', ')})` : 'PASS'}`)
    if (R('apt-install', 'fuse') !== undefined) c13.push(`- apt-install ≤ fuse-overlayfs: ${fmtR(R('apt-install', 'fuse'))} ${pass(R('apt-install', 'fuse') <= 1)}`)
  }
  if (R('copyup-chmod', 'kernel') !== undefined) c13.push(`- copyup-chmod ≤ kernel overlayfs: ${fmtR(R('copyup-chmod', 'kernel'))} ${pass(R('copyup-chmod', 'kernel') <= 1)}`)
  const chmodCpu = median(res.measurements.filter(m => m.step === 'copyup-chmod' && m.target === 'layerfs' && m.ok && Number.isFinite(m.daemonCpu)).map(m => m.daemonCpu))
  const chmodFiles = res.args?.quick ? 200 : 1000
  const perCopyUp = chmodCpu * 1000 / chmodFiles
  if (Number.isFinite(chmodCpu)) c13.push(`- daemon CPU per small copy-up (copyup-chmod, ${chmodFiles} files) < 0.2 ms: ${fmtS(perCopyUp)} ms ${pass(perCopyUp < 0.2)}`)
  if (summary.rssAfterStat_layerfs !== undefined) c13.push(`- daemon peak RSS after stat of every entry < 64 MB: ${fmtS(summary.rssAfterStat_layerfs)} MB ${pass(summary.rssAfterStat_layerfs < 64)}`)
  if (c13.length) out.push(`\nTargets (issue 13; mount time: scripts/bench/mount-time):\n\n${c13.join('\n')}`)
  return { markdown: out.join('\n'), summary }
}

// ---------------------------------------------------------------- main
async function main() {
  const args = parseArgs(process.argv.slice(2))
  if (args.render) {
    // Tables again from a results.json (after a change to the tables, without a rerun).
    const res = JSON.parse(fs.readFileSync(args.render, 'utf8'))
    console.log(tables(res, res.args.targets).markdown)
    return
  }
  const all = workloads(args.quick)
  if (args.list) {
    for (const w of all) console.log(`${w.name.padEnd(16)} ${w.desc}`)
    return
  }
  const chosen = args.workloads ? args.workloads.map(n => all.find(w => w.name === n) ?? die(`unknown workload ${n} (see --list)`)) : all
  if (process.getuid() !== 0) die('run as root (mounts, drop_caches)')
  const t0 = Date.now()
  const runDir = args.runDir ?? fs.mkdtempSync('/tmp/bench-run.')
  fs.mkdirSync(runDir, { recursive: true })
  const fsDir = path.join(runDir, 'fs')
  const mnt = path.join(runDir, 'mnt')
  const bin = path.join(runDir, 'bin')
  const stamp = new Date().toISOString().replace(/[:T]/g, '-').replace(/\..*/, '')
  const resultsDir = args.results ?? path.join('/tmp/bench-results', stamp)
  let targets

  let cleaned = false
  const cleanup = () => {
    if (cleaned) return
    cleaned = true
    try {
      targets?.cleanup()
    } catch (e) {
      log(`cleanup: ${e.message}`)
    }
    for (const m of mountsUnder(runDir).reverse()) spawnSync('umount', ['-l', m])
    if (mountsUnder(runDir).length === 0) fs.rmSync(runDir, { recursive: true, force: true })
    else log(`left ${runDir}: still mounted: ${mountsUnder(runDir).join(' ')}`)
  }
  process.on('exit', cleanup)
  // Signal handlers run on the event loop: the rounds below yield to it between steps (each
  // step is a spawnSync). A step whose process died of SIGINT/SIGTERM/SIGHUP (Ctrl-C reaches the
  // whole process group) stops the run the same way.
  const stop = sig => {
    log(`${sig}: stopping, cleaning up`)
    cleanup()
    process.exit(130)
  }
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => stop(sig))
  const yieldToSignals = () => new Promise(r => setImmediate(r))

  // Helpers, the layerfs snapshot (so that a rebuild of dist/ by someone else mid-run does not
  // change what is measured), the filesystem for the layers (--storage) and a tmpfs for the
  // workloads' own output (tar files, clones), so that only the mount's side touches the disk.
  fs.mkdirSync(bin, { recursive: true })
  for (const c of fs.readdirSync(path.join(HERE, 'helpers')).filter(f => f.endsWith('.c'))) {
    run('gcc', ['-O2', '-Wall', '-o', path.join(bin, c.slice(0, -2)), path.join(HERE, 'helpers', c)])
  }
  const lfs = path.join(runDir, 'layerfs')
  if (args.targets.some(isLayerfs)) {
    const cli = path.join(args.layerfs, 'dist', 'cli.js')
    if (!fs.existsSync(cli)) die(`${cli} is missing: build layerfs first (make setup)`)
    fs.cpSync(path.join(args.layerfs, 'dist'), path.join(lfs, 'dist'), { recursive: true })
    fs.copyFileSync(path.join(args.layerfs, 'package.json'), path.join(lfs, 'package.json'))
    for (const addon of ['src/layers/native/build/Release/host.node', 'src/fuse/native/build/Release/lowlevel.node']) {
      // A checkout from before the session addon (it was inside fuse-native) has no second one.
      if (!fs.existsSync(path.join(args.layerfs, addon))) continue
      fs.mkdirSync(path.dirname(path.join(lfs, addon)), { recursive: true })
      fs.copyFileSync(path.join(args.layerfs, addon), path.join(lfs, addon))
    }
    fs.symlinkSync(path.join(args.layerfs, 'node_modules'), path.join(lfs, 'node_modules'))
  }
  fs.mkdirSync(fsDir)
  fs.mkdirSync(mnt)
  if (args.storage === 'ext4') {
    // A sparse image in the run directory (removed with it); `mount -o loop` frees the loop
    // device at unmount. Inode tables and journal written now, not by a background thread
    // during the rounds.
    const img = path.join(runDir, 'layers.ext4')
    run('truncate', ['-s', '24G', img])
    run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', img])
    run('mount', ['-o', 'loop', img, fsDir])
  } else if (args.storage === 'xfs') {
    const img = path.join(runDir, 'layers.xfs')
    run('truncate', ['-s', '24G', img])
    run('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', img])
    run('mount', ['-o', 'loop', img, fsDir])
  } else {
    run('mount', ['-t', 'tmpfs', '-o', 'size=12g,mode=0755', 'bench', fsDir])
  }
  const scratch = path.join(runDir, 'scratch')
  fs.mkdirSync(scratch)
  run('mount', ['-t', 'tmpfs', '-o', 'size=4g,mode=0755', 'bench-scratch', scratch])

  // Layer data: built once (seeded), on the storage, or reused from --data and copied there;
  // not at all when every chosen workload has a lower of its own.
  let dataDir
  let lower
  if (chosen.every(w => w.lower)) {
    log('no workload needs the generated data: not building it')
  } else if (args.data) {
    if (isBuilt(args.data)) log(`reusing data in ${args.data}`)
    else {
      log(`building data in ${args.data}`)
      generate(args.data, defaultParams, log)
    }
    dataDir = args.data
    lower = path.join(fsDir, 'lower')
    const t = Date.now()
    run('cp', ['-a', path.join(args.data, 'lower'), lower])
    // The copy has new ctimes and inode numbers: let git record them (as a checkout would).
    run('git', ['-C', path.join(lower, 'src'), 'update-index', '-q', '--refresh'], { allowFail: true })
    log(`copied the lower layer to ${args.storage} in ${((Date.now() - t) / 1000).toFixed(1)}s`)
  } else {
    dataDir = path.join(fsDir, 'data')
    log('building data')
    generate(dataDir, defaultParams, log)
    lower = path.join(dataDir, 'lower')
  }
  const dataStamp = dataDir ? JSON.parse(fs.readFileSync(path.join(dataDir, 'STAMP'), 'utf8')) : undefined
  // The Debian root (apt-install), copied from its cache onto the storage as the data is.
  const ownLowers = {}
  if (chosen.some(w => w.lower === 'debian')) {
    const t = Date.now()
    const cached = run('bash', [DEBIAN_ROOT], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 1_800_000 }).stdout.trim()
    ownLowers.debian = path.join(fsDir, 'debian')
    run('cp', ['-a', cached, ownLowers.debian])
    log(`copied the Debian root ${cached} to ${args.storage} in ${((Date.now() - t) / 1000).toFixed(1)}s`)
  }
  const launcher = path.join(lfs, 'bin', 'layerfs')
  targets = new Targets({ fsDir, lower, mnt, layerfsCli: path.join(lfs, 'dist', 'cli.js'),
    layerfsBin: fs.existsSync(launcher) ? launcher : undefined, profile: args.profile })

  const git = (...a) => spawnSync('git', ['-C', args.layerfs, ...a], { encoding: 'utf8' }).stdout?.trim()
  const res = {
    args: { ...args, targets: args.targets, workloads: chosen.map(w => w.name) },
    meta: {
      date: new Date().toISOString(), host: os.hostname(), kernel: os.release(), cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model, memGB: +(os.totalmem() / 2 ** 30).toFixed(1), loadavgStart: os.loadavg(),
      node: process.version, layerfsCommit: git('rev-parse', '--short', 'HEAD'), layerfsDirty: Boolean(git('status', '--porcelain', '--', 'src')),
      fuseOverlayfs: spawnSync('fuse-overlayfs', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0],
      data: dataStamp,
      storage: args.storage === 'tmpfs' ? 'tmpfs (lower, upper and workdir on one tmpfs)'
        : `${args.storage} on a loop device (lower, upper and workdir; workload output on tmpfs)`,
    },
    workloads: Object.fromEntries(chosen.map(w => [w.name, w.desc])),
    measurements: [],
  }
  const lists = dataDir ? path.join(dataDir, 'lists') : ''
  const env = { ...process.env, LC_ALL: 'C', BIN: bin, LISTS: lists, DATA: dataDir ?? '', SCRATCH: scratch,
    GIT_CONFIG_NOSYSTEM: '1', HOME: scratch, GIT_OPTIONAL_LOCKS: '1' }

  // The rounds: every workload on every target, targets interleaved.
  log(`${args.runs} round(s) x ${chosen.length} workloads x ${args.targets.length} targets; layers ready after ${((Date.now() - t0) / 1000).toFixed(0)}s`)
  for (let round = 1; round <= args.runs; round++) {
    for (const w of chosen) {
      for (const target of args.targets) {
        await yieldToSignals()
        const label = `${w.name}-${target}-r${round}`
        const ctx = { M: lower, lists, scratch, keep: path.join(fsDir, 'keep') }
        let session
        const tm = Date.now()
        try {
          session = w.lower ? targets.mount(target, label, ownLowers[w.lower], { plainCopy: true, devices: w.devices }) : targets.mount(target, label)
          ctx.M = session.M
          const mountS = (Date.now() - tm) / 1000
          if (target === 'plain') w.prepPlain?.(ctx)
          for (const st of w.steps) {
            await yieldToSignals()
            if (st.kind === 'drop') dropCaches()
            else if (st.kind === 'rss') {
              res.measurements.push({ round, workload: w.name, step: 'rss-after-stat', target, ok: true, daemon: session.pid ? procStatus(session.pid) : undefined })
            } else if (st.kind === 'sh') run('sh', ['-c', st.cmd], { env: { ...env, M: session.M } })
            else {
              const cpu0 = session.pid ? cpuSeconds(session.pid) : NaN
              const a = process.hrtime.bigint()
              const r = spawnSync('sh', ['-c', st.cmd], { env: { ...env, M: session.M }, encoding: 'utf8', timeout: 900_000, killSignal: 'SIGKILL', maxBuffer: 16 * MiB })
              const seconds = Number(process.hrtime.bigint() - a) / 1e9
              if (['SIGINT', 'SIGTERM', 'SIGHUP'].includes(r.signal)) {
                await yieldToSignals() // our own handler first, if the signal was ours too
                stop(r.signal)
              }
              const ok = r.status === 0
              const m = { round, workload: w.name, step: st.name, target, seconds, ok, mountS }
              if (session.pid) {
                m.daemonCpu = cpuSeconds(session.pid) - cpu0
                m.daemon = procStatus(session.pid)
              }
              if (st.bytes) m.bytes = st.bytes
              if (st.probe) {
                try {
                  m.probe = JSON.parse(r.stdout.trim().split('\n').pop())
                } catch {
                  m.ok = false
                }
              }
              if (!ok) m.error = (r.error?.message ?? `exit ${r.status ?? r.signal}`) + ': ' + (r.stderr ?? '').trim().slice(0, 300)
              res.measurements.push(m)
              log(`r${round} ${st.name.padEnd(16)} ${target.padEnd(15)} ${m.ok ? fmtS(seconds).padStart(7) + ' s' : 'FAILED ' + m.error}` +
                (m.daemon ? `  daemon cpu ${fmtS(m.daemonCpu)} s, hwm ${fmtS(m.daemon.hwmMB)} MB` : '') +
                (m.probe ? `  probe max ${m.probe.max_ms} ms p99 ${m.probe.p99_ms} ms n=${m.probe.n}` : ''))
            }
          }
        } catch (e) {
          log(`r${round} ${w.name} ${target}: ${e.message}`)
          res.measurements.push({ round, workload: w.name, step: w.steps.find(s => s.kind === 'time')?.name, target, ok: false, error: e.message })
        } finally {
          const tu = Date.now()
          try {
            if (session) targets.unmount(target, session.pid, session.copy)
          } catch (e) {
            log(`unmount ${target}: ${e.message}`)
            targets.cleanup()
          }
          if (target === 'plain') w.restore?.(ctx)
          w.cleanup?.(ctx)
          log(`   session ${label}: ${((Date.now() - tm) / 1000).toFixed(2)}s (unmount+restore ${((Date.now() - tu) / 1000).toFixed(2)}s)`)
        }
      }
    }
  }

  res.meta.loadavgEnd = os.loadavg()
  res.meta.seconds = (Date.now() - t0) / 1000
  const { markdown, summary } = tables(res, args.targets)
  res.summary = summary
  const header = [`# layerfs benchmark ${res.meta.date}`, '',
    `\`scripts/bench/run ${process.argv.slice(2).filter(a => !a.startsWith('--run-dir') && !a.startsWith('/tmp/bench-run.')).join(' ')}\` — ${args.runs} round(s), ` +
    `medians in seconds; layerfs ${res.meta.layerfsCommit}${res.meta.layerfsDirty ? ' (dirty)' : ''}, kernel ${res.meta.kernel}, ` +
    `${res.meta.cpus} CPUs, node ${res.meta.node}, ${res.meta.fuseOverlayfs}; data: ` +
    `${dataStamp ? `${dataStamp.entries} entries (${dataStamp.files} files) + 1 GiB + 256 MiB files` : 'not generated (own lowers only)'}; storage: ${res.meta.storage}; load average ${res.meta.loadavgStart.map(x => x.toFixed(1)).join('/')} → ` +
    `${res.meta.loadavgEnd.map(x => x.toFixed(1)).join('/')}; wall ${(res.meta.seconds / 60).toFixed(1)} min.`, '']
  const md = header.join('\n') + '\n' + markdown + '\n\nWorkloads:\n\n' + chosen.map(w => `- ${w.name}: ${w.desc}`).join('\n') + '\n'
  fs.mkdirSync(resultsDir, { recursive: true })
  fs.writeFileSync(path.join(resultsDir, 'results.md'), md)
  fs.writeFileSync(path.join(resultsDir, 'results.json'), JSON.stringify(res, null, 1) + '\n')
  console.log(md)
  log(`results in ${resultsDir}`)
  const failed = res.measurements.filter(m => !m.ok).length
  if (failed) log(`${failed} measurement(s) failed (see results.json)`)
  process.exitCode = failed ? 1 : 0
}

await main()
