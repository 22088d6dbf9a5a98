// Open files: open (copy-up first when it may write), create, read, write, truncate, fsync,
// release. I/O goes straight to the real fd behind the handle.
import { constants } from 'node:fs'
import { fsError } from '../errors.js'
import type { BigIntStats } from 'node:fs'
import { closeFd, fstatFd, readFd, syncFd, truncateFd, writeFd } from '../layers/fd.js'
import { copyUp } from './copy-up.js'
import { type Caller, createObject } from './dir-ops.js'
import type { Handle } from './handles.js'
import type { Union } from './union.js'

const O_ACCMODE = 3
const { O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_NOCTTY, O_DIRECT } = constants
/**
 * Flags that already did their work in the kernel, or that our buffers cannot honour.
 * O_TRUNC stays: with atomic_o_trunc it arrives here instead of as a truncate.
 */
const STRIP = O_CREAT | O_EXCL | O_NOCTTY | O_DIRECT

export async function open(u: Union, path: string, flags: number): Promise<number> {
  u = u.route(path)
  let e = u.resolve(path)
  const trunc = (flags & O_TRUNC) !== 0
  if ((flags & O_ACCMODE) !== O_RDONLY || trunc) {
    u.requireUpper('open', path)
    // Data that O_TRUNC would drop is not copied.
    e = await copyUp(u, e, !trunc)
  }
  const fd = e.top.layer.open(e.top.path, flags & ~STRIP)
  return u.handles.add({ fd, path, upper: e.upper !== undefined, flags })
}

/** create(2): the binding does not pass the caller's flags, so the file is opened O_RDWR. */
export function create(u: Union, path: string, mode: number, caller?: Caller): number {
  u = u.routeName(path, 'create')
  let fd = -1
  createObject(u, path, 'create', (up, p) => {
    fd = up.open(p, O_CREAT | O_EXCL | O_RDWR, mode & 0o7777)
  }, caller)
  return u.handles.add({ fd, path, upper: true, flags: O_RDWR })
}

function handle(u: Union, id: number, syscall: string): Handle {
  const h = u.handles.get(id)
  if (!h) throw fsError('EBADF', syscall)
  return h
}

export const read = (u: Union, id: number, buf: Buffer, len: number, pos: number): number =>
  readFd(handle(u, id, 'read').fd, buf, len, pos)

export function write(u: Union, id: number, buf: Buffer, len: number, pos: number): number {
  const h = handle(u, id, 'write')
  if (!h.upper) throw fsError('EBADF', 'write', h.path)
  return writeFd(h.fd, buf, len, pos)
}

/** fstat(2) of the real file behind a handle (an unlinked open file has no path left). */
export const fstat = (u: Union, id: number): BigIntStats => fstatFd(handle(u, id, 'fstat').fd)

export function ftruncate(u: Union, id: number, size: number): void {
  const h = handle(u, id, 'ftruncate')
  if (!h.upper) throw fsError('EBADF', 'ftruncate', h.path)
  truncateFd(h.fd, size)
}

export async function truncate(u: Union, path: string, size: number): Promise<void> {
  u = u.route(path)
  const upper = u.requireUpper('truncate', path)
  const parked = u.hidden.get(path)
  if (parked) {
    // An unlinked open file: only an upper one can change (a lower one was opened read-only).
    if (!parked.upper) throw fsError('EBADF', 'truncate', path)
    return upper.truncate(parked.upper.path, size)
  }
  const e = u.resolve(path)
  if (e.isDir) throw fsError('EISDIR', 'truncate', path)
  await copyUp(u, e)
  upper.truncate(path, size)
}

export async function fsync(u: Union, id: number, datasync: boolean): Promise<void> {
  const h = handle(u, id, 'fsync')
  await syncFd(h.fd, datasync)
}

/** fsync(2) of a directory: its upper directory's entries reach the disk (as overlayfs does). */
export async function fsyncDir(u: Union, path: string): Promise<void> {
  const e = u.resolve(path)
  if (e.upper) await u.upper!.fsyncFile(path)
}

export function release(u: Union, id: number): void {
  const h = u.handles.remove(id)
  if (h) closeFd(h.fd)
}
