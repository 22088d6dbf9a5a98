// A progress bar on stderr for long image work: drawn only when stderr is a terminal (quiet
// in pipes, logs and tests), redrawn at most ten times a second.

export interface ProgressBar {
  /** Report done of total (bytes). */
  update(done: number, total: number): void
  /** Erase the bar. */
  done(): void
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  if (!stream.isTTY) return { update: () => {}, done: () => {} }
  let last = 0
  let drawn = false
  return {
    update(done, total) {
      const now = Date.now()
      if (now - last < 100 && done < total) return
      last = now
      const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - label.length - 30))
      const frac = total > 0 ? Math.min(1, done / total) : 1
      const fill = Math.round(frac * width)
      const mib = (n: number): string => (n / 1048576).toFixed(1)
      stream.write(`\r${label} [${'#'.repeat(fill)}${' '.repeat(width - fill)}] ${mib(done)}/${mib(total)} MiB`)
      drawn = true
    },
    done() {
      if (drawn) stream.write('\r\x1b[K')
    },
  }
}
