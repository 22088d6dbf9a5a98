// The FUSE op table: each op calls one union function and turns its result into a reply.
// No semantics here; errors are errno from the core (errnoOf), thrown ones caught by the
// binding's guard.
import { constants } from 'node:os'
import { errnoOf, fsError } from '../errors.js'
import * as attr from '../union/attr-ops.js'
import * as dir from '../union/dir-ops.js'
import * as file from '../union/file-ops.js'
import type { Union } from '../union/union.js'
import type { Code, Done, FuseOps } from './binding.js'

/** Reply to a synchronous op: 0, or the errno of what it threw. */
function run(done: Done, fn: () => void): void {
  try {
    fn()
  } catch (err) {
    return done(errnoOf(err))
  }
  done(0)
}

/** Reply to an asynchronous op once it settles. */
function settle(done: Done, p: Promise<void>): void {
  p.then(() => done(0), (err: unknown) => done(errnoOf(err)))
}

/** Reply with a value, or with the errno of what computing it threw. */
function value<T>(reply: (code: Code, v?: T) => void, fn: () => T | undefined): void {
  let v: T | undefined
  try {
    v = fn()
  } catch (err) {
    return reply(errnoOf(err))
  }
  reply(0, v)
}

const ENOENT = -constants.errno.ENOENT

export function unionOps(u: Union): FuseOps {
  return {
    init: done => done(0),
    getattr: (path, reply) => {
      let st
      try {
        st = attr.tryGetattr(u, path)
      } catch (err) {
        return reply(errnoOf(err))
      }
      if (st) reply(0, st)
      else reply(ENOENT)
    },
    statfs: (_path, reply) => value(reply, () => attr.statfs(u)),
    readdir: (path, reply) => {
      let listing: attr.Listing
      try {
        listing = attr.readdir(u, path)
      } catch (err) {
        return reply(errnoOf(err))
      }
      reply(0, listing.names, attr.listingStats(listing))
    },
    opendir: (path, _flags, reply) =>
      value(reply, () => {
        if (!u.resolve(path).isDir) throw fsError('ENOTDIR', 'opendir', path)
        return 0
      }),
    releasedir: (_path, _fh, done) => done(0),
    fsyncdir: (path, _datasync, _fh, done) => settle(done, file.fsyncDir(u, path)),
    readlink: (path, reply) => value(reply, () => attr.readlink(u, path)),

    open: (path, flags, reply, caller) =>
      file.open(u, path, flags, caller).then(fh => reply(0, fh), (err: unknown) => reply(errnoOf(err))),
    create: (path, mode, reply, caller) => value(reply, () => file.create(u, path, mode, caller)),
    read: (_path, fh, buf, len, pos, reply) => {
      try {
        reply(file.read(u, fh, buf, len, pos))
      } catch (err) {
        reply(errnoOf(err))
      }
    },
    write: (_path, fh, buf, len, pos, reply, caller) => {
      try {
        reply(file.write(u, fh, buf, len, pos, caller))
      } catch (err) {
        reply(errnoOf(err))
      }
    },
    flush: (_path, _fh, done) => done(0),
    release: (_path, fh, done) => run(done, () => file.release(u, fh)),
    fsync: (_path, datasync, fh, done) => settle(done, file.fsync(u, fh, datasync !== 0)),
    truncate: (path, size, done) => settle(done, file.truncate(u, path, size)),
    ftruncate: (_path, fh, size, done) => run(done, () => file.ftruncate(u, fh, size)),

    chmod: (path, mode, done) => settle(done, attr.chmod(u, path, mode)),
    chown: (path, uid, gid, done) => settle(done, attr.chown(u, path, uid, gid)),
    utimens: (path, atime, mtime, done) => settle(done, attr.utimens(u, path, atime, mtime)),
    setxattr: (path, name, value, flags, done) =>
      // The value buffer dies with the reply: copy it before any await.
      settle(done, attr.setxattr(u, path, name, Buffer.from(value), flags)),
    getxattr: (path, name, reply) => value(reply, () => attr.getxattr(u, path, name)),
    listxattr: (path, reply) => value(reply, () => attr.listxattr(u, path)),
    removexattr: (path, name, done) => settle(done, attr.removexattr(u, path, name)),

    mkdir: (path, mode, done, caller) => run(done, () => dir.mkdir(u, path, mode, caller)),
    mknod: (path, mode, dev, done, caller) => run(done, () => dir.mknod(u, path, mode, dev, caller)),
    symlink: (target, path, done, caller) => run(done, () => dir.symlink(u, target, path, caller)),
    link: (from, to, done) => settle(done, dir.link(u, from, to)),
    unlink: (path, done) => settle(done, dir.unlink(u, path)),
    rmdir: (path, done) => run(done, () => dir.rmdir(u, path)),
    rename: (from, to, done) => settle(done, dir.rename(u, from, to)),
  }
}
