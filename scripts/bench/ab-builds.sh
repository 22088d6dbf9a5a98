#!/bin/bash
# Two layerfs builds, interleaved on the same layer: the daemon's CPU and the wall time of a cold
# `find` of the whole tree, then (a fresh mount, caches dropped) a cold `git status` in its src/.
#   scripts/bench/ab-builds.sh OLD_LAUNCHER NEW_LAUNCHER LOWER [ROUNDS]
# OLD_LAUNCHER, NEW_LAUNCHER: bin/layerfs of two built checkouts (a git worktree of the old
# commit, `make setup` there); LOWER: a lower layer with a git work tree in src/ (the bench's
# data, scripts/bench/run --data DIR: DIR/lower). As root (drop_caches); mounts under a fresh
# directory in /tmp, unmounted after each measurement.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 OLD_LAUNCHER NEW_LAUNCHER LOWER [ROUNDS]" >&2; exit 2; }
old=$1 new=$2 lower=$3 rounds=${4:-3}
dir=$(mktemp -d /tmp/ab-builds.XXXXXX)
trap 'mountpoint -q "$dir/m" && fusermount -uz "$dir/m"; rm -rf "$dir"' EXIT

fresh() { # $1 launcher: a fresh mount at $dir/m; prints the daemon's pid
  rm -rf "$dir/u" "$dir/w"; mkdir -p "$dir/u" "$dir/w" "$dir/m"
  "$1" mount -o "lowerdir=$lower,upperdir=$dir/u,workdir=$dir/w" "$dir/m"
  sync; echo 3 > /proc/sys/vm/drop_caches
  pgrep -f "layerfs.*$dir/m" | head -1
}
cpu() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; }
now() { date +%s.%N; }

one() { # $1 label, $2 launcher
  local pid t0 t1 c1 t2 t3 c2
  pid=$(fresh "$2"); t0=$(now); find "$dir/m" -printf '' 2> /dev/null || true; t1=$(now); c1=$(cpu "$pid")
  "$2" umount "$dir/m"
  pid=$(fresh "$2"); t2=$(now); (cd "$dir/m/src" && git status --porcelain > /dev/null 2>&1) || true; t3=$(now); c2=$(cpu "$pid")
  "$2" umount "$dir/m"
  printf '%-4s find %.2f s, daemon cpu %.2f s | git status %.2f s, daemon cpu %.2f s\n' "$1" \
    "$(echo "$t1 - $t0" | bc)" "$c1" "$(echo "$t3 - $t2" | bc)" "$c2"
}
for _ in $(seq "$rounds"); do
  one old "$old"
  one new "$new"
done
