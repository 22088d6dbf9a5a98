# Sourced by scripts/test.sh and scripts/test-in-container.sh.
# cover_tmp CHECKOUT MOUNT_ARGS...: runs `mount MOUNT_ARGS... /tmp`. Where the checkout is under
# /tmp (CI clones there), the new mount would hide it, and the suite with it: the checkout is
# bound aside first (under /var/tmp) and bound back at its own path on the new /tmp after.
# Returns non-zero, with nothing left mounted, when a step fails.
cover_tmp() {
  local checkout=$1 aside
  shift
  case "$checkout" in
    /tmp) echo "cover-tmp: the checkout is /tmp itself: move it into a directory of its own" >&2; return 1 ;;
    /tmp/*) ;;
    *) mount "$@" /tmp; return ;;
  esac
  aside=$(mktemp -d /var/tmp/layerfs-checkout.XXXXXX) || return 1
  if ! mount --bind "$checkout" "$aside"; then rmdir "$aside"; return 1; fi
  local status=1
  if mount "$@" /tmp; then
    if mkdir -p "$checkout" && mount --bind "$aside" "$checkout"; then status=0; else umount -l /tmp || true; fi
  fi
  # The checkout is bound at its path again (or /tmp was never covered): the aside goes.
  umount "$aside" || status=1
  rmdir "$aside" || true
  return $status
}
