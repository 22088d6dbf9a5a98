// The kernel keeps a node for every inode it has looked up while it has memory to spare, so
// a walk of a big tree would make the daemon keep as many. Past LAYERFS_MAX_NODES (opt-in)
// the daemon asks the kernel to drop its least recently looked-up files
// (FUSE_NOTIFY_INVAL_ENTRY, from a thread of the addon), and the kernel forgets them. Here the
// cap is 200 and the tree 3,000 names: the kernel forgets thousands, and everything still
// answers as kernel overlayfs does: walks, stats, a file held open across the walks, changes,
// a process whose working directory is in the tree (getcwd() works: directories are never
// invalidated) and a bind mount on a directory of the tree (not detached).
import t from 'tap'
import { readFileSync, statSync } from 'node:fs'
import { writeTree } from '../helpers/layers.js'
import { twinMounts } from '../helpers/twin.js'

const DIRS = 30
const FILES = 100

/** The requests a daemon's log shows from byte `from` on (DEBUG=layerfs:request lines). */
function requestsSince(log: string, from: number): string[] {
  const text = readFileSync(log).subarray(from).toString()
  return [...text.matchAll(/layerfs:request (\w+) /g)].map(m => m[1]!)
}

t.test('past the node cap the kernel is made to forget, and nothing changes for a user', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    const tree: Record<string, Record<string, string>> = {}
    for (let d = 0; d < DIRS; d++) {
      const files: Record<string, string> = {}
      for (let f = 0; f < FILES; f++) files[`f${f}`] = `${d}/${f}\n`
      tree[`d${d}`] = files
    }
    writeTree(lowers[0]!, tree)
  }, { env: { LAYERFS_MAX_NODES: '200', DEBUG: 'layerfs:request' } })
  const log = tw.layerfs.log!
  const before = statSync(log).size
  // A file held open and a cwd inside the tree across the walks, then used.
  const script = [
    'set -e',
    'exec 3< d0/f0',
    'mkdir -p "$OUT/bind" && echo bound > "$OUT/bind/x" && mount --bind "$OUT/bind" "$MNT/d6"',
    '(cd "$MNT/d7" && sleep 2 && python3 -c "import os; print(os.getcwd())" > "$OUT/cwd") &',
    'cd d1',
    'find "$MNT" -printf "%P %y %m %s %n\\n" | sort | md5sum',
    'find "$MNT" -ls | wc -l',
    'cat "$MNT"/d*/f7 | md5sum',
    'echo changed >> "$MNT/d2/f3" && cat "$MNT/d2/f3"',
    'rm "$MNT/d3/f4" && ls "$MNT/d3" | wc -l',
    'find "$MNT" -printf "%P %y %m %s %n\\n" | sort | md5sum',
    'cat <&3',
    'ls | wc -l && cat f9',
    'wait && cat "$OUT/cwd"',
    'cat "$MNT/d6/x" && umount "$MNT/d6" && cat "$MNT/d6/f1"',
  ].join('\n')
  await tw.same(t, script, { code: 0 })
  const ops = requestsSince(log, before)
  const forgets = ops.filter(o => o === 'forget' || o === 'batch_forget').length
  t.ok(forgets >= 2000, `the kernel forgot nodes: ${forgets} FORGET requests for ${DIRS * FILES} names under a cap of 200`)
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
