// make + cc on a C project that lives, already built, in the lower layer: make must see it up
// to date (lower mtimes pass through), rebuild exactly what a touched or edited source needs,
// and the program must run; layerfs against kernel overlayfs.
import t from 'tap'
import { join } from 'node:path'
import { writeTree } from '../helpers/layers.js'
import { shOk } from '../helpers/run.js'
import { twinMounts } from '../helpers/twin.js'

const MAKEFILE = `CC = cc
CFLAGS = -O2 -Wall
OBJS = main.o util.o other.o

all: prog

prog: $(OBJS)
\t$(CC) -o $@ $(OBJS)

main.o: main.c util.h other.h
util.o: util.c util.h
other.o: other.c other.h

%.o: %.c
\t$(CC) $(CFLAGS) -c $< -o $@

clean:
\trm -f prog $(OBJS)

.PHONY: all clean
`

const SOURCES = {
  Makefile: MAKEFILE,
  'util.h': 'int twice(int x);\n',
  'util.c': '#include "util.h"\nint twice(int x) { return 2 * x; }\n',
  'other.h': 'const char *greeting(void);\n',
  'other.c': '#include "other.h"\nconst char *greeting(void) { return "hello"; }\n',
  'main.c': '#include <stdio.h>\n#include "util.h"\n#include "other.h"\nint main(void) { printf("%s %d\\n", greeting(), twice(21)); return 0; }\n',
}

t.test('make rebuilds exactly what changed, in a project from the lower layer', async t => {
  const tw = await twinMounts(t, async d => {
    const proj = join(d.lowers[0]!, 'proj')
    writeTree(proj, SOURCES)
    // Built in the lower layer, sources older than objects older than the program.
    await shOk(
      `make -s && touch -d @1600000000 Makefile *.c *.h && touch -d @1600000100 *.o && touch -d @1600000200 prog && touch -d @1600000300 .`,
      { cwd: proj },
    )
  })
  // Under `make test` the outer make's variables would make this make a sub-make
  // ("Entering directory ..."): run it as a top-level make.
  const topLevel = { MAKELEVEL: undefined, MAKEFLAGS: undefined, MFLAGS: undefined, MAKEOVERRIDES: undefined }
  const mk = async (script: string, expected: string, code = 0) => {
    const [, ov] = await tw.same(t, `cd proj && ${script}`, { code, env: topLevel })
    t.equal(ov.stdout, expected, `kernel: ${script}`)
  }

  await mk('make', "make: Nothing to be done for 'all'.\n")
  await mk('./prog', 'hello 42\n')
  await mk('touch util.c && make', 'cc -O2 -Wall -c util.c -o util.o\ncc -o prog main.o util.o other.o\n')
  await mk('make -q; echo $?', '0\n')
  await mk('touch util.h && make', 'cc -O2 -Wall -c main.c -o main.o\ncc -O2 -Wall -c util.c -o util.o\ncc -o prog main.o util.o other.o\n')
  // sed -i replaces the lower file by a rename over it.
  await mk(`sed -i 's/hello/bonjour/' other.c && make && ./prog`, 'cc -O2 -Wall -c other.c -o other.o\ncc -o prog main.o util.o other.o\nbonjour 42\n')
  await mk('make; ./prog', "make: Nothing to be done for 'all'.\nbonjour 42\n")
  await mk('make clean && ls', 'rm -f prog main.o util.o other.o\nMakefile\nmain.c\nother.c\nother.h\nutil.c\nutil.h\n')
  await mk('make -j2 >/dev/null && ./prog && make -q && echo up to date', 'bonjour 42\nup to date\n')

  // Objects and program are reproducible (no -g, relative paths): same bytes on both sides.
  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
