// What the two stress drivers (crash-loop.mjs, soak.mjs) share: seeded randomness and data,
// mounting layerfs (through its CLI) and kernel overlayfs on the same layers, tree snapshots to
// compare the two, and a hash of the lower layers. Never imported by the daemon.
import { execFile, spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const CLI = path.join(REPO, 'dist/cli.js')
export const MiB = 1 << 20
/** The kernel's options that match what layerfs does (test/helpers/mount.ts uses the same). */
export const KERNEL_OPTIONS = 'redirect_dir=on,index=off,metacopy=off,xino=off'

/** mulberry32: a small seeded generator, the same sequence on every run of a seed. */
export function rng(seed) {
  let s = seed >>> 0
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: n => Math.floor(next() * n),
    pick: arr => arr[Math.floor(next() * arr.length)],
    chance: p => next() < p,
  }
}

/**
 * `len` bytes from `seed`; prefix-stable (the first k bytes of gen(s, n) are gen(s, k)), so a
 * write cut short by a crash is recognised as a prefix of what was being written.
 */
export function genBytes(seed, len) {
  // Whole 32-bit words, cut to len: a tail of 1-3 bytes is the start of the next word, as it
  // is in any longer run of the same seed.
  const buf = Buffer.allocUnsafe((len + 3) & ~3)
  let x = (seed >>> 0) ^ 0x9e3779b9
  if (x === 0) x = 1
  for (let i = 0; i < buf.length; i += 4) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    buf.writeUInt32LE(x >>> 0, i)
  }
  return buf.subarray(0, len)
}

/** The big file's fsync'd marks (crash loop): one per 1 MiB slot, at this offset in it. */
export const MARK_OFFSET = 4096
export const MARK_LEN = 64
export const markBytes = (iter, seq, slot) => Buffer.from(`LAYERFS-MARK ${iter} ${seq} ${slot} `.padEnd(MARK_LEN, '.'))
/** The big lower file's bytes: slot k (1 MiB) is genBytes(BIG_SEED + k). */
export const BIG_SEED = 1000

export const sha256 = data => crypto.createHash('sha256').update(data).digest('hex')

export function sha256File(file) {
  const h = crypto.createHash('sha256')
  const fd = fs.openSync(file, 'r')
  try {
    const buf = Buffer.allocUnsafe(4 * MiB)
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n))
  } finally {
    fs.closeSync(fd)
  }
  return h.digest('hex')
}

/** Run a command; never throws: {code, stdout, stderr}. */
export function sh(cmd, args, opts = {}) {
  return new Promise(resolve => {
    execFile(cmd, args, { encoding: 'utf8', maxBuffer: 64 * MiB, timeout: opts.timeout ?? 60_000, env: opts.env ?? process.env },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr, signal: err?.signal }))
  })
}

export const sleep = ms => new Promise(r => setTimeout(r, ms))

export function isMounted(mnt) {
  return fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some(l => l.split(' ')[1] === mnt)
}

/** Pids of layerfs daemons serving `mnt` (each calls itself `layerfs MOUNTPOINT`: src/cli.ts). */
export function daemonsOf(mnt) {
  const out = []
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const name = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]
      if (name === `layerfs ${mnt}` && !isZombie(pid)) out.push(Number(pid))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

export function isZombie(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return st[st.lastIndexOf(')') + 2] === 'Z'
  } catch {
    return true
  }
}

export const layerOptions = ({ lowers, upper, work }) =>
  [`lowerdir=${lowers.join(':')}`, ...(upper ? [`upperdir=${upper}`, `workdir=${work}`] : [])].join(',')

/**
 * `layerfs mount` as a user runs it; resolves to the daemon's pid. With `logFd` the daemon's
 * stderr (DEBUG traces) goes there.
 */
export async function mountLayerfs(spec, { env, logFd } = {}) {
  const args = [CLI, 'mount', '-o', layerOptions(spec), spec.mnt]
  const r = await new Promise(resolve => {
    const child = spawn(process.execPath, args, {
      env: env ?? process.env,
      stdio: ['ignore', 'ignore', logFd ?? 'pipe'],
    })
    let stderr = ''
    child.stderr?.on('data', d => (stderr += d))
    child.on('exit', code => resolve({ code, stderr }))
  })
  if (r.code !== 0) throw new Error(`layerfs mount failed (exit ${r.code}): ${r.stderr.trim()}`)
  const pids = daemonsOf(spec.mnt)
  if (pids.length !== 1) throw new Error(`layerfs mount: expected one daemon for ${spec.mnt}, found ${pids.length}`)
  return pids[0]
}

export async function umountLayerfs(mnt) {
  const r = await sh(process.execPath, [CLI, 'umount', mnt], { timeout: 30_000 })
  if (r.code !== 0) throw new Error(`layerfs umount ${mnt} failed: ${r.stderr.trim()}`)
}

export async function mountKernel(spec) {
  const r = await sh('mount', ['-t', 'overlay', 'overlay', '-o', `${layerOptions(spec)},${KERNEL_OPTIONS}`, spec.mnt])
  if (r.code !== 0) {
    const dmesg = await sh('dmesg', [])
    throw new Error(`kernel overlay mount failed: ${r.stderr.trim()} ${dmesg.stdout.trim().split('\n').slice(-2).join(' | ')}`)
  }
}

export async function umountKernel(mnt) {
  const r = await sh('umount', [mnt])
  if (r.code !== 0) throw new Error(`umount ${mnt} failed: ${r.stderr.trim()}`)
}

/** Mount `spec` with kernel overlayfs at `spec.mnt`, run `read(mnt)` on it, unmount (also when it throws). */
export async function withKernelMount(spec, read) {
  await mountKernel(spec)
  try {
    return read(spec.mnt)
  } finally {
    await umountKernel(spec.mnt)
  }
}

/** Take off whatever is mounted at mnt (a dead FUSE mount too), for the safety nets. */
export async function forceUnmount(mnt) {
  for (let i = 0; i < 5 && isMounted(mnt); i++) {
    await sh('fusermount', ['-uz', mnt])
    if (isMounted(mnt)) await sh('umount', ['-l', mnt])
  }
}

const S_IFMT = 0o170000

/**
 * What a user sees of a tree: path -> "type mode uid:gid size content-hash|target|rdev".
 * Directory sizes, link counts and times are left out (they legitimately differ between
 * layerfs and the kernel). `onEntry(path, stat)` sees every entry (checks of the caller).
 */
export function snapshot(root, onEntry) {
  const out = new Map()
  const walk = rel => {
    const abs = rel === '' ? root : path.join(root, rel)
    const st = fs.lstatSync(abs, { bigint: true })
    onEntry?.(rel || '/', st)
    const mode = Number(st.mode)
    const type = mode & S_IFMT
    const base = `${(type >>> 12).toString(8)} ${(mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`
    if (type === 0o040000) {
      out.set(rel || '/', `dir ${base}`)
      for (const name of fs.readdirSync(abs).sort()) walk(rel === '' ? name : `${rel}/${name}`)
    } else if (type === 0o100000) {
      out.set(rel, `file ${base} ${st.size} ${sha256File(abs)}`)
    } else if (type === 0o120000) {
      out.set(rel, `link ${base} ${fs.readlinkSync(abs)}`)
    } else {
      out.set(rel, `special ${base} ${st.rdev}`)
    }
  }
  walk('')
  return out
}

/** The differences of two snapshots, at most `max`, as lines. */
export function diffSnapshots(a, b, aName, bName, max = 10) {
  const out = []
  for (const [p, v] of a) {
    if (!b.has(p)) out.push(`${p}: only in ${aName} (${v})`)
    else if (b.get(p) !== v) out.push(`${p}: ${aName} ${v} / ${bName} ${b.get(p)}`)
  }
  for (const [p, v] of b) if (!a.has(p)) out.push(`${p}: only in ${bName} (${v})`)
  return out.length > max ? [...out.slice(0, max), `... ${out.length - max} more`] : out
}

/**
 * A hash of everything a layer is made of (names, types, modes, owners, sizes, mtimes and
 * ctimes to the ns, inode numbers, contents, xattrs): equal before and after means untouched.
 */
export async function hashLayer(root) {
  const h = crypto.createHash('sha256')
  const walk = rel => {
    const abs = path.join(root, rel)
    const st = fs.lstatSync(abs, { bigint: true })
    h.update(`${rel}\0${st.mode} ${st.uid} ${st.gid} ${st.size} ${st.mtimeNs} ${st.ctimeNs} ${st.ino} ${st.nlink} ${st.rdev}\0`)
    const type = Number(st.mode) & S_IFMT
    if (type === 0o040000) for (const name of fs.readdirSync(abs).sort()) walk(`${rel}/${name}`)
    else if (type === 0o100000) h.update(sha256File(abs))
    else if (type === 0o120000) h.update(fs.readlinkSync(abs))
  }
  walk('')
  const x = await sh('getfattr', ['-R', '-P', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root])
  h.update(x.stdout)
  return h.digest('hex')
}

/** Whether a stat is a whiteout (a 0/0 character device). */
export const isWhiteoutStat = st => (Number(st.mode) & S_IFMT) === 0o020000 && st.rdev === 0n

/** The fixed-width argument parser both drivers use: --name value, --flag. */
export function parseArgs(argv, spec, usage) {
  const a = {}
  for (const [k, v] of Object.entries(spec)) a[k] = v.default
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]
    if (k === '-h' || k === '--help') {
      console.log(usage)
      process.exit(0)
    }
    const key = k.replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase())
    const s = spec[key]
    if (!k.startsWith('--') || !s) die(`unknown argument ${k} (see --help)`)
    if (s.flag) {
      a[key] = true
      continue
    }
    const v = argv[++i]
    if (v === undefined) die(`${k} needs a value`)
    a[key] = s.number ? Number(v) : v
    if (s.number && !Number.isFinite(a[key])) die(`${k}: not a number: ${v}`)
  }
  return a
}

export function die(msg) {
  process.stderr.write(`${path.basename(process.argv[1] ?? 'stress', '.mjs')}: ${msg}\n`)
  process.exit(2)
}

/** Lines from a child's stdout, one callback per line. */
export function onLines(stream, cb) {
  let buf = ''
  stream.setEncoding('utf8')
  stream.on('data', d => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      cb(buf.slice(0, i))
      buf = buf.slice(i + 1)
    }
  })
}
