// An io_uring of our own, as little of it as FUSE over io_uring needs: one ring with 128-byte
// submission entries (IORING_SETUP_SQE128, for IORING_OP_URING_CMD's 80-byte command area), one
// registered file (the /dev/fuse descriptor), entries written and submitted by one thread (the
// one that owns the ring), completions reaped by the same thread, which never waits in the
// kernel for them (it polls the ring's descriptor, and spins on the rings' memory). The system
// calls and the shared rings as the kernel documents them (io_uring_setup(2), io_uring_enter(2),
// io_uring_register(2)); no liburing, so the addon links nothing more than it did.
#ifndef LAYERFS_URING_H
#define LAYERFS_URING_H

#include <stddef.h>
#include <linux/io_uring.h>

typedef struct {
  int fd;
  unsigned *sq_head, *sq_tail, *sq_array, *sq_flags, sq_mask, sq_entries;
  unsigned *cq_head, *cq_tail, cq_mask;
  struct io_uring_cqe *cqes;
  unsigned char *sqes;               // sq_entries entries of 128 bytes
  void *sq_map, *cq_map;
  size_t sq_map_len, cq_map_len, sqes_len;
  unsigned tail;                     // our tail: entries written, published at the next submit
  unsigned unsubmitted;              // entries written since the last submit
} ll_uring_t;

// A ring of at least `entries` submission entries (twice as many completions), with `file`
// registered as fixed file 0 unless it is -1. 0, or -errno (the ring is then unusable and
// needs no exit).
int ll_uring_init (ll_uring_t *u, unsigned entries, int file);
void ll_uring_exit (ll_uring_t *u);

// The next submission entry, zeroed (128 bytes), or NULL if the ring is full.
struct io_uring_sqe *ll_uring_sqe (ll_uring_t *u);
// The 80-byte command area of an entry (IORING_OP_URING_CMD).
void *ll_uring_cmd (struct io_uring_sqe *sqe);
// Hands the kernel what was written since the last call: entries submitted, or -errno.
int ll_uring_submit (ll_uring_t *u);

// Whether the kernel has work for this task to run (IORING_SQ_TASKRUN) before completions
// appear; ll_uring_run enters to run it (and submits what is pending), without waiting.
int ll_uring_has_work (ll_uring_t *u);
int ll_uring_run (ll_uring_t *u);

// The oldest completion not yet seen, or NULL; ll_uring_seen gives its slot back.
struct io_uring_cqe *ll_uring_peek (ll_uring_t *u);
void ll_uring_seen (ll_uring_t *u);

#endif
