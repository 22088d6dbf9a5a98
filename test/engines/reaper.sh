#!/bin/bash
# The engine tests' safety net (started by lib.ts engineScratch): waits for the test process
# to end by any means (even SIGKILL), then, for whatever its legs left under ROOT: kills every
# process whose command line or environment names ROOT (conmon, podman's rootless pause
# process, fuse-overlayfs and layerfs daemons: their mounts in a user namespace go with them),
# unmounts what is mounted under ROOT, and removes ROOT. After a normal exit the test has done
# all this and ROOT is gone.
pid=$1 root=$2 keep=$3
while kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
[ -d "$root" ] || exit 0
names_root() { tr '\0' '\n' 2>/dev/null < "$1" | grep -qF -- "$root/"; }
for _ in 1 2 3; do
  found=
  for p in /proc/[0-9]*; do
    n=${p#/proc/}
    [ "$n" = $$ ] && continue
    if names_root "$p/cmdline" || names_root "$p/environ"; then kill -9 "$n" 2>/dev/null && found=1; fi
  done
  [ -z "$found" ] && break
  sleep 0.5
done
awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts | tac | while read -r m; do
  fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
done
if [ -z "$keep" ] && ! awk -v r="$root/" 'index($2, r) == 1 {f=1} END {exit !f}' /proc/mounts; then
  rm -rf --one-file-system "$root"
fi
