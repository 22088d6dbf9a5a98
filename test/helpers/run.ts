// Runs a program in a separate process and collects its exit status and output.
// Never runs anything inside the test process: a hung FUSE request then hangs a child,
// which the timeout kills, not the test runner.
import { spawn } from 'node:child_process'

export interface RunOptions {
  /** Working directory of the child. Default: the test process's cwd. */
  cwd?: string
  /** Extra environment, merged over process.env (a value of undefined removes a variable). */
  env?: Record<string, string | undefined>
  /** Written to the child's stdin, which is then closed. Default: stdin is /dev/null. */
  input?: string | Buffer
  /** Milliseconds before the child gets SIGKILL; the result then has timedOut: true. Default 60 s. */
  timeout?: number
  /** Keep stdout as a Buffer too (binary output). */
  binary?: boolean
}

export interface RunResult {
  /** Exit code, or null when a signal ended the child. */
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  stdoutBytes?: Buffer
  timedOut: boolean
  /** The command as one readable line, for assertion messages. */
  command: string
}

const quote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`)

/** Runs `cmd args...` without a shell. Resolves (never rejects) once the child and its pipes are closed. */
export function run(cmd: string, args: readonly string[] = [], opts: RunOptions = {}): Promise<RunResult> {
  const command = [cmd, ...args].map(quote).join(' ')
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries({ ...process.env, ...opts.env })) if (v !== undefined) env[k] = v
  return new Promise(resolve => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    let timedOut = false
    let spawnError: Error | undefined
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, opts.timeout ?? 60_000)
    child.stdout?.on('data', (b: Buffer) => out.push(b))
    child.stderr?.on('data', (b: Buffer) => err.push(b))
    if (opts.input !== undefined) child.stdin?.end(opts.input)
    child.on('error', e => (spawnError = e))
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const stdoutBytes = Buffer.concat(out)
      resolve({
        code: spawnError ? 127 : code,
        signal,
        stdout: stdoutBytes.toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (spawnError ? String(spawnError) : ''),
        ...(opts.binary ? { stdoutBytes } : {}),
        timedOut,
        command,
      })
    })
  })
}

/** Runs a bash script (`bash -c`, with pipefail; add `set -e` yourself if wanted). */
export function sh(script: string, opts: RunOptions = {}): Promise<RunResult> {
  return run('bash', ['-o', 'pipefail', '-c', script], opts).then(r => ({ ...r, command: script }))
}

/** Like run(), but throws with the command, code and stderr when the exit code is not 0. */
export async function runOk(cmd: string, args: readonly string[] = [], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts)
  if (r.code !== 0) throw new Error(describeFailure(r))
  return r
}

/** Like sh(), but throws when the script fails. */
export async function shOk(script: string, opts: RunOptions = {}): Promise<RunResult> {
  const r = await sh(script, opts)
  if (r.code !== 0) throw new Error(describeFailure(r))
  return r
}

export function describeFailure(r: RunResult): string {
  const how = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`
  return `command failed (${how}): ${r.command}\n--- stderr ---\n${r.stderr.trim()}\n--- stdout ---\n${r.stdout.trim().slice(0, 2000)}`
}
