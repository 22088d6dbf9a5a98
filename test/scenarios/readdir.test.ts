// Readdir merges: upper then lowers, each name once, whiteouts hidden, opaque dirs stop the
// merge, a file hides a dir below it; d_ino equals st_ino; . and .. are there; a listing in
// progress stays consistent while entries are removed; big merged dirs. Against the kernel.
import t from 'tap'
import { sampleLowers, writeTree } from '../helpers/layers.js'
import { OK, syscalls, val, type SysResult } from '../helpers/syscalls.js'
import type { RunResult } from '../helpers/run.js'
import { type Twin, twinMounts } from '../helpers/twin.js'

type Dirent = { name: string; d_ino: number; type: string }
const entries = (r: SysResult | undefined): Dirent[] => ((r && 'ok' in r ? r.value : []) as Dirent[])
const names = (r: SysResult | undefined): string[] => entries(r).map(e => e.name).sort()

/**
 * Lists big/ with os.scandir on both sides, unlinking every name whose number is a multiple of
 * 3 as soon as it is seen (as rm -r does); prints how many names were seen, how many distinct,
 * and how many are left. What is removed depends on the name only, not on the listing's order.
 */
function listRemovingEveryThird(tw: Twin): Promise<[RunResult, RunResult]> {
  const script = `import os
seen = []
with os.scandir('big') as it:
    for e in it:
        seen.append(e.name)
        if int(e.name.split('-')[1]) % 3 == 0:
            os.unlink(os.path.join('big', e.name))
print(len(seen), len(set(seen)), len(os.listdir('big')))`
  return tw.sh(`python3 -c "${script.replace(/"/g, '\\"')}"`)
}

t.test('each name once, whiteouts hidden, opaque stops the merge', async t => {
  const tw = await twinMounts(t, d => sampleLowers(d.lowers), { lowers: 2 })
  // Use the upper through the mount (a hand-made upper lacks the kernel's origin/impure
  // records, and then even the kernel's d_ino and st_ino disagree): a copied-up file, a
  // whiteout of a lower1 name, an upper-only name.
  await tw.sameSys(t, [
    { op: 'writefile', path: 'merged/a0', data: 'a0 changed in upper\n' },
    { op: 'unlink', path: 'merged/a1' },
    { op: 'writefile', path: 'merged/up', data: 'upper only\n' },
  ], [OK, OK, OK])
  const dirs = ['.', 'merged', 'merged/sub', 'opq', 'only0', 'only1', 'only1/deep']
  const [lf, ov] = await tw.sys(dirs.map(path => ({ op: 'readdir', path })))
  const expected: Record<string, string[]> = {
    '.': ['bottom.txt', 'file-vs-dir', 'link0', 'merged', 'only0', 'only1', 'opq', 'shared.txt', 'top.txt'],
    merged: ['a0', 'sub', 'up'],
    'merged/sub': ['s0', 's1'],
    opq: ['visible'],
    only0: ['x'],
    only1: ['deep', 'y'],
    'only1/deep': ['z'],
  }
  for (const [i, dir] of dirs.entries()) {
    t.same(names(ov[i]), expected[dir], `kernel: readdir ${dir}`)
    t.same(names(lf[i]), names(ov[i]), `layerfs: readdir ${dir} lists each name once, as the kernel does`)
    t.same(entries(lf[i]).map(e => `${e.name}:${e.type}`).sort(), entries(ov[i]).map(e => `${e.name}:${e.type}`).sort(), `layerfs: d_type in ${dir}`)
  }
  // d_ino must be the st_ino a stat of the same name gives (find -inum, du and tar rely on it).
  for (const [side, res] of [[tw.layerfs, lf], [tw.overlay, ov]] as const) {
    const list = dirs.flatMap((dir, i) => entries(res[i]).map(e => ({ path: dir === '.' ? e.name : `${dir}/${e.name}`, d_ino: e.d_ino })))
    const stats = await syscalls(side.mnt, list.map(n => ({ op: 'lstat', path: n.path, fields: ['ino'] })))
    const bad = list.filter((n, i) => (stats[i] as { value?: { ino: number } }).value?.ino !== n.d_ino)
    t.same(bad.map(n => `${n.path} d_ino=${n.d_ino} st_ino=${JSON.stringify(stats[list.indexOf(n)])}`), [], `${side.role}: d_ino == st_ino for every entry`)
  }
  await tw.same(t, 'ls -a merged only1 | cat', { code: 0 })
})

t.test('a big merged dir, and removing entries while a listing is in progress', async t => {
  const many = (n: number, p: string) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${p}${i}`, `${i}\n`]))
  const tw = await twinMounts(t, d => {
    writeTree(d.lowers[1]!, { big: many(600, 'l1-') })
    writeTree(d.lowers[0]!, { big: { ...many(600, 'l0-'), ...Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`l1-${i}`, { type: 'whiteout' as const }])) } })
    writeTree(d.upper!, { big: many(300, 'u-') })
  }, { lowers: 2 })
  const [lf, ov] = await tw.sys([{ op: 'readdir', path: 'big' }])
  t.equal(names(ov[0]).length, 1400, 'kernel: 600 + 600 - 100 + 300 names')
  t.equal(entries(lf[0]).length, names(ov[0]).length, 'layerfs: as many entries (no duplicates)')
  t.same(names(lf[0]), names(ov[0]), 'layerfs: the same names')
  // A listing that removes some of what it has seen: nothing returned twice or lost.
  const [a, b] = await listRemovingEveryThird(tw)
  t.equal(b.stdout, '1400 1400 934\n', 'kernel: each name once while unlinking during the listing')
  t.equal(a.stdout, b.stdout, 'layerfs: each name once while unlinking during the listing', { stderr: a.stderr })
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})

// 5,000 names take many READDIRPLUS requests, with unlinks between them: removing names during
// the listing must neither skip nor repeat one (a fresh listing at each offset reached skipped
// 1,242 of them when tried): the open directory keeps its snapshot.
t.test('a listing of 5,000 names stays one snapshot while names are removed', async t => {
  const tw = await twinMounts(t, d => {
    writeTree(d.lowers[0]!, { big: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`name-${i + 1}`, `${i}\n`])) })
  })
  const [a, b] = await listRemovingEveryThird(tw)
  t.equal(b.stdout, '5000 5000 3334\n', 'kernel: each name once while a third of them go')
  t.equal(a.stdout, b.stdout, 'layerfs: each name once while a third of them go', { stderr: a.stderr })
  await tw.sameTree(t)
})

t.test('readdir of an emptied merged dir is empty and it can be removed', async t => {
  const tw = await twinMounts(t, d => sampleLowers(d.lowers), { lowers: 2 })
  await tw.sameSys(t, [
    { op: 'unlink', path: 'merged/a0' },
    { op: 'unlink', path: 'merged/a1' },
    { op: 'unlink', path: 'merged/sub/s0' },
    { op: 'unlink', path: 'merged/sub/s1' },
    { op: 'listdir', path: 'merged/sub' },
    { op: 'rmdir', path: 'merged/sub' },
    { op: 'listdir', path: 'merged' },
    { op: 'rmdir', path: 'merged' },
  ], [{ ok: true }, { ok: true }, { ok: true }, { ok: true }, val([]), { ok: true }, val([]), { ok: true }])
  await tw.sameTree(t)
  await tw.sameUpper(t)
})
