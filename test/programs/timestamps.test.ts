// Timestamps to the nanosecond through the programs that set them: touch -d on lower files
// (copy-up, then utimens), cp -p into, within and out of the mount, and tar x of a POSIX
// (pax) archive, whose headers carry nanoseconds, into a new dir and over lower files. Layerfs
// against kernel overlayfs; the kernel also checks the story's values.
import t from 'tap'
import { join } from 'node:path'
import { writeTree } from '../helpers/layers.js'
import { shOk } from '../helpers/run.js'
import { twinMounts } from '../helpers/twin.js'

// Times with nanoseconds that no clock gives by chance.
const T = {
  lower: '1400000000.111111111',
  src: '1500000000.123456789',
  srcDir: '1500000001.000000001',
  srcLink: '1500000002.999999999',
  touch: '1234567890.987654321',
  touchM: '1111111111.000000007',
  touchA: '1222222222.100000003',
}
const ns = (s: string): string => s.replace('.', '')

/**
 * mtime with nanoseconds, not following symlinks. atime only where a test sets it last: a
 * read updates it (relatime, with times this old), and cp and the kernel's copy-up read.
 */
const STAT = `stat -c '%n %.9Y'`
const ATIME = `stat -c '%n %.9X'`

t.test('nanosecond times through touch -d, cp -p and tar x', async t => {
  const tw = await twinMounts(t, async d => {
    writeTree(d.lowers[0]!, {
      lo: { a: 'a\n', b: 'b\n', c: 'c\n', e: 'e\n', f: 'f\n', over: 'old\n', dir: { inner: 'i\n' }, sym: { type: 'symlink', target: 'a' } },
    })
    writeTree(join(d.outside, 'src'), { f: 'src f\n', over: 'new\n', sub: { g: 'g\n' }, link: { type: 'symlink', target: 'f' } })
    await shOk(`set -e
      cd ${d.lowers[0]}/lo && touch -d @${T.lower} a b c e f over dir/inner dir && touch -h -d @${T.lower} sym .
      cd ${d.outside}/src && touch -d @${T.src} f over sub/g && touch -d @${T.srcDir} sub && touch -h -d @${T.srcLink} link
      tar --format=posix --sort=name -cf ${d.outside}/src.tar -C ${d.outside}/src f over sub link
    `)
  })
  const same = (script: string) => tw.same(t, script, { code: 0 })

  // touch -d on lower files: a copy-up, then both times, only mtime, only atime.
  await same(`touch -d @${T.touch} lo/a && touch -m -d @${T.touchM} lo/b && touch -a -d @${T.touchA} lo/c && touch -h -d @${T.touch} lo/sym && ${STAT} lo/a lo/b lo/c lo/sym && ${ATIME} lo/a lo/c lo/sym`)
  const [, k1] = await tw.sh(`${STAT} lo/a lo/b lo/c lo/sym && ${ATIME} lo/a lo/c lo/sym`)
  t.equal(k1.stdout, [
    `lo/a ${T.touch}`, `lo/b ${T.touchM}`, `lo/c ${T.lower}`, `lo/sym ${T.touch}`,
    `lo/a ${T.touch}`, `lo/c ${T.touchA}`, `lo/sym ${T.touch}`,
  ].join('\n') + '\n', 'kernel: touch -d set what it was asked to, to the ns')

  // cp -p: into the mount, within it (from a lower file, a lower tree), and out of it.
  await same(`cp -p $OUT/src/f in-f && cp -p lo/e lo/e-copy && cp -rp lo/dir dir-copy && cp -p lo/f $OUT/f-out && ${STAT} in-f lo/e-copy dir-copy dir-copy/inner $OUT/f-out | sed "s|$OUT|OUT|"`)
  const [, k2] = await tw.sh(`${STAT} in-f lo/e-copy dir-copy dir-copy/inner`)
  t.equal(k2.stdout, [`in-f ${T.src}`, `lo/e-copy ${T.lower}`, `dir-copy ${T.lower}`, `dir-copy/inner ${T.lower}`].join('\n') + '\n', 'kernel: cp -p kept the mtimes')

  // tar x of a pax archive: into a new dir, and over lower files (over: a copy-up, then times).
  await same(`mkdir x && tar -xpf $OUT/src.tar -C x && tar -xpf $OUT/src.tar -C lo && ${STAT} x/f x/sub x/sub/g x/link lo/over lo/sub lo/link && tar -dpf $OUT/src.tar -C x && tar -dpf $OUT/src.tar -C lo`)
  const [, k3] = await tw.sh(`stat -c '%n %.9Y' x/f x/sub x/link lo/over`)
  t.equal(k3.stdout, [`x/f ${T.src}`, `x/sub ${T.srcDir}`, `x/link ${T.srcLink}`, `lo/over ${T.src}`].join('\n') + '\n', 'kernel: tar x set the archive\'s mtimes, to the ns')

  // Whatever no program touched kept its lower time, and both trees agree to the ns.
  await tw.sameSys(t, [{ op: 'lstat', path: 'lo/dir/inner', fields: ['mtime_ns'] }], [{ ok: true, value: { mtime_ns: ns(T.lower) } }])
  await tw.sameTree(t, { mtime: true, ignoreMtime: [/^\.$/, /^lo$/, /^x$/] })
  await tw.sameUpper(t, { mtime: true, ignoreMtime: [/^\.$/, /^lo$/, /^x$/] })
  await tw.lowersUnchanged(t)
})
