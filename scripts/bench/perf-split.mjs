#!/usr/bin/env node
// Where a daemon's CPU went in a `perf record -a -g` of a workload, from `perf script` text:
// kernel against user samples, the kernel's by system call, and the user ones by function
// (self) and by JS function (inclusive: the daemon run with --perf-basic-prof names JS frames).
// Used for native-notes/benchmarks.md ("Where the rest goes"). Example, layerfs and
// fuse-overlayfs the same way:
//
//   perf record -a -g -o /tmp/p.data -- sh -c 'git -C MNT/src status >/dev/null'
//   perf script -i /tmp/p.data > /tmp/p.txt
//   node scripts/bench/perf-split.mjs /tmp/p.txt 'layerfs'          # the daemon's thread name
//   node scripts/bench/perf-split.mjs /tmp/p.txt fuse-overlayfs
//
// A sample counts when its thread name starts with the second argument (layerfs's daemon
// thread is `layerfs MOUNTPOINT`; its V8 worker threads are `node`).
import fs from 'node:fs'

const [file, comm = 'layerfs'] = process.argv.slice(2)
if (!file) {
  console.error('usage: perf-split.mjs PERF-SCRIPT.txt [THREAD-NAME-PREFIX]')
  process.exit(2)
}

const count = (m, k, n = 1) => m.set(k, (m.get(k) ?? 0) + n)
const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n)
const sym = f => (f.split(/\s+/)[1] ?? '?').replace(/\+0x[0-9a-f]+$/, '')
const jsName = f => /JS:[*~^]?(\S+)/.exec(f)?.[1]

const split = { kernel: 0, user: 0 }
const syscalls = new Map()
const kernelByJs = new Map()
const userSelf = new Map()
const userJs = new Map()

function sample(head, frames) {
  if (!head.startsWith(comm)) return
  const kernel = frames.length > 0 && frames[0].includes('[kernel.kallsyms]')
  if (kernel) {
    split.kernel++
    const sc = frames.map(f => /(__x64_sys_\w+|__do_sys_\w+)/.exec(f)?.[1]).find(Boolean)
    count(syscalls, sc ?? `(no system call: ${sym(frames[0])})`)
    count(kernelByJs, frames.map(jsName).find(Boolean) ?? '(no JS frame)')
    return
  }
  split.user++
  count(userSelf, frames.length ? sym(frames[0]) : '?')
  for (const name of new Set(frames.map(jsName).filter(Boolean))) count(userJs, name)
}

let head
let frames = []
for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
  if (line === '') continue
  if (!/^\s/.test(line)) {
    if (head !== undefined) sample(head, frames)
    head = line
    frames = []
  } else frames.push(line.trim())
}
if (head !== undefined) sample(head, frames)

const total = split.kernel + split.user
console.log(`${comm}: ${total} samples, kernel ${split.kernel}, user ${split.user}`)
const show = (title, m, n) => {
  console.log(`\n${title}`)
  for (const [k, v] of top(m, n)) console.log(`${String(v).padStart(7)}  ${k}`)
}
show('kernel samples by system call', syscalls, 20)
show('kernel samples by the JS function that made the call', kernelByJs, 12)
show('user samples by function (self)', userSelf, 20)
show('user samples by JS function (inclusive)', userJs, 30)
