/* The name codec, C half (names.c). */
#ifndef LAYERFS_NAMES_H
#define LAYERFS_NAMES_H

#include <node_api.h>
#include <stddef.h>

/* bytes -> JS string: valid UTF-8 as is, otherwise each invalid byte as U+DC00 + byte. */
napi_status js_name(napi_env env, const char *name, size_t len, napi_value *out);

#endif
