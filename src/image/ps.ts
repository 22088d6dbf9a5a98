// Container sizes the way `docker ps -s` tells them: size is the container's writable layer
// (its upper directory on disk), virtual size adds the image layers it reads. Virtual sizes
// cannot be summed (containers share layers): the total on disk counts every container's
// writable layer plus each image layer used once.
import { containerUpper, mountedAt } from './container.js'
import { diskUsage } from './disk-usage.js'
import type { ContainerRecord, Store } from './store.js'

/** Sizes as docker prints them (SI units). */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB']
  let i = 0
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000
    i++
  }
  return `${i === 0 ? n : n.toFixed(1)}${units[i]}`
}

export interface ContainerStatus {
  name: string
  image: string
  imageId: string
  mountpoint: string | undefined
  /** Bytes on disk of the writable layer (what du counts for its upper directory). */
  size?: number
  /** size plus the bytes of the image layers under it. */
  virtualSize?: number
}

export interface PsReport {
  containers: ContainerStatus[]
  /** With sizes: every listed container's writable layer, plus each image layer they use once. */
  totalOnDisk?: number
  /** Of which image layers (each counted once). */
  sharedLayers?: number
}

export interface PsOptions {
  /** All containers, not only the mounted ones. */
  all?: boolean
  /** Compute sizes (walks every upper directory). */
  sizes?: boolean
}

export function ps(store: Store, o: PsOptions = {}): PsReport {
  const list: { c: ContainerRecord; at: string | undefined }[] = store
    .containers()
    .map(c => ({ c, at: mountedAt(c) }))
    .filter(x => o.all || x.at !== undefined)
    .sort((a, b) => a.c.name.localeCompare(b.c.name))
  if (!o.sizes) return { containers: list.map(({ c, at }) => ({ name: c.name, image: c.image, imageId: c.imageId, mountpoint: at })) }
  const layerSize = (id: string): number => store.layer(id)?.size ?? 0
  const used = new Set<string>()
  let writable = 0
  const containers = list.map(({ c, at }) => {
    const size = diskUsage(containerUpper(store, c.name))
    writable += size
    for (const id of c.layers) used.add(id)
    const virtualSize = size + c.layers.reduce((n, id) => n + layerSize(id), 0)
    return { name: c.name, image: c.image, imageId: c.imageId, mountpoint: at, size, virtualSize }
  })
  const sharedLayers = [...used].reduce((n, id) => n + layerSize(id), 0)
  return { containers, totalOnDisk: writable + sharedLayers, sharedLayers }
}

/** The table `layerfs ps` prints. */
export function formatPs(r: PsReport): string {
  const rows = [['CONTAINER', 'IMAGE', 'MOUNTED AT', ...(r.totalOnDisk !== undefined ? ['SIZE'] : [])]]
  for (const c of r.containers) {
    rows.push([
      c.name,
      c.image,
      c.mountpoint ?? '-',
      ...(c.size !== undefined ? [`${humanSize(c.size)} (virtual ${humanSize(c.virtualSize!)})`] : []),
    ])
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map(row => row[i]!.length)))
  const lines = rows.map(row => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]! + 2))).join(''))
  if (r.totalOnDisk !== undefined) {
    lines.push(`total on disk: ${humanSize(r.totalOnDisk)} (writable layers ${humanSize(r.totalOnDisk - r.sharedLayers!)}, image layers ${humanSize(r.sharedLayers!)} counted once)`)
  }
  return lines.join('\n') + '\n'
}
