// The upper layer and its workdir: every mutation of the union's on-disk state goes through
// one method here and is logged once on layerfs:host (the kernel's ovl_do_* wrappers).
// A path is a real path in the upper layer ("/a/b"), or a temp name in the workdir ("#1f").
import fs from 'node:fs'
import { hostLog, mountLog } from '../log.js'
import { AUFS_OPAQUE, AUFS_PREFIX, FUSE_OVERLAYFS_PREFIX, type OverlayXattrs, WORK_SUBDIR, volatileMark } from './format.js'
import { Layer, S_IFCHR, parentDir } from './layer.js'
import { CopyUpCommits } from './copy-up-commits.js'
import { AT_FDCWD, fsPath, host, nameBytes, SEEK, type TimeSpec } from './native.js'

/** unlinkat(2)'s flag for a directory. */
const AT_REMOVEDIR = 0x200

export { WORK_SUBDIR, volatileMark } from './format.js'

/** renameat2(2) flags. */
export const RENAME_NOREPLACE = 1
export const RENAME_EXCHANGE = 2
export const RENAME_WHITEOUT = 4

/** Copy-ups of files this large run on the threadpool. */
const ASYNC_COPY_BYTES = 1 << 20
/** Dense files up to this size are copied up by one read and one write on the temp's own fd. */
const SMALL_COPY_BYTES = 1 << 16
/**
 * What FICLONE answers where no reflink can ever be made from that lower filesystem: the upper's
 * has none (ext4, tmpfs), the source is on another filesystem, the ioctl is unknown there.
 * Any other refusal (EINVAL for one file btrfs or xfs cannot share, ETXTBSY, ENOSPC, ...) is
 * that file's: it is copied, as the kernel's copy-up copies after any clone error.
 */
const NEVER_CLONES: ReadonlySet<string> = new Set(['EOPNOTSUPP', 'ENOTSUP', 'EXDEV', 'ENOTTY', 'ENOSYS'])
const COPY_CHUNK = 1 << 20

/** The next data offset at or after pos, or Infinity when only a hole follows. */
function nextData(fd: number, pos: number): number {
  try {
    return host.lseek(fd, pos, SEEK.DATA)
  } catch (e) {
    if ((e as { code?: string }).code === 'ENXIO') return Infinity
    throw e
  }
}

function readChunk(fd: number, buf: Buffer, len: number, pos: number, async: boolean): Promise<number> | number {
  if (!async) return fs.readSync(fd, buf, 0, len, pos)
  return new Promise((resolve, reject) => fs.read(fd, buf, 0, len, pos, (err, n) => (err ? reject(err) : resolve(n))))
}

/** One write(2) of buf[pos, pos + len) at file offset pos; ENOSPC on a short one that wrote nothing. */
function writeAll(fd: number, buf: Buffer, pos: number, len: number): number {
  const n = fs.writeSync(fd, buf, pos, len, pos)
  if (n <= 0) throw Object.assign(new Error('ENOSPC: short write during copy-up'), { code: 'ENOSPC' })
  return n
}

function writeChunk(fd: number, buf: Buffer, len: number, pos: number, async: boolean): Promise<void> | void {
  // A short write to a regular file means the filesystem is full.
  const done = (n: number): void => {
    if (n !== len) throw Object.assign(new Error('ENOSPC: short write during copy-up'), { code: 'ENOSPC' })
  }
  if (!async) return done(fs.writeSync(fd, buf, 0, len, pos))
  return new Promise((resolve, reject) =>
    fs.write(fd, buf, 0, len, pos, (err, n) => (err ? reject(err) : resolve(done(n)))))
}

/** The data extents of rfd's first `size` bytes to the same offsets of wfd (SEEK_DATA / SEEK_HOLE); large files off the event loop. */
async function copyExtents(rfd: number, wfd: number, size: number): Promise<void> {
  if (size === 0) return
  const async = size >= ASYNC_COPY_BYTES
  const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, size))
  for (let pos = nextData(rfd, 0); pos < size; ) {
    const end = Math.min(host.lseek(rfd, pos, SEEK.HOLE), size)
    while (pos < end) {
      const n = await readChunk(rfd, buf, Math.min(COPY_CHUNK, end - pos), pos, async)
      if (n === 0) break
      await writeChunk(wfd, buf, n, pos, async)
      pos += n
    }
    pos = end < size ? nextData(rfd, end) : size
  }
}

/**
 * The fstat of a copy-up's source, open as `rfd`, which must be the object the caller looked
 * up (`st`): a layer changed behind the mount is never copied from (ESTALE).
 */
function sourceStat(rfd: number, fromPath: string, st: { ino: bigint; dev: bigint; mode: number }): fs.BigIntStats {
  const fst = fs.fstatSync(rfd, { bigint: true })
  if (fst.ino !== st.ino || fst.dev !== st.dev || (Number(fst.mode) & 0o170000) !== (st.mode & 0o170000)) {
    throw Object.assign(new Error(`ESTALE: ${fromPath} changed during copy-up`), { code: 'ESTALE' })
  }
  return fst
}

export class UpperLayer extends Layer {
  /** Host path of W/work. */
  readonly work: string
  #tempSeq = 0
  /** st_dev of lower filesystems whose files cannot be cloned into this upper (FICLONE refused once). */
  readonly #noClone = new Set<bigint>()

  /** The upper is on tmpfs or ramfs: nothing survives a reboot, fsync(2) does nothing. */
  readonly inMemory: boolean
  /** Copy-ups are not fsync'd (`volatile`, `fsync=0`): faster, and lost in a crash of the host. */
  noFsync = false
  /**
   * Whiteouts are AUFS `.wh.NAME` files: the upper's filesystem refuses 0/0 devices (an
   * overlayfs: the kernel keeps those for itself), as fuse-overlayfs writes them there.
   * Decided at mount (probeWhiteouts).
   */
  aufsWhiteouts = false

  /** The fsyncs of copy-ups that answered before them (copy-up-commits.ts). */
  readonly commits: CopyUpCommits

  constructor(root: string, workdir: string, toRoot?: (path: string) => string, xattrs?: OverlayXattrs) {
    super(root, 0, true, toRoot, xattrs)
    this.work = workdir.replace(/\/+$/, '') + '/' + WORK_SUBDIR
    this.inMemory = MEMORY_FS.has(fs.statfsSync(root).type)
    if (mountLog.enabled) {
      mountLog('host calls by fd: *xattrat %s, fchmodat2 %s', host.xattrAtSupport() ? 'yes' : 'no (procfs paths)',
        host.fchmodat2Support() ? 'yes' : 'no (O_PATH fds)')
    }
    this.commits = new CopyUpCommits(this.work, this.xattrs.prefix, {
      openRead: path => this.open(path, fs.constants.O_RDONLY),
      fsyncFd: fd => this.fsyncFd(fd),
      fsyncNow: fd => fs.fsyncSync(fd),
      unlink: path => {
        // As a copy-up, its undoing leaves the parent's times as they were.
        const parent = parentDir(path)
        const pst = this.lstat(parent)
        this.unlink(path)
        this.utimens(parent, pst.atimeNs, pst.mtimeNs)
      },
      tryLstat: path => this.tryLstat(path),
    })
  }

  /** A copy-up may answer before its fsync, which a commit makes later (copy-up-commits.ts). */
  get defersFsync(): boolean {
    return !this.inMemory && !this.noFsync && this.commits.canDefer
  }

  override hostPath(path: string): string | Buffer {
    if (path.charCodeAt(0) === 0x23 /* # */) return this.work + '/' + path
    return super.hostPath(path)
  }

  /** A workdir temp ("#...") is reached by its absolute path (the workdir is ours alone). */
  protected override at(path: string): { dirfd: number; name: string } {
    if (path.charCodeAt(0) === 0x23 /* # */) return { dirfd: AT_FDCWD, name: this.work + '/' + path }
    return super.at(path)
  }

  /** A fresh temp name in the workdir ("#<pid>-<seq>", as the kernel's "#<hex>"). */
  tempName(): string {
    return `#${process.pid.toString(16)}-${(this.#tempSeq++).toString(16)}`
  }

  /**
   * Empty W/work, as the kernel does at mount: whatever an interrupted copy-up or
   * rename left there never shows in the union.
   */
  cleanWork(): void {
    this.commits.recover()
    removeTree(this.work)
    // Mode 0, as the kernel makes it; a daemon that is not root (no CAP_DAC_OVERRIDE) must
    // still work in it.
    fs.mkdirSync(this.work, { mode: process.getuid?.() === 0 ? 0o000 : 0o700 })
    log('clean-work', this.work)
    this.probeWhiteouts()
  }

  /**
   * Mark the workdir as used by a volatile mount (the kernel's `volatile`): copy-ups in it
   * were not fsync'd, so no later mount takes it (volatileMark) until the user removes the
   * mark, having checked the upper after a crash.
   */
  markVolatile(): void {
    log('volatile', this.work)
    fs.mkdirSync(volatileMark(this.work) + '/dirty', { recursive: true, mode: 0o700 })
  }

  mkdir(path: string, mode: number): void {
    log('mkdir', path, mode)
    const { dirfd, name } = this.at(path)
    host.mkdirAt(dirfd, name, mode)
    // Empty: no AUFS name in it (a workdir temp is never reached through the kept fds).
    if (path.charCodeAt(0) !== 0x23 /* # */) {
      this.dirFds.forgetAt(path)
      this.dirFds.dirFd(path)
      this.dirFds.knowWithoutAufs(path)
    }
  }

  rmdir(path: string): void {
    log('rmdir', path)
    const { dirfd, name } = this.at(path)
    host.unlinkAt(dirfd, name, AT_REMOVEDIR)
    this.dirFds.forgetUnder(path)
  }

  /** Remove a temp tree from the workdir (after a whiteout replaced a directory). */
  removeTree(path: string): void {
    log('rm-tree', path)
    fs.rmSync(this.hostPath(path), { recursive: true, force: true })
    this.dirFds.forgetUnder(path)
  }

  unlink(path: string): void {
    log('unlink', path)
    const { dirfd, name } = this.at(path)
    host.unlinkAt(dirfd, name, 0)
  }

  rename(from: string, to: string, flags = 0): void {
    this.#rename(from, to, flags)
    // Kept fds follow inodes: those of a moved or replaced directory, and below it, are wrong now.
    this.dirFds.forgetUnder(from, to)
  }

  #rename(from: string, to: string, flags: number): void {
    log('rename', from, to, flags)
    const a = this.at(from)
    const b = this.at(to)
    host.renameAt(a.dirfd, a.name, b.dirfd, b.name, flags)
  }

  /**
   * A rename of a workdir temp to where nothing was: what a kept fd there (and below) could
   * be stale for is only what was there before, removed behind our back (DirFds.forgetAt).
   */
  #renameTempIn(from: string, to: string, flags: number): void {
    this.#rename(from, to, flags)
    if (from.charCodeAt(0) === 0x23 /* # */) this.dirFds.forgetAt(to)
    else this.dirFds.forgetUnder(from, to)
  }

  /**
   * rename that never replaces: false when something is at `to` (RENAME_NOREPLACE's EEXIST).
   * Where the filesystem lacks the flag (EINVAL), a check and a plain rename, which nothing of
   * ours comes between (one turn of the event loop).
   */
  renameNoReplace(from: string, to: string): boolean {
    try {
      this.#renameTempIn(from, to, RENAME_NOREPLACE)
      return true
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'EEXIST') return false
      if (code !== 'EINVAL') throw err
    }
    if (this.tryLstat(to)) return false
    this.#renameTempIn(from, to, 0)
    return true
  }

  /**
   * rename leaving a whiteout at the source in one step (RENAME_WHITEOUT), as the kernel
   * does; where the filesystem lacks it, a whiteout made in the workdir follows the rename.
   * With AUFS whiteouts, `.wh.FROM` is made first (a crash before the rename leaves FROM,
   * which wins over it), and a `.wh.TO` left at the target goes after.
   */
  renameWithWhiteout(from: string, to: string): void {
    if (this.aufsWhiteouts) {
      this.#mkAufsWhiteout(from)
      this.rename(from, to)
      this.dropAufsWhiteout(to)
      return
    }
    try {
      this.rename(from, to, RENAME_WHITEOUT)
    } catch (err) {
      if ((err as { code?: string }).code !== 'EINVAL') throw err
      const temp = this.tempName()
      this.#mkWhiteout(temp)
      this.rename(from, to)
      this.rename(temp, from)
    }
  }

  /**
   * Put a whiteout at `path` the way the kernel's unlink and rmdir do: made in the workdir
   * with the daemon's credentials (so 0:0, also in a setgid directory, where one made in
   * place would take the directory's group) and renamed in, so a crash leaves either what was
   * there or the whiteout. With `exchange`, what was at `path` (a directory, or an object to
   * keep) is swapped out to the returned temp name, for the caller to drop or keep.
   * With AUFS whiteouts, `.wh.NAME` is made first, then what was at `path` goes (to the temp
   * name with `exchange`): a crash between leaves what was there, which wins over it.
   */
  placeWhiteout(path: string, exchange = false): string {
    const temp = this.tempName()
    if (this.aufsWhiteouts) {
      this.#mkAufsWhiteout(path)
      if (exchange) this.rename(path, temp)
      else if (this.tryLstat(path)) this.unlink(path)
      return temp
    }
    this.#mkWhiteout(temp)
    try {
      this.rename(temp, path, exchange ? RENAME_EXCHANGE : 0)
    } catch (err) {
      this.unlink(temp)
      throw err
    }
    return temp
  }

  /**
   * Drop an AUFS `.wh.NAME` beside `path`, once something is there: it whited out a lower
   * NAME, and the upper's own NAME wins over it now (Layer.hasAufsWhiteout).
   */
  dropAufsWhiteout(path: string): void {
    if (!this.hasAufsWhiteout(path)) return
    this.unlink(aufsSibling(path))
  }

  #mkAufsWhiteout(path: string): void {
    log('whiteout', aufsSibling(path))
    this.dirFds.unknowWithoutAufs(parentDir(path))
    fs.closeSync(this.open(aufsSibling(path), fs.constants.O_CREAT | fs.constants.O_WRONLY, 0o600))
  }

  /**
   * Decide how whiteouts are written: a 0/0 device made in the workdir, or (where the
   * filesystem refuses it: EPERM on overlayfs, EOPNOTSUPP) AUFS `.wh.` files.
   */
  probeWhiteouts(): void {
    const temp = this.tempName()
    try {
      host.mknod(this.hostPath(temp), S_IFCHR, 0)
      fs.unlinkSync(this.hostPath(temp))
      this.aufsWhiteouts = false
    } catch (e) {
      const code = (e as { code?: string }).code
      if (code !== 'EPERM' && code !== 'EOPNOTSUPP' && code !== 'ENOTSUP') throw e
      this.aufsWhiteouts = true
    }
  }

  symlink(target: string, path: string): void {
    log('symlink', path, target)
    fs.symlinkSync(fsPath(target), this.hostPath(path))
  }

  /** A name for the file behind `fd` (an O_TMPFILE file): linkat(2) through /proc/self/fd. */
  linkFd(fd: number, to: string): void {
    log('linkFd', fd, to)
    const { dirfd, name } = this.at(to)
    host.linkFdAt(fd, dirfd, name)
  }

  link(from: string, to: string): void {
    log('link', from, to)
    fs.linkSync(this.hostPath(from), this.hostPath(to))
  }

  mknod(path: string, mode: number, dev: number): void {
    log('mknod', path, mode, dev)
    host.mknod(this.hostPath(path), mode, dev)
  }

  /** A 0/0 character device: the kernel's whiteout. Only ever at a temp name in the workdir. */
  #mkWhiteout(path: string): void {
    log('whiteout', path)
    host.mknod(this.hostPath(path), S_IFCHR, 0)
  }

  /** Open (and maybe create) a file in the upper layer (no symlink followed) or the workdir. */
  override open(path: string, flags: number, mode = 0o666): number {
    if (hostLog.enabled && flags & (fs.constants.O_CREAT | fs.constants.O_TRUNC)) {
      log('open', path, flags, mode)
    }
    if (path.charCodeAt(0) === 0x23 /* # */) return fs.openSync(this.hostPath(path), flags | fs.constants.O_NOFOLLOW, mode)
    return super.open(path, flags, mode)
  }

  chmod(path: string, mode: number): void {
    log('chmod', path, mode)
    // Never through a last symlink (ELOOP).
    const { dirfd, name } = this.at(path)
    host.chmodAt(dirfd, name, mode)
  }

  lchown(path: string, uid: number, gid: number): void {
    log('chown', path, uid, gid)
    const { dirfd, name } = this.at(path)
    host.chownAt(dirfd, name, uid, gid)
  }

  utimens(path: string, atime: TimeSpec, mtime: TimeSpec): void {
    log('utimens', path, atime, mtime)
    const { dirfd, name } = this.at(path)
    host.utimensAt(dirfd, name, atime, mtime)
  }

  truncate(path: string, size: number): void {
    log('truncate', path, size)
    // truncate(2) follows a last symlink: through an fd that refuses one (ELOOP).
    const fd = this.open(path, fs.constants.O_WRONLY)
    try {
      fs.ftruncateSync(fd, size)
    } finally {
      fs.closeSync(fd)
    }
  }

  setxattr(path: string, name: string, value: Buffer, flags = 0): void {
    log('setxattr', path, name)
    const at = this.at(path)
    host.setxattrAt(at.dirfd, at.name, name, value, flags)
  }

  removexattr(path: string, name: string): void {
    log('removexattr', path, name)
    host.lremovexattr(this.hostPath(path), name)
  }

  /**
   * Copy a lower file's bytes into a new workdir temp, holes kept (the kernel's copy-up skips
   * holes too), and return the temp's fd, open for writing: the caller sets the metadata
   * through it and fsyncs it (fsyncFd) unless it was cloned, then closes it. Where the upper's
   * filesystem can, the temp is a reflink of the source (FICLONE: no data copied, as the
   * kernel's copy-up does first, and as the kernel no fsync: a clone is a journaled metadata
   * change, ordered before the rename that puts the temp in place); else a small dense file
   * is read and written whole; a larger dense one goes through copyFile (copy_file_range in
   * the kernel); a sparse one extent by extent (SEEK_DATA / SEEK_HOLE). Large files are
   * copied off the event loop, so other requests keep being answered. The source is opened beneath its layer
   * without following symlinks, and must be the object the caller looked up (`st`): a layer
   * changed behind the mount is never copied from (ESTALE). Returns the source's fresh fstat.
   */
  async copyDataToTemp(from: Layer, fromPath: string, to: string, st: { ino: bigint; dev: bigint; mode: number }): Promise<{ fd: number; st: fs.BigIntStats; cloned: boolean }> {
    const dst = this.hostPath(to)
    const rfd = from.open(fromPath, fs.constants.O_RDONLY)
    let wfd: number | undefined
    try {
      const fst = sourceStat(rfd, fromPath, st)
      const size = Number(fst.size)
      if (size > 0 && !this.#noClone.has(fst.dev)) {
        // A reflink first, as the kernel's copy-up: no data copied, holes and all.
        wfd = fs.openSync(dst, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600)
        try {
          host.ficlone(wfd, rfd)
          log('copy-data', fromPath, to, size, 'cloned')
          return { fd: wfd, st: fst, cloned: true }
        } catch (e) {
          if (NEVER_CLONES.has((e as { code?: string }).code ?? '')) this.#noClone.add(fst.dev)
          fs.closeSync(wfd)
          wfd = undefined
          fs.unlinkSync(dst)
        }
      }
      const sparse = fst.blocks * 512n < fst.size
      log('copy-data', fromPath, to, size, sparse ? 'sparse' : 'dense')
      if (!sparse && size > SMALL_COPY_BYTES) {
        const src = `/proc/self/fd/${rfd}`
        if (size < ASYNC_COPY_BYTES) fs.copyFileSync(src, dst, fs.constants.COPYFILE_EXCL)
        else await fs.promises.copyFile(src, dst, fs.constants.COPYFILE_EXCL)
        wfd = fs.openSync(dst, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW)
        return { fd: wfd, st: fst, cloned: false }
      }
      wfd = fs.openSync(dst, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600)
      if (size === 0) return { fd: wfd, st: fst, cloned: false }
      if (!sparse) {
        // Whole, in one read and one write (short ones continued).
        const buf = Buffer.allocUnsafe(size)
        let got = 0
        while (got < size) {
          const n = fs.readSync(rfd, buf, got, size - got, got)
          if (n === 0) break
          got += n
        }
        for (let pos = 0; pos < got; ) pos += writeAll(wfd, buf, pos, got - pos)
        if (got < size) fs.ftruncateSync(wfd, size)
        return { fd: wfd, st: fst, cloned: false }
      }
      await copyExtents(rfd, wfd, size)
      fs.ftruncateSync(wfd, size)
      return { fd: wfd, st: fst, cloned: false }
    } catch (e) {
      if (wfd !== undefined) fs.closeSync(wfd)
      throw e
    } finally {
      fs.closeSync(rfd)
    }
  }

  /**
   * Copy the first `size` bytes of a lower file into the upper file open as `wfd`, extent by
   * extent (holes stay holes): the data copy-up of a metacopy file, in place (copy-up.ts). The
   * source is checked against `st` as in copyDataToTemp (ESTALE). `path`: the upper file, for the log.
   */
  async copyDataInto(from: Layer, fromPath: string, wfd: number, path: string, st: { ino: bigint; dev: bigint; mode: number }, size: number): Promise<void> {
    log('copy-data', fromPath, path, size, 'in place')
    const rfd = from.open(fromPath, fs.constants.O_RDONLY)
    try {
      const fst = sourceStat(rfd, fromPath, st)
      await copyExtents(rfd, wfd, Math.min(size, Number(fst.size)))
    } finally {
      fs.closeSync(rfd)
    }
  }

  /** fchown of a temp through its fd (`path`: its name, for the log). */
  fchown(fd: number, path: string, uid: number, gid: number): void {
    log('chown', path, uid, gid)
    fs.fchownSync(fd, uid, gid)
  }

  /** fchmod of a temp through its fd (`path`: its name, for the log). */
  fchmod(fd: number, path: string, mode: number): void {
    log('chmod', path, mode)
    fs.fchmodSync(fd, mode)
  }

  /** futimens of a temp through its fd (`path`: its name, for the log). */
  futimens(fd: number, path: string, atime: TimeSpec, mtime: TimeSpec): void {
    log('utimens', path, atime, mtime)
    host.futimens(fd, atime, mtime)
  }

  /** fsync an open file off the event loop (copy-up: data is durable before the rename); see fsyncFile. */
  async fsyncFd(fd: number): Promise<void> {
    if (this.inMemory || this.noFsync) return
    await new Promise<void>((resolve, reject) => fs.fsync(fd, err => (err ? reject(err) : resolve())))
  }

  /** Copy every xattr but the overlay's own from a lower object to an upper one. */
  copyXattrs(from: Layer, fromPath: string, to: string): void {
    let names: string[]
    try {
      names = from.listxattr(fromPath)
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOTSUP') return
      throw e
    }
    for (const name of names) {
      // The overlay's own records stay behind (and fuse-overlayfs's); a user's escaped
      // trusted.overlay.* (or user.overlay.*) comes along.
      const x = this.xattrs
      if (name.startsWith(FUSE_OVERLAYFS_PREFIX) || (name.startsWith(x.prefix) && !name.startsWith(x.prefix + 'overlay.'))) continue
      const value = from.getxattr(fromPath, name)
      if (value !== undefined) this.setxattr(to, name, value)
    }
  }

  /**
   * fsync a file by path, off the event loop (copy-up: data is durable before the rename);
   * open and close are quick and stay on it (one thread hop, not three). On a memory
   * filesystem (tmpfs, ramfs) fsync(2) has nothing to write and returns 0: the thread hop is
   * skipped (a copy-up of a small file was a third slower for it).
   */
  async fsyncFile(path: string): Promise<void> {
    if (this.inMemory || this.noFsync) return
    const fd = fs.openSync(this.hostPath(path), fs.constants.O_RDONLY)
    try {
      await new Promise<void>((resolve, reject) => fs.fsync(fd, err => (err ? reject(err) : resolve())))
    } finally {
      fs.closeSync(fd)
    }
  }

  /** The impure xattr on a directory: an entry in it takes st_ino from its origin. */
  markImpure(dir: string): void {
    // Known impure: the mark stays as long as the directory (no one takes it off), and the
    // knowledge goes with the kept fd of the directory's path (dir-fds.ts: a rename or removal
    // there drops both), as the kernel keeps OVL_IMPURE on its inode.
    if (this.dirFds.isKnownImpure(dir)) return
    if (this.getxattr(dir, this.xattrs.impure) === undefined) this.setxattr(dir, this.xattrs.impure, Buffer.from('y'))
    this.dirFds.knowImpure(dir)
  }

  /** The redirect xattr: the name bytes of `to` (a path in the name codec), as the kernel stores them. */
  setRedirect(path: string, to: string): void {
    this.setxattr(path, this.xattrs.redirect, nameBytes(to))
  }

  /**
   * Mark a directory opaque: the opaque xattr; where the filesystem takes no such xattr, an
   * AUFS `.wh..wh..opq` in it (as fuse-overlayfs does).
   */
  setOpaque(path: string): void {
    try {
      this.setxattr(path, this.xattrs.opaque, Buffer.from('y'))
    } catch (e) {
      const code = (e as { code?: string }).code
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e
      this.dirFds.unknowWithoutAufs(path)
      fs.closeSync(this.open(path + '/' + AUFS_OPAQUE, fs.constants.O_CREAT | fs.constants.O_WRONLY, 0o600))
    }
  }
}

/** f_type of tmpfs and ramfs (linux/magic.h). */
const MEMORY_FS: ReadonlySet<number> = new Set([0x01021994, 0x858458f6])

/**
 * rm -rf, also of directories this process cannot read: the kernel makes W/work and its temp
 * directories mode 0, which only a root daemon gets through (a rootless user who mounted the
 * kernel's overlayfs in a user namespace, then layerfs, owns them but must chmod them first).
 */
function removeTree(path: string): void {
  try {
    fs.rmSync(path, { recursive: true, force: true })
  } catch (e) {
    if ((e as { code?: string }).code !== 'EACCES') throw e
    const open = (p: string): void => {
      const st = fs.lstatSync(p)
      if (!st.isDirectory()) return
      fs.chmodSync(p, 0o700)
      for (const name of fs.readdirSync(p)) open(`${p}/${name}`)
    }
    open(path)
    fs.rmSync(path, { recursive: true, force: true })
  }
}

/**
 * Whether the overlay's records can be trusted.overlay.* xattrs on this filesystem, as this
 * process: not for an unprivileged user nor root in a user namespace (then user.overlay.*,
 * the kernel's userxattr format). Probed on `dir` (the workdir) and taken off again.
 */
export function canWriteTrustedXattrs(dir: string): boolean {
  const name = 'trusted.overlay.layerfs-probe'
  try {
    host.lsetxattr(dir, name, Buffer.from('y'), 0)
  } catch (e) {
    const code = (e as { code?: string }).code
    // A filesystem without xattrs has no records of either kind: the kernel's own default.
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return true
    if (code === 'EPERM' || code === 'EACCES') return false
    throw e
  }
  host.lremovexattr(dir, name)
  return true
}

/** The AUFS whiteout of a path: `.wh.NAME` beside it. */
function aufsSibling(path: string): string {
  const i = path.lastIndexOf('/')
  return path.slice(0, i + 1) + AUFS_PREFIX + path.slice(i + 1)
}

function log(op: string, ...args: unknown[]): void {
  if (hostLog.enabled) hostLog('%s %o', op, args)
}
