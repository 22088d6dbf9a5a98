// FsError: the one error type of the core. An errno name from the first throw to the last
// reply; the FUSE adapter turns it into -errno in one place (src/fuse/reply.ts).
import { constants } from 'node:os'

export type Errno = keyof typeof constants.errno

export class FsError extends Error {
  readonly code: Errno
  readonly errno: number
  readonly syscall: string
  readonly path: string | undefined
  constructor(code: Errno, syscall: string, path?: string) {
    super(`${code}: ${syscall}${path === undefined ? '' : ` '${path}'`}`)
    this.code = code
    this.errno = -constants.errno[code]
    this.syscall = syscall
    this.path = path
  }
}

/** The negative errno of anything thrown: FsError and Node's fs errors carry one; anything else is EIO. */
export function errnoOf(err: unknown): number {
  if (err && typeof err === 'object') {
    const e = err as { errno?: unknown; code?: unknown }
    if (typeof e.errno === 'number' && e.errno < 0 && Number.isInteger(e.errno)) return e.errno
    if (typeof e.code === 'string' && e.code in constants.errno) {
      return -constants.errno[e.code as Errno]
    }
  }
  return -constants.errno.EIO
}

/** The errno name of a thrown value, or undefined when it has none. */
export function codeOf(err: unknown): string | undefined {
  if (err && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'string') {
    return (err as { code: string }).code
  }
  return undefined
}

export const fsError = (code: Errno, syscall: string, path?: string): FsError =>
  new FsError(code, syscall, path)
