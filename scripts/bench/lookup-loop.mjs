#!/usr/bin/env node
// The JS cost of a LOOKUP without FUSE: the union and the lowlevel op table of a build driven
// in-process with a LOOKUP of every component of every path in a list, as the kernel sends
// them (each component once), a fresh union per round (page cache warm after the first).
// Prints microseconds a lookup per round. Used for native-notes/inode-core.md.
//
//   node scripts/bench/lookup-loop.mjs DIST LOWER LIST [ROUNDS] [SCRATCH]
//   DIST: a build's dist/ (to compare two builds, one at a time, alternating)
//   LIST: paths relative to LOWER, one a line (e.g. `cd LOWER && find src -mindepth 1`)
//   SCRATCH: where the empty upper and workdir go (default: a fresh dir under /tmp)
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const [dist, lower, list, roundsArg, scratchArg] = process.argv.slice(2)
if (!dist || !lower || !list) {
  console.error('usage: lookup-loop.mjs DIST LOWER LIST [ROUNDS] [SCRATCH]')
  process.exit(2)
}
const at = p => path.resolve(dist, p)
const { Union } = await import(at('union/union.js'))
const { LowLevelOps } = await import(at('fuse/ll-ops.js'))
const { IdMap } = await import(at('union/id-map.js'))
const paths = fs.readFileSync(list, 'utf8').split('\n').filter(Boolean)
const rounds = Number(roundsArg ?? 5)
const scratch = scratchArg ?? fs.mkdtempSync(path.join(os.tmpdir(), 'lookup-loop-'))
const noop = () => {}
try {
  for (let round = 0; round < rounds; round++) {
    const dir = path.join(scratch, `r${round}`)
    fs.mkdirSync(`${dir}/u`, { recursive: true })
    fs.mkdirSync(`${dir}/w`)
    const u = new Union({ lowerdirs: [path.resolve(lower)], upperdir: `${dir}/u`, workdir: `${dir}/w`, view: { ids: new IdMap({}) } })
    u.cleanWork()
    const ops = new LowLevelOps(u, { entry: 86400, attr: 86400, negative: 86400 })
    let last = 0
    ops.attach({ entry: (_req, nodeid) => { last = nodeid }, negative: () => { last = 0 }, err: noop, attr: noop, buf: noop, open: noop,
      create: noop, noCapability: noop, invalidateInode: noop, queueInvalidateEntry: () => true, xattrSize: noop, readlink: noop, statfs: noop })
    const known = new Map()
    let lookups = 0
    const t0 = process.hrtime.bigint()
    for (const p of paths) {
      let parent = 1
      let prefix = ''
      for (const name of p.split('/')) {
        prefix += '/' + name
        let id = known.get(prefix)
        if (id === undefined) {
          ops.handle({ op: 1, req: 1, ino: parent, fh: undefined, off: 0, size: 0, flags: 0, mode: 0, name, name2: undefined, ino2: 0,
            uid: 0, gid: 0, pid: 1, extra: 0 })
          lookups++
          known.set(prefix, (id = last))
        }
        if (id === 0) break
        parent = id
      }
    }
    const ns = Number(process.hrtime.bigint() - t0)
    console.log(`round ${round}: ${lookups} lookups in ${(ns / 1e6).toFixed(1)} ms: ${(ns / 1e3 / lookups).toFixed(2)} us each`)
  }
} finally {
  if (!scratchArg) fs.rmSync(scratch, { recursive: true, force: true })
}
