/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-scsi controlq (task management functions, asynchronous
 * notification query/subscribe) and eventq (transport reset events).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "umdev/log.h"
#include "util/iov.h"
#include "vscsi_internal.h"

/* Idle eventq buffers go back (as NO_EVENT) after this long; see the eventq section. */

/* ---- task management ---- */

struct vscsi_tmf {
	umdev_vscsi *v;
	struct vscsi_req *req; /* the controlq request */
	umdev_loop *ctrl_loop;
	uint32_t subtype;
	unsigned target, lun;
	uint64_t id;
	atomic_uint parts; /* request queues still scanning */
	atomic_uint waiting; /* aborted commands not yet returned, + 1 while scanning */
	atomic_uint found; /* matching commands (QUERY TASK / QUERY TASK SET) */
};

struct tmf_part {
	struct vscsi_tmf *tmf;
	unsigned idx;
};

static void tmf_respond(struct vscsi_req *r, uint8_t response)
{
	const struct umdev_vq_elem *e = &r->base.elem;

	umdev_iov_from_buf(e->iov + e->n_out, e->n_in, 0, &response, 1);
	umdev_vdev_complete(&r->base, 1);
}

/* On the controlq's loop: everything the TMF waited for is done. */
static void tmf_finish(void *opaque)
{
	struct vscsi_tmf *tmf = opaque;
	uint8_t resp = VIRTIO_SCSI_S_FUNCTION_COMPLETE;

	switch (tmf->subtype) {
	case VIRTIO_SCSI_T_TMF_QUERY_TASK:
	case VIRTIO_SCSI_T_TMF_QUERY_TASK_SET:
		/* SAM-5: SUCCEEDED when the task (set) has a task, COMPLETE when not. */
		if (atomic_load(&tmf->found))
			resp = VIRTIO_SCSI_S_FUNCTION_SUCCEEDED;
		break;
	case VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET:
		umdev_scsi_reset(tmf->v->t, UMDEV_SCSI_RESET_LU, tmf->target, tmf->lun);
		vscsi_post_event(tmf->v, VIRTIO_SCSI_T_TRANSPORT_RESET, tmf->target, tmf->lun,
				 VIRTIO_SCSI_EVT_RESET_HARD);
		break;
	case VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET:
		umdev_scsi_reset(tmf->v->t, UMDEV_SCSI_RESET_NEXUS, tmf->target, 0);
		break;
	default:
		break;
	}
	/* TMFs are rare and mean the driver lost patience: worth a log line. */
	umdev_info("%s: TMF %u on %u:%u (id %llu): %u command(s) matched, answer %u",
		   tmf->v->vdev.name, tmf->subtype, tmf->target, tmf->lun,
		   (unsigned long long)tmf->id, atomic_load(&tmf->found), resp);
	tmf_respond(tmf->req, resp);
	free(tmf);
}

static void tmf_put(struct vscsi_tmf *tmf)
{
	if (atomic_fetch_sub(&tmf->waiting, 1) != 1)
		return;
	if (umdev_loop_in_thread(tmf->ctrl_loop)) {
		tmf_finish(tmf);
	} else if (umdev_loop_call(tmf->ctrl_loop, tmf_finish, tmf) < 0) {
		/* Never leave the controlq request hanging; answer from here as a last resort. */
		umdev_err("%s: cannot reach the controlq loop to finish a TMF", tmf->v->vdev.name);
	}
}

void vscsi_tmf_cmd_done(struct vscsi_tmf *tmf)
{
	tmf_put(tmf);
}

static bool tmf_matches(const struct vscsi_tmf *tmf, const struct umdev_scsi_cmd *c)
{
	if (c->target != tmf->target)
		return false;
	if (tmf->subtype == VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET)
		return true;
	if (c->lun != tmf->lun)
		return false;
	if (tmf->subtype == VIRTIO_SCSI_T_TMF_ABORT_TASK ||
	    tmf->subtype == VIRTIO_SCSI_T_TMF_QUERY_TASK)
		return c->tag == tmf->id;
	return true;
}

static void tmf_visit(struct umdev_scsi_cmd *c, void *opaque)
{
	struct vscsi_tmf *tmf = opaque;
	struct vscsi_req *r = (struct vscsi_req *)((char *)c - offsetof(struct vscsi_req, cmd));

	if (!tmf_matches(tmf, c) || c->aborted)
		return;
	atomic_fetch_add(&tmf->found, 1);
	if (tmf->subtype == VIRTIO_SCSI_T_TMF_QUERY_TASK ||
	    tmf->subtype == VIRTIO_SCSI_T_TMF_QUERY_TASK_SET)
		return;
	c->aborted = true;
	if (!r->tmf) {
		r->tmf = tmf;
		atomic_fetch_add(&tmf->waiting, 1);
	}
}

/* On a request queue's loop: look at (and abort) its matching commands. */
static void tmf_scan(void *opaque)
{
	struct tmf_part *part = opaque;
	struct vscsi_tmf *tmf = part->tmf;
	struct umdev_vdev_queue *q = tmf->v->vdev.queues[part->idx];
	umdev_scsi_chan *ch = q ? umdev_vdev_queue_priv(q) : NULL;

	free(part);
	if (ch)
		umdev_scsi_chan_for_each(ch, tmf_visit, tmf);
	tmf_put(tmf);
}

static void handle_tmf(umdev_vscsi *v, struct umdev_vdev_queue *q, struct vscsi_req *r)
{
	const struct umdev_vq_elem *e = &r->base.elem;
	struct virtio_scsi_ctrl_tmf_req req;
	struct vscsi_tmf *tmf;
	unsigned target, lun, nq = 0;

	if (e->out_len < sizeof(req) || e->in_len < sizeof(struct virtio_scsi_ctrl_tmf_resp)) {
		umdev_vdev_complete(&r->base, 0);
		return;
	}
	umdev_iov_to_buf(e->iov, e->n_out, 0, &req, sizeof(req));
	if (vscsi_decode_lun(req.lun, &target, &lun) < 0 ||
	    !umdev_scsi_target_exists(v->t, target)) {
		tmf_respond(r, VIRTIO_SCSI_S_BAD_TARGET);
		return;
	}
	umdev_dbg("%s: TMF %u on %u:%u (id %llu) received", v->vdev.name, req.subtype, target,
		  lun, (unsigned long long)req.id);
	switch (req.subtype) {
	case VIRTIO_SCSI_T_TMF_CLEAR_ACA:
		/* NACA is refused in every CDB, so no ACA condition can exist to clear. */
		tmf_respond(r, VIRTIO_SCSI_S_FUNCTION_REJECTED);
		return;
	case VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET:
		break;
	case VIRTIO_SCSI_T_TMF_ABORT_TASK:
	case VIRTIO_SCSI_T_TMF_ABORT_TASK_SET:
	case VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET:
	case VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET:
	case VIRTIO_SCSI_T_TMF_QUERY_TASK:
	case VIRTIO_SCSI_T_TMF_QUERY_TASK_SET:
		if (!umdev_scsi_lu_exists(v->t, target, lun)) {
			tmf_respond(r, VIRTIO_SCSI_S_INCORRECT_LUN);
			return;
		}
		break;
	default:
		tmf_respond(r, VIRTIO_SCSI_S_FUNCTION_REJECTED);
		return;
	}
	tmf = calloc(1, sizeof(*tmf));
	if (!tmf) {
		tmf_respond(r, VIRTIO_SCSI_S_FAILURE);
		return;
	}
	*tmf = (struct vscsi_tmf){
		.v = v, .req = r, .ctrl_loop = umdev_vdev_queue_loop(q), .subtype = req.subtype,
		.target = target, .lun = lun, .id = req.id,
	};
	/* One reference while scanning; each request queue's scan drops one. */
	atomic_store(&tmf->waiting, 1);
	for (unsigned i = VIRTIO_SCSI_REQQ0; i < v->vdev.num_queues; i++) {
		struct umdev_vdev_queue *rq = v->vdev.queues[i];
		struct tmf_part *part;

		if (!rq)
			continue;
		part = malloc(sizeof(*part));
		if (!part)
			continue;
		*part = (struct tmf_part){ tmf, i };
		atomic_fetch_add(&tmf->waiting, 1);
		if (umdev_loop_call(umdev_vdev_queue_loop(rq), tmf_scan, part) < 0) {
			atomic_fetch_sub(&tmf->waiting, 1);
			free(part);
			continue;
		}
		nq++;
	}
	(void)nq;
	tmf_put(tmf);
}

/* ---- asynchronous notification ---- */

/*
 * Our disks have no medium to change, no power states and no other hosts:
 * no asynchronous event class is supported, so event_actual is always 0,
 * whatever the driver asks for (the spec's "the events it supports").
 */
#define VSCSI_AN_SUPPORTED 0u

static void handle_an(umdev_vscsi *v, struct vscsi_req *r)
{
	const struct umdev_vq_elem *e = &r->base.elem;
	struct virtio_scsi_ctrl_an_req req;
	struct virtio_scsi_ctrl_an_resp resp = { 0 };
	unsigned target, lun;

	if (e->out_len < sizeof(req) || e->in_len < sizeof(resp)) {
		umdev_vdev_complete(&r->base, 0);
		return;
	}
	umdev_iov_to_buf(e->iov, e->n_out, 0, &req, sizeof(req));
	if (vscsi_decode_lun(req.lun, &target, &lun) < 0 ||
	    !umdev_scsi_target_exists(v->t, target)) {
		resp.response = VIRTIO_SCSI_S_BAD_TARGET;
	} else if (!umdev_scsi_lu_exists(v->t, target, lun)) {
		resp.response = VIRTIO_SCSI_S_INCORRECT_LUN;
	} else {
		resp.event_actual = req.event_requested & VSCSI_AN_SUPPORTED;
		resp.response = VIRTIO_SCSI_S_OK;
	}
	umdev_iov_from_buf(e->iov + e->n_out, e->n_in, 0, &resp, sizeof(resp));
	umdev_vdev_complete(&r->base, sizeof(resp));
}

void vscsi_ctrl_handle(umdev_vscsi *v, struct umdev_vdev_queue *q, struct vscsi_req *r)
{
	const struct umdev_vq_elem *e = &r->base.elem;
	uint32_t type;

	if (e->out_len < sizeof(type)) {
		umdev_vdev_complete(&r->base, 0);
		return;
	}
	umdev_iov_to_buf(e->iov, e->n_out, 0, &type, sizeof(type));
	switch (type) {
	case VIRTIO_SCSI_T_TMF:
		handle_tmf(v, q, r);
		break;
	case VIRTIO_SCSI_T_AN_QUERY:
	case VIRTIO_SCSI_T_AN_SUBSCRIBE:
		handle_an(v, r);
		break;
	default:
		/* Unknown layout: the last writable byte is the response in every type. */
		if (e->in_len) {
			uint8_t resp = VIRTIO_SCSI_S_FAILURE;

			umdev_iov_from_buf(e->iov + e->n_out, e->n_in, e->in_len - 1, &resp, 1);
			umdev_vdev_complete(&r->base, e->in_len);
		} else {
			umdev_vdev_complete(&r->base, 0);
		}
		break;
	}
}

/* ---- eventq ----
 *
 * The driver parks buffers here; they stay popped until an event fills
 * them. Events are posted from any thread into v->evq. An event that finds
 * no parked buffer is kept (up to VSCSI_EVENTS_MAX) and is delivered with
 * VIRTIO_SCSI_T_EVENTS_MISSED set, which makes Linux rescan the host as
 * well, so nothing is lost. Because the queue runner waits for every popped
 * buffer before a queue can stop, parked buffers are handed back as
 * NO_EVENT when the queue stops (queue_stopping), so a stop never waits for
 * an event. There is no periodic hand-back: an idle eventq costs no
 * wake-ups (a thousand idle devices stay asleep). Buffers handed back
 * that way are owed by the driver, which re-posts them: an event posted
 * meanwhile waits for them without the MISSED flag, since the driver did not
 * fail to provide a buffer (this keeps the flag independent of how fast the
 * driver re-posts). An event dropped because the queue is full is always
 * flagged.
 */

static void park(umdev_vscsi *v, struct vscsi_req *r)
{
	r->next_parked = NULL;
	if (v->park_tail)
		v->park_tail->next_parked = r;
	else
		v->park_head = r;
	v->park_tail = r;
	atomic_fetch_add(&v->parked, 1);
	if (v->evq.lent)
		v->evq.lent--; /* one of those we handed back came home */
}

static struct vscsi_req *unpark(umdev_vscsi *v)
{
	struct vscsi_req *r = v->park_head;

	if (!r)
		return NULL;
	v->park_head = r->next_parked;
	if (!v->park_head)
		v->park_tail = NULL;
	atomic_fetch_sub(&v->parked, 1);
	return r;
}

static void fill_event(struct vscsi_req *r, const struct virtio_scsi_event *ev)
{
	const struct umdev_vq_elem *e = &r->base.elem;

	umdev_vdev_complete(&r->base, umdev_iov_from_buf(e->iov + e->n_out, e->n_in, 0, ev,
							  sizeof(*ev)));
}

/* Deliver what is pending into parked buffers. eventq loop. */
static void deliver(umdev_vscsi *v)
{
	for (;;) {
		struct virtio_scsi_event ev;
		struct vscsi_req *r;

		pthread_mutex_lock(&v->ev_lock);
		if (!v->park_head || (!v->evq.count && !v->evq.missed)) {
			pthread_mutex_unlock(&v->ev_lock);
			return;
		}
		if (v->evq.count) {
			ev = v->evq.ev[v->evq.head];
			v->evq.head = (v->evq.head + 1) % VSCSI_EVENTS_MAX;
			v->evq.count--;
		} else {
			/* Dropped events and nothing queued: ask the driver to rescan. */
			memset(&ev, 0, sizeof(ev));
			ev.event = VIRTIO_SCSI_T_NO_EVENT;
		}
		if (v->evq.missed)
			ev.event |= VIRTIO_SCSI_T_EVENTS_MISSED;
		v->evq.missed = false;
		r = unpark(v);
		pthread_mutex_unlock(&v->ev_lock);
		fill_event(r, &ev);
	}
}

void vscsi_post_event(umdev_vscsi *v, uint32_t event, unsigned target, unsigned lun,
		      uint32_t reason)
{
	struct virtio_scsi_event ev = { .event = event, .reason = reason };
	uint64_t one = 1;

	vscsi_encode_lun(ev.lun, target, lun);
	pthread_mutex_lock(&v->ev_lock);
	if (!atomic_load(&v->parked) && !v->evq.lent)
		v->evq.missed = true; /* the driver left no buffer for it */
	if (v->evq.count < VSCSI_EVENTS_MAX) {
		v->evq.ev[(v->evq.head + v->evq.count) % VSCSI_EVENTS_MAX] = ev;
		v->evq.count++;
	} else {
		v->evq.missed = true; /* dropped */
	}
	pthread_mutex_unlock(&v->ev_lock);
	if (write(v->ev_fd, &one, sizeof(one)) < 0) {
		/* counter full: a wake-up is pending anyway */
	}
}

void vscsi_events_reset(umdev_vscsi *v)
{
	pthread_mutex_lock(&v->ev_lock);
	memset(&v->evq, 0, sizeof(v->evq));
	pthread_mutex_unlock(&v->ev_lock);
}

static void on_event_fd(void *opaque, uint32_t events)
{
	umdev_vscsi *v = opaque;
	uint64_t n;

	if (read(v->ev_fd, &n, sizeof(n)) < 0) {
		/* nothing to read: spurious */
	}
	deliver(v);
}

/* Hand every parked buffer back as NO_EVENT. Queued events stay queued. eventq loop. */
static void return_parked(umdev_vscsi *v)
{
	struct virtio_scsi_event ev = { .event = VIRTIO_SCSI_T_NO_EVENT };
	struct vscsi_req *r;

	pthread_mutex_lock(&v->ev_lock);
	r = v->park_head;
	v->park_head = v->park_tail = NULL;
	v->evq.lent += atomic_exchange(&v->parked, 0);
	pthread_mutex_unlock(&v->ev_lock);
	while (r) {
		struct vscsi_req *next = r->next_parked;

		fill_event(r, &ev);
		r = next;
	}
}

/*
 * The eventq is stopping (GET_VRING_BASE, e.g. at a migration's
 * switchover, or a disconnect): return the parked buffers now, or the stop
 * would wait for the next event. Events not yet delivered stay in v->evq
 * for the queue's next start.
 */
void vscsi_eventq_stopping(umdev_vscsi *v)
{
	return_parked(v);
}

int vscsi_eventq_init(umdev_vscsi *v, struct umdev_vdev_queue *q)
{
	umdev_loop *loop = umdev_vdev_queue_loop(q);
	int ret;

	v->park_head = v->park_tail = NULL;
	atomic_store(&v->parked, 0);
	ret = umdev_loop_add_fd(loop, v->ev_fd, EPOLLIN, on_event_fd, v);
	if (ret < 0)
		return ret;
	v->eventq_running = true;
	/*
	 * A ring used before, that this device never ran (a migration's
	 * destination, or umdevd restarted under a running guest): events
	 * still queued where it ran before are lost with that process, and
	 * no channel carries them here. Tell the driver so (EVENTS_MISSED):
	 * Linux then rescans the host, and nothing is missed after all.
	 */
	if (!v->eventq_started && umdev_vdev_queue_start_idx(q) != 0) {
		uint64_t one = 1;

		pthread_mutex_lock(&v->ev_lock);
		v->evq.missed = true;
		pthread_mutex_unlock(&v->ev_lock);
		if (write(v->ev_fd, &one, sizeof(one)) < 0) {
			/* counter full: a wake-up is pending anyway */
		}
	}
	v->eventq_started = true;
	return 0;
}

void vscsi_eventq_fini(umdev_vscsi *v, struct umdev_vdev_queue *q)
{
	umdev_loop *loop = umdev_vdev_queue_loop(q);

	if (!v->eventq_running)
		return;
	umdev_loop_del_fd(loop, v->ev_fd);
	v->eventq_running = false;
}

void vscsi_eventq_handle(umdev_vscsi *v, struct umdev_vdev_queue *q, struct vscsi_req *r)
{
	const struct umdev_vq_elem *e = &r->base.elem;

	if (e->in_len < sizeof(struct virtio_scsi_event)) {
		/* Too short for an event: the spec lets us return it at once. */
		umdev_vdev_complete(&r->base, 0);
		return;
	}
	pthread_mutex_lock(&v->ev_lock);
	park(v, r);
	pthread_mutex_unlock(&v->ev_lock);
	deliver(v);
}
