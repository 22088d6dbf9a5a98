// The supplementary groups of a calling thread, which FUSE does not send: read from
// /proc/<tid>/status (never our own mount). Only asked in the rare case where a decision
// depends on group membership beyond the caller's fsgid.
import fs from 'node:fs'

/** Whether thread `pid` (0: unknown) has group `gid` among its supplementary groups. */
export function hasSupplementaryGroup(pid: number, gid: number): boolean {
  if (pid <= 0) return false
  let status: string
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return false
  }
  const line = /^Groups:(.*)$/m.exec(status)
  return line !== null && line[1]!.trim().split(/\s+/).includes(String(gid))
}
