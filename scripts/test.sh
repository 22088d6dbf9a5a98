#!/usr/bin/env bash
# Runs the test suite (tap). Tests mount FUSE and kernel overlayfs under /tmp; where /tmp is
# itself an overlayfs (a container's root), kernel overlayfs cannot use it as an upper layer,
# so a tmpfs is mounted over /tmp for the run (a checkout under /tmp stays where it is:
# scripts/cover-tmp.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
mounted_tmp=
if [ "$(stat -f -c %T /tmp)" = overlayfs ]; then
  # shellcheck source=scripts/cover-tmp.sh
  . scripts/cover-tmp.sh
  cover_tmp "$root" -t tmpfs -o size=4g,mode=1777 layerfs-test-tmp
  mounted_tmp=1
  cd "$root"
fi
cleanup() {
  if [ -n "$mounted_tmp" ]; then umount -l /tmp || true; fi
}
trap cleanup EXIT
npx tap "$@"
