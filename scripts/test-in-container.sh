#!/usr/bin/env bash
# Runs the test suite (scripts/test.sh; arguments go to tap) the way it runs in a privileged
# container whose root, /tmp included, is overlayfs, without docker: in a private mount
# namespace (unshare -m) /tmp is a kernel overlayfs mount whose layers are on the host's disk
# (under /var/tmp), as a container engine keeps them; scripts/test.sh then finds /tmp on
# overlayfs, as it would in the container. Whatever the outcome, it tears everything down:
# what is mounted lives in that namespace and is unmounted there (and goes with it); a process
# still left in the namespace afterwards is killed, by its pid (only ours are there); the
# layers are removed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
[ "$(id -u)" = 0 ] || { echo "test-in-container: needs root (unshare -m, mount)" >&2; exit 1; }
command -v unshare >/dev/null || { echo "test-in-container: needs unshare (util-linux)" >&2; exit 1; }

state=$(mktemp -d /var/tmp/layerfs-container.XXXXXX)
# The pids in the namespace (its id is written in $state/ns once it exists).
inNamespace() {
  local ns p pids=()
  [ -s "$state/ns" ] || return 0
  ns=$(cat "$state/ns")
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && pids+=("${p#/proc/}")
  done
  echo "${pids[@]}"
}
cleanup() {
  local left i
  # A test's reaper may still be finishing: give the namespace 10 s to empty by itself.
  for i in $(seq 100); do
    left=$(inNamespace)
    [ -z "$left" ] && break
    sleep 0.1
  done
  if [ -n "$left" ]; then
    echo "test-in-container: killing what was left in the namespace: $left" >&2
    # shellcheck disable=SC2086
    kill -9 $left 2>/dev/null || true
    for i in $(seq 50); do [ -z "$(inNamespace)" ] && break; sleep 0.1; done
  fi
  rm -rf "$state"
}
trap cleanup EXIT

# The namespace's first process: /tmp on overlayfs, the suite, then /tmp unmounted again (also
# when the suite fails; the namespace, with whatever is still mounted in it, goes when its last
# process ends). Where /var/tmp cannot hold an overlay's upper layer (it is overlayfs itself:
# run in a real container), the layers go on a tmpfs.
status=0
unshare -m --propagation private -- bash -c '
  set -uo pipefail
  state=$1
  shift
  readlink /proc/self/ns/mnt > "$state/ns"
  if [ "$(stat -f -c %T "$state")" = overlayfs ]; then mount -t tmpfs layerfs-container-layers "$state" || exit 1; fi
  mkdir -p "$state/lower" "$state/upper" "$state/work" || exit 1
  . scripts/cover-tmp.sh
  cover_tmp "$PWD" -t overlay layerfs-container-root -o "lowerdir=$state/lower,upperdir=$state/upper,workdir=$state/work" || exit 1
  trap "umount -l /tmp" EXIT
  cd "$PWD"
  if [ "$(stat -f -c %T /tmp)" != overlayfs ]; then echo "test-in-container: /tmp is not overlayfs" >&2; exit 1; fi
  echo "test-in-container: /tmp is overlayfs, in a private mount namespace"
  bash scripts/test.sh "$@"
' test-in-container "$state" "$@" || status=$?
exit $status
