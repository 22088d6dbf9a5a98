// The -o options layerfs hands to fuse_mount: checked before anything is mounted, so a bad one
// is one clear error (ERR_FUSE_OPTION) rather than libfuse's complaint from a half-made mount.
import t from 'tap'
import { validateFuseOptions } from '../../src/fuse/fuse-options.js'

t.test('-o options', async t => {
  const good = ['use_ino', 'big_writes', 'max_write=131072', 'kernel_cache', 'auto_cache', 'entry_timeout=1.5',
    'attr_timeout=0', 'negative_timeout=60', 'ac_attr_timeout=2', 'default_permissions', 'allow_other',
    'auto_unmount', 'fsname=layerfs', 'subtype=layerfs', 'hard_remove', 'debug', 'ro', 'max_read=4096',
    'noforget', 'nonempty', 'readdir_ino', 'nodev', 'nosuid', 'noatime']
  t.doesNotThrow(() => validateFuseOptions(good))
  for (const bad of ['bogus', 'use_ino=1', 'max_write=', 'max_write=x', 'attr_timeout=-1', 'fsname=a,use_ino',
    'fsname=', 'subtype=a b', 'kernel_cache ', ''])
    t.throws(() => validateFuseOptions([bad]), { code: 'ERR_FUSE_OPTION' }, `rejects '${bad}'`)
  t.throws(() => validateFuseOptions(Array(200).fill('kernel_cache')), { code: 'ERR_FUSE_OPTION' }, 'too long')
})
