// The loggers: DEBUG=layerfs:* shows everything. A leaf module: imports nothing of ours.
import createDebug from 'debug'

export const log = createDebug('layerfs')
export const fuseLog = createDebug('layerfs:fuse')
/** Every request that reaches JS (lowlevel binding): its op, node and name. */
export const requestLog = createDebug('layerfs:request')
export const hostLog = createDebug('layerfs:host')
export const copyUpLog = createDebug('layerfs:copy-up')
export const mountLog = createDebug('layerfs:mount')
