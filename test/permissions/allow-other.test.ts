// allow_other + default_permissions (the daemon runs as root): an unprivileged user (uid 1000,
// by setpriv, no account needed) sees what the modes allow and nothing more, cannot write into
// the upper through a lower file it may not write (and no copy-up happens), cannot reach the
// workdir; setuid/setgid bits after a copy-up and after writes by owners and non-owners are
// what the kernel leaves. Each step runs on layerfs and kernel overlayfs as the same uid.
import fs from 'node:fs'
import t from 'tap'
import { twinMounts, type Twin } from '../helpers/twin.js'

const asUser = 'setpriv --reuid=1000 --regid=1000 --clear-groups --'

/** The scratch dirs are 0700 (mkdtemp): let uid 1000 reach both mount points and workdirs. */
function openPathsForUser(tw: Twin): void {
  for (const side of tw.sides) {
    for (const start of [side.mnt, side.work!]) {
      for (let d = start; d.startsWith('/tmp/') && d !== '/tmp'; d = d.slice(0, d.lastIndexOf('/'))) {
        if (d !== start) fs.chmodSync(d, fs.statSync(d).mode | 0o011)
      }
    }
  }
}

// Each line: the step, then its exit status; stderr is dropped (it names paths).
const steps = (lines: string[]): string => lines.map(l => `${asUser} sh -c '${l}' >/dev/null 2>&1; echo "${l.replace(/["$*]/g, '_')}: $?"`).join('\n')

t.test('uid 1000 sees and changes what the modes allow, nothing more', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    const l = lowers[0]!
    const file = (p: string, mode: number, uid = 0, data = `${p}\n`): void => {
      fs.writeFileSync(`${l}/${p}`, data)
      fs.chownSync(`${l}/${p}`, uid, uid)
      fs.chmodSync(`${l}/${p}`, mode)
    }
    const dir = (p: string, mode: number, uid = 0): void => {
      fs.mkdirSync(`${l}/${p}`)
      fs.chownSync(`${l}/${p}`, uid, uid)
      fs.chmodSync(`${l}/${p}`, mode)
    }
    fs.chmodSync(l, 0o755)
    file('secret', 0o600)
    file('ro', 0o644)
    file('mine', 0o644, 1000)
    dir('closed', 0o700)
    file('closed/in', 0o644)
    dir('rodir', 0o755)
    file('rodir/f', 0o666)
    dir('pub', 0o1777)
    file('pub/rootfile', 0o666)
    dir('xonly', 0o711)
    file('xonly/f', 0o644)
    dir('mydir', 0o755, 1000)
    file('mydir/rootowned', 0o644)
  })
  openPathsForUser(tw)
  await tw.same(t, steps([
    'cat secret', 'cat ro', 'echo x >> ro', ': > ro', 'chmod 666 ro', 'chown 1000 ro', 'touch ro', 'touch -d @0 ro',
    'setfattr -n user.x -v 1 ro', 'getfattr -n user.x ro', 'ln ro ro-link', 'mv ro ro2', 'rm ro',
    'echo x >> mine', 'chmod 600 mine', 'touch -d @0 mine', 'setfattr -n user.x -v 1 mine',
    'ls closed', 'cat closed/in', 'stat closed/in', 'touch closed/new',
    'touch rodir/new', 'mkdir rodir/d', 'rm rodir/f', 'mv rodir/f rodir/g', 'echo x >> rodir/f',
    'echo x >> pub/rootfile', 'rm pub/rootfile', 'mv pub/rootfile pub/x', 'touch pub/new', 'rm pub/new',
    'ls xonly', 'cat xonly/f', 'touch xonly/new',
    'rm mydir/rootowned', 'touch mydir/new', 'mkdir mydir/d',
    'touch newtop', 'ls -A', 'ls -A "$WORK"', 'ls -A "$WORK/work"', 'cat "$WORK/work/"*',
  ]) + '\nstat -c "%n %a %u %g %s" ro mine pub/rootfile mydir mydir/new 2>&1; ls -A', { code: 0, envFor: s => ({ WORK: s.work! }) })
  // Nothing the user was refused reached the upper: same upper layers, no copy of ro or secret.
  const [up] = await tw.sameUpper(t)
  t.notOk(Object.keys(up).some(p => /^(ro|secret|closed)(\/|$)/.test(p)), `no copy-up of what uid 1000 may not write: ${Object.keys(up).join(' ')}`)
  await tw.sameTree(t)
  await tw.lowersUnchanged(t)
})

t.test('setuid and setgid bits after copy-up and writes, as the kernel leaves them', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    const l = lowers[0]!
    fs.chmodSync(l, 0o755)
    const files: [string, number, number, number][] = [
      ['root-appends-4755', 0o4755, 0, 0],
      ['user-appends-4777', 0o4777, 0, 0],
      ['user-appends-2777', 0o2777, 0, 0],
      ['user-appends-6777', 0o6777, 0, 0],
      ['owner-appends-6755', 0o6755, 1000, 1000],
      ['root-chowns-4755', 0o4755, 0, 0],
      ['root-touches-4755', 0o4755, 0, 0],
      ['root-chmods-4755', 0o4755, 0, 0],
      ['user-touches-4777', 0o4777, 0, 0],
      ['user-setfattr-4777', 0o4777, 0, 0],
      ['owner-chmods-4755', 0o4755, 1000, 1000],
    ]
    for (const [name, mode, uid, gid] of files) {
      fs.writeFileSync(`${l}/${name}`, '#!/bin/sh\n')
      fs.chownSync(`${l}/${name}`, uid, gid)
      fs.chmodSync(`${l}/${name}`, mode)
    }
  })
  openPathsForUser(tw)
  await tw.same(t, `
    echo x >> root-appends-4755
    ${asUser} sh -c 'echo x >> user-appends-4777; echo x >> user-appends-2777; echo x >> user-appends-6777'
    ${asUser} sh -c 'echo x >> owner-appends-6755; touch user-touches-4777; chmod 4755 owner-chmods-4755'
    ${asUser} setfattr -n user.a -v 1 user-setfattr-4777
    chown 0:0 root-chowns-4755
    touch root-touches-4755
    chmod 4755 root-chmods-4755
    stat -c '%n %a %u %g %s' *`, { code: 0 })
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})

t.test('S_ISGID without group-exec: a write or fallocate by a caller outside the group drops it, members keep it', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    const l = lowers[0]!
    fs.chmodSync(l, 0o755)
    const files: [string, number][] = [
      ['out-appends', 0], ['out-fallocates', 0], ['out-punches', 0], ['out-reads', 0],
      ['member-appends', 1000], ['supp-appends', 4242], ['supp-fallocates', 4242], ['root-appends', 0],
    ]
    for (const [name, gid] of files) {
      fs.writeFileSync(`${l}/${name}`, 'data\n')
      fs.chownSync(`${l}/${name}`, 0, gid)
      fs.chmodSync(`${l}/${name}`, 0o2666)
    }
  })
  openPathsForUser(tw)
  // The kernel drops S_ISGID for the first three (their group is 0), keeps it for a member by
  // its fsgid (1000) or a supplementary group (4242), for root, and for a read. The first stat
  // asks for the mode alone (statx with STATX_MODE), which a write does not make the kernel
  // refetch: the daemon must tell it the mode changed.
  await tw.same(t, `
    ${asUser} sh -c 'echo x >> out-appends; fallocate -l 8192 out-fallocates; fallocate -p -o 0 -l 2 out-punches; cat out-reads >/dev/null'
    ${asUser} sh -c 'echo x >> member-appends'
    setpriv --reuid=1000 --regid=1000 --groups=4242 -- sh -c 'echo x >> supp-appends; fallocate -l 8192 supp-fallocates'
    echo x >> root-appends
    stat -c '%n %a' *
    stat -c '%n %a %u %g %s' *`, { code: 0 })
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
