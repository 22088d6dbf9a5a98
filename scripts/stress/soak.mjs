// The concurrency soak: --procs processes (soak-worker.mjs) on one layerfs mount for --seconds,
// each a random mix of creates, writes, appends, renames and unlinks of its own files in a
// shared merged directory, readdirs of it with a stat of every name, reads of lower files,
// and races with the others: unlinks of the same lower files, mkdir/rmdir of the same names,
// renames of one lower directory to and fro, and copy-up rounds where every process opens the
// same lower file for writing at the same instant. Checked:
//   - no deadlock: every process reports progress, and a stat of the mount point answers,
//     within --stall-seconds; the daemon never dies;
//   - no lost write: each process reads back its own files at the end (and at random during);
//   - no wrong errno. What each race may legitimately give, everything else is a failure:
//       own files (write, append, rename, unlink, read): nothing (no one else touches them);
//       readdir of the shared dir: nothing (it is never removed); readdir of the moving
//         directory: ENOENT (renamed away between the lookup and the open);
//       stat of a name readdir gave: ENOENT (unlinked or renamed since the listing);
//       unlink of a shared lower file: ENOENT (another process won);
//       mkdir of a raced name: EEXIST; rmdir: ENOENT (no one creates inside them);
//       rename of the moving directory: ENOENT (another process moved it first);
//       open for write of a raced lower file (copy-up), reads of lower files: nothing;
//   - exact outcomes of the races: a shared lower file is removed once (one winner), and is
//     gone exactly when it had a winner; per raced name, mkdirs minus rmdirs is 0 or 1 and says
//     whether it exists; the moving directory is where the successful renames put it, whole;
//   - one copy-up per file: the daemon's DEBUG=layerfs:copy-up trace counts each raced file
//     once, and every process saw the same st_ino and the lower's bytes;
//   - the tree is consistent (every name readdir gives is stat-able, no whiteout, no workdir
//     temp or .fuse_hidden name) and kernel overlayfs shows the same tree from the upper;
//   - the lower layers are untouched.
// Run through ./soak (a safety net that unmounts and kills whatever is left behind).
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {
  REPO, daemonsOf, diffSnapshots, genBytes, hashLayer, isWhiteoutStat, isZombie, mountLayerfs, onLines,
  parseArgs, rng, snapshot, umountLayerfs, withKernelMount,
} from './lib.mjs'

const USAGE = `usage: scripts/stress/soak [--procs N] [--seconds S] [--seed N] [--period MS] [--stall-seconds S]
  N processes at once on one layerfs mount (creates, writes, renames, unlinks, readdirs, racing
  unlinks/mkdirs/renames, simultaneous copy-ups of the same files); checks no deadlock, no lost
  write, no unexpected errno, one copy-up per file, a consistent tree that kernel overlayfs
  reads the same (see scripts/stress/soak.mjs). Needs root, FUSE, kernel overlayfs, a built
  layerfs. Exit 0: every check passed; 1: failures.
  --procs N          processes (default 16)
  --seconds S        how long they run (default 60)
  --seed N           the random seed (default: from the clock; printed)
  --period MS        a copy-up round every MS ms (default 250)
  --stall-seconds S  a process without progress, or a stat of the mount, this long is a hang (default 20)
  An hour:  scripts/stress/soak --procs 24 --seconds 3600`

const a = parseArgs(process.argv.slice(2), {
  procs: { number: true, default: 16 },
  seconds: { number: true, default: 60 },
  seed: { number: true, default: Date.now() % 1e6 },
  period: { number: true, default: 250 },
  stallSeconds: { number: true, default: 20 },
  runDir: {},
}, USAGE)
const R = rng(a.seed)
const run = a.runDir ?? fs.mkdtempSync('/tmp/soak-')
const L1 = `${run}/l1`, L2 = `${run}/l2`, UP = `${run}/up`, WORK = `${run}/work`, MNT = `${run}/mnt`, KMNT = `${run}/kmnt`
const spec = { lowers: [L1, L2], upper: UP, work: WORK, mnt: MNT }
const CU_FILES = Math.min(4000, Math.ceil((a.seconds * 1000) / a.period) + 1)
const MOVING_FILES = Math.max(4, Math.min(12, Math.ceil(a.seconds / 5)))
const VICTIMS = 400, RACE_DIRS = 12, SHARED_LOWER = 50, RDIR_COUNT = 30

const failures = []
const fail = what => {
  failures.push(what)
  console.log(`FAIL ${what}`)
}

function write(p, data) {
  fs.mkdirSync(path.dirname(p), { recursive: true })
  fs.writeFileSync(p, data)
}

function buildLowers() {
  for (const d of [L1, L2, UP, WORK, MNT, KMNT, `${run}/w`]) fs.mkdirSync(d, { recursive: true })
  let seed = 1
  // Every 8th raced file is 3 MiB (64 of them at most: the final check reads every byte
  // through the mount): its copy-up runs off the event loop and takes a while.
  for (let i = 0; i < CU_FILES; i++) write(`${L2}/cu/f${String(i).padStart(4, '0')}`, genBytes(seed++, i % 8 === 0 && i < 512 ? 3 << 20 : 1 + R.int(64 * 1024)))
  for (let i = 0; i < SHARED_LOWER; i++) write(`${L2}/shared/lower_${i}`, genBytes(seed++, 1 + R.int(8192)))
  for (let i = 0; i < 10; i++) write(`${L1}/shared/lower_${i}`, genBytes(seed++, 1 + R.int(8192)))
  for (let i = 0; i < VICTIMS; i++) write(`${L2}/victims/v${i}`, genBytes(seed++, 100))
  for (let i = 0; i < RDIR_COUNT; i++) write(`${(i % 3 ? L2 : L1)}/rdir-a/e${i}`, genBytes(seed++, 200))
  for (let id = 0; id < a.procs; id++) {
    for (let k = 0; k < MOVING_FILES; k++) write(`${L2}/rdir-a/o${id}_${k}`, genBytes(seed++, (1 << 20) + R.int(1 << 18)))
  }
  fs.mkdirSync(`${L2}/race`)
}

async function main() {
  if (!fs.existsSync(`${REPO}/dist/cli.js`)) {
    process.stderr.write('soak: dist/cli.js is missing: build first (npx tsc)\n')
    process.exit(2)
  }
  const tStart = Date.now()
  console.log(`soak: seed ${a.seed}, ${a.procs} processes, ${a.seconds} s, run dir ${run}`)
  buildLowers()
  const lowerHash = (await hashLayer(L1)) + (await hashLayer(L2))
  const logPath = `${run}/daemon.log`
  const daemon = await mountLayerfs(spec, { env: { ...process.env, DEBUG: 'layerfs:copy-up' }, logFd: fs.openSync(logPath, 'a') })

  const last = new Array(a.procs).fill(Date.now())
  const results = new Array(a.procs)
  let ready = 0
  let statMax = 0
  const procs = []
  for (let id = 0; id < a.procs; id++) {
    const cfg = { id, mnt: MNT, l1: L1, l2: L2, seed: R.int(2 ** 31), seconds: a.seconds, period: a.period, cuFiles: CU_FILES,
      procs: a.procs, movingFiles: MOVING_FILES, victims: VICTIMS, raceDirs: RACE_DIRS, sharedLower: SHARED_LOWER, rdirCount: RDIR_COUNT }
    const file = `${run}/w/${id}.json`
    fs.writeFileSync(file, JSON.stringify(cfg))
    const child = spawn(process.execPath, [`${REPO}/scripts/stress/soak-worker.mjs`, file], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', d => (stderr += d))
    onLines(child.stdout, line => {
      last[id] = Date.now()
      if (line === 'R') {
        if (++ready === a.procs) {
          const t0 = Date.now() + 300
          for (const p of procs) p.stdin.end(JSON.stringify({ t0 }))
        }
      } else if (line.startsWith('E ')) fail(`process ${id}: ${line.slice(2)}`)
      else if (line.startsWith('RESULT ')) results[id] = JSON.parse(line.slice(7))
    })
    child.on('exit', (code, sig) => {
      if (code !== 0) fail(`process ${id} exited ${code ?? sig}: ${stderr.trim().slice(0, 300)}`)
    })
    procs.push(child)
  }
  const exited = Promise.all(procs.map(c => new Promise(res => (c.exitCode !== null ? res() : c.on('exit', res)))))

  // The watchdog: progress of every process, the mount answering, the daemon alive.
  let statPending = false
  let stalled = false
  const watch = setInterval(() => {
    const now = Date.now()
    for (let id = 0; id < a.procs; id++) {
      if (procs[id].exitCode === null && now - last[id] > a.stallSeconds * 1000) {
        fail(`process ${id} made no progress for ${a.stallSeconds} s (a hang?)`)
        last[id] = now
        stalled = true
      }
    }
    if (!statPending) {
      statPending = true
      const t = Date.now()
      const timer = setTimeout(() => fail(`stat of the mount point unanswered after ${a.stallSeconds} s`), a.stallSeconds * 1000)
      fs.promises.stat(MNT).then(() => {
        statMax = Math.max(statMax, Date.now() - t)
      }, e => fail(`stat of the mount point: ${e.code}`)).finally(() => {
        clearTimeout(timer)
        statPending = false
      })
    }
    if (isZombie(daemon)) fail('the daemon died')
  }, 1000)
  // A hang never ends the run by itself: the processes are killed well after their deadline.
  const killer = setTimeout(() => {
    fail('processes still running long after the deadline: killed')
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL')
  }, (a.seconds + 3 * a.stallSeconds + 30) * 1000)
  await exited
  clearInterval(watch)
  clearTimeout(killer)
  if (isZombie(daemon) || daemonsOf(MNT).length !== 1) fail('the daemon is gone')
  if (stalled) return finish(tStart, lowerHash)

  const got = results.filter(Boolean)
  if (got.length !== a.procs) fail(`${a.procs - got.length} processes gave no result`)

  // Races with exact outcomes.
  const wins = new Map()
  for (const r of got) for (const v of r.victims) wins.set(v, (wins.get(v) ?? 0) + 1)
  for (let v = 0; v < VICTIMS; v++) {
    const n = wins.get(v) ?? 0
    const exists = fs.existsSync(`${MNT}/victims/v${v}`)
    if (n > 1) fail(`victims/v${v} unlinked successfully by ${n} processes`)
    if (exists !== (n === 0)) fail(`victims/v${v} ${exists ? 'exists' : 'is gone'} after ${n} successful unlinks`)
  }
  for (let d = 0; d < RACE_DIRS; d++) {
    const name = `race/d${d}`
    const net = got.reduce((s, r) => s + (r.mkdir[name] ?? 0) - (r.rmdir[name] ?? 0), 0)
    const exists = fs.existsSync(`${MNT}/${name}`)
    if (net !== 0 && net !== 1) fail(`${name}: ${net} more successful mkdirs than rmdirs`)
    else if (exists !== (net === 1)) fail(`${name} ${exists ? 'exists' : 'is absent'}, but mkdirs - rmdirs = ${net}`)
  }
  const moves = got.reduce((s, r) => s + r.moved.ab - r.moved.ba, 0)
  const at = ['rdir-a', 'rdir-b'].filter(n => fs.existsSync(`${MNT}/${n}`))
  if (moves !== 0 && moves !== 1) fail(`rdir: ${moves} more a->b renames than b->a`)
  else if (at.length !== 1 || at[0] !== (moves ? 'rdir-b' : 'rdir-a')) fail(`rdir is at ${at.join(' and ') || 'neither name'}; the renames say ${moves ? 'rdir-b' : 'rdir-a'}`)
  else if (fs.readdirSync(`${MNT}/${at[0]}`).length !== RDIR_COUNT + a.procs * MOVING_FILES) fail(`${at[0]} lost entries`)

  // One copy-up per raced file, one st_ino for all.
  const copyUps = new Map()
  for (const line of fs.readFileSync(logPath, 'utf8').split('\n')) {
    const m = / layerfs:copy-up (\/cu\/f\d+) \(/.exec(line)
    if (m) copyUps.set(m[1], (copyUps.get(m[1]) ?? 0) + 1)
  }
  const raced = new Map()
  for (const r of got) {
    for (const [rel, ino] of Object.entries(r.cu)) {
      const s = raced.get(rel) ?? new Set()
      s.add(ino)
      raced.set(rel, s)
    }
  }
  let multiOpen = 0
  for (const [rel, inos] of raced) {
    const n = copyUps.get(`/${rel}`) ?? 0
    if (n !== 1) fail(`${rel}: ${n} copy-ups`)
    if (inos.size !== 1) fail(`${rel}: processes saw st_ino ${[...inos].join(', ')}`)
  }
  const opensPerFile = new Map()
  for (const r of got) for (const rel of Object.keys(r.cu)) opensPerFile.set(rel, (opensPerFile.get(rel) ?? 0) + 1)
  for (const n of opensPerFile.values()) if (n > 1) multiOpen++

  // The tree, as layerfs shows it and as the kernel reads the upper.
  const lsnap = snapshot(MNT, (p, st) => {
    const base = path.basename(p)
    if (isWhiteoutStat(st)) fail(`a whiteout is visible at ${p}`)
    if (base.startsWith('#') || base.startsWith('.fuse_hidden')) fail(`a workdir or hidden name is visible: ${p}`)
  })
  await umountLayerfs(MNT)
  const ksnap = await withKernelMount({ ...spec, mnt: KMNT }, snapshot)
  for (const d of diffSnapshots(lsnap, ksnap, 'layerfs', 'kernel')) fail(`tree: ${d}`)

  // The summary.
  const sum = (f, init = 0) => got.reduce((s, r) => s + f(r), init)
  const allowed = {}
  const lat = {}
  for (const r of got) {
    for (const [k, n] of Object.entries(r.allowed)) allowed[k] = (allowed[k] ?? 0) + n
    for (const [k, ms] of Object.entries(r.latMax)) lat[k] = Math.max(lat[k] ?? 0, ms)
  }
  const ops = sum(r => r.ops)
  console.log([
    `soak summary: seed ${a.seed}, ${a.procs} processes for ${a.seconds} s`,
    `  ops: ${ops} (${Math.round(ops / a.seconds)}/s); allowed errno seen: ${Object.entries(allowed).map(([k, n]) => `${k} ${n}`).join(', ') || '-'}`,
    `  copy-up rounds: ${raced.size} files raced by ${multiOpen ? `up to ${Math.max(...opensPerFile.values())}` : 1} processes ` +
      `(${sum(r => r.cuOpens)} opens for write), ${[...copyUps.values()].reduce((s, n) => s + n, 0)} copy-ups traced`,
    `  races: ${wins.size} of ${VICTIMS} shared lower files unlinked (one winner each), ` +
      `${sum(r => Object.values(r.mkdir).reduce((s, n) => s + n, 0))} mkdirs / ${sum(r => Object.values(r.rmdir).reduce((s, n) => s + n, 0))} rmdirs won, ` +
      `${sum(r => r.moved.ab + r.moved.ba)} directory renames`,
    `  slowest op (ms): ${Object.entries(lat).sort((x, y) => y[1] - x[1]).slice(0, 4).map(([k, ms]) => `${k} ${ms}`).join(', ')}; slowest stat of the mount point ${statMax} ms`,
    `  tree: ${lsnap.size} names, the same in kernel overlayfs`,
  ].join('\n'))
  return finish(tStart, lowerHash)
}

async function finish(tStart, lowerHash) {
  if (daemonsOf(MNT).length) await umountLayerfs(MNT).catch(e => fail(e.message))
  if ((await hashLayer(L1)) + (await hashLayer(L2)) !== lowerHash) fail('a lower layer changed')
  console.log(`  failures: ${failures.length} (${((Date.now() - tStart) / 1000).toFixed(0)} s in all)`)
  process.exit(failures.length ? 1 : 0)
}

await main()
