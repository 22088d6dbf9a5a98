// Builders for layer directories on the host, in the kernel's on-disk format: whiteouts are
// 0/0 character devices, opaque dirs carry trusted.overlay.opaque=y. Never used on a mount
// point: these write straight into layer dirs before they are mounted.
import { execFileSync } from 'node:child_process'
import { chmodSync, lchownSync, lstatSync, mkdirSync, readdirSync, symlinkSync, linkSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

/** Creates a kernel-format whiteout (char device 0/0) at path. */
export function whiteout(path: string): void {
  mkdirSync(dirname(path), { recursive: true })
  execFileSync('mknod', ['-m', '000', path, 'c', '0', '0'])
}

/** Marks dir opaque (trusted.overlay.opaque = "y"), creating it if needed. */
export function opaque(dir: string): void {
  mkdirSync(dir, { recursive: true })
  setXattr(dir, 'trusted.overlay.opaque', 'y')
}

/** lsetxattr via setfattr -h (values as text). */
export function setXattr(path: string, name: string, value: string): void {
  execFileSync('setfattr', ['-h', '-n', name, '-v', value, path])
}

/** lgetxattr via getfattr -h; undefined when absent. */
export function getXattr(path: string, name: string): string | undefined {
  try {
    return execFileSync('getfattr', ['-h', '--only-values', '-n', name, path], { stdio: ['ignore', 'pipe', 'ignore'] }).toString()
  } catch {
    return undefined
  }
}

/** Whether path is a kernel-format whiteout (a 0/0 character device). */
export function isWhiteout(path: string): boolean {
  try {
    const st = lstatSync(path)
    return st.isCharacterDevice() && st.rdev === 0
  } catch {
    return false
  }
}

/**
 * Rewrites a kernel-format layer in the AUFS format containers/storage writes for a mount
 * program: each 0/0 whiteout NAME becomes an empty file `.wh.NAME`, each opaque directory
 * loses its xattr and gets a `.wh..wh..opq` file (or, with `fuseOverlayfs`, fuse-overlayfs's
 * user.fuseoverlayfs.opaque xattr instead).
 */
export function toAufs(dir: string, opts: { fuseOverlayfs?: boolean } = {}): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name)
    if (isWhiteout(path)) {
      unlinkSync(path)
      writeFileSync(join(dir, `.wh.${e.name}`), '')
    } else if (e.isDirectory()) {
      if (isOpaque(path)) {
        execFileSync('setfattr', ['-x', 'trusted.overlay.opaque', path])
        if (opts.fuseOverlayfs) setXattr(path, 'user.fuseoverlayfs.opaque', 'y')
        else writeFileSync(join(path, '.wh..wh..opq'), '')
      }
      toAufs(path, opts)
    }
  }
}

/** Whether path is a directory marked opaque. */
export const isOpaque = (path: string): boolean => getXattr(path, 'trusted.overlay.opaque') === 'y'

/** Sets atime and mtime to a fixed time (seconds since the epoch, with ns), not following symlinks. */
export function setTimes(path: string, sec: number, nsec = 0): void {
  const stamp = `@${sec}.${String(nsec).padStart(9, '0')}`
  execFileSync('touch', ['-h', '-d', stamp, path])
}

/**
 * What a node of a tree spec can be: a string (file content), a nested object (a directory),
 * or a detailed description.
 */
export type Node = string | Buffer | TreeSpec | NodeSpec
export interface TreeSpec {
  [name: string]: Node
}
export interface NodeSpec {
  type: 'file' | 'dir' | 'symlink' | 'whiteout' | 'fifo' | 'chardev' | 'blockdev' | 'hardlink'
  content?: string | Buffer
  entries?: TreeSpec
  /** symlink target, or for a hardlink the path (relative to the tree root) of the existing file. */
  target?: string
  /** Devices: [major, minor]. */
  dev?: [number, number]
  mode?: number
  uid?: number
  gid?: number
  /** Seconds since the epoch (fractional part ignored); applied after the entries are written. */
  mtime?: number
  xattrs?: Record<string, string>
  opaque?: boolean
}

/** A NodeSpec is told from a directory by its `type` (so no directory entry may be called "type" with a string value). */
const isNodeSpec = (n: Node): n is NodeSpec => typeof n === 'object' && !Buffer.isBuffer(n) && typeof (n as NodeSpec).type === 'string'

/**
 * Writes a tree spec under dir (which is created). Files default to mode 0644, dirs to 0755.
 * Example: writeTree(l, { 'a.txt': 'hello', d: { 'b.txt': 'x' }, gone: { type: 'whiteout' },
 * sub: { type: 'dir', opaque: true, entries: {} }, ln: { type: 'symlink', target: 'a.txt' } })
 */
export function writeTree(dir: string, spec: TreeSpec, root = dir): void {
  mkdirSync(dir, { recursive: true })
  const timed: Array<[string, number]> = []
  for (const [name, node] of Object.entries(spec)) {
    const path = join(dir, name)
    const n: NodeSpec = typeof node === 'string' || Buffer.isBuffer(node) ? { type: 'file', content: node }
      : isNodeSpec(node) ? node
      : { type: 'dir', entries: node as TreeSpec }
    const type = n.type
    switch (type) {
      case 'file':
        writeFileSync(path, n.content ?? '')
        chmodSync(path, n.mode ?? 0o644)
        break
      case 'dir':
        writeTree(path, n.entries ?? {}, root)
        chmodSync(path, n.mode ?? 0o755)
        if (n.opaque) opaque(path)
        break
      case 'symlink':
        symlinkSync(n.target ?? '', path)
        break
      case 'hardlink':
        linkSync(join(root, n.target ?? ''), path)
        break
      case 'whiteout':
        whiteout(path)
        break
      case 'fifo':
        execFileSync('mkfifo', ['-m', (n.mode ?? 0o644).toString(8), path])
        break
      case 'chardev':
      case 'blockdev':
        execFileSync('mknod', ['-m', (n.mode ?? 0o644).toString(8), path, type === 'chardev' ? 'c' : 'b', String(n.dev?.[0] ?? 1), String(n.dev?.[1] ?? 3)])
        break
    }
    if (n.uid !== undefined || n.gid !== undefined) lchownSync(path, n.uid ?? 0, n.gid ?? 0)
    if (type !== 'symlink' && type !== 'hardlink' && n.mode !== undefined) chmodSync(path, n.mode)
    for (const [k, v] of Object.entries(n.xattrs ?? {})) setXattr(path, k, v)
    if (n.mtime !== undefined) timed.push([path, n.mtime])
  }
  for (const [path, sec] of timed) setTimes(path, Math.floor(sec), 0)
}

/**
 * A general-purpose pair of lower layers (lower0 on top of lower1) with everything the
 * kernel's merge rules care about, for scenario stories:
 *
 *   lower0: top.txt, shared.txt ("from lower0"), merged/{a0, sub/s0}, gone (whiteout),
 *           opq/ (opaque: hides lower1's opq/hidden), only0/x, link0 -> top.txt
 *   lower1: shared.txt ("from lower1"), bottom.txt, gone, merged/{a1, sub/s1}, opq/hidden,
 *           only1/{y, deep/z}, file-vs-dir/ (a dir under lower0's file of the same name)
 */
export function sampleLowers(lowers: readonly string[]): void {
  const [l0, l1] = lowers
  if (!l0 || !l1) throw new Error('sampleLowers needs two lower dirs')
  writeTree(l1, {
    'shared.txt': 'from lower1\n',
    'bottom.txt': 'bottom\n',
    gone: 'you should not see me\n',
    merged: { a1: 'a1\n', sub: { s1: 's1\n' } },
    opq: { hidden: 'hidden by an opaque dir\n' },
    only1: { y: 'y\n', deep: { z: 'z\n' } },
    'file-vs-dir': { inside: 'under a file\n' },
  })
  writeTree(l0, {
    'top.txt': 'top\n',
    'shared.txt': 'from lower0\n',
    merged: { a0: 'a0\n', sub: { s0: 's0\n' } },
    gone: { type: 'whiteout' },
    opq: { type: 'dir', opaque: true, entries: { visible: 'visible\n' } },
    only0: { x: 'x\n' },
    link0: { type: 'symlink', target: 'top.txt' },
    'file-vs-dir': 'a file over a dir\n',
  })
}
