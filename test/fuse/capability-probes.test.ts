// Before each write(2) the kernel asks the filesystem for the file's security.capability (a
// write drops it), and a FUSE mount never remembers the answer. lowlevel.c answers those
// probes itself for the nodes JS has told it have none (a file just created, a node just
// answered ENODATA), until a SETXATTR of the node ("capability probes"). Here: the probes
// stop reaching JS, and capabilities set, read and dropped by writes are still what kernel
// overlayfs shows, on a created file, a copied-up lower file and a lower file with a
// capability of its own; in both ways of reading requests.
import { readFileSync, statSync } from 'node:fs'
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { twinMounts } from '../helpers/twin.js'

/** cap_net_bind_service+ep, as setcap writes it (VFS_CAP_REVISION_2). */
const CAP = '0x0100000200040000000000000000000000000000'

/** The getxattr requests for security.capability a daemon's log shows from byte `from` on. */
function capProbesSince(log: string, from: number): number {
  return [...readFileSync(log).subarray(from).toString().matchAll(/layerfs:request getxattr \d+ security\.capability/g)].length
}

const MODES: [string, Record<string, string>][] = [
  ['the JS thread reads requests', {}],
  ['LAYERFS_FUSE_THREAD=1', { LAYERFS_FUSE_THREAD: '1' }],
]

for (const [label, env] of MODES) {
  t.test(label, async t => {
    const tw = await twinMounts(t, ({ lowers }) => {
      writeTree(lowers[0]!, {
        plain: 'lower\n',
        capped: { type: 'file', content: 'lower with a capability\n', xattrs: { 'security.capability': CAP } },
      })
    }, { env: { ...env, DEBUG: 'layerfs:request' } })
    const log = tw.layerfs.log!
    const show = 'for f in new plain capped; do getfattr -n security.capability -e hex "$f" 2>&1 | grep -v "^#" || true; done'

    // Many writes to a new file and to a copied-up lower file.
    let from = statSync(log).size
    await tw.same(t, 'set -e; printf a > new; for i in 1 2 3 4 5 6; do printf b >> new; printf c >> plain; done; cat new plain', { code: 0 })
    const probes = capProbesSince(log, from)
    t.ok(probes <= 1, `12 writes sent ${probes} capability probe(s) to JS (at most the lower file's first)`)

    // A capability set through the mount is seen, and the next write drops it, as on the kernel.
    const [set] = await tw.same(t, `set -e; setfattr -n security.capability -v ${CAP} new; setfattr -n security.capability -v ${CAP} plain; ${show}`, { code: 0 })
    t.equal(set.stdout.split('security.capability=0x01').length - 1, 3, 'the three files show their capability')
    from = statSync(log).size
    const [dropped] = await tw.same(t, `set -e; printf d >> new; printf d >> plain; printf d >> capped; ${show}; cat new plain capped`, { code: 0 })
    t.notMatch(dropped.stdout, /security\.capability=/, 'a write dropped each capability')
    t.ok(capProbesSince(log, from) >= 3, 'a file given a capability is probed by JS again')
    await tw.same(t, `set -e; for i in 1 2 3; do printf e >> new; printf e >> capped; done; ${show}`, { code: 0 })
    // Set again after the probes were answered in C: still seen, still dropped by a write.
    await tw.same(t, `set -e; setfattr -n security.capability -v ${CAP} new; ${show}; printf f >> new; ${show}`, { code: 0 })
    await tw.sameTree(t)
    await tw.sameUpper(t)
  })
}
