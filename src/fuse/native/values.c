// The values the lowlevel session (lowlevel.c) exchanges with JS: a stat and a statfs as
// Uint32Arrays of a fixed layout (filled by src/fuse/lowlevel.ts), and names as JS strings.
// Once part of our fuse-native patch; ours alone since the session became its own addon.
#include "values.h"

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

// Names are bytes, JS strings are UTF-16. A name that is valid UTF-8 (nearly all) becomes the
// string it spells. In any other, each byte that is not part of a valid UTF-8 sequence becomes
// the lone surrogate U+DC80..U+DCFF (U+DC00 + byte), Python's "surrogateescape" (PEP 383):
// bytes -> string -> bytes is exact (src/layers/native/names.ts goes back), and a lone
// surrogate never comes out of valid UTF-8, so nothing valid changes.

// The length of the valid UTF-8 sequence at s (n > 0 bytes left), or 0 (invalid, overlong,
// a surrogate, above U+10FFFF, or cut short).
static size_t utf8_seq_len (const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0; // overlong
    if (c == 0xED && s[1] >= 0xA0) return 0; // U+D800..U+DFFF
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
    if (c == 0xF0 && s[1] < 0x90) return 0; // overlong
    if (c == 0xF4 && s[1] >= 0x90) return 0; // above U+10FFFF
    return 4;
  }
  return 0;
}

static int valid_utf8 (const unsigned char *s, size_t len) {
  for (size_t i = 0, k; i < len; i += k) {
    if ((k = utf8_seq_len(s + i, len - i)) == 0) return 0;
  }
  return 1;
}

// bytes -> JS string (see above); NULL gives "".
void ll_name (napi_env env, const char *name, napi_value *out) {
  const unsigned char *s = (const unsigned char *) (name != NULL ? name : "");
  size_t len = strlen((const char *) s);
  if (valid_utf8(s, len)) {
    napi_create_string_utf8(env, (const char *) s, len, out);
    return;
  }
  // At most one UTF-16 unit per byte (a 4-byte sequence gives 2 units).
  uint16_t *u = malloc(len * sizeof(uint16_t));
  if (u == NULL) {
    napi_create_string_utf8(env, (const char *) s, len, out);
    return;
  }
  size_t n = 0;
  for (size_t i = 0; i < len;) {
    size_t k = utf8_seq_len(s + i, len - i);
    uint32_t cp;
    if (k == 0) { u[n++] = 0xDC00 + s[i]; i++; continue; }
    if (k == 1) cp = s[i];
    else if (k == 2) cp = ((s[i] & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
    else if (k == 3) cp = ((s[i] & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu);
    else cp = ((s[i] & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) | (s[i + 3] & 0x3Fu);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      u[n++] = 0xD800 + (cp >> 10);
      u[n++] = 0xDC00 + (cp & 0x3FF);
    } else {
      u[n++] = cp;
    }
    i += k;
  }
  napi_create_string_utf16(env, (const char16_t *) u, n, out);
  free(u);
}
