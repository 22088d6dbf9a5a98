// Issue 3: the differential test. Random operation sequences from fixed seeds run on layerfs
// and on kernel overlayfs (redirect_dir=on) over identical layers (two lowers in the kernel's
// format: overlapping names, whiteouts and an opaque dir in the upper lower layer; see
// lib/fixture.ts). Every call's outcome is compared (inode numbers as relations, explicit times
// to the ns: lib/compare.ts), then the merged trees and the upper layers on disk; then
// layerfs's upper is mounted under the kernel and the kernel's under layerfs, the views compared
// again (inode numbers too) and more ops run on the swapped mounts. The lowers must stay
// byte- and inode-identical. All seeds share one pair of mounts (lib/engine.ts).
//
// Differences already reported and understood are listed in lib/known.ts: they show as TODO,
// not as failures; anything else fails. Longer hunts: scripts/fuzz/run.
import t from 'tap'
import { briefDifference, runCases } from './lib/engine.js'
import { generate } from './lib/generate.js'
import { classify, KNOWN } from './lib/known.js'

const SEEDS = Array.from({ length: 30 }, (_, i) => i + 1)
const OPS = 200
const MORE = 40

t.test(`${SEEDS.length} seeds x ${OPS} ops (+${MORE} after swapping the uppers): layerfs does what kernel overlayfs does`, async t => {
  const cases = SEEDS.map(seed => ({ label: `seed ${seed}`, ...generate(seed, OPS, MORE) }))
  const outcomes = await runCases(t, cases, { log: s => t.comment(s) })
  const seen = new Map<string, string[]>()
  for (const [k, oc] of outcomes.entries()) {
    const { unexplained, known } = classify(cases[k]!, oc)
    t.same(unexplained.map(briefDifference), [], `${oc.label}: the same calls, trees, uppers and swapped views`, {
      replay: `scripts/fuzz/run --seed ${SEEDS[k]} (minimizes it)`,
    })
    for (const [id, ds] of known) seen.set(id, [...(seen.get(id) ?? []), `${oc.label} (${ds.length})`])
  }
  for (const k of KNOWN) {
    const where = seen.get(k.id)
    if (where) t.fail(`known ${k.kind}: ${k.id}`, { todo: `${k.what} [${where.join(', ')}]${k.regress ? `; pinned by ${k.regress}` : ''}` })
  }
})
