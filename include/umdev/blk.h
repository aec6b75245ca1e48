/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-blk device (src/dev/blk). Transport-agnostic: it exposes a
 * struct umdev_virtio_dev that a transport (vhost-user) serves.
 */
#ifndef UMDEV_BLK_H
#define UMDEV_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "umdev/loop.h"
#include "umdev/virtio.h"

typedef struct umdev_blk umdev_blk;

struct umdev_blk_opts {
	const char *id; /* device id, used in logs and as default serial */
	const char *backend; /* "file:PATH", "ram:SIZE", "null:SIZE" */
	bool readonly;
	uint16_t num_queues; /* 1..UMDEV_BLK_MAX_QUEUES */
	uint16_t queue_size; /* largest ring the driver may use, power of two */
	const char *serial; /* GET_ID answer (<= 20 bytes); NULL: the id */
	bool poll; /* busy-poll the queues instead of sleeping on kicks */
	uint32_t poll_us; /* adaptive polling after going idle (0: off) */
	/*
	 * The control loop: a backend resized behind our back (rbd) changes
	 * the capacity there and the driver is told (config change). NULL:
	 * the capacity stays as it was at creation.
	 */
	umdev_loop *ctl;
};

/*
 * Request queues a device accepts (num-queues is a maximum: resources are
 * made only for queues the front-end starts). 256 is what vhost-user can
 * name (an 8-bit ring index in kick/call messages), and covers QEMU's
 * default of one queue per vCPU.
 */
#define UMDEV_BLK_MAX_QUEUES 256
#define UMDEV_BLK_SEG_MAX 126

/**
 * umdev_blk_new() - open the backend and build the device. Its queues run on
 * @loops (borrowed; must outlive the device). Caller frees with
 * umdev_blk_free() after the transport has stopped every queue.
 */
umdev_blk *umdev_blk_new(const struct umdev_blk_opts *o, umdev_loop **loops, unsigned num_loops,
			 int *err) __attribute__((warn_unused_result));
void umdev_blk_free(umdev_blk *blk);
struct umdev_virtio_dev *umdev_blk_vdev(umdev_blk *blk);
/** umdev_blk_flush() - make completed writes durable (blocking). */
int umdev_blk_flush(umdev_blk *blk) __attribute__((warn_unused_result));

#endif
