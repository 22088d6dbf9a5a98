#!/bin/bash
# The harness's last safety net (started by scratch.ts): waits for the test process to end by
# any means (even SIGKILL), then unmounts every mount point it registered that is still
# mounted, kills whatever still serves it, and removes the scratch root if nothing is mounted
# under it. After a normal exit the test process has already done all this.
pid=$1 root=$2 keep=$3
while kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
[ -f "$root/.mounts" ] || exit 0
mounted() { awk -v m="$1" '$2 == m {f=1} END {exit !f}' /proc/mounts; }
tac "$root/.mounts" | while IFS=$'\t' read -r kind mnt; do
  for _ in 1 2 3; do
    mounted "$mnt" || break
    [ "$kind" = layerfs ] && fusermount -uz "$mnt" 2>/dev/null
    mounted "$mnt" && umount -l "$mnt" 2>/dev/null
  done
  if [ "$kind" = layerfs ]; then
    for p in /proc/[0-9]*; do
      # The daemon calls itself "layerfs MOUNTPOINT"; a fusermount helper has it as an argument.
      tr '\0' '\n' < "$p/cmdline" 2>/dev/null | grep -qxF -e "$mnt" -e "layerfs $mnt" && kill -9 "${p#/proc/}" 2>/dev/null
    done
  fi
done
if [ -z "$keep" ] && ! awk -v r="$root/" 'index($2, r) == 1 {f=1} END {exit !f}' /proc/mounts; then
  rm -rf "$root"
fi
