// The image and container commands: `image import`, `image ls`, `ps [-s]`, `rm`, and the
// `--image` form of `mount` (which only turns an image and a container into the lowerdir,
// upperdir and workdir options of an ordinary mount).
// The store's code loads when a command runs (cli.ts: a plain mount loads none of it).
import fs from 'node:fs'
import type { Command } from 'commander'
import { isMountPoint } from '../layout.js'

/** The store and what every command here takes from it. */
const store = (): Promise<typeof import('./store.js')> => import('./store.js')

export { IMAGE_SUBCOMMANDS } from './subcommands.js'

const ROOT_HELP = 'storage root (default: $LAYERFS_ROOT, else /var/lib/layerfs)'

export interface ImageMountFlags {
  image?: string
  name?: string
  root?: string
  options: string[]
}

const esc = (p: string): string => p.replace(/([\\,:])/g, '\\$1')

/**
 * The -o option of `mount --image REF [--name C]`: the image's layers as lowerdir, the
 * container's upper and workdir (created, or reused, under the root).
 */
export async function imageMountOptions(flags: ImageMountFlags, mountpoint: string): Promise<string> {
  for (const o of flags.options) {
    if (/(^|,)(lowerdir|upperdir|workdir)=/.test(o)) throw new Error('--image gives the layers: lowerdir, upperdir and workdir cannot be given with it')
  }
  let mnt: string
  try {
    mnt = fs.realpathSync(mountpoint)
  } catch {
    throw new Error(`mount point '${mountpoint}': no such directory`)
  }
  // Checked again by the mount; here so that a bad mount point creates no container.
  if (!fs.statSync(mnt).isDirectory()) throw new Error(`mount point '${mountpoint}' is not a directory`)
  if (isMountPoint(mnt)) throw new Error(`mount point '${mountpoint}' is already mounted on`)
  const { Store, rootFrom } = await store()
  const { prepareContainer } = await import('./container.js')
  const c = await prepareContainer(new Store(rootFrom(flags.root)), { image: flags.image!, name: flags.name, mountpoint: mnt })
  if (flags.name === undefined) process.stdout.write(`${c.record.name}\n`)
  return `lowerdir=${c.lowerdirs.map(esc).join(':')},upperdir=${esc(c.upperdir)},workdir=${esc(c.workdir)}`
}

export function registerImageCommands(program: Command): void {
  const image = program.command('image').description('image store: import and list images')
  image
    .command('import')
    .description('import an OCI image layout directory or a docker save tarball (each layer stored once)')
    .argument('<source>')
    .option('--root <dir>', ROOT_HELP)
    .option('-t, --tag <name[:tag]>', 'name the image (instead of the names it carries)')
    .action(async (source: string, o: { root?: string; tag?: string }) => {
      const { Store, digestHex, rootFrom } = await store()
      const [{ importImage }, { progressBar }] = await Promise.all([import('./image-import.js'), import('./progress-bar.js')])
      const results = await importImage(new Store(rootFrom(o.root)), source, { tag: o.tag, progress: label => progressBar(label) })
      for (const r of results) {
        const added = r.layers.filter(l => l.added).length
        const names = r.refs.length ? r.refs.join(', ') : '(untagged)'
        process.stdout.write(`${digestHex(r.id).slice(0, 12)} ${names}: ${r.layers.length} layers, ${added} new\n`)
      }
    })
  image
    .command('ls')
    .description('list the images in the store')
    .option('--root <dir>', ROOT_HELP)
    .action(async (o: { root?: string }) => {
      const [{ Store, digestHex, rootFrom }, { humanSize }] = await Promise.all([store(), import('./ps.js')])
      const s = new Store(rootFrom(o.root))
      const byId = new Map<string, string[]>()
      for (const [ref, id] of Object.entries(s.tags())) byId.set(id, [...(byId.get(id) ?? []), ref])
      const rows = [['IMAGE', 'ID', 'LAYERS', 'SIZE']]
      for (const img of s.images().sort((a, b) => a.imported.localeCompare(b.imported))) {
        const size = img.layers.reduce((n, id) => n + (s.layer(id)?.size ?? 0), 0)
        for (const ref of byId.get(img.id) ?? ['<none>']) {
          rows.push([ref, digestHex(img.id).slice(0, 12), String(img.layers.length), humanSize(size)])
        }
      }
      const w = rows[0]!.map((_, i) => Math.max(...rows.map(r => r[i]!.length)))
      process.stdout.write(rows.map(r => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]! + 2))).join('')).join('\n') + '\n')
    })
  program
    .command('ps')
    .description('list mounted containers; -s: size (writable layer) and virtual size (plus image layers)')
    .option('-s, --size', 'show sizes and the total on disk (shared layers counted once)')
    .option('-a, --all', 'every container, mounted or not')
    .option('--json', 'machine-readable output, sizes in bytes')
    .option('--root <dir>', ROOT_HELP)
    .action(async (o: { size?: boolean; all?: boolean; json?: boolean; root?: string }) => {
      const [{ Store, rootFrom }, { formatPs, ps }] = await Promise.all([store(), import('./ps.js')])
      const report = ps(new Store(rootFrom(o.root)), { all: o.all === true, sizes: o.size === true })
      process.stdout.write(o.json ? JSON.stringify(report, null, 2) + '\n' : formatPs(report))
    })
  program
    .command('rm')
    .description("remove containers' writable layers (never an image layer); refused while mounted")
    .argument('<container...>')
    .option('--root <dir>', ROOT_HELP)
    .action(async (names: string[], o: { root?: string }) => {
      const [{ Store, rootFrom }, { removeContainer }] = await Promise.all([store(), import('./container.js')])
      const s = new Store(rootFrom(o.root))
      for (const name of names) {
        await removeContainer(s, name)
        process.stdout.write(`${name}\n`)
      }
    })
}
