// Disk usage of a directory tree the way du(1) counts it: allocated blocks (st_blocks * 512)
// of every object, the top directory included, each inode once however many names it has.
import fs from 'node:fs'

const SLASH = Buffer.from('/')

/** Bytes allocated to the tree at `dir` (what `du -sB1 dir` prints); 0 when it is absent. */
export function diskUsage(dir: string): number {
  const seen = new Set<string>()
  let total = 0n
  // Paths are bytes, so names that are not UTF-8 are visited too.
  const visit = (path: Buffer): void => {
    const st = fs.lstatSync(path, { bigint: true, throwIfNoEntry: false })
    if (!st) return
    const key = `${st.dev}:${st.ino}`
    if (!seen.has(key)) {
      seen.add(key)
      total += st.blocks * 512n
    }
    if (!st.isDirectory()) return
    for (const name of fs.readdirSync(path, { encoding: 'buffer' })) visit(Buffer.concat([path, SLASH, name]))
  }
  visit(Buffer.from(dir))
  return Number(total)
}
