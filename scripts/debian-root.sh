#!/usr/bin/env bash
# A Debian bookworm minbase root for the package-manager test (test/programs/apt.test.ts) and
# the apt-install benchmark: built once with mmdebstrap, with apt's lists kept and the .debs of
# PACKAGES (and their dependencies) already in its /var/cache/apt/archives, so that
# `apt-get install --no-download PACKAGES` works in a chroot of it without a network. Prints
# the root's path.
#   scripts/debian-root.sh              build if absent, print the path
#   scripts/debian-root.sh --packages   print PACKAGES
#   scripts/debian-root.sh --path       print the path it would have, build nothing
# Cached in $LAYERFS_TEST_CACHE (default /var/cache/layerfs-test), named by a digest of what
# builds it (this script less its comments, mmdebstrap's version, the architecture), so that a
# change to the recipe builds a new one (older ones are left, another checkout may use them:
# remove them by hand). A build runs under a temp name, under a lock, and is renamed into place
# only when complete: an interrupted build never looks done, and the next build removes its
# remains (unmounting whatever mmdebstrap left mounted there).
set -euo pipefail

# What the test installs and purges: maintainer scripts (python3's byte-compiling, nano's
# update-alternatives, ca-certificates' debconf questions and its symlink farm in
# /etc/ssl/certs) and triggers (libc-bin's ldconfig, ca-certificates' own).
PACKAGES="make sqlite3 python3-minimal nano"
SUITE=bookworm

cache=${LAYERFS_TEST_CACHE:-/var/cache/layerfs-test}
self=${BASH_SOURCE[0]}
key() {
  { grep -v '^[[:space:]]*#' "$self"; mmdebstrap --version 2>/dev/null || echo none; dpkg --print-architecture; } | sha256sum | cut -c1-12
}
name="debian-$SUITE-minbase-$(key)"
root="$cache/$name"

case "${1:-}" in
  --packages) echo "$PACKAGES"; exit 0 ;;
  --path) echo "$root"; exit 0 ;;
  '') ;;
  *) echo "usage: $0 [--packages|--path]" >&2; exit 2 ;;
esac

[ -d "$root" ] && { echo "$root"; exit 0; }

say() { echo "debian-root: $*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root (mmdebstrap --mode=root, chroot)"; exit 1; }
command -v mmdebstrap >/dev/null || { say "needs mmdebstrap (scripts/setup.sh installs it)"; exit 1; }

# Mount points at or under $1, deepest (latest) first.
mountsUnder() {
  awk -v d="$1" '{ m = $2; gsub(/\\040/, " ", m); if (m == d || index(m, d "/") == 1) print m }' /proc/mounts | tac
}
# Removes a build directory: what is mounted under it first (lazily), then the files, never
# crossing into another filesystem.
removeBuild() {
  local m
  while read -r m; do [ -n "$m" ] && umount -l "$m"; done < <(mountsUnder "$1")
  if [ -n "$(mountsUnder "$1")" ]; then say "still mounted under $1; not removing it"; return 1; fi
  rm -rf --one-file-system "$1"
}

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -w 1800 9 || { say "timed out waiting for another build ($cache/.lock)"; exit 1; }
# Built meanwhile by another process?
[ -d "$root" ] && { echo "$root"; exit 0; }
# Remains of builds that were interrupted (we hold the lock: nobody else is building).
for d in "$cache"/.build-*; do [ -e "$d" ] && removeBuild "$d"; done

tmp="$cache/.build-$name-$$"
trap 'removeBuild "$tmp" || true' EXIT
say "building $root (mmdebstrap $SUITE minbase, then the .debs of: $PACKAGES); takes about a minute"
start=$SECONDS
# The host's apt sources are the mirror. cleanup/apt is skipped so that apt's lists stay (an
# install without a network needs them); the hooks empty the archive of the bootstrap's own
# .debs and download PACKAGES' into it, Recommends included (as the chroot's own apt will want
# them once mmdebstrap's 00mmdebstrap, present during hooks, is gone).
inChroot='chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C DEBIAN_FRONTEND=noninteractive'
mmdebstrap --quiet --mode=root --variant=minbase --skip=cleanup/apt \
  --customize-hook="$inChroot apt-get clean" \
  --customize-hook="$inChroot apt-get install --download-only -y -qq -o APT::Install-Recommends=true $PACKAGES" \
  "$SUITE" "$tmp" >&2
if [ -n "$(mountsUnder "$tmp")" ]; then say "mmdebstrap left mounts under $tmp"; exit 1; fi
ls "$tmp"/var/cache/apt/archives/*.deb >/dev/null
mv -T "$tmp" "$root"
trap - EXIT
say "built in $((SECONDS - start)) s: $(du -sh "$root" | cut -f1)"
echo "$root"
