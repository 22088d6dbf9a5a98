// The FUSE protocol as layerfs speaks it: requests parsed, INIT negotiated, replies laid out.
// Pure functions on bytes (no N-API, no I/O, no session), so that they can be tested alone
// (test/native/protocol-test.c). lowlevel.c reads the device, dispatches and writes.
//
// Layouts up to 7.38 are the kernel's own UAPI header (linux/fuse.h from linux-libc-dev); what
// later minors add (STATX 7.39, passthrough 7.40) and the INIT layouts of 7.36 are named here,
// with an LL_ prefix, so that a newer header never clashes.
#ifndef LAYERFS_PROTOCOL_H
#define LAYERFS_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <linux/fuse.h>

// The oldest kernel protocol we answer: 7.12 (Linux 2.6.29). Below it request layouts differ
// (compat sizes), and no kernel of the last fifteen years speaks it.
#define LL_MINOR_MIN 12
// The newest we answer (the INIT reply is the lower of this, the kernel's and the session's cap).
#define LL_MINOR_MAX 40

// Opcodes of later minors than an old header may have.
#define LL_FUSE_READDIRPLUS 44
#define LL_FUSE_RENAME2 45
#define LL_FUSE_LSEEK 46
#define LL_FUSE_COPY_FILE_RANGE 47
#define LL_FUSE_SETUPMAPPING 48
#define LL_FUSE_REMOVEMAPPING 49
#define LL_FUSE_SYNCFS 50
#define LL_FUSE_TMPFILE 51
#define LL_FUSE_STATX 52

// INIT flags.
#define LL_FUSE_ASYNC_READ (1u << 0)
#define LL_FUSE_ATOMIC_O_TRUNC (1u << 3)
#define LL_FUSE_BIG_WRITES (1u << 5)
#define LL_FUSE_DO_READDIRPLUS (1u << 13)
#define LL_FUSE_READDIRPLUS_AUTO (1u << 14)
#define LL_FUSE_PARALLEL_DIROPS (1u << 18)
#define LL_FUSE_MAX_PAGES (1u << 22)
#define LL_FUSE_CACHE_SYMLINKS (1u << 23)
#define LL_FUSE_INIT_EXT (1u << 30)
#define LL_FUSE_PASSTHROUGH2 (1u << 5)  // FUSE_PASSTHROUGH (1ULL << 37), in flags2 (7.40)
#define LL_MAX_PAGES 256                // 1 MiB requests (the kernel's default fuse_max_pages_limit)

// fuse_init_in as of 7.36 (flags2 when FUSE_INIT_EXT is set); the kernel sends 16 bytes before.
typedef struct { uint32_t major, minor, max_readahead, flags, flags2, unused[11]; } ll_init_in_t;
// fuse_init_out as of 7.40 (64 bytes; 24 before 7.23).
typedef struct {
  uint32_t major, minor, max_readahead, flags;
  uint16_t max_background, congestion_threshold;
  uint32_t max_write, time_gran;
  uint16_t max_pages, map_alignment;
  uint32_t flags2, max_stack_depth, unused[6];
} ll_init_out_t;
#define LL_INIT_OUT_22_SIZE 24

// fuse_open_out of 7.40: backing_id was padding before.
struct ll_open_out { uint64_t fh; uint32_t open_flags; int32_t backing_id; };
#define LL_FOPEN_DIRECT_IO (1 << 0)
#define LL_FOPEN_KEEP_CACHE (1 << 1)
#define LL_FOPEN_CACHE_DIR (1 << 3)
#define LL_FOPEN_PASSTHROUGH (1 << 7)

// STATX (7.39).
struct ll_statx_in { uint32_t getattr_flags, reserved; uint64_t fh; uint32_t sx_flags, sx_mask; };
struct ll_sx_time { int64_t tv_sec; uint32_t tv_nsec; int32_t reserved; };
struct ll_statx {
  uint32_t mask, blksize;
  uint64_t attributes;
  uint32_t nlink, uid, gid;
  uint16_t mode, spare0;
  uint64_t ino, size, blocks, attributes_mask;
  struct ll_sx_time atime, btime, ctime, mtime;
  uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
  uint64_t spare2[14];
};
struct ll_statx_out { uint64_t attr_valid; uint32_t attr_valid_nsec, flags; uint64_t spare[2]; struct ll_statx stat; };

// Passthrough (7.40): FUSE_DEV_IOC_BACKING_OPEN / _CLOSE on the device.
struct ll_backing_map { int32_t fd; uint32_t flags; uint64_t padding; };
#define LL_DEV_IOC_BACKING_OPEN _IOW(229, 1, struct ll_backing_map)
#define LL_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

// ---- requests ---------------------------------------------------------------------------------
// One request, parsed where it lies in the read buffer (nothing is copied).
typedef struct {
  const struct fuse_in_header *h;
  const void *arg;      // the opcode's fixed struct (present in full), or NULL if it has none
  size_t arglen;        // the bytes after the header
  const char *name;     // the first name, NUL-terminated within the request; NULL if none
  const char *name2;    // the second: rename's new name, symlink's target
  const void *data;     // WRITE's data, SETXATTR's value
  size_t datalen;
  uint64_t token;       // what a reply is addressed by: the unique id, or the transport's own
} ll_in_t;

// Parses the request of n bytes at buf (one read(2) of the device). 0, or why it cannot be
// answered as it is: EIO (shorter than a header, or than its header says), EINVAL (the
// opcode's arguments are cut short, a name is not terminated, data runs past the end).
// Opcodes we do not parse (answered ENOSYS) parse with arg NULL.
int ll_parse (const void *buf, size_t n, ll_in_t *in);

// FUSE over io_uring (7.42): a request as the kernel lays it in a ring entry. The in-header
// and the opcode's struct (op_in) in the entry's header buffer, names and data in its payload.
#define LL_FUSE_OVER_IO_URING2 (1u << 9)  // FUSE_OVER_IO_URING (1ULL << 41), in flags2
#define LL_URING_CMD_REGISTER 1
#define LL_URING_CMD_COMMIT_AND_FETCH 2
struct ll_uring_ent_in_out { uint64_t flags, commit_id; uint32_t payload_sz, padding; uint64_t reserved; };
struct ll_uring_req_header {
  char in_out[128];     // fuse_in_header in, fuse_out_header out
  char op_in[128];
  struct ll_uring_ent_in_out ring_ent_in_out;
};
struct ll_uring_cmd_req { uint64_t flags, commit_id; uint16_t qid; uint8_t padding[6]; };

// Parses a request the kernel put in a ring entry (hdr, and payload_len bytes of payload).
// 0, or EINVAL as ll_parse. token: the unique id (the transport sets its own).
int ll_parse_ring (const struct ll_uring_req_header *hdr, const void *payload, size_t payload_len, ll_in_t *in);

// CPUs in a kernel CPU list ("0-1", "0-3,8-11", "0"): the highest number and one; 0 for none.
// FUSE over io_uring has a queue per possible CPU (/sys/devices/system/cpu/possible).
unsigned ll_cpu_list_count (const char *list);

// Whether the kernel expects no reply to this opcode (FORGET, BATCH_FORGET, INTERRUPT, NOTIFY_REPLY).
int ll_no_reply (uint32_t opcode);

// The opcode's name, for the debug trace ("LOOKUP"); "?" if unknown.
const char *ll_opname (uint32_t opcode);

// ---- INIT -------------------------------------------------------------------------------------
typedef struct {
  uint32_t proto_max;          // the highest minor to answer with (LL_MINOR_MIN..LL_MINOR_MAX)
  uint32_t stack_depth;        // passthrough wanted, with this max_stack_depth; 0: not wanted
  uint32_t max_write;          // below 7.28 or without max_pages: the largest WRITE (session option)
  uint32_t max_readahead;      // 0: the kernel's
  uint32_t flags;              // of ASYNC_READ, ATOMIC_O_TRUNC, BIG_WRITES: those the options ask for
  uint16_t max_background, congestion_threshold;  // 0: the kernel's defaults
  int debug;                   // trace requests and replies on stderr
  int uring;                   // FUSE over io_uring wanted (where the kernel offers it)
} ll_init_params_t;

// Session options: "-o" followed by a comma-separated list, or "" (libfuse 2.9's names: debug,
// big_writes, atomic_o_trunc, async_read, sync_read, no_remote_lock, max_write=N,
// max_readahead=N, max_background=N, congestion_threshold=N). Fills p's defaults first.
// 0, or EINVAL for an option it does not know.
int ll_session_options (const char *opts, ll_init_params_t *p);

// What a negotiated INIT gives the session.
typedef struct {
  uint32_t minor, max_write, flags;
  int passthrough;
  int uring;                   // FUSE over io_uring: requests come on rings once they are registered
} ll_negotiated_t;

// The reply to the INIT request's arguments (arg, len bytes): 0 with out (*outlen bytes of it
// to send) and what was negotiated; or EPROTO for a kernel we cannot speak to (major not 7,
// minor below LL_MINOR_MIN), or EINVAL for a request cut short.
int ll_negotiate (const void *arg, size_t len, const ll_init_params_t *p, size_t page_size,
    ll_init_out_t *out, size_t *outlen, ll_negotiated_t *neg);

// The largest request a session can be sent (its read buffer): max_write and a page for the
// header and WRITE's arguments.
size_t ll_request_size (uint32_t max_write, size_t page_size);

// ---- replies ----------------------------------------------------------------------------------
// A cache timeout in seconds as the kernel takes it (negative: 0).
void ll_timeout (double t, uint64_t *sec, uint32_t *nsec);
void ll_attr_of (const struct stat *st, struct fuse_attr *a);
void ll_entry_of (uint64_t nodeid, const struct stat *st, double entry_timeout, double attr_timeout, struct fuse_entry_out *o);
void ll_attr_out_of (const struct stat *st, double attr_timeout, struct fuse_attr_out *o);
void ll_statfs_of (const struct statvfs *sv, struct fuse_statfs_out *o);
void ll_statx_of (const struct stat *st, double timeout, const struct statx_timestamp *btime, struct ll_statx_out *o);
// openFlags of JS (1 direct_io, 2 keep_cache, 4 cache_dir, 8 passthrough) as fuse_open_out.
void ll_open_of (uint64_t fh, uint32_t flags, int32_t backing_id, struct ll_open_out *o);

#endif
