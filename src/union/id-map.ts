// Owners between the layers and the mount: fuse-overlayfs's uidmapping=, gidmapping= and
// squash_to_* options, which containers/storage passes a mount program. A mapping is
// LAYER:MOUNT:COUNT triples (containers/storage's ContainerID:HostID:Size): the layers hold
// the container's own IDs, the mount shows the host's, and the kernel maps those into the
// container's user namespace, so one stored image serves containers of any ID mapping.
// An ID no triple covers shows (and is stored) as the overflow ID, as in fuse-overlayfs.

export interface IdMapping {
  /** First ID as the layers store it. */
  layer: number
  /** First ID as the mount shows it. */
  mount: number
  count: number
}

export interface IdMaps {
  uidmap?: readonly IdMapping[]
  gidmap?: readonly IdMapping[]
  /** Every owner shows as 0:0 (squash_to_uid/gid win over it). */
  squashToRoot?: boolean
  squashUid?: number
  squashGid?: number
}

/** The kernel's overflowuid/overflowgid default: what an unmapped ID becomes. */
export const OVERFLOW_ID = 65534
/** chown's "leave as is" (-1 as it arrives from FUSE). */
const UNCHANGED = 0xffffffff

/**
 * Parse `A:B:C[:A:B:C...]` (an option's value) into mappings. Empty fields are skipped, as
 * fuse-overlayfs's strtok does: containers/storage writes `uidmapping=:0:1000:60000`.
 */
export function parseIdMappings(key: string, val: string | undefined): IdMapping[] {
  const n = (val ?? '').split(':').filter(x => x !== '').map(x => (/^\d+$/.test(x) ? Number(x) : NaN))
  if (n.length === 0 || n.length % 3 !== 0 || n.some(x => !Number.isSafeInteger(x))) {
    throw Object.assign(new Error(`option '${key}' needs LAYER:MOUNT:COUNT triples, colon-separated (got '${val ?? ''}')`), { code: 'ERR_LAYERFS_OPTION' })
  }
  const out: IdMapping[] = []
  for (let i = 0; i < n.length; i += 3) out.push({ layer: n[i]!, mount: n[i + 1]!, count: n[i + 2]! })
  return out
}

function find(map: readonly IdMapping[] | undefined, id: number, from: 'layer' | 'mount', to: 'layer' | 'mount'): number {
  if (map === undefined) return id
  for (const m of map) if (id >= m[from] && id < m[from] + m.count) return m[to] + (id - m[from])
  return OVERFLOW_ID
}

export class IdMap {
  readonly #maps: IdMaps
  /** Nothing to map: every ID is shown and stored as it is. */
  readonly identity: boolean
  /** Owners are squashed: a chown through the mount that the layers refuse is not an error. */
  readonly squashes: boolean

  constructor(maps: IdMaps = {}) {
    this.#maps = maps
    this.squashes = maps.squashToRoot === true || maps.squashUid !== undefined || maps.squashGid !== undefined
    this.identity = !this.squashes && maps.uidmap === undefined && maps.gidmap === undefined
  }

  /** The uid the mount shows for a layer's. */
  uidOut(id: number): number {
    const m = this.#maps
    if (m.squashUid !== undefined) return m.squashUid
    if (m.squashToRoot) return 0
    return find(m.uidmap, id, 'layer', 'mount')
  }

  gidOut(id: number): number {
    const m = this.#maps
    if (m.squashGid !== undefined) return m.squashGid
    if (m.squashToRoot) return 0
    return find(m.gidmap, id, 'layer', 'mount')
  }

  /** The uid a layer stores for one of the mount's (a caller's, a chown's; -1 stays -1). */
  uidIn(id: number): number {
    return id === UNCHANGED || id === -1 ? id : find(this.#maps.uidmap, id, 'mount', 'layer')
  }

  gidIn(id: number): number {
    return id === UNCHANGED || id === -1 ? id : find(this.#maps.gidmap, id, 'mount', 'layer')
  }
}
