// The patched fuse-native's native module (build/Release/fuse.node, built from source by
// scripts/build-native.sh), loaded by itself: the lowlevel session needs nothing of the
// package's index.js, whose loading (node-gyp-build, nanoresource, fuse-shared-library) was
// ~10 ms of every mount's start-up. Only src/fuse/ imports this.
import { createRequire } from 'node:module'

/** The patch revision the code is written against (scripts/fuse-native/fuse-native.patch). */
export const PATCH_REV = 5

const FUSE_NODE = 'fuse-native/build/Release/fuse.node'

let loaded: unknown

/** The native module, loaded once; throws (code ERR_FUSE_UNPATCHED) unless it is the patched build. */
export function fuseNativeModule(): unknown {
  if (loaded !== undefined) return loaded
  let m: { layerfs_patch_version?: number }
  try {
    m = createRequire(import.meta.url)(FUSE_NODE) as typeof m
  } catch (e) {
    throw unpatched(`cannot load ${FUSE_NODE} (${(e as Error).message.split('\n')[0]})`)
  }
  if (m.layerfs_patch_version !== PATCH_REV) throw unpatched(`patch rev ${String(m.layerfs_patch_version)}, want ${PATCH_REV}`)
  return (loaded = m)
}

const unpatched = (why: string): Error =>
  Object.assign(new Error(`fuse-native is not the layerfs-patched build (${why}): run scripts/build-native.sh`), { code: 'ERR_FUSE_UNPATCHED' })
