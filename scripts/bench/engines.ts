// Container engine benchmark: `podman run` of a short command and `podman build` of a 5-step
// Containerfile, with layerfs as containers/storage's mount_program against fuse-overlayfs (and
// the kernel's overlay, no mount_program, as the floor), as root and rootless. Every storage
// lives on one ext4 file system on a loop device. Legs are interleaved (each round runs every
// leg once, in a rotating order); medians, and layerfs's ratio to the others, are printed.
// Run through ./engines (its safety net unmounts, detaches and kills what this leaves behind).
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { hostStateAbsent, IMAGES, Leg, makeBaseTarball, missingPrerequisites, prepareRootless, removeHostState, RUN_FLAGS, type Mode, type Storage } from '../../test/engines/lib.js'
import { run, runOk } from '../../test/helpers/run.js'

const USAGE = `usage: scripts/bench/engines [--runs N] [--builds N] [--modes root,rootless] [--targets layerfs,fuse-overlayfs,kernel]
                             [--size-mib N] [--results FILE]
  --runs N       timed \`podman run\` rounds (default 15)
  --builds N     timed \`podman build\` rounds (default 5)
  --modes        root,rootless (default both)
  --targets      layerfs,fuse-overlayfs,kernel (default all three; the kernel is the floor, no mount_program)
  --size-mib N   the ext4 image (default 3072)
  --results FILE also write the raw timings and the table (JSON) there`

/** Five steps, each a layer: many small files, a delete and a directory rename, a 2 MB copy, a full read, a delete of a base file. */
const CONTAINERFILE = `FROM ${IMAGES.base}
RUN mkdir -p /w/a && for i in $(busybox seq 1 300); do echo $i > /w/a/f$i; done
RUN rm -f /w/a/f1* && mv /w/a /w/b
RUN cp /bin/busybox /w/bb && chmod 700 /w/bb
RUN find / -xdev -type f -exec cat {} + | sha256sum > /w/sum
RUN rm /bin/rmdir && echo done > /w/done
`

interface Args { runs: number; builds: number; modes: Mode[]; targets: Storage[]; sizeMib: number; results?: string; runDir: string }

function parseArgs(argv: string[]): Args {
  const a: Args = { runs: 15, builds: 5, modes: ['root', 'rootless'], targets: ['layerfs', 'fuse-overlayfs', 'kernel'], sizeMib: 3072, runDir: '' }
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]
    const v = (): string => {
      const x = argv[++i]
      if (x === undefined) die(`${k} needs a value\n${USAGE}`)
      return x
    }
    if (k === '--runs') a.runs = Number(v())
    else if (k === '--builds') a.builds = Number(v())
    else if (k === '--modes') a.modes = v().split(',') as Mode[]
    else if (k === '--targets') a.targets = v().split(',') as Storage[]
    else if (k === '--size-mib') a.sizeMib = Number(v())
    else if (k === '--results') a.results = v()
    else if (k === '--run-dir') a.runDir = v()
    else if (k === '--help' || k === '-h') die(USAGE, 0)
    else die(`unknown argument ${k}\n${USAGE}`)
  }
  if (!a.runDir) die('--run-dir is set by scripts/bench/engines: run that')
  for (const m of a.modes) if (m !== 'root' && m !== 'rootless') die(`unknown mode ${m}`)
  for (const t of a.targets) if (!['layerfs', 'fuse-overlayfs', 'kernel'].includes(t)) die(`unknown target ${t}`)
  return a
}

function die(msg: string, code = 2): never {
  console.error(msg)
  process.exit(code)
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

async function timed(leg: Leg, args: string[]): Promise<number> {
  const t = process.hrtime.bigint()
  const r = await leg.podman(args, { timeout: 300_000 })
  const s = Number(process.hrtime.bigint() - t) / 1e9
  if (r.code !== 0) throw new Error(`${leg.name}: podman ${args.join(' ')} failed (${r.code}):\n${r.stderr.trim().slice(-2000)}`)
  return s
}

const a = parseArgs(process.argv.slice(2))
const missing = await missingPrerequisites()
if (missing.length) die(missing.join('\n'))

// One ext4 file system on a loop device for every storage (rootless podman wants a short run
// root path: the mount point is short).
const img = join(a.runDir, 'ext4.img')
const mnt = join(a.runDir, 'm')
mkdirSync(mnt)
await runOk('truncate', ['-s', `${a.sizeMib}M`, img])
await runOk('mkfs.ext4', ['-q', '-F', img])
await runOk('mount', ['-o', 'loop', img, mnt])
const loop = (await runOk('findmnt', ['-n', '-o', 'SOURCE', mnt])).stdout.trim()
console.log(`storage: ext4 on ${loop} (${a.sizeMib} MiB image in ${a.runDir}), mounted at ${mnt}`)
const base = await makeBaseTarball(a.runDir)
const user = a.modes.includes('rootless') ? await prepareRootless() : undefined

const legs: Leg[] = []
const absent = hostStateAbsent()
try {
  for (const mode of a.modes) {
    for (const storage of a.targets) {
      const dir = join(mnt, `${mode === 'root' ? 'r' : 'u'}-${storage === 'fuse-overlayfs' ? 'fo' : storage === 'layerfs' ? 'lf' : 'k'}`)
      const leg = new Leg({ mode, storage, root: a.runDir, dir, ...(user && mode === 'rootless' ? { user } : {}) })
      legs.push(leg)
      await runOk('cp', [base, join(leg.dir, 'base.tar')])
      leg.writeFile('ctx/Containerfile', CONTAINERFILE)
      await timed(leg, ['import', 'base.tar', IMAGES.base])
      // Warm-up, untimed: the first run and build pay for caches and the pause process.
      await timed(leg, ['run', ...RUN_FLAGS, '--rm', IMAGES.base, 'true'])
      await timed(leg, ['build', ...RUN_FLAGS, '--no-cache', '-q', '-t', 'localhost/bench:warm', 'ctx'])
      await timed(leg, ['rmi', 'localhost/bench:warm'])
    }
  }
  const times: Record<string, { run: number[]; build: number[] }> = {}
  for (const l of legs) times[l.name] = { run: [], build: [] }
  const rotate = <T>(xs: T[], k: number): T[] => xs.map((_, i) => xs[(i + k) % xs.length]!)
  for (let i = 0; i < a.runs; i++) {
    for (const l of rotate(legs, i)) times[l.name]!.run.push(await timed(l, ['run', ...RUN_FLAGS, '--rm', IMAGES.base, 'true']))
    process.stdout.write(`\rpodman run: round ${i + 1}/${a.runs}`)
  }
  console.log()
  for (let i = 0; i < a.builds; i++) {
    for (const l of rotate(legs, i)) {
      times[l.name]!.build.push(await timed(l, ['build', ...RUN_FLAGS, '--no-cache', '-q', '-t', 'localhost/bench:b', 'ctx']))
      await timed(l, ['rmi', 'localhost/bench:b'])
    }
    process.stdout.write(`\rpodman build: round ${i + 1}/${a.builds}`)
  }
  console.log('\n')

  const rows: string[] = []
  const others = a.targets.includes('layerfs') ? a.targets.filter(t => t !== 'layerfs') : []
  rows.push(`| mode | workload | ${[...a.targets, ...others.map(t => `layerfs / ${t}`)].join(' | ')} |`)
  rows.push(`|${' --- |'.repeat(2 + a.targets.length + others.length)}`)
  for (const mode of a.modes) {
    for (const w of ['run', 'build'] as const) {
      const med = (t: Storage): number => median(times[`${mode}/${t}`]![w])
      const cells = a.targets.map(t => `${med(t).toFixed(3)} s`)
      const ratios = others.map(t => `${(med('layerfs') / med(t)).toFixed(2)}x`)
      rows.push(`| ${mode} | ${w === 'run' ? '`podman run --rm IMAGE true`' : '`podman build --no-cache` (5 RUN steps)'} | ${[...cells, ...ratios].join(' | ')} |`)
    }
  }
  const rounds = `medians of ${a.runs} runs and ${a.builds} builds per leg, interleaved`
  console.log(`${rounds}; ext4 on a loop device\n\n${rows.join('\n')}`)
  if (a.results) writeFileSync(a.results, JSON.stringify({ date: new Date().toISOString(), args: { ...a, runDir: undefined }, times, table: rows }, null, 2))
} finally {
  for (const l of legs) {
    const problems = await l.destroy()
    if (problems.length) console.error(problems.join('\n'))
  }
  await run('umount', [mnt])
  removeHostState(absent)
}
