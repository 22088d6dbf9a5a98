// Regression: a lazy unmount (`umount -l`) while a process still works inside. Kernel overlayfs
// (and fuse-overlayfs) go on serving that process: the superblock lives while it is used, and
// the process's open files, working directory, new files all work until it lets go. The
// daemon used to watch the mount table and exit once the mount left it, so the process got
// ENOTCONN for everything, its open file included. Now it serves until the kernel ends the
// connection, and exits then (the last user gone).
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import t, { type Test } from 'tap'
import { type Mounted, mountKind } from '../helpers/mount.js'
import { run } from '../helpers/run.js'
import { freshDir, isMounted, processesFor } from '../helpers/scratch.js'

const WORKER = `
import os, sys, json
f = open('f')
print('ready', flush=True)
sys.stdin.readline()
out = {}
def step(name, fn):
    try: out[name] = fn()
    except OSError as e: out[name] = 'errno ' + str(e.errno)
step('read open file', lambda: f.read())
step('list cwd', lambda: sorted(os.listdir('.')))
step('open by name', lambda: open('f').read())
def make():
    with open('g', 'w') as g: g.write('made after the unmount\\n')
    return open('g').read()
step('create and read back', make)
step('mkdir', lambda: (os.mkdir('sub'), sorted(os.listdir('.')))[1])
step('unlink lower file', lambda: (os.unlink('f'), sorted(os.listdir('.')))[1])
print(json.dumps(out), flush=True)
`

async function lazyStory(t: Test, m: Mounted): Promise<unknown> {
  const p = spawn('python3', ['-c', WORKER], { cwd: `${m.mnt}/d`, stdio: ['pipe', 'pipe', 'inherit'] })
  let out = ''
  p.stdout.setEncoding('utf8')
  const exited = new Promise<number | null>(resolve => p.on('exit', resolve))
  await new Promise<void>((resolve, reject) => {
    p.stdout.on('data', (s: string) => {
      out += s
      if (out.startsWith('ready\n')) resolve()
    })
    p.on('exit', () => reject(new Error(`worker exited early: ${out}`)))
  })
  const r = await run('umount', ['-l', m.mnt], { timeout: 15_000 })
  t.equal(r.code, 0, `${m.kind}: umount -l ${r.stderr}`)
  t.notOk(isMounted(m.mnt), `${m.kind}: gone from the mount table`)
  // A while for anything that watches the mount table (the old daemon looked every 200 ms).
  await new Promise(resolve => setTimeout(resolve, 1000))
  p.stdin.end('go\n')
  t.equal(await exited, 0, `${m.kind}: the worker exits 0`)
  return JSON.parse(out.split('\n')[1]!)
}

t.test('a process inside a lazily unmounted union goes on working, as on the kernel', async t => {
  const results: Record<string, unknown> = {}
  const uppers: Record<string, string[]> = {}
  for (const kind of ['overlay', 'layerfs'] as const) {
    const lower = freshDir(`lazy-lower-${kind}`)
    fs.mkdirSync(`${lower}/d`)
    fs.writeFileSync(`${lower}/d/f`, 'from the lower layer\n')
    const m = await mountKind(t, kind, { lowers: [lower], upper: freshDir(`lazy-upper-${kind}`) })
    results[kind] = await lazyStory(t, m)
    if (kind === 'layerfs') {
      // The last user gone, the kernel ends the connection and the daemon exits.
      let pids = processesFor(m.mnt)
      for (let waited = 0; pids.length > 0 && waited < 10_000; waited += 100) {
        await new Promise(resolve => setTimeout(resolve, 100))
        pids = processesFor(m.mnt)
      }
      t.same(pids, [], 'layerfs: the daemon exits once the last user is gone')
    }
    const upperDir = `${m.upper}/d`
    uppers[kind] = fs.existsSync(upperDir) ? fs.readdirSync(upperDir).sort() : []
    t.ok(uppers[kind].includes('g') && fs.readFileSync(`${upperDir}/g`, 'utf8') === 'made after the unmount\n', `${kind}: the new file is in the upper layer`)
  }
  t.same(results.layerfs, results.overlay, 'every step as on the kernel')
  t.same((results.layerfs as Record<string, unknown>)['read open file'], 'from the lower layer\n', 'the open file still reads')
  t.same(uppers.layerfs, uppers.overlay, 'the same upper directory')
})
