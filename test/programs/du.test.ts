// du over a union: apparent sizes and allocated blocks of files (holes of a sparse lower file
// must survive its copy-up), hard links counted once, whiteouts and opaque dirs hiding what is
// below them, inode counts. Layerfs against the kernel.
import t from 'tap'
import { writeTree } from '../helpers/layers.js'
import { shOk } from '../helpers/run.js'
import { twinMounts } from '../helpers/twin.js'

// Directories are left out of per-entry sizes: a dir's st_size and st_blocks belong to the
// host fs and grow with the kernel's private xattrs (origin, impure), which layerfs need not
// write. Files are compared exactly.
// Names are sorted before du sees them: of two hard links du reports the first it meets,
// and readdir order is the filesystem's business.
const FILES_APPARENT = "find . -type f | sort | tr '\\n' '\\0' | du -b --files0-from=-"
const FILES_BLOCKS = "find . -type f | sort | tr '\\n' '\\0' | du -B1 --files0-from=-"

t.test('du over a merged tree', async t => {
  const tw = await twinMounts(
    t,
    async d => {
      const [l0, l1] = d.lowers as [string, string]
      writeTree(l1, {
        data: {
          'small.txt': 'small\n',
          'hidden-big.bin': Buffer.alloc(1_000_000, 1),
          'opq': { 'below.bin': Buffer.alloc(500_000, 2) },
          'nested': { 'n1.bin': Buffer.alloc(30_000, 3), deeper: { 'n2.bin': Buffer.alloc(70_000, 4) } },
        },
      })
      writeTree(l0, {
        data: {
          'hidden-big.bin': { type: 'whiteout' },
          'opq': { type: 'dir', opaque: true, entries: { 'above.txt': 'above\n' } },
          'medium.bin': Buffer.alloc(123_457, 5),
        },
      })
      // A sparse file (64 MiB apparent, two 4 KiB extents) and hard links, in the lower layer.
      await shOk(
        `truncate -s 64M sparse.img && printf head | dd of=sparse.img conv=notrunc status=none && printf tail | dd of=sparse.img bs=1M seek=63 conv=notrunc status=none && ln medium.bin medium-link.bin`,
        { cwd: `${l0}/data` },
      )
    },
    { lowers: 2 },
  )
  const same = (script: string) => tw.same(t, script, { code: 0 })

  const [, ov] = await same(`cd data && ${FILES_APPARENT}`)
  t.notMatch(ov.stdout, /hidden-big|below\.bin/, 'kernel: whiteout and opaque dir hide lower files')
  await same(`cd data && ${FILES_BLOCKS}`)
  await same('du -s --inodes data && du --inodes data | sort -k2')
  await same('du -sb --apparent-size data/sparse.img && du -sB1 data/sparse.img')
  await same('du -b -l data/medium.bin data/medium-link.bin && du -b data/medium.bin data/medium-link.bin')

  // Copy-up of the sparse file (chmod) must keep its holes. How much a copy allocates is the
  // copier's business (the kernel copies 1 MiB chunks around holes): both must stay far below
  // the 64 MiB a filled copy would take.
  const [lfSparse, ovSparse] = await tw.sh('chmod 600 data/sparse.img && du -B1 data/sparse.img && du -B1 --apparent-size data/sparse.img')
  for (const [side, r] of [['kernel', ovSparse], ['layerfs', lfSparse]] as const) {
    const m = /^(\d+)\tdata\/sparse\.img\n67108864\t/.exec(r.stdout)
    t.ok(m && Number(m[1]) <= 4 * 1024 * 1024, `${side}: the copied-up sparse file stays sparse`, { stdout: r.stdout, stderr: r.stderr })
  }
  await same('cmp data/sparse.img <(head -c 4 <<< head; head -c 66060284 /dev/zero; printf tail; head -c 1048572 /dev/zero) && echo content kept')
  // Writing to the middle of a lower file (copy-up, then write).
  await same('printf mid | dd of=data/nested/n1.bin bs=1 seek=100 conv=notrunc status=none && du -b data/nested/n1.bin')
  await same(`rm data/medium.bin && cd data && ${FILES_APPARENT} && du -s --inodes .`)
  await same(`cd data && ${FILES_BLOCKS} | grep -v sparse.img`)

  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
