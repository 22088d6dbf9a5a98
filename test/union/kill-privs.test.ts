// The union core drops setuid/setgid bits when a caller without CAP_FSETID changes a file's
// data, as the kernel's overlayfs leaves them (observed on kernel 6.18, see
// native-notes/limits.md): what FUSE 7.19 leaves to the filesystem. Driven without FUSE, with
// explicit callers (the adapter hands the request's caller to open and write).
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import t from 'tap'
import * as file from '../../src/union/file-ops.js'
import { Union } from '../../src/union/union.js'
import { freshDir } from '../helpers/scratch.js'

const { O_WRONLY, O_TRUNC, O_APPEND, O_RDONLY } = fs.constants

function fixture(files: Record<string, [mode: number, gid: number]>): { u: Union; upper: string } {
  const root = freshDir('killpriv')
  const [lower, upper, work] = ['l', 'u', 'w'].map(n => `${root}/${n}`) as [string, string, string]
  for (const d of [lower, upper, work]) fs.mkdirSync(d)
  for (const [name, [mode, gid]] of Object.entries(files)) {
    fs.writeFileSync(`${lower}/${name}`, 'data\n')
    fs.chownSync(`${lower}/${name}`, 0, gid)
    fs.chmodSync(`${lower}/${name}`, mode)
  }
  const u = new Union({ lowerdirs: [lower], upperdir: upper, workdir: work })
  u.upper?.cleanWork()
  return { u, upper }
}

const mode = (p: string): string => (fs.statSync(p).mode & 0o7777).toString(8)
const user = { uid: 1000, gid: 1000 }

t.test('a truncating open by a non-owner drops S_ISUID (and S_ISGID with group-exec)', async t => {
  const { u, upper } = fixture({ s: [0o4777, 0], g: [0o2777, 0], r: [0o4777, 0], n: [0o4777, 0] })
  file.release(u, await file.open(u, '/s', O_WRONLY | O_TRUNC, user))
  file.release(u, await file.open(u, '/g', O_WRONLY | O_TRUNC, user))
  file.release(u, await file.open(u, '/r', O_WRONLY | O_TRUNC, { uid: 0, gid: 0 }))
  file.release(u, await file.open(u, '/n', O_WRONLY | O_TRUNC))
  t.same([mode(`${upper}/s`), mode(`${upper}/g`)], ['777', '777'], 'dropped for uid 1000 (the kernel: 777)')
  t.equal(mode(`${upper}/r`), '4777', 'kept for root (CAP_FSETID)')
  t.equal(mode(`${upper}/n`), '4777', 'no caller given: left to the kernel')
})

t.test('the first write by a caller outside the group drops S_ISGID without group-exec', async t => {
  const { u, upper } = fixture({ out: [0o2666, 0], member: [0o2666, 1000], supp: [0o2666, 4242], ro: [0o2666, 0] })
  // A thread with 4242 among its supplementary groups (FUSE sends only the fsgid).
  const member = spawn('setpriv', ['--reuid=1000', '--regid=1000', '--groups=4242', '--', 'sleep', '30'])
  t.teardown(() => { member.kill() })
  await new Promise(r => setTimeout(r, 300))
  for (const [name, caller] of [['out', user], ['member', user], ['supp', { ...user, pid: member.pid! }]] as const) {
    const fh = await file.open(u, `/${name}`, O_WRONLY | O_APPEND, caller)
    t.equal(file.write(u, fh, Buffer.from('x'), 1, 0, caller), 1)
    file.release(u, fh)
  }
  t.equal(mode(`${upper}/out`), '666', 'not in the group: dropped (the kernel: 666)')
  t.equal(mode(`${upper}/member`), '2666', 'in the group (fsgid): kept')
  t.equal(mode(`${upper}/supp`), '2666', 'in the group by a supplementary group (read from /proc/<pid>/status): kept')
  const fh = await file.open(u, '/ro', O_RDONLY, user)
  file.release(u, fh)
  t.equal(mode(`${u.lowers[0]!.root}/ro`), '2666', 'a read changes nothing')
})
