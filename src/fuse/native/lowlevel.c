// layerfs's FUSE session: libfuse 2.9's lowlevel API (the libfuse fuse-native links, from
// fuse-shared-library) driven from Node.js, with what the kernel's later protocol minors add
// around it. Its own addon (binding.gyp here, built by scripts/build-native.sh into
// build/Release/lowlevel.node, loaded by src/fuse/native-module.ts). See
// native-notes/lowlevel-binding.md for why it exists.
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
// Either way, READ, WRITE and FLUSH are answered in C where they are read, on the real file's
// descriptor (see ll_read); every other request callback copies what it needs (names, xattr
// values) into one malloc'd block and appends it to a queue; the JS thread drains the queue,
// calls the JS dispatcher once per request, and JS answers with the ll_reply_* functions
// below, synchronously or later (libfuse's lowlevel replies may come from any thread). forget
// is answered where it is read (it has no reply) and only reported.
//
// Protocol: see "protocol" below (FUSE 7.40 answered around libfuse 2.9's 7.19).

#define FUSE_USE_VERSION 29

#include <uv.h>
#include <node_api.h>
#include <napi-macros.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <dirent.h>
#include <sys/stat.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <fuse_lowlevel.h>
#include <fuse_kernel.h>

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

typedef struct ll_req {
  struct ll_req *next;
  fuse_req_t req;
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
  struct fuse_session *se;
  struct fuse_chan *ch;     // fuse_mount's channel: owns the /dev/fuse descriptor
  struct fuse_chan *sch;    // the session's channel (ll_chan_ops), on the same descriptor
  uint32_t proto_max;       // the protocol minor we answer INIT with, at most (see ll_init_reply)
  uint64_t init_unique;     // INIT's request id, to recognise libfuse's reply
  uint32_t kernel_flags;    // the capabilities the kernel offered in INIT
  uint32_t kernel_flags2;   // and the ones above bit 31 (FUSE_INIT_EXT, 7.36)
  uint32_t kernel_minor;    // the protocol minor the kernel speaks
  uint32_t stack_depth;     // passthrough wanted: the max_stack_depth to ask for; 0 not wanted
  int passthrough;          // INIT negotiated FUSE_PASSTHROUGH (see "passthrough" below)
  int next_plus;            // the request being processed was a READDIRPLUS (now a READDIR)
  uint32_t next_rename_flags; // the request being processed was a RENAME2 (now a RENAME): its flags
  int next_tmpfile;         // the request being processed was a TMPFILE (now a CREATE)
  int next_statx;           // the request being processed was a STATX (now a GETATTR)
  uint64_t next_dir_fh;     // the last directory handle given (ll_opendir)
  int threaded;             // 1: a FUSE thread reads requests; 0: the JS thread polls the device
  pthread_t thread;
  uv_async_t async;         // threaded: wakes the JS thread
  uv_poll_t poll;           // not threaded: the device is readable
  int polling;
  uint64_t spin_ns;         // not threaded: how long to wait awake for the next request
  char *rbuf;               // not threaded: the request buffer
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
  char *iobuf;              // the FUSE thread's read buffer
  size_t iobuf_size;
  // what INIT negotiated
  uint32_t proto_minor, max_write, want;
  struct ll_notifier *notifier;  // entry invalidations off the JS thread (started on first use)
  // Nodes without security.capability (see "capability probes" below), under nocap_lock.
  uv_mutex_t nocap_lock;
  struct ll_nodeset { uint64_t *keys; size_t cap, n; } nocap;
  uint64_t xattr_seq;       // SETXATTRs read so far
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

static void ll_enqueue (ll_session_t *s, ll_req_t *r) {
  r->next = NULL;
  uv_mutex_lock(&s->lock);
  if (s->tail) s->tail->next = r;
  else s->head = r;
  s->tail = r;
  uv_mutex_unlock(&s->lock);
  if (s->threaded) uv_async_send(&s->async);
}

// One block: the struct, then the names and data it points to (NUL-terminated copies).
static ll_req_t * ll_new (fuse_req_t req, uint32_t op, fuse_ino_t ino,
    const char *name, const char *name2, size_t name2len) {
  size_t nl = name ? strlen(name) : 0;
  size_t n2 = name2 ? name2len : 0;
  ll_req_t *r = (ll_req_t *) calloc(1, sizeof(ll_req_t) + (name ? nl + 1 : 0) + (name2 ? n2 + 1 : 0));
  if (r == NULL) return NULL;
  char *p = (char *) (r + 1);
  r->req = req;
  r->op = op;
  r->ino = ino;
  if (name) { r->name = p; memcpy(p, name, nl + 1); r->namelen = nl; p += nl + 1; }
  if (name2) { r->name2 = p; memcpy(p, name2, n2); p[n2] = 0; r->name2len = n2; }
  if (req) {
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    r->uid = ctx->uid;
    r->gid = ctx->gid;
    r->pid = ctx->pid;
    r->umask = ctx->umask;
  }
  return r;
}

#define LL_SESSION(req) ((ll_session_t *) fuse_req_userdata(req))
#define LL_NEW_OR_FAIL(r, req, ...) \
  ll_req_t *r = ll_new(req, __VA_ARGS__); \
  if (r == NULL) { fuse_reply_err(req, ENOMEM); return; }

static void ll_set_fi (ll_req_t *r, struct fuse_file_info *fi) {
  if (fi) { r->fh = fi->fh; r->has_fh = 1; r->flags = fi->flags; }
}

static void ll_init (void *userdata, struct fuse_conn_info *conn) {
  ll_session_t *s = (ll_session_t *) userdata;
  // What libfuse answers: the lower of the kernel's minor and its own (ll_init_reply may raise it).
  s->proto_minor = conn->proto_minor < FUSE_KERNEL_MINOR_VERSION ? conn->proto_minor : FUSE_KERNEL_MINOR_VERSION;
  s->max_write = conn->max_write;
  s->want = conn->want;
  // JS hears of INIT once the reply is out (ll_process), with what it negotiated.
}

static void ll_lookup (fuse_req_t req, fuse_ino_t parent, const char *name) {
  LL_NEW_OR_FAIL(r, req, LL_OP_LOOKUP, parent, name, NULL, 0)
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_forget (fuse_req_t req, fuse_ino_t ino, unsigned long nlookup) {
  ll_session_t *s = LL_SESSION(req);
  fuse_reply_none(req);
  uv_mutex_lock(&s->nocap_lock);
  ll_nodeset_remove(&s->nocap, ino);
  uv_mutex_unlock(&s->nocap_lock);
  ll_req_t *r = ll_new(NULL, LL_OP_FORGET, ino, NULL, NULL, 0);
  if (r == NULL) return; // the node stays known: a leak, never a wrong answer
  r->size = nlookup;
  ll_enqueue(s, r);
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

static void ll_reply_statx_of (fuse_req_t req, const struct stat *st, double timeout, const struct statx_timestamp *btime);

static void ll_getattr (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  ll_fh_attr_t fa;
  struct stat st;
  // fi: the kernel sent the handle (FUSE_GETATTR_FH, regular files only); else the node's own
  // descriptor, if it has one.
  int fd = fi ? (int) fi->fh : -1;
  if (LL_SESSION(req)->next_statx) {
    // STATX (7.39): what GETATTR answers and the birth time. From the descriptor as below, with
    // statx(2) for the birth time; else JS.
    struct statx sx;
    if (ll_registered_attr(fd, ino, &fa, &st, &sx)) {
      st.st_ino = fa.ino;
      ll_reply_statx_of(req, &st, fa.timeout, (sx.stx_mask & STATX_BTIME) ? &sx.stx_btime : NULL);
      return;
    }
    LL_NEW_OR_FAIL(r, req, LL_OP_STATX, ino, NULL, NULL, 0)
    if (fi) { r->fh = fi->fh; r->has_fh = 1; }
    ll_enqueue(LL_SESSION(req), r);
    return;
  }
  if (ll_registered_attr(fd, ino, &fa, &st, NULL)) {
    st.st_ino = fa.ino;
    st.st_dev = 0;
    fuse_reply_attr(req, &st, fa.timeout);
    return;
  }
  LL_NEW_OR_FAIL(r, req, LL_OP_GETATTR, ino, NULL, NULL, 0)
  if (fi) { r->fh = fi->fh; r->has_fh = 1; }
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_setattr (fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  LL_NEW_OR_FAIL(r, req, LL_OP_SETATTR, ino, NULL, NULL, 0)
  r->attr = *attr;
  r->mode = (uint32_t) to_set;
  if (fi) { r->fh = fi->fh; r->has_fh = 1; }
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_readlink (fuse_req_t req, fuse_ino_t ino) {
  LL_NEW_OR_FAIL(r, req, LL_OP_READLINK, ino, NULL, NULL, 0)
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_mknod (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  LL_NEW_OR_FAIL(r, req, LL_OP_MKNOD, parent, name, NULL, 0)
  r->mode = mode;
  r->rdev = (uint32_t) rdev;
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_mkdir (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  LL_NEW_OR_FAIL(r, req, LL_OP_MKDIR, parent, name, NULL, 0)
  r->mode = mode;
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_unlink (fuse_req_t req, fuse_ino_t parent, const char *name) {
  LL_NEW_OR_FAIL(r, req, LL_OP_UNLINK, parent, name, NULL, 0)
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_rmdir (fuse_req_t req, fuse_ino_t parent, const char *name) {
  LL_NEW_OR_FAIL(r, req, LL_OP_RMDIR, parent, name, NULL, 0)
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_symlink (fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  LL_NEW_OR_FAIL(r, req, LL_OP_SYMLINK, parent, name, link, strlen(link))
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_rename (fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname) {
  LL_NEW_OR_FAIL(r, req, LL_OP_RENAME, parent, name, newname, strlen(newname))
  r->ino2 = newparent;
  r->flags = LL_SESSION(req)->next_rename_flags;
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_link (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  LL_NEW_OR_FAIL(r, req, LL_OP_LINK, ino, NULL, newname, strlen(newname))
  r->ino2 = newparent;
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_open (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  LL_NEW_OR_FAIL(r, req, LL_OP_OPEN, ino, NULL, NULL, 0)
  r->flags = fi->flags;
  ll_enqueue(LL_SESSION(req), r);
}

// Data goes between the kernel and the real file in this thread: the handle the kernel holds
// (fi->fh) is a descriptor of the real file that JS gave us at open (ll_dup_fd), never a JS
// object, so READ and WRITE never wait for the JS thread. JS swaps the file behind it with
// dup2 when a lower file is copied up (ll_retarget_fd), and closes it at release.
static void ll_read (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  ll_session_t *s = LL_SESSION(req);
  if (size > s->iobuf_size) {
    char *b = (char *) realloc(s->iobuf, size);
    if (b == NULL) { fuse_reply_err(req, ENOMEM); return; }
    s->iobuf = b;
    s->iobuf_size = size;
  }
  size_t done = 0;
  while (done < size) {
    ssize_t n = pread((int) fi->fh, s->iobuf + done, size - done, off + (off_t) done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { fuse_reply_err(req, errno); return; }
    if (n == 0) break;
    done += (size_t) n;
  }
  fuse_reply_buf(req, s->iobuf, done);
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

static void ll_kill_sgid (fuse_req_t req, fuse_ino_t ino, int fd) {
  ll_fh_attr_t fa;
  struct stat st;
  if (!ll_fh_attr_get(fd, &fa) || fstat(fd, &st) != 0) return;
  if (!S_ISREG(st.st_mode) || (st.st_mode & (S_ISGID | S_IXGRP)) != S_ISGID) return;
  const struct fuse_ctx *c = fuse_req_ctx(req);
  if (c->uid == 0 || c->gid == st.st_gid || ll_in_groups((uint32_t) c->pid, st.st_gid)) return;
  if (fchmod(fd, st.st_mode & 07777 & ~S_ISGID) != 0) return;
  // The kernel still holds the old mode, and a write drops only the size and times it caches:
  // without this, stat(2) asking for the mode alone (statx with STATX_MODE) got S_ISGID back.
  // Attributes only (offset -1: no pages), which takes no lock the writer holds.
  ll_session_t *s = LL_SESSION(req);
  if (!s->exited) fuse_lowlevel_notify_inval_inode(s->sch, ino, -1, 0);
}

static void ll_write (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  ssize_t n;
  ll_kill_sgid(req, ino, (int) fi->fh);
  do n = pwrite((int) fi->fh, buf, size, off); while (n < 0 && errno == EINTR);
  if (n < 0) fuse_reply_err(req, errno);
  else fuse_reply_write(req, (size_t) n);
}

// close(2) has nothing to do here (data goes straight to the real files, locks are the
// kernel's). ENOSYS, once: the kernel then never sends FLUSH again (fc->no_flush) and a
// close succeeds without a round trip to us, as fuse-overlayfs's do (it has no flush).
static void ll_flush (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  fuse_reply_err(req, ENOSYS);
}

static void ll_release (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  LL_NEW_OR_FAIL(r, req, LL_OP_RELEASE, ino, NULL, NULL, 0)
  ll_set_fi(r, fi);
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_fsync (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  LL_NEW_OR_FAIL(r, req, LL_OP_FSYNC, ino, NULL, NULL, 0)
  ll_set_fi(r, fi);
  r->flags = (uint32_t) datasync;
  ll_enqueue(LL_SESSION(req), r);
}

// Directory handles are numbers of ours: OPENDIR is answered here (JS makes its handle at the
// first READDIR of it), and RELEASEDIR too (JS only hears of it, as of FORGET). The kernel
// checked the caller's permissions before it sent OPENDIR; what a directory lists is decided
// at READDIR. The listing may stay in the kernel's page cache (FOPEN_CACHE_DIR, KEEP_CACHE):
// it drops it itself when a request of its own changes the directory, and JS drops it for
// the changes it makes otherwise (a broken lower hard link's d_ino). `git status` of 859
// directories: 1,718 of its 2,644 requests, warm.
struct ll_dir_open_out { uint64_t fh; uint32_t open_flags; uint32_t padding; };

static void ll_opendir (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  ll_session_t *s = LL_SESSION(req);
  struct ll_dir_open_out out;
  memset(&out, 0, sizeof(out));
  out.fh = ++s->next_dir_fh;
  out.open_flags = (1 << 3) /* FOPEN_CACHE_DIR */ | (1 << 1) /* FOPEN_KEEP_CACHE */;
  fuse_reply_buf(req, (const char *) &out, sizeof(out));
}

static void ll_readdir (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  LL_NEW_OR_FAIL(r, req, LL_SESSION(req)->next_plus ? LL_OP_READDIRPLUS : LL_OP_READDIR, ino, NULL, NULL, 0)
  ll_set_fi(r, fi);
  r->size = size;
  r->off = off;
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_releasedir (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  ll_session_t *s = LL_SESSION(req);
  uint64_t fh = fi->fh;
  fuse_reply_err(req, 0);
  ll_req_t *r = ll_new(NULL, LL_OP_RELEASEDIR, ino, NULL, NULL, 0);
  if (r == NULL) return; // JS keeps the handle: a leak, never a wrong answer
  r->fh = fh;
  r->has_fh = 1;
  ll_enqueue(s, r);
}

static void ll_fsyncdir (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  LL_NEW_OR_FAIL(r, req, LL_OP_FSYNCDIR, ino, NULL, NULL, 0)
  ll_set_fi(r, fi);
  r->flags = (uint32_t) datasync;
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_statfs (fuse_req_t req, fuse_ino_t ino) {
  LL_NEW_OR_FAIL(r, req, LL_OP_STATFS, ino, NULL, NULL, 0)
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_setxattr (fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  ll_session_t *s = LL_SESSION(req);
  uv_mutex_lock(&s->nocap_lock);
  s->xattr_seq++;
  ll_nodeset_remove(&s->nocap, ino);
  uv_mutex_unlock(&s->nocap_lock);
  LL_NEW_OR_FAIL(r, req, LL_OP_SETXATTR, ino, name, value ? value : "", value ? size : 0)
  r->flags = (uint32_t) flags;
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_getxattr (fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  ll_session_t *s = LL_SESSION(req);
  uint64_t seq = 0;
  if (strcmp(name, ll_capability) == 0) {
    size_t at;
    uv_mutex_lock(&s->nocap_lock);
    int none = ll_nodeset_find(&s->nocap, ino, &at);
    seq = s->xattr_seq;
    uv_mutex_unlock(&s->nocap_lock);
    if (none) { fuse_reply_err(req, ENODATA); return; }
  }
  LL_NEW_OR_FAIL(r, req, LL_OP_GETXATTR, ino, name, NULL, 0)
  r->size = size;
  r->off = (int64_t) seq;
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_listxattr (fuse_req_t req, fuse_ino_t ino, size_t size) {
  LL_NEW_OR_FAIL(r, req, LL_OP_LISTXATTR, ino, NULL, NULL, 0)
  r->size = size;
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_removexattr (fuse_req_t req, fuse_ino_t ino, const char *name) {
  LL_NEW_OR_FAIL(r, req, LL_OP_REMOVEXATTR, ino, name, NULL, 0)
  ll_enqueue(LL_SESSION(req), r);
}

static void ll_create (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  ll_session_t *s = LL_SESSION(req);
  LL_NEW_OR_FAIL(r, req, s->next_tmpfile ? LL_OP_TMPFILE : LL_OP_CREATE, parent, name, NULL, 0)
  r->mode = mode;
  r->flags = fi->flags;
  uv_mutex_lock(&s->nocap_lock);
  r->off = (int64_t) s->xattr_seq;
  uv_mutex_unlock(&s->nocap_lock);
  ll_enqueue(LL_SESSION(req), r);
}

// The kernel sends FALLOCATE only for a file open for writing, which is an upper (or volume)
// file: done here on its descriptor, as WRITE is; the kernel updates its size and drops its
// pages of a punched or zeroed range itself. Every mode the upper filesystem has, as kernel
// overlayfs (the kernel's FUSE passes KEEP_SIZE, PUNCH_HOLE and ZERO_RANGE).
static void ll_fallocate (fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, struct fuse_file_info *fi) {
  int r;
  ll_kill_sgid(req, ino, (int) fi->fh);
  do r = fallocate((int) fi->fh, mode, offset, length); while (r < 0 && errno == EINTR);
  fuse_reply_err(req, r < 0 ? errno : 0);
}

static const struct fuse_lowlevel_ops ll_ops = {
  .init = ll_init,
  .lookup = ll_lookup,
  .forget = ll_forget,
  .getattr = ll_getattr,
  .setattr = ll_setattr,
  .readlink = ll_readlink,
  .mknod = ll_mknod,
  .mkdir = ll_mkdir,
  .unlink = ll_unlink,
  .rmdir = ll_rmdir,
  .symlink = ll_symlink,
  .rename = ll_rename,
  .link = ll_link,
  .open = ll_open,
  .read = ll_read,
  .write = ll_write,
  .flush = ll_flush,
  .release = ll_release,
  .fsync = ll_fsync,
  .opendir = ll_opendir,
  .readdir = ll_readdir,
  .releasedir = ll_releasedir,
  .fsyncdir = ll_fsyncdir,
  .statfs = ll_statfs,
  .setxattr = ll_setxattr,
  .getxattr = ll_getxattr,
  .listxattr = ll_listxattr,
  .removexattr = ll_removexattr,
  .create = ll_create,
  .fallocate = ll_fallocate,
};

// ---- protocol: libfuse 2.9 speaks FUSE 7.19; the kernel and we speak more -----------------
// libfuse 2.9 answers INIT with minor 19, which leaves out what later kernels can do and a
// union filesystem needs most: READDIRPLUS (7.21: a listing carries each entry's attributes,
// so `ls -l`, du and tar need no LOOKUP per name) and max_pages (7.28: 1 MiB reads and writes
// instead of 128 KiB). The request and reply layouts libfuse handles are the same at 7.28, so
// libfuse keeps doing the protocol, and two things are done around it:
//  - its INIT reply is rewritten on the way out (ll_chan_send -> ll_init_reply): the minor
//    raised to proto_max and the capabilities added that the kernel offered;
//  - a READDIRPLUS request is handed to libfuse as the READDIR it resembles (the same
//    fuse_read_in), flagged (next_plus) so that ll_readdir passes it to JS as READDIRPLUS;
//    JS answers with a buffer of fuse_direntplus records.
//  - four requests of later minors are taken before libfuse sees them: RENAME2 (7.23) is
//    handed to libfuse as the RENAME it resembles, its flags kept for ll_rename (next_rename_flags);
//    TMPFILE (7.37) as the CREATE it resembles, flagged (next_tmpfile);
//    LSEEK (7.24: SEEK_DATA, SEEK_HOLE) and COPY_FILE_RANGE (7.28) are answered here, on the
//    real files' descriptors, as READ and WRITE are (ll_answer).
// STATX (7.39) is handed to libfuse as the GETATTR it starts as, flagged (next_statx): answered
// with the birth time too. Other opcodes of later minors (SYNCFS, ...) get libfuse's ENOSYS,
// after which the kernel falls back to what it did before them. proto_max 19 turns all of
// this off.

#define LL_FUSE_READDIRPLUS 44
#define LL_FUSE_RENAME2 45
#define LL_FUSE_LSEEK 46
#define LL_FUSE_COPY_FILE_RANGE 47
#define LL_FUSE_TMPFILE 51
#define LL_FUSE_STATX 52
#define LL_FUSE_DO_READDIRPLUS (1u << 13)
#define LL_FUSE_READDIRPLUS_AUTO (1u << 14)
#define LL_FUSE_PARALLEL_DIROPS (1u << 18)
#define LL_FUSE_MAX_PAGES (1u << 22)
#define LL_FUSE_CACHE_SYMLINKS (1u << 23)
#define LL_FUSE_INIT_EXT (1u << 30)
#define LL_FUSE_PASSTHROUGH2 (1u << 5)  // FUSE_PASSTHROUGH (1ULL << 37), in flags2 (7.40)
#define LL_MAX_PAGES 256            // 1 MiB requests (the kernel's default fuse_max_pages_limit)

// fuse_init_out as of 7.28 (64 bytes); libfuse's is the first 24.
typedef struct {
  uint32_t major, minor, max_readahead, flags;
  uint16_t max_background, congestion_threshold;
  uint32_t max_write, time_gran;
  uint16_t max_pages, map_alignment;
  uint32_t flags2, max_stack_depth, unused[6];
} ll_init_out_t;

// The request buffer: the largest WRITE we allow and its header.
static size_t ll_bufsize (ll_session_t *s) {
  size_t page = (size_t) getpagesize();
  size_t want = s->proto_max >= 28 ? (size_t) LL_MAX_PAGES * page + page : 0;
  size_t base = fuse_chan_bufsize(s->ch);
  return want > base ? want : base;
}

static int ll_init_reply (ll_session_t *s, const struct iovec iov[], size_t count) {
  struct fuse_out_header oh;
  ll_init_out_t out;
  memset(&out, 0, sizeof(out));
  if (count != 2 || iov[0].iov_len != sizeof(oh) || iov[1].iov_len > sizeof(out)) return 0;
  memcpy(&oh, iov[0].iov_base, sizeof(oh));
  if (oh.error != 0) return 0;
  memcpy(&out, iov[1].iov_base, iov[1].iov_len);
  if (out.major != 7) return 0;
  // The lower of the kernel's minor and ours, and never below libfuse's own.
  uint32_t minor = s->kernel_minor < s->proto_max ? s->kernel_minor : s->proto_max;
  if (out.minor >= minor) return 0;
  uint32_t offered = s->kernel_flags;
  out.minor = minor;
  out.flags |= offered & (LL_FUSE_DO_READDIRPLUS | LL_FUSE_READDIRPLUS_AUTO);
  // A node's symlink target never changes (a union inode is one object; a new target is a new
  // symlink, a new node), so the kernel may keep it (7.28) and walks through the link stop
  // asking READLINK. Lookups and listings in one directory may run side by side (7.25): the
  // kernel then takes the directory's lock shared for them; every change still takes it alone.
  if (minor >= 28) out.flags |= offered & (LL_FUSE_CACHE_SYMLINKS | LL_FUSE_PARALLEL_DIROPS);
  if (minor >= 28 && (offered & LL_FUSE_MAX_PAGES)) {
    size_t page = (size_t) getpagesize();
    out.flags |= LL_FUSE_MAX_PAGES;
    out.max_pages = LL_MAX_PAGES;
    out.max_write = (uint32_t) (LL_MAX_PAGES * page);
  }
  // Passthrough (7.40): the kernel does READ and WRITE of a file we open so on its backing file
  // itself. Our superblock then counts as stacked stack_depth deep; a backing file must sit on
  // a filesystem less deep than that (the kernel refuses it with ELOOP, and the open falls back).
  if (minor >= 40 && s->stack_depth > 0 && (s->kernel_flags2 & LL_FUSE_PASSTHROUGH2)) {
    out.flags |= LL_FUSE_INIT_EXT;
    out.flags2 |= LL_FUSE_PASSTHROUGH2;
    out.max_stack_depth = s->stack_depth;
    s->passthrough = 1;
  }
  s->max_write = out.max_write;
  s->proto_minor = out.minor;
  oh.len = sizeof(oh) + sizeof(out);
  struct iovec v[2] = { { &oh, sizeof(oh) }, { &out, sizeof(out) } };
  ssize_t n = writev(fuse_chan_fd(s->ch), v, 2);
  return n < 0 ? -errno : 1;
}

static int ll_chan_send (struct fuse_chan *ch, const struct iovec iov[], size_t count) {
  ll_session_t *s = (ll_session_t *) fuse_chan_data(ch);
  if (iov == NULL) return 0;
  if (s->init_unique != 0 && count > 0 && iov[0].iov_len >= sizeof(struct fuse_out_header) &&
      ((const struct fuse_out_header *) iov[0].iov_base)->unique == s->init_unique) {
    s->init_unique = 0;
    int r = ll_init_reply(s, iov, count);
    if (r != 0) return r < 0 ? r : 0;
  }
  // As fuse_kern_chan_send.
  ssize_t n = writev(fuse_chan_fd(ch), iov, count);
  if (n < 0) {
    int err = errno;
    if (!fuse_session_exited(s->se) && err != ENOENT) perror("fuse: writing device");
    return -err;
  }
  return 0;
}

// As fuse_kern_chan_receive.
static int ll_chan_receive (struct fuse_chan **chp, char *buf, size_t size) {
  struct fuse_chan *ch = *chp;
  ll_session_t *s = (ll_session_t *) fuse_chan_data(ch);
  ssize_t n;
  for (;;) {
    n = read(fuse_chan_fd(ch), buf, size);
    if (fuse_session_exited(s->se)) return 0;
    if (n >= 0 || errno != ENOENT) break;
  }
  if (n < 0) {
    int err = errno;
    if (err == ENODEV) { fuse_session_exit(s->se); return 0; }
    if (err != EINTR && err != EAGAIN) perror("fuse: reading device");
    return -err;
  }
  if ((size_t) n < sizeof(struct fuse_in_header)) {
    fprintf(stderr, "fuse: short read on fuse device\n");
    return -EIO;
  }
  return (int) n;
}

// fuse_mount's channel keeps the descriptor; this one only borrows it.
static void ll_chan_destroy (struct fuse_chan *ch) {}

static struct fuse_chan_ops ll_chan_ops = {
  .receive = ll_chan_receive,
  .send = ll_chan_send,
  .destroy = ll_chan_destroy,
};

// The request layouts of later minors (fuse_kernel.h 7.28); the replies' too.
struct ll_rename2_in { uint64_t newdir; uint32_t flags, padding; };
struct ll_lseek_in { uint64_t fh, offset; uint32_t whence, padding; };
struct ll_lseek_out { uint64_t offset; };
struct ll_copy_file_range_in { uint64_t fh_in, off_in, nodeid_out, fh_out, off_out, len, flags; };
struct ll_write_out { uint32_t size, padding; };

// The most COPY_FILE_RANGE copies in one request: it is done on the thread that reads requests
// (the JS thread, by default), and a short copy is a valid answer (callers go on from there).
#define LL_COPY_MAX (8u << 20)

// A reply made here, for a request libfuse never saw. err: positive errno, or 0.
static void ll_reply_raw (ll_session_t *s, uint64_t unique, int err, const void *arg, size_t size) {
  struct fuse_out_header oh;
  oh.unique = unique;
  oh.error = err ? -err : 0;
  oh.len = (uint32_t) (sizeof(oh) + (err ? 0 : size));
  struct iovec v[2] = { { &oh, sizeof(oh) }, { (void *) arg, size } };
  ssize_t n;
  do n = writev(fuse_chan_fd(s->ch), v, err || size == 0 ? 1 : 2); while (n < 0 && errno == EINTR);
  // ENOENT: the request was interrupted and is gone; nothing else is ours to report.
}

// LSEEK and COPY_FILE_RANGE, answered where they are read; 1 if the request was one of them.
static int ll_answer (ll_session_t *s, struct fuse_in_header *ih, size_t len) {
  const void *in = ih + 1;
  size_t inlen = len - sizeof(*ih);
  if (ih->opcode == LL_FUSE_LSEEK) {
    if (inlen < sizeof(struct ll_lseek_in)) { ll_reply_raw(s, ih->unique, EINVAL, NULL, 0); return 1; }
    const struct ll_lseek_in *a = (const struct ll_lseek_in *) in;
    // The descriptor's position is not ours to keep: READ and WRITE use pread and pwrite.
    off_t r = lseek((int) a->fh, (off_t) a->offset, (int) a->whence);
    struct ll_lseek_out out = { (uint64_t) r };
    ll_reply_raw(s, ih->unique, r < 0 ? errno : 0, &out, sizeof(out));
    return 1;
  }
  if (ih->opcode == LL_FUSE_COPY_FILE_RANGE) {
    if (inlen < sizeof(struct ll_copy_file_range_in)) { ll_reply_raw(s, ih->unique, EINVAL, NULL, 0); return 1; }
    const struct ll_copy_file_range_in *a = (const struct ll_copy_file_range_in *) in;
    off_t off_in = (off_t) a->off_in, off_out = (off_t) a->off_out;
    size_t n = a->len > LL_COPY_MAX ? LL_COPY_MAX : (size_t) a->len;
    ssize_t r;
    do r = copy_file_range((int) a->fh_in, &off_in, (int) a->fh_out, &off_out, n, (unsigned) a->flags);
    while (r < 0 && errno == EINTR);
    struct ll_write_out out = { (uint32_t) (r < 0 ? 0 : r), 0 };
    ll_reply_raw(s, ih->unique, r < 0 ? errno : 0, &out, sizeof(out));
    return 1;
  }
  return 0;
}

// One request read from the device: what libfuse must not see as it is, then libfuse.
static void ll_process (ll_session_t *s, struct fuse_buf *fbuf, struct fuse_chan *ch) {
  struct fuse_in_header *ih = (struct fuse_in_header *) fbuf->mem;
  int init = ih->opcode == FUSE_INIT;
  if (init && fbuf->size >= sizeof(*ih) + sizeof(struct fuse_init_in)) {
    struct fuse_init_in *ii = (struct fuse_init_in *) (ih + 1);
    s->init_unique = ih->unique;
    s->kernel_flags = ii->flags;
    s->kernel_minor = ii->minor;
    // fuse_init_in of 7.36 goes on with flags2 (after 16 bytes) when FUSE_INIT_EXT is set.
    if ((ii->flags & LL_FUSE_INIT_EXT) && fbuf->size >= sizeof(*ih) + 20)
      memcpy(&s->kernel_flags2, (char *) (ih + 1) + 16, 4);
  } else if (ih->opcode == LL_FUSE_READDIRPLUS) {
    ih->opcode = FUSE_READDIR;
    s->next_plus = 1;
  } else if (s->proto_minor < 28 || ih->len > fbuf->size) {
    // libfuse's ENOSYS (or its complaint about a short request)
  } else if (ih->opcode == LL_FUSE_RENAME2 && ih->len >= sizeof(*ih) + sizeof(struct ll_rename2_in)) {
    // fuse_rename2_in is fuse_rename_in (newdir) and 8 bytes of flags: the names move up.
    struct ll_rename2_in *ri = (struct ll_rename2_in *) (ih + 1);
    s->next_rename_flags = ri->flags;
    char *names = (char *) (ri + 1);
    memmove(names - 8, names, ih->len - sizeof(*ih) - sizeof(*ri));
    ih->opcode = FUSE_RENAME;
    ih->len -= 8;
    fbuf->size = ih->len;
  } else if (ih->opcode == LL_FUSE_TMPFILE) {
    // The same fuse_create_in and name as CREATE: flagged for ll_create.
    ih->opcode = FUSE_CREATE;
    s->next_tmpfile = 1;
  } else if (ih->opcode == LL_FUSE_STATX && s->proto_minor >= 39) {
    // fuse_statx_in starts as fuse_getattr_in (flags, padding, fh): flagged for ll_getattr.
    ih->opcode = FUSE_GETATTR;
    s->next_statx = 1;
  } else if (ll_answer(s, ih, ih->len)) {
    return;
  }
  fuse_session_process_buf(s->se, fbuf, ch);
  s->next_plus = 0;
  s->next_rename_flags = 0;
  s->next_tmpfile = 0;
  s->next_statx = 0;
  if (init) {
    ll_req_t *r = ll_new(NULL, LL_OP_INIT, 0, NULL, NULL, 0);
    if (r) ll_enqueue(s, r);
  }
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
  // Requests are pointers, exact in a double (x86-64 and arm64 user addresses are < 2^53).
  napi_create_double(env, (double) (uintptr_t) r->req, &argv[1]);
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
    if (r->req) s->outstanding++;
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
static void ll_poll_end (ll_session_t *s) {
  if (!s->polling) return;
  uv_poll_stop(&s->poll);
  s->polling = 0;
  fuse_session_reset(s->se);
  ll_req_t *r = ll_new(NULL, LL_OP_EXIT, 0, NULL, NULL, 0);
  if (r) ll_enqueue(s, r);
}

// Requests read per wake-up before JS gets them (and other events their turn).
#define LL_POLL_BATCH 64

// Not threaded: fuse_session_loop's body, on the JS thread, for as long as requests are there
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
    struct fuse_chan *ch = s->sch;
    struct fuse_buf fbuf = { .mem = s->rbuf, .size = s->rbuf_size };
    int res = fuse_session_receive_buf(s->se, &fbuf, &ch);
    if (res == -EINTR) continue;
    if (res == -EAGAIN) break;
    if (res <= 0 || fuse_session_exited(s->se)) { ll_poll_end(s); break; }
    ll_process(s, &fbuf, ch);
    n++;
    if (fuse_session_exited(s->se)) ll_poll_end(s);
  }
  return n;
}

// Whether a request comes within spin_ns, watched without sleeping.
static int ll_spin (ll_session_t *s) {
  struct pollfd p = { .fd = fuse_chan_fd(s->ch), .events = POLLIN };
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

// Threaded: fuse_session_loop, with ll_process.
static void * ll_thread (void *data) {
  ll_session_t *s = (ll_session_t *) data;
  while (!fuse_session_exited(s->se)) {
    struct fuse_chan *ch = s->sch;
    struct fuse_buf fbuf = { .mem = s->rbuf, .size = s->rbuf_size };
    int res = fuse_session_receive_buf(s->se, &fbuf, &ch);
    if (res == -EINTR) continue;
    if (res <= 0) break;
    ll_process(s, &fbuf, ch);
  }
  fuse_session_reset(s->se);
  ll_req_t *r = ll_new(NULL, LL_OP_EXIT, 0, NULL, NULL, 0);
  if (r) ll_enqueue(s, r);
  return NULL;
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

// ll_mount(mnt, mountOpts, sessionOpts, dispatch, statbuf, threaded, protoMax, spinUs, stackDepth) -> session
// mountOpts go to fuse_mount (e.g. "-ofsname=x,allow_other"), sessionOpts to
// fuse_lowlevel_new (e.g. "-omax_write=131072,big_writes"); "" for none. threaded: requests
// are read by a FUSE thread of their own (READ and WRITE then go on while JS is busy) rather
// than by the JS thread. protoMax: the FUSE minor to answer INIT with, at most, 19..40 (see
// "protocol" above). spinUs: not threaded, how long to wait awake for the next request after
// answering (ll_poll_cb); 0 never. stackDepth: 1 or 2 to ask for passthrough with that
// max_stack_depth (see "passthrough"), 0 not to.
NAPI_METHOD(ll_mount) {
  NAPI_ARGV(9)
  NAPI_ARGV_UTF8(mnt, 4096, 0)
  NAPI_ARGV_UTF8(mopts, 1024, 1)
  NAPI_ARGV_UTF8(sopts, 1024, 2)

  ll_session_t *s = (ll_session_t *) calloc(1, sizeof(ll_session_t));
  if (s == NULL) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  s->env = env;
  bool threaded = false;
  napi_get_value_bool(env, argv[5], &threaded);
  s->threaded = threaded ? 1 : 0;
  uint32_t proto_max = 19;
  napi_get_value_uint32(env, argv[6], &proto_max);
  s->proto_max = proto_max < 19 ? 19 : proto_max > 40 ? 40 : proto_max;
  uint32_t stack_depth = 0;
  napi_get_value_uint32(env, argv[8], &stack_depth);
  s->stack_depth = stack_depth > 2 ? 2 : stack_depth;
  uint32_t spin_us = 0;
  napi_get_value_uint32(env, argv[7], &spin_us);
  if (spin_us > 1000) spin_us = 1000;
  napi_create_reference(env, argv[3], 1, &s->dispatch);
  napi_value actx_name;
  napi_create_string_utf8(env, "layerfs:fuse-requests", NAPI_AUTO_LENGTH, &actx_name);
  napi_async_init(env, NULL, actx_name, &s->actx);
  napi_create_reference(env, argv[4], 1, &s->statbuf_ref);
  void *sb; size_t sblen;
  napi_get_typedarray_info(env, argv[4], NULL, &sblen, &sb, NULL, NULL);
  if (sblen < STAT_INTS) { napi_throw_error(env, "EINVAL", "stat buffer too small"); return NULL; }
  s->statbuf = (uint32_t *) sb;

  char *margv[] = { (char *) "layerfs", mopts };
  struct fuse_args margs = FUSE_ARGS_INIT(mopts[0] ? 2 : 1, margv);
  // The lowest free descriptor, held across fuse_mount (see ll_order_fds).
  int low = open("/dev/null", O_RDONLY | O_CLOEXEC);
  s->ch = fuse_mount(mnt, &margs);
  fuse_opt_free_args(&margs);
  if (s->ch == NULL) {
    if (low >= 0) close(low);
    napi_throw_error(env, "ERR_FUSE_MOUNT", "fuse_mount failed (see stderr)");
    return NULL;
  }
  ll_order_fds(fuse_chan_fd(s->ch), low);
  char *sargv[] = { (char *) "layerfs", sopts };
  struct fuse_args sargs = FUSE_ARGS_INIT(sopts[0] ? 2 : 1, sargv);
  s->se = fuse_lowlevel_new(&sargs, &ll_ops, sizeof(ll_ops), s);
  fuse_opt_free_args(&sargs);
  if (s->se == NULL) {
    fuse_unmount(mnt, s->ch);
    napi_throw_error(env, "ERR_FUSE_OPTION", "fuse_lowlevel_new rejected the options (see stderr)");
    return NULL;
  }
  s->rbuf_size = ll_bufsize(s);
  s->rbuf = (char *) malloc(s->rbuf_size);
  s->sch = fuse_chan_new(&ll_chan_ops, fuse_chan_fd(s->ch), s->rbuf_size, s);
  if (s->rbuf == NULL || s->sch == NULL) {
    fuse_session_destroy(s->se);
    fuse_unmount(mnt, s->ch);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  fuse_session_add_chan(s->se, s->sch);

  uv_mutex_init(&s->lock);
  uv_mutex_init(&s->nocap_lock);
  if (s->threaded) {
    uv_async_init(uv_default_loop(), &s->async, ll_drain);
    s->async.data = s;
    pthread_create(&s->thread, NULL, ll_thread, s);
  } else {
    int fd = fuse_chan_fd(s->ch);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
        uv_poll_init(uv_default_loop(), &s->poll, fd) != 0) {
      fuse_session_destroy(s->se);
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

// The request to answer, or NULL when the session is gone (then nothing is sent).
static fuse_req_t ll_take (napi_env env, napi_value sv, napi_value rv, ll_session_t **sp) {
  ll_session_t *s = ll_session_of(env, sv);
  double d = 0;
  napi_get_value_double(env, rv, &d);
  if (sp) *sp = s;
  if (s == NULL || d == 0) return NULL;
  s->outstanding--;
  s->answered++;
  return (fuse_req_t) (uintptr_t) d;
}

static void ll_fill_entry (ll_session_t *s, struct fuse_entry_param *e, double nodeid, double entry_timeout, double attr_timeout) {
  memset(e, 0, sizeof(*e));
  e->ino = (fuse_ino_t) nodeid;
  e->generation = 0;
  if (nodeid != 0) populate_stat(s->statbuf, &e->attr);
  e->entry_timeout = entry_timeout;
  e->attr_timeout = attr_timeout;
}

// fuse_open_out of 7.40: backing_id was padding before.
struct ll_open_out { uint64_t fh; uint32_t open_flags; int32_t backing_id; };
#define LL_FOPEN_DIRECT_IO (1 << 0)
#define LL_FOPEN_KEEP_CACHE (1 << 1)
#define LL_FOPEN_CACHE_DIR (1 << 3)
#define LL_FOPEN_PASSTHROUGH (1 << 7)

static void ll_open_out (struct ll_open_out *out, double fh, uint32_t of, int32_t backing_id) {
  memset(out, 0, sizeof(*out));
  out->fh = (uint64_t) fh;
  if (of & 1) out->open_flags |= LL_FOPEN_DIRECT_IO;
  if (of & 2) out->open_flags |= LL_FOPEN_KEEP_CACHE;
  if (of & 4) out->open_flags |= LL_FOPEN_CACHE_DIR;
  if (of & 8) { out->open_flags |= LL_FOPEN_PASSTHROUGH; out->backing_id = backing_id; }
}

// As libfuse's fill_entry and convert_stat.
static void ll_entry_out (const struct fuse_entry_param *e, struct fuse_entry_out *o) {
  o->nodeid = e->ino;
  o->generation = e->generation;
  o->entry_valid = (uint64_t) e->entry_timeout;
  o->entry_valid_nsec = (uint32_t) ((e->entry_timeout - (double) o->entry_valid) * 1e9);
  o->attr_valid = (uint64_t) e->attr_timeout;
  o->attr_valid_nsec = (uint32_t) ((e->attr_timeout - (double) o->attr_valid) * 1e9);
  const struct stat *st = &e->attr;
  struct fuse_attr *a = &o->attr;
  a->ino = st->st_ino;
  a->mode = st->st_mode;
  a->nlink = st->st_nlink;
  a->uid = st->st_uid;
  a->gid = st->st_gid;
  a->rdev = st->st_rdev;
  a->size = st->st_size;
  a->blksize = st->st_blksize;
  a->blocks = st->st_blocks;
  a->atime = st->st_atim.tv_sec;
  a->mtime = st->st_mtim.tv_sec;
  a->ctime = st->st_ctim.tv_sec;
  a->atimensec = st->st_atim.tv_nsec;
  a->mtimensec = st->st_mtim.tv_nsec;
  a->ctimensec = st->st_ctim.tv_nsec;
}

// ---- passthrough ----------------------------------------------------------------------------
// A file opened with FOPEN_PASSTHROUGH is read and written by the kernel on a backing file we
// registered (FUSE_DEV_IOC_BACKING_OPEN, 7.40; CAP_SYS_ADMIN): READ and WRITE of it never
// come here. The kernel keeps one backing file per inode, the same for every open of it at a
// time, and refuses a passthrough open while a cached one is open (ETXTBSY; EIO to the
// caller), and the reverse. Which opens may pass through is JS's to decide (ll-ops.ts).
struct ll_backing_map { int32_t fd; uint32_t flags; uint64_t padding; };
#define LL_DEV_IOC_BACKING_OPEN _IOW(229, 1, struct ll_backing_map)
#define LL_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

// ll_backing_open(session, fd) -> backing id (> 0), or -errno
NAPI_METHOD(ll_backing_open) {
  NAPI_ARGV(2)
  NAPI_ARGV_INT32(fd, 1)
  ll_session_t *s = ll_session_of(env, argv[0]);
  int r = -EOPNOTSUPP;
  if (s && s->passthrough && !s->closed) {
    struct ll_backing_map map = { fd, 0, 0 };
    r = ioctl(fuse_chan_fd(s->ch), LL_DEV_IOC_BACKING_OPEN, &map);
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
    r = ioctl(fuse_chan_fd(s->ch), LL_DEV_IOC_BACKING_CLOSE, &bid);
    if (r < 0) r = -errno;
  }
  NAPI_RETURN_INT32(r)
}

// ll_reply_err(session, req, errno): errno positive, or 0 for success
NAPI_METHOD(ll_reply_err) {
  NAPI_ARGV(3)
  NAPI_ARGV_INT32(err, 2)
  fuse_req_t req = ll_take(env, argv[0], argv[1], NULL);
  if (req) fuse_reply_err(req, err);
  return NULL;
}

// ll_reply_entry(session, req, nodeid, entryTimeout, attrTimeout): the stat is in statbuf;
// nodeid 0 is a negative entry (cached for entryTimeout).
NAPI_METHOD(ll_reply_entry) {
  NAPI_ARGV(5)
  ll_session_t *s;
  fuse_req_t req = ll_take(env, argv[0], argv[1], &s);
  if (!req) return NULL;
  double nodeid, et, at;
  napi_get_value_double(env, argv[2], &nodeid);
  napi_get_value_double(env, argv[3], &et);
  napi_get_value_double(env, argv[4], &at);
  struct fuse_entry_param e;
  ll_fill_entry(s, &e, nodeid, et, at);
  fuse_reply_entry(req, &e);
  return NULL;
}

// ll_reply_create(session, req, nodeid, entryTimeout, attrTimeout, fh, openFlags, backingId)
// openFlags as ll_reply_open's. Built here (fuse_entry_out and fuse_open_out) rather than by
// fuse_reply_create, whose fuse_file_info (libfuse 2.9) has no passthrough.
NAPI_METHOD(ll_reply_create) {
  NAPI_ARGV(8)
  ll_session_t *s;
  fuse_req_t req = ll_take(env, argv[0], argv[1], &s);
  if (!req) return NULL;
  double nodeid, et, at, fh;
  uint32_t of;
  int32_t backing_id = 0;
  napi_get_value_double(env, argv[2], &nodeid);
  napi_get_value_double(env, argv[3], &et);
  napi_get_value_double(env, argv[4], &at);
  napi_get_value_double(env, argv[5], &fh);
  napi_get_value_uint32(env, argv[6], &of);
  napi_get_value_int32(env, argv[7], &backing_id);
  struct fuse_entry_param e;
  ll_fill_entry(s, &e, nodeid, et, at);
  struct { struct fuse_entry_out entry; struct ll_open_out open; } out;
  memset(&out, 0, sizeof(out));
  ll_entry_out(&e, &out.entry);
  ll_open_out(&out.open, fh, of, backing_id);
  // ENOENT: the request was interrupted; nobody will release this handle: JS must.
  fuse_reply_buf(req, (const char *) &out, sizeof(out));
  return NULL;
}

// fuse_statx_out (7.39).
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

static void ll_reply_statx_of (fuse_req_t req, const struct stat *st, double timeout, const struct statx_timestamp *btime) {
  struct ll_statx_out out;
  memset(&out, 0, sizeof(out));
  out.attr_valid = (uint64_t) timeout;
  out.attr_valid_nsec = (uint32_t) ((timeout - (double) out.attr_valid) * 1e9);
  struct ll_statx *x = &out.stat;
  x->mask = STATX_BASIC_STATS | (btime ? STATX_BTIME : 0);
  x->blksize = (uint32_t) st->st_blksize;
  x->nlink = (uint32_t) st->st_nlink;
  x->uid = st->st_uid;
  x->gid = st->st_gid;
  x->mode = (uint16_t) st->st_mode;
  x->ino = st->st_ino;
  x->size = (uint64_t) st->st_size;
  x->blocks = (uint64_t) st->st_blocks;
  x->atime.tv_sec = st->st_atim.tv_sec; x->atime.tv_nsec = (uint32_t) st->st_atim.tv_nsec;
  x->mtime.tv_sec = st->st_mtim.tv_sec; x->mtime.tv_nsec = (uint32_t) st->st_mtim.tv_nsec;
  x->ctime.tv_sec = st->st_ctim.tv_sec; x->ctime.tv_nsec = (uint32_t) st->st_ctim.tv_nsec;
  if (btime) { x->btime.tv_sec = btime->tv_sec; x->btime.tv_nsec = btime->tv_nsec; }
  x->rdev_major = major(st->st_rdev);
  x->rdev_minor = minor(st->st_rdev);
  fuse_reply_buf(req, (const char *) &out, sizeof(out));
}

// ll_reply_statx(session, req, attrTimeout, btimeSec, btimeNsec): the stat is in statbuf;
// btimeNsec < 0: no birth time known.
NAPI_METHOD(ll_reply_statx) {
  NAPI_ARGV(5)
  ll_session_t *s;
  fuse_req_t req = ll_take(env, argv[0], argv[1], &s);
  if (!req) return NULL;
  double at, bsec;
  int32_t bnsec = -1;
  napi_get_value_double(env, argv[2], &at);
  napi_get_value_double(env, argv[3], &bsec);
  napi_get_value_int32(env, argv[4], &bnsec);
  struct stat st;
  memset(&st, 0, sizeof(st));
  populate_stat(s->statbuf, &st);
  struct statx_timestamp bt = { (int64_t) bsec, (uint32_t) (bnsec < 0 ? 0 : bnsec), 0 };
  ll_reply_statx_of(req, &st, at, bnsec < 0 ? NULL : &bt);
  return NULL;
}

// ll_reply_attr(session, req, attrTimeout): the stat is in statbuf
NAPI_METHOD(ll_reply_attr) {
  NAPI_ARGV(3)
  ll_session_t *s;
  fuse_req_t req = ll_take(env, argv[0], argv[1], &s);
  if (!req) return NULL;
  double at;
  napi_get_value_double(env, argv[2], &at);
  struct stat st;
  memset(&st, 0, sizeof(st));
  populate_stat(s->statbuf, &st);
  fuse_reply_attr(req, &st, at);
  return NULL;
}

// ll_reply_open(session, req, fh, openFlags, backingId)
// openFlags: 1 direct_io, 2 keep_cache, 4 cache_dir, 8 passthrough (backingId: what
// ll_backing_open gave). The reply is built here rather than by fuse_reply_open, whose
// fuse_file_info (libfuse 2.9) has no bit for FOPEN_CACHE_DIR nor passthrough: with the first
// the kernel keeps a directory's listing in its page cache (dropped when the directory changes
// through the mount), as it keeps a file's pages with FOPEN_KEEP_CACHE.
NAPI_METHOD(ll_reply_open) {
  NAPI_ARGV(5)
  fuse_req_t req = ll_take(env, argv[0], argv[1], NULL);
  if (!req) return NULL;
  double fh;
  uint32_t of;
  int32_t backing_id = 0;
  napi_get_value_double(env, argv[2], &fh);
  napi_get_value_uint32(env, argv[3], &of);
  napi_get_value_int32(env, argv[4], &backing_id);
  struct ll_open_out out;
  ll_open_out(&out, fh, of, backing_id);
  fuse_reply_buf(req, (const char *) &out, sizeof(out));
  return NULL;
}

// ll_reply_buf(session, req, buffer, length)
NAPI_METHOD(ll_reply_buf) {
  NAPI_ARGV(4)
  fuse_req_t req = ll_take(env, argv[0], argv[1], NULL);
  if (!req) return NULL;
  void *data = NULL;
  size_t len = 0;
  napi_get_buffer_info(env, argv[2], &data, &len);
  uint32_t n;
  napi_get_value_uint32(env, argv[3], &n);
  if (n < len) len = n;
  fuse_reply_buf(req, (const char *) data, len);
  return NULL;
}

// ll_reply_xattr(session, req, size): the size a getxattr/listxattr size query asked for
NAPI_METHOD(ll_reply_xattr) {
  NAPI_ARGV(3)
  fuse_req_t req = ll_take(env, argv[0], argv[1], NULL);
  if (!req) return NULL;
  uint32_t n;
  napi_get_value_uint32(env, argv[2], &n);
  fuse_reply_xattr(req, n);
  return NULL;
}

// ll_reply_readlink(session, req, targetBytes)
NAPI_METHOD(ll_reply_readlink) {
  NAPI_ARGV(3)
  fuse_req_t req = ll_take(env, argv[0], argv[1], NULL);
  if (!req) return NULL;
  void *data = NULL;
  size_t len = 0;
  napi_get_buffer_info(env, argv[2], &data, &len);
  char *target = (char *) malloc(len + 1);
  if (target == NULL) { fuse_reply_err(req, ENOMEM); return NULL; }
  memcpy(target, data, len);
  target[len] = 0;
  fuse_reply_readlink(req, target);
  free(target);
  return NULL;
}

// ll_reply_statfs(session, req, Uint32Array(STATFS_INTS))
NAPI_METHOD(ll_reply_statfs) {
  NAPI_ARGV(3)
  fuse_req_t req = ll_take(env, argv[0], argv[1], NULL);
  if (!req) return NULL;
  void *ints;
  size_t n;
  napi_get_typedarray_info(env, argv[2], NULL, &n, &ints, NULL, NULL);
  struct statvfs sv;
  memset(&sv, 0, sizeof(sv));
  if (n >= STATFS_INTS) populate_statvfs((uint32_t *) ints, &sv);
  fuse_reply_statfs(req, &sv);
  return NULL;
}

// ll_notify_inval_inode(session, nodeid, offset, length): offset < 0 drops only attributes
// (never waits on page locks, so it is safe while requests are pending).
NAPI_METHOD(ll_notify_inval_inode) {
  NAPI_ARGV(4)
  ll_session_t *s = ll_session_of(env, argv[0]);
  double nodeid, off, len;
  napi_get_value_double(env, argv[1], &nodeid);
  napi_get_value_double(env, argv[2], &off);
  napi_get_value_double(env, argv[3], &len);
  int r = -ENOTCONN;
  if (s && !s->exited) r = fuse_lowlevel_notify_inval_inode(s->sch, (fuse_ino_t) nodeid, (off_t) off, (off_t) len);
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

// ll_notify_inval_entry(session, parentNodeid, nameBytes)
NAPI_METHOD(ll_notify_inval_entry) {
  NAPI_ARGV(3)
  ll_session_t *s = ll_session_of(env, argv[0]);
  double parent;
  napi_get_value_double(env, argv[1], &parent);
  void *name = NULL;
  size_t len = 0;
  napi_get_buffer_info(env, argv[2], &name, &len);
  int r = -ENOTCONN;
  if (s && !s->exited) r = fuse_lowlevel_notify_inval_entry(s->sch, (fuse_ino_t) parent, (const char *) name, len);
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
    struct fuse_out_header oh;
    struct fuse_notify_inval_entry_out out;
    memset(&out, 0, sizeof(out));
    out.parent = it->parent;
    out.namelen = it->len;
    oh.len = (uint32_t) (sizeof(oh) + sizeof(out) + it->len + 1);
    oh.error = FUSE_NOTIFY_INVAL_ENTRY;
    oh.unique = 0;
    struct iovec v[3] = { { &oh, sizeof(oh) }, { &out, sizeof(out) }, { it->name, it->len + 1 } };
    // ENOENT: the name or its parent is gone already; ENODEV: unmounted. Nothing to do.
    (void) !writev(n->fd, v, 3);
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
  n->fd = fcntl(fuse_chan_fd(s->ch), F_DUPFD_CLOEXEC, 3);
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

// ll_info(session) -> [protoMinor, maxWrite, want, passthrough]
NAPI_METHOD(ll_info) {
  NAPI_ARGV(1)
  ll_session_t *s = ll_session_of(env, argv[0]);
  napi_value arr, v;
  napi_create_array_with_length(env, 4, &arr);
  napi_create_uint32(env, s ? s->proto_minor : 0, &v); napi_set_element(env, arr, 0, v);
  napi_create_uint32(env, s ? s->max_write : 0, &v); napi_set_element(env, arr, 1, v);
  napi_create_uint32(env, s ? s->want : 0, &v); napi_set_element(env, arr, 2, v);
  napi_create_uint32(env, s ? (uint32_t) s->passthrough : 0, &v); napi_set_element(env, arr, 3, v);
  return arr;
}

// ll_exited(session): the JS side saw LL_OP_EXIT. Later replies are dropped; once nothing is
// outstanding the session, its channel (the /dev/fuse fd) and the async handle are released.
static void ll_closed_cb (uv_handle_t *h) {
  ll_session_t *s = (ll_session_t *) h->data;
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
  if (s->threaded) pthread_join(s->thread, NULL);
  uv_handle_t *h = s->threaded ? (uv_handle_t *) &s->async : (uv_handle_t *) &s->poll;
  // A request JS still holds would reply into a destroyed session: keep it (a small leak at
  // the end of a mount) unless every request was answered.
  if (s->outstanding == 0) {
    fuse_session_destroy(s->se);
    fuse_chan_destroy(s->ch);
    napi_async_destroy(env, s->actx);
    napi_delete_reference(env, s->dispatch);
    napi_delete_reference(env, s->statbuf_ref);
    free(s->iobuf);
    s->iobuf = NULL;
    free(s->rbuf);
    s->rbuf = NULL;
    uv_close(h, ll_closed_cb);
  } else {
    uv_unref(h);
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
