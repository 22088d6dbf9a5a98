// The -o string: kernel overlayfs syntax, mount(8)'s extras, and what is refused.
import t from 'tap'
import { formatMountOptions, parseMountOptions } from '../src/options.js'

t.test('lowerdir: colon-separated, leftmost on top, \\: escapes a colon', async t => {
  const o = parseMountOptions(['lowerdir=/a:/b\\:c:rel/d,upperdir=u,workdir=/w/./x/../y'], '/cwd')
  t.same(o.lowerdirs, ['/a', '/b:c', '/cwd/rel/d'])
  t.equal(o.upperdir, '/cwd/u')
  t.equal(o.workdir, '/w/y')
  t.equal(o.readOnly, false)
})

t.test('\\, escapes a comma; a later value wins; several -o are one list', async t => {
  const o = parseMountOptions(['lowerdir=/x\\,y', 'lowerdir=/z,ro'])
  t.same(o.lowerdirs, ['/z'])
  t.equal(o.readOnly, true)
  t.same(parseMountOptions(['lowerdir=/x\\,y']).lowerdirs, ['/x,y'])
})

t.test("mount(8) and fstab options are accepted; the kernel's fixed ones only as we run", async t => {
  const o = parseMountOptions(['rw,nosuid,nodev,noatime,defaults,x-systemd.automount,lowerdir=/l,redirect_dir=on,index=off,metacopy=off'])
  t.same(o.lowerdirs, ['/l'])
  t.equal(o.redirectDir, 'on')
  t.throws(() => parseMountOptions(['lowerdir=/l,index=on']), { code: 'ERR_LAYERFS_OPTION', message: /index=on/ })
  t.throws(() => parseMountOptions(['lowerdir=/l,verity=on']), /verity=on/)
  t.throws(() => parseMountOptions(['lowerdir=/l,redirect_dir=sideways']), /unknown option 'redirect_dir=sideways'/)
  // A flag given a value, or a valued option given none, is not what was meant.
  t.throws(() => parseMountOptions(['lowerdir=/l,rw=1']), /unknown option 'rw=1'/)
  t.throws(() => parseMountOptions(['lowerdir=/l,timeout']), /unknown option 'timeout'/)
})

t.test("redirect_dir: the kernel's four values; off is follow (REDIRECT_ALWAYS_FOLLOW); userxattr has none", async t => {
  t.equal(parseMountOptions(['lowerdir=/l']).redirectDir, undefined)
  t.equal(parseMountOptions(['lowerdir=/l,redirect_dir=follow']).redirectDir, 'follow')
  t.equal(parseMountOptions(['lowerdir=/l,redirect_dir=nofollow']).redirectDir, 'nofollow')
  t.equal(parseMountOptions(['lowerdir=/l,redirect_dir=off']).redirectDir, 'follow')
  t.equal(parseMountOptions(['lowerdir=/l,userxattr,redirect_dir=nofollow']).userxattr, true)
  t.throws(() => parseMountOptions(['lowerdir=/l,userxattr,redirect_dir=on']), /conflicting options: userxattr,redirect_dir=on/)
})

t.test("metacopy: on|off (default off); the kernel's conflicts, as ovl_fs_params_verify words them", async t => {
  t.equal(parseMountOptions(['lowerdir=/l']).metacopy, false)
  t.equal(parseMountOptions(['lowerdir=/l,metacopy=on']).metacopy, true)
  t.equal(parseMountOptions(['lowerdir=/l,metacopy=on,metacopy=off']).metacopy, false)
  t.equal(parseMountOptions(['lowerdir=/l,upperdir=/u,workdir=/w,metacopy=on,redirect_dir=on']).metacopy, true)
  t.throws(() => parseMountOptions(['lowerdir=/l,metacopy=maybe']), /unknown option 'metacopy=maybe'/)
  t.throws(() => parseMountOptions(['lowerdir=/l,metacopy']), /unknown option 'metacopy'/)
  // The messages the kernel (6.18, REDIRECT_ALWAYS_FOLLOW: off is follow) logs for them.
  const upper = 'lowerdir=/l,upperdir=/u,workdir=/w,'
  t.throws(() => parseMountOptions([upper + 'metacopy=on,redirect_dir=off']), { code: 'ERR_LAYERFS_OPTION', message: 'conflicting options: metacopy=on,redirect_dir=follow' })
  t.throws(() => parseMountOptions([upper + 'redirect_dir=follow,metacopy=on']), /conflicting options: metacopy=on,redirect_dir=follow/)
  t.throws(() => parseMountOptions([upper + 'metacopy=on,redirect_dir=nofollow']), /conflicting options: metacopy=on,redirect_dir=nofollow/)
  t.throws(() => parseMountOptions([upper + 'userxattr,redirect_dir=nofollow,metacopy=on']), /conflicting options: metacopy=on,redirect_dir=nofollow/)
  t.throws(() => parseMountOptions([upper + 'metacopy=on,userxattr']), /conflicting options: userxattr,metacopy=on/)
  // Without an upper layer follow is on (nothing is renamed); nofollow still conflicts.
  t.equal(parseMountOptions(['lowerdir=/l:/m,metacopy=on,redirect_dir=follow']).metacopy, true)
  t.throws(() => parseMountOptions(['lowerdir=/l:/m,metacopy=on,redirect_dir=nofollow']), /conflicting options: metacopy=on,redirect_dir=nofollow/)
  t.equal(parseMountOptions([upper + 'metacopy=off,redirect_dir=nofollow']).metacopy, false)
  t.same(parseMountOptions([formatMountOptions(parseMountOptions([upper + 'metacopy=on']))]).metacopy, true)
})

t.test("fuse-overlayfs's options, as containers/storage passes them", async t => {
  // podman: `mount_program -o lowerdir=...,upperdir=...,workdir=...,,volatile,uidmapping=...`
  const o = parseMountOptions(['lowerdir=/l1:/l2,upperdir=/u,workdir=/w,,volatile,uidmapping=0:1000:1:1:100000:65536,gidmapping=0:1000:1:1:100000:65536'])
  t.equal(o.volatile, true)
  t.same(o.ids.uidmap, [{ layer: 0, mount: 1000, count: 1 }, { layer: 1, mount: 100000, count: 65536 }])
  t.same(o.ids.gidmap, o.ids.uidmap)
  const q = parseMountOptions(['lowerdir=/l,squash_to_uid=7,squash_to_gid=8,squash_to_root,static_nlink,noacl,ino32_t,fsync=0,noxattrs=1,xattr_permissions=0,timeout=1000000,threaded=1,fast_ino=1,writeback=0,context="system_u:object_r:container_file_t:s0",userxattr'])
  t.same(q.ids, { squashUid: 7, squashGid: 8, squashToRoot: true })
  t.same([q.staticNlink, q.ino32, q.noFsync, q.noXattrs, q.userxattr], [true, true, true, true, true])
  // containers/storage 1.43 (podman 4.3, buildah 1.28) writes a colon before the first triple
  // (optsAppendMappings tests its buffer's length after writing the key); fuse-overlayfs skips it.
  const lead = parseMountOptions(['lowerdir=/l,uidmapping=:0:1000:60000,gidmapping=:0:1000:60000'])
  t.same([lead.ids.uidmap, lead.ids.gidmap], [[{ layer: 0, mount: 1000, count: 60000 }], [{ layer: 0, mount: 1000, count: 60000 }]])
  t.throws(() => parseMountOptions(['lowerdir=/l,uidmapping=0:1000']), /LAYER:MOUNT:COUNT triples/)
  t.throws(() => parseMountOptions(['lowerdir=/l,squash_to_uid=x']), /needs a number/)
  t.throws(() => parseMountOptions(['lowerdir=/l,xattr_permissions=2']), /xattr_permissions=2' is not supported/)
  t.throws(() => parseMountOptions(['lowerdir=/l,plugins=/usr/lib/stargz.so']), /unknown option 'plugins=/)
  t.throws(() => parseMountOptions(['lowerdir=/l,volatile']), /'volatile' needs 'upperdir'/)
  // SELinux hosts: containers/storage appends the container's label, two categories with a
  // comma between them, in double quotes (label.FormatMountLabel).
  const label = parseMountOptions(['lowerdir=/l,upperdir=/u,workdir=/w,context="system_u:object_r:container_file_t:s0:c123,c456",volatile'])
  t.same([label.lowerdirs, label.upperdir, label.volatile], [['/l'], '/u', true])
})

t.test("values the kernel refuses are refused: xino=, uuid=; ro and rw, the last wins", async t => {
  for (const v of ['on', 'off', 'auto']) t.doesNotThrow(() => parseMountOptions([`lowerdir=/l,xino=${v}`]), `xino=${v}`)
  for (const v of ['on', 'off', 'null', 'auto']) t.doesNotThrow(() => parseMountOptions([`lowerdir=/l,uuid=${v}`]), `uuid=${v}`)
  t.throws(() => parseMountOptions(['lowerdir=/l,xino=bogus']), /'xino=bogus' has no such value/)
  t.throws(() => parseMountOptions(['lowerdir=/l,uuid=bogus']), /'uuid=bogus' has no such value/)
  t.equal(parseMountOptions(['lowerdir=/l,upperdir=/u,workdir=/w,ro,rw']).readOnly, false, 'ro,rw: rw')
  t.equal(parseMountOptions(['lowerdir=/l,upperdir=/u,workdir=/w,rw,ro']).readOnly, true, 'rw,ro: ro')
})

t.test('lowerdir+= appends layers as the kernel: not after lowerdir=, taken as given; fsname= is the source', async t => {
  const o = parseMountOptions(['lowerdir+=/a,lowerdir+=/b,lowerdir+=c,fsname=/dev/thing'], '/cwd')
  t.same(o.lowerdirs, ['/a', '/b', '/cwd/c'])
  t.equal(o.source, '/dev/thing')
  t.same(parseMountOptions(['lowerdir+=/x']).lowerdirs, ['/x'])
  // The kernel: "lowerdir+ and datadir+ cannot follow lowerdir"; a later lowerdir= replaces them.
  t.throws(() => parseMountOptions(['lowerdir=/a,lowerdir+=/b']), /'lowerdir\+' cannot follow 'lowerdir'/)
  t.same(parseMountOptions(['lowerdir+=/a,lowerdir=/b']).lowerdirs, ['/b'])
  // One directory each: a ':' or a backslash is part of the name.
  t.same(parseMountOptions(['lowerdir+=/a:b,lowerdir+=/c\\d']).lowerdirs, ['/a:b', '/c\\d'])
  t.throws(() => parseMountOptions(['lowerdir=/a,fsname=has space']), /may not hold blanks/)
})

t.test('refused: missing or empty parts, unknown options', async t => {
  t.throws(() => parseMountOptions([]), /missing option 'lowerdir'/)
  t.throws(() => parseMountOptions(['lowerdir=']), /needs a directory/)
  t.throws(() => parseMountOptions(['lowerdir=/a::/b']), /empty directory/)
  t.throws(() => parseMountOptions(['lowerdir=/a,upperdir=/u']), /'upperdir' needs 'workdir'/)
  t.throws(() => parseMountOptions(['lowerdir=/a,workdir=/w']), /'workdir' needs 'upperdir'/)
  t.throws(() => parseMountOptions(['lowerdir=/a,frobnicate']), /unknown option 'frobnicate'/)
})

t.test('formatMountOptions gives back what it was given, escapes and all', async t => {
  const o = parseMountOptions(['lowerdir=/a\\:b:/c\\,d,upperdir=/u\\\\v,workdir=/w,ro'])
  t.same(parseMountOptions([formatMountOptions(o)]), o)
  const all = parseMountOptions(['lowerdir=/a,upperdir=/u,workdir=/w,volatile,fsync=0,userxattr,redirect_dir=nofollow,static_nlink,noxattrs=1,ino32_t,uidmapping=0:10:5,gidmapping=1:20:5,squash_to_root,squash_to_uid=3,squash_to_gid=4,fsname=src,nosuid,nodev,debug,remount'])
  t.same(parseMountOptions([formatMountOptions(all)]), all)
})
