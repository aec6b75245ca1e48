/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Virtio devices as transports see them, and the queue runner devices use.
 *
 * Concepts
 * - A virtio device (virtio-blk, later virtio-scsi) implements
 *   struct umdev_virtio_dev_ops and knows nothing of its transport. A
 *   transport (vhost-user today, virtio-pci over vfio-user later) owns the
 *   umdev_vq objects (ring addresses, indices, inflight region, call fd) and
 *   asks the device to start or stop serving a queue.
 * - The queue runner does the generic data-path work on the queue's loop:
 *   wait for kicks (sleep on the kick eventfd, or busy-poll), pop chains
 *   into request slots, hand them to the device, push completions and
 *   notify. A device supplies only ops->handle() and calls
 *   umdev_vdev_complete() when a request is done.
 * - Waiting for work: with vdev->poll the queue is a loop poller and kicks
 *   stay off. Otherwise it sleeps on its kick eventfd; with poll_us > 0 it
 *   first keeps polling for that long after running dry (adaptive polling,
 *   as QEMU's iothreads do), so a request that follows soon after the last
 *   one costs no kick and no wake-up.
 * - Queue states: STOPPED -> RUNNING (start) -> STOPPING (stop requested,
 *   requests still in flight) -> STOPPED (all completed). Stop blocks the
 *   calling (control) thread until the queue has drained; data-plane loops
 *   never wait for the control thread, so this cannot deadlock.
 */
#ifndef UMDEV_VIRTIO_H
#define UMDEV_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "umdev/loop.h"
#include "umdev/vq.h"

struct umdev_virtio_dev;
struct umdev_vdev_queue;

/* Every device request starts with this; slots are allocated by the runner. */
struct umdev_vdev_req {
	struct umdev_vq_elem elem;
	struct umdev_vdev_queue *q;
	struct umdev_vdev_req *next_free;
	struct iovec *iov; /* max_iov entries, owned by the runner */
	uint64_t t_start; /* runner: when it was popped (ns, CLOCK_MONOTONIC) */
	/*
	 * Device: set before umdev_vdev_complete() when the request failed
	 * (e.g. a non-OK status byte), so the queue statistics count it as an
	 * error. The runner clears it when the slot is reused.
	 */
	bool failed;
	/* Runner: writable parts in remote memory (umdev_vdev_set_remote()), and their copy. */
	bool shadow_in;
	uint8_t remote_stage;
	int remote_err;
	uint32_t written;
	struct umdev_vdev_req *remote_next;
};

struct umdev_virtio_dev_ops {
	/* Device feature bits offered (device-specific and ring bits). */
	uint64_t (*features)(struct umdev_virtio_dev *vdev);
	/* Driver accepted @features (a subset). May be NULL. */
	int (*set_features)(struct umdev_virtio_dev *vdev, uint64_t features);
	/* Copy config space bytes [off, off+len) into @buf; -EINVAL out of range. */
	int (*get_config)(struct umdev_virtio_dev *vdev, void *buf, uint32_t off, uint32_t len);
	/* Driver writes config; NULL means read-only config (-EPERM). */
	int (*set_config)(struct umdev_virtio_dev *vdev, const void *buf, uint32_t off,
			  uint32_t len);
	/* Per-queue setup/teardown on the queue's loop thread. May be NULL. */
	int (*queue_init)(struct umdev_vdev_queue *q);
	void (*queue_fini)(struct umdev_vdev_queue *q);
	/*
	 * A popped request (loop thread). The device must eventually call
	 * umdev_vdev_complete() for it, possibly from inside handle().
	 */
	void (*handle)(struct umdev_vdev_queue *q, struct umdev_vdev_req *req);
	/*
	 * The queue is stopping (loop thread; no new requests): complete now
	 * the requests the device holds until something happens (virtio-scsi's
	 * parked event buffers), so the stop, and a migration's downtime, need
	 * not wait for them. May be NULL.
	 */
	void (*queue_stopping)(struct umdev_vdev_queue *q);
	/*
	 * Make every write the device completed durable and visible to other
	 * hosts sharing its storage (control thread; blocks). Called when a
	 * live migration hands the device over. May be NULL (nothing to flush).
	 */
	int (*flush)(struct umdev_virtio_dev *vdev);
	/* Driver reset the device (control thread, queues already stopped). May be NULL. */
	void (*reset)(struct umdev_virtio_dev *vdev);
};

/* Embedded in each device; filled by the device before use. */
struct umdev_virtio_dev {
	const struct umdev_virtio_dev_ops *ops;
	char name[32]; /* for logs: the device id */
	uint32_t device_id; /* VIRTIO_ID_* */
	uint32_t config_size;
	uint16_t num_queues;
	uint16_t max_queue_size;
	uint32_t req_size; /* bytes per request slot, >= sizeof(struct umdev_vdev_req) */
	uint32_t max_iov; /* iovecs per request slot */
	bool poll; /* busy-poll queues instead of sleeping on kicks */
	/*
	 * The front-end emulates config space itself and has no use for ours
	 * over the transport (QEMU's vhost-user-scsi, which warns at every
	 * start when a back-end offers vhost-user's CONFIG feature). Config
	 * reads are still answered; the feature is just not offered.
	 */
	bool config_by_frontend;
	/*
	 * The device may change its config space at run time (virtio-blk: the
	 * capacity of a resized image); the transport then offers a way to tell
	 * the driver (vhost-user: the back-end request channel) and sets
	 * config_notify while a driver can hear it. Control thread only.
	 */
	bool config_changes;
	void (*config_notify)(void *opaque);
	void *config_notify_opaque;
	uint32_t poll_us; /* not polling: keep polling this long after going idle */
	umdev_loop **loops; /* data-plane loops queues are spread over */
	unsigned num_loops;
	struct umdev_vdev_queue **queues; /* num_queues entries, NULL while never started */
	struct umdev_vdev_remote *remote; /* runner's; see umdev_vdev_set_remote() */
};

/*
 * Remote memory: a transport whose client may share some memory only through
 * messages (vfio-user DMA windows without an fd; SeaBIOS puts its disk
 * buffers there) shadows it in the address space (umdev_as_add_shadow()) and
 * gives the runner a copy function that runs on the control thread. A
 * request with buffers there then takes a detour: its readable shadowed
 * parts are copied in on the control thread before the device sees it, and
 * what the device wrote is copied out before the driver sees it used. The
 * data-plane loop never waits for the copy (it is told when it is done), and
 * a queue stop on the control thread runs pending copies itself while it
 * waits, so neither side can block the other. Slow, and only ever used for
 * such memory; everything else keeps the direct path.
 */
typedef int (*umdev_vdev_copy_fn)(void *opaque, uint64_t gpa, void *buf, size_t len,
				  bool to_guest);

/**
 * umdev_vdev_set_remote() - let @vdev's queues reach remote memory through
 * @copy (control thread @ctl; -errno on failure). Call before any queue
 * starts; umdev_vdev_free_queues() undoes it. Control thread.
 */
int umdev_vdev_set_remote(struct umdev_virtio_dev *vdev, umdev_loop *ctl, umdev_vdev_copy_fn copy,
			  void *opaque) __attribute__((warn_unused_result));

/** umdev_vdev_has_remote() - true once umdev_vdev_set_remote() succeeded. */
bool umdev_vdev_has_remote(const struct umdev_virtio_dev *vdev);

/**
 * umdev_vdev_queue_start() - serve queue @idx, whose @vq the transport has
 * already started (umdev_vq_start). @kick_fd is watched (not owned) unless
 * the device polls. With @recover the inflight region is checked first and
 * requests still in flight from a previous back-end are resubmitted.
 * Control thread; returns once the queue runs on its loop.
 */
int umdev_vdev_queue_start(struct umdev_virtio_dev *vdev, unsigned idx, umdev_vq *vq,
			   int kick_fd, bool recover) __attribute__((warn_unused_result));

/**
 * umdev_vdev_queue_stop() - stop popping, wait for every request in flight to
 * complete, detach from the loop. Control thread; blocks. No-op if stopped.
 */
void umdev_vdev_queue_stop(struct umdev_virtio_dev *vdev, unsigned idx);

/** umdev_vdev_queue_running() - true between start and stop. */
bool umdev_vdev_queue_running(const struct umdev_virtio_dev *vdev, unsigned idx);

/**
 * umdev_vdev_queue_grow_map() - a running queue takes @map (which covers its
 * current one: only windows were added) on its loop, without draining what
 * is in flight. Control thread; waits for the loop only. Return: 0,
 * -EINVAL (not running), -ESTALE (stop and start it instead).
 */
int umdev_vdev_queue_grow_map(struct umdev_virtio_dev *vdev, unsigned idx, umdev_as_map *map)
	UMDEV_WUR;

/**
 * umdev_vdev_queue_shrink_map() - after [@addr, +@len) was unmapped, a
 * running queue takes @map (the current one less that range) on its loop,
 * without draining, if neither its ring nor a request in flight touches
 * the range (umdev_vq_shrink_map()). Control thread; waits for the loop
 * only. Return: 0, -EBUSY or -ESTALE (stop it instead), -EINVAL (not
 * running).
 */
int umdev_vdev_queue_shrink_map(struct umdev_virtio_dev *vdev, unsigned idx, umdev_as_map *map,
				uint64_t addr, uint64_t len) UMDEV_WUR;

/** umdev_vdev_queue_set_call_fd() - change the interrupt eventfd of a queue. */
void umdev_vdev_queue_set_call_fd(struct umdev_virtio_dev *vdev, unsigned idx, umdev_vq *vq,
				  int call_fd);

/**
 * umdev_vdev_complete() - finish @req with @written bytes in its writable
 * part: push it, notify the driver if needed, free the slot. Loop thread.
 */
void umdev_vdev_complete(struct umdev_vdev_req *req, uint32_t written);

/**
 * umdev_vdev_queue_start_idx() - the avail index the queue (re)started at:
 * 0 for a ring the driver just set up, another value for a ring in use
 * elsewhere before (a migration's destination, a restarted back-end).
 * Meaningful in ops->queue_init. Loop thread.
 */
uint16_t umdev_vdev_queue_start_idx(const struct umdev_vdev_queue *q);

/* Accessors for devices. */
struct umdev_virtio_dev *umdev_vdev_queue_dev(const struct umdev_vdev_queue *q);
unsigned umdev_vdev_queue_index(const struct umdev_vdev_queue *q);
umdev_loop *umdev_vdev_queue_loop(const struct umdev_vdev_queue *q);
void *umdev_vdev_queue_priv(const struct umdev_vdev_queue *q);
void umdev_vdev_queue_set_priv(struct umdev_vdev_queue *q, void *priv);

/* Latency histogram buckets: bucket b counts latencies in [2^b, 2^(b+1)) ns. */
#define UMDEV_VDEV_LAT_BUCKETS 40

/*
 * Statistics of one queue since its device was created (they survive
 * reconnects and resets). Counters are updated on the queue's loop without
 * locks; umdev_vdev_queue_stats() copies them there, so a snapshot is
 * consistent. A request is counted when it completes.
 */
struct umdev_vdev_queue_stats {
	bool running; /* between start and stop */
	uint64_t requests; /* completed */
	uint64_t errors; /* completed with req->failed set */
	uint64_t bytes_out; /* driver -> device: readable bytes of completed chains */
	uint64_t bytes_in; /* device -> driver: bytes reported written */
	unsigned inflight; /* popped and not completed, now */
	unsigned max_inflight; /* the most ever in flight at once */
	uint64_t depth_sum; /* sum over popped requests of the in-flight count then */
	uint64_t broken; /* times the ring was found broken (until reset) */
	uint64_t lat[UMDEV_VDEV_LAT_BUCKETS]; /* pop-to-complete latency histogram */
};

/**
 * umdev_vdev_queue_stats() - copy queue @idx's statistics into @out.
 * Control thread; may briefly wait for the queue's loop (umdev_loop_call_sync).
 * Return: 0, -ENOENT if the queue was never started, -EINVAL for a bad index.
 */
int umdev_vdev_queue_stats(struct umdev_virtio_dev *vdev, unsigned idx,
			   struct umdev_vdev_queue_stats *out) __attribute__((warn_unused_result));

/**
 * umdev_vdev_lat_percentile() - the @pct-th percentile (0..100) of the
 * latency histogram @lat, in ns, interpolated inside its log2 bucket
 * (so within a factor of two of the truth). 0 when nothing was counted.
 */
uint64_t umdev_vdev_lat_percentile(const uint64_t lat[UMDEV_VDEV_LAT_BUCKETS], unsigned pct);

/**
 * umdev_vdev_config_changed() - tell the driver that config space changed
 * (the virtio configuration change notification), if a transport can. The
 * device updates its config first. Control thread.
 */
static inline void umdev_vdev_config_changed(struct umdev_virtio_dev *vdev)
{
	if (vdev->config_notify)
		vdev->config_notify(vdev->config_notify_opaque);
}

/** umdev_vdev_free_queues() - free the runner state of stopped queues. */
void umdev_vdev_free_queues(struct umdev_virtio_dev *vdev);

#endif
