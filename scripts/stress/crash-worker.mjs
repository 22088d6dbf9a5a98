// One workload process of the crash loop (crash-loop.mjs starts several per iteration, then
// kills the daemon under them). It works in the mount through relative paths from its cwd (the
// mount root), so once the mount is gone every call fails with ENOTCONN instead of landing in
// the directory under it. Every operation is written to its journal (outside the mount) before
// it starts ("b") and after it returned ("d"): the driver knows what must have survived.
// stdout: "P <phase> b|e" around the phases the driver aims its kill at; "G" when the mount
// went away (the expected end); "E <op> <path> <code> <message>" for any other error.
import fs from 'node:fs'
import { MARK_OFFSET, MiB, genBytes, markBytes, rng } from './lib.mjs'

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const r = rng(cfg.seed)
const journal = fs.openSync(cfg.journal, 'a')
/** A dead mount answers these; a request in flight when the daemon died gets ECONNABORTED. */
const GONE = new Set(['ENOTCONN', 'ECONNABORTED'])
let opId = 0

const say = line => fs.writeSync(1, line + '\n')
const phase = (name, edge) => say(`P ${name} ${edge}`)
const record = obj => fs.writeSync(journal, JSON.stringify(obj) + '\n')
const nap = ms => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/** Run one journaled step: the journal says begun before it starts and done after it returned. */
function step(entry, fn) {
  const id = ++opId
  record({ b: id, ...entry })
  fn()
  record({ d: id })
}

// ------------------------------------------------------------------ big: copy-up, fsync'd marks
function big() {
  const slots = Math.floor(cfg.bigSize / MiB)
  let fd
  for (let seq = 0; ; seq++) {
    if (fd === undefined) {
      phase('copy-up', 'b')
      fd = fs.openSync('big', fs.constants.O_RDWR)
      phase('copy-up', 'e')
    }
    const slot = r.int(slots)
    const mark = markBytes(cfg.iter, seq, slot)
    step({ op: 'mark', slot, iter: cfg.iter, seq }, () => {
      phase('fsync-write', 'b')
      fs.writeSync(fd, mark, 0, mark.length, slot * MiB + MARK_OFFSET)
      fs.fsyncSync(fd)
      phase('fsync-write', 'e')
    })
    if (seq % 16 === 15) {
      fs.closeSync(fd)
      fd = undefined
    }
    nap(r.int(15))
  }
}

// ------------------------------------------------------------------ rename: lower/merged dirs
function renameDirs() {
  const where = { ...cfg.dirs }
  for (;;) {
    const pair = r.pick(Object.keys(where))
    const [a, b] = cfg.pairs[pair]
    const from = where[pair]
    const to = from === a ? b : a
    step({ op: 'rdir', pair, from, to }, () => {
      phase('dir-rename', 'b')
      fs.renameSync(from, to)
      phase('dir-rename', 'e')
    })
    where[pair] = to
    const n = fs.readdirSync(to).length
    if (n !== cfg.counts[pair]) say(`E readdir ${to} EBADCONTENT ${n} entries after the rename, expected ${cfg.counts[pair]}`)
    nap(r.int(30))
  }
}

// ------------------------------------------------------------------ flood: creates, deletes, renames
const lenOf = state => (Array.isArray(state) ? state.reduce((n, s) => n + s.n, 0) : 0)

/**
 * Names owned by this worker, each absent (null), a file (segments: {s: seed, n} generated
 * bytes or {l: lower path, n} the lower's bytes) or an empty directory ('D').
 */
function flood(appendOnly) {
  const state = { ...cfg.states }
  const names = Object.keys(state)
  if (!appendOnly) phase('flood', 'b')
  for (;;) {
    const name = r.pick(names)
    const st = state[name]
    const choices = []
    if (appendOnly) choices.push('append')
    else if (st === null) choices.push('write', 'write', 'mkdir')
    else if (st === 'D') choices.push('rmdir')
    else choices.push('write', 'append', 'unlink', 'unlink', 'rename')
    const op = r.pick(choices)
    const seed = r.int(2 ** 31)
    if (op === 'write' || op === 'append') {
      const n = r.chance(0.2) ? 0 : 1 + r.int(op === 'append' ? 4096 : 48 * 1024)
      const seg = { s: seed, n }
      const after = op === 'write' ? [seg] : [...st, seg]
      step({ op, names: [name], before: [st], after: [after], minLen: op === 'write' ? 0 : lenOf(st) }, () => {
        if (appendOnly) phase('fsync-write', 'b')
        const fd = fs.openSync(name, op === 'write' ? 'w' : 'a')
        try {
          if (n > 0) fs.writeSync(fd, genBytes(seed, n))
          fs.fsyncSync(fd)
        } finally {
          fs.closeSync(fd)
        }
        if (appendOnly) phase('fsync-write', 'e')
      })
      state[name] = after
    } else if (op === 'unlink' || op === 'rmdir') {
      step({ op, names: [name], before: [st], after: [null] }, () => (op === 'unlink' ? fs.unlinkSync(name) : fs.rmdirSync(name)))
      state[name] = null
    } else if (op === 'mkdir') {
      step({ op, names: [name], before: [st], after: ['D'] }, () => fs.mkdirSync(name, 0o755))
      state[name] = 'D'
    } else {
      const to = r.pick(names.filter(x => x !== name && state[x] !== 'D'))
      step({ op, names: [name, to], before: [st, state[to]], after: [null, st] }, () => fs.renameSync(name, to))
      state[to] = st
      state[name] = null
    }
    if (appendOnly) nap(r.int(10))
  }
}

/** statfs f_type of a FUSE filesystem. */
const FUSE_SUPER_MAGIC = 0x65735546

process.chdir(cfg.mnt)
try {
  // On the mount, not on the directory under it, else the work would land on the host.
  if (fs.statfsSync('.').type !== FUSE_SUPER_MAGIC) throw Object.assign(new Error('not on the mount'), { code: 'ENOTCONN' })
  // Ready; wait for the driver's go, so that all workers start together.
  say('R')
  fs.readSync(0, Buffer.alloc(3))
  if (cfg.kind === 'big') big()
  else if (cfg.kind === 'rename') renameDirs()
  else if (cfg.kind === 'flood') flood(false)
  else if (cfg.kind === 'append') flood(true)
  else throw new Error(`unknown kind ${cfg.kind}`)
} catch (e) {
  if (GONE.has(e.code)) {
    say('G')
    process.exit(0)
  }
  say(`E ${e.syscall ?? '-'} ${e.path ?? '-'} ${e.code ?? '-'} ${String(e.message).replace(/\n/g, ' ')}`)
  process.exit(1)
}
