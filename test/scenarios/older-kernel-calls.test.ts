// A mount whose daemon takes the paths of a kernel before 6.6 (LAYERFS_HOST_OLD_CALLS=1 in
// the host addon): xattrs through "/proc/self/fd/N/name" instead of *xattrat(2), chmod
// through an O_PATH fd instead of fchmodat2(2). A 6.1 kernel (or a seccomp profile that
// refuses the new calls) must give what kernel overlayfs gives, the same as this kernel does:
// copy-ups of files and directories (origin, impure marks, times), chmod and chown, xattrs
// set and removed, renames (redirects, whiteouts, opaque directories), links, symlinks.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { setXattr, writeTree } from '../helpers/layers.js'
import { twinMounts } from '../helpers/twin.js'

for (const [label, env] of [['the calls of a kernel before 6.6', { LAYERFS_HOST_OLD_CALLS: '1' }], ['the calls of this kernel', {}]] as const) {
  t.test(label, async t => {
    const tw = await twinMounts(t, ({ lowers }) => {
      writeTree(lowers[0]!, {
        a: { b: { c: { f: 'f\n', g: 'g\n' }, h: 'h\n' }, x: 'x\n' },
        d: { e: 'e\n', sub: { s: 's\n' } },
        l: { type: 'symlink', target: 'a/x' },
        hl: { type: 'hardlink', target: 'a/x' },
      })
      setXattr(`${lowers[0]!}/a/b/h`, 'user.kept', 'k')
    }, { env: { ...env, DEBUG: 'layerfs:mount' } })
    const log = readFileSync(tw.layerfs.log!, 'utf8')
    if (label.includes('before')) t.match(log, /host calls by fd: \*xattrat no \(procfs paths\), fchmodat2 no \(O_PATH fds\)/, 'the daemon uses the old calls')
    else t.match(log, /host calls by fd: /, 'the daemon says which calls it uses')
    await tw.same(t, [
      'chmod 640 a/b/c/f', // copy-up of a file three directories down
      'chown 12:34 a/b/h',
      'setfattr -n user.new -v v d/sub/s',
      'setfattr -x user.kept a/b/h',
      'touch -h -d @1600000000 l', // times of a symlink (copied up)
      'mv d/sub d/sub2', // a directory renamed: redirect
      'rm d/e && mkdir d/e', // a whiteout, then a directory over it
      'rm -r a/b/c && mkdir a/b/c && echo new > a/b/c/f', // an opaque directory
      'ln a/x a/x2', // a lower hard link copied up
      'ln -s a/b/h d/sym',
      'chmod 700 d/sub2 && chmod 4755 a/b/h',
      'getfattr -d -m user d/sub2/s a/b/h 2>/dev/null | sort',
      'stat -c "%a %u %g %h %s %n" a/b/c/f a/b/h a/x a/x2 hl d/sub2 d/e d/sym',
      'stat -c "%Y %n" l',
    ].join(' && '), { code: 0 })
    await tw.same(t, 'chmod 600 l; echo $?; stat -L -c "%a" a/x', { code: 0 })
    await tw.sameTree(t)
    await tw.sameUpper(t)
    await tw.lowersUnchanged(t)
  })
}
