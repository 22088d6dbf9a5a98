// The FUSE protocol: requests parsed, INIT negotiated, replies laid out (see protocol.h).
#include "protocol.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

// ---- requests ---------------------------------------------------------------------------------
// What follows the header, per opcode: a fixed struct of `fixed` bytes, then `names` names
// (NUL-terminated), then data (WRITE: write_in.size bytes; SETXATTR: setxattr_in.size bytes
// after the name). parse 0: not parsed (answered ENOSYS, or no reply at all).
typedef struct { uint8_t parse; uint8_t names; uint16_t fixed; const char *name; } ll_spec_t;

#define OP(code, fixed, names, name) [code] = { 1, names, fixed, name }
#define NOP(code, name) [code] = { 0, 0, 0, name }

static const ll_spec_t ll_specs[] = {
  OP(FUSE_LOOKUP, 0, 1, "LOOKUP"),
  OP(FUSE_FORGET, sizeof(struct fuse_forget_in), 0, "FORGET"),
  OP(FUSE_GETATTR, sizeof(struct fuse_getattr_in), 0, "GETATTR"),
  OP(FUSE_SETATTR, sizeof(struct fuse_setattr_in), 0, "SETATTR"),
  OP(FUSE_READLINK, 0, 0, "READLINK"),
  OP(FUSE_SYMLINK, 0, 2, "SYMLINK"),
  OP(FUSE_MKNOD, sizeof(struct fuse_mknod_in), 1, "MKNOD"),
  OP(FUSE_MKDIR, sizeof(struct fuse_mkdir_in), 1, "MKDIR"),
  OP(FUSE_UNLINK, 0, 1, "UNLINK"),
  OP(FUSE_RMDIR, 0, 1, "RMDIR"),
  OP(FUSE_RENAME, sizeof(struct fuse_rename_in), 2, "RENAME"),
  OP(FUSE_LINK, sizeof(struct fuse_link_in), 1, "LINK"),
  OP(FUSE_OPEN, sizeof(struct fuse_open_in), 0, "OPEN"),
  OP(FUSE_READ, sizeof(struct fuse_read_in), 0, "READ"),
  OP(FUSE_WRITE, sizeof(struct fuse_write_in), 0, "WRITE"),
  OP(FUSE_STATFS, 0, 0, "STATFS"),
  OP(FUSE_RELEASE, sizeof(struct fuse_release_in), 0, "RELEASE"),
  OP(FUSE_FSYNC, sizeof(struct fuse_fsync_in), 0, "FSYNC"),
  // 8 bytes (size, flags) unless FUSE_SETXATTR_EXT was negotiated, which we do not ask for.
  OP(FUSE_SETXATTR, FUSE_COMPAT_SETXATTR_IN_SIZE, 1, "SETXATTR"),
  OP(FUSE_GETXATTR, sizeof(struct fuse_getxattr_in), 1, "GETXATTR"),
  OP(FUSE_LISTXATTR, sizeof(struct fuse_getxattr_in), 0, "LISTXATTR"),
  OP(FUSE_REMOVEXATTR, 0, 1, "REMOVEXATTR"),
  OP(FUSE_FLUSH, sizeof(struct fuse_flush_in), 0, "FLUSH"),
  // 16 bytes up to 7.35, 64 from 7.36 (flags2): the longer part is read only when there.
  OP(FUSE_INIT, 16, 0, "INIT"),
  OP(FUSE_OPENDIR, sizeof(struct fuse_open_in), 0, "OPENDIR"),
  OP(FUSE_READDIR, sizeof(struct fuse_read_in), 0, "READDIR"),
  OP(FUSE_RELEASEDIR, sizeof(struct fuse_release_in), 0, "RELEASEDIR"),
  OP(FUSE_FSYNCDIR, sizeof(struct fuse_fsync_in), 0, "FSYNCDIR"),
  NOP(FUSE_GETLK, "GETLK"),
  NOP(FUSE_SETLK, "SETLK"),
  NOP(FUSE_SETLKW, "SETLKW"),
  NOP(FUSE_ACCESS, "ACCESS"),
  OP(FUSE_CREATE, sizeof(struct fuse_create_in), 1, "CREATE"),
  NOP(FUSE_INTERRUPT, "INTERRUPT"),
  NOP(FUSE_BMAP, "BMAP"),
  OP(FUSE_DESTROY, 0, 0, "DESTROY"),
  NOP(FUSE_IOCTL, "IOCTL"),
  NOP(FUSE_POLL, "POLL"),
  NOP(FUSE_NOTIFY_REPLY, "NOTIFY_REPLY"),
  OP(FUSE_BATCH_FORGET, sizeof(struct fuse_batch_forget_in), 0, "BATCH_FORGET"),
  OP(FUSE_FALLOCATE, sizeof(struct fuse_fallocate_in), 0, "FALLOCATE"),
  OP(LL_FUSE_READDIRPLUS, sizeof(struct fuse_read_in), 0, "READDIRPLUS"),
  OP(LL_FUSE_RENAME2, sizeof(struct fuse_rename2_in), 2, "RENAME2"),
  OP(LL_FUSE_LSEEK, sizeof(struct fuse_lseek_in), 0, "LSEEK"),
  OP(LL_FUSE_COPY_FILE_RANGE, sizeof(struct fuse_copy_file_range_in), 0, "COPY_FILE_RANGE"),
  NOP(LL_FUSE_SETUPMAPPING, "SETUPMAPPING"),
  NOP(LL_FUSE_REMOVEMAPPING, "REMOVEMAPPING"),
  NOP(LL_FUSE_SYNCFS, "SYNCFS"),
  OP(LL_FUSE_TMPFILE, sizeof(struct fuse_create_in), 1, "TMPFILE"),
  OP(LL_FUSE_STATX, sizeof(struct ll_statx_in), 0, "STATX"),
};

#define LL_NSPECS (sizeof(ll_specs) / sizeof(ll_specs[0]))

const char *ll_opname (uint32_t opcode) {
  if (opcode < LL_NSPECS && ll_specs[opcode].name) return ll_specs[opcode].name;
  return opcode == CUSE_INIT ? "CUSE_INIT" : "?";
}

int ll_no_reply (uint32_t opcode) {
  return opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET || opcode == FUSE_INTERRUPT ||
    opcode == FUSE_NOTIFY_REPLY;
}

// The name starting at p, within end: its terminating NUL must be there.
static const char *ll_take_name (const char **p, const char *end) {
  const char *s = *p;
  if (s >= end) return NULL;
  const char *nul = (const char *) memchr(s, 0, (size_t) (end - s));
  if (nul == NULL) return NULL;
  *p = nul + 1;
  return s;
}

// The opcode's arguments: its fixed struct at fixed (avail bytes there), its names and data
// from p to end; p NULL: right after the fixed struct (as on /dev/fuse).
static int ll_parse_args (ll_in_t *in, const char *fixed, size_t avail, const char *p, const char *end) {
  uint32_t opcode = in->h->opcode;
  if (opcode >= LL_NSPECS || !ll_specs[opcode].parse) return 0;
  const ll_spec_t *spec = &ll_specs[opcode];
  if (avail < spec->fixed) return EINVAL;
  if (spec->fixed) in->arg = fixed;
  if (p == NULL) p = fixed + spec->fixed;
  if (spec->names >= 1 && (in->name = ll_take_name(&p, end)) == NULL) return EINVAL;
  if (spec->names >= 2 && (in->name2 = ll_take_name(&p, end)) == NULL) return EINVAL;
  if (opcode == FUSE_WRITE) {
    const struct fuse_write_in *w = (const struct fuse_write_in *) in->arg;
    if (w->size > (size_t) (end - p)) return EINVAL;
    in->data = p;
    in->datalen = w->size;
  } else if (opcode == FUSE_SETXATTR) {
    const struct fuse_setxattr_in *x = (const struct fuse_setxattr_in *) in->arg;
    if (x->size > (size_t) (end - p)) return EINVAL;
    in->data = p;
    in->datalen = x->size;
  } else if (opcode == FUSE_BATCH_FORGET) {
    const struct fuse_batch_forget_in *b = (const struct fuse_batch_forget_in *) in->arg;
    if ((size_t) b->count > (size_t) (end - p) / sizeof(struct fuse_forget_one)) return EINVAL;
    in->data = p;
    in->datalen = (size_t) b->count * sizeof(struct fuse_forget_one);
  }
  return 0;
}

int ll_parse (const void *buf, size_t n, ll_in_t *in) {
  memset(in, 0, sizeof(*in));
  if (n < sizeof(struct fuse_in_header)) return EIO;
  const struct fuse_in_header *h = (const struct fuse_in_header *) buf;
  in->h = h;
  in->token = h->unique;
  if (h->len < sizeof(*h) || h->len > n) return EIO;
  const char *p = (const char *) (h + 1), *end = (const char *) buf + h->len;
  in->arglen = (size_t) (end - p);
  return ll_parse_args(in, p, in->arglen, NULL, end);
}

int ll_parse_ring (const struct ll_uring_req_header *hdr, const void *payload, size_t payload_len, ll_in_t *in) {
  memset(in, 0, sizeof(*in));
  const struct fuse_in_header *h = (const struct fuse_in_header *) hdr->in_out;
  in->h = h;
  in->token = h->unique;
  in->arglen = sizeof(hdr->op_in);
  return ll_parse_args(in, hdr->op_in, sizeof(hdr->op_in), (const char *) payload, (const char *) payload + payload_len);
}

// ---- INIT -------------------------------------------------------------------------------------

static int ll_uint_option (const char *opt, const char *key, uint32_t *out) {
  size_t k = strlen(key);
  if (strncmp(opt, key, k) != 0 || opt[k] != '=' || opt[k + 1] == 0) return 0;
  char *e;
  unsigned long v = strtoul(opt + k + 1, &e, 10);
  if (*e != 0 || v > UINT32_MAX) return -1;
  *out = (uint32_t) v;
  return 1;
}

int ll_session_options (const char *opts, ll_init_params_t *p) {
  memset(p, 0, sizeof(*p));
  p->proto_max = LL_MINOR_MAX;
  p->max_write = 128 * 1024;
  p->flags = LL_FUSE_ASYNC_READ;  // libfuse 2.9's default
  if (opts == NULL || opts[0] == 0) return 0;
  if (strncmp(opts, "-o", 2) != 0) return EINVAL;
  char *copy = strdup(opts + 2);
  if (copy == NULL) return ENOMEM;
  int err = 0;
  char *save = NULL;
  for (char *o = strtok_r(copy, ",", &save); o != NULL && err == 0; o = strtok_r(NULL, ",", &save)) {
    uint32_t v = 0;
    int r;
    if (strcmp(o, "debug") == 0) p->debug = 1;
    else if (strcmp(o, "big_writes") == 0) p->flags |= LL_FUSE_BIG_WRITES;
    else if (strcmp(o, "atomic_o_trunc") == 0) p->flags |= LL_FUSE_ATOMIC_O_TRUNC;
    else if (strcmp(o, "async_read") == 0) p->flags |= LL_FUSE_ASYNC_READ;
    else if (strcmp(o, "sync_read") == 0) p->flags &= ~LL_FUSE_ASYNC_READ;
    else if (strcmp(o, "no_remote_lock") == 0) {}  // we never ask for remote locks
    else if ((r = ll_uint_option(o, "max_write", &v)) != 0) { if (r < 0 || v < 4096) err = EINVAL; else p->max_write = v; }
    else if ((r = ll_uint_option(o, "max_readahead", &v)) != 0) { if (r < 0) err = EINVAL; else p->max_readahead = v; }
    else if ((r = ll_uint_option(o, "max_background", &v)) != 0) { if (r < 0 || v > 65535) err = EINVAL; else p->max_background = (uint16_t) v; }
    else if ((r = ll_uint_option(o, "congestion_threshold", &v)) != 0) { if (r < 0 || v > 65535) err = EINVAL; else p->congestion_threshold = (uint16_t) v; }
    else err = EINVAL;
  }
  free(copy);
  return err;
}

size_t ll_request_size (uint32_t max_write, size_t page_size) {
  size_t n = (size_t) max_write + page_size;
  // The kernel refuses a read buffer below FUSE_MIN_READ_BUFFER (8 KiB) with EINVAL.
  return n < 8192 ? 8192 : n;
}

int ll_negotiate (const void *arg, size_t len, const ll_init_params_t *p, size_t page_size,
    ll_init_out_t *out, size_t *outlen, ll_negotiated_t *neg) {
  ll_init_in_t in;
  memset(&in, 0, sizeof(in));
  memset(out, 0, sizeof(*out));
  memset(neg, 0, sizeof(*neg));
  if (len < 16) return EINVAL;
  memcpy(&in, arg, len < sizeof(in) ? len : sizeof(in));
  if (len < 20 || !(in.flags & LL_FUSE_INIT_EXT)) in.flags2 = 0;
  if (in.major != FUSE_KERNEL_VERSION || in.minor < LL_MINOR_MIN) return EPROTO;
  uint32_t cap = p->proto_max < LL_MINOR_MIN ? LL_MINOR_MIN : p->proto_max > LL_MINOR_MAX ? LL_MINOR_MAX : p->proto_max;
  uint32_t minor = in.minor < cap ? in.minor : cap;
  uint32_t offered = in.flags;
  out->major = FUSE_KERNEL_VERSION;
  out->minor = minor;
  out->max_readahead = p->max_readahead && p->max_readahead < in.max_readahead ? p->max_readahead : in.max_readahead;
  out->flags = offered & p->flags & (LL_FUSE_ASYNC_READ | LL_FUSE_ATOMIC_O_TRUNC | LL_FUSE_BIG_WRITES);
  // Listings carry each entry's attributes (7.21), the kernel deciding per listing.
  if (minor >= 21) out->flags |= offered & (LL_FUSE_DO_READDIRPLUS | LL_FUSE_READDIRPLUS_AUTO);
  // A node's symlink target never changes (a union inode is one object; a new target is a new
  // symlink, a new node), so the kernel may keep it (7.28) and walks through the link stop
  // asking READLINK. Lookups and listings in one directory may run side by side (7.25): the
  // kernel then takes the directory's lock shared for them; every change still takes it alone.
  if (minor >= 28) out->flags |= offered & (LL_FUSE_CACHE_SYMLINKS | LL_FUSE_PARALLEL_DIROPS);
  out->max_write = p->max_write;
  if (minor >= 28 && (offered & LL_FUSE_MAX_PAGES)) {
    out->flags |= LL_FUSE_MAX_PAGES;
    out->max_pages = LL_MAX_PAGES;
    out->max_write = (uint32_t) (LL_MAX_PAGES * page_size);
  }
  if (minor >= 13) {
    out->max_background = p->max_background;
    out->congestion_threshold = p->congestion_threshold;
  }
  // Passthrough (7.40): the kernel does READ and WRITE of a file we open so on its backing file
  // itself. Our superblock then counts as stacked stack_depth deep; a backing file must sit on
  // a filesystem less deep than that (the kernel refuses it with ELOOP, and the open falls back).
  if (minor >= 40 && p->stack_depth > 0 && (in.flags2 & LL_FUSE_PASSTHROUGH2)) {
    out->flags |= LL_FUSE_INIT_EXT;
    out->flags2 |= LL_FUSE_PASSTHROUGH2;
    out->max_stack_depth = p->stack_depth;
    neg->passthrough = 1;
  }
  // FUSE over io_uring (7.42; offered only where root set the fuse module's enable_uring).
  if (minor >= 36 && p->uring && (in.flags2 & LL_FUSE_OVER_IO_URING2)) {
    out->flags |= LL_FUSE_INIT_EXT;
    out->flags2 |= LL_FUSE_OVER_IO_URING2;
    neg->uring = 1;
  }
  *outlen = minor >= 23 ? sizeof(*out) : LL_INIT_OUT_22_SIZE;
  neg->minor = minor;
  neg->max_write = out->max_write;
  neg->flags = out->flags;
  return 0;
}

// ---- replies ----------------------------------------------------------------------------------

void ll_timeout (double t, uint64_t *sec, uint32_t *nsec) {
  if (!(t > 0)) { *sec = 0; *nsec = 0; return; }
  if (t >= 18446744073709551615.0) { *sec = UINT64_MAX; *nsec = 0; return; }
  *sec = (uint64_t) t;
  double f = (t - (double) *sec) * 1e9;
  *nsec = f >= 999999999.0 ? 999999999u : f > 0 ? (uint32_t) f : 0;
}

void ll_attr_of (const struct stat *st, struct fuse_attr *a) {
  memset(a, 0, sizeof(*a));
  a->ino = st->st_ino;
  a->mode = st->st_mode;
  a->nlink = (uint32_t) st->st_nlink;
  a->uid = st->st_uid;
  a->gid = st->st_gid;
  a->rdev = (uint32_t) st->st_rdev;
  a->size = (uint64_t) st->st_size;
  a->blksize = (uint32_t) st->st_blksize;
  a->blocks = (uint64_t) st->st_blocks;
  a->atime = (uint64_t) st->st_atim.tv_sec;
  a->mtime = (uint64_t) st->st_mtim.tv_sec;
  a->ctime = (uint64_t) st->st_ctim.tv_sec;
  a->atimensec = (uint32_t) st->st_atim.tv_nsec;
  a->mtimensec = (uint32_t) st->st_mtim.tv_nsec;
  a->ctimensec = (uint32_t) st->st_ctim.tv_nsec;
}

void ll_entry_of (uint64_t nodeid, const struct stat *st, double entry_timeout, double attr_timeout, struct fuse_entry_out *o) {
  memset(o, 0, sizeof(*o));
  o->nodeid = nodeid;
  ll_timeout(entry_timeout, &o->entry_valid, &o->entry_valid_nsec);
  ll_timeout(attr_timeout, &o->attr_valid, &o->attr_valid_nsec);
  // A negative entry (nodeid 0) carries no attributes.
  if (nodeid != 0) ll_attr_of(st, &o->attr);
}

void ll_attr_out_of (const struct stat *st, double attr_timeout, struct fuse_attr_out *o) {
  memset(o, 0, sizeof(*o));
  ll_timeout(attr_timeout, &o->attr_valid, &o->attr_valid_nsec);
  ll_attr_of(st, &o->attr);
}

void ll_statfs_of (const struct statvfs *sv, struct fuse_statfs_out *o) {
  memset(o, 0, sizeof(*o));
  o->st.blocks = sv->f_blocks;
  o->st.bfree = sv->f_bfree;
  o->st.bavail = sv->f_bavail;
  o->st.files = sv->f_files;
  o->st.ffree = sv->f_ffree;
  o->st.bsize = (uint32_t) sv->f_bsize;
  o->st.namelen = (uint32_t) sv->f_namemax;
  o->st.frsize = (uint32_t) sv->f_frsize;
}

void ll_statx_of (const struct stat *st, double timeout, const struct statx_timestamp *btime, struct ll_statx_out *o) {
  memset(o, 0, sizeof(*o));
  ll_timeout(timeout, &o->attr_valid, &o->attr_valid_nsec);
  struct ll_statx *x = &o->stat;
  x->mask = STATX_BASIC_STATS | (btime ? STATX_BTIME : 0);
  x->blksize = (uint32_t) st->st_blksize;
  x->nlink = (uint32_t) st->st_nlink;
  x->uid = st->st_uid;
  x->gid = st->st_gid;
  x->mode = (uint16_t) st->st_mode;
  x->ino = st->st_ino;
  x->size = (uint64_t) st->st_size;
  x->blocks = (uint64_t) st->st_blocks;
  x->atime.tv_sec = st->st_atim.tv_sec;
  x->atime.tv_nsec = (uint32_t) st->st_atim.tv_nsec;
  x->mtime.tv_sec = st->st_mtim.tv_sec;
  x->mtime.tv_nsec = (uint32_t) st->st_mtim.tv_nsec;
  x->ctime.tv_sec = st->st_ctim.tv_sec;
  x->ctime.tv_nsec = (uint32_t) st->st_ctim.tv_nsec;
  if (btime) { x->btime.tv_sec = btime->tv_sec; x->btime.tv_nsec = btime->tv_nsec; }
  x->rdev_major = major(st->st_rdev);
  x->rdev_minor = minor(st->st_rdev);
}

void ll_open_of (uint64_t fh, uint32_t flags, int32_t backing_id, struct ll_open_out *o) {
  memset(o, 0, sizeof(*o));
  o->fh = fh;
  if (flags & 1) o->open_flags |= LL_FOPEN_DIRECT_IO;
  if (flags & 2) o->open_flags |= LL_FOPEN_KEEP_CACHE;
  if (flags & 4) o->open_flags |= LL_FOPEN_CACHE_DIR;
  if (flags & 8) { o->open_flags |= LL_FOPEN_PASSTHROUGH; o->backing_id = backing_id; }
}

unsigned ll_cpu_list_count (const char *list) {
  unsigned n = 0;
  // Digits only: strtoul would read the "-1" of "0-1" as a negative number (it did, and the
  // ring waited forever for a second queue).
  for (const char *p = list; *p; ) {
    if (*p < '0' || *p > '9') { p++; continue; }
    unsigned long v = 0;
    for (; *p >= '0' && *p <= '9'; p++) if (v < 65536) v = v * 10 + (unsigned long) (*p - '0');
    if (v < 65536 && v + 1 > n) n = (unsigned) v + 1;
  }
  return n;
}
