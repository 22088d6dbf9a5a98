#!/usr/bin/env bash
# Image store and volume speed: scripts/bench/image.sh [FILES] [MIB]
# Builds a one-layer OCI image (FILES small files + one MIB MiB file, gzip'd), times
# `layerfs image import` of it and of the same image again (stored once: verification only),
# then mounts it as a container with a volume and times writing MIB MiB (dd, fsync'd) to the
# host dir directly, to the volume, and to the container's own layer. Everything it makes is
# under one temp dir, unmounted and removed at exit (mounts by path, daemons by pid).
set -euo pipefail
files=${1:-20000}
mib=${2:-256}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cli="node $here/../../dist/cli.js"
[ "$(id -u)" = 0 ] || { echo "image.sh: run as root (mounts)" >&2; exit 2; }
dir=$(mktemp -d /tmp/bench-image.XXXXXX)
cleanup() {
  trap - EXIT INT TERM
  for m in $(awk -v p="$dir" 'index($2, p "/") == 1 { print $2 }' /proc/mounts | sort -r); do
    $cli umount "$m" 2>/dev/null || fusermount -uz "$m" 2>/dev/null || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

mkdir -p "$dir/src/files" "$dir/oci/blobs/sha256" "$dir/root" "$dir/mnt" "$dir/host" "$dir/hostdirect"
for ((i = 0; i < files; i++)); do echo "file $i" > "$dir/src/files/f$i"; done
head -c $((mib * 1048576)) /dev/urandom > "$dir/src/big"
tar -cf "$dir/layer.tar" -C "$dir/src" .
diff_id=sha256:$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
gzip -1 -c "$dir/layer.tar" > "$dir/layer.tar.gz"
put() { local h; h=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" "$dir/oci/blobs/sha256/$h"; echo "$h $(stat -c %s "$1")"; }
read -r lh ls < <(put "$dir/layer.tar.gz")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}' "$diff_id" > "$dir/config.json"
read -r ch cs < <(put "$dir/config.json")
printf '{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' "$ch" "$cs" "$lh" "$ls" > "$dir/manifest.json"
read -r mh ms < <(put "$dir/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"1"}}]}' "$mh" "$ms" > "$dir/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$dir/oci/oci-layout"

echo "image: $files files + ${mib} MiB, layer tar $(du -h "$dir/layer.tar" | cut -f1), gzip'd $(du -h "$dir/layer.tar.gz" | cut -f1)"
sync
t0=$(now); $cli image import "$dir/oci" --root "$dir/root" >/dev/null; t1=$(now)
echo "image import (verify + extract): $(secs "$t0" "$t1") s"
t0=$(now); $cli image import "$dir/oci" --root "$dir/root" >/dev/null; t1=$(now)
echo "image import again (verify only, layer stored once): $(secs "$t0" "$t1") s"

$cli mount --image oci:1 --name bench --root "$dir/root" -o "volume=$dir/host:/vol" "$dir/mnt"
write() { local t0 t1; t0=$(now); dd if=/dev/zero of="$1" bs=1M count="$mib" conv=fsync status=none; t1=$(now)
  awk -v m="$mib" -v a="$t0" -v b="$t1" -v w="$2" 'BEGIN { printf "write %d MiB to %-22s %6.2f s  %7.1f MiB/s\n", m, w, b - a, m / (b - a) }'; }
write "$dir/hostdirect/out" "the host directly"
write "$dir/mnt/vol/out" "the volume"
write "$dir/mnt/out" "the container layer"
$cli ps -s --root "$dir/root"
$cli umount "$dir/mnt"
