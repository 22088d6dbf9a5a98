// Layer data for the benchmark, deterministic from a seed, written from node (no process per
// file). Layout of DIR:
//   lower/node_modules/   ~38,000 files: packages (some scoped, some with nested node_modules,
//                         .bin symlinks), lognormal sizes around 1 KiB
//   lower/src/            ~12,000 files: a C source tree, committed in a git repository (packed)
//   lower/cproj/          200 small C files and a Makefile (the make -j2 workload)
//   lower/big.bin         1 GiB, lower/mid.bin 256 MiB: pseudo-random (AES-CTR of the seed)
//   pkg.tar               ~5,000 files to extract into the mount (tar -xf)
//   lists/*.txt           paths relative to the union root: every entry, chmod set, delete set,
//                         latency-probe set
//   STAMP                 what was built (GEN_VERSION, seed, counts); equal STAMP = reusable
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { execFileSync } from 'node:child_process'

export const GEN_VERSION = 4
const MiB = 1 << 20
const EPOCH = 1_700_000_000 // every mtime/atime is EPOCH + something small and deterministic

/** mulberry32: small, fast, seeded. */
function rng(seed) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const r = {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: arr => arr[Math.floor(next() * arr.length)],
    normal: () => {
      const u = next() || 1e-12
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next())
    },
    lognormal: (median, sigma) => Math.round(median * Math.exp(sigma * r.normal())),
  }
  return r
}

const SYL = ['ba', 'ko', 'ri', 'nu', 'te', 'la', 'mo', 'si', 'da', 'pe', 'zu', 'ga', 'fi', 'lo', 'ne', 'xa', 'vo', 'qui', 'str', 'ent', 'ion', 'ar', 'ex', 'ut', 'il', 'on']
const word = (r, n = r.int(2, 4)) => Array.from({ length: n }, () => r.pick(SYL)).join('')

/** A pool of code-like text; file contents are slices of it. */
function textPool(r, size) {
  const kw = ['const', 'function', 'return', 'if', 'else', 'for', 'let', 'import', 'export', 'static', 'int', 'struct', 'void', 'while', 'switch', 'case']
  const parts = []
  let len = 0
  while (len < size) {
    const indent = '  '.repeat(r.int(0, 3))
    const line = `${indent}${r.pick(kw)} ${word(r)}_${word(r, 2)}(${word(r, 2)}, ${r.int(0, 9999)}) { ${r.pick(kw)} ${word(r)}; }\n`
    parts.push(line)
    len += line.length
  }
  return Buffer.from(parts.join('')).subarray(0, size)
}

class Writer {
  constructor(root, r, pool) {
    this.root = root
    this.r = r
    this.pool = pool
    this.files = 0
    this.bytes = 0
    this.dirs = new Set()
  }
  dir(rel) {
    if (this.dirs.has(rel)) return
    fs.mkdirSync(path.join(this.root, rel), { recursive: true })
    let d = rel
    while (d && d !== '.' && !this.dirs.has(d)) {
      this.dirs.add(d)
      d = path.dirname(d)
    }
  }
  file(rel, size, content) {
    this.dir(path.dirname(rel))
    let data = content
    if (data === undefined) {
      size = Math.max(0, Math.min(size, this.pool.length))
      const off = this.r.int(0, this.pool.length - size)
      data = this.pool.subarray(off, off + size)
    }
    fs.writeFileSync(path.join(this.root, rel), data, { mode: 0o644 })
    this.files++
    this.bytes += data.length
  }
  symlink(target, rel) {
    this.dir(path.dirname(rel))
    fs.symlinkSync(target, path.join(this.root, rel))
    this.files++
  }
}

const JS_EXT = [['.js', 55], ['.d.ts', 15], ['.js.map', 10], ['.json', 5], ['.md', 5], ['.mjs', 5], ['.cjs', 5]]
function pickWeighted(r, table) {
  const total = table.reduce((s, [, w]) => s + w, 0)
  let x = r.next() * total
  for (const [v, w] of table) if ((x -= w) < 0) return v
  return table[0][0]
}

/** One npm package at `base` (relative); returns its file count. Nested deps to `depth`. */
function writePackage(w, r, base, name, depth) {
  const before = w.files
  const nfiles = Math.min(1500, Math.round(Math.exp(2.4 + 1.25 * r.normal())) + 2)
  const hasBin = r.next() < 0.08
  w.file(`${base}/package.json`, 0, Buffer.from(JSON.stringify({
    name, version: `${r.int(0, 9)}.${r.int(0, 30)}.${r.int(0, 20)}`, main: 'index.js',
    ...(hasBin ? { bin: { [name.split('/').pop()]: 'bin/cli.js' } } : {}),
    license: 'MIT', description: word(r, 6),
  }, null, 2) + '\n'))
  w.file(`${base}/README.md`, w.r.lognormal(3000, 1))
  w.file(`${base}/LICENSE`, 1070)
  w.file(`${base}/index.js`, w.r.lognormal(400, 1))
  if (hasBin) w.file(`${base}/bin/cli.js`, 800)
  const dirs = ['lib']
  const ndirs = 1 + Math.floor(nfiles / 15)
  const tops = ['lib', 'dist', 'src', 'types', 'esm', 'cjs', 'build']
  for (let i = 1; i < ndirs; i++) {
    const parent = r.next() < 0.5 ? r.pick(tops) : r.pick(dirs)
    dirs.push(`${parent}/${word(r)}`)
  }
  for (let i = 0; i < nfiles; i++) {
    const d = r.pick(dirs)
    w.file(`${base}/${d}/${word(r)}${i}${pickWeighted(r, JS_EXT)}`, r.lognormal(1100, 1.2))
  }
  if (depth > 0 && r.next() < 0.12) {
    const n = r.int(1, 3)
    for (let i = 0; i < n; i++) writePackage(w, r, `${base}/node_modules/${word(r)}`, word(r), depth - 1)
  }
  return { files: w.files - before, bin: hasBin ? name.split('/').pop() : undefined }
}

function genNodeModules(w, r, target) {
  const names = new Set()
  while (w.files < target) {
    let name = word(r, r.int(2, 5))
    if (r.next() < 0.15) name = `@${word(r, 2)}/${name}`
    if (names.has(name)) continue
    names.add(name)
    const { bin } = writePackage(w, r, `node_modules/${name}`, name, 2)
    if (bin && !fs.existsSync(path.join(w.root, 'node_modules/.bin', bin))) {
      w.symlink(`../${name}/bin/cli.js`, `node_modules/.bin/${bin}`)
    }
  }
}

function genSourceTree(w, r, target) {
  const tops = ['arch', 'drivers', 'fs', 'include', 'kernel', 'lib', 'net', 'tools', 'Documentation', 'scripts', 'sound', 'crypto']
  const dirs = [...tops.map(t => `src/${t}`)]
  const ndirs = Math.floor(target / 14)
  for (let i = dirs.length; i < ndirs; i++) dirs.push(`${r.pick(dirs)}/${word(r)}`)
  const ext = [['.c', 55], ['.h', 25], ['.S', 3], ['.rst', 7], ['.py', 3], ['.sh', 2], ['.txt', 5]]
  const start = w.files
  for (const d of dirs) w.file(`${d}/Makefile`, r.lognormal(600, 0.8))
  while (w.files - start < target) {
    const d = r.pick(dirs)
    w.file(`${d}/${word(r)}_${w.files}${pickWeighted(r, ext)}`, r.lognormal(5000, 1.1))
  }
  w.file('src/README', 4000)
  w.file('src/.gitignore', 0, Buffer.from('*.o\n*.ko\n'))
}

function genCProject(w, n) {
  w.file('cproj/include/common.h', 0, Buffer.from(
    '#pragma once\n#include <stddef.h>\nstruct item { int key; double val; const char *name; };\n' +
    Array.from({ length: n }, (_, i) => `int f${i}(int x);\n`).join('')))
  for (let i = 0; i < n; i++) {
    const body = [
      '#include "common.h"', '#include <string.h>',
      `static int table${i}[64];`,
      `static int helper${i}(struct item *it, int k) {`,
      '  int acc = 0;',
      `  for (int j = 0; j < 64; j++) acc += table${i}[j] * (k ^ j) + it->key;`,
      '  if (it->name && strlen(it->name) > 3) acc += (int)it->val;',
      '  return acc;', '}',
      `int f${i}(int x) {`,
      `  struct item it = { x, ${i}.5, "item${i}" };`,
      '  int r = 0;',
      `  for (int k = 0; k < ${(i % 7) + 3}; k++) r += helper${i}(&it, k);`,
      `  return x ? r : ${i};`, '}', '',
    ]
    w.file(`cproj/src/f${String(i).padStart(3, '0')}.c`, 0, Buffer.from(body.join('\n')))
  }
  w.file('cproj/src/main.c', 0, Buffer.from(
    '#include "common.h"\n#include <stdio.h>\nint main(void) {\n  long s = 0;\n' +
    Array.from({ length: n }, (_, i) => `  s += f${i}(${i});\n`).join('') + '  printf("%ld\\n", s);\n  return 0;\n}\n'))
  w.file('cproj/Makefile', 0, Buffer.from([
    'CFLAGS ?= -O1 -g0',
    'SRCS := $(sort $(wildcard src/*.c))',
    'OBJS := $(SRCS:src/%.c=obj/%.o)',
    'prog: $(OBJS)',
    '\t$(CC) -o $@ $^',
    'obj/%.o: src/%.c include/common.h | obj',
    '\t$(CC) $(CFLAGS) -Iinclude -c -o $@ $<',
    'obj:',
    '\tmkdir -p obj',
    'clean:',
    '\trm -rf obj prog',
    '.PHONY: clean', '',
  ].join('\n')))
}

/** size bytes of AES-256-CTR keystream keyed by the seed: pseudo-random, fast, deterministic. */
function randomFile(file, size, seed, label) {
  const key = crypto.createHash('sha256').update(`${seed}:${label}`).digest()
  const cipher = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
  const zeros = Buffer.alloc(8 * MiB)
  const fd = fs.openSync(file, 'w', 0o644)
  try {
    for (let done = 0; done < size; done += zeros.length) fs.writeSync(fd, cipher.update(zeros))
  } finally {
    fs.closeSync(fd)
  }
}

/** Every entry under root (relative, sorted), with its type. */
function walk(root) {
  const out = []
  const rec = rel => {
    for (const d of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${d.name}` : d.name
      out.push({ p, dir: d.isDirectory(), file: d.isFile(), link: d.isSymbolicLink() })
      if (d.isDirectory()) rec(p)
    }
  }
  rec('')
  return out.sort((a, b) => (a.p < b.p ? -1 : a.p > b.p ? 1 : 0))
}

/** Fixed times on everything (directories after their contents). */
function fixTimes(root, entries) {
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]
    const t = EPOCH + (i % 86_400)
    fs.lutimesSync(path.join(root, e.p), t, t)
  }
  fs.utimesSync(root, EPOCH, EPOCH)
}

const git = (cwd, ...args) => execFileSync('git', args, {
  cwd,
  stdio: ['ignore', 'ignore', 'inherit'],
  env: {
    ...process.env, GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@example.com', GIT_COMMITTER_NAME: 'bench',
    GIT_COMMITTER_EMAIL: 'bench@example.com', GIT_AUTHOR_DATE: `${EPOCH} +0000`, GIT_COMMITTER_DATE: `${EPOCH} +0000`,
    GIT_CONFIG_NOSYSTEM: '1', HOME: cwd,
  },
})

export const defaultParams = { seed: 42, nodeModules: 38_000, source: 12_000, cfiles: 200, bigMiB: 1024, midMiB: 256, tarFiles: 5_000 }

/** Whether dir holds data built with these params. */
export function isBuilt(dir, params = defaultParams) {
  try {
    const s = JSON.parse(fs.readFileSync(path.join(dir, 'STAMP'), 'utf8'))
    return s.version === GEN_VERSION && JSON.stringify(s.params) === JSON.stringify(params)
  } catch {
    return false
  }
}

export function generate(dir, params = defaultParams, log = () => {}) {
  const t0 = Date.now()
  fs.rmSync(dir, { recursive: true, force: true })
  const lower = path.join(dir, 'lower')
  fs.mkdirSync(lower, { recursive: true })
  fs.mkdirSync(path.join(dir, 'lists'))
  const r = rng(params.seed)
  const pool = textPool(rng(params.seed + 1), 4 * MiB)
  const w = new Writer(lower, r, pool)
  genNodeModules(w, rng(params.seed + 2), params.nodeModules)
  log(`node_modules: ${w.files} files (${(Date.now() - t0) / 1000}s)`)
  const nm = w.files
  genSourceTree(new Writer(lower, rng(params.seed + 3), pool), rng(params.seed + 4), params.source)
  genCProject(new Writer(lower, r, pool), params.cfiles)
  randomFile(path.join(lower, 'big.bin'), params.bigMiB * MiB, params.seed, 'big')
  randomFile(path.join(lower, 'mid.bin'), params.midMiB * MiB, params.seed, 'mid')
  log(`big files done (${(Date.now() - t0) / 1000}s)`)

  // The git work tree: times fixed first, so the index records them and nothing is racy.
  const src = path.join(lower, 'src')
  fixTimes(src, walk(src))
  git(src, 'init', '-q', '-b', 'main')
  git(src, 'config', 'gc.auto', '0')
  git(src, 'config', 'maintenance.auto', 'false')
  git(src, 'add', '-A')
  git(src, 'commit', '-q', '-m', 'import')
  git(src, '-c', 'pack.threads=1', 'repack', '-a', '-d', '-q', '--window=0')
  git(src, 'prune')
  log(`git repository done (${(Date.now() - t0) / 1000}s)`)

  // The tarball to extract: a separate package tree.
  const tsrc = path.join(dir, 'tarsrc')
  const tw = new Writer(tsrc, rng(params.seed + 5), pool)
  genNodeModules(tw, rng(params.seed + 6), params.tarFiles)
  fixTimes(tsrc, walk(tsrc))
  execFileSync('tar', ['--sort=name', `--mtime=@${EPOCH}`, '--owner=0', '--group=0', '--numeric-owner',
    '-cf', path.join(dir, 'pkg.tar'), '-C', tsrc, '.'])
  fs.rmSync(tsrc, { recursive: true })

  const all = walk(lower)
  // Everything but src/ (git has its index's times already; its directories get new mtimes
  // from git itself, which is fine: git compares file stats only).
  fixTimes(lower, all.filter(e => !e.p.startsWith('src/') && e.p !== 'src'))
  const nmFiles = all.filter(e => e.file && e.p.startsWith('node_modules/'))
  const writeList = (name, list) => fs.writeFileSync(path.join(dir, 'lists', name), list.map(e => e.p).join('\n') + '\n')
  writeList('all.txt', all)
  writeList('chmod.txt', nmFiles.filter((_, i) => i % Math.floor(nmFiles.length / 1000) === 0).slice(0, 1000))
  const delStart = Math.floor(nmFiles.length * 0.3)
  writeList('delete.txt', nmFiles.slice(delStart, delStart + 10_000))
  // Probe targets: spread over the tree, outside the delete range.
  writeList('probe.txt', nmFiles.filter((_, i) => (i < delStart || i >= delStart + 10_000) && i % 7 === 3))
  writeList('delete-2k.txt', nmFiles.slice(delStart, delStart + 2_000))
  writeList('chmod-200.txt', nmFiles.filter((_, i) => i % Math.floor(nmFiles.length / 200) === 0).slice(0, 200))
  writeList('all-10k.txt', all.filter((_, i) => i % Math.ceil(all.length / 10_000) === 0))

  const stamp = {
    version: GEN_VERSION, params, entries: all.length, files: all.filter(e => e.file).length,
    dirs: all.filter(e => e.dir).length, symlinks: all.filter(e => e.link).length, nodeModulesFiles: nm,
    seconds: (Date.now() - t0) / 1000,
  }
  fs.writeFileSync(path.join(dir, 'STAMP'), JSON.stringify(stamp, null, 2) + '\n')
  log(`data: ${stamp.entries} entries (${stamp.files} files, ${stamp.dirs} dirs, ${stamp.symlinks} symlinks) in ${stamp.seconds}s`)
  return stamp
}

// node gen.mjs DIR: build (or say it is built).
if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2]
  if (!dir) {
    console.error('usage: node gen.mjs DIR')
    process.exit(2)
  }
  if (isBuilt(dir)) console.log(`${dir}: already built`)
  else generate(dir, defaultParams, m => console.error(`gen: ${m}`))
}
