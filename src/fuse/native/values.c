// The values the lowlevel session (lowlevel.c) exchanges with JS: a stat and a statfs as
// Uint32Arrays of a fixed layout (filled by src/fuse/lowlevel.ts), and names as JS strings.
// Once part of our fuse-native patch.
#include "values.h"
#include "names.h"

#include <stdlib.h>
#include <string.h>

static uint64_t uint32s_to_uint64 (uint32_t **ints) {
  uint64_t low = *((*ints)++);
  uint64_t high = *((*ints)++);
  return high * 4294967296 + low;
}

// (sec lo, sec hi, nsec) -> timespec, exact to the nanosecond; sec may be negative.
static void uint32s_to_timespec (struct timespec *ts, uint32_t **ints) {
  ts->tv_sec = (time_t) (int64_t) uint32s_to_uint64(ints);
  uint32_t nsec = *((*ints)++);
  ts->tv_nsec = nsec < 1000000000 ? nsec : 999999999;
}

void populate_stat (uint32_t *ints, struct stat *stat) {
  memset(stat, 0, sizeof(*stat));
  stat->st_mode = *ints++;
  stat->st_uid = *ints++;
  stat->st_gid = *ints++;
  stat->st_size = uint32s_to_uint64(&ints);
  stat->st_dev = *ints++;
  stat->st_nlink = *ints++;
  stat->st_ino = uint32s_to_uint64(&ints);
  stat->st_rdev = *ints++;
  stat->st_blksize = *ints++;
  stat->st_blocks = uint32s_to_uint64(&ints);
  uint32s_to_timespec(&stat->st_atim, &ints);
  uint32s_to_timespec(&stat->st_mtim, &ints);
  uint32s_to_timespec(&stat->st_ctim, &ints);
}

void populate_statvfs (uint32_t *ints, struct statvfs *statvfs) {
  statvfs->f_bsize = *ints++;
  statvfs->f_frsize = *ints++;
  statvfs->f_blocks = uint32s_to_uint64(&ints);
  statvfs->f_bfree = uint32s_to_uint64(&ints);
  statvfs->f_bavail = uint32s_to_uint64(&ints);
  statvfs->f_files = uint32s_to_uint64(&ints);
  statvfs->f_ffree = uint32s_to_uint64(&ints);
  statvfs->f_favail = uint32s_to_uint64(&ints);
  statvfs->f_fsid = *ints++;
  statvfs->f_flag = *ints++;
  statvfs->f_namemax = *ints++;
}

// A name from a request (NUL-terminated; NULL for "") in the name codec (names.c).
void ll_name (napi_env env, const char *name, napi_value *out) {
  if (name == NULL) name = "";
  if (js_name(env, name, strlen(name), out) != napi_ok) napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, out);
}
