// statx(2) with STATX_BTIME: the kernel's FUSE sends STATX (7.39) and shows what it answers;
// kernel overlayfs gives the birth time of the real object (the upper copy's once there is one:
// a copy-up is a new file). lowlevel.c hands STATX over as the GETATTR it starts as (or answers
// it from an open upper file's descriptor), JS adds the birth time. On both sides, each path's
// birth time through the mount must be its own real object's.
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { OK, syscalls, type Op, type SysResult } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

const build = (d: { lowers: string[] }): void =>
  writeTree(d.lowers[0]!, { a: 'a\n', b: 'b\n', d: { x: 'x\n' }, ld: { y: 'y\n' }, l: { type: 'symlink', target: 'a' } })

t.test('birth times are the real objects\', lower and upper, by path and by open file', async t => {
  const tw = await twinMounts(t, build, { lowers: 1 })
  // Changes first: b copied up (chmod), d copied up (a new name in it), n new.
  await tw.sameSys(t, [
    { op: 'chmod', path: 'b', mode: 0o600 },
    { op: 'writefile', path: 'd/new', data: 'new\n' },
    { op: 'writefile', path: 'n', data: 'n\n' },
  ], [OK, OK, OK])
  // Where each union path's object is, on each side: [union path, layer, real path].
  const where: [string, 'lower' | 'upper', string][] = [
    ['a', 'lower', 'a'], ['ld', 'lower', 'ld'], ['l', 'lower', 'l'], ['.', 'upper', '.'],
    ['b', 'upper', 'b'], ['d', 'upper', 'd'], ['d/new', 'upper', 'd/new'], ['n', 'upper', 'n'],
  ]
  for (const side of tw.sides) {
    const through: Op[] = [
      ...where.map(([p]) => ({ op: 'btime', path: p })),
      // by descriptor: an upper file open for writing (answered in C) and a lower one
      { op: 'open', path: 'n', flags: 'O_RDWR', as: 'w' },
      { op: 'btime', fd: 'w' },
      { op: 'close', fd: 'w' },
      { op: 'open', path: 'a', as: 'r' },
      { op: 'btime', fd: 'r' },
      { op: 'close', fd: 'r' },
    ]
    const got = await syscalls(side.mnt, through)
    const realOf = (layer: 'lower' | 'upper', p: string): string => `${layer === 'upper' ? side.upper! : side.lowers[0]!}/${p}`
    const real = await syscalls('/', [
      ...where.map(([, layer, p]) => ({ op: 'btime', path: realOf(layer, p) })),
      { op: 'btime', path: realOf('upper', 'n') },
      { op: 'btime', path: realOf('lower', 'a') },
    ])
    const expected: SysResult[] = [...real.slice(0, where.length), OK, real[where.length]!, OK, OK, real[where.length + 1]!, OK]
    t.same(got, expected, `${side.role}: each birth time is the real object's`)
    const known = real.filter(r => r.ok && Array.isArray((r as { value?: unknown }).value)).length
    // Where the scratch filesystem keeps none (no STATX_BTIME), the mount must show none either.
    if (known < real.length) t.comment(`${side.role}: ${real.length - known} of ${real.length} real objects have no birth time`)
  }
  await tw.sameTree(t)
  await tw.lowersUnchanged(t)
})
