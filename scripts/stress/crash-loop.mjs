// The crash loop: mount layerfs, run a workload (copy-up of a large file with fsync'd marks,
// renames of lower and merged directories, a flood of creates, deletes, renames and mkdirs, and
// fsync'd appends to lower files), SIGKILL the daemon at a random moment, then check what a
// crash must never cost:
//   - `layerfs mount` works again at once on the same mount point (no stale ENOTCONN);
//   - the workdir is empty after that mount, and nothing of it shows in the union;
//   - every operation that returned before the kill is there (fsync'd writes above all), and the
//     one in flight is either not done or done (a write: a prefix of its data), never half a
//     copy-up: the big file is the lower's bytes or those plus complete marks;
//   - a renamed directory is at one of its two names with all of its lower content;
//   - the lower layers are byte-identical (a hash of names, metadata, contents, xattrs);
//   - kernel overlayfs mounts the upper and shows the same tree as layerfs.
// The upper layer lives on across iterations (crash after crash); the big file's copy is
// dropped after each check, so that each iteration copies it up again.
// Run through ./crash-loop (a safety net that unmounts and kills whatever is left behind).
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {
  BIG_SEED, MARK_LEN, MARK_OFFSET, MiB, REPO, daemonsOf, diffSnapshots, forceUnmount, genBytes, hashLayer, isMounted,
  isWhiteoutStat, markBytes, mountLayerfs, onLines, parseArgs, rng, sh, sleep, snapshot, withKernelMount,
  umountLayerfs,
} from './lib.mjs'

const USAGE = `usage: scripts/stress/crash-loop [--iterations N] [--seconds S] [--seed N] [--big-mib M] [--verbose]
  Kills the layerfs daemon (SIGKILL) at random moments of a random workload, remounts, checks
  that nothing was lost or half-done (see scripts/stress/crash-loop.mjs). Needs root, FUSE,
  kernel overlayfs and a built layerfs (npx tsc). Exit 0: every check passed; 1: failures.
  --iterations N  at most N kill-and-check rounds (default 10, or unbounded with --seconds)
  --seconds S     stop starting new rounds after S seconds
  --seed N        the random seed (default: from the clock; printed)
  --big-mib M     size of the large lower file (default 256)
  --verbose       one line per round
  --debug         the daemons trace (DEBUG=layerfs:*) into the run dir's daemon-N.log
  An hour:  scripts/stress/crash-loop --seconds 3600 --big-mib 512`

const a = parseArgs(process.argv.slice(2), {
  iterations: { number: true },
  seconds: { number: true },
  seed: { number: true, default: Date.now() % 1e6 },
  bigMib: { number: true, default: 256 },
  verbose: { flag: true, default: false },
  debug: { flag: true, default: false },
  runDir: {},
}, USAGE)
if (a.iterations === undefined && a.seconds === undefined) a.iterations = 10
const R = rng(a.seed)
const run = a.runDir ?? fs.mkdtempSync('/tmp/crash-loop-')
const L1 = `${run}/l1`, L2 = `${run}/l2`, UP = `${run}/up`, WORK = `${run}/work`, MNT = `${run}/mnt`, KMNT = `${run}/kmnt`
const spec = { lowers: [L1, L2], upper: UP, work: WORK, mnt: MNT }
const BIG = a.bigMib * MiB
const PHASES = ['copy-up', 'dir-rename', 'flood', 'fsync-write']
/** How long each phase lasts, as last measured: the kill lands at a random point inside. */
const phaseMs = { 'copy-up': 1000, 'dir-rename': 2, flood: 1500, 'fsync-write': 5 }

const failures = []
const stats = {
  iterations: 0, aimed: {}, inFlight: {}, workdirLeft: 0, workdirLeftMax: 0, deadMountSeen: 0,
  doneOps: 0, fsyncedWrites: 0, marks: 0, pendingBefore: 0, pendingAfter: 0, pendingPartial: 0,
  bigCopiedUp: 0, remountMs: [],
}
const fail = (iter, what) => {
  failures.push(`round ${iter}: ${what}`)
  console.log(`FAIL round ${iter}: ${what}`)
}

// ------------------------------------------------------------------ the layers
function write(p, data, mode) {
  fs.mkdirSync(path.dirname(p), { recursive: true })
  fs.writeFileSync(p, data)
  if (mode !== undefined) fs.chmodSync(p, mode)
}

async function buildLowers() {
  for (const d of [L1, L2, UP, WORK, MNT, KMNT, `${run}/j`]) fs.mkdirSync(d, { recursive: true })
  const fd = fs.openSync(`${L2}/big`, 'w')
  for (let k = 0; k < BIG / MiB; k++) fs.writeSync(fd, genBytes(BIG_SEED + k, MiB))
  fs.fsyncSync(fd)
  fs.closeSync(fd)
  let seed = 1
  // tree: a merged directory (two lowers) that is renamed to and fro
  for (let i = 0; i < 40; i++) write(`${L2}/tree/t${pad(i)}`, genBytes(seed++, i * 211))
  for (let s = 0; s < 4; s++) for (let i = 0; i < 10; i++) write(`${L2}/tree/s${s}/f${i}`, genBytes(seed++, 100 + i))
  for (let i = 0; i < 10; i++) write(`${L1}/tree/t${pad(i)}`, genBytes(seed++, 333))
  for (let i = 0; i < 10; i++) write(`${L1}/tree/u${pad(i)}`, genBytes(seed++, 50))
  fs.symlinkSync('t001', `${L2}/tree/link`)
  // dd/x: a lower directory moved between parents (an absolute redirect)
  for (let i = 0; i < 20; i++) write(`${L2}/dd/x/f${i}`, genBytes(seed++, 1000 + i))
  for (let i = 0; i < 5; i++) write(`${L2}/dd/x/y/g${i}`, genBytes(seed++, 10))
  fs.mkdirSync(`${L2}/ee`, { recursive: true })
  // many: the flood's lower names, a merged directory
  for (let i = 0; i < 120; i++) write(`${L2}/many/f${pad(i)}`, genBytes(seed++, R.int(16 * 1024)), 0o644)
  for (let i = 0; i < 20; i++) write(`${L1}/many/f${pad(i)}`, genBytes(seed++, R.int(4096)), 0o640)
  // logs: lower files that get fsync'd appends
  for (let i = 0; i < 6; i++) write(`${L2}/logs/l${i}`, genBytes(seed++, 1024 * (i + 1)))
  // what a real image has: a whiteout and an opaque directory in the top lower
  write(`${L2}/gone`, 'whited out by l1\n')
  write(`${L2}/opq/below`, 'hidden by the opaque dir\n')
  write(`${L1}/opq/above`, 'shown\n')
  const r1 = await sh('mknod', [`${L1}/gone`, 'c', '0', '0'])
  const r2 = await sh('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', `${L1}/opq`])
  if (r1.code || r2.code) throw new Error(`building the lowers: ${r1.stderr}${r2.stderr}`)
}

const topNames = snap => [...snap.keys()].filter(k => k !== '/' && !k.includes('/')).length
const pad = i => String(i).padStart(3, '0')

/** Bytes of a flood state: generated segments and lower prefixes. */
function bytesOf(state) {
  return Buffer.concat(state.map(s => {
    if (s.s !== undefined) return genBytes(s.s, s.n)
    if (s.b !== undefined) return Buffer.from(s.b, 'hex').subarray(0, s.n)
    const p = fs.existsSync(`${L1}/${s.l}`) ? `${L1}/${s.l}` : `${L2}/${s.l}`
    return fs.readFileSync(p).subarray(0, s.n)
  }))
}

/** A state cut to its first n bytes. */
function truncateState(state, n) {
  const out = []
  for (const s of state) {
    if (n <= 0) break
    out.push({ ...s, n: Math.min(s.n, n) })
    n -= s.n
  }
  return out
}

// ------------------------------------------------------------------ the model carried across rounds
const model = { flood: [{}, {}], append: {}, dirs: { tree: 'tree', x: 'dd/x' } }
const pairs = { tree: ['tree', 'tree2'], x: ['dd/x', 'ee/x'] }
let reference // the lowers' merged view of the renamed directories (kernel overlayfs, read-only)
let lowerHash

function initModel() {
  for (let i = 0; i < 120; i++) {
    const name = `many/f${pad(i)}`
    model.flood[i % 2][name] = [{ l: name, n: fs.statSync(fs.existsSync(`${L1}/${name}`) ? `${L1}/${name}` : `${L2}/${name}`).size }]
  }
  for (const w of [0, 1]) {
    for (let k = 0; k < 30; k++) model.flood[w][`many/n${w}_${k}`] = null
    for (let k = 0; k < 30; k++) model.flood[w][`fresh/${w}_${k}`] = null
  }
  for (let i = 0; i < 6; i++) model.append[`logs/l${i}`] = [{ l: `logs/l${i}`, n: 1024 * (i + 1) }]
}

async function takeReference() {
  reference = await withKernelMount({ lowers: [L1, L2], mnt: KMNT },
    mnt => ({ tree: snapshot(`${mnt}/tree`), x: snapshot(`${mnt}/dd/x`) }))
}

// ------------------------------------------------------------------ one round
async function round(iter) {
  const t0 = Date.now()
  const daemon = await mountLayerfs(spec, daemonLog(iter))
  if (iter === 0) fs.mkdirSync(`${MNT}/fresh`)
  const jdir = `${run}/j/${iter}`
  fs.mkdirSync(jdir)
  const workers = [
    { kind: 'big', bigSize: BIG },
    { kind: 'rename', dirs: model.dirs, pairs, counts: { tree: topNames(reference.tree), x: topNames(reference.x) } },
    { kind: 'flood', states: model.flood[0] },
    { kind: 'flood', states: model.flood[1] },
    { kind: 'append', states: model.append },
  ].map((w, k) => ({ ...w, mnt: MNT, iter, seed: R.int(2 ** 31), journal: `${jdir}/${k}.jsonl`, cfg: `${jdir}/${k}.json` }))

  const target = R.pick([...PHASES, 'any'])
  stats.aimed[target] = (stats.aimed[target] ?? 0) + 1
  const open = {} // phase -> number of workers inside it now
  const began = {} // phase -> count of begins this round
  const since = {} // `${worker} ${phase}` -> start time
  const errors = []
  let killed = false
  let atKill = []
  let tKill = 0
  const tick = {}
  let killTimer
  let ready = 0
  let fallback = setTimeout(() => kill('fallback'), 30_000)
  const go = () => {
    for (const p of procs) p.child.stdin.end('go\n')
    if (target === 'any') killTimer = setTimeout(() => kill('any'), 300 + R.next() * 2500)
    clearTimeout(fallback)
    fallback = setTimeout(() => kill('fallback'), 15_000)
  }
  const wantNth = 1 + R.int(target === 'dir-rename' || target === 'fsync-write' ? 8 : 1)

  const kill = why => {
    if (killed) return
    killed = true
    clearTimeout(killTimer)
    atKill = PHASES.filter(p => open[p] > 0)
    for (const p of atKill) stats.inFlight[p] = (stats.inFlight[p] ?? 0) + 1
    tKill = Date.now()
    try {
      process.kill(daemon, 'SIGKILL')
    } catch {
      fail(iter, `the daemon ${daemon} was already gone at the kill (${why})`)
    }
  }

  const procs = workers.map((w, k) => {
    fs.writeFileSync(w.cfg, JSON.stringify(w))
    const child = spawn(process.execPath, [`${REPO}/scripts/stress/crash-worker.mjs`, w.cfg], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', d => (stderr += d))
    onLines(child.stdout, line => {
      const [tag, p, edge] = line.split(' ')
      if (tag === 'R') {
        if (++ready === workers.length) go()
      } else if (tag === 'P') {
        const key = `${k} ${p}`
        if (edge === 'b') {
          open[p] = (open[p] ?? 0) + 1
          began[p] = (began[p] ?? 0) + 1
          since[key] = performance.now()
          if (p === target && began[p] === wantNth && !killed) {
            const delay = R.next() * phaseMs[p] * 1.2
            killTimer = setTimeout(() => kill(p), delay)
          }
        } else {
          open[p] = Math.max(0, (open[p] ?? 0) - 1)
          if (since[key] !== undefined) phaseMs[p] = 0.7 * phaseMs[p] + 0.3 * (performance.now() - since[key])
        }
      } else if (tag === 'E') {
        errors.push(`${w.kind} worker: ${line.slice(2)}`)
      }
    })
    const exited = new Promise(res => child.on('exit', (code, sig) => res({ code, sig, stderr })))
    return { child, exited, w }
  })

  // A worker that stops before the kill found an error: kill at once, the checks tell more.
  await Promise.race([...procs.map(p => p.exited), new Promise(res => {
    const iv = setInterval(() => killed && (clearInterval(iv), res()), 5)
  })])
  kill('a worker stopped')
  clearTimeout(fallback)
  const deadline = Date.now() + 5000
  while (!isGone(daemon) && Date.now() < deadline) await sleep(10)
  if (!isGone(daemon)) fail(iter, `daemon ${daemon} still alive 5 s after SIGKILL`)
  const hung = setTimeout(() => {
    for (const p of procs) if (p.child.exitCode === null) {
      errors.push(`${p.w.kind} worker hung 10 s after the kill (killed)`)
      p.child.kill('SIGKILL')
    }
  }, 10_000)
  const outs = await Promise.all(procs.map(p => p.exited))
  clearTimeout(hung)
  outs.forEach((o, k) => {
    if (o.code !== 0 && o.code !== 1) errors.push(`${workers[k].kind} worker exit ${o.code ?? o.sig}: ${o.stderr.trim().slice(0, 300)}`)
  })
  for (const e of errors) fail(iter, e)

  // ---- after the crash: what the workdir holds, the mount point, mounting again
  tick.dead = Date.now()
  const left = fs.readdirSync(`${WORK}/work`).length
  if (left) {
    stats.workdirLeft++
    stats.workdirLeftMax = Math.max(stats.workdirLeftMax, left)
  }
  if (isMounted(MNT)) stats.deadMountSeen++
  const tm = Date.now()
  let daemon2
  try {
    daemon2 = await mountLayerfs(spec, daemonLog(`${iter}-after`))
  } catch (e) {
    fail(iter, `layerfs mount after the crash: ${e.message}`)
    await forceUnmount(MNT)
    daemon2 = await mountLayerfs(spec)
  }
  stats.remountMs.push(Date.now() - tm)
  try {
    fs.statSync(MNT)
  } catch (e) {
    fail(iter, `stat of the mount point after remount: ${e.code}`)
  }
  const workLeft = fs.readdirSync(`${WORK}/work`)
  if (workLeft.length) fail(iter, `workdir not empty after remount: ${workLeft.slice(0, 5).join(' ')}`)

  // ---- journals against what the union shows
  tick.remounted = Date.now()
  checkJournals(iter, workers)
  checkBig(iter, workers[0])
  checkDirs(iter, workers[1])
  const lsnap = snapshot(MNT, (p, st) => {
    const base = path.basename(p)
    if (isWhiteoutStat(st)) fail(iter, `a whiteout is visible at ${p}`)
    if (base.startsWith('#') || base.startsWith('.fuse_hidden')) fail(iter, `a workdir or hidden name is visible: ${p}`)
  })
  tick.checked = Date.now()
  await umountLayerfs(MNT)
  if (daemonsOf(MNT).length || !isGone(daemon2)) fail(iter, 'a daemon is left after layerfs umount')

  // ---- the kernel reads the same upper the same way
  const ksnap = await withKernelMount({ ...spec, mnt: KMNT }, snapshot)
  for (const d of diffSnapshots(lsnap, ksnap, 'layerfs', 'kernel')) fail(iter, `tree: ${d}`)
  tick.kernel = Date.now()
  const h = (await hashLayer(L1)) + (await hashLayer(L2))
  if (h !== lowerHash) fail(iter, 'a lower layer changed')

  // The next round copies the big file up again.
  if (fs.existsSync(`${UP}/big`)) {
    stats.bigCopiedUp++
    fs.unlinkSync(`${UP}/big`)
  }
  stats.iterations++
  if (a.verbose) {
    const ms = (x, y) => `${y - x}`
    console.log(`round ${iter}: aimed at ${target}, in flight ${atKill.join(',') || '-'}, workdir left ${left}; ms: ` +
      `workload ${ms(t0, tKill)}, dead ${ms(tKill, tick.dead)}, remount ${ms(tick.dead, tick.remounted)}, ` +
      `check ${ms(tick.remounted, tick.checked)}, kernel ${ms(tick.checked, tick.kernel)}, lowers ${ms(tick.kernel, Date.now())}`)
  }
}

/** With --debug, the daemon's traces go to a file of the run directory. */
function daemonLog(name) {
  if (!a.debug) return {}
  return { env: { ...process.env, DEBUG: 'layerfs:*' }, logFd: fs.openSync(`${run}/daemon-${name}.log`, 'a') }
}

function isGone(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return st[st.lastIndexOf(')') + 2] === 'Z'
  } catch {
    return true
  }
}

function readJournal(file) {
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []
  const done = []
  let pending
  for (const line of lines) {
    const e = JSON.parse(line)
    if (e.b !== undefined) pending = e
    else if (pending && e.d === pending.b) {
      done.push(pending)
      pending = undefined
    }
  }
  return { done, pending }
}

/** The union's view of a flood name: null, 'D' (an empty dir), a file's bytes, or '?'. */
function observe(name) {
  let st
  try {
    st = fs.lstatSync(`${MNT}/${name}`)
  } catch (e) {
    if (e.code === 'ENOENT') return null
    throw e
  }
  if (st.isDirectory()) return fs.readdirSync(`${MNT}/${name}`).length === 0 ? 'D' : '?'
  if (st.isFile()) return fs.readFileSync(`${MNT}/${name}`)
  return '?'
}

const same = (obs, state) => {
  if (state === null || state === 'D') return obs === state
  return Buffer.isBuffer(obs) && obs.equals(bytesOf(state))
}
const show = v => (v === null ? 'absent' : v === 'D' ? 'an empty dir' : Buffer.isBuffer(v) ? `${v.length} bytes` : v === '?' ? 'something else' : `${bytesOf(v).length} bytes`)

function checkJournals(iter, workers) {
  workers.forEach((w, k) => {
    if (w.kind !== 'flood' && w.kind !== 'append') return
    const states = w.kind === 'flood' ? model.flood[Number(k === 3)] : model.append
    const { done, pending } = readJournal(w.journal)
    for (const op of done) {
      op.names.forEach((n, i) => (states[n] = op.after[i]))
      stats.doneOps++
      if (op.op === 'write' || op.op === 'append') stats.fsyncedWrites++
    }
    const touched = new Set(pending?.names ?? [])
    for (const [name, state] of Object.entries(states)) {
      if (touched.has(name)) continue
      const obs = observe(name)
      if (!same(obs, state)) fail(iter, `${name}: ${show(obs)}, but the journal says ${show(state)} (${w.kind} worker)`)
    }
    if (!pending) return
    const obs = pending.names.map(observe)
    if (pending.names.every((n, i) => same(obs[i], pending.before[i]))) {
      stats.pendingBefore++
    } else if (pending.names.every((n, i) => same(obs[i], pending.after[i]))) {
      pending.names.forEach((n, i) => (states[n] = pending.after[i]))
      stats.pendingAfter++
    } else {
      const o = obs[0]
      const after = pending.after[0]
      const partial = (pending.op === 'write' || pending.op === 'append') && Buffer.isBuffer(o) &&
        o.length >= pending.minLen && bytesOf(after).subarray(0, o.length).equals(o)
      if (partial) {
        states[pending.names[0]] = truncateState(after, o.length)
        stats.pendingPartial++
      } else {
        fail(iter, `${pending.op} ${pending.names.join(' -> ')} in flight at the kill: ${obs.map(show).join(', ')}; ` +
          `neither before (${pending.before.map(show).join(', ')}) nor after (${pending.after.map(show).join(', ')})`)
        pending.names.forEach((n, i) => (states[n] = Buffer.isBuffer(obs[i]) ? [{ b: obs[i].toString('hex'), n: obs[i].length }] : obs[i]))
      }
    }
  })
}

function checkBig(iter, w) {
  const { done, pending } = readJournal(w.journal)
  const last = new Map()
  for (const m of done) last.set(m.slot, m)
  stats.marks += done.length
  const st = fs.statSync(`${MNT}/big`)
  if (st.size !== BIG) return fail(iter, `big: size ${st.size}, expected ${BIG}`)
  const fd = fs.openSync(`${MNT}/big`, 'r')
  const buf = Buffer.allocUnsafe(MiB)
  try {
    for (let slot = 0; slot < BIG / MiB; slot++) {
      const n = fs.readSync(fd, buf, 0, MiB, slot * MiB)
      const want = genBytes(BIG_SEED + slot, MiB)
      if (n !== MiB) return fail(iter, `big: short read at slot ${slot}`)
      const region = buf.subarray(MARK_OFFSET, MARK_OFFSET + MARK_LEN)
      const allowed = [last.has(slot) ? markBytes(last.get(slot).iter, last.get(slot).seq, slot) : want.subarray(MARK_OFFSET, MARK_OFFSET + MARK_LEN)]
      if (pending?.slot === slot) allowed.push(markBytes(pending.iter, pending.seq, slot))
      buf.copy(want, MARK_OFFSET, MARK_OFFSET, MARK_OFFSET + MARK_LEN)
      if (!buf.subarray(0, MiB).equals(want)) return fail(iter, `big: slot ${slot} differs from the lower outside its mark (a partial copy-up?)`)
      if (!allowed.some(x => x.equals(region))) {
        return fail(iter, `big: slot ${slot} holds "${region.toString('latin1').replace(/[^ -~]/g, '?')}", expected ${last.has(slot) ? 'the last fsync\'d mark' : 'lower bytes'}`)
      }
    }
  } finally {
    fs.closeSync(fd)
  }
}

function checkDirs(iter, w) {
  const { done, pending } = readJournal(w.journal)
  for (const op of done) model.dirs[op.pair] = op.to
  for (const [pair, [x, y]] of Object.entries(pairs)) {
    const at = [x, y].filter(n => fs.existsSync(`${MNT}/${n}`))
    const expect = pending?.pair === pair ? [pending.from, pending.to] : [model.dirs[pair]]
    if (at.length !== 1 || !expect.includes(at[0])) {
      fail(iter, `directory ${pair}: found at ${at.join(' and ') || 'neither name'}, expected ${expect.join(' or ')}`)
      continue
    }
    model.dirs[pair] = at[0]
    for (const d of diffSnapshots(snapshot(`${MNT}/${at[0]}`), reference[pair], 'union', 'lowers')) fail(iter, `directory ${at[0]}: ${d}`)
  }
}

// ------------------------------------------------------------------ main
async function main() {
  if (!fs.existsSync(`${REPO}/dist/cli.js`)) return die2('dist/cli.js is missing: build first (npx tsc)')
  // A write cut short by the kill is recognised as a prefix of its data: the generator must agree.
  for (const n of [1, 2, 3, 5, 1135]) if (!genBytes(5, n + 7).subarray(0, n).equals(genBytes(5, n))) return die2('genBytes is not prefix-stable')
  const t0 = Date.now()
  console.log(`crash-loop: seed ${a.seed}, big file ${a.bigMib} MiB, run dir ${run}`)
  await buildLowers()
  lowerHash = (await hashLayer(L1)) + (await hashLayer(L2))
  await takeReference()
  initModel()
  for (let i = 0; (a.iterations === undefined || i < a.iterations) && (a.seconds === undefined || Date.now() - t0 < a.seconds * 1000); i++) {
    try {
      await round(i)
    } catch (e) {
      fail(i, `round aborted: ${e.stack ?? e}`)
      await forceUnmount(MNT)
      await forceUnmount(KMNT)
      if (failures.length > 20) break
    }
  }
  const rm = [...stats.remountMs].sort((x, y) => x - y)
  const count = o => PHASES.concat('any', 'fallback').filter(p => o[p]).map(p => `${p} ${o[p]}`).join(', ') || '-'
  console.log([
    `crash-loop summary: seed ${a.seed}, ${stats.iterations} iterations in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    `  kills: ${stats.iterations}; aimed at: ${count(stats.aimed)}`,
    `  in flight at the kill: ${count(stats.inFlight)}`,
    `  big-file copy-ups completed before the kill: ${stats.bigCopiedUp} of ${stats.iterations}`,
    `  crash leftovers in the workdir: ${stats.workdirLeft} rounds (at most ${stats.workdirLeftMax} entries), all cleared by the remount`,
    `  mount still listed when the daemon had died: ${stats.deadMountSeen} rounds; remount ms median ${rm[rm.length >> 1] ?? '-'} max ${rm[rm.length - 1] ?? '-'}`,
    `  verified: ${stats.doneOps} completed ops (${stats.fsyncedWrites} fsync'd writes), ${stats.marks} fsync'd marks in the big file; ` +
      `op in flight at the kill found not done ${stats.pendingBefore}, done ${stats.pendingAfter}, partly written ${stats.pendingPartial}`,
    `  failures: ${failures.length}`,
  ].join('\n'))
  process.exit(failures.length ? 1 : 0)
}

function die2(msg) {
  process.stderr.write(`crash-loop: ${msg}\n`)
  process.exit(2)
}

await main()
