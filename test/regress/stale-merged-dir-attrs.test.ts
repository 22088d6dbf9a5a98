// Regression (found by users): a copy-up into a directory that already had an upper directory
// added an entry to it, put its times back and maybe marked it impure, so its size (on tmpfs,
// where a directory's size grows with its entries) and its ctime changed; the kernel, which
// had its attributes cached for a day, was not told. `stat` of the merged directory then gave
// the old size and ctime until something refreshed them, and `tar -cf x.tar DIR` right after
// such a change stat'ed DIR stale, read it (which refreshes the attributes) and stopped with
// "DIR: file changed as we read it", exit 1. Kernel overlayfs stats the upper directory on
// every call. A copy-up now invalidates its parent's attributes too.
import t from 'tap'
import { join } from 'node:path'
import { writeTree } from '../helpers/layers.js'
import { SCRATCH_FS_TYPES } from '../helpers/scratch-fs.js'
import { syscalls, type Op } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

const FIELDS = ['size', 'mtime_ns', 'ctime_ns']

for (const fs of SCRATCH_FS_TYPES) {
  t.test(`a merged dir's size and ctime after a copy-up into it (${fs} upper)`, async t => {
    const tw = await twinMounts(t, ({ lowers }) => {
      writeTree(lowers[0]!, { d: { f1: '1\n', f2: '2\n', f3: '3\n' } })
    }, { fs })
    const append = (path: string): Op => ({ op: 'pwritefile', path, flags: 'O_WRONLY|O_APPEND', data: 'more\n' })
    const [lf, ov] = await tw.both(s => syscalls(s.mnt, [
      append('d/f1'), // d gets its upper dir
      { op: 'lstat', path: 'd', fields: FIELDS }, // the kernel caches d's attributes
      { op: 'lstat', path: join(s.upper!, 'd'), fields: FIELDS },
      append('d/f2'), // a copy-up into d
      { op: 'lstat', path: 'd', fields: FIELDS },
      { op: 'lstat', path: join(s.upper!, 'd'), fields: FIELDS },
    ]))
    const value = (r: typeof lf, i: number): unknown => (r[i] as { value?: unknown }).value
    // The daemon's lstat at the cached stat asked for the ctime, so the next change gets a new
    // one (multigrain timestamps, tmpfs and ext4 since 6.13): the upper dir did change. (The
    // kernel's own copy-up sets the dir's ctime from the new file's coarse one: it may not.)
    t.notSame(value(lf, 2), value(lf, 5), 'layerfs: the copy-up changed the upper dir (else this test would show nothing)')
    t.same(value(ov, 4), value(ov, 5), 'kernel: stat of the merged dir is its upper dir\'s')
    t.same(value(lf, 4), value(lf, 5), 'layerfs: stat of the merged dir is its upper dir\'s')

    // What users saw: tar of the directory right after a change below it.
    await tw.same(t, 'stat d >/dev/null && echo more >> d/f3 && tar -cf $OUT/d.tar d', { code: 0 })
    await tw.sameTree(t)
    await tw.sameUpper(t)
    await tw.lowersUnchanged(t)
  })
}
