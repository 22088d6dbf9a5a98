// Issue 12: the differential test in stacking mode (lib/stacking.ts). Container builds stack
// layers: after each step the upper becomes the top lower layer and a fresh upper starts. Here
// each seed's random ops (lib/generate.ts, profile 'stacking': directory renames of lower,
// merged and already renamed dirs, subtrees deleted and made again, writes in moved dirs,
// hard links) run in rounds on layerfs and on kernel overlayfs; after every round both sides
// push their upper down. Every round's calls, merged trees, uppers on disk and readdirs are
// compared; at the end the kernel mounts layerfs's whole stack and layerfs the kernel's.
//
// Differences already understood (lib/known.ts) show as TODO; anything else fails. Longer
// hunts: scripts/fuzz/run --stacking.
import t from 'tap'
import { briefDifference } from './lib/engine.js'
import { generateStacked } from './lib/generate.js'
import { classifyStacked, KNOWN } from './lib/known.js'
import { runStacked } from './lib/stacking.js'

const SEEDS = Array.from({ length: 10 }, (_, i) => i + 1)
const ROUNDS = 8
const OPS = 25

t.test(`${SEEDS.length} seeds x ${ROUNDS} stacked layers x ${OPS} ops: layerfs does what kernel overlayfs does`, async t => {
  const cases = SEEDS.map(seed => ({ label: `seed ${seed}`, ...generateStacked(seed, ROUNDS, OPS) }))
  const outcomes = await runStacked(t, cases, { log: s => t.comment(s) })
  const seen = new Map<string, string[]>()
  for (const [k, oc] of outcomes.entries()) {
    const { unexplained, known } = classifyStacked(cases[k]!, oc)
    t.same(unexplained.map(briefDifference), [], `${oc.label}: the same calls, trees, uppers and final stacks, every round`, {
      replay: `scripts/fuzz/run --stacking --rounds ${ROUNDS} --ops ${OPS} --seed ${SEEDS[k]} (minimizes it)`,
    })
    for (const [id, ds] of known) seen.set(id, [...(seen.get(id) ?? []), `${oc.label} (${ds.length})`])
  }
  for (const k of KNOWN) {
    const where = seen.get(k.id)
    if (where) t.fail(`known ${k.kind}: ${k.id}`, { todo: `${k.what} [${where.join(', ')}]${k.regress ? `; pinned by ${k.regress}` : ''}` })
  }
})
