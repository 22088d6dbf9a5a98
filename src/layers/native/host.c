/*
 * host.c: the few host syscalls Node's fs lacks, as a synchronous N-API addon.
 * Contract: src/layers/native.ts (HostCalls). Only src/layers/ loads it.
 *
 * Every call either returns or throws an Error shaped like Node's fs errors:
 *   message  "ENOENT: no such file or directory, mknod '/x'"
 *   errno    negative (libuv convention, as Node's fs)
 *   code     'ENOENT', syscall, path (and dest for renameat2)
 * Wrong argument types throw a TypeError with code ERR_INVALID_ARG_TYPE, as Node does.
 *
 * Paths and xattr names are Buffers (their bytes) or JS strings in the name codec of
 * src/layers/native/names.ts: UTF-8, except that a lone U+DC80..U+DCFF stands for the byte
 * (code - 0xDC00) that is not valid UTF-8 ("surrogateescape"). Names that come back (llistxattr,
 * an error's path) use the same codec. An embedded NUL is refused (the kernel would silently
 * see a shorter path).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "names.h"

/* Both come from the kernel ABI; older headers may lack them. */
#ifndef UTIME_NOW
#define UTIME_NOW ((1l << 30) - 1l)
#endif
#ifndef UTIME_OMIT
#define UTIME_OMIT ((1l << 30) - 2l)
#endif

/* A value that fits most xattrs we read (overlay's "y", redirects, short user values):
 * one syscall in the common case, the size query only when it does not fit. */
#define XATTR_STACK_BUF 256

/* On a napi_status failure a JS exception is already pending (or we raise a generic one);
 * returning NULL from a callback then throws it. */
#define NAPI_OK(call)                                                          \
  do {                                                                         \
    if ((call) != napi_ok) goto napi_fail;                                     \
  } while (0)

/* ---- errors ---------------------------------------------------------------------- */

/* Fill name/message for errno `err` (positive). libuv knows the names Node uses; for the
 * rare errno it does not map, fall back to glibc so code is still 'EFOO', not 'Unknown'. */
static void errno_strings(int err, char *name, size_t nlen, char *msg, size_t mlen) {
  uv_err_name_r(-err, name, nlen);
  uv_strerror_r(-err, msg, mlen);
  if (strncmp(name, "Unknown", 7) == 0) {
    const char *gname = strerrorname_np(err);
    snprintf(name, nlen, "%s", gname ? gname : "UNKNOWN");
    /* strerror's text is capitalised; Node's libuv messages are lower case: keep glibc's as is. */
    snprintf(msg, mlen, "%s", strerror(err));
  }
}

/* ---- the name codec: names.c (bytes -> JS string), shared with the FUSE session addon ---- */

static void set_string_prop(napi_env env, napi_value obj, const char *key, const char *val) {
  napi_value v;
  if (js_name(env, val, strlen(val), &v) == napi_ok) napi_set_named_property(env, obj, key, v);
}

/* Throw the Node-shaped error for errno `err` (positive). path and dest may be NULL. */
static void throw_errno(napi_env env, int err, const char *syscall_name, const char *path,
                        const char *dest) {
  char name[64], msg[256];
  errno_strings(err, name, sizeof name, msg, sizeof msg);

  /* Node's format: "CODE: message, syscall 'path' -> 'dest'". */
  size_t cap = strlen(name) + strlen(msg) + strlen(syscall_name) + 16 +
               (path ? strlen(path) + 3 : 0) + (dest ? strlen(dest) + 7 : 0);
  char *text = malloc(cap);
  if (text == NULL) {
    napi_throw_error(env, name, msg);
    return;
  }
  int n = snprintf(text, cap, "%s: %s, %s", name, msg, syscall_name);
  if (path) n += snprintf(text + n, cap - n, " '%s'", path);
  if (dest) snprintf(text + n, cap - n, " -> '%s'", dest);

  napi_value jmsg, error, jerrno;
  if (js_name(env, text, strlen(text), &jmsg) != napi_ok ||
      napi_create_error(env, NULL, jmsg, &error) != napi_ok) {
    free(text);
    napi_throw_error(env, name, msg);
    return;
  }
  free(text);
  if (napi_create_int32(env, -err, &jerrno) == napi_ok)
    napi_set_named_property(env, error, "errno", jerrno);
  set_string_prop(env, error, "code", name);
  set_string_prop(env, error, "syscall", syscall_name);
  if (path) set_string_prop(env, error, "path", path);
  if (dest) set_string_prop(env, error, "dest", dest);
  napi_throw(env, error);
}

static void throw_arg_type(napi_env env, const char *arg, const char *expected) {
  char text[160];
  snprintf(text, sizeof text, "The \"%s\" argument must be %s", arg, expected);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", text);
}

/* ---- argument conversion ---------------------------------------------------------- */

/* Fetch exactly `want` arguments; missing ones come back as undefined and fail their
 * type check below. */
static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
  return 0;
}

/* Whether s[0..len) holds U+FFFD's UTF-8 (EF BF BD): V8 writes it for a lone surrogate. */
static int has_replacement_char(const char *s, size_t len) {
  for (size_t i = 0; i + 2 < len; i++)
    if ((unsigned char)s[i] == 0xEF && (unsigned char)s[i + 1] == 0xBF && (unsigned char)s[i + 2] == 0xBD)
      return 1;
  return 0;
}

/* The bytes of a JS string in the name codec into a malloc'd buffer (*len bytes + NUL):
 * surrogate pairs as 4-byte UTF-8, a lone U+DC80..U+DCFF as its byte, another lone surrogate
 * as U+FFFD (as V8 does). NULL on failure (with a pending exception). */
static char *encode_name(napi_env env, napi_value value, size_t *len) {
  size_t units;
  if (napi_get_value_string_utf16(env, value, NULL, 0, &units) != napi_ok) return NULL;
  uint16_t *u = malloc((units + 1) * sizeof(uint16_t));
  char *out = malloc(units * 3 + 1);
  if (u == NULL || out == NULL ||
      napi_get_value_string_utf16(env, value, (char16_t *)u, units + 1, &units) != napi_ok) {
    free(u);
    free(out);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  size_t n = 0;
  for (size_t i = 0; i < units; i++) {
    uint32_t c = u[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < units && u[i + 1] >= 0xDC00 && u[i + 1] <= 0xDFFF) {
      uint32_t cp = 0x10000 + ((c - 0xD800) << 10) + (u[++i] - 0xDC00u);
      out[n++] = (char)(0xF0 | (cp >> 18));
      out[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
      out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
      out[n++] = (char)(0x80 | (cp & 0x3F));
      continue;
    }
    if (c >= 0xDC80 && c <= 0xDCFF) {
      out[n++] = (char)(c - 0xDC00);
      continue;
    }
    if (c >= 0xD800 && c <= 0xDFFF) c = 0xFFFD;
    if (c < 0x80) {
      out[n++] = (char)c;
    } else if (c < 0x800) {
      out[n++] = (char)(0xC0 | (c >> 6));
      out[n++] = (char)(0x80 | (c & 0x3F));
    } else {
      out[n++] = (char)(0xE0 | (c >> 12));
      out[n++] = (char)(0x80 | ((c >> 6) & 0x3F));
      out[n++] = (char)(0x80 | (c & 0x3F));
    }
  }
  out[n] = 0;
  free(u);
  *len = n;
  return out;
}

/* A path or name argument (a string in the name codec, or a Buffer) as a malloc'd
 * NUL-terminated byte string; NULL (with a pending TypeError) when it is neither or holds a
 * NUL byte. The caller frees it. */
static char *get_utf8(napi_env env, napi_value value, const char *arg) {
  napi_valuetype type;
  bool is_buffer = false;
  size_t len;
  char *buf;
  if (napi_typeof(env, value, &type) != napi_ok) return NULL;
  if (type != napi_string && (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer)) {
    throw_arg_type(env, arg, "of type string or an instance of Buffer");
    return NULL;
  }
  if (is_buffer) {
    void *data;
    if (napi_get_buffer_info(env, value, &data, &len) != napi_ok) return NULL;
    buf = malloc(len + 1);
    if (buf == NULL) {
      napi_throw_error(env, "ENOMEM", "out of memory");
      return NULL;
    }
    memcpy(buf, data, len);
    buf[len] = 0;
  } else {
    if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) return NULL;
    buf = malloc(len + 1);
    if (buf == NULL) {
      napi_throw_error(env, "ENOMEM", "out of memory");
      return NULL;
    }
    if (napi_get_value_string_utf8(env, value, buf, len + 1, &len) != napi_ok) {
      free(buf);
      return NULL;
    }
    if (has_replacement_char(buf, len)) { /* maybe escaped bytes: encode it ourselves */
      free(buf);
      if ((buf = encode_name(env, value, &len)) == NULL) return NULL;
    }
  }
  if (strlen(buf) != len) {
    char text[160];
    snprintf(text, sizeof text,
             "The argument '%s' must be a string without null bytes", arg);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", text);
    free(buf);
    return NULL;
  }
  return buf;
}

/* An integral JS number in [min, max]. */
static int get_integer(napi_env env, napi_value value, const char *arg, double min, double max,
                       double *out) {
  napi_valuetype type;
  double d;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number ||
      napi_get_value_double(env, value, &d) != napi_ok) {
    throw_arg_type(env, arg, "of type number");
    return -1;
  }
  if (d != d || d < min || d > max || d != (double)(int64_t)d) {
    char text[160];
    snprintf(text, sizeof text, "The value of \"%s\" is out of range. Received %g", arg, d);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", text);
    return -1;
  }
  *out = d;
  return 0;
}

/* A TimeSpec (bigint ns since the epoch | 'now' | 'omit') as a struct timespec.
 * Times before 1970 are negative bigints: floor division keeps tv_nsec in [0, 1e9). */
static int get_timespec(napi_env env, napi_value value, const char *arg, struct timespec *ts) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return -1;
  if (type == napi_bigint) {
    /* Up to 128 bits: 64-bit nanoseconds end in 2262, a file's time may be later (and a
     * struct timespec holds it). */
    int sign;
    size_t count = 2;
    uint64_t words[2] = {0, 0};
    if (napi_get_value_bigint_words(env, value, &sign, &count, words) != napi_ok) return -1;
    __int128 ns = count > 2 || (words[1] >> 63) ? 0 : ((__int128)words[1] << 64) | words[0];
    if (count > 2 || (words[1] >> 63) || ns / 1000000000 > (__int128)INT64_MAX) {
      char text[160];
      snprintf(text, sizeof text, "The value of \"%s\" is out of range (nanoseconds)", arg);
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", text);
      return -1;
    }
    if (sign) ns = -ns;
    __int128 sec = ns / 1000000000, nsec = ns % 1000000000;
    if (nsec < 0) {
      nsec += 1000000000;
      sec -= 1;
    }
    ts->tv_sec = (time_t)sec;
    ts->tv_nsec = (long)nsec;
    return 0;
  }
  if (type == napi_string) {
    char word[8];
    size_t len;
    if (napi_get_value_string_utf8(env, value, word, sizeof word, &len) != napi_ok) return -1;
    if (strcmp(word, "now") == 0) {
      ts->tv_sec = 0;
      ts->tv_nsec = UTIME_NOW;
      return 0;
    }
    if (strcmp(word, "omit") == 0) {
      ts->tv_sec = 0;
      ts->tv_nsec = UTIME_OMIT;
      return 0;
    }
  }
  throw_arg_type(env, arg, "a bigint (ns since the epoch), 'now' or 'omit'");
  return -1;
}

static napi_value undefined(napi_env env) {
  napi_value u = NULL;
  napi_get_undefined(env, &u);
  return u;
}

/* ---- the calls --------------------------------------------------------------------- */

/* mknod(path, mode, dev): mode carries the type bits; dev is makedev(major, minor),
 * which may exceed 32 bits (glibc's dev_t is 64-bit), so take any safe integer. */
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  double mode, dev;
  if (get_args(env, info, 3, argv)) return NULL;
  char *path = get_utf8(env, argv[0], "path");
  if (path == NULL) return NULL;
  if (get_integer(env, argv[1], "mode", 0, 0xffffffffu, &mode) ||
      get_integer(env, argv[2], "dev", 0, 9007199254740991.0, &dev)) {
    free(path);
    return NULL;
  }
  if (mknod(path, (mode_t)mode, (dev_t)dev) != 0) throw_errno(env, errno, "mknod", path, NULL);
  free(path);
  return undefined(env);
}

/* lutimens(path, atime, mtime): utimensat(AT_FDCWD, ..., AT_SYMLINK_NOFOLLOW), ns exact. */
static napi_value js_lutimens(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  struct timespec ts[2];
  if (get_args(env, info, 3, argv)) return NULL;
  char *path = get_utf8(env, argv[0], "path");
  if (path == NULL) return NULL;
  if (get_timespec(env, argv[1], "atime", &ts[0]) || get_timespec(env, argv[2], "mtime", &ts[1])) {
    free(path);
    return NULL;
  }
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) != 0)
    throw_errno(env, errno, "utimensat", path, NULL);
  free(path);
  return undefined(env);
}

/* futimens(fd, atime, mtime) */
static napi_value js_futimens(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  struct timespec ts[2];
  double fd;
  if (get_args(env, info, 3, argv)) return NULL;
  if (get_integer(env, argv[0], "fd", 0, 2147483647.0, &fd) ||
      get_timespec(env, argv[1], "atime", &ts[0]) || get_timespec(env, argv[2], "mtime", &ts[1]))
    return NULL;
  if (futimens((int)fd, ts) != 0) throw_errno(env, errno, "futimens", NULL, NULL);
  return undefined(env);
}

/* The xattr readers shared by the path calls (lgetxattr, llistxattr) and the fd-relative ones
 * (getxattrAt, listxattrAt); defined with the latter below. dirfd AT_FDCWD: `name` is a path. */
static napi_value xattr_value(napi_env env, int dirfd, const char *name, const char *xname);
static napi_value xattr_names(napi_env env, int dirfd, const char *name);

/* The arguments of the xattr readers: [dirfd,] name[, xattr] (`at`: a dirfd comes first;
 * without it the name is a path from AT_FDCWD), then the shared reader. */
static napi_value read_xattr_call(napi_env env, napi_callback_info info, int at, int list) {
  napi_value argv[3];
  double dirfd = AT_FDCWD;
  size_t argc = (size_t)(at + (list ? 1 : 2));
  if (get_args(env, info, argc, argv)) return NULL;
  if (at && get_integer(env, argv[0], "dirfd", AT_FDCWD, 2147483647.0, &dirfd)) return NULL;
  char *name = get_utf8(env, argv[at], at ? "name" : "path");
  if (name == NULL) return NULL;
  napi_value result;
  if (list) {
    result = xattr_names(env, (int)dirfd, name);
  } else {
    char *xname = get_utf8(env, argv[at + 1], at ? "xattr" : "name");
    result = xname == NULL ? NULL : xattr_value(env, (int)dirfd, name, xname);
    free(xname);
  }
  free(name);
  return result;
}

/* lgetxattr(path, name) -> Buffer | undefined (ENODATA). */
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  return read_xattr_call(env, info, 0, 0);
}

/* llistxattr(path) -> string[]: the NUL-separated list split into names. */
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  return read_xattr_call(env, info, 0, 1);
}

/* lsetxattr(path, name, value, flags); flags: XATTR_CREATE 1, XATTR_REPLACE 2. */
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  void *value;
  size_t size;
  bool is_buffer = false;
  double flags;
  if (get_args(env, info, 4, argv)) return NULL;
  if (napi_is_buffer(env, argv[2], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[2], &value, &size) != napi_ok) {
    throw_arg_type(env, "value", "an instance of Buffer");
    return NULL;
  }
  if (get_integer(env, argv[3], "flags", 0, 2147483647.0, &flags)) return NULL;
  char *path = get_utf8(env, argv[0], "path");
  if (path == NULL) return NULL;
  char *name = get_utf8(env, argv[1], "name");
  if (name == NULL) {
    free(path);
    return NULL;
  }
  if (lsetxattr(path, name, value, size, (int)flags) != 0)
    throw_errno(env, errno, "lsetxattr", path, NULL);
  free(name);
  free(path);
  return undefined(env);
}

/* lremovexattr(path, name) */
static napi_value js_lremovexattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv)) return NULL;
  char *path = get_utf8(env, argv[0], "path");
  if (path == NULL) return NULL;
  char *name = get_utf8(env, argv[1], "name");
  if (name == NULL) {
    free(path);
    return NULL;
  }
  if (lremovexattr(path, name) != 0) throw_errno(env, errno, "lremovexattr", path, NULL);
  free(name);
  free(path);
  return undefined(env);
}

/* Offsets cross the boundary as JS numbers: every integer up to 2^53 is exact there. */
#define MAX_EXACT_OFFSET 9007199254740992.0 /* 2^53 */

/* lseek(fd, offset, whence) -> the new offset. whence: SEEK_SET 0, SEEK_CUR 1, SEEK_END 2,
 * SEEK_DATA 3, SEEK_HOLE 4 (ENXIO when there is no data, or no hole, at or after offset).
 * A result above 2^53 would not be exact as a number: EOVERFLOW (the fd has moved, though). */
static napi_value js_lseek(napi_env env, napi_callback_info info) {
  napi_value argv[3], result = NULL;
  double fd, offset, whence;
  if (get_args(env, info, 3, argv)) return NULL;
  if (get_integer(env, argv[0], "fd", 0, 2147483647.0, &fd) ||
      get_integer(env, argv[1], "offset", -MAX_EXACT_OFFSET, MAX_EXACT_OFFSET, &offset) ||
      get_integer(env, argv[2], "whence", 0, 2147483647.0, &whence))
    return NULL;
  off_t at = lseek((int)fd, (off_t)(int64_t)offset, (int)whence);
  if (at < 0) {
    throw_errno(env, errno, "lseek", NULL, NULL);
    return NULL;
  }
  if ((double)at > MAX_EXACT_OFFSET || (int64_t)(double)at != (int64_t)at) {
    throw_errno(env, EOVERFLOW, "lseek", NULL, NULL);
    return NULL;
  }
  if (napi_create_int64(env, (int64_t)at, &result) != napi_ok) return NULL;
  return result;
}

/* ---- file handles (the kernel's trusted.overlay.origin records) ------------------- */

/* A file handle is at most MAX_HANDLE_SZ (128) bytes of f_handle. */
#define HANDLE_MAX 128

static int get_dirfd(napi_env env, napi_value v, const char *arg, int *out);
static void throw_errno_at(napi_env env, int err, const char *syscall_name, int dirfd, const char *name);

/* nameToHandleAt(dirfd, name) -> { type, handle: Buffer }: name_to_handle_at(2) without
 * following a final symlink ("" the directory itself, AT_FDCWD with a path). What the kernel
 * stores (inside an ovl_fb) as a copy-up's origin. */
static napi_value js_name_to_handle_at(napi_env env, napi_callback_info info) {
  napi_value argv[2], result = NULL, type = NULL, buf = NULL;
  int dirfd;
  if (get_args(env, info, 2, argv) || get_dirfd(env, argv[0], "dirfd", &dirfd)) return NULL;
  char *path = get_utf8(env, argv[1], "name");
  if (path == NULL) return NULL;
  struct file_handle *fh = malloc(sizeof *fh + HANDLE_MAX);
  int mount_id;
  if (fh == NULL) {
    free(path);
    throw_errno(env, ENOMEM, "name_to_handle_at", NULL, NULL);
    return NULL;
  }
  fh->handle_bytes = HANDLE_MAX;
  if (name_to_handle_at(dirfd, path, fh, &mount_id, *path ? 0 : AT_EMPTY_PATH) != 0) {
    throw_errno_at(env, errno, "name_to_handle_at", dirfd, path);
    free(fh);
    free(path);
    return NULL;
  }
  void *data;
  NAPI_OK(napi_create_object(env, &result));
  NAPI_OK(napi_create_int32(env, fh->handle_type, &type));
  NAPI_OK(napi_create_buffer_copy(env, fh->handle_bytes, fh->f_handle, &data, &buf));
  NAPI_OK(napi_set_named_property(env, result, "type", type));
  NAPI_OK(napi_set_named_property(env, result, "handle", buf));
  free(fh);
  free(path);
  return result;
napi_fail:
  free(fh);
  free(path);
  return NULL;
}

/* openByHandle(mountPath, type, handle) -> fd (O_RDONLY|O_PATH): open_by_handle_at(2)
 * relative to any path on the filesystem the handle came from. ESTALE: the object is gone. */
static napi_value js_open_by_handle(napi_env env, napi_callback_info info) {
  napi_value argv[3], result = NULL;
  double type;
  void *data = NULL;
  size_t len = 0;
  bool is_buffer = false;
  if (get_args(env, info, 3, argv)) return NULL;
  if (get_integer(env, argv[1], "type", -2147483648.0, 2147483647.0, &type)) return NULL;
  if (napi_is_buffer(env, argv[2], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok || len > HANDLE_MAX) {
    throw_arg_type(env, "handle", "a Buffer of at most 128 bytes");
    return NULL;
  }
  char *mnt = get_utf8(env, argv[0], "mountPath");
  if (mnt == NULL) return NULL;
  int mfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mfd < 0) {
    throw_errno(env, errno, "open", mnt, NULL);
    free(mnt);
    return NULL;
  }
  struct file_handle *fh = malloc(sizeof *fh + HANDLE_MAX);
  if (fh == NULL) {
    close(mfd);
    free(mnt);
    throw_errno(env, ENOMEM, "open_by_handle_at", NULL, NULL);
    return NULL;
  }
  fh->handle_bytes = (unsigned int)len;
  fh->handle_type = (int)type;
  memcpy(fh->f_handle, data, len);
  int fd = open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC);
  int err = errno;
  close(mfd);
  free(fh);
  if (fd < 0) {
    throw_errno(env, err, "open_by_handle_at", mnt, NULL);
    free(mnt);
    return NULL;
  }
  free(mnt);
  if (napi_create_int32(env, fd, &result) != napi_ok) {
    close(fd);
    return NULL;
  }
  return result;
}

/* From <linux/fs.h> of Linux 6.5+; Debian 12's headers are older. */
struct layerfs_fsuuid2 {
  uint8_t len;
  uint8_t uuid[16];
};
#define LAYERFS_IOC_GETFSUUID _IOR(0x15, 0, struct layerfs_fsuuid2)

/* fsUuid(path) -> Buffer(16): the filesystem's s_uuid (FS_IOC_GETFSUUID, Linux 6.5+), all
 * zeros where the filesystem has none or the ioctl is unknown: what the kernel's overlay
 * puts in an origin record. */
static napi_value js_fs_uuid(napi_env env, napi_callback_info info) {
  napi_value argv[1], buf = NULL;
  unsigned char uuid[16] = {0};
  if (get_args(env, info, 1, argv)) return NULL;
  char *path = get_utf8(env, argv[0], "path");
  if (path == NULL) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    throw_errno(env, errno, "open", path, NULL);
    free(path);
    return NULL;
  }
  struct layerfs_fsuuid2 u = {0};
  if (ioctl(fd, LAYERFS_IOC_GETFSUUID, &u) == 0 && u.len <= sizeof uuid) memcpy(uuid, u.uuid, u.len);
  close(fd);
  free(path);
  void *data;
  if (napi_create_buffer_copy(env, sizeof uuid, uuid, &data, &buf) != napi_ok) return NULL;
  return buf;
}

/* From <linux/openat2.h> (Linux 5.6+); Debian 12's headers have it, older ones may not. */
struct layerfs_open_how {
  uint64_t flags;
  uint64_t mode;
  uint64_t resolve;
};
#define LAYERFS_RESOLVE_NO_MAGICLINKS 0x02
#define LAYERFS_RESOLVE_NO_SYMLINKS 0x04
#define LAYERFS_RESOLVE_BENEATH 0x08
#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* openBeneath(dirfd, path, flags, mode) -> fd: openat2(2) of `path` (relative to dirfd, a
 * leading '/' ignored) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: no component, the last
 * included, may be a symlink, and nothing outside dirfd's tree is reached (ELOOP / EXDEV).
 * A layer changed behind the mount (a dir swapped for a symlink to a host dir) can so never
 * make the daemon open a host file outside the layers. EAGAIN (a concurrent rename) is
 * retried; without openat2 (ENOSYS, Linux < 5.6) it falls back to openat with O_NOFOLLOW. */
static napi_value js_open_beneath(napi_env env, napi_callback_info info) {
  napi_value argv[4], result = NULL;
  double dirfd, flags, mode;
  if (get_args(env, info, 4, argv)) return NULL;
  if (get_integer(env, argv[0], "dirfd", 0, 2147483647.0, &dirfd) ||
      get_integer(env, argv[2], "flags", 0, 2147483647.0, &flags) ||
      get_integer(env, argv[3], "mode", 0, 07777, &mode))
    return NULL;
  char *path = get_utf8(env, argv[1], "path");
  if (path == NULL) return NULL;
  const char *rel = path;
  while (*rel == '/') rel++;
  if (*rel == '\0') rel = ".";
  /* openat2 refuses (EINVAL) any bit open(2) would ignore, and FUSE hands on the kernel's own,
   * e.g. __FMODE_EXEC (0x20) for an execve: keep the open(2) flags only (the kernel's
   * VALID_OPEN_FLAGS). */
  const int valid = O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK |
                    O_DSYNC | FASYNC | O_DIRECT | O_LARGEFILE | O_DIRECTORY | O_NOFOLLOW |
                    O_NOATIME | O_CLOEXEC | O_SYNC | O_PATH | O_TMPFILE;
  struct layerfs_open_how how = {
      .flags = (uint64_t)((int)flags & valid) | O_CLOEXEC,
      .mode = ((int)flags & O_CREAT) || ((int)flags & O_TMPFILE) == O_TMPFILE ? (uint64_t)mode : 0,
      .resolve = LAYERFS_RESOLVE_BENEATH | LAYERFS_RESOLVE_NO_SYMLINKS | LAYERFS_RESOLVE_NO_MAGICLINKS,
  };
  long fd;
  int tries = 0;
  do fd = syscall(SYS_openat2, (int)dirfd, rel, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN && ++tries < 16);
  if (fd < 0 && errno == ENOSYS) fd = openat((int)dirfd, rel, (int)how.flags | O_NOFOLLOW, (mode_t)how.mode);
  if (fd < 0) {
    throw_errno(env, errno, "openat2", path, NULL);
    free(path);
    return NULL;
  }
  free(path);
  if (napi_create_int32(env, (int32_t)fd, &result) != napi_ok) {
    close((int)fd);
    return NULL;
  }
  return result;
}

/* ---- calls relative to a directory fd (the hot lookup path) ------------------------ */

/* Relative calls take a directory fd and one name below it, as the layers keep them
 * (src/layers/dir-fds.ts): the kernel resolves one component, where a "/proc/self/fd/N/name"
 * path costs a procfs walk on every call (~2.3 us more per stat or xattr read, measured in
 * native-notes/host-addon.md). An empty name or "." is the directory itself; AT_FDCWD with
 * a path takes the path (the upper's workdir temps). */

/* The xattr calls by directory fd and name (Linux 6.13); older kernels take the procfs path. */
#ifndef LAYERFS_SYS_setxattrat
#define LAYERFS_SYS_setxattrat 463
#define LAYERFS_SYS_getxattrat 464
#define LAYERFS_SYS_listxattrat 465
#define LAYERFS_SYS_removexattrat 466
#endif
struct layerfs_xattr_args {
  uint64_t value;
  uint32_t size;
  uint32_t flags;
};
/* 1: the *xattrat calls work here; 0: they do not (an older kernel: ENOSYS; a container's
 * seccomp profile that does not know them: ENOSYS or EPERM), use the procfs path; -1: not
 * probed yet. Probed once, on "/": what a probe refuses, every later call would. */
static int have_xattrat = -1;

static int xattrat_works(void) {
  if (have_xattrat < 0)
    have_xattrat = syscall(LAYERFS_SYS_listxattrat, AT_FDCWD, "/", AT_SYMLINK_NOFOLLOW, NULL, 0) >= 0;
  return have_xattrat;
}

static const char *at_name(const char *name) { return *name ? name : "."; }

/* "/proc/self/fd/N/name" in buf (the fallback); NULL when it does not fit. */
static const char *proc_path(char *buf, size_t size, int dirfd, const char *name) {
  int n = dirfd == AT_FDCWD ? snprintf(buf, size, "%s", at_name(name))
                            : snprintf(buf, size, "/proc/self/fd/%d/%s", dirfd, at_name(name));
  return n > 0 && (size_t)n < size ? buf : NULL;
}

static ssize_t getxattr_at(int dirfd, const char *name, const char *xname, void *buf, size_t size) {
  if (xattrat_works()) {
    struct layerfs_xattr_args args = {.value = (uint64_t)(uintptr_t)buf, .size = (uint32_t)size, .flags = 0};
    long n = syscall(LAYERFS_SYS_getxattrat, dirfd, at_name(name), AT_SYMLINK_NOFOLLOW, xname, &args, sizeof args);
    if (n >= 0 || errno != ENOSYS) return n;
    have_xattrat = 0;
  }
  char path[PATH_MAX];
  if (proc_path(path, sizeof path, dirfd, name) == NULL) {
    errno = ENAMETOOLONG;
    return -1;
  }
  return lgetxattr(path, xname, buf, size);
}

static ssize_t listxattr_at(int dirfd, const char *name, char *buf, size_t size) {
  if (xattrat_works()) {
    long n = syscall(LAYERFS_SYS_listxattrat, dirfd, at_name(name), AT_SYMLINK_NOFOLLOW, buf, size);
    if (n >= 0 || errno != ENOSYS) return n;
    have_xattrat = 0;
  }
  char path[PATH_MAX];
  if (proc_path(path, sizeof path, dirfd, name) == NULL) {
    errno = ENAMETOOLONG;
    return -1;
  }
  return llistxattr(path, buf, size);
}

/* Error text for a relative call: "fd N/name", or the path itself with AT_FDCWD. */
static void at_text(char *buf, size_t size, int dirfd, const char *name) {
  if (dirfd == AT_FDCWD) snprintf(buf, size, "%s", name);
  else snprintf(buf, size, "fd %d/%s", dirfd, name);
}

static void throw_errno_at(napi_env env, int err, const char *syscall_name, int dirfd, const char *name) {
  char path[PATH_MAX];
  at_text(path, sizeof path, dirfd, name);
  throw_errno(env, err, syscall_name, path, NULL);
}

/* The slots of statAt's out array (src/layers/stat.ts Slot). Times as seconds and
 * nanoseconds: in one int64 of nanoseconds a time after 2262 would overflow. */
enum { ST_MODE, ST_UID, ST_GID, ST_NLINK, ST_SIZE, ST_BLOCKS, ST_BLKSIZE, ST_RDEV, ST_INO, ST_DEV,
       ST_ATIME, ST_ATIME_NS, ST_MTIME, ST_MTIME_NS, ST_CTIME, ST_CTIME_NS, ST_SLOTS };

/* statAt(dirfd, name, out: BigInt64Array) -> boolean: fstatat(2) of `name` in dirfd, not
 * following a final symlink, into out's slots; false when absent (ENOENT, ENOTDIR), other
 * errors thrown. No object per call: the caller reads the slots it keeps. */
static napi_value js_stat_at(napi_env env, napi_callback_info info) {
  napi_value argv[3], result = NULL;
  double dirfd;
  if (get_args(env, info, 3, argv)) return NULL;
  if (get_integer(env, argv[0], "dirfd", AT_FDCWD, 2147483647.0, &dirfd)) return NULL;
  bool is_typed = false;
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_is_typedarray(env, argv[2], &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, argv[2], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_bigint64_array || length < ST_SLOTS) {
    throw_arg_type(env, "out", "a BigInt64Array of 16 slots");
    return NULL;
  }
  char *name = get_utf8(env, argv[1], "name");
  if (name == NULL) return NULL;
  struct stat st;
  int flags = AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH);
  if (fstatat((int)dirfd, name, &st, flags) != 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) napi_get_boolean(env, false, &result);
    else throw_errno_at(env, err, "fstatat", (int)dirfd, name);
    free(name);
    return result;
  }
  free(name);
  int64_t *out = data;
  out[ST_MODE] = st.st_mode;
  out[ST_UID] = st.st_uid;
  out[ST_GID] = st.st_gid;
  out[ST_NLINK] = (int64_t)st.st_nlink;
  out[ST_SIZE] = st.st_size;
  out[ST_BLOCKS] = st.st_blocks;
  out[ST_BLKSIZE] = st.st_blksize;
  out[ST_RDEV] = (int64_t)st.st_rdev;
  out[ST_INO] = (int64_t)st.st_ino;
  out[ST_DEV] = (int64_t)st.st_dev;
  out[ST_ATIME] = st.st_atim.tv_sec;
  out[ST_ATIME_NS] = st.st_atim.tv_nsec;
  out[ST_MTIME] = st.st_mtim.tv_sec;
  out[ST_MTIME_NS] = st.st_mtim.tv_nsec;
  out[ST_CTIME] = st.st_ctim.tv_sec;
  out[ST_CTIME_NS] = st.st_ctim.tv_nsec;
  napi_get_boolean(env, true, &result);
  return result;
}

/* The value of xattr `xname` of `name` in dirfd (AT_FDCWD: `name` is a path) as a Buffer,
 * undefined for ENODATA, else the error thrown (NULL). A small stack buffer first; on ERANGE
 * the size is asked and a heap buffer of it read, again while the value keeps growing between
 * the two calls. */
static napi_value xattr_value(napi_env env, int dirfd, const char *name, const char *xname) {
  napi_value result = NULL;
  char stackbuf[XATTR_STACK_BUF];
  char *heap = NULL, *data = stackbuf;
  ssize_t n = getxattr_at(dirfd, name, xname, stackbuf, sizeof stackbuf);
  while (n < 0 && errno == ERANGE) {
    ssize_t size = getxattr_at(dirfd, name, xname, NULL, 0);
    if (size < 0) break;
    free(heap);
    heap = malloc(size > 0 ? (size_t)size : 1);
    if (heap == NULL) {
      errno = ENOMEM;
      n = -1;
      break;
    }
    data = heap;
    n = getxattr_at(dirfd, name, xname, heap, (size_t)size);
  }
  if (n >= 0) {
    void *unused;
    if (napi_create_buffer_copy(env, (size_t)n, data, &unused, &result) != napi_ok) result = NULL;
  } else if (errno == ENODATA) {
    result = undefined(env);
  } else if (dirfd == AT_FDCWD) {
    throw_errno(env, errno, "lgetxattr", name, NULL);
  } else {
    throw_errno_at(env, errno, "lgetxattr", dirfd, name);
  }
  free(heap);
  return result;
}

/* The xattr names of `name` in dirfd (AT_FDCWD: a path) as string[], else the error thrown. */
static napi_value xattr_names(napi_env env, int dirfd, const char *name) {
  napi_value result = NULL;
  char stackbuf[XATTR_STACK_BUF];
  char *heap = NULL, *data = stackbuf;
  ssize_t n = listxattr_at(dirfd, name, stackbuf, sizeof stackbuf);
  while (n < 0 && errno == ERANGE) {
    ssize_t size = listxattr_at(dirfd, name, NULL, 0);
    if (size < 0) break;
    free(heap);
    heap = malloc(size > 0 ? (size_t)size : 1);
    if (heap == NULL) {
      errno = ENOMEM;
      n = -1;
      break;
    }
    data = heap;
    n = listxattr_at(dirfd, name, heap, (size_t)size);
  }
  if (n < 0) {
    if (dirfd == AT_FDCWD) throw_errno(env, errno, "llistxattr", name, NULL);
    else throw_errno_at(env, errno, "llistxattr", dirfd, name);
    goto done;
  }
  NAPI_OK(napi_create_array(env, &result));
  uint32_t index = 0;
  for (ssize_t at = 0; at < n;) {
    size_t len = strnlen(data + at, (size_t)(n - at));
    napi_value item;
    NAPI_OK(js_name(env, data + at, len, &item));
    NAPI_OK(napi_set_element(env, result, index++, item));
    at += (ssize_t)len + 1;
  }
  goto done;
napi_fail:
  result = NULL;
done:
  free(heap);
  return result;
}

/* getxattrAt(dirfd, name, xattr) -> Buffer | undefined (ENODATA): as lgetxattr. */
static napi_value js_getxattr_at(napi_env env, napi_callback_info info) {
  return read_xattr_call(env, info, 1, 0);
}

/* listxattrAt(dirfd, name) -> string[]: as llistxattr. */
static napi_value js_listxattr_at(napi_env env, napi_callback_info info) {
  return read_xattr_call(env, info, 1, 1);
}

/* ---- changes relative to a directory fd (the upper layer's writes) --------------- */

/* The same calls as the path ones above (lsetxattr, lutimens, renameat2, mkdir, lchown,
 * unlink, name_to_handle_at) by directory fd and name: a copy-up makes ~15 of them per
 * object, and each "/proc/self/fd/N/name" path cost a procfs walk (~2.2 us more per call,
 * native-notes/host-addon.md). AT_FDCWD with a path as for statAt; "" is the directory
 * itself where the call allows it. Arguments are checked as the path calls check theirs. */

static int get_dirfd(napi_env env, napi_value v, const char *arg, int *out) {
  double d;
  if (get_integer(env, v, arg, AT_FDCWD, 2147483647.0, &d)) return -1;
  *out = (int)d;
  return 0;
}

/* setxattrAt(dirfd, name, xattr, value, flags): setxattrat(2) where the kernel has it, else
 * lsetxattr of the procfs path. */
static napi_value js_setxattr_at(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  void *value;
  size_t size;
  bool is_buffer = false;
  double flags;
  int dirfd;
  if (get_args(env, info, 5, argv) || get_dirfd(env, argv[0], "dirfd", &dirfd)) return NULL;
  if (napi_is_buffer(env, argv[3], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[3], &value, &size) != napi_ok) {
    throw_arg_type(env, "value", "an instance of Buffer");
    return NULL;
  }
  if (get_integer(env, argv[4], "flags", 0, 2147483647.0, &flags)) return NULL;
  char *name = get_utf8(env, argv[1], "name");
  if (name == NULL) return NULL;
  char *xname = get_utf8(env, argv[2], "xattr");
  if (xname == NULL) {
    free(name);
    return NULL;
  }
  long r = -1;
  int done = 0;
  if (xattrat_works()) {
    struct layerfs_xattr_args args = {.value = (uint64_t)(uintptr_t)value, .size = (uint32_t)size, .flags = (uint32_t)flags};
    r = syscall(LAYERFS_SYS_setxattrat, dirfd, at_name(name), AT_SYMLINK_NOFOLLOW, xname, &args, sizeof args);
    if (r >= 0 || errno != ENOSYS) done = 1;
    else have_xattrat = 0;
  }
  if (!done) {
    char path[PATH_MAX];
    if (proc_path(path, sizeof path, dirfd, name) == NULL) {
      errno = ENAMETOOLONG;
      r = -1;
    } else {
      r = lsetxattr(path, xname, value, size, (int)flags);
    }
  }
  if (r < 0) throw_errno_at(env, errno, "lsetxattr", dirfd, name);
  free(xname);
  free(name);
  return r < 0 ? NULL : undefined(env);
}

/* utimensAt(dirfd, name, atime, mtime): utimensat(dirfd, name, AT_SYMLINK_NOFOLLOW), ns exact. */
static napi_value js_utimens_at(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  struct timespec ts[2];
  int dirfd;
  if (get_args(env, info, 4, argv) || get_dirfd(env, argv[0], "dirfd", &dirfd)) return NULL;
  if (get_timespec(env, argv[2], "atime", &ts[0]) || get_timespec(env, argv[3], "mtime", &ts[1])) return NULL;
  char *name = get_utf8(env, argv[1], "name");
  if (name == NULL) return NULL;
  int r = utimensat(dirfd, at_name(name), ts, AT_SYMLINK_NOFOLLOW);
  if (r != 0) throw_errno_at(env, errno, "utimensat", dirfd, name);
  free(name);
  return r != 0 ? NULL : undefined(env);
}

/* renameAt(fromDirfd, from, toDirfd, to, flags): renameat2(2). */
static napi_value js_rename_at(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  double flags;
  int fromfd, tofd;
  if (get_args(env, info, 5, argv) || get_dirfd(env, argv[0], "fromDirfd", &fromfd) ||
      get_dirfd(env, argv[2], "toDirfd", &tofd))
    return NULL;
  if (get_integer(env, argv[4], "flags", 0, 4294967295.0, &flags)) return NULL;
  char *from = get_utf8(env, argv[1], "from");
  if (from == NULL) return NULL;
  char *to = get_utf8(env, argv[3], "to");
  if (to == NULL) {
    free(from);
    return NULL;
  }
  long r = syscall(SYS_renameat2, fromfd, from, tofd, to, (unsigned int)flags);
  if (r != 0) {
    int err = errno;
    char a[PATH_MAX], b[PATH_MAX];
    at_text(a, sizeof a, fromfd, from);
    at_text(b, sizeof b, tofd, to);
    throw_errno(env, err, "renameat2", a, b);
  }
  free(to);
  free(from);
  return r != 0 ? NULL : undefined(env);
}

/* The (dirfd, name, mode) calls: mkdirAt, chmodAt. */
static napi_value mode_at_call(napi_env env, napi_callback_info info, int (*call)(int, const char *, mode_t),
                               const char *syscall_name) {
  napi_value argv[3];
  double mode;
  int dirfd;
  if (get_args(env, info, 3, argv) || get_dirfd(env, argv[0], "dirfd", &dirfd)) return NULL;
  if (get_integer(env, argv[2], "mode", 0, 07777, &mode)) return NULL;
  char *name = get_utf8(env, argv[1], "name");
  if (name == NULL) return NULL;
  int r = call(dirfd, name, (mode_t)mode);
  if (r != 0) throw_errno_at(env, errno, syscall_name, dirfd, name);
  free(name);
  return r != 0 ? NULL : undefined(env);
}

/* mkdirAt(dirfd, name, mode): mkdirat(2) (the umask applies, as to mkdir). */
static napi_value js_mkdir_at(napi_env env, napi_callback_info info) {
  return mode_at_call(env, info, mkdirat, "mkdir");
}

/* chownAt(dirfd, name, uid, gid): fchownat(AT_SYMLINK_NOFOLLOW); -1 or 0xffffffff keeps one (as lchown). */
static napi_value js_chown_at(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  double uid, gid;
  int dirfd;
  if (get_args(env, info, 4, argv) || get_dirfd(env, argv[0], "dirfd", &dirfd)) return NULL;
  if (get_integer(env, argv[2], "uid", -1, 4294967295.0, &uid) ||
      get_integer(env, argv[3], "gid", -1, 4294967295.0, &gid))
    return NULL;
  char *name = get_utf8(env, argv[1], "name");
  if (name == NULL) return NULL;
  int r = fchownat(dirfd, name, uid < 0 ? (uid_t)-1 : (uid_t)uid, gid < 0 ? (gid_t)-1 : (gid_t)gid, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH));
  if (r != 0) throw_errno_at(env, errno, "lchown", dirfd, name);
  free(name);
  return r != 0 ? NULL : undefined(env);
}

/* fchmodat2(2) (Linux 6.6): the first chmod that can refuse a final symlink. Probed once with
 * a flag it refuses (EINVAL where it exists; ENOSYS on an older kernel, ENOSYS or EPERM
 * under a seccomp profile that does not know it). */
#ifndef LAYERFS_SYS_fchmodat2
#define LAYERFS_SYS_fchmodat2 452
#endif
static int have_fchmodat2 = -1;

static int fchmodat2_works(void) {
  if (have_fchmodat2 < 0)
    have_fchmodat2 = syscall(LAYERFS_SYS_fchmodat2, AT_FDCWD, "/", 0, 0x80000000) < 0 && errno == EINVAL;
  return have_fchmodat2;
}

/* chmod of `name` in dirfd without following it: fchmodat2(AT_SYMLINK_NOFOLLOW), or an O_PATH
 * fd and its procfs path. A symlink is ELOOP either way (what the O_PATH open beneath the
 * layer gave before). */
static int chmod_at(int dirfd, const char *name, mode_t mode) {
  if (fchmodat2_works()) {
    if (syscall(LAYERFS_SYS_fchmodat2, dirfd, at_name(name), mode, AT_SYMLINK_NOFOLLOW) == 0) return 0;
    if (errno == EOPNOTSUPP) errno = ELOOP;
    return -1;
  }
  int fd = openat(dirfd, at_name(name), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  int r = fstat(fd, &st);
  if (r == 0 && S_ISLNK(st.st_mode)) {
    errno = ELOOP;
    r = -1;
  }
  if (r == 0) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    r = chmod(path, mode);
  }
  int err = errno;
  close(fd);
  errno = err;
  return r;
}

/* chmodAt(dirfd, name, mode): chmod without following a final symlink (ELOOP). */
static napi_value js_chmod_at(napi_env env, napi_callback_info info) {
  return mode_at_call(env, info, chmod_at, "chmod");
}

/* fchmodat2Support() -> boolean: whether chmodAt uses fchmodat2 (else the O_PATH fallback). */
static napi_value js_fchmodat2_support(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result = NULL;
  napi_get_boolean(env, fchmodat2_works() != 0, &result);
  return result;
}

/* Tests: the O_PATH fallback from now on, as on a kernel without fchmodat2. */
static napi_value js_disable_fchmodat2(napi_env env, napi_callback_info info) {
  (void)info;
  have_fchmodat2 = 0;
  return undefined(env);
}

/* unlinkAt(dirfd, name, flags): unlinkat(2); flags 0 or AT_REMOVEDIR (0x200). */
static napi_value js_unlink_at(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  double flags;
  int dirfd;
  if (get_args(env, info, 3, argv) || get_dirfd(env, argv[0], "dirfd", &dirfd)) return NULL;
  if (get_integer(env, argv[2], "flags", 0, 2147483647.0, &flags)) return NULL;
  char *name = get_utf8(env, argv[1], "name");
  if (name == NULL) return NULL;
  int r = unlinkat(dirfd, name, (int)flags);
  if (r != 0) throw_errno_at(env, errno, (int)flags & AT_REMOVEDIR ? "rmdir" : "unlink", dirfd, name);
  free(name);
  return r != 0 ? NULL : undefined(env);
}

/* linkFdAt(fd, dirfd, name): linkat(2) of the file behind `fd` to (dirfd, name), through
 * /proc/self/fd/N with AT_SYMLINK_FOLLOW: no capability needed (AT_EMPTY_PATH wants
 * CAP_DAC_READ_SEARCH), and an O_TMPFILE file opened without O_EXCL may be linked so. */
static napi_value js_link_fd_at(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  double fd;
  int dirfd;
  if (get_args(env, info, 3, argv) || get_integer(env, argv[0], "fd", 0, 2147483647.0, &fd) ||
      get_dirfd(env, argv[1], "dirfd", &dirfd))
    return NULL;
  char *name = get_utf8(env, argv[2], "name");
  if (name == NULL) return NULL;
  char from[48];
  snprintf(from, sizeof from, "/proc/self/fd/%d", (int)fd);
  int r = linkat(AT_FDCWD, from, dirfd, name, AT_SYMLINK_FOLLOW);
  if (r != 0) throw_errno_at(env, errno, "link", dirfd, name);
  free(name);
  return r != 0 ? NULL : undefined(env);
}

/* ficlone(dstFd, srcFd): ioctl(dst, FICLONE, src): dst shares src's extents (a reflink, on
 * xfs with reflink=1, btrfs, bcachefs); the kernel's copy-up tries the same first
 * (ovl_copy_up_file: vfs_clone_file_range). EOPNOTSUPP where the filesystem cannot, EXDEV
 * across filesystems. */
static napi_value js_ficlone(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  double dst, src;
  if (get_args(env, info, 2, argv)) return NULL;
  if (get_integer(env, argv[0], "dstFd", 0, 2147483647.0, &dst) ||
      get_integer(env, argv[1], "srcFd", 0, 2147483647.0, &src))
    return NULL;
  if (ioctl((int)dst, FICLONE, (int)src) != 0) throw_errno(env, errno, "ficlone", NULL, NULL);
  return undefined(env);
}

/* xattrAtSupport() -> boolean: whether the *xattrat calls are used. */
static napi_value js_xattr_at_support(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result = NULL;
  napi_get_boolean(env, xattrat_works() != 0, &result);
  return result;
}

/* Tests: take the procfs path from now on, as a kernel without *xattrat would. */
static napi_value js_disable_xattr_at(napi_env env, napi_callback_info info) {
  (void)info;
  have_xattrat = 0;
  return undefined(env);
}

/* ---- memory ------------------------------------------------------------------------ */

/* releaseStartUpMemory() -> number: MADV_DONTNEED on every read-only file mapping of the
 * process that holds no private (copied-on-write) page, node's binary and the shared
 * libraries, then malloc_trim(0) (the free memory of malloc's arenas). The mappings'
 * pages stay in the page cache; this process maps them again, on its next touch of each (a
 * minor fault), so what start-up alone touched (and the kernel's fault-around mapped beside
 * it) leaves our RSS. A mapping with an anonymous page (RELRO, a debugger's breakpoint) is
 * left alone: DONTNEED would drop the copy. Returns the bytes advised; 0 where /proc/self/smaps
 * cannot be read. native-notes/memory.md, "The node binary". */
static napi_value js_release_start_up_memory(napi_env env, napi_callback_info info) {
  (void)info;
  FILE *f = fopen("/proc/self/smaps", "re");
  double advised = 0;
  if (f != NULL) {
    struct range { unsigned long start, end; } *ranges = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t len = 0;
    unsigned long start = 0, end = 0, inode = 0, anon = 0, kb;
    char perm[5] = "";
    int in_map = 0; /* a mapping's fields are being read */
    for (;;) {
      ssize_t got = getline(&line, &len, f);
      unsigned long a, b, ino;
      char p[5];
      int header = got > 0 && sscanf(line, "%lx-%lx %4s %*s %*s %lu", &a, &b, p, &ino) == 4;
      if ((header || got < 0) && in_map) {
        /* The mapping just read: a file's, not writable, with no private copy of a page. */
        if (inode != 0 && perm[1] != 'w' && anon == 0) {
          if (n == cap) {
            size_t c = cap ? cap * 2 : 64;
            struct range *r = realloc(ranges, c * sizeof *r);
            if (r == NULL) break;
            ranges = r, cap = c;
          }
          ranges[n].start = start, ranges[n].end = end, n++;
        }
        in_map = 0;
      }
      if (got < 0) break;
      if (header) {
        start = a, end = b, inode = ino, anon = 0, in_map = 1;
        memcpy(perm, p, sizeof perm);
      } else if (in_map && sscanf(line, "Anonymous: %lu kB", &kb) == 1) {
        anon = kb;
      }
    }
    free(line);
    fclose(f);
    for (size_t i = 0; i < n; i++)
      if (madvise((void *)ranges[i].start, ranges[i].end - ranges[i].start, MADV_DONTNEED) == 0)
        advised += (double)(ranges[i].end - ranges[i].start);
    free(ranges);
  }
  /* And what malloc holds free (start-up's buffers, the parser's): back to the kernel. */
  malloc_trim(0);
  napi_value result = NULL;
  napi_create_double(env, advised, &result);
  return result;
}

/* ---- module ------------------------------------------------------------------------ */

static napi_value init(napi_env env, napi_value exports) {
  /* LAYERFS_HOST_OLD_CALLS=1 (tests): the calls of a kernel before 6.6, as if setxattrat,
   * getxattrat, listxattrat and fchmodat2 were refused: the procfs and O_PATH fallbacks, in a
   * whole mount (test/scenarios/older-kernel-calls). */
  const char *old_calls = getenv("LAYERFS_HOST_OLD_CALLS");
  if (old_calls != NULL && strcmp(old_calls, "1") == 0) have_xattrat = have_fchmodat2 = 0;
  napi_property_descriptor props[] = {
      {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lutimens", NULL, js_lutimens, NULL, NULL, NULL, napi_enumerable, NULL},
      {"futimens", NULL, js_futimens, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lremovexattr", NULL, js_lremovexattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lseek", NULL, js_lseek, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openByHandle", NULL, js_open_by_handle, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fsUuid", NULL, js_fs_uuid, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openBeneath", NULL, js_open_beneath, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ficlone", NULL, js_ficlone, NULL, NULL, NULL, napi_enumerable, NULL},
      {"statAt", NULL, js_stat_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getxattrAt", NULL, js_getxattr_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listxattrAt", NULL, js_listxattr_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"xattrAtSupport", NULL, js_xattr_at_support, NULL, NULL, NULL, napi_enumerable, NULL},
      {"disableXattrAt", NULL, js_disable_xattr_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"releaseStartUpMemory", NULL, js_release_start_up_memory, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setxattrAt", NULL, js_setxattr_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"utimensAt", NULL, js_utimens_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"renameAt", NULL, js_rename_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mkdirAt", NULL, js_mkdir_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"chownAt", NULL, js_chown_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unlinkAt", NULL, js_unlink_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"linkFdAt", NULL, js_link_fd_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"chmodAt", NULL, js_chmod_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"disableFchmodat2", NULL, js_disable_fchmodat2, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fchmodat2Support", NULL, js_fchmodat2_support, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nameToHandleAt", NULL, js_name_to_handle_at, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok)
    return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
