// bin/layerfs repeats two things of src/cli.ts in shell: which first words are subcommands
// (anything else before a mount point is mount.fuse's SOURCE), and the daemon's V8 flags.
import fs from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { launcherPath, projectRoot } from '../helpers/scratch.js'

const launcher = fs.readFileSync(launcherPath, 'utf8')
const cli = fs.readFileSync(join(projectRoot, 'src/cli.ts'), 'utf8')
const imageCli = fs.readFileSync(join(projectRoot, 'src/image/cli-image.ts'), 'utf8')
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
