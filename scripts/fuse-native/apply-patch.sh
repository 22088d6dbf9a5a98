#!/usr/bin/env bash
# Applies scripts/fuse-native/fuse-native.patch to node_modules/fuse-native (2.2.6): what the
# high-level binding (src/fuse/binding.ts, LAYERFS_BINDING=highlevel) needs of fuse-native.
# Our FUSE session is an addon of its own (src/fuse/native).
# Idempotent: exits 0 when the patch is already in place. A copy carrying an older revision of
# this patch is restored from the npm tarball and patched anew. Fails loudly (exit 1) when the
# package is missing, is another version, or the patch applies neither forward nor backward
# (a partly patched or hand-edited copy: run `npm ci` to get a pristine one).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
pkg="$root/node_modules/fuse-native"
patchfile="$root/scripts/fuse-native/fuse-native.patch"

die() { echo "apply-patch: $*" >&2; exit 1; }

[ -f "$pkg/package.json" ] || die "$pkg is missing: run npm ci first"
version=$(node -p "require(process.argv[1]).version" "$pkg/package.json")
[ "$version" = 2.2.6 ] || die "fuse-native is $version, the patch is for 2.2.6"

# --fuzz=0: every hunk must match exactly, forward or backward, or we refuse.
# (Patch rev 5 and before had the session's source beside it: gone.)
rm -f "$pkg/lowlevel.c"

if patch -d "$pkg" -p1 -R --dry-run --fuzz=0 -s -f < "$patchfile" > /dev/null 2>&1; then
  echo "apply-patch: fuse-native patch already applied"
  exit 0
fi
if ! out=$(patch -d "$pkg" -p1 -N --dry-run --fuzz=0 -f < "$patchfile" 2>&1); then
  # An older revision of our own patch (e.g. rev 2 when this is rev 3): put the two pristine
  # files back from the npm tarball (npm's cache, or the registry) and apply this one.
  if grep -q layerfs_patch_version "$pkg/fuse-native.c" 2> /dev/null; then
    echo "apply-patch: an older layerfs patch is applied; restoring pristine fuse-native 2.2.6 files"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack fuse-native@2.2.6 --silent > /dev/null && tar xzf fuse-native-2.2.6.tgz) ||
      die "could not fetch the fuse-native 2.2.6 tarball to undo the old patch (run npm ci)"
    cp "$tmp/package/fuse-native.c" "$tmp/package/index.js" "$pkg/"
    out=$(patch -d "$pkg" -p1 -N --dry-run --fuzz=0 -f < "$patchfile" 2>&1) || { echo "$out" >&2; die "the patch does not apply to the restored files"; }
  else
    echo "$out" >&2
    die "the patch does not apply to $pkg (partly patched or modified copy? run npm ci)"
  fi
fi
patch -d "$pkg" -p1 -N --fuzz=0 -s -f --no-backup-if-mismatch < "$patchfile"
echo "apply-patch: fuse-native patch applied"
