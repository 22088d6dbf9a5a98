// node scripts/bundle.mjs: dist/bundle/layerfs.mjs, dist/cli.js and everything it imports in one
// file (esbuild), which bin/layerfs runs as the daemon. One file instead of ~50 ES modules: a
// mount's start-up loads the daemon's code ~25-50 ms sooner (native-notes/mount-program.md).
// Run after tsc (scripts/setup.sh, npm run build); bin/layerfs falls back to dist/cli.js when
// the bundle is older than it (tsc ran since). The bundle sits two levels below the root, as
// dist/layers/native.js does: the host addon is found relative to it. Native modules and the
// debug package (loaded only with DEBUG) stay outside.
import { build } from 'esbuild'
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
  external: ['*.node', 'debug'],
  // The CommonJS packages bundled (commander) require Node's own modules.
  banner: { js: "import { createRequire as __layerfsRequire } from 'node:module'; const require = __layerfsRequire(import.meta.url);" },
  logLevel: 'warning',
})
