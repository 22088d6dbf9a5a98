#!/usr/bin/env bash
# Layer tarball speed: `layerfs layer import` / `layer export` / `diff` against GNU tar on the
# same data (a tree of FILES small files plus BIG_MIB of large files), each timed once after a
# warm-up run. Usage: scripts/bench/layers.sh [FILES] [BIG_MIB]   (defaults 20000 and 256)
# Prints a markdown table. Works in its own mktemp dir, removed at the end.
set -euo pipefail
FILES=${1:-20000}
BIG_MIB=${2:-256}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CLI="node $REPO/dist/cli.js"
W=$(mktemp -d /tmp/layers-bench-XXXXXX)
trap 'rm -rf "$W"' EXIT

mkdir -p "$W/src"
python3 - "$W/src" "$FILES" "$BIG_MIB" <<'PY'
import os, sys
root, files, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(files):
    d = os.path.join(root, 'd%03d' % (i % 200), 's%02d' % (i % 7))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'f%06d' % i), 'wb') as f:
        f.write(os.urandom(64 + (i * 37) % 4000))
chunk = os.urandom(1 << 20)
for j in range(4):
    with open(os.path.join(root, 'big%d' % j), 'wb') as f:
        for _ in range(big // 4):
            f.write(chunk)
PY
tar --format=posix --numeric-owner -C "$W/src" -cf "$W/layer.tar" .
gzip -1 -c "$W/layer.tar" > "$W/layer.tar.gz"

now() { date +%s.%N; }
timeit() { # label command...
  local t0 t1
  rm -rf "$W/out"
  "${@:2}" >/dev/null  # warm-up
  rm -rf "$W/out" "$W/out.tar"
  t0=$(now); "${@:2}" >/dev/null; t1=$(now)
  printf '| %s | %.2f |\n' "$1" "$(echo "$t1 - $t0" | bc)"
}
mkgnu() { mkdir -p "$W/out" && tar -xpf "$1" -C "$W/out"; }
mkdir -p "$W/empty"

echo "layer: $FILES files + $BIG_MIB MiB in 4 files; tar $(du -m "$W/layer.tar" | cut -f1) MiB, gz $(du -m "$W/layer.tar.gz" | cut -f1) MiB; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
echo
echo '| what | seconds |'
echo '| --- | --- |'
timeit 'GNU tar -x (tar)' mkgnu "$W/layer.tar"
timeit 'layerfs layer import (tar)' $CLI layer import "$W/layer.tar" "$W/out"
timeit 'GNU tar -x (tar.gz)' mkgnu "$W/layer.tar.gz"
timeit 'layerfs layer import (tar.gz)' $CLI layer import "$W/layer.tar.gz" "$W/out"
timeit 'GNU tar -c --sort=name' tar --format=posix --sort=name -C "$W/src" -cf "$W/out.tar" .
timeit 'layerfs layer export' $CLI layer export "$W/src" "$W/out.tar"
timeit 'layerfs diff (all added)' $CLI diff "$W/src" --lower "$W/empty"
