// The differential fuzzer for long hunts: any number of seeds, each a random op sequence run on
// layerfs and on kernel overlayfs over identical layers (test/differential/lib). Prints every
// failing seed with its differences, minimized (delta debugging) to a short op list that still
// fails the same way, and writes each as JSON (replayable with --replay).
//
//   scripts/fuzz/run [--seeds N] [--from S] [--ops 200] [--more 40] [--batch 30] [--jobs 4]
//                    [--no-minimize] [--out DIR] [--seed S,...]
//   scripts/fuzz/run --stacking [--rounds 8] [--ops 25] [--mix stacking|classic] ...
//                    (lib/stacking.ts: --ops per round; each round's upper becomes the top
//                    lower layer of the next; --mix classic: the first mounts' op mix)
//   scripts/fuzz/run --replay FILE.json [--minimize]   (an op list written by an earlier run)
//                    [--all-features | --no-lower-hardlinks | --no-setgid]   (lib/features.ts)
//                    [--metacopy]   (every mount with metacopy=on, both sides)
//                    [--strict]   (known differences, lib/known.ts, fail too)
//                    [--verbose]   (stacking: the progress of each run, timed)
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { TeardownHost } from '../../test/helpers/mount.js'
import { runCases, type Case, type CaseOutcome } from '../../test/differential/lib/engine.js'
import { ALL_FEATURES, type Features } from '../../test/differential/lib/features.js'
import { generate, generateStacked } from '../../test/differential/lib/generate.js'
import { classify, classifyStacked } from '../../test/differential/lib/known.js'
import { cutAfterFirstCallDiff, fails, minimize, minimizeStacked } from '../../test/differential/lib/minimize.js'
import { cutAfterFirstStackedCallDiff, runStacked, type StackedCase, type StackedOutcome } from '../../test/differential/lib/stacking.js'

interface Args {
  seeds: number[]
  ops: number
  more: number
  batch: number
  jobs: number
  /** Default: minimize failing seeds, not a replayed list. */
  minimize?: boolean
  out?: string
  replay?: string
  features: Features
  strict: boolean
  /** Stacking mode: this many rounds (layers) of `ops` ops each. */
  rounds?: number
  /** Progress of each run on stderr. */
  verbose: boolean
  /** Stacking: the op mix ('stacking', or 'classic': the first mounts' mix over the stacking fixture). */
  mix: 'stacking' | 'classic'
}

function parse(argv: string[]): Args {
  const a: Args = { seeds: [], ops: 200, more: 40, batch: 30, jobs: 4, features: {}, strict: false, verbose: false, mix: 'stacking' }
  let count = 100
  let from = 1
  const explicit: number[] = []
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!
    const v = (): string => {
      const x = argv[++i]
      if (x === undefined) throw new Error(`${k} needs a value`)
      return x
    }
    if (k === '--seeds') count = Number(v())
    else if (k === '--from') from = Number(v())
    else if (k === '--seed') explicit.push(...v().split(',').map(Number))
    else if (k === '--ops') a.ops = Number(v())
    else if (k === '--stacking') a.rounds ??= 8
    else if (k === '--rounds') a.rounds = Number(v())
    else if (k === '--mix') {
      const m = v()
      if (m !== 'stacking' && m !== 'classic') throw new Error('--mix is stacking or classic')
      a.mix = m
    }
    else if (k === '--more') a.more = Number(v())
    else if (k === '--batch') a.batch = Number(v())
    else if (k === '--jobs') a.jobs = Number(v())
    else if (k === '--no-minimize') a.minimize = false
    else if (k === '--minimize') a.minimize = true
    else if (k === '--out') a.out = v()
    else if (k === '--replay') a.replay = v()
    else if (k === '--strict') a.strict = true
    else if (k === '--verbose') a.verbose = true
    else if (k === '--all-features') a.features = { ...ALL_FEATURES }
    else if (k === '--no-lower-hardlinks') a.features.lowerHardLinks = false
    else if (k === '--no-setgid') a.features.setgid = false
    else if (k === '--metacopy') a.features.metacopy = true
    else if (k === '-h' || k === '--help') {
      console.log(readFileSync(new URL(import.meta.url), 'utf8').split('\n').filter(l => l.startsWith('//')).map(l => l.slice(3)).join('\n'))
      process.exit(0)
    } else throw new Error(`unknown argument ${k} (see --help)`)
  }
  a.seeds = explicit.length ? explicit : Array.from({ length: count }, (_, i) => from + i)
  if (a.rounds !== undefined && !argv.includes('--ops')) a.ops = 25
  return a
}

/** A teardown scope of our own (tap's t in the tests). */
function scope(): { host: TeardownHost; close: () => Promise<void> } {
  const fns: Array<() => unknown> = []
  return {
    host: { teardown: fn => void fns.push(fn) },
    close: async () => {
      for (const fn of fns.reverse()) {
        try {
          await fn()
        } catch (e) {
          console.error(`teardown: ${(e as Error).message}`)
        }
      }
    },
  }
}

/** Runs cases; unless --strict, each outcome keeps only the differences known.ts does not explain. */
async function runBatch(cases: Case[], a: Args): Promise<CaseOutcome[]> {
  const s = scope()
  try {
    const out = await runCases(s.host, cases, { jobs: a.jobs, features: a.features })
    if (a.strict) return out
    return out.map((oc, k) => {
      const { unexplained, known } = classify(cases[k]!, oc)
      for (const [id, ds] of known) knownSeen.set(id, (knownSeen.get(id) ?? 0) + ds.length)
      return { ...oc, diffs: unexplained }
    })
  } finally {
    await s.close()
  }
}

/** The stacking mode's runBatch. */
async function runStackedBatch(cases: StackedCase[], a: Args): Promise<StackedOutcome[]> {
  const s = scope()
  try {
    const t0 = Date.now()
    const log = a.verbose ? (x: string) => console.error(`  +${((Date.now() - t0) / 1000).toFixed(1)}s ${x}`) : undefined
    const out = await runStacked(s.host, cases, { jobs: a.jobs, features: a.features, ...(log ? { log } : {}) })
    if (a.strict) return out
    return out.map((oc, k) => {
      const { unexplained, known } = classifyStacked(cases[k]!, oc)
      for (const [id, ds] of known) knownSeen.set(id, (knownSeen.get(id) ?? 0) + ds.length)
      return { ...oc, diffs: unexplained }
    })
  } finally {
    await s.close()
  }
}

const knownSeen = new Map<string, number>()

const brief = (x: unknown): string => {
  const s = JSON.stringify(x)
  return s.length > 400 ? s.slice(0, 400) + '...' : s
}

function show(oc: { diffs: CaseOutcome['diffs'] }, max = 6): string {
  return oc.diffs.slice(0, max).map(d => {
    const x = d.detail
    const at = d.round !== undefined ? `${d.where} (round ${d.round})` : d.where
    if (typeof x === 'object' && 'index' in x && x.delta) return `    ${at} #${x.index} ${brief(x.op)}\n      differing entries (layerfs vs kernel): ${x.delta.slice(0, 800)}`
    if (typeof x === 'object' && 'index' in x) return `    ${at} #${x.index} ${brief(x.op)}\n      layerfs: ${brief(x.layerfs)}\n      kernel:  ${brief(x.overlay)}`
    if (typeof x === 'object') return `    ${at} ${x.path} ${x.field}: layerfs ${brief(x.layerfs)} kernel ${brief(x.overlay)}`
    return `    ${at} ${x.slice(0, 600)}`
  }).join('\n') + (oc.diffs.length > max ? `\n    ... ${oc.diffs.length - max} more` : '')
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2))
  if (a.rounds !== undefined || (a.replay && 'rounds' in JSON.parse(readFileSync(a.replay, 'utf8')))) return mainStacked(a)
  const out = a.out ?? mkdtempSync('/tmp/fuzz-out-')
  mkdirSync(out, { recursive: true })
  const t0 = Date.now()
  const el = (): string => `${((Date.now() - t0) / 1000).toFixed(0)}s`

  const failing: Array<{ name: string; c: Case; oc: CaseOutcome }> = []
  if (a.replay) {
    const c = JSON.parse(readFileSync(a.replay, 'utf8')) as Case & { features?: Features }
    if (c.features) a.features = { ...c.features, ...a.features }
    const rc: Case = { label: c.label ?? a.replay, ops: c.ops, more: c.more ?? [] }
    const [oc] = await runBatch([rc], a)
    if (oc!.diffs.length) failing.push({ name: `${basename(a.replay, '.json')}-replay`, c: rc, oc: oc! })
    else console.log(`PASS ${oc!.label} (${rc.ops.length}+${rc.more.length} ops)`)
    a.minimize ??= false
  } else {
    await runSeeds(a, seed => ({ label: `seed ${seed}`, ...generate(seed, a.ops, a.more, a.features) }), runBatch, failing, el)
  }

  printHistogram(failing)
  const summary: string[] = []
  for (const { name, c, oc } of failing) {
    const sig = oc.diffs[0]!.sig
    console.log(`\nFAIL ${name} (${c.ops.length}+${c.more.length} ops): ${oc.diffs.length} difference(s); first: ${sig}\n${show(oc)}`)
    let min = c
    if (a.minimize ?? true) {
      min = cutAfterFirstCallDiff(c, oc, sig)
      min = await minimize(min, sig, { batch: 40, host: scope, features: a.features, ...(a.strict ? {} : { classify }), log: s => console.error(`${el()} ${name}:${s}`) })
      const [check] = await runBatch([min], a)
      if (!check || !fails(check, sig)) console.log(`  (the minimized list did not fail again on its own: flaky?)`)
      else console.log(`  minimized to ${min.ops.length}+${min.more.length} ops, still: ${sig}\n${show(check, 4)}`)
    }
    const file = join(out, `${name}.json`)
    writeFileSync(file, JSON.stringify({ label: name, sig, features: a.features, ops: min.ops, more: min.more }, null, 1) + '\n')
    if (a.minimize ?? true) {
      console.log(`  ops (first mounts): ${JSON.stringify(min.ops)}`)
      if (min.more.length) console.log(`  ops (swapped mounts): ${JSON.stringify(min.more)}`)
    }
    console.log(`  written: ${file} (scripts/fuzz/run --replay ${file})`)
    summary.push(`${name}: ${sig} (${min.ops.length}+${min.more.length} ops)`)
  }
  if (knownSeen.size) console.log(`\nknown differences (lib/known.ts) seen and not counted: ${[...knownSeen].map(([k, n]) => `${k} x${n}`).join(', ')}`)
  console.log(`\n${a.replay ? `replay of ${a.replay}` : `${a.seeds.length} seeds x ${a.ops}+${a.more} ops`} in ${el()}: ${failing.length} failing${summary.length ? '\n  ' + summary.join('\n  ') : ''}`)
  process.exitCode = failing.length ? 1 : 0
}

/** The seeds in batches of a.batch, generated by `gen` and run by `run`; failing ones into `failing`. */
async function runSeeds<C, O extends { diffs: readonly unknown[] }>(a: Args, gen: (seed: number) => C,
  run: (cases: C[], a: Args) => Promise<O[]>, failing: Array<{ name: string; c: C; oc: O }>, el: () => string): Promise<void> {
  for (let i = 0; i < a.seeds.length; i += a.batch) {
    const seeds = a.seeds.slice(i, i + a.batch)
    const cases = seeds.map(gen)
    const outcomes = await run(cases, a)
    outcomes.forEach((oc, k) => {
      if (oc.diffs.length) failing.push({ name: `seed-${seeds[k]}`, c: cases[k]!, oc })
    })
    console.error(`${el()} seeds ${seeds[0]}..${seeds[seeds.length - 1]}: ${outcomes.filter(o => o.diffs.length).length} failing`)
  }
}

/** Each kind of difference (its signature) with the failing seeds that show it, most common first. */
function printHistogram(failing: ReadonlyArray<{ name: string; oc: { diffs: ReadonlyArray<{ sig: string }> } }>): void {
  const histogram = new Map<string, string[]>()
  for (const { name, oc } of failing) for (const sig of new Set(oc.diffs.map(d => d.sig))) histogram.set(sig, [...(histogram.get(sig) ?? []), name])
  if (histogram.size) {
    console.log("\nkinds of difference (the failing seeds showing each):")
    for (const [sig, seeds] of [...histogram].sort((x, y) => y[1].length - x[1].length)) console.log(`  ${String(seeds.length).padStart(4)}  ${sig}  (${seeds.slice(0, 12).join(' ')}${seeds.length > 12 ? ' ...' : ''})`)
  }
}

/** The stacking mode: the same flow, a case being a list of rounds. */
async function mainStacked(a: Args): Promise<void> {
  const out = a.out ?? mkdtempSync('/tmp/fuzz-out-')
  mkdirSync(out, { recursive: true })
  const t0 = Date.now()
  const el = (): string => `${((Date.now() - t0) / 1000).toFixed(0)}s`
  const opCount = (c: StackedCase): string => c.rounds.map(r => r.length).join('+')

  const failing: Array<{ name: string; c: StackedCase; oc: StackedOutcome }> = []
  if (a.replay) {
    const c = JSON.parse(readFileSync(a.replay, 'utf8')) as StackedCase & { features?: Features }
    if (c.features) a.features = { ...c.features, ...a.features }
    const rc: StackedCase = { label: c.label ?? a.replay, rounds: c.rounds }
    const [oc] = await runStackedBatch([rc], a)
    if (oc!.diffs.length) failing.push({ name: `${basename(a.replay, '.json')}-replay`, c: rc, oc: oc! })
    else console.log(`PASS ${oc!.label} (${opCount(rc)} ops in ${rc.rounds.length} rounds)`)
    a.minimize ??= false
  } else {
    const rounds = a.rounds!
    await runSeeds(a, seed => ({ label: `seed ${seed}`, ...generateStacked(seed, rounds, a.ops, a.features, a.mix) }), runStackedBatch, failing, el)
  }

  printHistogram(failing)
  const summary: string[] = []
  for (const { name, c, oc } of failing) {
    const sig = oc.diffs[0]!.sig
    console.log(`\nFAIL ${name} (${opCount(c)} ops): ${oc.diffs.length} difference(s); first: ${sig}\n${show(oc)}`)
    let min = c
    if (a.minimize ?? true) {
      min = cutAfterFirstStackedCallDiff(c, oc, sig)
      min = await minimizeStacked(min, sig, { batch: 40, host: scope, features: a.features, ...(a.strict ? {} : { classify: classifyStacked }), log: s => console.error(`${el()} ${name}:${s}`) })
      const [check] = await runStackedBatch([min], a)
      if (!check || !fails(check, sig)) console.log(`  (the minimized list did not fail again on its own: flaky?)`)
      else console.log(`  minimized to ${opCount(min)} ops in ${min.rounds.length} round(s), still: ${sig}\n${show(check, 4)}`)
    }
    const file = join(out, `${name}.json`)
    writeFileSync(file, JSON.stringify({ label: name, sig, features: a.features, rounds: min.rounds }, null, 1) + '\n')
    if (a.minimize ?? true) min.rounds.forEach((ops, r) => console.log(`  round ${r + 1}: ${JSON.stringify(ops)}`))
    console.log(`  written: ${file} (scripts/fuzz/run --replay ${file})`)
    summary.push(`${name}: ${sig} (${opCount(min)} ops)`)
  }
  if (knownSeen.size) console.log(`\nknown differences (lib/known.ts) seen and not counted: ${[...knownSeen].map(([k, n]) => `${k} x${n}`).join(', ')}`)
  console.log(`\n${a.replay ? `replay of ${a.replay}` : `${a.seeds.length} seeds x ${a.rounds} rounds x ${a.ops} ops`} in ${el()}: ${failing.length} failing${summary.length ? '\n  ' + summary.join('\n  ') : ''}`)
  process.exitCode = failing.length ? 1 : 0
}

main().catch(e => {
  console.error(e)
  process.exitCode = 2
})
