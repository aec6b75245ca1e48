/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-scsi: configuration space, features, request queues (CDBs handed
 * to the SCSI target layer with the guest's buffers), and LUN hot-plug.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "umdev/log.h"
#include "umdev/proto/virtio_ring.h"
#include "util/iov.h"
#include "vscsi_internal.h"

#define RESP_HDR sizeof(struct virtio_scsi_cmd_resp)
#define REQ_HDR sizeof(struct virtio_scsi_cmd_req)

int vscsi_decode_lun(const uint8_t *lun, unsigned *target, unsigned *l)
{
	/* Byte 0 is 1; bytes 2-3 a single-level LUN (peripheral or flat); 4-7 zero. */
	if (lun[0] != 1)
		return -EINVAL;
	if (lun[2] != 0 && (lun[2] & 0xc0) != 0x40)
		return -EINVAL;
	if (lun[4] | lun[5] | lun[6] | lun[7])
		return -EINVAL;
	*target = lun[1];
	*l = ((unsigned)lun[2] << 8 | lun[3]) & 0x3fff;
	return 0;
}

/*
 * For events: the same encoding as REPORT LUNS (peripheral addressing below
 * 256, flat space above). Linux reads an event's LUN as bytes 2-3 without
 * masking the flat-space bits, so 0x40 on a small LUN would name another one.
 */
void vscsi_encode_lun(uint8_t *out, unsigned target, unsigned lun)
{
	memset(out, 0, VIRTIO_SCSI_LUN_SIZE);
	out[0] = 1;
	out[1] = target;
	out[2] = lun < 256 ? 0 : 0x40 | (lun >> 8);
	out[3] = lun & 0xff;
}

/* ---- request queues ---- */

static void cmd_respond(struct vscsi_req *r, uint8_t response)
{
	const struct umdev_vq_elem *e = &r->base.elem;
	const struct iovec *in = e->iov + e->n_out;
	struct umdev_scsi_cmd *c = &r->cmd;
	struct virtio_scsi_cmd_resp resp = { 0 };
	uint32_t sense_len = c->sense_len < r->sense_size ? c->sense_len : r->sense_size;
	uint64_t resid;

	if (response == VIRTIO_SCSI_S_OK || response == VIRTIO_SCSI_S_OVERRUN) {
		if (c->overrun)
			response = VIRTIO_SCSI_S_OVERRUN;
		/*
		 * Residual: data_length - transferred, both directions counted,
		 * so a value above the data-in size says data-out was not all used.
		 */
		resid = r->data_in + r->data_out - c->in_xfer - c->out_xfer;
		resp.resid = resid > UINT32_MAX ? UINT32_MAX : (uint32_t)resid;
		resp.status = c->status;
		resp.sense_len = sense_len;
	} else {
		resp.resid = r->data_in + r->data_out > UINT32_MAX ? UINT32_MAX
								 : (uint32_t)(r->data_in + r->data_out);
		sense_len = 0;
		c->in_xfer = 0;
	}
	resp.response = response;
	umdev_iov_from_buf(in, e->n_in, 0, &resp, RESP_HDR);
	if (sense_len)
		umdev_iov_from_buf(in, e->n_in, RESP_HDR, c->sense, sense_len);
	umdev_vdev_complete(&r->base, RESP_HDR + r->sense_size + c->in_xfer);
}

static void cmd_done(struct umdev_scsi_cmd *c)
{
	struct vscsi_req *r = (struct vscsi_req *)((char *)c - offsetof(struct vscsi_req, cmd));
	struct vscsi_tmf *tmf = r->tmf;

	r->tmf = NULL;
	cmd_respond(r, c->aborted ? VIRTIO_SCSI_S_ABORTED : VIRTIO_SCSI_S_OK);
	/* After the push, so the driver sees the command before the TMF's answer. */
	if (tmf)
		vscsi_tmf_cmd_done(tmf);
}

static void reqq_handle(umdev_vscsi *v, struct umdev_vdev_queue *q, struct vscsi_req *r)
{
	const struct umdev_vq_elem *e = &r->base.elem;
	const struct iovec *in = e->iov + e->n_out;
	uint32_t cdb_size = atomic_load(&v->cdb_size);
	uint64_t req_len = REQ_HDR + cdb_size;
	struct virtio_scsi_cmd_req hdr;
	struct umdev_scsi_cmd *c = &r->cmd;
	unsigned target, lun;
	int n_out, n_in;

	r->sense_size = atomic_load(&v->sense_size);
	r->tmf = NULL;
	r->data_in = r->data_out = 0;
	memset(c, 0, offsetof(struct umdev_scsi_cmd, p));
	if (e->in_len < RESP_HDR + r->sense_size) {
		/* Nowhere to put the answer: give the chain back untouched. */
		umdev_warn("%s.q%u: request without room for its response (head %u)",
			   v->vdev.name, umdev_vdev_queue_index(q), e->head);
		umdev_vdev_complete(&r->base, 0);
		return;
	}
	r->data_in = e->in_len - RESP_HDR - r->sense_size;
	if (e->out_len < req_len) {
		r->data_out = 0;
		cmd_respond(r, VIRTIO_SCSI_S_FAILURE);
		return;
	}
	r->data_out = e->out_len - req_len;
	umdev_iov_to_buf(e->iov, e->n_out, 0, &hdr, REQ_HDR);
	if (vscsi_decode_lun(hdr.lun, &target, &lun) < 0 ||
	    !umdev_scsi_target_exists(v->t, target)) {
		cmd_respond(r, VIRTIO_SCSI_S_BAD_TARGET);
		return;
	}
	if (r->data_in && r->data_out && !vscsi_has(v, VIRTIO_SCSI_F_INOUT)) {
		cmd_respond(r, VIRTIO_SCSI_S_FAILURE);
		return;
	}
	n_out = umdev_iov_slice(e->iov, e->n_out, req_len, r->data_out, r->iov, VSCSI_MAX_IOV);
	n_in = n_out < 0 ? -1 : umdev_iov_slice(in, e->n_in, RESP_HDR + r->sense_size, r->data_in,
						 r->iov + n_out, VSCSI_MAX_IOV - n_out);
	if (n_in < 0) {
		cmd_respond(r, VIRTIO_SCSI_S_FAILURE);
		return;
	}
	umdev_iov_to_buf(e->iov, e->n_out, REQ_HDR, r->cdb,
			 cdb_size < VSCSI_CDB_MAX ? cdb_size : VSCSI_CDB_MAX);
	c->target = target;
	c->lun = lun;
	c->tag = hdr.id;
	c->cdb = r->cdb;
	c->cdb_len = cdb_size < VSCSI_CDB_MAX ? cdb_size : VSCSI_CDB_MAX;
	c->out_iov = r->iov;
	c->out_cnt = n_out;
	c->in_iov = r->iov + n_out;
	c->in_cnt = n_in;
	c->scratch = r->iov + VSCSI_MAX_IOV;
	c->scratch_max = VSCSI_MAX_IOV;
	c->done = cmd_done;
	umdev_scsi_submit(umdev_vdev_queue_priv(q), c);
}

static void vscsi_handle(struct umdev_vdev_queue *q, struct umdev_vdev_req *base)
{
	umdev_vscsi *v = to_vscsi(umdev_vdev_queue_dev(q));
	struct vscsi_req *r = (struct vscsi_req *)base;

	switch (umdev_vdev_queue_index(q)) {
	case VIRTIO_SCSI_CTRLQ:
		vscsi_ctrl_handle(v, q, r);
		break;
	case VIRTIO_SCSI_EVENTQ:
		vscsi_eventq_handle(v, q, r);
		break;
	default:
		reqq_handle(v, q, r);
		break;
	}
}

static int vscsi_queue_init(struct umdev_vdev_queue *q)
{
	umdev_vscsi *v = to_vscsi(umdev_vdev_queue_dev(q));
	unsigned idx = umdev_vdev_queue_index(q);
	umdev_scsi_chan *ch;
	int err = 0;

	if (idx == VIRTIO_SCSI_CTRLQ)
		return 0;
	if (idx == VIRTIO_SCSI_EVENTQ)
		return vscsi_eventq_init(v, q);
	ch = umdev_scsi_chan_new(v->t, umdev_vdev_queue_loop(q), &err);
	if (!ch)
		return err;
	umdev_vdev_queue_set_priv(q, ch);
	return 0;
}

static void vscsi_queue_fini(struct umdev_vdev_queue *q)
{
	umdev_vscsi *v = to_vscsi(umdev_vdev_queue_dev(q));
	unsigned idx = umdev_vdev_queue_index(q);

	if (idx == VIRTIO_SCSI_EVENTQ) {
		vscsi_eventq_fini(v, q);
	} else if (idx != VIRTIO_SCSI_CTRLQ) {
		umdev_scsi_chan_free(umdev_vdev_queue_priv(q));
		umdev_vdev_queue_set_priv(q, NULL);
	}
}

static int vscsi_flush(struct umdev_virtio_dev *vdev)
{
	return umdev_scsi_flush_all(to_vscsi(vdev)->t);
}

static void vscsi_queue_stopping(struct umdev_vdev_queue *q)
{
	if (umdev_vdev_queue_index(q) == VIRTIO_SCSI_EVENTQ)
		vscsi_eventq_stopping(to_vscsi(umdev_vdev_queue_dev(q)));
}

/* ---- features and config ---- */

static uint64_t vscsi_features(struct umdev_virtio_dev *vdev)
{
	return 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_INDIRECT_DESC |
	       1ull << VIRTIO_RING_F_EVENT_IDX | 1ull << VIRTIO_SCSI_F_INOUT |
	       1ull << VIRTIO_SCSI_F_HOTPLUG | 1ull << VIRTIO_SCSI_F_CHANGE;
}

static int vscsi_set_features(struct umdev_virtio_dev *vdev, uint64_t f)
{
	atomic_store(&to_vscsi(vdev)->features, f);
	return 0;
}

static int vscsi_get_config(struct umdev_virtio_dev *vdev, void *buf, uint32_t off, uint32_t len)
{
	umdev_vscsi *v = to_vscsi(vdev);
	struct virtio_scsi_config c = v->cfg;

	if (off > sizeof(c) || len > sizeof(c) - off)
		return -EINVAL;
	c.sense_size = atomic_load(&v->sense_size);
	c.cdb_size = atomic_load(&v->cdb_size);
	memcpy(buf, (uint8_t *)&c + off, len);
	return 0;
}

/* Only sense_size and cdb_size are writable (virtio spec, SCSI device configuration). */
static int vscsi_set_config(struct umdev_virtio_dev *vdev, const void *buf, uint32_t off,
			    uint32_t len)
{
	umdev_vscsi *v = to_vscsi(vdev);
	const uint32_t first = offsetof(struct virtio_scsi_config, sense_size);
	const uint32_t end = offsetof(struct virtio_scsi_config, max_channel);
	struct virtio_scsi_config c;

	if (off < first || off > end || len > end - off || len == 0)
		return -EPERM;
	c.sense_size = atomic_load(&v->sense_size);
	c.cdb_size = atomic_load(&v->cdb_size);
	memcpy((uint8_t *)&c + off, buf, len);
	if (c.sense_size > VSCSI_SENSE_MAX || c.cdb_size > VSCSI_CDB_MAX)
		return -EINVAL;
	atomic_store(&v->sense_size, c.sense_size);
	atomic_store(&v->cdb_size, c.cdb_size);
	return 0;
}

static void vscsi_reset(struct umdev_virtio_dev *vdev)
{
	umdev_vscsi *v = to_vscsi(vdev);

	/* The writable fields go back to their defaults on reset (spec 5.6.4). */
	atomic_store(&v->sense_size, VIRTIO_SCSI_SENSE_SIZE_DEFAULT);
	atomic_store(&v->cdb_size, VIRTIO_SCSI_CDB_SIZE_DEFAULT);
	atomic_store(&v->features, 0);
	vscsi_events_reset(v);
}

static const struct umdev_virtio_dev_ops vscsi_ops = {
	.features = vscsi_features,
	.set_features = vscsi_set_features,
	.get_config = vscsi_get_config,
	.set_config = vscsi_set_config,
	.queue_init = vscsi_queue_init,
	.queue_fini = vscsi_queue_fini,
	.queue_stopping = vscsi_queue_stopping,
	.flush = vscsi_flush,
	.handle = vscsi_handle,
	.reset = vscsi_reset,
};

/* ---- the device ---- */

umdev_vscsi *umdev_vscsi_new(const struct umdev_vscsi_opts *o, umdev_loop **loops,
			     unsigned num_loops, int *err)
{
	umdev_vscsi *v;

	if (!o->id || o->num_queues < 1 || o->num_queues > UMDEV_VSCSI_MAX_REQ_QUEUES ||
	    !num_loops) {
		*err = -EINVAL;
		return NULL;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		*err = -ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&v->ev_lock, NULL);
	v->vdev.queues = v->queues_storage; /* so that free works from here on */
	v->ev_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	v->t = umdev_scsi_target_new(o->id, err);
	if (v->ev_fd < 0 || !v->t) {
		if (v->t)
			*err = -EMFILE;
		umdev_vscsi_free(v);
		return NULL;
	}
	v->cfg = (struct virtio_scsi_config){
		.num_queues = o->num_queues,
		.seg_max = VSCSI_SEG_MAX,
		.max_sectors = 0xffff,
		.cmd_per_lun = 128,
		.event_info_size = sizeof(struct virtio_scsi_event),
		.max_channel = 0,
		.max_target = UMDEV_SCSI_MAX_TARGET,
		.max_lun = UMDEV_SCSI_MAX_LUN,
	};
	atomic_store(&v->sense_size, VIRTIO_SCSI_SENSE_SIZE_DEFAULT);
	atomic_store(&v->cdb_size, VIRTIO_SCSI_CDB_SIZE_DEFAULT);

	v->vdev.ops = &vscsi_ops;
	snprintf(v->vdev.name, sizeof(v->vdev.name), "%s", o->id);
	v->vdev.device_id = VIRTIO_ID_SCSI;
	v->vdev.config_size = sizeof(v->cfg);
	v->vdev.num_queues = 2 + o->num_queues;
	v->vdev.config_by_frontend = true;
	v->vdev.max_queue_size = o->queue_size ? o->queue_size : 1024;
	v->vdev.req_size = sizeof(struct vscsi_req) + 2 * VSCSI_MAX_IOV * sizeof(struct iovec);
	v->vdev.max_iov = VSCSI_MAX_IOV;
	v->vdev.poll = o->poll;
	v->vdev.poll_us = o->poll_us;
	v->vdev.loops = loops;
	v->vdev.num_loops = num_loops;
	v->vdev.queues = v->queues_storage;
	return v;
}

void umdev_vscsi_free(umdev_vscsi *v)
{
	if (!v)
		return;
	umdev_vdev_free_queues(&v->vdev);
	umdev_scsi_target_free(v->t);
	if (v->ev_fd >= 0)
		close(v->ev_fd);
	pthread_mutex_destroy(&v->ev_lock);
	free(v);
}

struct umdev_virtio_dev *umdev_vscsi_vdev(umdev_vscsi *v)
{
	return &v->vdev;
}

int umdev_vscsi_flush(umdev_vscsi *v)
{
	return umdev_scsi_flush_all(v->t);
}

umdev_scsi_target *umdev_vscsi_target(umdev_vscsi *v)
{
	return v->t;
}

int umdev_vscsi_parse_addr(const char *s, unsigned *target, unsigned *lun, const char **rest)
{
	char *end;
	unsigned long t, l;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	t = strtoul(s, &end, 10);
	if (*end != ':' || end[1] < '0' || end[1] > '9')
		return -EINVAL;
	l = strtoul(end + 1, &end, 10);
	if (t > UMDEV_SCSI_MAX_TARGET || l > UMDEV_SCSI_MAX_LUN)
		return -EINVAL;
	if (rest)
		*rest = end;
	else if (*end)
		return -EINVAL;
	*target = t;
	*lun = l;
	return 0;
}

int umdev_vscsi_lun_add(umdev_vscsi *v, unsigned target, unsigned lun, const char *spec,
			bool readonly, char *msg, size_t msglen)
{
	struct umdev_scsi_lu_opts o = { .backend = spec, .readonly = readonly,
					.notify_loop = v->vdev.loops[0] };
	int ret = umdev_scsi_lu_add(v->t, target, lun, &o, msg, msglen);

	if (ret < 0)
		return ret;
	if (vscsi_has(v, VIRTIO_SCSI_F_HOTPLUG))
		vscsi_post_event(v, VIRTIO_SCSI_T_TRANSPORT_RESET, target, lun,
				 VIRTIO_SCSI_EVT_RESET_RESCAN);
	return 0;
}

struct forget_msg {
	umdev_vscsi *v;
	unsigned idx;
	umdev_scsi_lu *lu; /* NULL: the first pass */
	unsigned target, lun;
};

static void abort_visit(struct umdev_scsi_cmd *c, void *opaque)
{
	const struct forget_msg *m = opaque;

	/* Multi-stage commands stop at their next stage; the driver gets ABORTED. */
	if (c->target == m->target && c->lun == m->lun)
		c->aborted = true;
}

static void forget_on_loop(void *opaque)
{
	struct forget_msg *m = opaque;
	umdev_scsi_chan *ch = m->v->vdev.queues[m->idx] ?
				      umdev_vdev_queue_priv(m->v->vdev.queues[m->idx]) : NULL;

	if (!ch)
		return;
	/*
	 * First pass: once this has run, the loop holds no pointer it looked
	 * up before the detach, and the LU's commands stop early.
	 */
	if (!m->lu)
		umdev_scsi_chan_for_each(ch, abort_visit, m);
	else
		umdev_scsi_chan_forget(ch, m->lu);
}

/* Run forget_on_loop on every running request queue's loop. */
static void each_reqq(umdev_vscsi *v, umdev_scsi_lu *lu, unsigned target, unsigned lun)
{
	for (unsigned i = VIRTIO_SCSI_REQQ0; i < v->vdev.num_queues; i++) {
		struct forget_msg m = { v, i, lu, target, lun };

		if (!umdev_vdev_queue_running(&v->vdev, i))
			continue;
		if (umdev_loop_call_sync(umdev_vdev_queue_loop(v->vdev.queues[i]), forget_on_loop,
					 &m) < 0)
			umdev_err("%s.q%u: cannot reach its loop", v->vdev.name, i);
	}
}

int umdev_vscsi_lun_remove(umdev_vscsi *v, unsigned target, unsigned lun, char *msg,
			   size_t msglen)
{
	umdev_scsi_lu *lu = umdev_scsi_lu_detach(v->t, target, lun);
	struct timespec ts = { 0, 1000000 };
	unsigned waited = 0;

	if (!lu) {
		snprintf(msg, msglen, "no LUN %u:%u", target, lun);
		return -ENOENT;
	}
	/* Every loop passes a barrier: none still holds the pointer it looked up. */
	each_reqq(v, NULL, target, lun);
	/* Backend I/O already started cannot be cancelled: wait for it. */
	while (umdev_scsi_lu_inflight(lu)) {
		nanosleep(&ts, NULL);
		if (++waited % 5000 == 0)
			umdev_warn("%s: LUN %u:%u still has %u command(s) in flight", v->vdev.name,
				   target, lun, umdev_scsi_lu_inflight(lu));
	}
	each_reqq(v, lu, target, lun);
	umdev_scsi_lu_free(lu);
	if (vscsi_has(v, VIRTIO_SCSI_F_HOTPLUG))
		vscsi_post_event(v, VIRTIO_SCSI_T_TRANSPORT_RESET, target, lun,
				 VIRTIO_SCSI_EVT_RESET_REMOVED);
	return 0;
}
