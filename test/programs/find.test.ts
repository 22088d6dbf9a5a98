// GNU find over a union of two lowers and an upper: listings with types, modes, owners, sizes
// and link counts; tests by name, time, size, emptiness, links, -samefile and -inum (inode
// numbers must be consistent between stat and readdir); -delete and -exec. Layerfs against
// the kernel. find without -noleaf also catches directory link counts that would make it skip
// subdirectories.
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { shOk } from '../helpers/run.js'
import { twinMounts } from '../helpers/twin.js'

t.test('find over a merged tree', async t => {
  const tw = await twinMounts(
    t,
    async d => {
      const [l0, l1] = d.lowers as [string, string]
      writeTree(l1, {
        src: {
          'a.c': 'int a;\n', 'b.c': 'int b;\n', 'old.tmp': 'tmp\n', 'gone.c': 'gone\n',
          lib: { 'l.c': 'int l;\n', 'l.h': '', deep: { er: { 'x.tmp': 'x\n' } } },
          docs: { 'readme.md': '# docs\n', 'big.bin': Buffer.alloc(200_000, 7) },
          hidden: { 'h.c': 'hidden by opaque\n' },
        },
        empty: {},
      })
      writeTree(l0, {
        src: {
          'a.c': 'int a = 1;\n', 'c.c': 'int c;\n', 'gone.c': { type: 'whiteout' },
          lib: { 'l2.c': 'int l2;\n', deep: { 'y.tmp': 'y\n' } },
          hidden: { type: 'dir', opaque: true, entries: { 'shown.c': 'shown\n' } },
          'link.c': { type: 'symlink', target: 'a.c' },
          'broken': { type: 'symlink', target: 'nowhere' },
          'owned.c': { type: 'file', content: 'o\n', uid: 1001, gid: 1002, mode: 0o600 },
        },
      })
      writeTree(d.upper!, { src: { 'new.c': 'new\n', lib: { 'up.c': 'up\n' } } })
      await shOk(`ln ${l1}/src/docs/readme.md ${l1}/src/docs/readme-link.md && touch -d @1500000000 ${l1}/src/b.c && touch -d @1700000000 ${l0}/src/c.c`)
    },
    { lowers: 2 },
  )
  const same = (script: string) => tw.same(t, script, { code: 0 })

  await same(`find . ! -type d -printf '%y %m %U %G %s %n %p %l\\n' | sort`)
  await same(`find . -type d -printf '%y %m %U %G %p\\n' | sort`)
  await same('find . -type d | sort && find . -mindepth 3 -type d | sort')
  await same('find src -name "*.c" | sort && find src -iname "*.TMP" | sort && find src -path "*lib*" -name "*.h"')
  await same('find src -newer src/b.c -type f | sort && find src ! -newermt @1600000000 -type f | sort')
  await same('find . -empty | sort && find . -size +100k && find . -type f -links +1 | sort')
  await same('find -L src -type l && find src -xtype l && find src -lname "a*"')
  await same('find src -samefile src/docs/readme.md | sort')
  // -inum with the inode number stat gives must find the same file (readdir d_ino == st_ino).
  await same('for f in src/a.c src/c.c src/new.c src/lib/l.c src/docs/readme.md; do find src -inum $(stat -c %i $f) | sort; done')
  await same(`find . -printf '%i\\n' | sort | uniq -d | wc -l`)
  await same('find src -name "*.tmp" -delete && find src -name "*.tmp" | wc -l && ls src/lib/deep')
  await same('find src -name "*.c" -exec grep -l "int" {} + | sort && find src -type f -name "*.c" -exec sh -c "echo // >> \\$1" _ {} \\; && cat src/a.c')
  await same('find src -depth -type d -empty -delete; find src -type d | sort')

  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
