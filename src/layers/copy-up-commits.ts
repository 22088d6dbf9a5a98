// Copy-up commits: the fsync that makes a copied-up file's data durable, run after the copy-up
// has answered instead of before it.
//
// The kernel's copy-up fsyncs the data before it renames the file into the upper layer, so a
// crash never shows a file whose data did not reach the disk over the good lower one; the
// caller waits for that fsync (3 s for a 1 GiB file on ext4). Here the rename comes first and
// the fsync after, with the same guarantee kept by a journal in the workdir
// (W/work/incompat/layerfs-commits): before the rename, an empty file named
// "<boot id>.<upper ino>.<seq>" whose xattr records the union path; after the fsync, its
// removal. At mount (recover):
// - an entry of this boot: the daemon died before the fsync, the data is in the page cache:
//   fsync it now;
// - an entry of another boot: the host went down before the fsync, the data may be lost:
//   remove the upper file, and the lower one shows again, as before the copy-up (a write to
//   the copy that was never fsync'd is lost, as a crash may lose it anywhere).
// The entry is a metadata change made before the rename, so the upper filesystem's journal
// has it on disk whenever it has the rename. What could move or alias a file with a commit
// pending waits for it first: rename and link wait for every commit, and copy-ups made while
// one of them runs are fsync'd at once (hold); unlink, and fsync(2) of the file, wait for its
// commit (of). The daemon waits for all of them before it exits (settled).
// The journal's directory is one of the kernel's "incompat" features (as its `volatile`
// mount's W/work/incompat/volatile): while it exists kernel overlayfs refuses the workdir
// ("overlay with incompat feature 'layerfs-commits' cannot be mounted"), so that after a crash
// nothing shows the upper until a layerfs mount has recovered it. It exists only while copy-ups
// are recent: made at an entry, removed a second after the last commit and at the mount's end.
import fs from 'node:fs'
import { hostLog } from '../log.js'
import { host } from './native.js'

const log = hostLog

/** The journal's directory below W/work. */
export const COMMITS_SUBDIR = 'incompat/layerfs-commits'

/** The journal's directory goes this long after its last commit (if no copy-up came since). */
const DIR_LINGER_MS = 1000

/**
 * Unlink a journal entry, gone already or not (fs.rmSync with force stats it twice first: two
 * system calls in every copy-up).
 */
function removeEntry(entry: string): void {
  try {
    fs.unlinkSync(entry)
  } catch (e) {
    if ((e as { code?: string }).code !== 'ENOENT') throw e
  }
}

/** Commits run at once at most: each is an fsync on the libuv threadpool, which other work shares. */
const PARALLEL = 2

let bootId: string | undefined
function currentBoot(): string {
  bootId ??= fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replace(/-/g, '')
  return bootId
}

/** The calls on the upper layer a commit makes (UpperLayer's). */
export interface CommitTarget {
  /** Open `path` (a union path) in the upper layer, read-only, not following symlinks. */
  openRead(path: string): number
  /** fsync off the event loop. */
  fsyncFd(fd: number): Promise<void>
  /** Remove the upper file at `path` (recovery after a crash of the host). */
  unlink(path: string): void
  /** fsync(2) on the event loop: at mount, before anything is served. */
  fsyncNow(fd: number): void
  tryLstat(path: string): { ino: bigint; mode: number } | undefined
}

/** A journal entry: the copy-up of `path`, upper inode `ino`, recorded as file `entry`. */
export interface JournalEntry {
  readonly path: string
  readonly ino: bigint
  readonly entry: string
}

interface Pending extends JournalEntry {
  /** The copy-up's own descriptor of the file, kept for the fsync (at most KEPT_FDS of them). */
  fd?: number | undefined
  /** Set once the commit runs (or ran). */
  done?: Promise<void>
}

/**
 * Pending commits that keep the copy-up's descriptor of their file (no open and fstat to find
 * the file again at the fsync); past that many, a commit opens the file by its path.
 */
const KEPT_FDS = 64

export class CopyUpCommits {
  readonly dir: string
  readonly #xattr: string
  readonly #target: CommitTarget
  readonly #byPath = new Map<string, Pending>()
  readonly #queue: Pending[] = []
  #running = 0
  #seq = 0
  /** Pending commits holding their copy-up's descriptor. */
  #keptFds = 0
  /** Renames and links in flight: copy-ups then fsync before they answer (see hold). */
  #holds = 0
  /** Commits wait until someone waits for them (a test's way to see the journal; LAYERFS_COMMIT_HOLD). */
  readonly #parked: boolean
  /** The journal's directory exists (made at an entry; removed when no commit is pending for a while, and at end). */
  #dirMade = false
  #lingerTimer: NodeJS.Timeout | undefined
  /** The workdir's filesystem refused the journal's xattr: no copy-up is deferred. */
  #noJournal = false
  #idle: Promise<void> | undefined
  #onIdle: (() => void) | undefined

  /** `work`: W/work. */
  constructor(work: string, xattrPrefix: string, target: CommitTarget) {
    this.dir = work + '/' + COMMITS_SUBDIR
    this.#xattr = (xattrPrefix.startsWith('user.') ? 'user.' : 'trusted.') + 'layerfs.path'
    this.#target = target
    this.#parked = process.env.LAYERFS_COMMIT_HOLD === '1'
  }

  /** Copy-ups of this moment may answer before their fsync. */
  get canDefer(): boolean {
    return this.#holds === 0 && !this.#noJournal
  }

  /**
   * The journal entry of a copy-up of `path` whose upper file (still the temp) is inode `ino`:
   * made before the rename that puts it in place, to pass to start or drop; undefined where
   * the workdir's filesystem takes no xattrs (nothing is deferred on it then: the caller
   * fsyncs before the rename).
   */
  journal(path: string, ino: bigint): JournalEntry | undefined {
    try {
      return this.#journal(path, ino)
    } catch (e) {
      const code = (e as { code?: string }).code
      if (code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e
      log('commit-journal', 'no xattrs in the workdir: copy-ups fsync before they answer')
      this.#noJournal = true
      this.#dropDir()
      return undefined
    }
  }

  #journal(path: string, ino: bigint): JournalEntry {
    if (!this.#dirMade) {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 })
      this.#dirMade = true
    }
    const entry = `${this.dir}/${currentBoot()}.${ino}.${(this.#seq++).toString(16)}`
    const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL
    let fd: number
    try {
      fd = fs.openSync(entry, flags, 0o600)
    } catch (e) {
      // The directory went under us: an earlier mount's daemon, still finishing its commits
      // after its unmount, removed it when it emptied.
      if ((e as { code?: string }).code !== 'ENOENT') throw e
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 })
      fd = fs.openSync(entry, flags, 0o600)
    }
    fs.closeSync(fd)
    try {
      host.lsetxattr(entry, this.#xattr, Buffer.from(path), 0)
    } catch (e) {
      fs.unlinkSync(entry)
      throw e
    }
    log('commit-journal', path, entry)
    return { path, ino, entry }
  }

  /** A journal entry whose copy-up did not take place. */
  drop(j: JournalEntry): void {
    removeEntry(j.entry)
    // The journal's directory came for this entry alone (no commit is pending): it goes too.
    if (this.#byPath.size === 0) this.#dropDir()
  }

  /**
   * The copy-up is in place: fsync it soon. `fd`, the copy-up's descriptor of the file, is
   * ours from here (kept for the fsync, or closed).
   */
  start(j: JournalEntry, fd?: number): void {
    const p: Pending = { ...j }
    if (fd !== undefined) {
      if (this.#keptFds < KEPT_FDS) {
        p.fd = fd
        this.#keptFds++
      } else fs.closeSync(fd)
    }
    this.#byPath.set(p.path, p)
    this.#queue.push(p)
    if (!this.#parked) this.#pump()
  }

  /** Resolves when `path`'s commit, if one is pending, is done. */
  async of(path: string): Promise<void> {
    const p = this.#byPath.get(path)
    if (!p) return
    if (!p.done) {
      const i = this.#queue.indexOf(p)
      if (i >= 0) this.#queue.splice(i, 1)
      this.#run(p)
    }
    await p.done
  }

  /** Resolves when no commit is pending. */
  async settled(): Promise<void> {
    if (this.#byPath.size === 0) return
    this.#idle ??= new Promise<void>(resolve => (this.#onIdle = resolve))
    const idle = this.#idle
    this.#pump(true)
    await idle
  }

  /**
   * Run `fn` (a rename or a link) with no commit pending, and none started meanwhile (a
   * copy-up it makes, or another request's, fsyncs before it answers): a file moved or linked
   * with its commit pending would be lost to the journal, which finds it by path.
   */
  async hold<T>(fn: () => Promise<T>): Promise<T> {
    this.#holds++
    try {
      await this.settled()
      return await fn()
    } finally {
      this.#holds--
    }
  }

  #pump(all = false): void {
    while (this.#queue.length > 0 && (all || this.#running < PARALLEL)) this.#run(this.#queue.shift()!)
  }

  #run(p: Pending): void {
    this.#running++
    p.done = this.#commit(p).finally(() => {
      this.#running--
      if (this.#byPath.get(p.path) === p) this.#byPath.delete(p.path)
      if (this.#byPath.size === 0) {
        this.#lingerTimer ??= setTimeout(() => {
          this.#lingerTimer = undefined
          this.#dropDir()
        }, DIR_LINGER_MS).unref()
        if (this.#onIdle) {
          this.#onIdle()
          this.#idle = this.#onIdle = undefined
        }
      }
      if (!this.#parked) this.#pump()
    })
  }

  /** fsync the file if it is still the copy-up's (unlink waits, so it is unless a layer changed behind the mount), then drop the entry. */
  async #commit(p: Pending): Promise<void> {
    let fd: number | undefined = p.fd
    if (fd !== undefined) {
      p.fd = undefined
      this.#keptFds--
    }
    try {
      // The copy-up's own descriptor is its file wherever it is now; a file found by path is
      // the copy-up's if it is the same inode.
      if (fd !== undefined) await this.#target.fsyncFd(fd)
      else {
        fd = this.#target.openRead(p.path)
        if (fs.fstatSync(fd, { bigint: true }).ino === p.ino) await this.#target.fsyncFd(fd)
      }
    } catch (e) {
      const code = (e as { code?: string }).code
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ELOOP') {
        // The entry stays: after a crash of the host the next mount undoes the copy-up.
        log('commit-failed', p.path, code ?? String(e))
        return
      }
    } finally {
      if (fd !== undefined) fs.closeSync(fd)
    }
    removeEntry(p.entry)
    log('commit', p.path)
  }

  /** The mount ends, its commits done (settled): the journal's directory goes, so that the workdir holds only what the kernel's does. */
  end(): void {
    this.#dropDir()
  }

  #dropDir(): void {
    if (this.#lingerTimer) clearTimeout(this.#lingerTimer)
    this.#lingerTimer = undefined
    if (!this.#dirMade || this.#byPath.size > 0) return
    try {
      fs.rmdirSync(this.dir)
      this.#dirMade = false
      // incompat/ too, unless it holds another feature's mark.
      fs.rmdirSync(this.dir.slice(0, this.dir.lastIndexOf('/')))
    } catch {
      // An entry of a commit that failed stays for the next mount.
    }
  }

  /**
   * At mount, before anything is served: finish or undo the commits an earlier mount left
   * (see the top of this file).
   */
  recover(): void {
    let names: string[]
    try {
      names = fs.readdirSync(this.dir)
    } catch (e) {
      // No journal (W/work not a directory is for cleanWork to report). EACCES: W/work is
      // mode 0, as the kernel makes it, and this daemon is not root: the kernel's, with no
      // journal of ours (a daemon that is not root makes it 0700).
      const code = (e as { code?: string }).code
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'EACCES') throw e
      return
    }
    this.#dirMade = true
    for (const name of names) {
      const entry = `${this.dir}/${name}`
      const [boot, inoText] = name.split('.')
      let path: string | undefined
      try {
        path = host.lgetxattr(entry, this.#xattr)?.toString()
      } catch {
        // An entry without its record: nothing to find.
      }
      let ino: bigint | undefined
      try {
        ino = BigInt(inoText ?? '')
      } catch {
        // Not ours.
      }
      const st = path !== undefined ? this.#target.tryLstat(path) : undefined
      if (path !== undefined && st && st.ino === ino && (st.mode & 0o170000) === 0o100000) {
        if (boot === currentBoot()) {
          log('commit-recover', path, 'fsync')
          const fd = this.#target.openRead(path)
          try {
            this.#target.fsyncNow(fd)
          } finally {
            fs.closeSync(fd)
          }
        } else {
          log('commit-recover', path, 'undone: the host went down before its fsync')
          this.#target.unlink(path)
        }
      }
      removeEntry(entry)
    }
    this.#dropDir()
  }
}
