// One process of the soak (soak.mjs starts --procs of them on one mount). A random mix of
// operations on its own files and on names every process races for, until the deadline; each
// op's errno is checked against the set the race can legitimately give (soak.mjs explains
// them). stdout: "R" ready; "T n" progress; "E <op> <path> <code> <msg>" an unexpected result;
// "RESULT {json}" at the end, after it has checked that its own files hold what it wrote.
import fs from 'node:fs'
import { genBytes, rng } from './lib.mjs'

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const r = rng(cfg.seed)
const say = line => fs.writeSync(1, line + '\n')
const nap = ms => ms > 0 && Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
const res = { ops: 0, allowed: {}, latMax: {}, victims: [], mkdir: {}, rmdir: {}, moved: { ab: 0, ba: 0 }, cu: {}, cuOpens: 0 }
let lastTick = 0

/**
 * Run one operation; an errno in `allowed` is a legitimate outcome of the race (counted),
 * any other is reported. Returns fn's value, or undefined when it failed.
 */
function attempt(op, path, allowed, fn) {
  const t = performance.now()
  try {
    return fn()
  } catch (e) {
    if (allowed.includes(e.code)) {
      const k = `${op} ${e.code}`
      res.allowed[k] = (res.allowed[k] ?? 0) + 1
    } else {
      say(`E ${op} ${path} ${e.code ?? '-'} ${String(e.message).replace(/\n/g, ' ')}`)
    }
    return undefined
  } finally {
    const ms = performance.now() - t
    if (!(res.latMax[op] >= ms)) res.latMax[op] = Math.round(ms)
    res.ops++
    if (t - lastTick > 250) {
      lastTick = t
      say(`T ${res.ops}`)
    }
  }
}

const bad = (op, path, what) => say(`E ${op} ${path} EBADCONTENT ${what}`)
const lowerBytes = rel => fs.readFileSync(fs.existsSync(`${cfg.l1}/${rel}`) ? `${cfg.l1}/${rel}` : `${cfg.l2}/${rel}`)

// ------------------------------------------------------------------ own files: nobody else touches them
const own = {} // name -> Buffer | null
for (let k = 0; k < 8; k++) own[`shared/w${cfg.id}_${k}`] = null
const ownNames = Object.keys(own)

function ownOp() {
  const name = r.pick(ownNames)
  const cur = own[name]
  const op = cur === null ? 'write' : r.pick(['write', 'append', 'rename', 'unlink', 'verify', 'verify'])
  if (op === 'write' || op === 'append') {
    const data = genBytes(r.int(2 ** 31), r.int(32 * 1024))
    attempt(op, name, [], () => {
      const fd = fs.openSync(name, op === 'write' ? 'w' : 'a')
      try {
        fs.writeSync(fd, data)
        if (r.chance(0.1)) fs.fsyncSync(fd)
      } finally {
        fs.closeSync(fd)
      }
      own[name] = op === 'write' ? data : Buffer.concat([cur, data])
    })
  } else if (op === 'rename') {
    const to = r.pick(ownNames.filter(n => n !== name))
    attempt('rename', name, [], () => {
      fs.renameSync(name, to)
      own[to] = cur
      own[name] = null
    })
  } else if (op === 'unlink') {
    attempt('unlink', name, [], () => {
      fs.unlinkSync(name)
      own[name] = null
    })
  } else {
    const got = attempt('read', name, [], () => fs.readFileSync(name))
    if (got && !got.equals(cur)) bad('read', name, `${got.length} bytes, wrote ${cur.length}: a lost write`)
  }
}

function verifyOwn() {
  for (const [name, want] of Object.entries(own)) {
    const got = attempt('final-read', name, want === null ? ['ENOENT'] : [], () => fs.readFileSync(name))
    if (want === null && got !== undefined) bad('final-read', name, 'present, but this process removed it')
    if (want !== null && got !== undefined && !got.equals(want)) bad('final-read', name, `${got.length} bytes, wrote ${want.length}: a lost write`)
  }
}

// ------------------------------------------------------------------ own lower files in the moving directory
// Copied up (1 MiB and more: off the event loop) while other processes rename their
// directory: a copy-up must land where the file is now, never over a newer copy.
const moving = {} // k -> the mark written at its start, or undefined (still the lower's bytes)
const MARK = 16

/** The file's path now: the directory is at rdir-a or rdir-b. */
function movingPath(k) {
  const rel = `o${cfg.id}_${k}`
  for (let i = 0; i < 20; i++) {
    for (const d of ['rdir-a', 'rdir-b']) if (fs.existsSync(`${d}/${rel}`)) return `${d}/${rel}`
  }
  return undefined
}

function movingOp(final = false) {
  for (let k = 0; k < cfg.movingFiles; k++) {
    if (!final && k !== r.int(cfg.movingFiles)) continue
    const p = movingPath(k)
    if (!p) {
      bad('moving', `o${cfg.id}_${k}`, 'in neither rdir-a nor rdir-b, 20 times')
      continue
    }
    if (!final && r.chance(0.6)) {
      const mark = Buffer.from(`w${cfg.id} k${k} ${r.int(1e6)}`.padEnd(MARK, '.'))
      // ENOENT: the directory moved between the lookup and the open (or the copy-up's end).
      attempt('open-moving', p, ['ENOENT'], () => {
        const fd = fs.openSync(p, 'r+')
        try {
          fs.writeSync(fd, mark, 0, MARK, 0)
          moving[k] = mark
        } finally {
          fs.closeSync(fd)
        }
      })
    } else {
      const got = attempt(final ? 'final-read' : 'read-moving', p, final ? [] : ['ENOENT'], () => fs.readFileSync(p))
      if (!got) continue
      const want = Buffer.from(lowerBytes(`rdir-a/o${cfg.id}_${k}`))
      if (moving[k]) moving[k].copy(want, 0)
      if (!got.equals(want)) bad('read-moving', p, moving[k] ? `not what was written (${got.subarray(0, MARK).toString('latin1')}): a lost write` : 'not the lower bytes')
    }
  }
}

// ------------------------------------------------------------------ shared names: the races
function readdirStat(dir) {
  const names = attempt('readdir', dir, dir.startsWith('rdir') ? ['ENOENT'] : [], () => fs.readdirSync(dir))
  if (!names) return
  if (dir.startsWith('rdir') && names.length !== cfg.rdirCount + cfg.procs * cfg.movingFiles) bad('readdir', dir, `${names.length} entries, expected ${cfg.rdirCount}`)
  for (const n of names.slice(0, 40)) {
    attempt('stat', `${dir}/${n}`, ['ENOENT'], () => fs.lstatSync(`${dir}/${n}`))
  }
}

function readLower() {
  const rel = `shared/lower_${r.int(cfg.sharedLower)}`
  const got = attempt('read-lower', rel, [], () => fs.readFileSync(rel))
  if (got && !got.equals(lowerBytes(rel))) bad('read-lower', rel, 'not the lower bytes')
}

function victim() {
  const i = r.int(cfg.victims)
  attempt('unlink-victim', `victims/v${i}`, ['ENOENT'], () => {
    fs.unlinkSync(`victims/v${i}`)
    res.victims.push(i)
  })
}

function raceDir() {
  const name = `race/d${r.int(cfg.raceDirs)}`
  if (r.chance(0.5)) attempt('mkdir-race', name, ['EEXIST'], () => (fs.mkdirSync(name), (res.mkdir[name] = (res.mkdir[name] ?? 0) + 1)))
  else attempt('rmdir-race', name, ['ENOENT'], () => (fs.rmdirSync(name), (res.rmdir[name] = (res.rmdir[name] ?? 0) + 1)))
}

function moveDir() {
  const ab = r.chance(0.5)
  const [from, to] = ab ? ['rdir-a', 'rdir-b'] : ['rdir-b', 'rdir-a']
  attempt('rename-dir', from, ['ENOENT'], () => {
    fs.renameSync(from, to)
    res.moved[ab ? 'ab' : 'ba']++
  })
}

/**
 * Copy-up round k: every process opens the same lower file for writing at the same instant
 * (t0 + k * period), so the copy-ups collide; st_ino must be the same for all, and the data the
 * lower's.
 */
function copyUpRound(k) {
  const rel = `cu/f${String(k % cfg.cuFiles).padStart(4, '0')}`
  nap(cfg.t0 + k * cfg.period - Date.now())
  const flags = cfg.id % 2 ? fs.constants.O_WRONLY | fs.constants.O_APPEND : fs.constants.O_RDWR
  const ino = attempt('open-copy-up', rel, [], () => {
    const fd = fs.openSync(rel, flags)
    try {
      return fs.fstatSync(fd).ino
    } finally {
      fs.closeSync(fd)
    }
  })
  if (ino === undefined) return
  res.cuOpens++
  if ((res.cu[rel] ??= ino) !== ino) bad('open-copy-up', rel, `st_ino ${ino}, before ${res.cu[rel]}`)
  const got = attempt('read-copy-up', rel, [], () => fs.readFileSync(rel))
  if (got && !got.equals(lowerBytes(rel))) bad('read-copy-up', rel, `${got.length} bytes, not the lower's`)
}

// ------------------------------------------------------------------ main
const FUSE_SUPER_MAGIC = 0x65735546
process.chdir(cfg.mnt)
if (fs.statfsSync('.').type !== FUSE_SUPER_MAGIC) {
  say('E start . ENOTFUSE the working directory is not the mount')
  process.exit(1)
}
say('R')
const go = Buffer.alloc(64)
const n = fs.readSync(0, go)
Object.assign(cfg, JSON.parse(go.subarray(0, n).toString()))
const deadline = cfg.t0 + cfg.seconds * 1000
const ops = [
  [ownOp, 40], [() => readdirStat('shared'), 8], [() => readdirStat(r.chance(0.5) ? 'rdir-a' : 'rdir-b'), 3],
  [readLower, 6], [victim, 6], [raceDir, 6], [moveDir, 4], [movingOp, 6],
]
const total = ops.reduce((s, [, w]) => s + w, 0)
let round = Math.max(0, Math.ceil((Date.now() - cfg.t0) / cfg.period))
while (Date.now() < deadline) {
  if (Date.now() >= cfg.t0 + round * cfg.period - 5) {
    copyUpRound(round)
    round = Math.max(round + 1, Math.ceil((Date.now() - cfg.t0) / cfg.period))
    continue
  }
  let x = r.int(total)
  for (const [fn, w] of ops) {
    if ((x -= w) < 0) {
      fn()
      break
    }
  }
}
verifyOwn()
movingOp(true)
say(`RESULT ${JSON.stringify(res)}`)
