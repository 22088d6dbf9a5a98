#!/usr/bin/env bash
# For whoever changes the patch: edit node_modules/fuse-native/{fuse-native.c,index.js}, then
# run this to regenerate fuse-native.patch against the pristine 2.2.6 tarball (npm pack).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack fuse-native@2.2.6 --silent > /dev/null && tar xzf fuse-native-2.2.6.tgz)
out="$root/scripts/fuse-native/fuse-native.patch"
: > "$out"
for f in fuse-native.c index.js; do
  # diff exits 1 when the files differ; that is the point here
  diff -u --label "a/$f" --label "b/$f" "$tmp/package/$f" "$root/node_modules/fuse-native/$f" >> "$out" || [ $? -eq 1 ]
done
echo "wrote $out ($(wc -l < "$out") lines)"
