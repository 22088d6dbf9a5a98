// The layer subcommands of the CLI: `layer import`, `layer export`, `diff`. One function
// registers them all on the program of src/cli.ts; errors are thrown, cli.ts prints one line.
// The tools themselves load when a command runs (cli.ts: the mount command loads none).
import type { Command } from 'commander'

/** "L1:L2" with `\:` escaping a colon (lowerdir's syntax) -> the paths, top-most first. */
export function splitLowers(s: string): string[] {
  return (s.match(/(?:\\.|[^:\\])+/g) ?? []).map(p => p.replace(/\\(.)/g, '$1'))
}

interface LayerFlags {
  lower?: string
  /** Commander leaves it undefined when absent: the format is then detected. */
  userxattr?: true
}

const lowersOf = (flags: LayerFlags): string[] => (flags.lower === undefined ? [] : splitLowers(flags.lower))

const USERXATTR_HELP = "the layers are in the kernel's userxattr format (user.overlay.*), as the mount's -o userxattr writes them (default: detected)"

export function registerLayerCommands(program: Command): void {
  const layer = program.command('layer').description('convert between layer tarballs and overlayfs layer directories')
  layer
    .command('import')
    .description('apply a Docker/OCI layer tarball (tar or tar.gz) to DIR (absent or empty) in the overlayfs format')
    .argument('<tarball>')
    .argument('<dir>')
    .action(async (tarball: string, dir: string) => {
      const [{ importLayer }, { progressBar }] = await Promise.all([import('./layer-import.js'), import('./progress-bar.js')])
      const bar = progressBar(`importing ${tarball}`)
      try {
        await importLayer(tarball, dir, { progress: (d, t) => bar.update(d, t) })
      } finally {
        bar.done()
      }
    })
  layer
    .command('export')
    .description('write the upper layer UPPER as a Docker/OCI layer tarball (deterministic)')
    .argument('<upper>')
    .argument('<tarball>')
    .option('--lower <dirs>', 'the lower layers L1[:L2...] (top-most first): needed for renamed directories')
    .option('--userxattr', USERXATTR_HELP)
    .action(async (upper: string, tarball: string, flags: LayerFlags) => {
      const { exportLayer } = await import('./layer-export.js')
      await exportLayer(upper, tarball, { lowers: lowersOf(flags), userxattr: flags.userxattr })
    })
  program
    .command('diff')
    .description("list what UPPER changes over its lower layers, as 'docker diff' does (A/C/D PATH)")
    .argument('<upper>')
    .option('--lower <dirs>', 'the lower layers L1[:L2...] (top-most first)')
    .option('--userxattr', USERXATTR_HELP)
    .action(async (upper: string, flags: LayerFlags) => {
      const { diffLayer, formatChanges } = await import('./layer-diff.js')
      process.stdout.write(formatChanges(diffLayer(upper, lowersOf(flags), { userxattr: flags.userxattr })))
    })
}
