// Unit tests of src/fuse/native/protocol.c: requests as the kernel lays them out, parsed; INIT
// negotiated against kernels old and new; replies laid out. Built and run by
// test/fuse/protocol-unit.test.ts; prints one "ok N - what" or "not ok N - what" per check and
// exits non-zero if any failed.
#include "protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks, failed;

static void check (int ok, const char *what) {
  checks++;
  if (!ok) failed++;
  printf("%s %d - %s\n", ok ? "ok" : "not ok", checks, what);
}

// A request: the header, then `argn` bytes of arguments (the header's len says all of it).
typedef struct { union { struct fuse_in_header h; uint64_t align; } u; char args[4096]; } req_t;

static size_t make (req_t *r, uint32_t opcode, const void *arg, size_t argn) {
  memset(r, 0, sizeof(*r));
  r->u.h.opcode = opcode;
  r->u.h.unique = 42;
  r->u.h.nodeid = 7;
  r->u.h.len = (uint32_t) (sizeof(struct fuse_in_header) + argn);
  memcpy(r->args, arg, argn);
  return r->u.h.len;
}

// A fixed struct followed by NUL-terminated names (and raw bytes), laid out in buf.
static size_t lay (char *buf, const void *fixed, size_t fn, const char *a, const char *b) {
  size_t n = 0;
  if (fn) { memcpy(buf, fixed, fn); n += fn; }
  if (a) { memcpy(buf + n, a, strlen(a) + 1); n += strlen(a) + 1; }
  if (b) { memcpy(buf + n, b, strlen(b) + 1); n += strlen(b) + 1; }
  return n;
}

static void test_parse (void) {
  req_t r;
  memset(&r, 0, sizeof(r));
  ll_in_t in;
  char buf[1024];
  size_t n, an;

  check(ll_parse(&r, 10, &in) == EIO && in.h == NULL, "shorter than a header: EIO, no header");
  n = make(&r, FUSE_LOOKUP, "name", 5);
  check(ll_parse(&r, n - 1, &in) == EIO, "shorter than its header says: EIO");
  check(ll_parse(&r, n, &in) == 0 && in.h->unique == 42 && in.h->nodeid == 7 && strcmp(in.name, "name") == 0 &&
    in.name2 == NULL && in.arg == NULL, "LOOKUP: the name, where it lies");
  check(in.name == r.args, "LOOKUP: the name is not copied");
  n = make(&r, FUSE_LOOKUP, "name", 4);
  check(ll_parse(&r, n, &in) == EINVAL, "LOOKUP without the name's NUL: EINVAL");
  n = make(&r, FUSE_LOOKUP, "", 0);
  check(ll_parse(&r, n, &in) == EINVAL, "LOOKUP without a name: EINVAL");

  struct fuse_rename_in ren = { 99 };
  an = lay(buf, &ren, sizeof(ren), "old", "new");
  n = make(&r, FUSE_RENAME, buf, an);
  check(ll_parse(&r, n, &in) == 0 && ((const struct fuse_rename_in *) in.arg)->newdir == 99 &&
    strcmp(in.name, "old") == 0 && strcmp(in.name2, "new") == 0, "RENAME: newdir and both names");
  n = make(&r, FUSE_RENAME, buf, an - 4);
  check(ll_parse(&r, n, &in) == EINVAL, "RENAME with the second name cut: EINVAL");
  n = make(&r, FUSE_RENAME, buf, 4);
  check(ll_parse(&r, n, &in) == EINVAL, "RENAME with fuse_rename_in cut: EINVAL");

  struct fuse_rename2_in ren2 = { 5, 1 /* RENAME_NOREPLACE */, 0 };
  an = lay(buf, &ren2, sizeof(ren2), "a", "b");
  n = make(&r, LL_FUSE_RENAME2, buf, an);
  check(ll_parse(&r, n, &in) == 0 && ((const struct fuse_rename2_in *) in.arg)->flags == 1 &&
    strcmp(in.name, "a") == 0 && strcmp(in.name2, "b") == 0, "RENAME2: flags and both names");

  an = lay(buf, NULL, 0, "link", "target/of/it");
  n = make(&r, FUSE_SYMLINK, buf, an);
  check(ll_parse(&r, n, &in) == 0 && strcmp(in.name, "link") == 0 && strcmp(in.name2, "target/of/it") == 0,
    "SYMLINK: the new name, then the target");

  struct fuse_mknod_in mk = { 020644, 0x0103, 022, 0 };
  an = lay(buf, &mk, sizeof(mk), "fifo", NULL);
  n = make(&r, FUSE_MKNOD, buf, an);
  check(ll_parse(&r, n, &in) == 0 && ((const struct fuse_mknod_in *) in.arg)->rdev == 0x0103 &&
    ((const struct fuse_mknod_in *) in.arg)->umask == 022 && strcmp(in.name, "fifo") == 0, "MKNOD: mode, rdev, umask, name");

  struct fuse_write_in w = { 3, 4096, 5, 0, 0, 0, 0 };
  memcpy(buf, &w, sizeof(w));
  memcpy(buf + sizeof(w), "hello", 5);
  n = make(&r, FUSE_WRITE, buf, sizeof(w) + 5);
  check(ll_parse(&r, n, &in) == 0 && in.datalen == 5 && memcmp(in.data, "hello", 5) == 0, "WRITE: the data after fuse_write_in");
  n = make(&r, FUSE_WRITE, buf, sizeof(w) + 4);
  check(ll_parse(&r, n, &in) == EINVAL, "WRITE whose data runs past the request: EINVAL");

  struct { uint32_t size, flags; } sx = { 3, 1 /* XATTR_CREATE */ };
  an = lay(buf, &sx, sizeof(sx), "user.k", NULL);
  memcpy(buf + an, "v\0v", 3);
  n = make(&r, FUSE_SETXATTR, buf, an + 3);
  check(ll_parse(&r, n, &in) == 0 && strcmp(in.name, "user.k") == 0 && in.datalen == 3 &&
    memcmp(in.data, "v\0v", 3) == 0, "SETXATTR: 8-byte struct, the name, the value with its NUL byte");
  n = make(&r, FUSE_SETXATTR, buf, an + 2);
  check(ll_parse(&r, n, &in) == EINVAL, "SETXATTR whose value runs past the request: EINVAL");

  struct fuse_batch_forget_in bf = { 2, 0 };
  struct fuse_forget_one ones[2] = { { 10, 1 }, { 11, 3 } };
  memcpy(buf, &bf, sizeof(bf));
  memcpy(buf + sizeof(bf), ones, sizeof(ones));
  n = make(&r, FUSE_BATCH_FORGET, buf, sizeof(bf) + sizeof(ones));
  check(ll_parse(&r, n, &in) == 0 && in.datalen == sizeof(ones), "BATCH_FORGET: count entries");
  bf.count = 3;
  memcpy(buf, &bf, sizeof(bf));
  n = make(&r, FUSE_BATCH_FORGET, buf, sizeof(bf) + sizeof(ones));
  check(ll_parse(&r, n, &in) == EINVAL, "BATCH_FORGET counting more entries than sent: EINVAL");
  bf.count = 0x80000000u;
  memcpy(buf, &bf, sizeof(bf));
  n = make(&r, FUSE_BATCH_FORGET, buf, sizeof(bf) + sizeof(ones));
  check(ll_parse(&r, n, &in) == EINVAL, "BATCH_FORGET with a huge count: EINVAL, no overflow");

  struct fuse_getattr_in ga = { FUSE_GETATTR_FH, 0, 12 };
  n = make(&r, FUSE_GETATTR, &ga, sizeof(ga) - 1);
  check(ll_parse(&r, n, &in) == EINVAL, "GETATTR with fuse_getattr_in cut: EINVAL");
  n = make(&r, FUSE_GETATTR, &ga, sizeof(ga));
  check(ll_parse(&r, n, &in) == 0 && ((const struct fuse_getattr_in *) in.arg)->fh == 12, "GETATTR: the handle");

  struct ll_statx_in sxi = { FUSE_GETATTR_FH, 0, 9, 0, 0xfff };
  n = make(&r, LL_FUSE_STATX, &sxi, sizeof(sxi));
  check(sizeof(sxi) == 24 && ll_parse(&r, n, &in) == 0 && ((const struct ll_statx_in *) in.arg)->fh == 9, "STATX: 24 bytes, the handle");

  struct fuse_create_in cr = { 0101, 0644, 022, 0 };
  an = lay(buf, &cr, sizeof(cr), "/", NULL);
  n = make(&r, LL_FUSE_TMPFILE, buf, an);
  check(ll_parse(&r, n, &in) == 0 && strcmp(in.name, "/") == 0 && ((const struct fuse_create_in *) in.arg)->mode == 0644,
    "TMPFILE: fuse_create_in and the name \"/\"");

  n = make(&r, 1000, "xyz", 3);
  check(ll_parse(&r, n, &in) == 0 && in.arg == NULL && in.arglen == 3, "an unknown opcode parses (answered ENOSYS)");
  n = make(&r, FUSE_SETLK, "", 0);
  check(ll_parse(&r, n, &in) == 0 && in.arg == NULL, "SETLK is not parsed (ENOSYS)");

  check(ll_no_reply(FUSE_FORGET) && ll_no_reply(FUSE_BATCH_FORGET) && ll_no_reply(FUSE_INTERRUPT) &&
    ll_no_reply(FUSE_NOTIFY_REPLY) && !ll_no_reply(FUSE_LOOKUP) && !ll_no_reply(FUSE_DESTROY),
    "no reply to FORGET, BATCH_FORGET, INTERRUPT, NOTIFY_REPLY; a reply to the rest");
  check(strcmp(ll_opname(FUSE_LOOKUP), "LOOKUP") == 0 && strcmp(ll_opname(LL_FUSE_STATX), "STATX") == 0 &&
    strcmp(ll_opname(999), "?") == 0, "opcode names");
}

// Requests as the kernel lays them in an io_uring entry: the op's struct in op_in, names and
// data in the payload.
static void test_parse_ring (void) {
  static struct ll_uring_req_header hdr;
  char payload[256];
  ll_in_t in;
  struct fuse_in_header h = { 0, FUSE_LOOKUP, 42, 7, 0, 0, 0, 0, 0 };

  memset(&hdr, 0, sizeof(hdr));
  memcpy(hdr.in_out, &h, sizeof(h));
  memcpy(payload, "name", 5);
  check(ll_parse_ring(&hdr, payload, 5, &in) == 0 && in.h->unique == 42 && in.token == 42 && strcmp(in.name, "name") == 0 &&
    in.name == payload, "ring LOOKUP: the name from the payload");
  check(ll_parse_ring(&hdr, payload, 4, &in) == EINVAL, "ring LOOKUP without the name's NUL: EINVAL");

  h.opcode = FUSE_WRITE;
  memcpy(hdr.in_out, &h, sizeof(h));
  struct fuse_write_in w = { 3, 0, 5, 0, 0, 0, 0 };
  memcpy(hdr.op_in, &w, sizeof(w));
  memcpy(payload, "hello", 5);
  check(ll_parse_ring(&hdr, payload, 5, &in) == 0 && ((const struct fuse_write_in *) in.arg)->fh == 3 &&
    in.data == payload && in.datalen == 5, "ring WRITE: fuse_write_in in op_in, the data in the payload");
  check(ll_parse_ring(&hdr, payload, 4, &in) == EINVAL, "ring WRITE whose data runs past the payload: EINVAL");

  h.opcode = LL_FUSE_RENAME2;
  memcpy(hdr.in_out, &h, sizeof(h));
  struct fuse_rename2_in r2 = { 9, 2 /* RENAME_EXCHANGE */, 0 };
  memcpy(hdr.op_in, &r2, sizeof(r2));
  memcpy(payload, "a\0b", 4);
  check(ll_parse_ring(&hdr, payload, 4, &in) == 0 && ((const struct fuse_rename2_in *) in.arg)->flags == 2 &&
    strcmp(in.name, "a") == 0 && strcmp(in.name2, "b") == 0, "ring RENAME2: flags in op_in, both names in the payload");
  check(sizeof(hdr) == 288, "the ring entry's header buffer: 288 bytes");
  // A queue per possible CPU: one too few and the kernel holds every request (the mount hung).
  check(ll_cpu_list_count("0-1\n") == 2, "possible CPUs \"0-1\": 2 queues (not 1: no sign read into \"-1\")");
  check(ll_cpu_list_count("0-3,8-11\n") == 12 && ll_cpu_list_count("0\n") == 1 && ll_cpu_list_count("") == 0,
    "possible CPUs \"0-3,8-11\": 12; \"0\": 1; nothing: 0");
}

static void test_options (void) {
  ll_init_params_t p;
  check(ll_session_options("", &p) == 0 && p.flags == LL_FUSE_ASYNC_READ && p.max_write == 131072 &&
    p.proto_max == LL_MINOR_MAX && !p.debug, "no options: async reads, 128 KiB writes, the newest minor");
  check(ll_session_options("-obig_writes,max_write=65536,atomic_o_trunc,debug", &p) == 0 &&
    p.flags == (LL_FUSE_ASYNC_READ | LL_FUSE_BIG_WRITES | LL_FUSE_ATOMIC_O_TRUNC) && p.max_write == 65536 && p.debug,
    "big_writes, max_write, atomic_o_trunc, debug");
  check(ll_session_options("-osync_read,max_readahead=4096,max_background=20,congestion_threshold=15", &p) == 0 &&
    p.flags == 0 && p.max_readahead == 4096 && p.max_background == 20 && p.congestion_threshold == 15,
    "sync_read, max_readahead, max_background, congestion_threshold");
  check(ll_session_options("-obogus", &p) == EINVAL, "an unknown option: EINVAL");
  check(ll_session_options("-omax_write=12x", &p) == EINVAL, "a bad number: EINVAL");
  check(ll_session_options("-omax_write=", &p) == EINVAL, "an empty number: EINVAL");
  check(ll_session_options("-omax_background=70000", &p) == EINVAL, "max_background above 65535: EINVAL");
  check(ll_session_options("max_write=4096", &p) == EINVAL, "a list without -o: EINVAL");
}

// All the flags a kernel of 6.18 offers that concern us, and more.
#define OFFERED (LL_FUSE_ASYNC_READ | LL_FUSE_ATOMIC_O_TRUNC | LL_FUSE_BIG_WRITES | LL_FUSE_DO_READDIRPLUS | \
  LL_FUSE_READDIRPLUS_AUTO | LL_FUSE_PARALLEL_DIROPS | LL_FUSE_MAX_PAGES | LL_FUSE_CACHE_SYMLINKS | LL_FUSE_INIT_EXT | \
  (1u << 1) /* POSIX_LOCKS */ | (1u << 12) /* AUTO_INVAL_DATA */ | (1u << 10) /* FLOCK_LOCKS */)

static void test_negotiate (void) {
  ll_init_params_t p;
  ll_session_options("-obig_writes,max_write=131072,atomic_o_trunc", &p);
  ll_init_in_t k = { 7, 45, 131072, OFFERED, LL_FUSE_PASSTHROUGH2, { 0 } };
  ll_init_out_t out;
  size_t outlen;
  ll_negotiated_t neg;

  p.stack_depth = 1;
  check(ll_negotiate(&k, sizeof(k), &p, 4096, &out, &outlen, &neg) == 0 && out.major == 7 && out.minor == 40 &&
    outlen == 64 && neg.minor == 40, "7.45 kernel: we answer 7.40, 64 bytes");
  check(out.flags == 0x40c46029u, "7.40: the flags we answer today (as measured on the device: 0x40c46029)");
  check(out.max_pages == 256 && out.max_write == 1048576 && neg.max_write == 1048576, "7.40: 1 MiB requests");
  check(out.flags2 == LL_FUSE_PASSTHROUGH2 && out.max_stack_depth == 1 && neg.passthrough, "7.40: passthrough at depth 1");
  check(!(out.flags & ((1u << 1) | (1u << 10) | (1u << 12))), "never remote locks nor auto_inval_data");
  check(out.max_readahead == 131072, "the kernel's readahead");

  p.stack_depth = 0;
  check(ll_negotiate(&k, sizeof(k), &p, 4096, &out, &outlen, &neg) == 0 && !neg.passthrough && out.flags2 == 0 &&
    !(out.flags & LL_FUSE_INIT_EXT), "passthrough not wanted: neither asked for nor flags2");
  p.stack_depth = 1;

  k.minor = 37;
  check(ll_negotiate(&k, sizeof(k), &p, 4096, &out, &outlen, &neg) == 0 && out.minor == 37 && !neg.passthrough &&
    (out.flags & LL_FUSE_MAX_PAGES), "7.37 kernel (Linux 6.1): 7.37, no passthrough, 1 MiB requests");

  k.minor = 45;
  k.flags &= ~LL_FUSE_INIT_EXT;
  check(ll_negotiate(&k, sizeof(k), &p, 4096, &out, &outlen, &neg) == 0 && !neg.passthrough,
    "flags2 is ignored without FUSE_INIT_EXT");
  k.flags = OFFERED;
  check(ll_negotiate(&k, 16, &p, 4096, &out, &outlen, &neg) == 0 && !neg.passthrough && out.minor == 40,
    "a 16-byte INIT (before 7.36) has no flags2");

  p.proto_max = 19;
  check(ll_negotiate(&k, sizeof(k), &p, 4096, &out, &outlen, &neg) == 0 && out.minor == 19 && outlen == 24 &&
    out.flags == (LL_FUSE_ASYNC_READ | LL_FUSE_ATOMIC_O_TRUNC | LL_FUSE_BIG_WRITES) && out.max_write == 131072,
    "capped at 19: 24 bytes, libfuse 2.9's flags, 128 KiB writes");
  p.proto_max = 21;
  check(ll_negotiate(&k, sizeof(k), &p, 4096, &out, &outlen, &neg) == 0 && (out.flags & LL_FUSE_DO_READDIRPLUS) &&
    !(out.flags & LL_FUSE_MAX_PAGES), "capped at 21: READDIRPLUS, no max_pages");
  p.proto_max = 40;

  k.flags = OFFERED & ~LL_FUSE_MAX_PAGES;
  check(ll_negotiate(&k, sizeof(k), &p, 4096, &out, &outlen, &neg) == 0 && out.max_pages == 0 && out.max_write == 131072,
    "no max_pages offered: max_write from the options");
  k.flags = OFFERED;

  k.minor = 11;
  check(ll_negotiate(&k, sizeof(k), &p, 4096, &out, &outlen, &neg) == EPROTO, "a 7.11 kernel: EPROTO");
  k.minor = 45;
  k.major = 8;
  check(ll_negotiate(&k, sizeof(k), &p, 4096, &out, &outlen, &neg) == EPROTO, "major 8: EPROTO");
  k.major = 7;
  check(ll_negotiate(&k, 12, &p, 4096, &out, &outlen, &neg) == EINVAL, "an INIT cut short: EINVAL");
  p.uring = 1;
  check(ll_negotiate(&k, sizeof(k), &p, 4096, &out, &outlen, &neg) == 0 && !neg.uring && !(out.flags2 & LL_FUSE_OVER_IO_URING2),
    "io_uring wanted but not offered (enable_uring off): not asked for");
  k.flags2 |= LL_FUSE_OVER_IO_URING2;
  check(ll_negotiate(&k, sizeof(k), &p, 4096, &out, &outlen, &neg) == 0 && neg.uring && (out.flags2 & LL_FUSE_OVER_IO_URING2) &&
    (out.flags & LL_FUSE_INIT_EXT), "io_uring wanted and offered: flags2 bit 9");
  p.uring = 0;
  check(ll_negotiate(&k, sizeof(k), &p, 4096, &out, &outlen, &neg) == 0 && !neg.uring && !(out.flags2 & LL_FUSE_OVER_IO_URING2),
    "io_uring offered but not wanted: not asked for");
  k.flags2 &= ~LL_FUSE_OVER_IO_URING2;
  p.max_readahead = 4096;
  check(ll_negotiate(&k, sizeof(k), &p, 4096, &out, &outlen, &neg) == 0 && out.max_readahead == 4096, "max_readahead lowers the kernel's");
}

static void test_replies (void) {
  uint64_t sec;
  uint32_t nsec;
  ll_timeout(1.5, &sec, &nsec);
  check(sec == 1 && nsec == 500000000u, "timeout 1.5 s");
  ll_timeout(-3, &sec, &nsec);
  check(sec == 0 && nsec == 0, "a negative timeout is 0");
  ll_timeout(1e30, &sec, &nsec);
  check(sec == UINT64_MAX && nsec == 0, "a huge timeout saturates");

  struct stat st;
  memset(&st, 0, sizeof(st));
  st.st_ino = 123;
  st.st_mode = 0100644;
  st.st_nlink = 2;
  st.st_size = 5000;
  st.st_mtim.tv_sec = 1700000000;
  st.st_mtim.tv_nsec = 7;
  struct fuse_entry_out e;
  ll_entry_of(9, &st, 86400, 0.25, &e);
  check(e.nodeid == 9 && e.entry_valid == 86400 && e.attr_valid == 0 && e.attr_valid_nsec == 250000000u &&
    e.attr.ino == 123 && e.attr.mode == 0100644 && e.attr.nlink == 2 && e.attr.size == 5000 &&
    e.attr.mtime == 1700000000 && e.attr.mtimensec == 7, "an entry: node, timeouts, attributes");
  ll_entry_of(0, &st, 10, 10, &e);
  check(e.nodeid == 0 && e.entry_valid == 10 && e.attr.ino == 0 && e.attr.mode == 0, "a negative entry carries no attributes");

  struct ll_open_out o;
  ll_open_of(77, 2 | 4, 5, &o);
  check(o.fh == 77 && o.open_flags == (LL_FOPEN_KEEP_CACHE | LL_FOPEN_CACHE_DIR) && o.backing_id == 0,
    "an open: no backing id without passthrough");
  ll_open_of(78, 8 | 1, 5, &o);
  check(o.open_flags == (LL_FOPEN_PASSTHROUGH | LL_FOPEN_DIRECT_IO) && o.backing_id == 5, "an open passed through: its backing id");

  struct statx_timestamp bt = { 1600000000, 9, 0 };
  struct ll_statx_out sx;
  ll_statx_of(&st, 1, &bt, &sx);
  check(sizeof(sx.stat) == 256 && sizeof(sx) == 288 && (sx.stat.mask & STATX_BTIME) && sx.stat.btime.tv_sec == 1600000000 && sx.stat.ino == 123,
    "statx: 288 bytes (fuse_statx 256), the birth time");
  ll_statx_of(&st, 1, NULL, &sx);
  check(!(sx.stat.mask & STATX_BTIME) && (sx.stat.mask & STATX_BASIC_STATS) == STATX_BASIC_STATS, "statx without a birth time");

  struct statvfs sv;
  memset(&sv, 0, sizeof(sv));
  sv.f_bsize = 4096;
  sv.f_frsize = 1024;
  sv.f_blocks = 1000;
  sv.f_namemax = 255;
  struct fuse_statfs_out so;
  ll_statfs_of(&sv, &so);
  check(so.st.bsize == 4096 && so.st.frsize == 1024 && so.st.blocks == 1000 && so.st.namelen == 255, "statfs");

  check(ll_request_size(131072, 4096) == 135168 && ll_request_size(0, 4096) == 8192,
    "a read buffer holds max_write and a page, at least 8 KiB");
  check(sizeof(ll_init_out_t) == 64 && sizeof(ll_init_in_t) == 64 && sizeof(struct ll_open_out) == 16,
    "the layouts of 7.40: 64-byte INIT both ways, 16-byte open");
}

int main (void) {
  test_parse();
  test_parse_ring();
  test_options();
  test_negotiate();
  test_replies();
  printf("1..%d\n", checks);
  return failed ? 1 : 0;
}
