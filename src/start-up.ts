// Where a mount's start-up time goes: marks in ms since this process started, which the daemon
// logs on layerfs:mount once the mount serves (scripts/bench/mount-time reads them). A leaf.
const marks: string[] = []
// Imported first by cli.ts, so evaluated first: Node.js is up, no module of ours has loaded yet.
marks.push(`node ${performance.now().toFixed(1)}`)

/** Notes that start-up reached `what` now. */
export function markStartUp(what: string): void {
  marks.push(`${what} ${performance.now().toFixed(1)}`)
}

/** The marks so far, after the process's start as epoch ms: `origin 1765091234567.8, main 61.2, ...`. */
export function startUpMarks(): string {
  return [`origin ${performance.timeOrigin.toFixed(1)}`, ...marks].join(', ')
}
