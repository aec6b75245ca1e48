/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdev virtqueues, device side.
 *
 * Concepts
 * - A umdev_vq is one virtqueue as a device sees it: pop a request (a
 *   descriptor chain translated to host iovecs), push it back as used, and
 *   decide whether the driver needs an interrupt. The ring format (split, or packed with
 *   VIRTIO_F_RING_PACKED) is hidden behind an internal ops table; devices
 *   see the same interface for both. With a packed ring elem->head is the
 *   driver's buffer id, and completions may come in any order.
 * - The guest is hostile. Every chain is validated while it is walked: loops,
 *   chains longer than the ring, total lengths that overflow, nested or
 *   chained indirect tables, zero-sized or misaligned indirect tables,
 *   addresses outside guest memory, an avail index that runs more than the
 *   ring size ahead. The first violation puts the queue in the BROKEN state,
 *   logs why, and every later pop returns -EIO until the queue is reset.
 * - Threads: a started queue belongs to exactly one data-plane loop; only
 *   that thread may call pop/push/notify. Start/stop/reset are called by the
 *   owner while the queue is quiesced.
 * - Memory: the queue keeps a reference to the umdev_as_map it was started
 *   with; iovecs returned by pop are valid while that map is held, i.e.
 *   until the queue is stopped.
 * - Inflight tracking (vhost-user INFLIGHT_SHMFD): when an inflight region is
 *   attached, pop marks the head in flight with a submission counter and push
 *   clears it, in the order the spec requires, so a restarted back-end can
 *   resubmit what was in flight.
 * - Dirty logging (live migration): with a log attached, every write the
 *   queue makes into the used ring (entries, idx, flags, avail_event) marks
 *   its page, and umdev_vq_log_write() marks the buffers a device wrote.
 */
#ifndef UMDEV_VQ_H
#define UMDEV_VQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "umdev/mem.h"
#include "umdev/proto/vhost_user.h"

typedef struct umdev_vq umdev_vq;

enum umdev_vq_state {
	UMDEV_VQ_STOPPED = 0, /* not started, or stopped; may be started */
	UMDEV_VQ_RUNNING, /* started; pop/push allowed */
	UMDEV_VQ_BROKEN, /* the driver broke the ring; only stop/reset leave it */
};

struct umdev_vq_config {
	uint16_t size; /* power of two, 1..32768 */
	uint64_t desc_addr; /* guest addresses of the three parts */
	uint64_t avail_addr;
	uint64_t used_addr;
	uint16_t last_avail_idx; /* where popping resumes */
	bool event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect; /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	/*
	 * VIRTIO_F_RING_PACKED negotiated: desc_addr is the descriptor ring,
	 * avail_addr the driver event suppression area, used_addr the device
	 * area. last_avail_idx and last_used_idx are then idx | wrap << 15
	 * (vhost-user's encoding); last_used_idx is ignored for split rings.
	 */
	bool packed;
	uint16_t last_used_idx;
	/*
	 * Buffers may lie in shadow regions of the map (UMDEV_MEM_SHADOW):
	 * the consumer copies them in and out (the runner does when its
	 * device has remote memory, umdev_vdev_set_remote()). Rings and
	 * indirect tables never come from shadows.
	 */
	bool shadow_buffers;
};

/* One request: readable (driver-to-device) iovecs first, then writable ones. */
struct umdev_vq_elem {
	uint16_t head; /* descriptor index to push back */
	unsigned n_out; /* iov[0 .. n_out) are readable */
	unsigned n_in; /* iov[n_out .. n_out+n_in) are writable */
	uint64_t out_len; /* total bytes in readable iovecs */
	uint64_t in_len; /* total bytes in writable iovecs */
	struct iovec *iov; /* caller's array, see umdev_vq_pop() */
};

/**
 * umdev_vq_new() - allocate a stopped queue. @name is copied and used in log
 * lines (e.g. "blk0.q1"). Free with umdev_vq_free().
 */
umdev_vq *umdev_vq_new(const char *name, int *err) UMDEV_WUR;
void umdev_vq_free(umdev_vq *vq);

/**
 * umdev_vq_start() - translate and validate the ring through @map and move to
 * RUNNING. Takes its own reference on @map. -EINVAL for a bad size, -EFAULT
 * if a ring part is not contiguous guest memory or is misaligned.
 */
int umdev_vq_start(umdev_vq *vq, umdev_as_map *map, const struct umdev_vq_config *cfg) UMDEV_WUR;

/**
 * umdev_vq_stop() - move to STOPPED and drop the map. Returns the index
 * popping would resume from (the vhost-user GET_VRING_BASE answer). The
 * caller must have completed or abandoned every popped element first.
 */
uint16_t umdev_vq_stop(umdev_vq *vq);

enum umdev_vq_state umdev_vq_get_state(const umdev_vq *vq);
uint16_t umdev_vq_size(const umdev_vq *vq);

/**
 * umdev_vq_memory_gone() - the client took away memory of the map the queue
 * runs on (see umdev_as_map_faulted()): a failure there is already reported.
 */
bool umdev_vq_memory_gone(const umdev_vq *vq);

/**
 * umdev_vq_map() - the map the queue runs on (borrowed: valid until stop or
 * umdev_vq_grow_map()).
 */
umdev_as_map *umdev_vq_map(const umdev_vq *vq);

/**
 * umdev_vq_grow_map() - run on @map from now on, without stopping: @map must
 * cover the current map (umdev_as_map_covers(): windows were only added),
 * so the rings and the buffers of requests in flight stay where they are.
 * The queue's thread. Return: 0, -EINVAL (not running), -ESTALE (@map does
 * not cover the current one: stop and start the queue instead).
 */
int umdev_vq_grow_map(umdev_vq *vq, umdev_as_map *map) UMDEV_WUR;

/**
 * umdev_vq_ring_part_bytes() - the most bytes ring part @part (0: descriptor
 * table, 1: driver area, 2: device area, the order of struct
 * umdev_vq_config's addresses) of a ring of @size entries spans, event
 * fields included: split desc/avail/used, or the packed descriptor ring and
 * its two event suppression structures.
 */
uint64_t umdev_vq_ring_part_bytes(bool packed, uint32_t size, unsigned part);

/**
 * umdev_vq_uses() - true if the ring or a chain in flight may touch guest
 * range [@addr, +@len) (a chain counts from its first to its last byte).
 * RUNNING; on the queue's loop.
 */
bool umdev_vq_uses(const umdev_vq *vq, uint64_t addr, uint64_t len);

/**
 * umdev_vq_shrink_map() - run on @map from now on, without stopping, when
 * @map holds every region of the current one outside [@addr, +@len) and
 * nothing of the queue touches that range (umdev_vq_uses()): a DMA_UNMAP
 * behind a vIOMMU then costs no drain. 0, -EBUSY (in use: stop the queue
 * instead), -ESTALE (@map lacks more), -EINVAL (not RUNNING). On the
 * queue's loop.
 */
int umdev_vq_shrink_map(umdev_vq *vq, umdev_as_map *map, uint64_t addr, uint64_t len) UMDEV_WUR;
uint16_t umdev_vq_last_avail_idx(const umdev_vq *vq);
/**
 * umdev_vq_last_used_idx() - where the next used entry goes: a split ring's
 * own used idx; a packed ring's idx | wrap << 15 (umdev_vq_last_avail_idx()
 * is encoded the same way for packed rings).
 */
uint16_t umdev_vq_last_used_idx(const umdev_vq *vq);
/** umdev_vq_is_packed() - the queue runs (or last ran) a packed ring. */
bool umdev_vq_is_packed(const umdev_vq *vq);
/** umdev_vq_inuse() - popped elements not yet pushed. */
unsigned umdev_vq_inuse(const umdev_vq *vq);

/**
 * umdev_vq_pop() - take the next available chain.
 * @iov/@max_iov: caller's iovec array; elem->iov points at it. Chains that
 * need more iovecs than @max_iov are a driver error (seg_max was exceeded).
 * Returns 1 with *@elem filled, 0 if the ring is empty, -EIO if the queue is
 * (or has just become) BROKEN.
 */
int umdev_vq_pop(umdev_vq *vq, struct umdev_vq_elem *elem, struct iovec *iov,
		 unsigned max_iov) UMDEV_WUR;

/**
 * umdev_vq_push() - return a popped chain to the driver with @written bytes
 * in its writable part. Publishes the used entry with release ordering.
 * Does not notify: call umdev_vq_notify() once per batch.
 */
void umdev_vq_push(umdev_vq *vq, uint16_t head, uint32_t written);

/**
 * umdev_vq_set_call_fd() - eventfd to signal for interrupts (-1: none). The
 * queue does not own it. Set while stopped.
 */
void umdev_vq_set_call_fd(umdev_vq *vq, int fd);

/**
 * umdev_vq_set_notify_fn() - call @fn(@opaque) instead of signalling the call
 * fd when the driver needs an interrupt (a transport that raises it itself,
 * e.g. virtio-pci's MSI-X vector or INTx with ISR). @fn runs on the queue's
 * loop thread and must not block. NULL restores the call fd. Set while stopped.
 */
void umdev_vq_set_notify_fn(umdev_vq *vq, void (*fn)(void *opaque), void *opaque);

/**
 * umdev_vq_set_err_fd() - eventfd signalled when the queue breaks (-1: none),
 * so the front-end learns of it too. Not owned. Set while stopped.
 */
void umdev_vq_set_err_fd(umdev_vq *vq, int fd);

/**
 * umdev_vq_notify() - signal the driver if pushes since the last notification
 * need it (EVENT_IDX used_event or VIRTQ_AVAIL_F_NO_INTERRUPT). Returns 1 if
 * it signalled, 0 if suppressed.
 */
int umdev_vq_notify(umdev_vq *vq);

/**
 * umdev_vq_enable_kicks() / umdev_vq_disable_kicks() - ask the driver to kick
 * (or not) on new buffers: VIRTQ_USED_F_NO_NOTIFY, or avail_event with
 * EVENT_IDX. enable returns true if buffers arrived meanwhile, so the caller
 * must poll again before sleeping (avoids the lost-wakeup race).
 */
bool umdev_vq_enable_kicks(umdev_vq *vq);
void umdev_vq_disable_kicks(umdev_vq *vq);

/** umdev_vq_has_avail() - true if a pop would find a chain. */
bool umdev_vq_has_avail(umdev_vq *vq);

/* ---- inflight tracking (vhost-user INFLIGHT_SHMFD) ---- */

/** Bytes of inflight region one queue of @size entries needs (64-aligned). */
uint64_t umdev_vq_inflight_size(uint16_t size);
/** Same for a packed ring (the spec's packed layout, 32 bytes a slot). */
uint64_t umdev_vq_inflight_size_packed(uint16_t size);

/**
 * umdev_vq_set_inflight() - attach this queue's part of a shared inflight
 * region (NULL to detach). The memory must stay mapped until detached or the
 * queue is freed; the queue does not own it. Set while stopped. The caller
 * guarantees the region has umdev_vq_inflight_size(ring size) bytes (the
 * _packed size for a packed ring, whose layout it then has): the queue
 * indexes it by head.
 */
void umdev_vq_set_inflight(umdev_vq *vq, struct vhost_user_inflight_queue *region);

/**
 * umdev_vq_recover_inflight() - after start, when the inflight region was
 * already initialised by a previous back-end: repair a half-finished
 * completion batch, collect the heads still in flight (in submission order)
 * into @heads, and move last_avail_idx to used_idx + count so they are not
 * popped twice. Initialises a fresh region instead (returns 0).
 * Returns the number of heads (<= @max), or -errno (-EIO: corrupt region).
 */
int umdev_vq_recover_inflight(umdev_vq *vq, uint16_t *heads, unsigned max) UMDEV_WUR;

/**
 * umdev_vq_get_head() - build an element for a head returned by
 * umdev_vq_recover_inflight(), with the same validation as pop. It counts as
 * popped (in use) and must be pushed.
 */
int umdev_vq_get_head(umdev_vq *vq, uint16_t head, struct umdev_vq_elem *elem,
		      struct iovec *iov, unsigned max_iov) UMDEV_WUR;

/* ---- dirty logging (vhost-user VHOST_F_LOG_ALL) ---- */

struct umdev_vq_log {
	umdev_dirty_log *log; /* borrowed; NULL: nothing is logged */
	bool data; /* mark buffers the device writes (umdev_vq_log_write) */
	bool used; /* mark used-ring writes, at @used_gpa (VHOST_VRING_F_LOG) */
	uint64_t used_gpa; /* the ring's log_guest_addr */
};

/**
 * umdev_vq_set_log() - log (or, with NULL, stop logging) the writes of this
 * queue. Set while stopped; the log must stay mapped until the queue is
 * stopped again or the log detached.
 */
void umdev_vq_set_log(umdev_vq *vq, const struct umdev_vq_log *log);

/**
 * umdev_vq_log_write() - the device wrote into the @n iovecs at @iov (popped
 * from this queue): mark their pages if data logging is on. Call after the
 * writes and before the element is pushed. Queue's loop thread, RUNNING.
 */
void umdev_vq_log_write(umdev_vq *vq, const struct iovec *iov, unsigned n);

#endif
