#!/usr/bin/env bash
# A two-minute tour: builds two sample lower layers, mounts them with an upper layer, shows
# the merged view, a copy-up and a whiteout, then unmounts and removes everything it made.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
layerfs="node $root/dist/cli.js"
demo=$(mktemp -d /tmp/layerfs-demo.XXXXXX)
cleanup() {
  if grep -q " $demo/merged " /proc/mounts; then $layerfs umount "$demo/merged" || fusermount -uz "$demo/merged"; fi
  rm -rf "$demo"
}
trap cleanup EXIT
cd "$demo"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; eval "$@"; }

mkdir -p base/etc base/bin app/etc app/srv upper work merged
echo 'NAME="Demo Linux"' > base/etc/os-release
echo 'motd: welcome to the base layer' > base/etc/motd
printf '#!/bin/sh\necho hello from base\n' > base/bin/hello && chmod 755 base/bin/hello
echo 'app config v1' > app/etc/app.conf
echo 'motd: the app layer overrides the base' > app/etc/motd
echo 'index page' > app/srv/index.html

echo "Two lower layers (app on top of base), an empty upper layer:"
step "$layerfs mount -o lowerdir=app:base,upperdir=upper,workdir=work merged"
step "ls -l merged merged/etc"
step "cat merged/etc/motd merged/etc/os-release"
step "sh merged/bin/hello"
echo
echo "Writing a lower file copies it up; the lower layer keeps its bytes:"
step "echo 'app config v2' >> merged/etc/app.conf"
step "cat merged/etc/app.conf"
step "cat app/etc/app.conf"
echo
echo "Deleting a lower file leaves a whiteout (a 0/0 character device) in the upper layer:"
step "rm merged/srv/index.html"
step "ls -l merged/srv"
step "ls -lR upper"
step "$layerfs umount merged"
echo
echo "Unmounted; the demo directory $demo is removed."
