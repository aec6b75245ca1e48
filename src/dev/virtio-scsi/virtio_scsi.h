/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-scsi device: a SCSI host adapter whose request queues feed the
 * SCSI target layer (include/umdev/scsi.h). Transport-independent like
 * umdev_blk: a transport drives it through its struct umdev_virtio_dev.
 *
 * Threads: umdev_vscsi_new/free and the LUN calls run on the control
 * thread; LUN add/remove may run while the queues serve I/O.
 */
#ifndef UMDEV_DEV_VIRTIO_SCSI_H
#define UMDEV_DEV_VIRTIO_SCSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umdev/loop.h"
#include "umdev/scsi.h"
#include "umdev/virtio.h"

/* Request queues: control and event queues take two of vhost-user's 256 rings. */
#define UMDEV_VSCSI_MAX_REQ_QUEUES 254

typedef struct umdev_vscsi umdev_vscsi;

struct umdev_vscsi_opts {
	const char *id;
	uint16_t num_queues; /* request queues, 1..UMDEV_VSCSI_MAX_REQ_QUEUES */
	uint16_t queue_size; /* largest ring accepted; 0: 1024 */
	bool poll;
	uint32_t poll_us;
};

umdev_vscsi *umdev_vscsi_new(const struct umdev_vscsi_opts *o, umdev_loop **loops,
			     unsigned num_loops, int *err) __attribute__((warn_unused_result));
/* The transport must have stopped every queue. */
void umdev_vscsi_free(umdev_vscsi *v);
struct umdev_virtio_dev *umdev_vscsi_vdev(umdev_vscsi *v);

/**
 * umdev_vscsi_lun_add() - attach @spec as @target:@lun; with HOTPLUG
 * negotiated the driver gets a RESCAN event. -errno, @msg says why.
 */
int umdev_vscsi_lun_add(umdev_vscsi *v, unsigned target, unsigned lun, const char *spec,
			bool readonly, char *msg, size_t msglen) __attribute__((warn_unused_result));
/**
 * umdev_vscsi_lun_remove() - detach @target:@lun, wait for its commands in
 * flight (blocking), close it; the driver gets a REMOVED event. -ENOENT if
 * there is no such LUN.
 */
int umdev_vscsi_lun_remove(umdev_vscsi *v, unsigned target, unsigned lun, char *msg,
			   size_t msglen) __attribute__((warn_unused_result));
/** umdev_vscsi_target() - the SCSI target set behind the device (to enumerate LUNs). */
umdev_scsi_target *umdev_vscsi_target(umdev_vscsi *v);
/** umdev_vscsi_flush() - make every LUN's completed writes durable (blocking). */
int umdev_vscsi_flush(umdev_vscsi *v) __attribute__((warn_unused_result));

/** umdev_vscsi_parse_addr() - "T:L" into its numbers; -EINVAL if malformed or out of range. */
int umdev_vscsi_parse_addr(const char *s, unsigned *target, unsigned *lun, const char **rest)
	__attribute__((warn_unused_result));

#endif
