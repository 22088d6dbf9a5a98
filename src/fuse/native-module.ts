// The native part of src/fuse/: our FUSE session addon (src/fuse/native, lowlevel.node, built by
// scripts/build-native.sh). Only src/fuse/ imports this.
import { createRequire } from 'node:module'

/** The session addon's version the code is written against (src/fuse/native/lowlevel.c). */
export const LOWLEVEL_VERSION = 1

// From dist/fuse/ and from dist/bundle/ alike: two levels below the checkout.
const LOWLEVEL_NODE = '../../src/fuse/native/build/Release/lowlevel.node'

let loaded: unknown

/** The session addon, loaded once; throws (code ERR_FUSE_NATIVE) unless it is this code's build. */
export function lowlevelModule(): unknown {
  if (loaded !== undefined) return loaded
  let m: { layerfs_lowlevel_version?: number }
  try {
    m = createRequire(import.meta.url)(LOWLEVEL_NODE) as typeof m
  } catch (e) {
    throw unbuilt(`cannot load ${LOWLEVEL_NODE} (${(e as Error).message.split('\n')[0]})`)
  }
  if (m.layerfs_lowlevel_version !== LOWLEVEL_VERSION) throw unbuilt(`version ${String(m.layerfs_lowlevel_version)}, want ${LOWLEVEL_VERSION}`)
  return (loaded = m)
}

const unbuilt = (why: string): Error =>
  Object.assign(new Error(`layerfs's FUSE session addon is not built for this code (${why}): run scripts/build-native.sh`), { code: 'ERR_FUSE_NATIVE' })
