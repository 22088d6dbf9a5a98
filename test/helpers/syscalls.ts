// Exact syscalls in a separate process (syscalls.py), for errno-level comparisons between
// layerfs and the kernel. Paths are relative to cwd (the mount point, usually).
import { fileURLToPath } from 'node:url'
import { run } from './run.js'

export type Op = { op: string; path?: string; [k: string]: unknown }
export type SysResult = { ok: true; value?: unknown } | { errno: string }

const script = fileURLToPath(new URL('./syscalls.py', import.meta.url))

/** Runs ops in order in one python3 process with the given cwd; one result per op. */
export async function syscalls(cwd: string, ops: readonly Op[], opts: { uid?: number; timeout?: number } = {}): Promise<SysResult[]> {
  const r = await run('python3', [script], { cwd, input: JSON.stringify(ops), timeout: opts.timeout ?? 30_000 })
  if (r.code !== 0) throw new Error(`syscalls.py failed in ${cwd} (exit ${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim()}`)
  return JSON.parse(r.stdout) as SysResult[]
}

/** Shorthand results for expectations. */
export const OK: SysResult = { ok: true }
export const err = (code: string): SysResult => ({ errno: code })
export const val = (value: unknown): SysResult => ({ ok: true, value })

/** Pairs each op with its result, for readable assertion messages and diffs. */
export const labelled = (ops: readonly Op[], res: readonly SysResult[]): Array<{ op: string; result: SysResult }> =>
  ops.map((o, i) => ({ op: `${o.op} ${o.path ?? ''}${o.to ? ` -> ${String(o.to)}` : ''}`.trim(), result: res[i]! }))
