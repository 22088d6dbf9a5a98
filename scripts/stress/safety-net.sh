#!/usr/bin/env bash
# Runs a stress driver (crash-loop.mjs or soak.mjs) in a fresh run directory and cleans up
# after it whatever happens: mounts under the run directory come off (deepest first), the
# processes whose command line names it (daemons, workers) are ended by pid, and the directory
# is removed unless the run failed (then it is kept, with the journals and logs, and named).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
driver=$1
shift
case " $* " in *" --help "*|*" -h "*) exec node "$here/$driver" "$@" ;; esac
[ "$(id -u)" = 0 ] || { echo "${driver%.mjs}: run as root (FUSE and kernel overlayfs mounts)" >&2; exit 2; }
if [ "$(stat -f -c %T /tmp)" = overlayfs ]; then
  echo "${driver%.mjs}: /tmp is an overlayfs; kernel overlayfs cannot use it as an upper layer (mount a tmpfs on /tmp first)" >&2
  exit 2
fi
rundir=$(mktemp -d "/tmp/stress-${driver%.mjs}.XXXXXX")
status=2

cleanup() {
  local m pid
  trap - EXIT INT TERM HUP
  for m in $(awk -v p="$rundir" '$2 == p || index($2, p "/") == 1 { print $2 }' /proc/mounts | sort -r); do
    fusermount -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  for sig in TERM KILL; do
    for pid in $(grep -lsF "$rundir" /proc/[0-9]*/cmdline | cut -d/ -f3); do
      [ "$pid" = $$ ] || kill -"$sig" "$pid" 2>/dev/null
    done
    sleep 0.3
  done
  for m in $(awk -v p="$rundir" '$2 == p || index($2, p "/") == 1 { print $2 }' /proc/mounts | sort -r); do
    fusermount -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  if awk -v p="$rundir" '$2 == p || index($2, p "/") == 1 { f = 1 } END { exit !f }' /proc/mounts; then
    echo "${driver%.mjs}: could not unmount everything under $rundir" >&2
  elif [ "$status" = 0 ] || [ -n "${STRESS_DISCARD:-}" ]; then
    rm -rf "$rundir"
  else
    echo "${driver%.mjs}: kept $rundir (journals, logs, layers)" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'status=130; exit 130' INT TERM HUP

node "$here/$driver" --run-dir "$rundir" "$@"
status=$?
