// Layers changed behind the mount's back (files removed, added, rewritten, replaced by
// directories or by symlinks to host files): what the union shows then is undefined, as with
// kernel overlayfs, but the daemon never crashes, never hangs, keeps serving, and never reads
// or writes a host file outside the layers through a symlink that appeared in a layer
// (native-notes/changing-layers.md).
import fs from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { mountLayerfs } from '../helpers/mount.js'
import { sh } from '../helpers/run.js'
import { daemonOf, freshDir } from '../helpers/scratch.js'

const SECRET = 'host secret: must never show through the mount\n'

// Each step: a host-side change (bash, on the layers), then a client-side probe (python, in the
// mount) whose result may be anything but a hang; the probe never prints the secret.
const steps: { name: string; host: string; probe: string }[] = [
  { name: 'cached lower file removed', host: 'rm "$L/gone"', probe: `os.stat('gone'); print(open('gone').read())` },
  { name: 'lower file added', host: 'echo new > "$L/added"', probe: `print(sorted(os.listdir('.'))); print(open('added').read())` },
  { name: 'lower file rewritten while open', host: 'head -c 100000 /dev/zero > "$L/rewritten"', probe: `
fd = os.open('rewritten', os.O_RDONLY)
print(os.fstat(fd).st_size, len(os.pread(fd, 1 << 20, 0)))
os.close(fd)` },
  { name: 'cached lower dir removed, then written into', host: 'rm -rf "$L/dir"', probe: `
print(os.listdir('dir'))
open('dir/new', 'w').write('x')` },
  { name: 'lower file replaced by a dir', host: 'rm "$L/f2d" && mkdir "$L/f2d" && echo in > "$L/f2d/in"', probe: `print(open('f2d').read()); print(os.listdir('f2d'))` },
  { name: 'lower dir replaced by a file', host: 'rm -rf "$L/d2f" && echo file > "$L/d2f"', probe: `print(os.listdir('d2f')); print(open('d2f').read())` },
  { name: 'lower file replaced by a symlink to a host file, then read', host: 'rm "$L/victim" && ln -s "$SECRET_FILE" "$L/victim"', probe: `print(open('victim').read())` },
  { name: 'lower file replaced by a symlink to a host file, then copied up', host: 'rm "$L/victim2" && ln -s "$SECRET_FILE" "$L/victim2"', probe: `
fd = os.open('victim2', os.O_WRONLY | os.O_APPEND)
os.write(fd, b'+')
os.close(fd)
print(open('victim2').read())` },
  { name: 'lower dir replaced by a symlink to a host dir', host: 'rm -rf "$L/vdir" && ln -s "$SECRET_DIR" "$L/vdir"', probe: `
print(os.listdir('vdir'))
print('hostsize', os.stat('vdir/hostonly-name').st_size)
print(open('vdir/hostonly-name').read())` },
  { name: 'upper file removed while open for writing', host: 'rm "$U/upfile"', probe: `
os.write(W, b'more')
os.fsync(W)
print(os.listdir('.'))` },
  { name: 'upper file replaced by a dir', host: 'rm "$U/upfile2" && mkdir "$U/upfile2"', probe: `print(os.stat('upfile2').st_mode); print(open('upfile2').read())` },
  { name: 'upper dir renamed away', host: 'mv "$U/updir" "$U/updir-moved"', probe: `print(os.listdir('updir')); open('updir/x', 'w').write('x')` },
  { name: 'whiteout removed from the upper', host: 'rm "$U/whited"', probe: `print(open('whited').read())` },
  { name: 'workdir emptied', host: 'rm -rf "$W/work"/*', probe: `
fd = os.open('late', os.O_WRONLY | os.O_APPEND)
os.write(fd, b'+')
os.close(fd)` },
]

t.test('layers changed behind our back: no crash, no hang, no host file reached', async t => {
  const root = freshDir('changing')
  const L = join(root, 'lower')
  const U = join(root, 'upper')
  const W = join(root, 'work')
  const outside = join(root, 'outside')
  for (const d of [L, U, W, outside, join(outside, 'sdir')]) fs.mkdirSync(d)
  fs.writeFileSync(join(outside, 'secret'), SECRET)
  fs.writeFileSync(join(outside, 'sdir', 'hostonly-name'), SECRET)
  for (const f of ['gone', 'rewritten', 'f2d', 'victim', 'victim2', 'whited', 'late']) fs.writeFileSync(join(L, f), `${f}\n`)
  for (const d of ['dir', 'd2f', 'vdir', 'updir']) {
    fs.mkdirSync(join(L, d))
    fs.writeFileSync(join(L, d, 'f'), 'f\n')
  }
  const m = await mountLayerfs(t, { lowers: [L], upper: U, work: W })
  const pid = daemonOf(m.mnt)
  t.ok(pid, 'found the daemon')
  // Prepare what the steps need through the mount: cached lookups, an upper file open for writing.
  const prep = await sh(`cat gone rewritten victim victim2 f2d >/dev/null && ls dir d2f vdir >/dev/null && echo up > upfile && echo up > upfile2 && mkdir -p updir && touch updir/u && rm whited && ls -la >/dev/null`, { cwd: m.mnt })
  t.equal(prep.code, 0, prep.stderr)

  const env = { L, U, W, SECRET_FILE: join(outside, 'secret'), SECRET_DIR: join(outside, 'sdir') }
  for (const s of steps) {
    // A client holding an upper file open for writing across the host change.
    const probe = `
import os, errno, sys
os.chdir(sys.argv[1])
W = os.open('upfile', os.O_WRONLY | os.O_APPEND) if os.path.exists('upfile') else -1
sys.stdout.write('ready\\n'); sys.stdout.flush()
sys.stdin.readline()
try:
${s.probe.trim().split('\n').map(l => '    ' + l).join('\n')}
except OSError as e:
    print('errno', errno.errorcode.get(e.errno, e.errno))
`
    const r = await sh(`coproc P { python3 -c "$PROBE" "$MNT"; }; read -r line <&"\${P[0]}"; ${s.host}; echo go >&"\${P[1]}"; cat <&"\${P[0]}"; wait $P_PID 2>/dev/null; exit 0`, { env: { ...env, PROBE: probe, MNT: m.mnt }, timeout: 30_000 })
    t.notOk(r.timedOut, `${s.name}: no hang`)
    t.notMatch(r.stdout + r.stderr, /host secret|hostonly-name|hostsize/, `${s.name}: no host file or name reached (${r.stdout.trim().replace(/\n/g, ' | ').slice(0, 160)})`)
    const alive = await sh('stat -c %i . >/dev/null && ls >/dev/null', { cwd: m.mnt, timeout: 20_000 })
    t.equal(alive.code, 0, `${s.name}: still serving ${alive.stderr}`)
    t.equal(daemonOf(m.mnt), pid, `${s.name}: the same daemon`)
  }
  t.equal(fs.readFileSync(join(outside, 'secret'), 'utf8'), SECRET, 'the host file is untouched')
  t.same(fs.readdirSync(join(outside, 'sdir')), ['hostonly-name'], 'nothing written into the host dir')
  const end = await sh('echo after > after && cat after', { cwd: m.mnt })
  t.same([end.code, end.stdout], [0, 'after\n'], 'writes still work at the end')
})
