// New objects belong to the calling process, as with kernel overlayfs: files, directories,
// symlinks, FIFOs made by an unprivileged user through the mount are that user's; in a
// setgid directory they take the directory's group; setuid bits asked for at creation stay.
import fs from 'node:fs'
import t from 'tap'
import { twinMounts } from '../helpers/twin.js'

t.test('objects made by uid 1000 belong to uid 1000', async t => {
  const tw = await twinMounts(t, ({ lowers }) => {
    fs.mkdirSync(`${lowers[0]}/pub`)
    fs.chmodSync(`${lowers[0]}/pub`, 0o1777)
    fs.mkdirSync(`${lowers[0]}/sgid`)
    fs.chownSync(`${lowers[0]}/sgid`, 0, 4321)
    fs.chmodSync(`${lowers[0]}/sgid`, 0o2777)
    fs.writeFileSync(`${lowers[0]}/rootfile`, 'root\n')
  })
  // The scratch dirs are 0700 (mkdtemp): let the user reach both mount points.
  for (const side of tw.sides) {
    for (let d = side.mnt; d.startsWith('/tmp/') && d !== '/tmp'; d = d.slice(0, d.lastIndexOf('/'))) {
      if (d !== side.mnt) fs.chmodSync(d, fs.statSync(d).mode | 0o011)
    }
  }
  const asUser = 'setpriv --reuid=1000 --regid=1000 --clear-groups --'
  await tw.same(t, `${asUser} sh -c '
    cd pub && umask 022 && touch f && mkdir d && ln -s f l && mkfifo p &&
    python3 -c "import os; os.close(os.open(\\"s\\", os.O_CREAT|os.O_WRONLY, 0o4755))" &&
    cd ../sgid && touch g && mkdir gd
  ' && stat -c '%n %u %g %A' pub/f pub/d pub/l pub/p pub/s sgid/g sgid/gd`, { code: 0 })
  await tw.same(t, `${asUser} sh -c 'echo x >> rootfile' ; echo "exit $?"; cat rootfile`)
  await tw.sameTree(t)
})
