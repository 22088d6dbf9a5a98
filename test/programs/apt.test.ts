// A package manager in a chroot of the mount: a Debian bookworm minbase root is the lower layer
// (scripts/debian-root.sh builds it once, with the .debs in its apt archive, so that no
// network is needed here); apt-get installs packages with maintainer scripts, alternatives and
// triggers, runs them, dpkg verifies, apt-get purges them and a package of the lower, and
// autoremoves; layerfs against kernel overlayfs, every output and the final merged tree and
// upper layer compared.
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { isWhiteout } from '../helpers/layers.js'
import { runOk } from '../helpers/run.js'
import { projectRoot } from '../helpers/scratch.js'
import { snapshotTree, type Snapshot } from '../helpers/tree.js'
import { twinMounts } from '../helpers/twin.js'

const script = join(projectRoot, 'scripts/debian-root.sh')
const root = (await runOk('bash', [script, '--path'])).stdout.trim()
const packages = (await runOk('bash', [script, '--packages'])).stdout.trim()
// Building the root (mmdebstrap and the downloads) takes about a minute, more on a slow mirror.
if (!existsSync(root)) {
  t.setTimeout(20 * 60_000)
  await runOk('bash', [script], { timeout: 15 * 60_000 })
}

// No /proc, /sys or /dev/pts in the chroot: apt and dpkg do not need them (Dpkg::Use-Pty=0
// spares apt's pty, which wants /dev/pts), and the root's own /dev has the nodes they use
// (/dev/null through the mount). A clean environment, so that nothing of the host's leaks in.
const CHROOT = 'chroot "$MNT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C TZ=UTC DEBIAN_FRONTEND=noninteractive'
const APT = `${CHROOT} apt-get -y -o Dpkg::Use-Pty=0`

/**
 * Content that legitimately differs between two runs on the same filesystem (kept in the
 * comparison as entries: type, mode, owner, links; only size and bytes left out): logs with
 * wall-clock times, and ldconfig's aux-cache, which keys every library by its device, inode
 * number and ctime.
 */
const VOLATILE = [
  /^var\/log\/(dpkg|alternatives)\.log$/,
  /^var\/log\/apt\/(history|term)\.log$/,
  /^var\/log\/apt\/eipp\.log\.xz$/,
  /^var\/cache\/ldconfig\/aux-cache$/,
  // apt's binary cache records each index file's mtime in seconds: /var/lib/dpkg/status's too,
  // which dpkg rewrites at the wall-clock time of each step.
  /^var\/cache\/apt\/pkgcache\.bin$/,
]

t.test('apt-get install, run, verify, purge in a chroot on a Debian root', async t => {
  const tw = await twinMounts(t, async d => {
    await runOk('cp', ['-a', '--', `${root}/.`, d.lowers[0]!], { timeout: 300_000 })
  })
  /** Runs a step on both sides: same results; the kernel's stdout has every line of `expect`. */
  const step = async (script: string, expect: RegExp[] = [], timeout = 120_000) => {
    const [, ov] = await tw.same(t, script, { code: 0, timeout })
    for (const e of expect) t.match(ov.stdout, e, `kernel output as expected: ${script}`)
  }
  const state = `${CHROOT} dpkg-query -W -f '\${Package} \${Version} \${db:Status-Abbrev}\\n' | sort`

  await step(state)
  await step(`${APT} install --no-download ${packages}`, [
    /^Setting up python3-minimal /m,
    /^update-alternatives: using \/bin\/nano to provide \/usr\/bin\/editor \(editor\) in auto mode$/m,
    /^\d+ added, 0 removed; done\.$/m,
    /^Processing triggers for libc-bin /m,
  ], 600_000)
  await step(`${CHROOT} sh -c 'python3 -c "import sqlite3, sys; print(sys.version_info[:2], sqlite3.sqlite_version)"; sqlite3 :memory: "select 6 * 7"; make --version | head -1; editor --version | head -1; readlink /etc/alternatives/editor'`,
    [/^\(3, 11\) 3\.\d+\.\d+\n42\nGNU Make 4\.3\n GNU nano, version 7\.2\n\/bin\/nano\n$/])
  await step(`${CHROOT} dpkg -V && ${CHROOT} dpkg --audit && ${state} && ${CHROOT} update-alternatives --query editor`, [/^Value: \/bin\/nano$/m])
  // dpkg gives each file it unpacks the mtime the .deb has: those times must come through the
  // mount. Every non-directory under usr/ (the lower's and the new), but the byte code that
  // python's postinst compiled at install time.
  const [lfUsr, ovUsr] = await tw.both(s => snapshotTree(join(s.mnt, 'usr'), { mtime: true, xattrs: 'none' }))
  const mtimes = (snap: Snapshot) => Object.fromEntries(Object.entries(snap)
    .filter(([rel, e]) => e.type !== 'dir' && !/(^|\/)__pycache__\//.test(rel)).map(([rel, e]) => [rel, e.mtime]))
  t.same(mtimes(lfUsr), mtimes(ovUsr), 'mtimes of the files under usr/ are the same')
  t.ok(BigInt(ovUsr['bin/make']!.mtime!) < BigInt(Date.now() - 86_400_000) * 1_000_000n, 'kernel: usr/bin/make has the .deb\'s mtime')
  // tzdata comes from the lower: its purge whites out lower files and removes merged
  // directories whose upper holds only whiteouts (usr/share/zoneinfo goes as one whiteout).
  await step(`${APT} purge ${packages} tzdata`, [/^Purging configuration files for nano /m, /^Purging configuration files for tzdata /m], 300_000)
  t.ok(isWhiteout(join(tw.overlay.upper!, 'usr/share/zoneinfo')), 'kernel: usr/share/zoneinfo is one whiteout in the upper')
  await step(`${APT} autoremove --purge`, [/^Purging configuration files for libpython3\.11-minimal/m], 300_000)
  await step(`${CHROOT} dpkg -V && ${CHROOT} dpkg --audit && ${state} && ls -A "$MNT/etc/alternatives" | sort`)

  await tw.sameTree(t, { ignoreContent: VOLATILE })
  await tw.sameUpper(t, { ignoreContent: VOLATILE })
  await tw.lowersUnchanged(t)
})
