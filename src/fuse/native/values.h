// What lowlevel.c and JS exchange (values.c).
#ifndef LAYERFS_VALUES_H
#define LAYERFS_VALUES_H

#include <node_api.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

// A stat reply is a Uint32Array(STAT_INTS): mode uid gid size(lo,hi) dev nlink ino(lo,hi) rdev
// blksize blocks(lo,hi), then atime mtime ctime as (sec lo, sec hi, nsec), sec a two's-complement
// int64. A statfs reply is a Uint32Array(STATFS_INTS): bsize frsize blocks bfree bavail files
// ffree favail (each lo,hi) fsid flag namemax. src/fuse/lowlevel.ts fills both.
#define STAT_INTS 22
#define STATFS_INTS 17

// The caller checked that ints holds STAT_INTS (STATFS_INTS) values.
void populate_stat (uint32_t *ints, struct stat *stat);
void populate_statvfs (uint32_t *ints, struct statvfs *statvfs);

// A name (bytes, NUL-terminated; NULL for "") as a JS string, in the name codec of
// src/layers/native/names.c: invalid UTF-8 kept byte for byte.
void ll_name (napi_env env, const char *name, napi_value *out);

#endif
