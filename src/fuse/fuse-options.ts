// The -o options libfuse 2.9 takes at mount, validated before they reach it: an unknown one
// leaves a dead mount. Imports nothing.

/** Flags libfuse 2.9.9 accepted here as root (each mounted once and checked in /proc/mounts). */
const FLAG_OPTIONS = new Set([
  'use_ino', 'readdir_ino', 'big_writes', 'kernel_cache', 'auto_cache', 'default_permissions',
  'allow_other', 'allow_root', 'auto_unmount', 'hard_remove', 'debug', 'ro', 'rw', 'noforget',
  'nonempty', 'direct_io', 'async_read', 'sync_read', 'atomic_o_trunc', 'intr',
  // mount(8) flags that libfuse's mount code understands
  'dev', 'nodev', 'suid', 'nosuid', 'exec', 'noexec', 'atime', 'noatime', 'sync', 'async', 'dirsync',
])
const UINT = /^\d{1,10}$/
const SECONDS = /^\d{1,9}(\.\d{1,9})?$/
const VALUE_OPTIONS: ReadonlyMap<string, RegExp> = new Map([
  ['max_write', UINT], ['max_read', UINT], ['max_readahead', UINT], ['max_background', UINT],
  ['congestion_threshold', UINT], ['remember', UINT], ['uid', UINT], ['gid', UINT],
  ['umask', /^[0-7]{1,4}$/],
  ['entry_timeout', SECONDS], ['attr_timeout', SECONDS], ['negative_timeout', SECONDS],
  ['ac_attr_timeout', SECONDS],
  // No ',' (it would inject an option), no '\' (libfuse's escape), no NUL or whitespace.
  ['fsname', /^[^,\\\s\0]{1,255}$/], ['subtype', /^[A-Za-z0-9_.+-]{1,64}$/],
])
/** The C side copies '-o...' into a 1024-byte buffer. */
const MAX_OPTIONS_LENGTH = 1023 - 2

/** Throws (code ERR_FUSE_OPTION) unless every entry is an option libfuse 2.9 accepts. */
export function validateFuseOptions(options: readonly string[]): void {
  for (const opt of options) {
    const eq = opt.indexOf('=')
    const ok = eq < 0 ? FLAG_OPTIONS.has(opt) : VALUE_OPTIONS.get(opt.slice(0, eq))?.test(opt.slice(eq + 1)) === true
    if (!ok) throw optionError(`invalid or unsupported FUSE option '${opt}'`)
  }
  if (options.join(',').length > MAX_OPTIONS_LENGTH) throw optionError('FUSE option list too long')
}

function optionError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_FUSE_OPTION' })
}
