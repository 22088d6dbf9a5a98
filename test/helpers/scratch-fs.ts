// A fresh filesystem of a chosen type for a test's layers: tmpfs, or ext4 on a loop device (a
// sparse image in the scratch root). What the kernel shows of a directory depends on the
// filesystem under it (tmpfs directory sizes grow with their entries, ext4's stay 4096), so a
// test that must hold on any upper runs on each. Unmounted at t's teardown: teardowns run last
// registered first, so the mounts later made on it come off before it does.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { TeardownHost } from './mount.js'
import { run, runOk } from './run.js'
import { forceUnmountSync, freshDir, isMounted, registerMount, unregisterMount } from './scratch.js'

export type ScratchFsType = 'tmpfs' | 'ext4' | 'xfs' | 'ramfs'

/** What a test that must hold on any upper runs on (xfs only where asked: reflinks). */
export const SCRATCH_FS_TYPES = ['tmpfs', 'ext4'] as const satisfies readonly ScratchFsType[]

/**
 * Mounts a new `type` filesystem of `sizeMiB` and returns its mount point. ext4 gets 256-byte
 * inodes (nanosecond times, room for the overlay's xattrs in the inode) whatever its size;
 * xfs has reflinks (FICLONE) and at least 300 MiB (mkfs.xfs refuses less; the image is sparse).
 * ramfs takes no xattrs.
 */
export async function scratchFs(t: TeardownHost, type: ScratchFsType, sizeMiB = 128): Promise<string> {
  const base = freshDir(`fs-${type}`)
  const mnt = join(base, 'mnt')
  mkdirSync(mnt)
  registerMount(mnt, 'fs')
  t.teardown(async () => {
    if (isMounted(mnt)) {
      const r = await run('umount', [mnt], { timeout: 30_000 })
      if (r.code !== 0 || isMounted(mnt)) {
        forceUnmountSync(mnt, 'fs')
        throw new Error(`scratch ${type} at ${mnt}: umount failed (${r.stderr.trim()}); lazily unmounted`)
      }
    }
    unregisterMount(mnt)
  })
  if (type === 'tmpfs') {
    await runOk('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=755`, 'layerfs-test', mnt])
  } else if (type === 'ramfs') {
    // No xattrs at all (ENOTSUP), no size limit.
    await runOk('mount', ['-t', 'ramfs', '-o', 'mode=755', 'layerfs-test', mnt])
  } else if (type === 'xfs') {
    const image = join(base, 'xfs.img')
    await runOk('truncate', ['-s', `${Math.max(sizeMiB, 300)}M`, image])
    await runOk('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', image])
    await runOk('mount', ['-t', 'xfs', '-o', 'loop', image, mnt])
  } else {
    const image = join(base, 'ext4.img')
    await runOk('truncate', ['-s', `${sizeMiB}M`, image])
    await runOk('mkfs.ext4', ['-q', '-F', '-I', '256', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image])
    // -o loop: mount(8) takes a free loop device and frees it again at umount (autoclear).
    await runOk('mount', ['-t', 'ext4', '-o', 'loop', image, mnt])
  }
  return mnt
}
