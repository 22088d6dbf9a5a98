// The layer subcommands of the CLI: `layer import`, `layer export`, `diff`. One function
// registers them all on the program of src/cli.ts; errors are thrown, cli.ts prints one line.
import type { Command } from 'commander'
import { importLayer } from './layer-import.js'
import { progressBar } from './progress-bar.js'

export function registerLayerCommands(program: Command): void {
  const layer = program.command('layer').description('convert between layer tarballs and overlayfs layer directories')
  layer
    .command('import')
    .description('apply a Docker/OCI layer tarball (tar or tar.gz) to DIR (absent or empty) in the overlayfs format')
    .argument('<tarball>')
    .argument('<dir>')
    .action(async (tarball: string, dir: string) => {
      const bar = progressBar(`importing ${tarball}`)
      try {
        await importLayer(tarball, dir, { progress: (d, t) => bar.update(d, t) })
      } finally {
        bar.done()
      }
    })
}
