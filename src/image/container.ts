// Containers: a thin writable layer (upper + workdir) under the storage root on top of an
// image's layers. Creating or reusing one, telling whether it is mounted, removing it. An
// image layer is never written or removed here.
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import { join } from 'node:path'
import { type ContainerRecord, Store, StoreError, alive, checkContainerName } from './store.js'

/** The layer directories a mount of the container needs (absolute, under the current root). */
export interface ContainerLayout {
  record: ContainerRecord
  /** Lower layers, top-most first (the lowerdir= order). */
  lowerdirs: string[]
  upperdir: string
  workdir: string
}

export function containerUpper(store: Store, name: string): string {
  return join(store.containerDir(name), 'upper')
}

function layoutOf(store: Store, record: ContainerRecord): ContainerLayout {
  for (const id of record.layers) {
    if (!store.layer(id)) throw new StoreError(`container '${record.name}': layer ${id} is missing from '${store.root}'`)
  }
  return {
    record,
    lowerdirs: [...record.layers].reverse().map(id => store.layerDiff(id)),
    upperdir: containerUpper(store, record.name),
    workdir: join(store.containerDir(record.name), 'work'),
  }
}

function mountedLayerfs(point: string): boolean {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8')
  for (const line of text.split('\n')) {
    const f = line.split(' ')
    const dash = f.indexOf('-', 6)
    if (dash < 0 || f[4] === undefined) continue
    const p = f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
    if (p === point && f[dash + 1] === 'fuse.layerfs') return true
  }
  return false
}

/**
 * Where the container is mounted, or undefined. Mounted: a layerfs mount at the mount point
 * it was last mounted at, or the process that is mounting it still running (a second mount
 * of one upper layer must never start while the first is coming up).
 */
export function mountedAt(c: ContainerRecord): string | undefined {
  if (c.mountpoint === undefined) return undefined
  if (mountedLayerfs(c.mountpoint)) return c.mountpoint
  if (c.pid !== undefined && c.pid !== process.pid && alive(c.pid)) return c.mountpoint
  return undefined
}

export interface PrepareOptions {
  /** The image reference or id. */
  image: string
  /** The container's name; a fresh one when absent. */
  name?: string | undefined
  /** The mount point (absolute), recorded so that ps and rm can tell it is mounted. */
  mountpoint: string
}

/**
 * Create container `name` from `image` (or reuse it: it must come from that image and not be
 * mounted) and record that this process is mounting it at `mountpoint`.
 */
export async function prepareContainer(store: Store, o: PrepareOptions): Promise<ContainerLayout> {
  if (!store.exists()) throw new StoreError(`no image store at '${store.root}' (import an image first)`)
  if (o.name !== undefined) checkContainerName(o.name)
  return store.withLock(() => {
    const { ref, image } = store.resolveImage(o.image)
    let name = o.name
    if (name === undefined) {
      do name = randomBytes(6).toString('hex')
      while (fs.existsSync(store.containerDir(name)))
    }
    let record = store.container(name)
    if (record) {
      if (record.imageId !== image.id) {
        throw new StoreError(`container '${name}' was created from image ${record.image} (${record.imageId.slice(7, 19)}), not ${o.image}`)
      }
      const at = mountedAt(record)
      if (at !== undefined) throw new StoreError(`container '${name}' is already mounted at '${at}'`)
    } else {
      const dir = store.containerDir(name)
      fs.mkdirSync(dir, { mode: 0o700 })
      fs.mkdirSync(join(dir, 'upper'), { mode: 0o755 })
      fs.mkdirSync(join(dir, 'work'), { mode: 0o700 })
      record = { name, image: ref, imageId: image.id, layers: [...image.layers], created: new Date().toISOString() }
    }
    const layout = layoutOf(store, record)
    record = { ...record, mountpoint: o.mountpoint, pid: process.pid }
    store.putContainer(record)
    return { ...layout, record }
  })
}

/** Remove a container's writable layer (upper, workdir, record); refused while mounted. */
export async function removeContainer(store: Store, name: string): Promise<void> {
  checkContainerName(name)
  if (!store.exists()) throw new StoreError(`no container '${name}' in '${store.root}'`)
  await store.withLock(() => {
    const record = store.container(name)
    const dir = store.containerDir(name)
    if (!record) {
      throw new StoreError(`no container '${name}' in '${store.root}'`)
    }
    const at = mountedAt(record)
    if (at !== undefined) throw new StoreError(`container '${name}' is mounted at '${at}': unmount it first`)
    // Moved out in one rename, then deleted: a removal cut short leaves no half container
    // (the scratch directory is cleaned by the next command that takes the lock).
    const trash = join(store.tempDir(), 'container')
    fs.renameSync(dir, trash)
    fs.rmSync(trash, { recursive: true, force: true })
  })
}
