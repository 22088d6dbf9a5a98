// layerfs's FUSE session: the kernel's FUSE protocol spoken from Node.js. Its own addon
// (binding.gyp here, built by scripts/build-native.sh into build/Release/lowlevel.node, loaded
// by src/fuse/native-module.ts). See native-notes/lowlevel-binding.md for why it exists.
//
// What is ours: reading requests from /dev/fuse, parsing them (protocol.c), negotiating INIT,
// answering, and the notifications. What libfuse 2.9 (the library fuse-native links, from
// fuse-shared-library) still does: fuse_mount and fuse_unmount only, that is, running
// fusermount (unprivileged mounts, auto_unmount) and handing us the device's descriptor.
//
// The kernel sees one node id per *union inode* (chosen by JS), not one per path as with the
// high-level API: hard links share one kernel inode, so attributes can be cached.
//
// Threads. By default the JS thread reads the requests itself: the /dev/fuse descriptor is
// non-blocking and watched by libuv (ll_poll_cb); when it is readable, requests are read and
// processed until none is left (at most LL_POLL_BATCH), then handed to JS. The kernel wakes
// the thread that answers, as in fuse-overlayfs's loop: one thread hop per request, not two.
// With `threaded` (LAYERFS_FUSE_THREAD=1) a FUSE thread of its own reads them (ll_thread) and
// wakes the JS thread with uv_async_send() for each; READ and WRITE then go on while JS is busy.
// Either way, READ, WRITE, FALLOCATE, LSEEK and COPY_FILE_RANGE are answered in C where they
// are read, on the real file's descriptor (see ll_read); every other request's handler copies
// what it needs (names, xattr values) into one malloc'd block and appends it to a queue; the JS
// thread drains the queue, calls the JS dispatcher once per request, and JS answers with the
// ll_reply_* functions below, synchronously or later, by the request's unique id. FORGET is
// answered where it is read (it has no reply) and only reported.
//
// Protocol: see "protocol" below (FUSE 7.12 to 7.40; protocol.c has the layouts).

#define FUSE_USE_VERSION 29

#include <uv.h>
#include <node_api.h>
#include <napi-macros.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <fuse_lowlevel.h>

#include "protocol.h"
#include "uring.h"
#include "values.h"

#define LL_OP_INIT 0
#define LL_OP_LOOKUP 1
#define LL_OP_FORGET 2
#define LL_OP_GETATTR 3
#define LL_OP_SETATTR 4
#define LL_OP_READLINK 5
#define LL_OP_MKNOD 6
#define LL_OP_MKDIR 7
#define LL_OP_UNLINK 8
#define LL_OP_RMDIR 9
#define LL_OP_SYMLINK 10
#define LL_OP_RENAME 11
#define LL_OP_LINK 12
#define LL_OP_OPEN 13
#define LL_OP_READ 14
#define LL_OP_WRITE 15
#define LL_OP_FLUSH 16
#define LL_OP_RELEASE 17
#define LL_OP_FSYNC 18
#define LL_OP_OPENDIR 19
#define LL_OP_READDIR 20
#define LL_OP_RELEASEDIR 21
#define LL_OP_FSYNCDIR 22
#define LL_OP_STATFS 23
#define LL_OP_SETXATTR 24
#define LL_OP_GETXATTR 25
#define LL_OP_LISTXATTR 26
#define LL_OP_REMOVEXATTR 27
#define LL_OP_CREATE 28
#define LL_OP_FALLOCATE 29
#define LL_OP_EXIT 30
#define LL_OP_READDIRPLUS 31
#define LL_OP_TMPFILE 32
#define LL_OP_STATX 33

// Arguments handed to the JS dispatcher, in this order.
#define LL_ARGC 16

// setattr's to_set bits as JS takes them (libfuse's FUSE_SET_ATTR_*: the kernel's FATTR_* of
// the same values, without FATTR_FH and FATTR_LOCKOWNER).
#define LL_SETATTR_BITS (FATTR_MODE | FATTR_UID | FATTR_GID | FATTR_SIZE | FATTR_ATIME | FATTR_MTIME | \
  FATTR_ATIME_NOW | FATTR_MTIME_NOW)

typedef struct ll_req {
  struct ll_req *next;
  uint64_t token;    // what the reply is addressed by (the unique id, or a ring entry's); 0: none
  uint32_t op;
  uint64_t ino;      // the node the request is about (the parent for name ops)
  uint64_t ino2;     // rename's new parent, link's new parent
  uint64_t fh;
  int has_fh;
  int64_t off;       // read/write/readdir offset
  uint64_t size;     // read/readdir/xattr size, nlookup for forget
  uint32_t flags;    // open flags, setxattr flags, rename flags, datasync
  uint32_t mode;     // create/mkdir/mknod mode, setattr to_set
  uint32_t rdev;
  struct stat attr;  // setattr's values
  uint32_t uid, gid, pid, umask;
  char *name; size_t namelen;
  char *name2; size_t name2len;   // rename/link new name, symlink target, setxattr value
} ll_req_t;

typedef struct {
  struct fuse_chan *ch;     // fuse_mount's channel: owns the /dev/fuse descriptor
  int fd;                   // that descriptor
  ll_init_params_t params;  // what we ask INIT for (session options, protocol cap, passthrough)
  int initialized;          // INIT is answered
  int ended;                // the device has nothing more to give (unmounted or aborted)
  int passthrough;          // INIT negotiated FUSE_PASSTHROUGH (see "passthrough" below)
  uint64_t next_dir_fh;     // the last directory handle given (ll_opendir)
  int threaded;             // 1: a FUSE thread reads requests; 0: the JS thread polls the device
  pthread_t thread;
  uv_async_t async;         // threaded: wakes the JS thread
  uv_poll_t poll;           // not threaded: the device is readable
  int polling;
  uint64_t spin_ns;         // not threaded: how long to wait awake for the next request
  char *rbuf;               // the request buffer (of the thread that reads)
  size_t rbuf_size;
  uv_mutex_t lock;
  ll_req_t *head, *tail;
  napi_env env;
  napi_async_context actx;  // for the callback scope of each drain
  napi_ref dispatch;
  napi_ref statbuf_ref;
  uint32_t *statbuf;        // JS's Uint32Array(STAT_INTS): the stat of the reply being made
  int exited;               // the FUSE loop has ended: replies are dropped
  int closed;
  int64_t outstanding;      // requests handed to JS and not yet answered
  uint64_t answered;        // requests answered in JS, ever (ll_poll_cb: whether a round answered any)
  uint64_t handed;          // requests handed to JS, ever
  char *iobuf;              // the reading thread's READ buffer
  size_t iobuf_size;
  // what INIT negotiated
  uint32_t proto_minor, max_write, want;
  struct ll_notifier *notifier;  // entry invalidations off the JS thread (started on first use)
  // Nodes without security.capability (see "capability probes" below), under nocap_lock.
  uv_mutex_t nocap_lock;
  struct ll_nodeset { uint64_t *keys; size_t cap, n; } nocap;
  uint64_t xattr_seq;       // SETXATTRs read so far
  // FUSE over io_uring (see "io_uring" below); all of it on the JS thread.
  ll_uring_t ring;
  int ring_on;              // the ring is set up and polled
  uv_poll_t ring_poll;
  struct ll_ring_ent *ents; // nqueues * depth entries
  unsigned nents, nqueues;
  size_t ring_payload;      // each entry's payload buffer
  unsigned ring_live;       // entries with a command in the kernel
  int ring_batch;           // replies wait for the end of the round to be submitted together
  int closing;              // uv handles still to close before the session is freed
} ll_session_t;

// ---- capability probes ----------------------------------------------------------------------
// Before each write(2) the kernel asks whether the file has security.capability (a write drops
// it: file_remove_privs), and a FUSE superblock never marks an inode as checked (no SB_NOSEC),
// so every write of a file costs a GETXATTR round trip to JS: 1,850 of the 5,952 requests of
// a `make -j2` of 200 objects. JS tells us which nodes have none (ll_no_capability: a file it
// just created, or a node it has just answered ENODATA for), and those probes are answered
// here. A node leaves the set when a SETXATTR for it is read (before JS sees it) or the kernel
// forgets it. A mark races with a SETXATTR that JS has not handled yet: JS passes the
// xattr_seq the request was read at (its `off`), and a mark made after any later SETXATTR is
// dropped. Nothing else gives a file security.capability: copy-up copies the lower file's
// (which answered the same), and node ids are never reused.
static int ll_nodeset_find (struct ll_nodeset *set, uint64_t key, size_t *at) {
  if (set->cap == 0) return 0;
  size_t mask = set->cap - 1, i = (size_t) (key * 0x9E3779B97F4A7C15ull) & mask;
  for (; set->keys[i] != 0; i = (i + 1) & mask) {
    if (set->keys[i] == key) { *at = i; return 1; }
  }
  *at = i;
  return 0;
}

static void ll_nodeset_add (struct ll_nodeset *set, uint64_t key) {
  size_t at = 0;
  if (key == 0 || ll_nodeset_find(set, key, &at)) return;
  if ((set->n + 1) * 2 > set->cap) {
    size_t cap = set->cap ? set->cap * 2 : 1024;
    uint64_t *keys = (uint64_t *) calloc(cap, sizeof(uint64_t));
    if (keys == NULL) return; // not marked: the probe goes to JS
    struct ll_nodeset grown = { keys, cap, 0 };
    for (size_t i = 0; i < set->cap; i++) {
      if (set->keys[i] != 0 && !ll_nodeset_find(&grown, set->keys[i], &at)) { keys[at] = set->keys[i]; grown.n++; }
    }
    free(set->keys);
    *set = grown;
    ll_nodeset_find(set, key, &at);
  }
  set->keys[at] = key;
  set->n++;
}

// Linear probing: the entries after a removed one move back into the gap (no tombstones).
static void ll_nodeset_remove (struct ll_nodeset *set, uint64_t key) {
  size_t at = 0;
  if (!ll_nodeset_find(set, key, &at)) return;
  size_t mask = set->cap - 1, gap = at;
  set->keys[gap] = 0;
  set->n--;
  for (size_t i = (gap + 1) & mask; set->keys[i] != 0; i = (i + 1) & mask) {
    size_t home = (size_t) (set->keys[i] * 0x9E3779B97F4A7C15ull) & mask;
    // The entry at i may fill the gap unless its home lies cyclically in (gap, i].
    if (((i - home) & mask) >= ((i - gap) & mask)) {
      set->keys[gap] = set->keys[i];
      set->keys[i] = 0;
      gap = i;
    }
  }
}

static const char ll_capability[] = "security.capability";

// ---- replies --------------------------------------------------------------------------------
// One reply: fuse_out_header and the payload, in one writev (the kernel takes a reply in one
// write). err: a positive errno, or 0. From any thread: each reply is one system call. A reply
// to a request that came on the ring (its token has LL_RING_TAG) goes back on the ring.
#define LL_RING_TAG (1ull << 52)
static int ll_ring_reply (ll_session_t *s, uint64_t token, int err, const struct iovec *payload, int n);

// One message to the device: fuse_out_header (error: -errno, 0, or a notification's code) and
// up to three payload pieces, in one writev. 0 or -errno; *len: the bytes written or meant.
static int ll_write_msg (int fd, int32_t error, uint64_t unique, const struct iovec *payload, int n, size_t *len) {
  struct fuse_out_header oh;
  struct iovec v[4] = { { &oh, sizeof(oh) } };
  size_t total = sizeof(oh);
  int count = 1;
  for (int i = 0; i < n && count < 4; i++) {
    v[count++] = payload[i];
    total += payload[i].iov_len;
  }
  oh.len = (uint32_t) total;
  oh.error = error;
  oh.unique = unique;
  if (len) *len = total;
  ssize_t w;
  do w = writev(fd, v, count); while (w < 0 && errno == EINTR);
  return w < 0 ? -errno : 0;
}

static int ll_send (ll_session_t *s, uint64_t unique, int err, const struct iovec *payload, int n) {
  if (err < 0 || err >= 1000) {
    fprintf(stderr, "layerfs: not an errno: %d, answered ERANGE\n", err);
    err = ERANGE;
  }
  if (unique & LL_RING_TAG) return ll_ring_reply(s, unique, err, payload, n);
  size_t len = 0;
  int r = ll_write_msg(s->fd, -err, unique, payload, err ? 0 : n, &len);
  if (s->params.debug) fprintf(stderr, "   unique: %" PRIu64 ", %s: %d, outsize: %zu\n", unique, err ? "error" : "success", -err, len);
  // ENOENT: the request was interrupted and is gone; ENODEV: the connection has ended.
  if (r < 0 && r != -ENOENT && r != -ENODEV && !s->ended) fprintf(stderr, "layerfs: writing the FUSE device: %s\n", strerror(-r));
  return r;
}

static void ll_reply_data (ll_session_t *s, uint64_t token, const void *arg, size_t size) {
  struct iovec v = { (void *) arg, size };
  ll_send(s, token, 0, &v, size ? 1 : 0);
}

// err 0: success without a payload.
static void ll_reply_errno (ll_session_t *s, uint64_t token, int err) {
  ll_send(s, token, err, NULL, 0);
}

// A notification (unique 0, the code in the error field); 0 or -errno.
static int ll_notify (ll_session_t *s, int code, const struct iovec *payload, int n) {
  if (s->proto_minor < 12) return -ENOSYS;
  return ll_write_msg(s->fd, code, 0, payload, n, NULL);
}

static void ll_enqueue (ll_session_t *s, ll_req_t *r) {
  r->next = NULL;
  uv_mutex_lock(&s->lock);
  if (s->tail) s->tail->next = r;
  else s->head = r;
  s->tail = r;
  uv_mutex_unlock(&s->lock);
  if (s->threaded) uv_async_send(&s->async);
}

// One block: the struct, then the names and data it points to (NUL-terminated copies). in:
// the request it answers (its id and caller), or NULL for one that JS only hears of.
static ll_req_t * ll_new (const ll_in_t *in, uint32_t op, uint64_t ino,
    const char *name, const char *name2, size_t name2len) {
  size_t nl = name ? strlen(name) : 0;
  size_t n2 = name2 ? name2len : 0;
  ll_req_t *r = (ll_req_t *) calloc(1, sizeof(ll_req_t) + (name ? nl + 1 : 0) + (name2 ? n2 + 1 : 0));
  if (r == NULL) return NULL;
  char *p = (char *) (r + 1);
  r->op = op;
  r->ino = ino;
  if (name) { r->name = p; memcpy(p, name, nl + 1); r->namelen = nl; p += nl + 1; }
  if (name2) { r->name2 = p; memcpy(p, name2, n2); p[n2] = 0; r->name2len = n2; }
  if (in) {
    r->token = in->token;
    r->uid = in->h->uid;
    r->gid = in->h->gid;
    r->pid = in->h->pid;
  }
  return r;
}

#define LL_NEW_OR_FAIL(r, s, in, ...) \
  ll_req_t *r = ll_new(in, __VA_ARGS__); \
  if (r == NULL) { ll_reply_errno(s, (in)->token, ENOMEM); return; }

#define LL_ARG(type, in) ((const type *) (in)->arg)

static void ll_lookup (ll_session_t *s, const ll_in_t *in) {
  LL_NEW_OR_FAIL(r, s, in, LL_OP_LOOKUP, in->h->nodeid, in->name, NULL, 0)
  ll_enqueue(s, r);
}

static void ll_forget_one (ll_session_t *s, uint64_t ino, uint64_t nlookup) {
  uv_mutex_lock(&s->nocap_lock);
  ll_nodeset_remove(&s->nocap, ino);
  uv_mutex_unlock(&s->nocap_lock);
  ll_req_t *r = ll_new(NULL, LL_OP_FORGET, ino, NULL, NULL, 0);
  if (r == NULL) return; // the node stays known: a leak, never a wrong answer
  r->size = nlookup;
  ll_enqueue(s, r);
}

static void ll_forget (ll_session_t *s, const ll_in_t *in) {
  ll_forget_one(s, in->h->nodeid, LL_ARG(struct fuse_forget_in, in)->nlookup);
}

static void ll_batch_forget (ll_session_t *s, const ll_in_t *in) {
  const struct fuse_forget_one *f = (const struct fuse_forget_one *) in->data;
  size_t n = in->datalen / sizeof(*f);
  for (size_t i = 0; i < n; i++) {
    struct fuse_forget_one one;
    memcpy(&one, f + i, sizeof(one));  // the read buffer promises no alignment
    ll_forget_one(s, one.nodeid, one.nlookup);
  }
}

// ---- attributes of open files ---------------------------------------------------------------
// A write makes the kernel drop the size and times it caches (no writeback cache), so the next
// read past the old size or lseek(SEEK_END) sends a GETATTR with the file's handle (fstat(2)
// sends none): ~1,000 of the requests of a `make -j2` of 200 objects, as `as` reads back what
// it wrote. For a handle JS registered (ll_fh_attr: a regular file open for writing in the
// upper layer, owners not mapped), the union's attributes are the real file's with the union's
// inode number, so they are answered here from an fstat of the handle's descriptor. Keyed by
// descriptor: cleared when one is made for the kernel (ll_dup_fd: a number may come back) and
// before JS closes or retargets one.
typedef struct { uint64_t ino; double timeout; } ll_fh_attr_t;
static ll_fh_attr_t *ll_fh_attrs;
static size_t ll_fh_attrs_n;
static uv_mutex_t ll_fh_lock;
static uv_once_t ll_fh_once = UV_ONCE_INIT;

static void ll_fh_init (void) { uv_mutex_init(&ll_fh_lock); }

static void ll_fh_attr_set (int fd, uint64_t ino, double timeout) {
  if (fd < 0) return;
  uv_once(&ll_fh_once, ll_fh_init);
  uv_mutex_lock(&ll_fh_lock);
  if ((size_t) fd >= ll_fh_attrs_n) {
    size_t n = ll_fh_attrs_n ? ll_fh_attrs_n : 256;
    while (n <= (size_t) fd) n *= 2;
    ll_fh_attr_t *a = (ll_fh_attr_t *) realloc(ll_fh_attrs, n * sizeof(ll_fh_attr_t));
    if (a == NULL) { uv_mutex_unlock(&ll_fh_lock); return; } // not registered: GETATTR goes to JS
    memset(a + ll_fh_attrs_n, 0, (n - ll_fh_attrs_n) * sizeof(ll_fh_attr_t));
    ll_fh_attrs = a;
    ll_fh_attrs_n = n;
  }
  ll_fh_attrs[fd].ino = ino;
  ll_fh_attrs[fd].timeout = timeout;
  uv_mutex_unlock(&ll_fh_lock);
}

static void ll_fh_attr_clear (int fd) {
  uv_once(&ll_fh_once, ll_fh_init);
  uv_mutex_lock(&ll_fh_lock);
  if (fd >= 0 && (size_t) fd < ll_fh_attrs_n) ll_fh_attrs[fd].ino = 0;
  uv_mutex_unlock(&ll_fh_lock);
}

static int ll_fh_attr_get (int fd, ll_fh_attr_t *out) {
  uv_once(&ll_fh_once, ll_fh_init);
  uv_mutex_lock(&ll_fh_lock);
  int found = fd >= 0 && (size_t) fd < ll_fh_attrs_n && ll_fh_attrs[fd].ino != 0;
  if (found) *out = ll_fh_attrs[fd];
  uv_mutex_unlock(&ll_fh_lock);
  return found;
}

// A node's own descriptor for GETATTRs without a handle (stat(2) and fstat(2) send none): JS
// registers one (ll_node_fd, a dup registered with ll_fh_attr) while files of the node are
// passed through, when it gives no attribute timeout for them (ll-ops.ts #attrTimeout): each
// stat of such a file is then answered here. A short array sorted by node (the files open in
// passthrough), under ll_fh_lock.
typedef struct { uint64_t node; int fd; } ll_node_fd_t;
static ll_node_fd_t *ll_node_fds;
static size_t ll_node_fds_n, ll_node_fds_cap;

// Where node is, or would go, in ll_node_fds (under ll_fh_lock).
static size_t ll_node_fd_at (uint64_t node) {
  size_t lo = 0, hi = ll_node_fds_n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ll_node_fds[mid].node < node) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// fd < 0 forgets the node's.
static void ll_node_fd_set (uint64_t node, int fd) {
  uv_once(&ll_fh_once, ll_fh_init);
  uv_mutex_lock(&ll_fh_lock);
  size_t at = ll_node_fd_at(node);
  int there = at < ll_node_fds_n && ll_node_fds[at].node == node;
  if (fd < 0) {
    if (there) memmove(&ll_node_fds[at], &ll_node_fds[at + 1], (ll_node_fds_n - at - 1) * sizeof(ll_node_fd_t)), ll_node_fds_n--;
  } else if (there) {
    ll_node_fds[at].fd = fd;
  } else {
    if (ll_node_fds_n == ll_node_fds_cap) {
      size_t cap = ll_node_fds_cap ? ll_node_fds_cap * 2 : 64;
      ll_node_fd_t *grown = (ll_node_fd_t *) realloc(ll_node_fds, cap * sizeof(ll_node_fd_t));
      if (grown == NULL) { uv_mutex_unlock(&ll_fh_lock); return; } // its GETATTRs go to JS
      ll_node_fds = grown;
      ll_node_fds_cap = cap;
    }
    memmove(&ll_node_fds[at + 1], &ll_node_fds[at], (ll_node_fds_n - at) * sizeof(ll_node_fd_t));
    ll_node_fds[at].node = node;
    ll_node_fds[at].fd = fd;
    ll_node_fds_n++;
  }
  uv_mutex_unlock(&ll_fh_lock);
}

// The attributes of a registered descriptor: the handle's (fd >= 0), else the node's own; its
// fstat (and statx with sx) and what ll_fh_attr registered. Under the lock throughout, so that
// JS cannot clear and close the descriptor (ll_close_fd) and another file take its number in
// between (the FUSE thread, LAYERFS_FUSE_THREAD=1, runs beside JS).
static int ll_registered_attr (int fd, uint64_t node, ll_fh_attr_t *fa, struct stat *st, struct statx *sx) {
  uv_once(&ll_fh_once, ll_fh_init);
  uv_mutex_lock(&ll_fh_lock);
  if (fd < 0 || (size_t) fd >= ll_fh_attrs_n || ll_fh_attrs[fd].ino == 0) {
    size_t at = ll_node_fd_at(node);
    fd = at < ll_node_fds_n && ll_node_fds[at].node == node ? ll_node_fds[at].fd : -1;
  }
  int ok = fd >= 0 && (size_t) fd < ll_fh_attrs_n && ll_fh_attrs[fd].ino != 0 &&
    (sx == NULL || statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME, sx) == 0) &&
    fstat(fd, st) == 0 && S_ISREG(st->st_mode);
  if (ok) *fa = ll_fh_attrs[fd];
  uv_mutex_unlock(&ll_fh_lock);
  return ok;
}

static void ll_reply_statx_of (ll_session_t *s, uint64_t token, const struct stat *st, double timeout, const struct statx_timestamp *btime) {
  struct ll_statx_out out;
  ll_statx_of(st, timeout, btime, &out);
  ll_reply_data(s, token, &out, sizeof(out));
}

static void ll_reply_attr_of (ll_session_t *s, uint64_t token, const struct stat *st, double timeout) {
  struct fuse_attr_out out;
  ll_attr_out_of(st, timeout, &out);
  ll_reply_data(s, token, &out, sizeof(out));
}

// GETATTR, and STATX (7.39): what GETATTR answers and the birth time.
static void ll_getattr (ll_session_t *s, const ll_in_t *in, int statx) {
  ll_fh_attr_t fa;
  struct stat st;
  uint64_t ino = in->h->nodeid, fh;
  uint32_t gflags;
  if (statx) { gflags = LL_ARG(struct ll_statx_in, in)->getattr_flags; fh = LL_ARG(struct ll_statx_in, in)->fh; }
  else { gflags = LL_ARG(struct fuse_getattr_in, in)->getattr_flags; fh = LL_ARG(struct fuse_getattr_in, in)->fh; }
  // The kernel sent the handle (FUSE_GETATTR_FH, regular files only); else the node's own
  // descriptor, if it has one.
  int has_fh = (gflags & FUSE_GETATTR_FH) != 0;
  int fd = has_fh ? (int) fh : -1;
  if (statx) {
    // From the descriptor as below, with statx(2) for the birth time; else JS.
    struct statx sx;
    if (ll_registered_attr(fd, ino, &fa, &st, &sx)) {
      st.st_ino = fa.ino;
      ll_reply_statx_of(s, in->token, &st, fa.timeout, (sx.stx_mask & STATX_BTIME) ? &sx.stx_btime : NULL);
      return;
    }
  } else if (ll_registered_attr(fd, ino, &fa, &st, NULL)) {
    st.st_ino = fa.ino;
    st.st_dev = 0;
    ll_reply_attr_of(s, in->token, &st, fa.timeout);
    return;
  }
  LL_NEW_OR_FAIL(r, s, in, statx ? LL_OP_STATX : LL_OP_GETATTR, ino, NULL, NULL, 0)
  if (has_fh) { r->fh = fh; r->has_fh = 1; }
  ll_enqueue(s, r);
}

static void ll_setattr (ll_session_t *s, const ll_in_t *in) {
  const struct fuse_setattr_in *a = LL_ARG(struct fuse_setattr_in, in);
  LL_NEW_OR_FAIL(r, s, in, LL_OP_SETATTR, in->h->nodeid, NULL, NULL, 0)
  r->attr.st_mode = a->mode;
  r->attr.st_uid = a->uid;
  r->attr.st_gid = a->gid;
  r->attr.st_size = (off_t) a->size;
  r->attr.st_atim.tv_sec = (time_t) a->atime;
  r->attr.st_atim.tv_nsec = a->atimensec;
  r->attr.st_mtim.tv_sec = (time_t) a->mtime;
  r->attr.st_mtim.tv_nsec = a->mtimensec;
  r->mode = a->valid & LL_SETATTR_BITS;
  if (a->valid & FATTR_FH) { r->fh = a->fh; r->has_fh = 1; }
  ll_enqueue(s, r);
}

static void ll_mknod (ll_session_t *s, const ll_in_t *in) {
  const struct fuse_mknod_in *a = LL_ARG(struct fuse_mknod_in, in);
  LL_NEW_OR_FAIL(r, s, in, LL_OP_MKNOD, in->h->nodeid, in->name, NULL, 0)
  r->mode = a->mode;
  r->rdev = a->rdev;
  r->umask = a->umask;
  ll_enqueue(s, r);
}

static void ll_mkdir (ll_session_t *s, const ll_in_t *in) {
  const struct fuse_mkdir_in *a = LL_ARG(struct fuse_mkdir_in, in);
  LL_NEW_OR_FAIL(r, s, in, LL_OP_MKDIR, in->h->nodeid, in->name, NULL, 0)
  r->mode = a->mode;
  r->umask = a->umask;
  ll_enqueue(s, r);
}

// UNLINK, RMDIR, READLINK, STATFS: the node (or parent) and perhaps a name.
static void ll_simple (ll_session_t *s, const ll_in_t *in, uint32_t op) {
  LL_NEW_OR_FAIL(r, s, in, op, in->h->nodeid, in->name, NULL, 0)
  ll_enqueue(s, r);
}

// SYMLINK: the new name, then the target.
static void ll_symlink (ll_session_t *s, const ll_in_t *in) {
  LL_NEW_OR_FAIL(r, s, in, LL_OP_SYMLINK, in->h->nodeid, in->name, in->name2, strlen(in->name2))
  ll_enqueue(s, r);
}

// RENAME and RENAME2 (7.23: NOREPLACE, EXCHANGE, WHITEOUT; JS decides which it does).
static void ll_rename (ll_session_t *s, const ll_in_t *in, uint64_t newdir, uint32_t flags) {
  LL_NEW_OR_FAIL(r, s, in, LL_OP_RENAME, in->h->nodeid, in->name, in->name2, strlen(in->name2))
  r->ino2 = newdir;
  r->flags = flags;
  ll_enqueue(s, r);
}

// LINK: the header's node is the new parent; the struct names the node linked.
static void ll_link (ll_session_t *s, const ll_in_t *in) {
  LL_NEW_OR_FAIL(r, s, in, LL_OP_LINK, LL_ARG(struct fuse_link_in, in)->oldnodeid, NULL, in->name, strlen(in->name))
  r->ino2 = in->h->nodeid;
  ll_enqueue(s, r);
}

static void ll_open (ll_session_t *s, const ll_in_t *in) {
  LL_NEW_OR_FAIL(r, s, in, LL_OP_OPEN, in->h->nodeid, NULL, NULL, 0)
  r->flags = LL_ARG(struct fuse_open_in, in)->flags;
  ll_enqueue(s, r);
}

// Data goes between the kernel and the real file in this thread: the handle the kernel holds
// (fh) is a descriptor of the real file that JS gave us at open (ll_dup_fd), never a JS
// object, so READ and WRITE never wait for the JS thread. JS swaps the file behind it with
// dup2 when a lower file is copied up (ll_retarget_fd), and closes it at release.
static char *ll_ring_buffer (ll_session_t *s, uint64_t token, size_t size);

static void ll_read (ll_session_t *s, const ll_in_t *in) {
  const struct fuse_read_in *a = LL_ARG(struct fuse_read_in, in);
  size_t size = a->size;
  // Read straight into the ring entry's payload buffer when the request came on the ring.
  char *buf = ll_ring_buffer(s, in->token, size);
  if (buf == NULL && size > s->iobuf_size) {
    char *b = (char *) realloc(s->iobuf, size);
    if (b == NULL) { ll_reply_errno(s, in->token, ENOMEM); return; }
    s->iobuf = b;
    s->iobuf_size = size;
  }
  if (buf == NULL) buf = s->iobuf;
  size_t done = 0;
  while (done < size) {
    ssize_t n = pread((int) a->fh, buf + done, size - done, (off_t) a->offset + (off_t) done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { ll_reply_errno(s, in->token, errno); return; }
    if (n == 0) break;
    done += (size_t) n;
  }
  ll_reply_data(s, in->token, buf, done);
}

// ---- S_ISGID without group-exec ---------------------------------------------------------------
// A write (or fallocate) by a caller outside a file's group and without CAP_FSETID drops the
// file's S_ISGID, also without group-exec, on kernel overlayfs (the upper filesystem's
// file_remove_privs). The kernel's FUSE drops S_ISUID, and S_ISGID with group-exec, itself (a
// SETATTR before the write) but leaves this case to the filesystem, and WRITE never reaches JS:
// so it is done here, for the handles JS registered (ll_fh_attr: upper files open for writing,
// owners not mapped, so that the file's group and the caller's are in the same terms). As the
// union core's killPrivs: uid 0 counts as CAP_FSETID; the caller's groups are its fsgid and
// its supplementary groups (FUSE sends only the former: those from /proc/<tid>/status). One
// fstat(2) a write; the rest only for such a file.
static int ll_in_groups (uint32_t tid, gid_t gid) {
  char path[48];
  snprintf(path, sizeof(path), "/proc/%u/status", tid);
  FILE *f = fopen(path, "re");
  if (f == NULL) return 0;
  char *line = NULL;
  size_t cap = 0;
  int found = 0;
  while (getline(&line, &cap, f) > 0) {
    if (strncmp(line, "Groups:", 7) != 0) continue;
    for (char *p = line + 7, *end;; p = end) {
      unsigned long g = strtoul(p, &end, 10);
      if (end == p) break;
      if ((gid_t) g == gid) { found = 1; break; }
    }
    break;
  }
  free(line);
  fclose(f);
  return found;
}


static void ll_kill_sgid (ll_session_t *s, const struct fuse_in_header *h, int fd) {
  ll_fh_attr_t fa;
  struct stat st;
  if (!ll_fh_attr_get(fd, &fa) || fstat(fd, &st) != 0) return;
  if (!S_ISREG(st.st_mode) || (st.st_mode & (S_ISGID | S_IXGRP)) != S_ISGID) return;
  if (h->uid == 0 || h->gid == st.st_gid || ll_in_groups(h->pid, st.st_gid)) return;
  if (fchmod(fd, st.st_mode & 07777 & ~S_ISGID) != 0) return;
  // The kernel still holds the old mode, and a write drops only the size and times it caches:
  // without this, stat(2) asking for the mode alone (statx with STATX_MODE) got S_ISGID back.
  // Attributes only (offset -1: no pages), which takes no lock the writer holds.
  if (!s->exited) {
    struct fuse_notify_inval_inode_out out = { h->nodeid, -1, 0 };
    struct iovec v = { &out, sizeof(out) };
    ll_notify(s, FUSE_NOTIFY_INVAL_INODE, &v, 1);
  }
}

static void ll_write (ll_session_t *s, const ll_in_t *in) {
  const struct fuse_write_in *a = LL_ARG(struct fuse_write_in, in);
  ssize_t n;
  ll_kill_sgid(s, in->h, (int) a->fh);
  do n = pwrite((int) a->fh, in->data, in->datalen, (off_t) a->offset); while (n < 0 && errno == EINTR);
  if (n < 0) { ll_reply_errno(s, in->token, errno); return; }
  struct fuse_write_out out = { (uint32_t) n, 0 };
  ll_reply_data(s, in->token, &out, sizeof(out));
}

// RELEASE, FSYNC, READDIR(PLUS), FSYNCDIR: a handle.
static void ll_release (ll_session_t *s, const ll_in_t *in) {
  const struct fuse_release_in *a = LL_ARG(struct fuse_release_in, in);
  LL_NEW_OR_FAIL(r, s, in, LL_OP_RELEASE, in->h->nodeid, NULL, NULL, 0)
  r->fh = a->fh;
  r->has_fh = 1;
  r->flags = a->flags;
  ll_enqueue(s, r);
}

static void ll_fsync (ll_session_t *s, const ll_in_t *in, uint32_t op) {
  const struct fuse_fsync_in *a = LL_ARG(struct fuse_fsync_in, in);
  LL_NEW_OR_FAIL(r, s, in, op, in->h->nodeid, NULL, NULL, 0)
  r->fh = a->fh;
  r->has_fh = 1;
  r->flags = a->fsync_flags & 1;  // datasync
  ll_enqueue(s, r);
}

// Directory handles are numbers of ours: OPENDIR is answered here (JS makes its handle at the
// first READDIR of it), and RELEASEDIR too (JS only hears of it, as of FORGET). The kernel
// checked the caller's permissions before it sent OPENDIR; what a directory lists is decided
// at READDIR. The listing may stay in the kernel's page cache (FOPEN_CACHE_DIR, KEEP_CACHE):
// it drops it itself when a request of its own changes the directory, and JS drops it for
// the changes it makes otherwise (a broken lower hard link's d_ino). `git status` of 859
// directories: 1,718 of its 2,644 requests, warm.
static void ll_opendir (ll_session_t *s, const ll_in_t *in) {
  struct ll_open_out out;
  memset(&out, 0, sizeof(out));
  out.fh = ++s->next_dir_fh;
  out.open_flags = LL_FOPEN_CACHE_DIR | LL_FOPEN_KEEP_CACHE;
  ll_reply_data(s, in->token, &out, sizeof(out));
}

static void ll_readdir (ll_session_t *s, const ll_in_t *in, uint32_t op) {
  const struct fuse_read_in *a = LL_ARG(struct fuse_read_in, in);
  LL_NEW_OR_FAIL(r, s, in, op, in->h->nodeid, NULL, NULL, 0)
  r->fh = a->fh;
  r->has_fh = 1;
  r->size = a->size;
  r->off = (int64_t) a->offset;
  ll_enqueue(s, r);
}

static void ll_releasedir (ll_session_t *s, const ll_in_t *in) {
  uint64_t fh = LL_ARG(struct fuse_release_in, in)->fh;
  ll_reply_errno(s, in->token, 0);
  ll_req_t *r = ll_new(NULL, LL_OP_RELEASEDIR, in->h->nodeid, NULL, NULL, 0);
  if (r == NULL) return; // JS keeps the handle: a leak, never a wrong answer
  r->fh = fh;
  r->has_fh = 1;
  ll_enqueue(s, r);
}

static void ll_setxattr (ll_session_t *s, const ll_in_t *in) {
  const struct fuse_setxattr_in *a = LL_ARG(struct fuse_setxattr_in, in);
  uv_mutex_lock(&s->nocap_lock);
  s->xattr_seq++;
  ll_nodeset_remove(&s->nocap, in->h->nodeid);
  uv_mutex_unlock(&s->nocap_lock);
  LL_NEW_OR_FAIL(r, s, in, LL_OP_SETXATTR, in->h->nodeid, in->name, (const char *) in->data, in->datalen)
  r->flags = a->flags;
  ll_enqueue(s, r);
}

static void ll_getxattr (ll_session_t *s, const ll_in_t *in) {
  uint64_t seq = 0, ino = in->h->nodeid;
  if (strcmp(in->name, ll_capability) == 0) {
    size_t at;
    uv_mutex_lock(&s->nocap_lock);
    int none = ll_nodeset_find(&s->nocap, ino, &at);
    seq = s->xattr_seq;
    uv_mutex_unlock(&s->nocap_lock);
    if (none) { ll_reply_errno(s, in->token, ENODATA); return; }
  }
  LL_NEW_OR_FAIL(r, s, in, LL_OP_GETXATTR, ino, in->name, NULL, 0)
  r->size = LL_ARG(struct fuse_getxattr_in, in)->size;
  r->off = (int64_t) seq;
  ll_enqueue(s, r);
}

static void ll_listxattr (ll_session_t *s, const ll_in_t *in) {
  LL_NEW_OR_FAIL(r, s, in, LL_OP_LISTXATTR, in->h->nodeid, NULL, NULL, 0)
  r->size = LL_ARG(struct fuse_getxattr_in, in)->size;
  ll_enqueue(s, r);
}

// CREATE, and TMPFILE (7.37: the same fuse_create_in and a name, "/").
static void ll_create (ll_session_t *s, const ll_in_t *in, uint32_t op) {
  const struct fuse_create_in *a = LL_ARG(struct fuse_create_in, in);
  LL_NEW_OR_FAIL(r, s, in, op, in->h->nodeid, in->name, NULL, 0)
  r->mode = a->mode;
  r->flags = a->flags;
  r->umask = a->umask;
  uv_mutex_lock(&s->nocap_lock);
  r->off = (int64_t) s->xattr_seq;
  uv_mutex_unlock(&s->nocap_lock);
  ll_enqueue(s, r);
}

// The kernel sends FALLOCATE only for a file open for writing, which is an upper (or volume)
// file: done here on its descriptor, as WRITE is; the kernel updates its size and drops its
// pages of a punched or zeroed range itself. Every mode the upper filesystem has, as kernel
// overlayfs (the kernel's FUSE passes KEEP_SIZE, PUNCH_HOLE and ZERO_RANGE).
static void ll_fallocate (ll_session_t *s, const ll_in_t *in) {
  const struct fuse_fallocate_in *a = LL_ARG(struct fuse_fallocate_in, in);
  int r;
  ll_kill_sgid(s, in->h, (int) a->fh);
  do r = fallocate((int) a->fh, (int) a->mode, (off_t) a->offset, (off_t) a->length); while (r < 0 && errno == EINTR);
  ll_reply_errno(s, in->token, r < 0 ? errno : 0);
}

// LSEEK (7.24: SEEK_DATA, SEEK_HOLE), on the real file's descriptor. Its position is not ours
// to keep: READ and WRITE use pread and pwrite.
static void ll_lseek (ll_session_t *s, const ll_in_t *in) {
  const struct fuse_lseek_in *a = LL_ARG(struct fuse_lseek_in, in);
  off_t r = lseek((int) a->fh, (off_t) a->offset, (int) a->whence);
  if (r < 0) { ll_reply_errno(s, in->token, errno); return; }
  struct fuse_lseek_out out = { (uint64_t) r };
  ll_reply_data(s, in->token, &out, sizeof(out));
}

// The most COPY_FILE_RANGE copies in one request: it is done on the thread that reads requests
// (the JS thread, by default), and a short copy is a valid answer (callers go on from there).
#define LL_COPY_MAX (8u << 20)

static void ll_copy_file_range (ll_session_t *s, const ll_in_t *in) {
  const struct fuse_copy_file_range_in *a = LL_ARG(struct fuse_copy_file_range_in, in);
  off_t off_in = (off_t) a->off_in, off_out = (off_t) a->off_out;
  size_t n = a->len > LL_COPY_MAX ? LL_COPY_MAX : (size_t) a->len;
  ssize_t r;
  do r = copy_file_range((int) a->fh_in, &off_in, (int) a->fh_out, &off_out, n, (unsigned) a->flags);
  while (r < 0 && errno == EINTR);
  if (r < 0) { ll_reply_errno(s, in->token, errno); return; }
  struct fuse_write_out out = { (uint32_t) r, 0 };
  ll_reply_data(s, in->token, &out, sizeof(out));
}

// ---- protocol ---------------------------------------------------------------------------------
// Requests are parsed by protocol.c (ll_parse: every opcode up to 7.40, arguments checked
// against the request's length) and dispatched here. INIT is answered with the lower of the
// kernel's minor and ours (params.proto_max, at most 40; LAYERFS_FUSE_PROTO lowers it, which
// is how a test speaks as an older kernel would) and what the kernel offered of what we want
// (ll_negotiate): READDIRPLUS from 21; max_pages (1 MiB requests), CACHE_SYMLINKS,
// PARALLEL_DIROPS and the requests RENAME2, LSEEK, COPY_FILE_RANGE and TMPFILE from 28 (a
// kernel sends each only from the minor that has it); STATX from 39; passthrough at 40.
// Requests we do not serve get ENOSYS, after which the kernel does without them: FLUSH (close
// needs nothing of us: data goes straight to the real files, locks are the kernel's), ACCESS
// (default_permissions), GETLK/SETLK/SETLKW (never asked for: locks stay local), BMAP, IOCTL,
// POLL, SYNCFS, SETUPMAPPING/REMOVEMAPPING (DAX). INTERRUPT needs nothing: every request is
// answered, and a reply to one the kernel gave up is dropped (ENOENT). NOTIFY_REPLY (to a
// retrieve we never make) is dropped.

static int ll_ring_prepare (ll_session_t *s, uint32_t max_write);
static void ll_ring_start (ll_session_t *s);

static void ll_init (ll_session_t *s, const ll_in_t *in) {
  ll_init_out_t out;
  size_t outlen = 0;
  ll_negotiated_t neg;
  int err = ll_negotiate(in->arg, in->arglen, &s->params, (size_t) getpagesize(), &out, &outlen, &neg);
  if (err) {
    const ll_init_in_t *k = (const ll_init_in_t *) in->arg;
    fprintf(stderr, "layerfs: the kernel speaks FUSE %u.%u; we need 7.%d or later\n", k->major, k->minor, LL_MINOR_MIN);
    ll_reply_errno(s, in->token, err);
    return;
  }
  if (neg.uring && ll_ring_prepare(s, neg.max_write) != 0) {
    // No ring: INIT must not ask for io_uring (see ll_ring_prepare).
    ll_init_params_t p = s->params;
    p.uring = 0;
    ll_negotiate(in->arg, in->arglen, &p, (size_t) getpagesize(), &out, &outlen, &neg);
  }
  s->proto_minor = neg.minor;
  s->max_write = neg.max_write;
  s->want = neg.flags;
  s->passthrough = neg.passthrough;
  s->initialized = 1;
  ll_reply_data(s, in->token, &out, outlen);
  if (neg.uring) ll_ring_start(s);
  // JS hears of INIT once the reply is out, with what it negotiated (ll_info).
  ll_req_t *r = ll_new(NULL, LL_OP_INIT, 0, NULL, NULL, 0);
  if (r) ll_enqueue(s, r);
}

static void ll_dispatch (ll_session_t *s, ll_in_t in, int err, size_t n, const char *via);

// One request read from the device (n bytes at buf).
static void ll_process (ll_session_t *s, const char *buf, size_t n) {
  ll_in_t in;
  int err = ll_parse(buf, n, &in);
  if (in.h == NULL) {
    fprintf(stderr, "layerfs: short read on the FUSE device (%zu bytes)\n", n);
    return;
  }
  ll_dispatch(s, in, err, n, "");
}

// One parsed request (err: why it cannot be answered as it is), from the device or a ring.
static void ll_dispatch (ll_session_t *s, ll_in_t in, int err, size_t n, const char *via) {
  const struct fuse_in_header *h = in.h;
  uint32_t op = h->opcode;
  if (s->params.debug) {
    fprintf(stderr, "%sunique: %" PRIu64 ", opcode: %s (%u), nodeid: %" PRIu64 ", insize: %zu, pid: %u\n",
      via, h->unique, ll_opname(op), op, h->nodeid, n, h->pid);
  }
  if (ll_no_reply(op)) {
    if (err) return;
    if (op == FUSE_FORGET) ll_forget(s, &in);
    else if (op == FUSE_BATCH_FORGET) ll_batch_forget(s, &in);
    return;
  }
  if (err) { ll_reply_errno(s, in.token, err); return; }
  if (op == FUSE_INIT) {
    if (s->initialized) ll_reply_errno(s, in.token, EIO);
    else ll_init(s, &in);
    return;
  }
  if (!s->initialized) { ll_reply_errno(s, in.token, EIO); return; }
  // The requests of 7.28 and later: only where that minor was negotiated (a capped session
  // answers as an older daemon would, ENOSYS, and the kernel falls back).
  int m28 = s->proto_minor >= 28;
  switch (op) {
  case FUSE_LOOKUP: ll_lookup(s, &in); return;
  case FUSE_GETATTR: ll_getattr(s, &in, 0); return;
  case FUSE_SETATTR: ll_setattr(s, &in); return;
  case FUSE_READLINK: ll_simple(s, &in, LL_OP_READLINK); return;
  case FUSE_SYMLINK: ll_symlink(s, &in); return;
  case FUSE_MKNOD: ll_mknod(s, &in); return;
  case FUSE_MKDIR: ll_mkdir(s, &in); return;
  case FUSE_UNLINK: ll_simple(s, &in, LL_OP_UNLINK); return;
  case FUSE_RMDIR: ll_simple(s, &in, LL_OP_RMDIR); return;
  case FUSE_RENAME: ll_rename(s, &in, LL_ARG(struct fuse_rename_in, &in)->newdir, 0); return;
  case FUSE_LINK: ll_link(s, &in); return;
  case FUSE_OPEN: ll_open(s, &in); return;
  case FUSE_READ: ll_read(s, &in); return;
  case FUSE_WRITE: ll_write(s, &in); return;
  case FUSE_STATFS: ll_simple(s, &in, LL_OP_STATFS); return;
  case FUSE_RELEASE: ll_release(s, &in); return;
  case FUSE_FSYNC: ll_fsync(s, &in, LL_OP_FSYNC); return;
  case FUSE_SETXATTR: ll_setxattr(s, &in); return;
  case FUSE_GETXATTR: ll_getxattr(s, &in); return;
  case FUSE_LISTXATTR: ll_listxattr(s, &in); return;
  case FUSE_REMOVEXATTR: ll_simple(s, &in, LL_OP_REMOVEXATTR); return;
  case FUSE_OPENDIR: ll_opendir(s, &in); return;
  case FUSE_READDIR: ll_readdir(s, &in, LL_OP_READDIR); return;
  case LL_FUSE_READDIRPLUS: ll_readdir(s, &in, LL_OP_READDIRPLUS); return;
  case FUSE_RELEASEDIR: ll_releasedir(s, &in); return;
  case FUSE_FSYNCDIR: ll_fsync(s, &in, LL_OP_FSYNCDIR); return;
  case FUSE_CREATE: ll_create(s, &in, LL_OP_CREATE); return;
  case FUSE_FALLOCATE: ll_fallocate(s, &in); return;
  case FUSE_DESTROY: ll_reply_errno(s, in.token, 0); return;
  case LL_FUSE_RENAME2:
    if (m28) { ll_rename(s, &in, LL_ARG(struct fuse_rename2_in, &in)->newdir, LL_ARG(struct fuse_rename2_in, &in)->flags); return; }
    break;
  case LL_FUSE_LSEEK: if (m28) { ll_lseek(s, &in); return; } break;
  case LL_FUSE_COPY_FILE_RANGE: if (m28) { ll_copy_file_range(s, &in); return; } break;
  case LL_FUSE_TMPFILE: if (m28) { ll_create(s, &in, LL_OP_TMPFILE); return; } break;
  case LL_FUSE_STATX: if (s->proto_minor >= 39) { ll_getattr(s, &in, 1); return; } break;
  default: break;
  }
  ll_reply_errno(s, in.token, ENOSYS);
}

// ---- the JS thread -------------------------------------------------------------------------

static napi_value ll_bytes (napi_env env, const char *p, size_t len) {
  napi_value v;
  if (p == NULL) { napi_get_undefined(env, &v); return v; }
  napi_create_buffer_copy(env, len, p, NULL, &v);
  return v;
}

static void ll_call (ll_session_t *s, napi_value fn, ll_req_t *r) {
  napi_env env = s->env;
  napi_value argv[LL_ARGC];
  napi_create_uint32(env, r->op, &argv[0]);
  // The request's token, exact in a double: its unique id (the kernel counts them up from 2,
  // by 2), or LL_RING_TAG and the ring entry's index.
  napi_create_double(env, (double) r->token, &argv[1]);
  napi_create_double(env, (double) r->ino, &argv[2]);
  if (r->has_fh) napi_create_double(env, (double) r->fh, &argv[3]);
  else napi_get_undefined(env, &argv[3]);
  napi_create_double(env, (double) r->off, &argv[4]);
  napi_create_double(env, (double) r->size, &argv[5]);
  napi_create_uint32(env, r->flags, &argv[6]);
  napi_create_uint32(env, r->mode, &argv[7]);
  // Names as strings in our name codec (values.c, ll_name: UTF-8, other bytes as lone
  // surrogates): no Buffer and no decoding in JS per request. setxattr's value is data, and
  // stays bytes.
  if (r->name) ll_name(env, r->name, &argv[8]);
  else napi_get_undefined(env, &argv[8]);
  if (r->name2 && r->op != LL_OP_SETXATTR) ll_name(env, r->name2, &argv[9]);
  else argv[9] = ll_bytes(env, r->name2, r->name2len);
  napi_get_undefined(env, &argv[10]); // (was write data: writes no longer reach JS)
  napi_create_double(env, (double) r->ino2, &argv[11]);
  napi_create_uint32(env, r->uid, &argv[12]);
  napi_create_uint32(env, r->gid, &argv[13]);
  napi_create_uint32(env, r->pid, &argv[14]);
  if (r->op == LL_OP_SETATTR) {
    // mode uid gid size(lo,hi) atime(sec lo, sec hi, nsec) mtime(sec lo, sec hi, nsec), rdev
    napi_value arr;
    napi_create_array_with_length(env, 4, &arr);
    napi_value v;
    napi_create_uint32(env, r->attr.st_mode, &v); napi_set_element(env, arr, 0, v);
    napi_create_uint32(env, r->attr.st_uid, &v); napi_set_element(env, arr, 1, v);
    napi_create_uint32(env, r->attr.st_gid, &v); napi_set_element(env, arr, 2, v);
    napi_create_double(env, (double) r->attr.st_size, &v); napi_set_element(env, arr, 3, v);
    napi_create_bigint_int64(env, (int64_t) r->attr.st_atim.tv_sec * 1000000000 + r->attr.st_atim.tv_nsec, &v);
    napi_set_element(env, arr, 4, v);
    napi_create_bigint_int64(env, (int64_t) r->attr.st_mtim.tv_sec * 1000000000 + r->attr.st_mtim.tv_nsec, &v);
    napi_set_element(env, arr, 5, v);
    argv[15] = arr;
  } else if (r->op == LL_OP_MKNOD) {
    napi_create_uint32(env, r->rdev, &argv[15]);
  } else {
    napi_create_uint32(env, r->umask, &argv[15]);
  }
  napi_value global;
  napi_get_global(env, &global);
  napi_status st = napi_call_function(env, global, fn, LL_ARGC, argv, NULL);
  if (st == napi_pending_exception) {
    // A bug in the dispatcher: report it to the process, as a throw in any callback would be.
    napi_value ex;
    napi_get_and_clear_last_exception(env, &ex);
    napi_fatal_exception(env, ex);
  }
}

static void ll_drain_session (ll_session_t *s) {
  uv_mutex_lock(&s->lock);
  ll_req_t *r = s->head;
  s->head = s->tail = NULL;
  uv_mutex_unlock(&s->lock);
  if (r == NULL) return;

  napi_env env = s->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value fn;
  napi_get_reference_value(env, s->dispatch, &fn);
  // A callback scope, as Node's own I/O callbacks have: closing it runs the microtasks and
  // process.nextTick callbacks the requests queued (the continuations of requests answered
  // asynchronously). Without it they waited until some other event of the loop: until after
  // ll_poll_cb's wait for the next request, which then only added to their latency.
  napi_value resource;
  napi_create_object(env, &resource);
  napi_callback_scope cscope;
  napi_open_callback_scope(env, resource, s->actx, &cscope);
  while (r) {
    ll_req_t *next = r->next;
    if (r->token) s->outstanding++;
    s->handed++;
    napi_handle_scope inner;
    napi_open_handle_scope(env, &inner);
    ll_call(s, fn, r);
    napi_close_handle_scope(env, inner);
    free(r);
    r = next;
  }
  napi_close_callback_scope(env, cscope);
  napi_close_handle_scope(env, scope);
}

static void ll_drain (uv_async_t *handle) {
  ll_drain_session((ll_session_t *) handle->data);
}

// Not threaded: the FUSE loop's end (the device is gone: unmounted or aborted).

// The device's end (unmounted or aborted): JS hears of it once.
static void ll_end (ll_session_t *s) {
  if (s->ended) return;
  s->ended = 1;
  ll_req_t *r = ll_new(NULL, LL_OP_EXIT, 0, NULL, NULL, 0);
  if (r) ll_enqueue(s, r);
}

#define LL_AGAIN (-2)

// Reads one request into the session's buffer: its length; 0 to read again (EINTR, or one the
// kernel took back: ENOENT); LL_AGAIN when there is none to read now; -1 when the device has
// ended.
static ssize_t ll_receive (ll_session_t *s) {
  ssize_t n = read(s->fd, s->rbuf, s->rbuf_size);
  if (n >= (ssize_t) sizeof(struct fuse_in_header)) return n;
  if (n >= 0) {
    // A read of the device returns one whole request, or fails.
    fprintf(stderr, "layerfs: short read on the FUSE device (%zd bytes)\n", n);
    return -1;
  }
  int err = errno;
  if (err == EAGAIN) return LL_AGAIN;
  if (err == EINTR || err == ENOENT) return 0;
  // ENODEV: unmounted, or the connection aborted.
  if (err != ENODEV) perror("layerfs: reading the FUSE device");
  return -1;
}

// Not threaded: the FUSE loop's end.
static void ll_poll_end (ll_session_t *s) {
  if (!s->polling) return;
  uv_poll_stop(&s->poll);
  s->polling = 0;
  ll_end(s);
}

// Requests read per wake-up before JS gets them (and other events their turn).
#define LL_POLL_BATCH 64

// Not threaded: the FUSE loop's body, on the JS thread, for as long as requests are there
// to read without waiting (the device is non-blocking). One thread hop less per request than
// the FUSE thread: the kernel wakes the thread that answers.
static uint64_t ll_now_ns (void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t) t.tv_sec * 1000000000u + (uint64_t) t.tv_nsec;
}

// Reads and processes what the device has (at most LL_POLL_BATCH requests); how many it read.
static int ll_poll_read (ll_session_t *s) {
  int n = 0;
  for (int i = 0; i < LL_POLL_BATCH && s->polling; i++) {
    ssize_t len = ll_receive(s);
    if (len == LL_AGAIN) break;
    if (len < 0) { ll_poll_end(s); break; }
    if (len == 0) continue;
    ll_process(s, s->rbuf, (size_t) len);
    n++;
  }
  return n;
}

// Whether a request comes within spin_ns, watched without sleeping.
static int ll_spin (ll_session_t *s) {
  struct pollfd p = { .fd = s->fd, .events = POLLIN };
  uint64_t until = ll_now_ns() + s->spin_ns;
  do {
    if (poll(&p, 1, 0) > 0) return 1;
  } while (ll_now_ns() < until);
  return 0;
}


// At most this long in one callback, however busy the device: timers, finished fs work and
// the rest of the loop get their turn.
#define LL_POLL_SLICE_NS 2000000u

static void ll_poll_cb (uv_poll_t *handle, int status, int events) {
  ll_session_t *s = (ll_session_t *) handle->data;
  uint64_t start = s->spin_ns ? ll_now_ns() : 0;
  for (;;) {
    uint64_t answered = s->answered, handed = s->handed;
    int read = ll_poll_read(s);
    // POLLERR: libuv has stopped watching; the device has nothing more to give.
    if (status < 0) ll_poll_end(s);
    ll_drain_session(s);
    // The answers are out; a program waiting on them usually asks again within a few
    // microseconds (stat after stat, write after write). Waiting that long awake saves the
    // sleep and wake-up of this thread, which costs more than the request on a VM. Only when
    // this round answered something (in C, as READ, or in JS): the caller of a request still
    // being answered (a copy-up waiting on its fsync) cannot ask again before it has the
    // answer, and the wait only burnt 50 us.
    int answered_any = (uint64_t) read > s->handed - handed || s->answered != answered;
    if (!s->polling || s->spin_ns == 0 || !answered_any || ll_now_ns() - start > LL_POLL_SLICE_NS || !ll_spin(s)) break;
  }
}

// Threaded: the FUSE loop, blocking reads.
static void * ll_thread (void *data) {
  ll_session_t *s = (ll_session_t *) data;
  for (;;) {
    ssize_t len = ll_receive(s);
    if (len == -1) break;
    if (len > 0) ll_process(s, s->rbuf, (size_t) len);
  }
  ll_end(s);
  return NULL;
}

// ---- io_uring ---------------------------------------------------------------------------------
// FUSE over io_uring (Linux 6.14+, 7.42; LAYERFS_FUSE_URING=1, where root has set the fuse
// module's enable_uring): requests come in ring entries instead of read(2)s of /dev/fuse and
// replies go back in the same entries, committed with the command that also fetches the next
// request (FUSE_IO_URING_CMD_COMMIT_AND_FETCH), so that a round of requests and their replies
// costs one io_uring_enter(2) instead of a read and a write each. The kernel keeps a queue per
// possible CPU and puts a request on the queue of the CPU its caller runs on; each queue needs
// entries registered (FUSE_IO_URING_CMD_REGISTER: a header buffer and a payload buffer of
// max_write) before the kernel switches the connection over, until then requests keep coming
// on /dev/fuse. FORGET and INTERRUPT always do, and notifications are always written there.
// Here one ring carries the entries of every queue and the JS thread owns it: it polls the
// ring's descriptor as it polls the device, reaps completions (each a request in an entry),
// answers what C answers at once, hands the rest to JS, and submits every reply of the round
// in one io_uring_enter. The kernel copies a request into an entry in the context of the task
// that submitted the entry's command, which is this thread: as with read(2), the copy is ours.
// A refusal (REGISTER failing) leaves the connection on /dev/fuse, as the kernel does itself.
#define LL_RING_DEPTH 8

typedef struct ll_ring_ent {
  struct ll_uring_req_header *hdr;  // a page of its own
  char *payload;
  struct iovec iov[2];
  uint64_t unique;          // the request in the entry (0: none)
  uint64_t commit_id;
  uint16_t qid;
  uint32_t cmd;             // the last command submitted for it
  int in_kernel;            // a command of it is in the kernel
} ll_ring_ent_t;

static ll_ring_ent_t *ll_ring_ent_of (ll_session_t *s, uint64_t token) {
  if (!(token & LL_RING_TAG) || s->ents == NULL) return NULL;
  uint64_t idx = token & ~LL_RING_TAG;
  return idx < s->nents ? &s->ents[idx] : NULL;
}

static char *ll_ring_buffer (ll_session_t *s, uint64_t token, size_t size) {
  ll_ring_ent_t *e = ll_ring_ent_of(s, token);
  return e != NULL && size <= s->ring_payload ? e->payload : NULL;
}

// Writes the entry's command (REGISTER, or COMMIT_AND_FETCH of its reply) into the ring.
static int ll_ring_command (ll_session_t *s, ll_ring_ent_t *e, uint32_t cmd) {
  struct io_uring_sqe *sqe = ll_uring_sqe(&s->ring);
  if (sqe == NULL) {
    // Never with one command per entry and a ring of at least as many; submit and retry once.
    ll_uring_submit(&s->ring);
    sqe = ll_uring_sqe(&s->ring);
    if (sqe == NULL) return -EBUSY;
  }
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->flags = IOSQE_FIXED_FILE;  // the device, registered as the ring's file 0
  sqe->fd = 0;
  sqe->cmd_op = cmd;
  sqe->user_data = (uint64_t) (e - s->ents) + 1;
  if (cmd == LL_URING_CMD_REGISTER) {
    sqe->addr = (uint64_t) (uintptr_t) e->iov;
    sqe->len = 2;
  }
  struct ll_uring_cmd_req *req = (struct ll_uring_cmd_req *) ll_uring_cmd(sqe);
  req->qid = e->qid;
  req->commit_id = cmd == LL_URING_CMD_REGISTER ? 0 : e->commit_id;
  e->cmd = cmd;
  e->in_kernel = 1;
  s->ring_live++;
  return 0;
}

static int ll_ring_reply (ll_session_t *s, uint64_t token, int err, const struct iovec *payload, int n) {
  ll_ring_ent_t *e = ll_ring_ent_of(s, token);
  // Answered already, or the ring is gone (the connection has ended).
  if (e == NULL || e->in_kernel || e->unique == 0 || !s->ring_on) return -ENOENT;
  size_t len = 0;
  for (int i = 0; !err && i < n; i++) {
    if (len + payload[i].iov_len > s->ring_payload) { err = EIO; len = 0; break; }
    if (payload[i].iov_base != e->payload + len) memmove(e->payload + len, payload[i].iov_base, payload[i].iov_len);
    len += payload[i].iov_len;
  }
  struct fuse_out_header *oh = (struct fuse_out_header *) e->hdr->in_out;
  oh->len = (uint32_t) (sizeof(*oh) + len);
  oh->error = -err;
  oh->unique = e->unique;
  e->hdr->ring_ent_in_out.payload_sz = (uint32_t) len;
  if (s->params.debug) fprintf(stderr, "   ring unique: %" PRIu64 ", %s: %d, outsize: %zu\n", e->unique, err ? "error" : "success", -err, len + sizeof(*oh));
  e->unique = 0;
  int r = ll_ring_command(s, e, LL_URING_CMD_COMMIT_AND_FETCH);
  if (r == 0 && !s->ring_batch) r = ll_uring_submit(&s->ring) < 0 ? -EIO : 0;
  return r;
}

// A completion: a request in its entry (res 0), or why the entry's command ended.
static void ll_ring_complete (ll_session_t *s, const struct io_uring_cqe *cqe) {
  uint64_t ud = cqe->user_data;
  if (ud == 0 || ud > s->nents) return;
  ll_ring_ent_t *e = &s->ents[ud - 1];
  e->in_kernel = 0;
  s->ring_live--;
  if (cqe->res == -EAGAIN || cqe->res == -EINTR) {
    ll_ring_command(s, e, e->cmd);
    return;
  }
  if (cqe->res < 0) {
    // ENOTCONN, ECONNABORTED, ECANCELED: the connection ends, and with it the ring. Anything
    // else on REGISTER: the kernel has turned io_uring off for the connection; requests go on
    // on /dev/fuse.
    int res = -cqe->res;
    if (res != ENOTCONN && res != ECONNABORTED && res != ECANCELED && !s->ended) {
      static int said;
      if (!said++) fprintf(stderr, "layerfs: FUSE over io_uring: %s (requests stay on /dev/fuse)\n", strerror(res));
    }
    return;
  }
  const struct ll_uring_req_header *hdr = e->hdr;
  size_t len = hdr->ring_ent_in_out.payload_sz;
  if (len > s->ring_payload) len = s->ring_payload;
  ll_in_t in;
  int err = ll_parse_ring(hdr, e->payload, len, &in);
  e->unique = in.h->unique;
  e->commit_id = hdr->ring_ent_in_out.commit_id;
  in.token = LL_RING_TAG | (uint64_t) (ud - 1);
  if (ll_no_reply(in.h->opcode)) {
    // Never sent on a ring (FORGET and INTERRUPT stay on /dev/fuse); answered to free the entry.
    ll_ring_reply(s, in.token, ENOSYS, NULL, 0);
    return;
  }
  ll_dispatch(s, in, err, len, "ring ");
}

// Reaps what the ring has (at most LL_POLL_BATCH completions); how many there were.
static int ll_ring_read (ll_session_t *s) {
  int n = 0;
  struct io_uring_cqe *cqe;
  while (n < LL_POLL_BATCH && s->ring_on && (cqe = ll_uring_peek(&s->ring)) != NULL) {
    struct io_uring_cqe c = *cqe;
    ll_uring_seen(&s->ring);
    ll_ring_complete(s, &c);
    n++;
  }
  return n;
}

static void ll_ring_cb (uv_poll_t *handle, int status, int events) {
  ll_session_t *s = (ll_session_t *) handle->data;
  uint64_t start = ll_now_ns();
  s->ring_batch = 1;
  for (;;) {
    if (ll_uring_has_work(&s->ring)) ll_uring_run(&s->ring);
    int read = ll_ring_read(s);
    ll_drain_session(s);
    // Every reply of the round, and the fetches that go with them, in one system call.
    if (s->ring_on) ll_uring_submit(&s->ring);
    if (!s->ring_on || read == 0 || ll_now_ns() - start > LL_POLL_SLICE_NS) break;
    // As ll_poll_cb: wait awake a little for the next request, watching the ring's memory: a
    // completion, or work of ours the kernel has flagged (a request to copy into its entry).
    uint64_t until = ll_now_ns() + s->spin_ns;
    int more = 0;
    while (!more && ll_now_ns() < until) {
      if (ll_uring_has_work(&s->ring)) ll_uring_run(&s->ring);
      more = ll_uring_peek(&s->ring) != NULL;
    }
    if (!more) break;
  }
  s->ring_batch = 0;
}

static void ll_ring_free (ll_session_t *s) {
  for (unsigned i = 0; s->ents && i < s->nents; i++) {
    free(s->ents[i].hdr);
    free(s->ents[i].payload);
  }
  free(s->ents);
  s->ents = NULL;
  s->nents = 0;
}

// The kernel's queue count: one per possible CPU (num_possible_cpus), from
// /sys/devices/system/cpu/possible (ll_cpu_list_count); configured CPUs can be fewer (hotplug
// slots). A wrong count is not harmless: until every queue has registered entries, the kernel
// holds every request (fuse_block_alloc), and the mount hangs.
static unsigned ll_possible_cpus (void) {
  unsigned n = 0;
  FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
  if (f != NULL) {
    char line[256];
    if (fgets(line, sizeof(line), f) != NULL) n = ll_cpu_list_count(line);
    fclose(f);
  }
  if (n == 0) {
    long c = sysconf(_SC_NPROCESSORS_CONF);
    n = c > 0 ? (unsigned) c : 1;
  }
  return n;
}

// Once INIT has negotiated FUSE_OVER_IO_URING, the kernel holds every request until each
// queue has an entry registered (fuse_block_alloc), and only a failed REGISTER turns io_uring
// off again: a ring we could not make after answering so would hang the mount. So the ring and
// its buffers are made before INIT is answered (ll_ring_prepare; INIT does not ask for io_uring
// if that fails: io_uring_setup can be refused, by seccomp in a container or the
// kernel.io_uring_disabled sysctl), and registered after (ll_ring_start, the kernel refuses
// REGISTER before: EAGAIN), on the JS thread. Failing there, a REGISTER the kernel must refuse
// (a queue it does not have) turns io_uring off for the connection.
static int ll_ring_prepare (ll_session_t *s, uint32_t max_write) {
  size_t page = (size_t) getpagesize();
  s->nqueues = ll_possible_cpus();
  s->nents = s->nqueues * LL_RING_DEPTH;
  // The kernel wants payload buffers of at least max(8 KiB, max_write, max_pages pages).
  s->ring_payload = max_write > LL_MAX_PAGES * page ? max_write : LL_MAX_PAGES * page;
  s->ents = (ll_ring_ent_t *) calloc(s->nents, sizeof(ll_ring_ent_t));
  int err = s->ents ? ll_uring_init(&s->ring, s->nents + 1, s->fd) : -ENOMEM;
  for (unsigned i = 0; err == 0 && i < s->nents; i++) {
    ll_ring_ent_t *e = &s->ents[i];
    e->qid = (uint16_t) (i / LL_RING_DEPTH);
    e->hdr = (struct ll_uring_req_header *) aligned_alloc(page, page);
    e->payload = (char *) malloc(s->ring_payload);
    if (e->hdr == NULL || e->payload == NULL) { err = -ENOMEM; break; }
    memset(e->hdr, 0, page);
    e->iov[0].iov_base = e->hdr;
    e->iov[0].iov_len = sizeof(*e->hdr);
    e->iov[1].iov_base = e->payload;
    e->iov[1].iov_len = s->ring_payload;
  }
  if (err == 0 && uv_poll_init(uv_default_loop(), &s->ring_poll, s->ring.fd) != 0) err = -EIO;
  if (err != 0) {
    fprintf(stderr, "layerfs: FUSE over io_uring: %s (requests stay on /dev/fuse)\n", strerror(-err));
    if (s->ring.fd > 0) ll_uring_exit(&s->ring);
    ll_ring_free(s);
    return err;
  }
  s->ring_poll.data = s;
  return 0;
}

static void ll_ring_start (ll_session_t *s) {
  int err = 0;
  for (unsigned i = 0; err == 0 && i < s->nents; i++) err = ll_ring_command(s, &s->ents[i], LL_URING_CMD_REGISTER);
  if (err == 0 && ll_uring_submit(&s->ring) < 0) err = -EIO;
  s->ring_on = 1;
  uv_poll_start(&s->ring_poll, UV_READABLE, ll_ring_cb);
  if (err != 0) {
    fprintf(stderr, "layerfs: FUSE over io_uring: registering failed: %s (requests go back to /dev/fuse)\n", strerror(-err));
    struct io_uring_sqe *sqe = ll_uring_sqe(&s->ring);
    if (sqe != NULL) {
      sqe->opcode = IORING_OP_URING_CMD;
      sqe->flags = IOSQE_FIXED_FILE;
      sqe->cmd_op = LL_URING_CMD_REGISTER;
      ((struct ll_uring_cmd_req *) ll_uring_cmd(sqe))->qid = 0xffff;
      ll_uring_submit(&s->ring);
    }
  }
}

// At the end of the session: the kernel has ended every command (or will, when the ring goes).
static void ll_ring_stop (ll_session_t *s) {
  if (!s->ring_on) return;
  s->ring_on = 0;
  uv_poll_stop(&s->ring_poll);
}

// After fuse_mount: the /dev/fuse descriptor gets FD_CLOEXEC (fusermount passes it without:
// a child of the daemon, a `mount` or `fusermount` it runs, must not keep the connection
// alive), and fusermount's auto_unmount socket moves below it, to `low`. When the daemon dies,
// the kernel releases its files in reverse order of their descriptors (the deferred fputs run
// last-queued first): with the socket above /dev/fuse, the helper woke first, opened the mount
// point while the connection was still up, got ECONNABORTED instead of ENOTCONN when it was
// aborted, and left a dead mount (about 1 SIGKILL in 8 on a loaded machine).
static void ll_order_fds(int devfd, int low) {
  fcntl(devfd, F_SETFD, fcntl(devfd, F_GETFD) | FD_CLOEXEC);
  if (low < 0) return;
  int sock = -1;
  if (low < devfd) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
      int fd = atoi(e->d_name);
      struct stat st;
      if (fd > devfd && fd != dirfd(d) && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && fd > sock) sock = fd;
    }
    if (d) closedir(d);
  }
  if (sock >= 0 && dup3(sock, low, O_CLOEXEC) == low) close(sock);
  else close(low);
}

// ll_mount(mnt, mountOpts, sessionOpts, dispatch, statbuf, threaded, protoMax, spinUs, stackDepth, uring) -> session
// mountOpts go to fuse_mount (e.g. "-ofsname=x,allow_other"), sessionOpts to
// fuse_lowlevel_new (e.g. "-omax_write=131072,big_writes"); "" for none. threaded: requests
// are read by a FUSE thread of their own (READ and WRITE then go on while JS is busy) rather
// than by the JS thread. protoMax: the FUSE minor to answer INIT with, at most, 19..40 (see
// "protocol" above). spinUs: not threaded, how long to wait awake for the next request after
// answering (ll_poll_cb); 0 never. stackDepth: 1 or 2 to ask for passthrough with that
// max_stack_depth (see "passthrough"), 0 not to.
// ll_mount(mnt, mountOpts, sessionOpts, dispatch, statbuf, threaded, protoMax, spinUs, stackDepth, uring) -> session
// mountOpts go to fuse_mount (e.g. "-ofsname=x,allow_other"), sessionOpts are ours, with
// libfuse 2.9's names (e.g. "-omax_write=131072,big_writes"; ll_session_options); "" for none.
// threaded: requests are read by a FUSE thread of their own (READ and WRITE then go on while JS
// is busy) rather than by the JS thread. protoMax: the FUSE minor to answer INIT with, at most,
// 19..40 (see "protocol" above). spinUs: not threaded, how long to wait awake for the next
// request after answering (ll_poll_cb); 0 never. stackDepth: 1 or 2 to ask for passthrough with
// that max_stack_depth (see "passthrough"), 0 not to. uring: take requests over io_uring where
// the kernel offers it (see "io_uring"; not with threaded).
NAPI_METHOD(ll_mount) {
  NAPI_ARGV(10)
  NAPI_ARGV_UTF8(mnt, 4096, 0)
  NAPI_ARGV_UTF8(mopts, 1024, 1)
  NAPI_ARGV_UTF8(sopts, 1024, 2)

  ll_session_t *s = (ll_session_t *) calloc(1, sizeof(ll_session_t));
  if (s == NULL) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  if (ll_session_options(sopts, &s->params) != 0) {
    free(s);
    napi_throw_error(env, "ERR_FUSE_OPTION", "invalid FUSE session options");
    return NULL;
  }
  s->env = env;
  bool threaded = false;
  napi_get_value_bool(env, argv[5], &threaded);
  s->threaded = threaded ? 1 : 0;
  uint32_t proto_max = 19;
  napi_get_value_uint32(env, argv[6], &proto_max);
  s->params.proto_max = proto_max < 19 ? 19 : proto_max > LL_MINOR_MAX ? LL_MINOR_MAX : proto_max;
  uint32_t stack_depth = 0;
  napi_get_value_uint32(env, argv[8], &stack_depth);
  s->params.stack_depth = stack_depth > 2 ? 2 : stack_depth;
  bool uring = false;
  napi_get_value_bool(env, argv[9], &uring);
  s->params.uring = uring && !threaded;
  uint32_t spin_us = 0;
  napi_get_value_uint32(env, argv[7], &spin_us);
  if (spin_us > 1000) spin_us = 1000;
  void *sb; size_t sblen;
  napi_get_typedarray_info(env, argv[4], NULL, &sblen, &sb, NULL, NULL);
  if (sblen < STAT_INTS) { free(s); napi_throw_error(env, "EINVAL", "stat buffer too small"); return NULL; }
  s->statbuf = (uint32_t *) sb;
  // The largest request INIT may allow: 1 MiB WRITEs (max_pages) or the max_write option.
  size_t page = (size_t) getpagesize();
  uint32_t largest = s->params.max_write > LL_MAX_PAGES * page ? s->params.max_write : (uint32_t) (LL_MAX_PAGES * page);
  s->rbuf_size = ll_request_size(largest, page);
  s->rbuf = (char *) malloc(s->rbuf_size);
  if (s->rbuf == NULL) { free(s); napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }

  char *margv[] = { (char *) "layerfs", mopts };
  struct fuse_args margs = FUSE_ARGS_INIT(mopts[0] ? 2 : 1, margv);
  // The lowest free descriptor, held across fuse_mount (see ll_order_fds).
  int low = open("/dev/null", O_RDONLY | O_CLOEXEC);
  s->ch = fuse_mount(mnt, &margs);
  fuse_opt_free_args(&margs);
  if (s->ch == NULL) {
    if (low >= 0) close(low);
    free(s->rbuf);
    free(s);
    napi_throw_error(env, "ERR_FUSE_MOUNT", "fuse_mount failed (see stderr)");
    return NULL;
  }
  s->fd = fuse_chan_fd(s->ch);
  ll_order_fds(s->fd, low);

  napi_create_reference(env, argv[3], 1, &s->dispatch);
  napi_value actx_name;
  napi_create_string_utf8(env, "layerfs:fuse-requests", NAPI_AUTO_LENGTH, &actx_name);
  napi_async_init(env, NULL, actx_name, &s->actx);
  napi_create_reference(env, argv[4], 1, &s->statbuf_ref);
  uv_mutex_init(&s->lock);
  uv_mutex_init(&s->nocap_lock);
  if (s->threaded) {
    uv_async_init(uv_default_loop(), &s->async, ll_drain);
    s->async.data = s;
    pthread_create(&s->thread, NULL, ll_thread, s);
  } else {
    if (fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK) < 0 ||
        uv_poll_init(uv_default_loop(), &s->poll, s->fd) != 0) {
      fuse_unmount(mnt, s->ch);
      napi_throw_error(env, "ERR_FUSE_MOUNT", "could not watch the FUSE device");
      return NULL;
    }
    s->poll.data = s;
    s->polling = 1;
    s->spin_ns = (uint64_t) spin_us * 1000u;
    uv_poll_start(&s->poll, UV_READABLE, ll_poll_cb);
  }

  napi_value ext;
  napi_create_external(env, s, NULL, NULL, &ext);
  return ext;
}

static ll_session_t * ll_session_of (napi_env env, napi_value v) {
  void *p = NULL;
  napi_get_value_external(env, v, &p);
  return (ll_session_t *) p;
}

// The request to answer (its token), or 0 when the session is gone (then nothing is sent).
static uint64_t ll_take (napi_env env, napi_value sv, napi_value rv, ll_session_t **sp) {
  ll_session_t *s = ll_session_of(env, sv);
  double d = 0;
  napi_get_value_double(env, rv, &d);
  if (sp) *sp = s;
  if (s == NULL || d <= 0) return 0;
  s->outstanding--;
  s->answered++;
  return s->closed ? 0 : (uint64_t) d;
}

// ---- passthrough ----------------------------------------------------------------------------
// A file opened with FOPEN_PASSTHROUGH is read and written by the kernel on a backing file we
// registered (FUSE_DEV_IOC_BACKING_OPEN, 7.40; CAP_SYS_ADMIN): READ and WRITE of it never
// come here. The kernel keeps one backing file per inode, the same for every open of it at a
// time, and refuses a passthrough open while a cached one is open (ETXTBSY; EIO to the
// caller), and the reverse. Which opens may pass through is JS's to decide (ll-ops.ts).

// ll_backing_open(session, fd) -> backing id (> 0), or -errno
NAPI_METHOD(ll_backing_open) {
  NAPI_ARGV(2)
  NAPI_ARGV_INT32(fd, 1)
  ll_session_t *s = ll_session_of(env, argv[0]);
  int r = -EOPNOTSUPP;
  if (s && s->passthrough && !s->closed) {
    struct ll_backing_map map = { fd, 0, 0 };
    r = ioctl(s->fd, LL_DEV_IOC_BACKING_OPEN, &map);
    if (r < 0) r = -errno;
  }
  NAPI_RETURN_INT32(r)
}

// ll_backing_close(session, id) -> 0 or -errno
NAPI_METHOD(ll_backing_close) {
  NAPI_ARGV(2)
  NAPI_ARGV_INT32(id, 1)
  ll_session_t *s = ll_session_of(env, argv[0]);
  int r = -EBADF;
  if (s && !s->closed) {
    uint32_t bid = (uint32_t) id;
    r = ioctl(s->fd, LL_DEV_IOC_BACKING_CLOSE, &bid);
    if (r < 0) r = -errno;
  }
  NAPI_RETURN_INT32(r)
}


// ll_reply_err(session, req, errno): errno positive, or 0 for success
NAPI_METHOD(ll_reply_err) {
  NAPI_ARGV(3)
  NAPI_ARGV_INT32(err, 2)
  ll_session_t *s;
  uint64_t token = ll_take(env, argv[0], argv[1], &s);
  if (token) ll_reply_errno(s, token, err);
  return NULL;
}

// ll_reply_entry(session, req, nodeid, entryTimeout, attrTimeout): the stat is in statbuf;
// nodeid 0 is a negative entry (cached for entryTimeout).
NAPI_METHOD(ll_reply_entry) {
  NAPI_ARGV(5)
  ll_session_t *s;
  uint64_t token = ll_take(env, argv[0], argv[1], &s);
  if (!token) return NULL;
  double nodeid, et, at;
  napi_get_value_double(env, argv[2], &nodeid);
  napi_get_value_double(env, argv[3], &et);
  napi_get_value_double(env, argv[4], &at);
  struct stat st;
  memset(&st, 0, sizeof(st));
  if (nodeid != 0) populate_stat(s->statbuf, &st);
  struct fuse_entry_out out;
  ll_entry_of((uint64_t) nodeid, &st, et, at, &out);
  ll_reply_data(s, token, &out, sizeof(out));
  return NULL;
}

// ll_reply_create(session, req, nodeid, entryTimeout, attrTimeout, fh, openFlags, backingId)
// openFlags as ll_reply_open's: fuse_entry_out and fuse_open_out.
NAPI_METHOD(ll_reply_create) {
  NAPI_ARGV(8)
  ll_session_t *s;
  uint64_t token = ll_take(env, argv[0], argv[1], &s);
  if (!token) return NULL;
  double nodeid, et, at, fh;
  uint32_t of;
  int32_t backing_id = 0;
  napi_get_value_double(env, argv[2], &nodeid);
  napi_get_value_double(env, argv[3], &et);
  napi_get_value_double(env, argv[4], &at);
  napi_get_value_double(env, argv[5], &fh);
  napi_get_value_uint32(env, argv[6], &of);
  napi_get_value_int32(env, argv[7], &backing_id);
  struct stat st;
  memset(&st, 0, sizeof(st));
  populate_stat(s->statbuf, &st);
  struct fuse_entry_out entry;
  struct ll_open_out open;
  ll_entry_of((uint64_t) nodeid, &st, et, at, &entry);
  ll_open_of((uint64_t) fh, of, backing_id, &open);
  struct iovec v[2] = { { &entry, sizeof(entry) }, { &open, sizeof(open) } };
  // ENOENT: the request was interrupted; nobody will release this handle: JS must.
  ll_send(s, token, 0, v, 2);
  return NULL;
}

// ll_reply_statx(session, req, attrTimeout, btimeSec, btimeNsec): the stat is in statbuf;
// btimeNsec < 0: no birth time known.
NAPI_METHOD(ll_reply_statx) {
  NAPI_ARGV(5)
  ll_session_t *s;
  uint64_t token = ll_take(env, argv[0], argv[1], &s);
  if (!token) return NULL;
  double at, bsec;
  int32_t bnsec = -1;
  napi_get_value_double(env, argv[2], &at);
  napi_get_value_double(env, argv[3], &bsec);
  napi_get_value_int32(env, argv[4], &bnsec);
  struct stat st;
  memset(&st, 0, sizeof(st));
  populate_stat(s->statbuf, &st);
  struct statx_timestamp bt = { (int64_t) bsec, (uint32_t) (bnsec < 0 ? 0 : bnsec), 0 };
  ll_reply_statx_of(s, token, &st, at, bnsec < 0 ? NULL : &bt);
  return NULL;
}

// ll_reply_attr(session, req, attrTimeout): the stat is in statbuf
NAPI_METHOD(ll_reply_attr) {
  NAPI_ARGV(3)
  ll_session_t *s;
  uint64_t token = ll_take(env, argv[0], argv[1], &s);
  if (!token) return NULL;
  double at;
  napi_get_value_double(env, argv[2], &at);
  struct stat st;
  memset(&st, 0, sizeof(st));
  populate_stat(s->statbuf, &st);
  ll_reply_attr_of(s, token, &st, at);
  return NULL;
}

// ll_reply_open(session, req, fh, openFlags, backingId)
// openFlags: 1 direct_io, 2 keep_cache, 4 cache_dir, 8 passthrough (backingId: what
// ll_backing_open gave). With FOPEN_CACHE_DIR the kernel keeps a directory's listing in its
// page cache (dropped when the directory changes through the mount), as it keeps a file's
// pages with FOPEN_KEEP_CACHE.
NAPI_METHOD(ll_reply_open) {
  NAPI_ARGV(5)
  ll_session_t *s;
  uint64_t token = ll_take(env, argv[0], argv[1], &s);
  if (!token) return NULL;
  double fh;
  uint32_t of;
  int32_t backing_id = 0;
  napi_get_value_double(env, argv[2], &fh);
  napi_get_value_uint32(env, argv[3], &of);
  napi_get_value_int32(env, argv[4], &backing_id);
  struct ll_open_out out;
  ll_open_of((uint64_t) fh, of, backing_id, &out);
  ll_reply_data(s, token, &out, sizeof(out));
  return NULL;
}

// ll_reply_buf(session, req, buffer, length)
NAPI_METHOD(ll_reply_buf) {
  NAPI_ARGV(4)
  ll_session_t *s;
  uint64_t token = ll_take(env, argv[0], argv[1], &s);
  if (!token) return NULL;
  void *data = NULL;
  size_t len = 0;
  napi_get_buffer_info(env, argv[2], &data, &len);
  uint32_t n;
  napi_get_value_uint32(env, argv[3], &n);
  if (n < len) len = n;
  ll_reply_data(s, token, data, len);
  return NULL;
}

// ll_reply_xattr(session, req, size): the size a getxattr/listxattr size query asked for
NAPI_METHOD(ll_reply_xattr) {
  NAPI_ARGV(3)
  ll_session_t *s;
  uint64_t token = ll_take(env, argv[0], argv[1], &s);
  if (!token) return NULL;
  uint32_t n;
  napi_get_value_uint32(env, argv[2], &n);
  struct fuse_getxattr_out out = { n, 0 };
  ll_reply_data(s, token, &out, sizeof(out));
  return NULL;
}

// ll_reply_readlink(session, req, targetBytes): the target, without a NUL
NAPI_METHOD(ll_reply_readlink) {
  NAPI_ARGV(3)
  ll_session_t *s;
  uint64_t token = ll_take(env, argv[0], argv[1], &s);
  if (!token) return NULL;
  void *data = NULL;
  size_t len = 0;
  napi_get_buffer_info(env, argv[2], &data, &len);
  ll_reply_data(s, token, data, len);
  return NULL;
}

// ll_reply_statfs(session, req, Uint32Array(STATFS_INTS))
NAPI_METHOD(ll_reply_statfs) {
  NAPI_ARGV(3)
  ll_session_t *s;
  uint64_t token = ll_take(env, argv[0], argv[1], &s);
  if (!token) return NULL;
  void *ints;
  size_t n;
  napi_get_typedarray_info(env, argv[2], NULL, &n, &ints, NULL, NULL);
  struct statvfs sv;
  memset(&sv, 0, sizeof(sv));
  if (n >= STATFS_INTS) populate_statvfs((uint32_t *) ints, &sv);
  struct fuse_statfs_out out;
  ll_statfs_of(&sv, &out);
  ll_reply_data(s, token, &out, sizeof(out));
  return NULL;
}

// ll_notify_inval_inode(session, nodeid, offset, length): offset < 0 drops only attributes
// (never waits on page locks, so it is safe while requests are pending). 0 or -errno.
NAPI_METHOD(ll_notify_inval_inode) {
  NAPI_ARGV(4)
  ll_session_t *s = ll_session_of(env, argv[0]);
  double nodeid, off, len;
  napi_get_value_double(env, argv[1], &nodeid);
  napi_get_value_double(env, argv[2], &off);
  napi_get_value_double(env, argv[3], &len);
  int r = -ENOTCONN;
  if (s && !s->exited) {
    struct fuse_notify_inval_inode_out out = { (uint64_t) nodeid, (int64_t) off, (int64_t) len };
    struct iovec v = { &out, sizeof(out) };
    r = ll_notify(s, FUSE_NOTIFY_INVAL_INODE, &v, 1);
  }
  NAPI_RETURN_INT32(r)
}

// ll_no_capability(session, nodeid, seq): the node's file has no security.capability, as JS
// saw when handling a request read at xattr_seq `seq` (see "capability probes").
NAPI_METHOD(ll_no_capability) {
  NAPI_ARGV(3)
  ll_session_t *s = ll_session_of(env, argv[0]);
  double nodeid, seq;
  napi_get_value_double(env, argv[1], &nodeid);
  napi_get_value_double(env, argv[2], &seq);
  if (s == NULL || s->exited) return NULL;
  uv_mutex_lock(&s->nocap_lock);
  if ((uint64_t) seq == s->xattr_seq) ll_nodeset_add(&s->nocap, (uint64_t) nodeid);
  uv_mutex_unlock(&s->nocap_lock);
  return NULL;
}

// ll_notify_inval_entry(session, parentNodeid, nameBytes): 0 or -errno
NAPI_METHOD(ll_notify_inval_entry) {
  NAPI_ARGV(3)
  ll_session_t *s = ll_session_of(env, argv[0]);
  double parent;
  napi_get_value_double(env, argv[1], &parent);
  void *name = NULL;
  size_t len = 0;
  napi_get_buffer_info(env, argv[2], &name, &len);
  int r = -ENOTCONN;
  if (s && !s->exited) {
    struct fuse_notify_inval_entry_out out;
    memset(&out, 0, sizeof(out));
    out.parent = (uint64_t) parent;
    out.namelen = (uint32_t) len;
    char nul = 0;
    struct iovec v[3] = { { &out, sizeof(out) }, { name, len }, { &nul, 1 } };
    r = ll_notify(s, FUSE_NOTIFY_INVAL_ENTRY, v, 3);
  }
  NAPI_RETURN_INT32(r)
}

// ---- entry invalidations, off the JS thread -------------------------------------------------
// FUSE_NOTIFY_INVAL_ENTRY makes the kernel drop a name it looked up, and with it the inode
// unless something holds it (FUSE inodes are not cached unused: FORGET follows). The daemon
// sends it to bound the nodes the kernel makes it keep (src/fuse/ll-ops.ts). The kernel takes
// the parent directory's lock for it, which a LOOKUP there holds until it is answered: written
// from the JS thread, the notification could wait for a reply only that thread can send. So a
// thread of its own writes them, from a queue, on a dup of the /dev/fuse descriptor; it frees
// what it holds and ends when the session does (ll_exited), and is detached: a write waiting
// on a directory lock at the end returns when the unmount aborts the connection.

#define LL_INVAL_QUEUE_MAX 65536

typedef struct ll_inval {
  struct ll_inval *next;
  uint64_t parent;
  uint32_t len;
  char name[];                  // len bytes and a NUL
} ll_inval_t;

typedef struct ll_notifier {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  ll_inval_t *head, *tail;
  size_t queued;
  int stop;
  int fd;                       // a dup of /dev/fuse, the thread's own
} ll_notifier_t;

static void *ll_notifier_run (void *arg) {
  ll_notifier_t *n = (ll_notifier_t *) arg;
  pthread_mutex_lock(&n->mu);
  for (;;) {
    while (n->head == NULL && !n->stop) pthread_cond_wait(&n->cv, &n->mu);
    if (n->stop) break;
    ll_inval_t *it = n->head;
    n->head = it->next;
    if (n->head == NULL) n->tail = NULL;
    n->queued--;
    pthread_mutex_unlock(&n->mu);
    struct fuse_notify_inval_entry_out out;
    memset(&out, 0, sizeof(out));
    out.parent = it->parent;
    out.namelen = it->len;
    struct iovec v[2] = { { &out, sizeof(out) }, { it->name, it->len + 1 } };
    // ENOENT: the name or its parent is gone already; ENODEV: unmounted. Nothing to do.
    (void) ll_write_msg(n->fd, FUSE_NOTIFY_INVAL_ENTRY, 0, v, 2, NULL);
    free(it);
    pthread_mutex_lock(&n->mu);
  }
  while (n->head != NULL) {
    ll_inval_t *it = n->head;
    n->head = it->next;
    free(it);
  }
  pthread_mutex_unlock(&n->mu);
  close(n->fd);
  pthread_cond_destroy(&n->cv);
  pthread_mutex_destroy(&n->mu);
  free(n);
  return NULL;
}

static ll_notifier_t *ll_notifier_start (ll_session_t *s) {
  ll_notifier_t *n = (ll_notifier_t *) calloc(1, sizeof(ll_notifier_t));
  if (n == NULL) return NULL;
  n->fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 3);
  if (n->fd < 0) { free(n); return NULL; }
  pthread_mutex_init(&n->mu, NULL);
  pthread_cond_init(&n->cv, NULL);
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int err = pthread_create(&t, &attr, ll_notifier_run, n);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    close(n->fd);
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    free(n);
    return NULL;
  }
  return n;
}

static void ll_notifier_stop (ll_session_t *s) {
  ll_notifier_t *n = s->notifier;
  if (n == NULL) return;
  s->notifier = NULL;
  pthread_mutex_lock(&n->mu);
  n->stop = 1;
  pthread_cond_signal(&n->cv);
  pthread_mutex_unlock(&n->mu);
}

// ll_queue_inval_entry(session, parentNodeid, nameBytes) -> 1 queued, 0 not (session ended,
// queue full, no thread): the kernel is told by the notifier thread, some time later.
NAPI_METHOD(ll_queue_inval_entry) {
  NAPI_ARGV(3)
  ll_session_t *s = ll_session_of(env, argv[0]);
  double parent = 0;
  void *name = NULL;
  size_t len = 0;
  int queued = 0;
  int args_ok = napi_get_value_double(env, argv[1], &parent) == napi_ok && parent >= 1 &&
                napi_get_buffer_info(env, argv[2], &name, &len) == napi_ok;
  if (args_ok && s && !s->exited && len > 0 && len <= 1024) {
    if (s->notifier == NULL) s->notifier = ll_notifier_start(s);
    ll_notifier_t *n = s->notifier;
    ll_inval_t *it = n ? (ll_inval_t *) malloc(sizeof(ll_inval_t) + len + 1) : NULL;
    if (it != NULL) {
      it->next = NULL;
      it->parent = (uint64_t) parent;
      it->len = (uint32_t) len;
      memcpy(it->name, name, len);
      it->name[len] = 0;
      pthread_mutex_lock(&n->mu);
      if (n->queued < LL_INVAL_QUEUE_MAX) {
        if (n->tail) n->tail->next = it;
        else n->head = it;
        n->tail = it;
        n->queued++;
        queued = 1;
        pthread_cond_signal(&n->cv);
      }
      pthread_mutex_unlock(&n->mu);
      if (!queued) free(it);
    }
  }
  NAPI_RETURN_INT32(queued)
}

// ll_info(session) -> [protoMinor, maxWrite, want, passthrough, uring]
NAPI_METHOD(ll_info) {
  NAPI_ARGV(1)
  ll_session_t *s = ll_session_of(env, argv[0]);
  napi_value arr, v;
  napi_create_array_with_length(env, 5, &arr);
  napi_create_uint32(env, s ? s->proto_minor : 0, &v); napi_set_element(env, arr, 0, v);
  napi_create_uint32(env, s ? s->max_write : 0, &v); napi_set_element(env, arr, 1, v);
  napi_create_uint32(env, s ? s->want : 0, &v); napi_set_element(env, arr, 2, v);
  napi_create_uint32(env, s ? (uint32_t) s->passthrough : 0, &v); napi_set_element(env, arr, 3, v);
  napi_create_uint32(env, s ? (uint32_t) s->ring_on : 0, &v); napi_set_element(env, arr, 4, v);
  return arr;
}

// ll_exited(session): the JS side saw LL_OP_EXIT. Later replies are dropped; once nothing is
// outstanding the session, its channel (the /dev/fuse fd) and the async handle are released.
static void ll_closed_cb (uv_handle_t *h) {
  ll_session_t *s = (ll_session_t *) h->data;
  if (--s->closing > 0) return;
  if (s->ents) {
    ll_uring_exit(&s->ring);
    ll_ring_free(s);
  }
  uv_mutex_destroy(&s->lock);
  uv_mutex_destroy(&s->nocap_lock);
  free(s->nocap.keys);
  free(s);
}

NAPI_METHOD(ll_exited) {
  NAPI_ARGV(1)
  ll_session_t *s = ll_session_of(env, argv[0]);
  if (s == NULL || s->closed) return NULL;
  s->exited = 1;
  s->closed = 1;
  ll_notifier_stop(s);
  ll_ring_stop(s);
  if (s->threaded) pthread_join(s->thread, NULL);
  uv_handle_t *h = s->threaded ? (uv_handle_t *) &s->async : (uv_handle_t *) &s->poll;
  // A request JS still holds would reply into a destroyed session: keep it (a small leak at
  // the end of a mount) unless every request was answered.
  if (s->outstanding == 0) {
    fuse_chan_destroy(s->ch);
    napi_async_destroy(env, s->actx);
    napi_delete_reference(env, s->dispatch);
    napi_delete_reference(env, s->statbuf_ref);
    free(s->iobuf);
    s->iobuf = NULL;
    free(s->rbuf);
    s->rbuf = NULL;
    s->closing = s->ents ? 2 : 1;
    uv_close(h, ll_closed_cb);
    if (s->ents) uv_close((uv_handle_t *) &s->ring_poll, ll_closed_cb);
  } else {
    uv_unref(h);
    if (s->ents) uv_unref((uv_handle_t *) &s->ring_poll);
  }
  return NULL;
}

// ll_dup_fd(fd) -> a descriptor of the same open file, for the kernel's handle (fi->fh)
NAPI_METHOD(ll_dup_fd) {
  NAPI_ARGV(1)
  NAPI_ARGV_INT32(fd, 0)
  int r = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (r >= 0) ll_fh_attr_clear(r);
  NAPI_RETURN_INT32(r < 0 ? -errno : r)
}

// ll_retarget_fd(handleFd, fd): the kernel's handle now reads and writes fd's file (atomic
// for a read or write in flight in the FUSE thread: it sees the old file or the new one).
NAPI_METHOD(ll_retarget_fd) {
  NAPI_ARGV(2)
  NAPI_ARGV_INT32(hfd, 0)
  NAPI_ARGV_INT32(fd, 1)
  ll_fh_attr_clear(hfd);
  int r = dup3(fd, hfd, O_CLOEXEC);
  NAPI_RETURN_INT32(r < 0 ? -errno : 0)
}

// ll_fh_attr(handleFd, ino: bigint, attrTimeout): GETATTRs with this handle are answered in C
// (see "attributes of open files"), with st_ino `ino`.
NAPI_METHOD(ll_fh_attr) {
  NAPI_ARGV(3)
  NAPI_ARGV_INT32(fd, 0)
  uint64_t ino = 0;
  bool lossless;
  napi_get_value_bigint_uint64(env, argv[1], &ino, &lossless);
  double timeout;
  napi_get_value_double(env, argv[2], &timeout);
  if (ino != 0) ll_fh_attr_set(fd, ino, timeout);
  return NULL;
}

// ll_node_fd(nodeid, fd): GETATTRs of the node without a handle are answered from fd (registered
// with ll_fh_attr); fd < 0: no longer.
NAPI_METHOD(ll_node_fd) {
  NAPI_ARGV(2)
  double node;
  napi_get_value_double(env, argv[0], &node);
  NAPI_ARGV_INT32(fd, 1)
  ll_node_fd_set((uint64_t) node, fd);
  return NULL;
}

// ll_close_fd(handleFd): the kernel released the handle
NAPI_METHOD(ll_close_fd) {
  NAPI_ARGV(1)
  NAPI_ARGV_INT32(fd, 0)
  ll_fh_attr_clear(fd);
  NAPI_RETURN_INT32(close(fd) < 0 ? -errno : 0)
}

// The addon's version, checked by src/fuse/native-module.ts against the code it was built for.
static const uint32_t layerfs_lowlevel_version = 1;

NAPI_INIT() {
  NAPI_EXPORT_UINT32(layerfs_lowlevel_version)
  NAPI_EXPORT_FUNCTION(ll_dup_fd)
  NAPI_EXPORT_FUNCTION(ll_retarget_fd)
  NAPI_EXPORT_FUNCTION(ll_close_fd)
  NAPI_EXPORT_FUNCTION(ll_fh_attr)
  NAPI_EXPORT_FUNCTION(ll_node_fd)
  NAPI_EXPORT_FUNCTION(ll_mount)
  NAPI_EXPORT_FUNCTION(ll_reply_err)
  NAPI_EXPORT_FUNCTION(ll_reply_entry)
  NAPI_EXPORT_FUNCTION(ll_reply_create)
  NAPI_EXPORT_FUNCTION(ll_reply_attr)
  NAPI_EXPORT_FUNCTION(ll_reply_statx)
  NAPI_EXPORT_FUNCTION(ll_reply_open)
  NAPI_EXPORT_FUNCTION(ll_reply_buf)
  NAPI_EXPORT_FUNCTION(ll_reply_xattr)
  NAPI_EXPORT_FUNCTION(ll_reply_readlink)
  NAPI_EXPORT_FUNCTION(ll_reply_statfs)
  NAPI_EXPORT_FUNCTION(ll_notify_inval_inode)
  NAPI_EXPORT_FUNCTION(ll_notify_inval_entry)
  NAPI_EXPORT_FUNCTION(ll_no_capability)
  NAPI_EXPORT_FUNCTION(ll_queue_inval_entry)
  NAPI_EXPORT_FUNCTION(ll_info)
  NAPI_EXPORT_FUNCTION(ll_backing_open)
  NAPI_EXPORT_FUNCTION(ll_backing_close)
  NAPI_EXPORT_FUNCTION(ll_exited)
}
