// The FUSE protocol layerfs speaks (src/fuse/native/lowlevel.c and protocol.c, "protocol"): up
// to 7.40 (the kernel's own minor if lower), so listings are READDIRPLUS (a name comes with its
// attributes: `ls -l` needs no LOOKUP per name), requests carry up to 1 MiB, the kernel keeps
// symlink targets and, at 7.40 as root, upper files are passed through
// (test/fuse/passthrough.test.ts). Requests of later minors are answered too: RENAME2
// (renameat2's flags), LSEEK (SEEK_DATA, SEEK_HOLE), COPY_FILE_RANGE. Lower minors stay
// selectable (LAYERFS_FUSE_PROTO): 37 is what Linux 6.1 offers (no passthrough), 28 and 19
// older ways, as are LAYERFS_FUSE_THREAD=1 and LAYERFS_FUSE_URING=1 (requests over io_uring,
// where the fuse module's enable_uring is on: this test turns it on): each mode must give what
// the kernel gives (at 7.19, what the kernel's FUSE falls back to), and from 7.28 on skip the
// lookups.
import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs'
import t from 'tap'
import { sampleLowers, writeTree } from '../helpers/layers.js'
import { OK, err, labelled, syscalls, val, type Op } from '../helpers/syscalls.js'
import { twinMounts } from '../helpers/twin.js'

const N = 300
const lowerBig = (): Record<string, unknown> => {
  const tree: Record<string, unknown> = {}
  for (let i = 0; i < N; i++) tree[`f${String(i).padStart(3, '0')}`] = `file ${i}\n`.repeat(i % 7)
  tree['sub'] = { a: 'a\n', deeper: { b: 'b\n' } }
  tree['link'] = { type: 'symlink', target: 'f001' }
  // A lower hard-link pair: one name is one node, whichever way the kernel met it.
  tree['hl'] = { type: 'hardlink', target: 'big/f010' }
  return tree
}

const MODES: [string, Record<string, string>][] = [
  ['default (FUSE 7.40, the JS thread reads)', {}],
  ['LAYERFS_FUSE_PROTO=37 (Linux 6.1)', { LAYERFS_FUSE_PROTO: '37' }],
  ['LAYERFS_FUSE_PROTO=28', { LAYERFS_FUSE_PROTO: '28' }],
  ['LAYERFS_FUSE_PROTO=19', { LAYERFS_FUSE_PROTO: '19' }],
  ['LAYERFS_FUSE_THREAD=1', { LAYERFS_FUSE_THREAD: '1' }],
  ['LAYERFS_FUSE_URING=1 (requests over io_uring)', { LAYERFS_FUSE_URING: '1' }],
  // The kernel offers io_uring but the daemon may not make a ring (seccomp in a container, the
  // kernel.io_uring_disabled sysctl): INIT must not ask for it, or every request waits forever.
  ['LAYERFS_FUSE_URING=1, io_uring_setup refused', { LAYERFS_FUSE_URING: '1', REFUSE_URING: '1' }],
]

/** Set to 2, io_uring_setup(2) fails with EPERM for everyone (Linux 6.6+). */
const URING_DISABLED = '/proc/sys/kernel/io_uring_disabled'

/** The fuse module's switch for FUSE over io_uring (Linux 6.14+ built with it), if it has one. */
const ENABLE_URING = '/sys/module/fuse/parameters/enable_uring'

/** Sorted by path (the last field); each inode number replaced by the first path that has it. */
const BY_INODE = `awk '{ print $NF, $0 }' | sort -k1,1 | cut -d' ' -f2- | awk '{ if (!($1 in f)) f[$1] = $NF; $1 = f[$1]; print }'`

/** The requests a daemon's log shows from byte `from` on (DEBUG=layerfs:request lines). */
function requestsSince(log: string, from: number): string[] {
  const text = readFileSync(log).subarray(from).toString()
  return [...text.matchAll(/layerfs:request (\w+) /g)].map(m => m[1]!)
}

for (const [label, env] of MODES) {
  t.test(label, async t => {
    const refuse = env.REFUSE_URING === '1' && existsSync(URING_DISABLED)
    const uring = env.LAYERFS_FUSE_URING === '1' && existsSync(ENABLE_URING) && !refuse
    if (env.LAYERFS_FUSE_URING === '1' && existsSync(ENABLE_URING)) {
      const was = readFileSync(ENABLE_URING, 'utf8').trim()
      writeFileSync(ENABLE_URING, 'Y')
      t.teardown(() => writeFileSync(ENABLE_URING, was))
    }
    const disabledWas = refuse ? readFileSync(URING_DISABLED, 'utf8').trim() : undefined
    if (refuse) {
      writeFileSync(URING_DISABLED, '2')
      t.teardown(() => writeFileSync(URING_DISABLED, disabledWas!))
    }
    const tw = await twinMounts(t, d => {
      sampleLowers(d.lowers)
      writeTree(d.lowers[1]!, { big: lowerBig() as never })
      // A hole of 1 MiB, then 4 KiB of data.
      const fd = openSync(`${d.lowers[0]!}/holes`, 'w')
      writeSync(fd, Buffer.alloc(4096, 'h'), 0, 4096, 1 << 20)
      ftruncateSync(fd, (1 << 20) + 4096)
      closeSync(fd)
    }, { lowers: 2, env: { ...env, DEBUG: 'layerfs:request,layerfs:fuse' } })
    // The ring is made (or not) at INIT: the sysctl goes back as soon as the mount is up.
    if (refuse) writeFileSync(URING_DISABLED, disabledWas!)
    const log = tw.layerfs.log!
    const proto = /FUSE 7\.(\d+), max_write (\d+), passthrough (\w+), io_uring (\w+)/.exec(readFileSync(log, 'utf8'))
    t.ok(proto, 'the daemon says what INIT negotiated')
    const expectMinor = env.LAYERFS_FUSE_PROTO ?? '40'
    const modern = Number(expectMinor) >= 28
    t.equal(proto?.[1], expectMinor, `FUSE 7.${expectMinor}`)
    t.equal(proto?.[2], modern ? String(256 * 4096) : String(128 * 1024), 'max_write')
    t.equal(proto?.[3], expectMinor === '40' ? 'negotiated' : 'off', 'passthrough only at 7.40')
    // Where the kernel has no io_uring for FUSE, asking for it leaves the session on /dev/fuse.
    t.equal(proto?.[4], uring ? 'on' : 'off', uring ? 'requests over io_uring' : 'requests on /dev/fuse')

    // The first listing of big, then a stat of every name in it (ls -l): from READDIRPLUS the
    // kernel already knows each name.
    const before = statSync(log).size
    const [lsL, lsO] = await tw.same(t, 'ls -lan --time-style=full-iso big | tail -n +2', { code: 0 })
    t.equal(lsL.stdout.trim().split('\n').length, N + 5, 'ls -l lists every name (and ., .., sub, link, hl)')
    t.equal(lsL.stdout, lsO.stdout, 'ls -l: the same modes, links, owners, sizes and times as the kernel')
    const lookups = requestsSince(log, before).filter(op => op === 'lookup').length
    const ringLines = readFileSync(log, 'utf8').split('\n').filter(l => / \(ring\)$/.test(l)).length
    if (uring) t.ok(ringLines >= 5, `requests came over io_uring (${ringLines} in JS's log)`)
    else t.equal(ringLines, 0, 'no request came over io_uring')
    if (modern) t.ok(lookups <= 3, `ls -l of ${N + 3} names sent ${lookups} LOOKUP (READDIRPLUS)`)
    else t.ok(lookups >= N, `ls -l of ${N + 3} names sent ${lookups} LOOKUP (no READDIRPLUS at 7.19)`)

    // Listings read once are kept by the kernel (FOPEN_CACHE_DIR): a second \`ls -R\` opens the
    // directories and reads none of them from us.
    await tw.same(t, 'ls -R big', { code: 0 })
    const beforeLs = statSync(log).size
    await tw.same(t, 'ls -R big', { code: 0 })
    const ops = requestsSince(log, beforeLs)
    const count = (op: string): number => ops.filter(o => o === op).length
    t.equal(count('readdir') + count('readdirplus'), 0, 'a second ls -R reads the kernel\'s cached listings')
    // OPENDIR is answered in C (lowlevel.c, ll_opendir); RELEASEDIR is still reported to JS.
    t.equal(count('opendir'), 0, 'OPENDIR does not reach JS')
    t.ok(count('releasedir') >= 3, `the directories are opened and closed (${count('releasedir')} RELEASEDIR)`)

    // Symlink targets are the kernel's to keep at 7.28 (FUSE_CACHE_SYMLINKS): readlink(2) and
    // walks through the link ask at most once; a new link at the name shows its own target.
    const beforeLinks = statSync(log).size
    await tw.same(t, 'readlink big/link; cat big/link; readlink big/link; cat big/link', { code: 0 })
    const readlinks = requestsSince(log, beforeLinks).filter(op => op === 'readlink').length
    if (modern) t.ok(readlinks <= 1, `4 uses of a symlink sent ${readlinks} READLINK (the kernel keeps the target)`)
    else t.ok(readlinks >= 4, `4 uses of a symlink sent ${readlinks} READLINK (no cache at 7.19)`)
    await tw.same(t, 'ln -sfn f002 big/link && readlink big/link && cat big/link && ln -sfn f001 big/link && readlink big/link', { code: 0 })

    // Link counts, and which names share an inode, as the kernel has them (the two sides'
    // layers are copies: their inode numbers differ, so each number becomes its first name).
    await tw.same(t, `find . -printf '%i %n %y %s %p\\n' | ${BY_INODE}`, { code: 0 })
    // big/link was made again just before, on each side at its own moment: its mtime may fall
    // in different seconds (it did, 1 run in ~10), so it is compared without it.
    await tw.same(t, `(stat -c '%i %h %s %Y %n' big/f010 big/hl big/sub/deeper/b; stat -c '%i %h %s %n' big/link) | ${BY_INODE}`, { code: 0 })
    await tw.same(t, 'du -sb . big; du -s --inodes .', { code: 0 })

    // Change things the listings have shown (copy-up, a whiteout, a new name, a moved dir),
    // then list and stat again: what the kernel caches from READDIRPLUS must follow.
    await tw.same(t, 'echo more >> big/f005 && chmod 600 big/f006 && rm big/f007 && echo new > big/new && ' +
      'mv big/sub big/sub2 && ln big/f008 big/f008-link', { code: 0 })
    await tw.same(t, 'ls -lan --time-style=+ big big/sub2 | tail -n +2', { code: 0 })
    await tw.same(t, `find . -printf '%i %n %y %s %m %p\\n' | ${BY_INODE}`, { code: 0 })

    // 3 MiB written in one call, read back (requests of up to 1 MiB at 7.28); the same bytes on
    // both sides.
    await tw.same(t, "python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random(7).randbytes(3 << 20))' > $OUT/blob && " +
      'cp $OUT/blob big/blob && cmp $OUT/blob big/blob && ' +
      'dd if=$OUT/blob of=big/blob2 bs=3M status=none && cmp big/blob2 $OUT/blob && echo same', { code: 0 })
    await tw.sameTree(t)
    await tw.sameUpper(t)

    const later: Op[] = [
      { op: 'renameat2', path: 'top.txt', to: 'top2.txt', flags: 'NOREPLACE' },
      { op: 'renameat2', path: 'shared.txt', to: 'bottom.txt', flags: 'EXCHANGE' },
      { op: 'open', path: 'holes', as: 'h' },
      { op: 'lseek', fd: 'h', offset: 0, whence: 'DATA' },
      { op: 'lseek', fd: 'h', offset: 0, whence: 'HOLE' },
      { op: 'open', path: 'copy', flags: 'O_WRONLY|O_CREAT', as: 'c' },
      { op: 'copy_file_range', fd: 'h', to: 'c', length: 8192, offset_in: (1 << 20) - 4096, offset_out: 0 },
      { op: 'close', fd: 'c' },
      { op: 'close', fd: 'h' },
    ]
    if (modern) {
      await tw.sameSys(t, later, [OK, OK, OK, val(1 << 20), val(0), OK, val(8192), OK, OK], 'requests of later minors')
      await tw.sameTree(t)
      await tw.sameUpper(t)
    } else {
      // ENOSYS, as libfuse 2.9 answered: the kernel's FUSE then refuses renameat2's flags (EINVAL) and gives
      // lseek's generic answers (data everywhere); it copies a range itself.
      const lf = await syscalls(tw.layerfs.mnt, later)
      t.same(labelled(later, lf), labelled(later, [err('EINVAL'), err('EINVAL'), OK, val(0), val((1 << 20) + 4096), OK, val(8192), OK, OK]),
        'at 7.19 the kernel falls back')
    }
    await tw.lowersUnchanged(t)
  })
}
