// bin/layerfs repeats two things of src/cli.ts in shell: which first words are subcommands
// (anything else before a mount point is mount.fuse's SOURCE), and the daemon's V8 flags.
// And which file the daemon runs: the bundle (scripts/bundle.mjs) unless it is stale.
import fs from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { run } from '../helpers/run.js'
import { freshDir, launcherPath, projectRoot } from '../helpers/scratch.js'

const launcher = fs.readFileSync(launcherPath, 'utf8')
const cli = fs.readFileSync(join(projectRoot, 'src/cli.ts'), 'utf8')
const imageCli = fs.readFileSync(join(projectRoot, 'src/image/subcommands.ts'), 'utf8')
const words = (s: string | undefined): string[] => [...(s ?? '').matchAll(/'([^']+)'/g)].map(m => m[1]!)

t.test('the same subcommands', async t => {
  const sh = launcher.match(/^subcommands=' (.*) '$/m)?.[1]?.split(' ') ?? []
  const ts = [...words(cli.match(/const SUBCOMMANDS = new Set\(\[(.*)\]\)/)?.[1]), ...words(imageCli.match(/IMAGE_SUBCOMMANDS = \[(.*)\]/)?.[1])]
  t.ok(ts.length > 5, 'found in src/cli.ts')
  t.same([...sh].sort(), [...ts].sort())
})

t.test('the same daemon flags', async t => {
  const sh = launcher.match(/^daemon_node_flags='(.*)'$/m)?.[1]?.split(' ') ?? []
  const ts = words(cli.match(/const DAEMON_NODE_FLAGS = \[(.*)\]/)?.[1])
  t.ok(ts.length > 0, 'found in src/cli.ts')
  t.same(sh, ts)
})

t.test('package.json runs bin/layerfs', async t => {
  const pkg = JSON.parse(fs.readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { bin: Record<string, string> }
  t.equal(pkg.bin['layerfs'], 'bin/layerfs')
  t.ok(fs.statSync(launcherPath).mode & 0o111, 'executable')
})

t.test('the daemon runs the bundle when it is newer than dist/cli.js, else dist/cli.js', async t => {
  // A copy of the script beside two stand-ins, which say ready and note which one ran.
  const root = freshDir('launcher-tree')
  for (const d of ['bin', 'dist/bundle', 'mnt']) fs.mkdirSync(join(root, d), { recursive: true })
  fs.copyFileSync(launcherPath, join(root, 'bin/layerfs'))
  fs.chmodSync(join(root, 'bin/layerfs'), 0o755)
  const standIn = (name: string): string =>
    `require('fs').writeFileSync(${JSON.stringify(join(root, 'ran'))}, '${name} ' + process.argv.slice(2).join(' ')); require('fs').writeSync(3, 'ready\\n')\n`
  fs.writeFileSync(join(root, 'dist/cli.cjs'), standIn('cli'))
  fs.writeFileSync(join(root, 'dist/bundle/layerfs.cjs'), standIn('bundle'))
  // The script runs .js/.mjs files; these load the stand-ins as CommonJS.
  fs.writeFileSync(join(root, 'dist/cli.js'), "import { createRequire } from 'node:module'; createRequire(import.meta.url)('./cli.cjs')\n")
  fs.writeFileSync(join(root, 'dist/bundle/layerfs.mjs'), "import { createRequire } from 'node:module'; createRequire(import.meta.url)('./layerfs.cjs')\n")
  const ran = async (): Promise<string> => {
    const r = await run(join(root, 'bin/layerfs'), ['-o', 'lowerdir=/x', join(root, 'mnt')])
    t.equal(r.code, 0, r.stderr)
    return fs.readFileSync(join(root, 'ran'), 'utf8')
  }
  const old = new Date(Date.now() - 60_000)
  fs.utimesSync(join(root, 'dist/cli.js'), old, old)
  t.equal(await ran(), `bundle mount -f --notify-fd 3 -o lowerdir=/x ${join(root, 'mnt')}`, 'the bundle, newer')
  fs.utimesSync(join(root, 'dist/bundle/layerfs.mjs'), new Date(old.getTime() - 60_000), new Date(old.getTime() - 60_000))
  t.match(await ran(), /^cli mount -f --notify-fd 3 /, 'dist/cli.js, newer than the bundle')
})

t.test('the build made the bundle, after dist/cli.js', async t => {
  const bundle = join(projectRoot, 'dist/bundle/layerfs.mjs')
  t.ok(fs.existsSync(bundle), 'dist/bundle/layerfs.mjs (scripts/bundle.mjs, run by scripts/setup.sh)')
  if (fs.existsSync(bundle)) t.ok(fs.statSync(bundle).mtimeMs >= fs.statSync(join(projectRoot, 'dist/cli.js')).mtimeMs, 'not older than dist/cli.js')
})
