// metacopy=on (issue 13): the differential test's two modes with every mount, layerfs's and
// the kernel's, under metacopy=on (the kernel's with redirect_dir=on, as it requires). chmod,
// chown, utimensat, xattr changes, link and rename of a lower file copy up its metadata only;
// the generator's opens for write, truncates and reads then meet metacopy files, renamed
// (redirects on files), linked, and (stacking mode) pushed down into lower layers. Compared as
// in differential.test.ts and stacking.test.ts: calls, merged trees, the uppers on disk
// (trusted.overlay.metacopy and the files' redirects included), the swapped uppers and the
// crossed final stacks (each implementation reads the other's metacopy files), the lowers
// unchanged. Fewer seeds: the long hunts are scripts/fuzz/run's.
import t from 'tap'
import { briefDifference, runCases } from './lib/engine.js'
import { generate, generateStacked } from './lib/generate.js'
import { classify, classifyStacked } from './lib/known.js'
import { runStacked } from './lib/stacking.js'

const SEEDS = [101, 102, 103, 104, 105, 106]
const OPS = 150
const MORE = 40

t.test(`metacopy=on: ${SEEDS.length} seeds x ${OPS} ops (+${MORE} after swapping the uppers)`, async t => {
  const cases = SEEDS.map(seed => ({ label: `seed ${seed}`, ...generate(seed, OPS, MORE) }))
  const outcomes = await runCases(t, cases, { log: s => t.comment(s), metacopy: true })
  for (const [k, oc] of outcomes.entries()) {
    const { unexplained, known } = classify(cases[k]!, oc)
    t.same(unexplained.map(briefDifference), [], `${oc.label}: the same calls, trees, uppers and swapped views`)
    for (const [id, ds] of known) t.comment(`${oc.label}: known ${id} (${ds.length})`)
  }
})

const STACKED = [201, 202, 203]
const ROUNDS = 5
const ROUND_OPS = 25

t.test(`metacopy=on: ${STACKED.length} seeds x ${ROUNDS} stacked layers x ${ROUND_OPS} ops`, async t => {
  const cases = STACKED.map(seed => ({ label: `seed ${seed}`, ...generateStacked(seed, ROUNDS, ROUND_OPS) }))
  const outcomes = await runStacked(t, cases, { log: s => t.comment(s), metacopy: true })
  for (const [k, oc] of outcomes.entries()) {
    const { unexplained, known } = classifyStacked(cases[k]!, oc)
    t.same(unexplained.map(briefDifference), [], `${oc.label}: the same calls, trees, uppers and final stacks, every round`)
    for (const [id, ds] of known) t.comment(`${oc.label}: known ${id} (${ds.length})`)
  }
})
