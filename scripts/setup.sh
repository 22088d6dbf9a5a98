#!/usr/bin/env bash
# Everything layerfs needs on a fresh Debian machine (as root): Debian packages, npm packages,
# our two native addons (the FUSE session, the host calls), the TypeScript build. Idempotent;
# quick when done.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
say() { echo "setup: $*"; }

# Debian packages: libfuse2 (our session addon links libfuse.so.2), fuse3 (fusermount), attr
# (getfattr/setfattr for tests and users), and what the tests run on the mount.
# test/engines runs podman and buildah on layerfs (runc: crun refuses hybrid cgroups; uidmap:
# rootless; busybox-static: the base image; catatonit: the rootless pause process, which
# reaps conmon: podman's own waits 20 s for every attached container where pid 1 reaps late).
# mmdebstrap: the Debian root that test/programs/apt.test.ts runs apt in (scripts/debian-root.sh).
# xfsprogs: mkfs.xfs, for the layers on xfs with reflinks (test/helpers/scratch-fs.ts,
# scripts/bench/run --storage xfs). libc6-dev and linux-libc-dev: the C headers the addons
# build with; linux/fuse.h has the FUSE protocol's layouts (src/fuse/native/protocol.h).
want=(fuse3 attr sqlite3 git tar make gcc g++ libc6-dev linux-libc-dev python3 fuse-overlayfs podman buildah runc catatonit uidmap busybox-static mmdebstrap xfsprogs)
if apt-cache show libfuse2t64 >/dev/null 2>&1 && ! apt-cache show libfuse2 >/dev/null 2>&1; then
  want+=(libfuse2t64)
else
  want+=(libfuse2)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -e /dev/fuse ] || { echo "setup: /dev/fuse is missing (in a container: --device /dev/fuse --cap-add SYS_ADMIN)" >&2; exit 1; }

# npm packages, exactly as locked.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

bash scripts/build-native.sh
say "tsc"
npx tsc -p .
chmod +x dist/cli.js
say "bundle"
node scripts/bundle.mjs
say "ready"
