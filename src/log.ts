// The loggers: DEBUG=layerfs:* shows everything. A leaf module: imports nothing of ours.
// The debug package loads only when DEBUG is set (as it reads DEBUG only when it loads): a
// mount's start-up does not pay for it otherwise (native-notes/mount-program.md).
import { createRequire } from 'node:module'
import type { Debugger } from 'debug'

/** What the code uses of a debug logger: the call, and `enabled` to skip costly arguments. */
export type Logger = Pick<Debugger, 'enabled'> & ((formatter: unknown, ...args: unknown[]) => void)

const off: Logger = Object.assign(() => {}, { enabled: false })
const debugEnv = process.env['DEBUG']
const createDebug = debugEnv !== undefined && debugEnv !== ''
  ? (createRequire(import.meta.url)('debug') as typeof import('debug'))
  : undefined
const logger = (namespace: string): Logger => createDebug?.(namespace) ?? off

export const log = logger('layerfs')
export const fuseLog = logger('layerfs:fuse')
/** Every request that reaches JS (lowlevel binding): its op, node and name. */
export const requestLog = logger('layerfs:request')
export const hostLog = logger('layerfs:host')
export const copyUpLog = logger('layerfs:copy-up')
export const mountLog = logger('layerfs:mount')
