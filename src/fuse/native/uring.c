// An io_uring of our own (see uring.h).
#include "uring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LL_SQE_SIZE 128

static int ll_setup (unsigned entries, struct io_uring_params *p) {
  return (int) syscall(__NR_io_uring_setup, entries, p);
}

static int ll_enter (int fd, unsigned to_submit, unsigned min_complete, unsigned flags) {
  return (int) syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
}

static int ll_register (int fd, unsigned op, void *arg, unsigned n) {
  return (int) syscall(__NR_io_uring_register, fd, op, arg, n);
}

int ll_uring_init (ll_uring_t *u, unsigned entries, int file) {
  struct io_uring_params p;
  memset(u, 0, sizeof(*u));
  memset(&p, 0, sizeof(p));
  u->fd = -1;
  // COOP_TASKRUN: a completion that needs this task to finish it (FUSE copies each request into
  // its entry so, in the context of the task that submitted the entry's command) does not
  // interrupt the task with an IPI while it runs: it sets IORING_SQ_TASKRUN (TASKRUN_FLAG), and
  // the task enters when it sees it (ll_uring_has_work). A sleeping task is still woken.
  p.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  p.cq_entries = entries * 2;
  int fd = ll_setup(entries, &p);
  if (fd < 0) return -errno;
  u->fd = fd;
  u->sq_map_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  u->cq_map_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && u->cq_map_len > u->sq_map_len) u->sq_map_len = u->cq_map_len;
  u->sq_map = mmap(NULL, u->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (u->sq_map == MAP_FAILED) { u->sq_map = NULL; goto fail; }
  if (single) {
    u->cq_map = u->sq_map;
    u->cq_map_len = 0;
  } else {
    u->cq_map = mmap(NULL, u->cq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (u->cq_map == MAP_FAILED) { u->cq_map = NULL; goto fail; }
  }
  u->sqes_len = (size_t) p.sq_entries * LL_SQE_SIZE;
  u->sqes = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (u->sqes == MAP_FAILED) { u->sqes = NULL; goto fail; }
  unsigned char *sq = (unsigned char *) u->sq_map, *cq = (unsigned char *) u->cq_map;
  u->sq_head = (unsigned *) (sq + p.sq_off.head);
  u->sq_tail = (unsigned *) (sq + p.sq_off.tail);
  u->sq_mask = *(unsigned *) (sq + p.sq_off.ring_mask);
  u->sq_entries = p.sq_entries;
  u->sq_array = (unsigned *) (sq + p.sq_off.array);
  u->sq_flags = (unsigned *) (sq + p.sq_off.flags);
  u->tail = *u->sq_tail;
  u->cq_head = (unsigned *) (cq + p.cq_off.head);
  u->cq_tail = (unsigned *) (cq + p.cq_off.tail);
  u->cq_mask = *(unsigned *) (cq + p.cq_off.ring_mask);
  u->cqes = (struct io_uring_cqe *) (cq + p.cq_off.cqes);
  if (file >= 0 && ll_register(fd, IORING_REGISTER_FILES, &file, 1) < 0) goto fail;
  return 0;
fail:;
  int err = errno ? errno : ENOMEM;
  ll_uring_exit(u);
  return -err;
}

void ll_uring_exit (ll_uring_t *u) {
  if (u->sqes) munmap(u->sqes, u->sqes_len);
  if (u->cq_map && u->cq_map != u->sq_map) munmap(u->cq_map, u->cq_map_len);
  if (u->sq_map) munmap(u->sq_map, u->sq_map_len);
  if (u->fd >= 0) close(u->fd);
  memset(u, 0, sizeof(*u));
  u->fd = -1;
}

struct io_uring_sqe *ll_uring_sqe (ll_uring_t *u) {
  // Only this thread moves the tail; the kernel moves the head as it consumes. The tail is
  // published (ll_publish) once the entries are written.
  unsigned head = __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE);
  if (u->tail - head >= u->sq_entries) return NULL;
  unsigned idx = u->tail & u->sq_mask;
  struct io_uring_sqe *sqe = (struct io_uring_sqe *) (u->sqes + (size_t) idx * LL_SQE_SIZE);
  memset(sqe, 0, LL_SQE_SIZE);
  u->sq_array[idx] = idx;
  u->tail++;
  u->unsubmitted++;
  return sqe;
}

static void ll_publish (ll_uring_t *u) {
  __atomic_store_n(u->sq_tail, u->tail, __ATOMIC_RELEASE);
}

void *ll_uring_cmd (struct io_uring_sqe *sqe) {
  // The command area starts where addr3 is (offset 48) and runs on into the second 64 bytes.
  return (unsigned char *) sqe + 48;
}

int ll_uring_submit (ll_uring_t *u) {
  int done = 0;
  ll_publish(u);
  while (u->unsubmitted > 0) {
    int r = ll_enter(u->fd, u->unsubmitted, 0, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) break;
    u->unsubmitted -= (unsigned) r < u->unsubmitted ? (unsigned) r : u->unsubmitted;
    done += r;
  }
  return done;
}

struct io_uring_cqe *ll_uring_peek (ll_uring_t *u) {
  unsigned head = *u->cq_head;
  unsigned tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
  return head == tail ? NULL : &u->cqes[head & u->cq_mask];
}

void ll_uring_seen (ll_uring_t *u) {
  __atomic_store_n(u->cq_head, *u->cq_head + 1, __ATOMIC_RELEASE);
}

int ll_uring_has_work (ll_uring_t *u) {
  return (__atomic_load_n(u->sq_flags, __ATOMIC_ACQUIRE) & IORING_SQ_TASKRUN) != 0;
}

int ll_uring_run (ll_uring_t *u) {
  ll_publish(u);
  for (;;) {
    int r = ll_enter(u->fd, u->unsubmitted, 0, IORING_ENTER_GETEVENTS);
    if (r >= 0) {
      u->unsubmitted -= (unsigned) r < u->unsubmitted ? (unsigned) r : u->unsubmitted;
      return 0;
    }
    if (errno != EINTR) return -errno;
  }
}
