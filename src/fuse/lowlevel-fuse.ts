// A union served through the lowlevel session: mount, serve, unmount.
import { execFile } from 'node:child_process'
import type { Union } from '../union/union.js'
import { type CacheTimeouts, LowLevelOps } from './ll-ops.js'
import { LowLevelSession } from './lowlevel.js'
import { validateFuseOptions } from './fuse-options.js'
import { fuseLog } from '../log.js'

export interface LowLevelFuseOptions {
  /** fuse_mount's -o list: fsname, subtype, allow_other, default_permissions, auto_unmount, ro, ... */
  mountOptions: readonly string[]
  /** The session's -o list (libfuse 2.9's names): max_write, big_writes, atomic_o_trunc, debug, ... */
  sessionOptions: readonly string[]
  timeouts: CacheTimeouts
}

/** The session's -o options (protocol.c, ll_session_options, takes libfuse 2.9's names); anything else is refused. */
const SESSION_OPTIONS = /^(debug|big_writes|atomic_o_trunc|async_read|sync_read|no_remote_lock|max_write=\d+|max_readahead=\d+|max_background=\d+|congestion_threshold=\d+)$/

export class LowLevelFuse {
  readonly #mnt: string
  readonly #ops: LowLevelOps
  readonly #opts: LowLevelFuseOptions
  #session: LowLevelSession | undefined

  constructor(mnt: string, union: Union, opts: LowLevelFuseOptions) {
    validateFuseOptions(opts.mountOptions)
    for (const o of opts.sessionOptions) {
      if (!SESSION_OPTIONS.test(o)) throw Object.assign(new Error(`invalid FUSE session option '${o}'`), { code: 'ERR_FUSE_OPTION' })
    }
    this.#mnt = mnt
    this.#ops = new LowLevelOps(union, opts.timeouts)
    this.#opts = opts
  }

  get ops(): LowLevelOps {
    return this.#ops
  }

  /** Resolves once the kernel's INIT is answered: the mount is live. */
  async mountAsync(): Promise<void> {
    const s = new LowLevelSession(this.#mnt, this.#opts.mountOptions, this.#opts.sessionOptions, this.#ops.handle)
    this.#session = s
    this.#ops.attach(s)
    await s.initialized
    const { protoMinor, maxWrite, passthrough, uring } = s.info()
    fuseLog('FUSE 7.%d, max_write %d, passthrough %s, io_uring %s', protoMinor, maxWrite, passthrough ? 'negotiated' : 'off',
      uring ? 'on' : 'off')
  }

  /** `fusermount -uz` the mount point; resolves when the session has ended (or after 2 s). */
  async unmountAsync(): Promise<void> {
    const s = this.#session
    await new Promise<void>((resolve, reject) =>
      execFile('fusermount', ['-uz', this.#mnt], err => (err && !s?.isExited ? reject(err) : resolve())))
    if (s === undefined) return
    await Promise.race([s.exited, new Promise(resolve => setTimeout(resolve, 2000).unref())])
  }

  /** Resolves when the session ends, whoever unmounted. */
  get exited(): Promise<void> {
    return this.#session?.exited ?? Promise.resolve()
  }
}
