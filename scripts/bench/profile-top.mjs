// node scripts/bench/profile-top.mjs FILE.cpuprofile [N]: where a V8 CPU profile's time went.
// Self time by function (name, file:line), then inclusive time of the top functions, in
// percent of all samples (idle and GC shown as V8 names them: (idle), (garbage collector)).
import fs from 'node:fs'
import path from 'node:path'

const [file, nArg] = process.argv.slice(2)
if (!file) {
  console.error('usage: node profile-top.mjs FILE.cpuprofile [N]')
  process.exit(2)
}
const N = Number(nArg ?? 25)
const prof = JSON.parse(fs.readFileSync(file, 'utf8'))
const nodes = new Map(prof.nodes.map(n => [n.id, n]))
const parent = new Map()
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const dt = prof.timeDeltas
const selfUs = new Map()
let total = 0
prof.samples.forEach((id, i) => {
  const d = Math.max(0, dt[i] ?? 0)
  selfUs.set(id, (selfUs.get(id) ?? 0) + d)
  total += d
})
const key = n => {
  const cf = n.callFrame
  const url = cf.url ? path.basename(cf.url.replace(/^file:\/\//, '')) : ''
  return `${cf.functionName || '(anonymous)'} ${url ? `${url}:${cf.lineNumber + 1}` : ''}`.trim()
}
const self = new Map()
const incl = new Map()
for (const [id, us] of selfUs) {
  const n = nodes.get(id)
  self.set(key(n), (self.get(key(n)) ?? 0) + us)
  // Inclusive: every distinct function on the stack gets the sample once.
  const seen = new Set()
  for (let x = id; x !== undefined; x = parent.get(x)) {
    const k = key(nodes.get(x))
    if (seen.has(k)) continue
    seen.add(k)
    incl.set(k, (incl.get(k) ?? 0) + us)
  }
}
const pct = us => ((100 * us) / total).toFixed(1).padStart(5)
const idle = self.get('(idle)') ?? 0
console.log(`${path.basename(file)}: ${(total / 1e6).toFixed(2)} s sampled, ${(100 * idle / total).toFixed(1)}% idle, busy ${((total - idle) / 1e6).toFixed(2)} s`)
console.log(`\nself time (% of all samples):`)
for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, N)) console.log(`${pct(us)}%  ${k}`)
console.log(`\ninclusive time (% of all samples):`)
for (const [k, us] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, N)) console.log(`${pct(us)}%  ${k}`)
