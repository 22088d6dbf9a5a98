/* The name codec of every layer of layerfs, C half (src/layers/native/names.ts is the JS half):
 * file names are bytes, JS strings UTF-16. A name that is valid UTF-8 (nearly all) is the string
 * it spells; in any other, each byte that is not part of a valid UTF-8 sequence becomes the
 * lone surrogate U+DC80..U+DCFF (U+DC00 + byte), Python's "surrogateescape" (PEP 383), so that
 * bytes -> string -> bytes is exact. Compiled into both our addons: the host calls (host.node)
 * and the FUSE session (src/fuse/native, lowlevel.node). */
#include "names.h"

#include <stdint.h>
#include <stdlib.h>

/* The length of the valid UTF-8 sequence at s (n > 0 bytes left), or 0: invalid, overlong, a
 * surrogate, above U+10FFFF, or cut short. */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0;
    if (c == 0xED && s[1] >= 0xA0) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
    if (c == 0xF0 && s[1] < 0x90) return 0;
    if (c == 0xF4 && s[1] >= 0x90) return 0;
    return 4;
  }
  return 0;
}

/* bytes -> JS string: valid UTF-8 as is, otherwise each invalid byte as U+DC00 + byte. */
napi_status js_name(napi_env env, const char *name, size_t len, napi_value *out) {
  const unsigned char *s = (const unsigned char *)name;
  size_t i = 0, k;
  while (i < len && (k = utf8_seq_len(s + i, len - i)) != 0) i += k;
  if (i == len) return napi_create_string_utf8(env, name, len, out);
  uint16_t *u = malloc(len * sizeof(uint16_t)); /* at most one unit per byte */
  if (u == NULL) return napi_generic_failure;
  size_t n = 0;
  for (i = 0; i < len;) {
    k = utf8_seq_len(s + i, len - i);
    uint32_t cp;
    if (k == 0) {
      u[n++] = (uint16_t)(0xDC00 + s[i++]);
      continue;
    }
    if (k == 1) cp = s[i];
    else if (k == 2) cp = ((s[i] & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
    else if (k == 3) cp = ((s[i] & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu);
    else
      cp = ((s[i] & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) |
           (s[i + 3] & 0x3Fu);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      u[n++] = (uint16_t)(0xD800 + (cp >> 10));
      u[n++] = (uint16_t)(0xDC00 + (cp & 0x3FF));
    } else {
      u[n++] = (uint16_t)cp;
    }
    i += k;
  }
  napi_status st = napi_create_string_utf16(env, (const char16_t *)u, n, out);
  free(u);
  return st;
}

