// Copy-up on each trigger the kernel copies up on: open for write (O_WRONLY, O_RDWR, O_APPEND,
// O_TRUNC), truncate, chmod, chown, utimes, setxattr and removexattr (user.*), link, rename.
// What was not asked to change must survive: content, mode, owner, atime/mtime to the
// nanosecond, xattrs, the inode number, and the parent directories' times. Each story runs on
// layerfs and kernel overlayfs; the kernel also checks the story's expectations.
import t from 'tap'
import { join } from 'node:path'
import { isWhiteout, setXattr, writeTree } from '../helpers/layers.js'
import { shOk } from '../helpers/run.js'
import type { Op, SysResult } from '../helpers/syscalls.js'
import { twinMounts, type Side, type Twin } from '../helpers/twin.js'

const MTIME = '1500000000123456789'
// Lower atimes cannot be pinned: the harness reads every file (to hash it) and relatime then
// updates an old atime. Only the utimes trigger checks atime.
const ATIME = '1400000000987654321'
const DIR_MTIME = '1300000000111111111'
const CONTENT = 'lower content, twenty-nine b\n'

interface Trigger {
  name: string
  ops: (p: string) => Op[]
  /** Where the file is afterwards (default: the same path). */
  final?: (p: string) => string
  content: string
  mode?: string
  uid?: number
  gid?: number
  /** Whether mtime must still be the lower's (false when the trigger writes or sets times). */
  keepsMtime: boolean
  /** Expected mtime/atime when the trigger sets them. */
  times?: { atime_ns: string; mtime_ns: string }
  xattrs?: string[]
}

const TRIGGERS: Trigger[] = [
  { name: 'o_wronly', ops: p => [{ op: 'open', path: p, flags: 'O_WRONLY' }], content: CONTENT, keepsMtime: true },
  { name: 'o_rdwr', ops: p => [{ op: 'open', path: p, flags: 'O_RDWR' }], content: CONTENT, keepsMtime: true },
  { name: 'o_append', ops: p => [{ op: 'open', path: p, flags: 'O_WRONLY|O_APPEND', as: 'f' }, { op: 'write', fd: 'f', data: 'more\n' }, { op: 'close', fd: 'f' }], content: CONTENT + 'more\n', keepsMtime: false },
  { name: 'o_trunc', ops: p => [{ op: 'open', path: p, flags: 'O_WRONLY|O_TRUNC' }], content: '', keepsMtime: false },
  { name: 'truncate', ops: p => [{ op: 'truncate', path: p, length: 5 }], content: CONTENT.slice(0, 5), keepsMtime: false },
  { name: 'chmod', ops: p => [{ op: 'chmod', path: p, mode: 0o600 }], content: CONTENT, mode: '0o600', keepsMtime: true },
  { name: 'chown', ops: p => [{ op: 'chown', path: p, uid: 2222, gid: 3333 }], content: CONTENT, uid: 2222, gid: 3333, keepsMtime: true },
  { name: 'utimes', ops: p => [{ op: 'utime', path: p, atime_ns: '1111111111000000001', mtime_ns: '1222222222000000002' }], content: CONTENT, keepsMtime: false, times: { atime_ns: '1111111111000000001', mtime_ns: '1222222222000000002' } },
  { name: 'setxattr', ops: p => [{ op: 'setxattr', path: p, name: 'user.new', value: 'n' }], content: CONTENT, keepsMtime: true, xattrs: ['trusted.keep', 'user.new', 'user.tag'] },
  { name: 'removexattr', ops: p => [{ op: 'removexattr', path: p, name: 'user.tag' }], content: CONTENT, keepsMtime: true, xattrs: ['trusted.keep'] },
  { name: 'link', ops: p => [{ op: 'link', path: p, to: `${p}.link` }], content: CONTENT, keepsMtime: true },
  { name: 'rename', ops: p => [{ op: 'rename', path: p, to: `${p}.renamed` }], final: p => `${p}.renamed`, content: CONTENT, keepsMtime: true },
]

const STAT_FIELDS = ['type', 'mode', 'uid', 'gid', 'size', 'mtime_ns', 'atime_ns', 'ino']

/** One lower file per trigger, in nested dirs with fixed times, so that parents are copied up too. */
async function build(lowers: string[]): Promise<void> {
  const l = lowers[0]!
  const files = Object.fromEntries(TRIGGERS.map(tr => [tr.name, { type: 'file' as const, content: CONTENT, mode: 0o640, uid: 1234, gid: 5678 }]))
  writeTree(l, { a: { b: files } })
  for (const tr of TRIGGERS) {
    setXattr(join(l, 'a/b', tr.name), 'user.tag', 'kept')
    setXattr(join(l, 'a/b', tr.name), 'trusted.keep', 'yes')
  }
  const secs = (ns: string) => `${ns.slice(0, -9)}.${ns.slice(-9)}`
  await shOk(`for f in a/b/*; do touch -m -d @${secs(MTIME)} $f; touch -a -d @${secs(ATIME)} $f; done; touch -d @${secs(DIR_MTIME)} a/b a`, { cwd: l })
}

type Stat = { type: string; mode: string; uid: number; gid: number; size: number; mtime_ns: string; atime_ns: string; ino: number }
const valueOf = (r: SysResult | undefined): unknown => (r && 'ok' in r ? r.value : r)

async function runTrigger(tw: Twin, tr: Trigger): Promise<Record<'layerfs' | 'overlay', { before: Stat; after: unknown; rest: unknown[] }>> {
  const p = `a/b/${tr.name}`
  const final = tr.final?.(p) ?? p
  const ops: Op[] = [
    { op: 'lstat', path: p, fields: STAT_FIELDS },
    ...tr.ops(p),
    { op: 'lstat', path: final, fields: STAT_FIELDS },
    { op: 'readfile', path: final },
    { op: 'listxattr', path: final },
    { op: 'getxattr', path: final, name: 'user.tag' },
  ]
  const [a, b] = await tw.sys(ops)
  const shape = (r: SysResult[]) => ({ before: valueOf(r[0]) as Stat, after: valueOf(r[ops.length - 4]), rest: r.slice(1) })
  return { layerfs: shape(a), overlay: shape(b) }
}

t.test('copy-up on every trigger keeps what the trigger does not change', async t => {
  const tw = await twinMounts(t, d => build(d.lowers))
  for (const tr of TRIGGERS) {
    const res = await runTrigger(tw, tr)
    const p = `a/b/${tr.name}`
    const final = tr.final?.(p) ?? p
    const noIno = (x: { before: Stat; rest: unknown[] }) =>
      JSON.parse(JSON.stringify(x.rest, (k, v) => (k === 'ino' || (k === 'atime_ns' && !tr.times) || (k === 'mtime_ns' && !tr.keepsMtime && !tr.times) ? undefined : v)))
    t.same(noIno(res.layerfs), noIno(res.overlay), `${tr.name}: layerfs gives what the kernel gives`)
    for (const [role, r] of Object.entries(res) as Array<[string, (typeof res)['layerfs']]>) {
      const after = r.after as Stat
      const want: Partial<Stat> = {
        type: 'file',
        mode: tr.mode ?? '0o640',
        uid: tr.uid ?? 1234,
        gid: tr.gid ?? 5678,
        size: Buffer.byteLength(tr.content),
        ino: r.before.ino,
        ...(tr.keepsMtime ? { mtime_ns: MTIME } : {}),
        ...(tr.times ?? {}),
      }
      t.match(after, want, `${role} ${tr.name}: mode, owner, size, times and inode number as expected`)
      const xattrs = (r.rest.at(-2) as { value?: unknown })?.value
      t.same(xattrs, tr.xattrs ?? ['trusted.keep', 'user.tag'], `${role} ${tr.name}: xattrs copied up`)
      t.equal((r.rest.at(-3) as { value?: unknown })?.value, tr.content, `${role} ${tr.name}: content`)
    }
    for (const s of tw.sides) {
      t.ok(!isWhiteout(join(s.upper!, final)) && (await upperHas(s, final)), `${s.role} ${tr.name}: ${final} is in upper`)
    }
  }
  // The copied-up parents keep their times (the kernel restores them after each copy-up).
  await tw.sameSys(t, [{ op: 'stat', path: 'a', fields: ['mtime_ns'] }], [{ ok: true, value: { mtime_ns: DIR_MTIME } }], 'parent a keeps its mtime')
  await tw.sameTree(t, { mtime: true, ignoreMtime: [/^\.$/, /^a\/b$/, /o_append$/, /o_trunc$/, /truncate$/] })
  await tw.sameUpper(t, { mtime: true, ignoreMtime: [/^\.$/, /^a\/b$/, /o_append$/, /o_trunc$/, /truncate$/] })
  await tw.lowersUnchanged(t)
})

async function upperHas(s: Side, rel: string): Promise<boolean> {
  const { lstat } = await import('node:fs/promises')
  return lstat(join(s.upper!, rel)).then(() => true, () => false)
}

t.test('a reader that opened the lower file sees the data written after copy-up', async t => {
  const tw = await twinMounts(t, d => writeTree(d.lowers[0]!, { f: 'old data\n', g: 'gggg\n' }))
  await tw.sameSys(t, [
    { op: 'open', path: 'f', flags: 'O_RDONLY', as: 'r' },
    { op: 'read', fd: 'r' },
    { op: 'open', path: 'f', flags: 'O_WRONLY', as: 'w' }, // copy-up now
    { op: 'pwrite', fd: 'w', data: 'NEW', offset: 0 },
    { op: 'fsync', fd: 'w' },
    { op: 'read', fd: 'r' },
    { op: 'fstat', fd: 'r', fields: ['size', 'mode'] },
    { op: 'close', fd: 'w' },
    { op: 'close', fd: 'r' },
    // An fd open for writing across a chmod-triggered copy-up of another name is unaffected.
    { op: 'open', path: 'g', flags: 'O_RDONLY', as: 'g' },
    { op: 'chmod', path: 'g', mode: 0o600 },
    { op: 'read', fd: 'g' },
    { op: 'fstat', fd: 'g', fields: ['mode'] },
  ], [
    { ok: true }, { ok: true, value: 'old data\n' }, { ok: true }, { ok: true, value: 3 }, { ok: true },
    { ok: true, value: 'NEW data\n' }, { ok: true, value: { size: 9, mode: '0o644' } }, { ok: true }, { ok: true },
    { ok: true }, { ok: true }, { ok: true, value: 'gggg\n' }, { ok: true, value: { mode: '0o600' } },
  ])
  await tw.sameTree(t)
})

t.test('copy-up of symlinks, fifos, device nodes and lower hard links', async t => {
  const tw = await twinMounts(t, async d => {
    writeTree(d.lowers[0]!, {
      sym: { type: 'symlink', target: 'some/where', uid: 7, gid: 8 },
      fifo: { type: 'fifo', mode: 0o640, uid: 9, gid: 10 },
      dev: { type: 'chardev', dev: [1, 5], mode: 0o600 },
      h1: 'hard linked in the lower\n',
      h2: { type: 'hardlink', target: 'h1' },
    })
    await shOk('touch -h -d @1234567890.5 sym fifo dev', { cwd: d.lowers[0]! })
  })
  await tw.sameSys(t, [
    { op: 'chown', path: 'sym', uid: 11, gid: 12, follow: false },
    { op: 'readlink', path: 'sym' },
    { op: 'lstat', path: 'sym', fields: ['type', 'uid', 'gid', 'mtime_ns'] },
    { op: 'chmod', path: 'fifo', mode: 0o604 },
    { op: 'lstat', path: 'fifo', fields: ['type', 'mode', 'uid', 'gid', 'mtime_ns'] },
    { op: 'chown', path: 'dev', uid: 13, gid: 14 },
    { op: 'lstat', path: 'dev', fields: ['type', 'mode', 'rdev', 'uid', 'mtime_ns'] },
    { op: 'lstat', path: 'h1', fields: ['nlink'] },
    { op: 'chmod', path: 'h1', mode: 0o600 },
    { op: 'readfile', path: 'h2' },
    { op: 'lstat', path: 'h2', fields: ['mode'] },
  ], [
    { ok: true }, { ok: true, value: 'some/where' }, { ok: true, value: { type: 'symlink', uid: 11, gid: 12, mtime_ns: '1234567890500000000' } },
    { ok: true }, { ok: true, value: { type: 'fifo', mode: '0o604', uid: 9, gid: 10, mtime_ns: '1234567890500000000' } },
    { ok: true }, { ok: true, value: { type: 'chardev', mode: '0o600', rdev: '1:5', uid: 13, mtime_ns: '1234567890500000000' } },
    { ok: true, value: { nlink: 2 } }, { ok: true }, { ok: true, value: 'hard linked in the lower\n' }, { ok: true, value: { mode: '0o644' } },
  ])
  await tw.sameTree(t, { mtime: true })
  await tw.sameUpper(t, { mtime: true, ignoreMtime: [/^\.$/] })
  await tw.lowersUnchanged(t)
})
