// Types for fuse-native@2.2.6 AS PATCHED by scripts/fuse-native/fuse-native.patch (there is no
// @types package). Only src/fuse/binding.ts imports the module; this file describes what it uses:
// the public surface plus the private hooks it overrides (_fuseOptions, _op_*). Shapes are what
// the code really passes (see shared/fuse-native-facts.md §1), not what its README says.
declare module 'fuse-native' {
  /** The native reply: first argument an int32 (0, -errno, or a byte count), then op results. */
  type Signal = (code: number, ...values: unknown[]) => void

  namespace Fuse {
    /** Constructor options that fuse-native itself reads (we pass -o options via _fuseOptions). */
    interface Options {
      /** ms per op, `false` for none, or per-op `{ default, read: false, ... }`. Default 15000. */
      timeout?: number | false | { [op: string]: number | false | undefined }
      /** Unmount a stale (ENOTCONN) mount point before mounting. */
      force?: boolean
      /** Create the mount point if missing. */
      mkdir?: boolean
      debug?: boolean
    }
    /** The op table fuse-native calls; loosely typed here, binding.ts types ours (FuseOps). */
    type Ops = Record<string, ((...args: never[]) => void) | undefined>
    /** Patch rev 3: fuse_get_context() of the request being dispatched. */
    interface RequestCaller {
      uid: number
      gid: number
      pid: number
      umask: number
    }
  }

  class Fuse {
    constructor(mnt: string, ops: Fuse.Ops, opts?: Fuse.Options)
    readonly mnt: string
    readonly ops: Fuse.Ops
    readonly opts: Fuse.Options
    mount(cb: (err: Error | null) => void): void
    unmount(cb: (err: Error | null) => void): void
    errno(code: string): number
    /** `fusermount -uz <mnt>` (lazy). Needs the fusermount binary. */
    static unmount(mnt: string, cb: (err: Error | null) => void): void
    /** Set only by the patched build: the patch revision of the loaded native module and index.js. */
    static readonly layerfsPatch: number | undefined

    /**
     * Patch rev 3: the caller of the request whose `_op_*` hook is running right now, set only
     * for the synchronous extent of that call (null otherwise). Copy it before yielding.
     */
    protected readonly _requestCaller: Fuse.RequestCaller | null

    // Private hooks that binding.ts overrides. `signal` is the native reply for one request.
    protected _fuseOptions(): string
    protected _op_utimens(signal: Signal, path: string, atimeSec: number, atimeNsec: number,
      mtimeSec: number, mtimeNsec: number): void
    protected _op_getxattr(signal: Signal, path: string, name: string, valueBuf: Buffer,
      position: number): void
    protected _op_listxattr(signal: Signal, path: string, listBuf: Buffer): void
    protected _op_setxattr(signal: Signal, path: string, name: string, value: Buffer,
      position: number, flags: number): void
    protected _op_fgetattr(signal: Signal, path: string, fd: number): void
    /** The C passes (path, fh, flags); the default passes fh as flags. */
    protected _op_opendir(signal: Signal, path: string, fh: number, flags: number): void

    static readonly EPERM: number
    static readonly ENOENT: number
    static readonly EIO: number
    static readonly ERANGE: number
    static readonly ENODATA: number
  }
  export = Fuse
}
