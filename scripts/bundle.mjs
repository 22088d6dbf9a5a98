// node scripts/bundle.mjs: dist/bundle/layerfs.mjs, dist/cli.js and everything it imports in one
// file (esbuild), which bin/layerfs runs as the daemon. One file instead of ~50 ES modules: a
// mount's start-up loads the daemon's code ~25-50 ms sooner (native-notes/mount-program.md).
// Run after tsc (scripts/setup.sh, npm run build); bin/layerfs falls back to dist/cli.js when
// the bundle is older than it (tsc ran since). The bundle sits two levels below the root, as
// dist/layers/native.js does: the host addon is found relative to it. Native modules and the
// debug package (loaded only with DEBUG) stay outside, and so does what a daemon never loads
// (less to parse at every start): commander and the image tools (dist/image/), imported from
// dist/ when used.
import { build } from 'esbuild'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
await build({
  entryPoints: [join(root, 'dist/cli.js')],
  outfile: join(root, 'dist/bundle/layerfs.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['*.node', 'debug', 'commander'],
  plugins: [{
    name: 'outside',
    setup(b) {
      const dist = join(root, 'dist/')
      // Imported from dist/ itself, by a path relative to the bundle's directory.
      const outside = path => path.startsWith(join(dist, 'image/')) && !path.endsWith('/subcommands.js')
      b.onResolve({ filter: /^\.\.?\// }, args => {
        const path = join(args.resolveDir, args.path)
        if (!outside(path) || outside(args.importer)) return undefined
        return { path: `../${path.slice(dist.length)}`, external: true }
      })
    },
  }],
  // The CommonJS packages bundled (commander) require Node's own modules.
  banner: { js: "import { createRequire as __layerfsRequire } from 'node:module'; const require = __layerfsRequire(import.meta.url);" },
  logLevel: 'warning',
})
// V8 keeps a script's source for as long as it runs (lazy compilation), as one byte a character
// only when every character is Latin-1: one '…' in a comment kept by esbuild made the daemon's
// 215 KB source 431 KB of its heap (native-notes/memory.md). Comments esbuild keeps (doc
// comments of class fields) are ours: keep them ASCII.
const out = readFileSync(join(root, 'dist/bundle/layerfs.mjs'), 'latin1')
const bad = out.search(/[^\x00-\x7f]/)
if (bad >= 0) {
  const line = out.slice(0, bad).split('\n').length
  console.error(`bundle: dist/bundle/layerfs.mjs line ${line} has a character that is not ASCII (the daemon's source would take two bytes a character): ${JSON.stringify(out.slice(Math.max(0, bad - 40), bad + 10))}`)
  process.exit(1)
}
