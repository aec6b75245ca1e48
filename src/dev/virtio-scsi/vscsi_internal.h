/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-scsi internals shared by virtio_scsi.c (config, request queues,
 * LUN hot-plug) and vscsi_ctrl.c (controlq: TMFs and AN; eventq).
 *
 * Queue roles: 0 controlq, 1 eventq, 2.. request queues. Each request
 * queue owns a umdev_scsi_chan on its loop. A TMF arriving on the controlq
 * is fanned out as a message to every request queue's loop; commands it
 * aborts keep a pointer to it and the TMF answers once the last one has
 * been returned to the driver (the spec wants their completions first).
 * Events are posted from any thread into a small mutex-protected queue
 * and delivered on the eventq's loop into buffers parked there.
 */
#ifndef UMDEV_DEV_VSCSI_INTERNAL_H
#define UMDEV_DEV_VSCSI_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "umdev/proto/virtio_scsi.h"
#include "umdev/scsi.h"
#include "virtio_scsi.h"

#define VSCSI_SEG_MAX 126
#define VSCSI_MAX_IOV (2 * (VSCSI_SEG_MAX + 4))
#define VSCSI_CDB_MAX 256 /* largest cdb_size a driver may configure */
#define VSCSI_SENSE_MAX 1024 /* largest sense_size a driver may configure */
#define VSCSI_EVENTS_MAX 64 /* events queued while the driver has no buffer */

struct vscsi_tmf;

/* One request slot: the runner's part, then ours, then two iovec arrays. */
struct vscsi_req {
	struct umdev_vdev_req base;
	struct umdev_scsi_cmd cmd;
	struct vscsi_tmf *tmf; /* set when a TMF aborted this command */
	struct vscsi_req *next_parked; /* eventq buffers waiting for an event */
	uint32_t sense_size; /* config value when the request started */
	uint64_t data_in, data_out; /* buffer sizes */
	uint8_t cdb[VSCSI_CDB_MAX];
	struct iovec iov[]; /* VSCSI_MAX_IOV data slices, then VSCSI_MAX_IOV scratch */
};

struct vscsi_event_q {
	struct virtio_scsi_event ev[VSCSI_EVENTS_MAX];
	unsigned head, count;
	bool missed; /* an event found no buffer: flag the next one delivered */
	unsigned lent; /* idle buffers handed back as NO_EVENT, not re-posted yet */
};

struct umdev_vscsi {
	struct umdev_virtio_dev vdev;
	umdev_scsi_target *t;
	struct virtio_scsi_config cfg; /* sense_size/cdb_size below are the live values */
	atomic_uint sense_size, cdb_size;
	atomic_ullong features; /* negotiated */
	struct umdev_vdev_queue *queues_storage[2 + UMDEV_VSCSI_MAX_REQ_QUEUES];

	/* Events, posted from any thread; delivered on the eventq's loop. */
	pthread_mutex_t ev_lock;
	struct vscsi_event_q evq;
	atomic_uint parked; /* eventq buffers available right now */
	int ev_fd; /* eventfd: wakes the eventq's loop when an event is posted */
	struct vscsi_req *park_head, *park_tail; /* eventq loop only */
	bool eventq_running; /* eventq loop only */
	bool eventq_started; /* since the device was created (eventq loop) */
};

static inline umdev_vscsi *to_vscsi(struct umdev_virtio_dev *vdev)
{
	return (umdev_vscsi *)((char *)vdev - offsetof(umdev_vscsi, vdev));
}

static inline bool vscsi_has(umdev_vscsi *v, unsigned bit)
{
	return atomic_load(&v->features) & (1ull << bit);
}

/* The 8-byte LUN field: target and single-level LUN, or -EINVAL if malformed. */
int vscsi_decode_lun(const uint8_t *lun, unsigned *target, unsigned *l);
void vscsi_encode_lun(uint8_t *out, unsigned target, unsigned lun);

/* vscsi_ctrl.c */
void vscsi_ctrl_handle(umdev_vscsi *v, struct umdev_vdev_queue *q, struct vscsi_req *r);
/* A request queue command finished; tell its TMF, if one aborted it. */
void vscsi_tmf_cmd_done(struct vscsi_tmf *tmf);
int vscsi_eventq_init(umdev_vscsi *v, struct umdev_vdev_queue *q);
void vscsi_eventq_fini(umdev_vscsi *v, struct umdev_vdev_queue *q);
void vscsi_eventq_stopping(umdev_vscsi *v);
void vscsi_eventq_handle(umdev_vscsi *v, struct umdev_vdev_queue *q, struct vscsi_req *r);
/* Post an event (any thread). */
void vscsi_post_event(umdev_vscsi *v, uint32_t event, unsigned target, unsigned lun,
		      uint32_t reason);
void vscsi_events_reset(umdev_vscsi *v);

#endif
