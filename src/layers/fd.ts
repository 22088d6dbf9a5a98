// I/O on real file descriptors of open union files. Synchronous: one short syscall each,
// the cheapest way to answer a FUSE request (see native-notes/fuse-native.md).
import fs from 'node:fs'

export const readFd = (fd: number, buf: Buffer, len: number, pos: number): number =>
  fs.readSync(fd, buf, 0, len, pos)

export const writeFd = (fd: number, buf: Buffer, len: number, pos: number): number =>
  fs.writeSync(fd, buf, 0, len, pos)

export const truncateFd = (fd: number, size: number): void => fs.ftruncateSync(fd, size)

export const closeFd = (fd: number): void => fs.closeSync(fd)

export const fstatFd = (fd: number): fs.BigIntStats => fs.fstatSync(fd, { bigint: true })

/** fsync/fdatasync off the event loop: it can take long on a loaded disk. */
export function syncFd(fd: number, datasync: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err: NodeJS.ErrnoException | null): void => (err ? reject(err) : resolve())
    if (datasync) fs.fdatasync(fd, done)
    else fs.fsync(fd, done)
  })
}
