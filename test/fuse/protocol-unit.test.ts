// Unit tests of the FUSE protocol layer (src/fuse/native/protocol.c) on its own, without a
// mount: test/fuse/native/protocol-test.c is compiled against it (with -Werror, as CI builds
// the addon with the same compiler) and each of its checks becomes an assertion here. What the
// kernel then makes of our replies is the mount tests' (test/fuse/protocol.test.ts and the rest).
import t from 'tap'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const native = path.join(root, 'src/fuse/native')

t.test('protocol.c: parsing, INIT negotiation, reply layouts', async t => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerfs-protocol-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const exe = path.join(dir, 'protocol-test')
  execFileSync(process.env.CC ?? 'cc', ['-std=gnu11', '-Wall', '-Wextra', '-Werror', '-D_GNU_SOURCE', '-I', native,
    path.join(native, 'protocol.c'), path.join(root, 'test/fuse/native/protocol-test.c'), '-o', exe], { stdio: 'inherit' })
  let out: string
  let status = 0
  try {
    out = execFileSync(exe, { encoding: 'utf8' })
  } catch (e) {
    const err = e as { stdout: string; status: number }
    out = err.stdout
    status = err.status
  }
  const lines = out.split('\n').filter(l => /^(not )?ok \d+ - /.test(l))
  const plan = /^1\.\.(\d+)$/m.exec(out)
  t.ok(plan, 'the C tests ran to their end')
  t.equal(lines.length, Number(plan?.[1]), 'every check reported')
  t.ok(lines.length >= 60, `${lines.length} checks`)
  for (const l of lines) t.ok(l.startsWith('ok '), l.replace(/^(not )?ok \d+ - /, ''))
  t.equal(status, 0, 'exit status 0')
})
