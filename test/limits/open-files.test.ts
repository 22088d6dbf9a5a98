// Descriptors and memory of the daemon: it runs with its RLIMIT_NOFILE soft limit raised to the
// hard limit (Node does that at startup, see native-notes/limits.md), serves 5,000 files open
// at once, and leaks no descriptor and no memory over a long open/close loop.
// LAYERFS_LIMITS_LONG=1 runs the loop 1,000,000 times instead of 5,000 (about an hour on a busy
// 2-core machine: run it with `npx tap -t0`).
import fs from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { mountLayerfs, type Mounted } from '../helpers/mount.js'
import { run, sh } from '../helpers/run.js'
import { daemonOf, freshDir } from '../helpers/scratch.js'

const long = process.env.LAYERFS_LIMITS_LONG === '1'
const LOOP = long ? 1_000_000 : 5_000
const OPEN_AT_ONCE = 5000

function daemonPid(mnt: string): number {
  const pid = daemonOf(mnt)
  if (pid === undefined) throw new Error(`no daemon for ${mnt}`)
  return pid
}
/**
 * The daemon's descriptors that are not directories. Directory fds are the layers' roots and
 * the bounded cache of src/layers/dir-fds.ts (at most 64 per layer, kept across operations).
 */
function fdCount(pid: number): number {
  let n = 0
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (!fs.statSync(`/proc/${pid}/fd/${fd}`).isDirectory()) n++
    } catch {
      n++ // closed meanwhile, or not stat-able (an anonymous inode): count it
    }
  }
  return n
}
const dirFdCount = (pid: number): number => fs.readdirSync(`/proc/${pid}/fd`).length - fdCount(pid)
const rssKiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1])
const nofile = (pid: number): [string, string] => {
  const line = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find(l => l.startsWith('Max open files'))!
  const [soft, hard] = line.replace('Max open files', '').trim().split(/\s+/)
  return [soft!, hard!]
}
const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

/** The daemon's fd count once in-flight releases have settled (FUSE release is asynchronous). */
async function settledFds(pid: number, want: number): Promise<number> {
  let n = fdCount(pid)
  for (let i = 0; i < 50 && n !== want; i++) {
    await sleep(100)
    n = fdCount(pid)
  }
  return n
}

async function setup(t: Test): Promise<{ m: Mounted; pid: number; hard: string }> {
  const root = freshDir('fds')
  const L = join(root, 'lower')
  fs.mkdirSync(join(L, 'many'), { recursive: true })
  for (let i = 0; i < OPEN_AT_ONCE; i++) fs.writeFileSync(join(L, 'many', `f${i}`), `${i}\n`)
  fs.writeFileSync(join(L, 'lowerfile'), 'lower\n')
  fs.mkdirSync(join(root, 'upper'))
  // The daemon inherits a low soft limit from us (prlimit on this test process).
  const hard = nofile(process.pid)[1]
  const low = await run('prlimit', [`--pid=${process.pid}`, '--nofile=1024:'])
  if (low.code !== 0) throw new Error(`prlimit: ${low.stderr}`)
  t.teardown(() => run('prlimit', [`--pid=${process.pid}`, `--nofile=${hard}:`]))
  const m = await mountLayerfs(t, { lowers: [L], upper: join(root, 'upper') })
  await run('prlimit', [`--pid=${process.pid}`, `--nofile=${hard}:`])
  return { m, pid: daemonPid(m.mnt), hard }
}

t.test('the daemon raises its descriptor limit and serves 5,000 open files at once', async t => {
  const { m, pid, hard } = await setup(t)
  t.same(nofile(pid), [hard, hard], `daemon RLIMIT_NOFILE soft = hard (${hard}), started with soft 1024`)
  const before = fdCount(pid)
  // Holds every file open (4,000 read-only, 1,000 for writing: copy-ups), reports, then closes.
  const r = await sh(`coproc P { python3 -c '
import os, resource, sys
s, h = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))
fds = []
for i in range(${OPEN_AT_ONCE}):
    fds.append(os.open("many/f%d" % i, os.O_RDONLY if i % 5 else os.O_RDWR))
ok = all(os.pread(fd, 16, 0) == b"%d\\n" % i for i, fd in enumerate(fds))
print(len(fds), ok, flush=True)
sys.stdin.readline()
for fd in fds: os.close(fd)
print("closed", flush=True)'; }
read -r line <&"\${P[0]}"; echo "$line"; ls /proc/$PID/fd | wc -l; echo go >&"\${P[1]}"; cat <&"\${P[0]}"`, { cwd: m.mnt, env: { PID: String(pid) }, timeout: 120_000 })
  t.equal(r.code, 0, r.stderr)
  const [held, during, closed] = r.stdout.trim().split('\n')
  t.equal(held, `${OPEN_AT_ONCE} True`, 'every file opened and read back')
  t.ok(Number(during) >= before + OPEN_AT_ONCE, `the daemon held them: ${before} fds before, ${during} while open`)
  t.equal(closed, 'closed')
  t.equal(await settledFds(pid, before), before, 'back to the same fd count after closing')
  t.ok(dirFdCount(pid) <= 2 + 2 * 64, `directory fds bounded (${dirFdCount(pid)})`)
})

t.test(`no descriptor or memory leak over ${LOOP} open/close rounds`, async t => {
  const { m, pid } = await setup(t)
  const loop = (n: number): Promise<{ code: number | null; stdout: string; stderr: string }> => sh(`python3 -c '
import os, time, errno
t0 = time.monotonic()
for i in range(int(os.environ["N"])):
    k = i % 4
    if k == 0:
        fd = os.open("lowerfile", os.O_RDONLY); os.read(fd, 16); os.close(fd)
    elif k == 1:
        fd = os.open("upperfile", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644); os.write(fd, b"x"); os.close(fd)
    elif k == 2:
        fd = os.open("tmp%d" % (i % 16), os.O_CREAT | os.O_RDWR, 0o644); os.close(fd); os.unlink("tmp%d" % (i % 16))
    else:
        try: os.open("missing", os.O_RDONLY)
        except FileNotFoundError: pass
print("%.1f" % (time.monotonic() - t0))'`, { cwd: m.mnt, env: { N: String(n) }, timeout: long ? 4 * 3_600_000 : 600_000 })
  const warm = await loop(1000)
  t.equal(warm.code, 0, warm.stderr)
  const fds0 = await settledFds(pid, fdCount(pid))
  const rss0 = rssKiB(pid)
  const r = await loop(LOOP)
  t.equal(r.code, 0, r.stderr)
  const fds1 = await settledFds(pid, fds0)
  const rss1 = rssKiB(pid)
  t.equal(fds1, fds0, `daemon fds (not directories): ${fds0} before, ${fds1} after ${LOOP} rounds (${r.stdout.trim()} s)`)
  t.ok(dirFdCount(pid) <= 2 + 2 * 64, `directory fds bounded (${dirFdCount(pid)})`)
  t.ok(rss1 - rss0 < 32 * 1024, `daemon RSS: ${rss0} KiB before, ${rss1} KiB after (bound: +32 MiB)`)
})
