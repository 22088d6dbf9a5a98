// Regression (found by walking issue 3's errno list): a directory from a lower layer moved to
// another parent gets an absolute redirect, and the kernel refuses one longer than its
// redirect_max (256 bytes, the module's default) with EXDEV ("fall back to userspace move",
// ovl_get_redirect), after copying up the source and both parents. layerfs wrote any length.
// A move within the same parent (a relative redirect: one name) has no such limit.
import { lstatSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { OK, err, val } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

const A = 'a'.repeat(100)
const B = 'b'.repeat(100)
const C53 = 'c'.repeat(53) // /A/B/C53: 256 bytes, the longest redirect there is
const C54 = 'd'.repeat(54) // /A/B/C54: 257 bytes
const C54b = 'e'.repeat(54)

t.test('a redirect longer than 256 bytes: EXDEV, as the kernel gives', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[0]!, {
      [A]: { [B]: { [C53]: { f: 'f\n' }, [C54]: { g: 'g\n' }, [C54b]: { h: 'h\n' } } },
      other: {},
    })
  })
  const mtime = (p: string) => val({ mtime_ns: String(lstatSync(join(tw.overlay.lowers[0]!, p), { bigint: true }).mtimeNs) })
  await tw.sameSys(t, [
    { op: 'rename', path: `${A}/${B}/${C53}`, to: 'other/x' }, // 256 bytes: fine
    { op: 'rename', path: `${A}/${B}/${C54}`, to: 'other/y' }, // 257 bytes: EXDEV
    { op: 'lstat', path: `${A}/${B}/${C54}`, fields: ['mtime_ns'] }, // copied up, its times kept
    { op: 'rename', path: `${A}/${B}/${C54}`, to: `${A}/${B}/s` }, // same parent: a relative redirect
    { op: 'rename', path: `${A}/${B}/s`, to: 'other/y' }, // now absolute: still 257 bytes
    { op: 'rename', path: `${A}/${B}`, to: 'other/B' }, // its parent moves (a short redirect)
    { op: 'rename', path: `other/B/${C54b}`, to: 'other/z' }, // the lower path is still 257 bytes
    { op: 'rename', path: 'other/x', to: 'x' }, // already absolute: kept as it is
    { op: 'listdir', path: 'other' },
    { op: 'listdir', path: 'other/B' },
    { op: 'readfile', path: 'x/f' },
    { op: 'readfile', path: 'other/B/s/g' },
  ], [
    OK, err('EXDEV'), mtime(`${A}/${B}/${C54}`), OK, err('EXDEV'), OK, err('EXDEV'), OK,
    val(['B']), val([C54b, 's']), val('f\n'), val('g\n'),
  ])
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})

t.test('the refused move leaves the parents\' times alone', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    writeTree(lowers[0]!, { [A]: { [B]: { [C54]: { g: 'g\n' } } }, other: {} })
  })
  const mtime = (p: string) => val({ mtime_ns: String(lstatSync(join(tw.overlay.lowers[0]!, p), { bigint: true }).mtimeNs) })
  await tw.sameSys(t, [
    { op: 'rename', path: `${A}/${B}/${C54}`, to: 'other/y' },
    { op: 'lstat', path: A, fields: ['mtime_ns'] },
    { op: 'lstat', path: `${A}/${B}`, fields: ['mtime_ns'] },
    { op: 'lstat', path: `${A}/${B}/${C54}`, fields: ['mtime_ns'] },
    { op: 'lstat', path: 'other', fields: ['mtime_ns'] },
  ], [err('EXDEV'), mtime(A), mtime(`${A}/${B}`), mtime(`${A}/${B}/${C54}`), mtime('other')])
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
