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
  t.throws(() => parseMountOptions(['lowerdir=/l,redirect_dir=off']), { code: 'ERR_LAYERFS_OPTION', message: /redirect_dir=off/ })
  t.throws(() => parseMountOptions(['lowerdir=/l,index=on']), /index=on/)
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
})
