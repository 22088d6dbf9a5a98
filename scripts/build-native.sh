#!/usr/bin/env bash
# Builds layerfs's native parts; run by `make setup` after `npm ci` (as root, offline except the
# npm and Debian registries). Idempotent and fast when everything is up to date:
#   1. build our host addon src/layers/native/build/Release/host.node,
#   2. build our FUSE session addon src/fuse/native/build/Release/lowlevel.node (on libfuse 2.9:
#      headers and link library from fuse-native's fuse-shared-library, native-notes/fuse-native.md),
#   3. check that both load and are what the TS code expects.
# fuse-native itself is neither patched nor rebuilt any more (its path-based binding is gone).
# Needs: python3, make, a C compiler, libfuse2 (runtime) and the local Node headers
# (`npm config get nodedir`; node-gyp would otherwise try to download them).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
host_dir=src/layers/native
session_dir=src/fuse/native

say() { echo "build-native: $*"; }
die() { echo "build-native: $*" >&2; exit 1; }

nodedir=$(npm config get nodedir 2>/dev/null || true)
if [ -z "$nodedir" ] || [ "$nodedir" = undefined ] || [ "$nodedir" = null ]; then
  nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
fi
[ -f "$nodedir/include/node/node_api.h" ] || die "no Node headers under $nodedir/include/node (set npm's nodedir)"

gyp=("$root/node_modules/.bin/node-gyp")
if [ ! -x "${gyp[0]}" ]; then
  npm_gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  [ -f "$npm_gyp" ] || die "node-gyp not found (neither in node_modules nor bundled with npm)"
  gyp=(node "$npm_gyp")
fi
for tool in python3 make; do
  command -v "$tool" > /dev/null || die "$tool is missing (node-gyp needs python3, make and a C compiler)"
done
command -v "${CC:-cc}" > /dev/null || die "no C compiler (${CC:-cc}): install gcc"
# gyp links with $(CXX) (g++) by default; both addons are plain C, so cc links them as well.
command -v "${CXX:-g++}" > /dev/null || export LINK="${CC:-cc}"

gyp_build() { (cd "$1" && "${gyp[@]}" rebuild --nodedir="$nodedir" --loglevel=warn); }

# Newer-than test: true when $1 is missing or older than any of the rest.
stale() {
  local out=$1; shift
  [ -f "$out" ] || return 0
  local src
  for src in "$@"; do [ "$src" -nt "$out" ] && return 0; done
  return 1
}

[ -d node_modules/fuse-shared-library ] || die "node_modules/fuse-shared-library (fuse-native's libfuse) missing: run npm ci first"

# 1. host addon
if stale "$host_dir/build/Release/host.node" "$host_dir"/*.c "$host_dir"/*.h "$host_dir/binding.gyp"; then
  say "building host addon"
  gyp_build "$host_dir"
else
  say "host addon is up to date"
fi

# 2. our FUSE session addon
if stale "$session_dir/build/Release/lowlevel.node" "$session_dir"/*.c "$session_dir"/*.h "$session_dir/binding.gyp" "$host_dir"/names.[ch]; then
  say "building the FUSE session addon"
  gyp_build "$session_dir"
else
  say "FUSE session addon is up to date"
fi

# 3. verify: our addons load and have their calls.
node -e '
  const host = require(process.argv[1])
  for (const f of ["mknod", "lutimens", "futimens", "lgetxattr", "llistxattr", "lsetxattr", "lremovexattr", "lseek", "openBeneath", "statAt", "renameAt", "mkdirAt", "chmodAt"])
    if (typeof host[f] !== "function") throw new Error("host addon lacks " + f)
' "$root/$host_dir/build/Release/host.node" || die "host addon check failed"
want_ll=$(sed -n 's/^export const LOWLEVEL_VERSION = \([0-9]*\).*/\1/p' src/fuse/native-module.ts)
node -e '
  const ll = require(process.argv[1])
  if (ll.layerfs_lowlevel_version !== Number(process.argv[2]))
    throw new Error("the session addon is version " + ll.layerfs_lowlevel_version + ", src/fuse/native-module.ts wants " + process.argv[2])
  for (const f of ["ll_mount", "ll_reply_open", "ll_backing_open", "ll_reply_statx"])
    if (typeof ll[f] !== "function") throw new Error("the session addon lacks " + f)
' "$root/$session_dir/build/Release/lowlevel.node" "$want_ll" || die "FUSE session addon check failed"
say "ok: the FUSE session addon (version $want_ll) and the host addon load"
