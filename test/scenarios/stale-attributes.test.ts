// No stale attribute, ever (issue 13): after every kind of change beneath a merged directory
// (copy-up of data and of metadata, whiteout, opaque directory, rename of a file and of a
// directory, hard link, xattr, create, mkdir/rmdir, truncate, symlink), right away, one of:
//  - `tar -cf` of the whole tree exits 0 with nothing on stderr (a stale ctime or size read
//    before and fresh after makes tar say "file changed as we read it", exit 1), on both;
//  - a checker lstats every merged entry known before the change, by name and without listing
//    a directory first (a listing would refresh what the kernel holds: READDIRPLUS carries
//    attributes), so what the kernel cached since the walk of the step before is what it
//    answers, and compares it with the real object behind it, in the upper layer or the
//    lower one: mode, owner, size, times (not atime), and nlink where the union shows the
//    real one (not for directories: a merged directory shows 1). Then it walks the tree and
//    checks every entry again. Both sides, same checks.
// Each is the first thing after a change (either refreshes attributes), so each runs the
// steps on its own pair of mounts. After each step the merged trees of layerfs and kernel
// overlayfs are the same.
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { SCRATCH_FS_TYPES } from '../helpers/scratch-fs.js'
import { type Side, twinMounts } from '../helpers/twin.js'

/** Each step: what it changes, as a shell command run in the mount. */
const STEPS: readonly [string, string][] = [
  ['copy-up of data', 'echo more >> d/f1'],
  ['copy-up by chmod', 'chmod 600 d/f2'],
  ['copy-up by chown', 'chown 1:2 d/f3'],
  ['copy-up by utimes', 'touch -d @1000000000 d/sub/g1'],
  ['whiteout', 'rm d/sub/g2'],
  ['opaque directory', 'rm -r e && mkdir e && echo new > e/n'],
  ['rename of a file', 'mv d/f1 d/f1-moved'],
  ['rename of a lower directory', 'mv m m2'],
  ['rename of a file into another directory', 'mv d/f4 z/f4'],
  ['hard link of a lower file', 'ln z/w z/w-link'],
  ['hard link of an upper file', 'ln d/f3 d/f3-link'],
  ['copy-up of a lower hard link', 'echo x >> d/h1'],
  ['xattr on a lower file', 'python3 -c "import os; os.setxattr(\'d/sub/g1\', \'user.x\', b\'1\')"'],
  ['xattr on a lower directory', 'python3 -c "import os; os.setxattr(\'z\', \'user.y\', b\'2\')"'],
  ['xattr removed', 'python3 -c "import os; os.removexattr(\'d/sub/g1\', \'user.x\')"'],
  ['create', 'echo c > d/sub/new'],
  ['mkdir and rmdir', 'mkdir d/nd && rmdir d/nd'],
  ['truncate of a lower file', 'truncate -s 1 t'],
  ['symlink', 'ln -s n e/sl'],
  ['unlink of a copied-up file', 'rm d/f2'],
  ['rmdir of a merged directory', 'rm -r d/sub'],
]

/**
 * Prints a JSON report: every merged entry stat'ed (lstat through the mount) and compared with
 * the real object behind it, found in the upper layer, else in the lowers top-most first
 * (entries of a redirected directory's lower part are not found by name: skipped, counted).
 * First the paths listed in $KNOWN (the walk of the check before; those gone are skipped),
 * then a walk of the tree, whose paths it writes to $KNOWN for the next check.
 */
const CHECKER = String.raw`
import json, os, stat, sys
mnt, upper, lowers = os.environ['MNT'], os.environ['UPPER'], os.environ['LOWERS'].split(':')
def real(rel):
    for i, layer in enumerate([upper] + lowers):
        try:
            st = os.lstat(os.path.join(layer, rel))
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return None, None  # a whiteout: nothing below counts
        return st, 'upper' if i == 0 else 'lower'
    return None, None
checked, skipped, bad = 0, 0, []
def check(rel, when):
    global checked, skipped
    try:
        m = os.lstat(os.path.join(mnt, rel))
    except (FileNotFoundError, NotADirectoryError):
        return
    st, where = real(rel)
    if st is None or stat.S_IFMT(st.st_mode) != stat.S_IFMT(m.st_mode):
        skipped += 1
        return
    fields = ['st_mode', 'st_uid', 'st_gid', 'st_size', 'st_mtime_ns', 'st_ctime_ns']
    if not stat.S_ISDIR(m.st_mode):
        fields.append('st_nlink')
    for f in fields:
        if getattr(m, f) != getattr(st, f):
            bad.append('%s (%s): %s %d, its %s object %d' % (rel, when, f, getattr(m, f), where, getattr(st, f)))
    checked += 1
known = os.environ['KNOWN']
if os.path.exists(known):
    for rel in open(known).read().split('\0'):
        if rel:
            check(rel, 'cached')
paths = ['.']
for root, dirs, files in os.walk(mnt):
    for name in dirs + files:
        paths.append(os.path.relpath(os.path.join(root, name), mnt))
for rel in paths:
    check(rel, 'walked')
open(known, 'w').write('\0'.join(paths))
print(json.dumps({'checked': checked, 'skipped': skipped, 'bad': bad}))
`

interface Report {
  checked: number
  skipped: number
  bad: string[]
}

for (const fs of SCRATCH_FS_TYPES) for (const first of ['stat', 'tar'] as const) {
  t.test(`attributes are never stale: every change, then ${first === 'tar' ? 'tar' : 'a stat of every entry'} (${fs})`, async t => {
    const tw = await twinMounts(t, ({ lowers }) => {
      writeTree(lowers[0]!, {
        d: { f1: '1\n', f2: '2\n', f3: '3\n', f4: '4\n', h1: 'h\n', sub: { g1: 'g1\n', g2: 'g2\n' } },
        e: { x: 'x\n', y: { deep: 'deep\n' } },
        m: { k: 'k\n', kd: { kk: 'kk\n' } },
        z: { w: 'w\n' },
        t: 'a top file\n',
      })
      // A lower hard link pair (d/h1, d/h2).
      return import('node:fs').then(nfs => nfs.linkSync(`${lowers[0]}/d/h1`, `${lowers[0]}/d/h2`))
    }, { fs })
    const envFor = (s: Side): Record<string, string> => ({ UPPER: s.upper!, LOWERS: s.lowers.join(':'), KNOWN: `${s.outside}/known` })
    const check = async (step: string): Promise<void> => {
      const [lf, ov] = await tw.sh(`python3 -c "$CHECKER"`, { envFor, env: { CHECKER } })
      for (const [side, r] of [['layerfs', lf], ['kernel', ov]] as const) {
        t.equal(r.code, 0, `${step}: the checker ran on ${side} (${r.stderr.trim()})`)
        const report = JSON.parse(r.stdout) as Report
        t.same(report.bad, [], `${step}: ${side}: every merged entry's attributes are its real object's`)
        t.ok(report.checked > 10, `${step}: ${side}: ${report.checked} entries checked`)
      }
      t.equal((JSON.parse(lf.stdout) as Report).checked, (JSON.parse(ov.stdout) as Report).checked,
        `${step}: as many entries checked on both`)
    }
    await check('before any change') // also what puts every entry in the kernel's caches
    for (const [step, cmd] of STEPS) {
      await tw.same(t, cmd, { code: 0 })
      // Right after the change: nothing in between may refresh what the kernel holds.
      if (first === 'tar') await tw.same(t, 'tar -cf "$OUT/tree.tar" .', { code: 0 })
      await check(step)
      if (first === 'stat') await tw.same(t, 'tar -cf "$OUT/tree.tar" .', { code: 0 })
      await tw.sameTree(t, undefined, `${step}: the same merged tree`)
    }
    await tw.lowersUnchanged(t)
  })
}
