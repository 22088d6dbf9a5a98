#!/usr/bin/env bash
# Proves that each fix in fuse-native.patch is covered by test/native/fuse-native-patch.test.ts:
# for each variant below, a scratch copy of the repo gets a fuse-native with exactly that fix
# reverted (a sed on the patched C, or on binding.ts), is rebuilt, and runs the mount test,
# which must FAIL. Prints the failing assertions per variant. Slow (~15 s a variant); manual use:
#   bash scripts/fuse-native/revert-check.sh [VARIANT...]     (after scripts/build-native.sh)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=${REVERT_CHECK_DIR:-$(mktemp -d /tmp/revert-check-XXXXXX)}
nodedir=$(npm config get nodedir)

declare -A C_SED=(
  [omitflag]='s/ops.flag_utime_omit_ok = 1;/ops.flag_utime_omit_ok = 0;/'
  [atime-twice]='s/l->mtime.tv_sec, &(argv\[5\])/l->atime.tv_sec, \&(argv[5])/; s/l->mtime.tv_nsec, &(argv\[6\])/l->atime.tv_nsec, \&(argv[6])/'
  [ms-times]='s|ts->tv_nsec = nsec < 1000000000 ? nsec : 999999999;|ts->tv_nsec = (nsec / 1000000) * 1000000;|'
  [ino32]='s|stat->st_ino = uint32s_to_uint64(&ints);|stat->st_ino = (uint32_t) uint32s_to_uint64(\&ints);|'
  [statfs32]='s|statvfs->f_blocks = uint32s_to_uint64(&ints);|statvfs->f_blocks = (uint32_t) uint32s_to_uint64(\&ints);|; s|statvfs->f_files = uint32s_to_uint64(&ints);|statvfs->f_files = (uint32_t) uint32s_to_uint64(\&ints);|'
  [xattr]='/if (res > 0 \&\& l->size > 0 \&\& (size_t) res > l->size) res = -ERANGE;/d'
  [deadmount]='/    fuse_unmount(mnt, NULL);/d'
  [nullpath]='s/ops.flag_nullpath_ok = 1;/ops.flag_nullpath_ok = 0;/'
  [caller]='s/fuse_native_capture_caller(l);//'
  [names]='s/if (valid_utf8(s, len)) {/if (1) {/; s/if (!has_replacement_char(out, len)) return 0;/return 0;/'
)
declare -A TS_SED=(
  [xattr]='/if (value.length > valueBuf.length) return signal(FuseErrno.ERANGE, valueBuf.buffer)/d; /if (list.length > listBuf.length) return signal(FuseErrno.ERANGE, listBuf.buffer)/d'
)
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(omitflag atime-twice ms-times ino32 statfs32 xattr deadmount nullpath caller names)

status=0
for name in "${variants[@]}"; do
  [ -n "${C_SED[$name]:-}" ] || { echo "unknown variant $name" >&2; exit 2; }
  v="$work/$name"
  rm -rf "$v"; mkdir -p "$v/node_modules" "$v/src/layers/native"
  cp -r "$root/src" "$root/test" "$root/package.json" "$root/tsconfig.json" "$v/"
  rm -rf "$v/src/layers/native/build"; ln -s "$root/src/layers/native/build" "$v/src/layers/native/build"
  for e in "$root"/node_modules/* "$root"/node_modules/.bin; do
    [ "$(basename "$e")" = fuse-native ] || ln -sfn "$e" "$v/node_modules/$(basename "$e")"
  done
  cp -r "$root/node_modules/fuse-native" "$v/node_modules/fuse-native"
  rm -rf "$v/node_modules/fuse-native/build"
  before=$(md5sum < "$v/node_modules/fuse-native/fuse-native.c")
  sed -i "${C_SED[$name]}" "$v/node_modules/fuse-native/fuse-native.c"
  [ "$before" != "$(md5sum < "$v/node_modules/fuse-native/fuse-native.c")" ] || { echo "$name: sed changed nothing (patch moved?)" >&2; status=1; continue; }
  [ -z "${TS_SED[$name]:-}" ] || sed -i "${TS_SED[$name]}" "$v/src/fuse/binding.ts"
  (cd "$v/node_modules/fuse-native" && "$root/node_modules/.bin/node-gyp" rebuild --nodedir="$nodedir" --loglevel=error > /dev/null)
  (cd "$v" && timeout 300 node_modules/.bin/tap test/native/fuse-native-patch.test.ts > "$v.log" 2>&1) && rc=0 || rc=$?
  if [ $rc -eq 0 ]; then
    echo "$name: the test PASSED with the fix reverted: not covered"; status=1
  else
    echo "$name: fails as it should:"; grep -E "^ +not ok" "$v.log" | sed 's/ # time=.*//; s/^ */    /' | cut -c1-120
  fi
done
[ -n "${REVERT_CHECK_DIR:-}" ] || rm -rf "$work"
exit $status
