/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The virtio queue runner: generic data-path work shared by every virtio
 * device (see include/umdev/virtio.h for the model and the state machine).
 */
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "umdev/log.h"
#include "umdev/proto/virtio_ring_packed.h"
#include "umdev/virtio.h"
#include "virtio/vq_internal.h" /* umdev_vq_set_broken() */

enum q_state { Q_STOPPED, Q_RUNNING, Q_STOPPING };

/* Where a request with remote parts is (umdev_vdev_set_remote()). */
enum { REMOTE_NONE, REMOTE_IN, REMOTE_OUT };

struct umdev_vdev_remote {
	umdev_loop *ctl;
	int efd; /* wakes the control loop: copies are waiting */
	umdev_vdev_copy_fn copy;
	void *opaque;
};

struct umdev_vdev_queue {
	struct umdev_virtio_dev *vdev;
	unsigned idx;
	umdev_vq *vq;
	umdev_loop *loop;
	int kick_fd;
	bool poll;
	bool recover;
	umdev_loop_poller *poller; /* permanent (poll) or while adaptive-polling */
	uint64_t poll_deadline_ns; /* adaptive polling ends then, unless work arrives */
	enum q_state state; /* written on the loop thread while started */
	unsigned inflight;
	bool in_process; /* process() is on the stack: completions must not recurse */
	bool again; /* a completion freed a slot while in_process */
	bool broken_logged;
	bool remote_check; /* the device has remote memory and the map shadows some */
	/* One interrupt per batch: completions push at once and defer the
	 * notify decision to the end of the loop iteration. */
	struct umdev_loop_deferred notify_d;
	void *priv;

	/*
	 * Statistics, written only on the loop thread (no locks, no atomics);
	 * read there too by umdev_vdev_queue_stats(). batch_ns is the pop time
	 * shared by every request popped in one process() pass, so the data
	 * path reads the clock once per batch and once per completion.
	 */
	struct umdev_vdev_queue_stats st;
	uint64_t batch_ns;

	/* Request slots, one per ring entry (a ring can't have more in flight). */
	unsigned nslots;
	uint8_t *slots;
	struct iovec *iovs;
	struct umdev_vdev_req *free_list;
	unsigned nfresh; /* slots [nfresh, nslots) never used since start: not on free_list */

	/* Control thread waits here for STOPPED. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Requests waiting for the control thread to copy remote memory; under lock. */
	struct umdev_vdev_req *jobs, *jobs_tail;
	bool stopped;
	int start_err;
};

struct umdev_virtio_dev *umdev_vdev_queue_dev(const struct umdev_vdev_queue *q) { return q->vdev; }
unsigned umdev_vdev_queue_index(const struct umdev_vdev_queue *q) { return q->idx; }
uint16_t umdev_vdev_queue_start_idx(const struct umdev_vdev_queue *q)
{
	/* A fresh packed ring starts at slot 0 with wrap counter 1: report 0. */
	if (umdev_vq_is_packed(q->vq))
		return umdev_vq_last_avail_idx(q->vq) ^ VIRTQ_PACKED_WRAP_BIT;
	return umdev_vq_last_avail_idx(q->vq);
}
umdev_loop *umdev_vdev_queue_loop(const struct umdev_vdev_queue *q) { return q->loop; }
void *umdev_vdev_queue_priv(const struct umdev_vdev_queue *q) { return q->priv; }
void umdev_vdev_queue_set_priv(struct umdev_vdev_queue *q, void *priv) { q->priv = priv; }

static struct umdev_vdev_req *slot(struct umdev_vdev_queue *q, unsigned i)
{
	return (struct umdev_vdev_req *)(q->slots + (size_t)i * q->vdev->req_size);
}

/*
 * Slot arrays are a few KiB per ring entry (a request and its iovecs), so
 * up to MiBs per queue: mapped, not malloc'd, so that pages of slots never
 * used cost no memory (malloc may hand back recycled heap and clear it all)
 * and are given back to the system when the queue goes. With the lazy free
 * list below an idle or QD1 queue touches a page or two: a thousand idle
 * devices stay small (docs/performance.md, "Thousands of devices").
 */
static void *map_zeroed(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void free_slots(struct umdev_vdev_queue *q)
{
	if (q->slots)
		munmap(q->slots, (size_t)q->nslots * q->vdev->req_size);
	if (q->iovs)
		munmap(q->iovs, (size_t)q->nslots * q->vdev->max_iov * sizeof(struct iovec));
	q->slots = NULL;
	q->iovs = NULL;
	q->nslots = 0;
}

static int alloc_slots(struct umdev_vdev_queue *q, unsigned n)
{
	struct umdev_virtio_dev *vdev = q->vdev;

	if (q->nslots == n)
		return 0;
	free_slots(q);
	q->slots = map_zeroed((size_t)n * vdev->req_size);
	q->iovs = map_zeroed((size_t)n * vdev->max_iov * sizeof(struct iovec));
	q->nslots = n;
	if (!q->slots || !q->iovs) {
		free_slots(q);
		return -ENOMEM;
	}
	return 0;
}

static void reset_free_list(struct umdev_vdev_queue *q)
{
	q->free_list = NULL;
	q->nfresh = 0;
}

/* The next free slot, first touching a never-used one when the list is empty; or NULL. */
static struct umdev_vdev_req *free_slot(struct umdev_vdev_queue *q)
{
	if (!q->free_list && q->nfresh < q->nslots) {
		struct umdev_vdev_req *r = slot(q, q->nfresh);

		r->q = q;
		r->iov = q->iovs + (size_t)q->nfresh * q->vdev->max_iov;
		r->next_free = NULL;
		q->free_list = r;
		q->nfresh++;
	}
	return q->free_list;
}

static void notify_now(struct umdev_loop_deferred *d)
{
	struct umdev_vdev_queue *q = (struct umdev_vdev_queue *)((char *)d -
		offsetof(struct umdev_vdev_queue, notify_d));

	umdev_vq_notify(q->vq);
}

static void finish_stop(struct umdev_vdev_queue *q)
{
	/* The last batch's interrupt goes out before the queue stops. */
	if (q->notify_d.queued) {
		umdev_loop_cancel(q->loop, &q->notify_d);
		umdev_vq_notify(q->vq);
	}
	if (q->vdev->ops->queue_fini)
		q->vdev->ops->queue_fini(q);
	q->state = Q_STOPPED;
	pthread_mutex_lock(&q->lock);
	q->stopped = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

/*
 * CLOCK_MONOTONIC is read through the vDSO (no system call). The coarse
 * clock would be cheaper still but ticks every few ms, longer than most
 * requests take, so latencies would all read 0.
 */
static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void finish_stop_msg(void *opaque)
{
	finish_stop(opaque);
}

/* ---- remote memory (umdev_vdev_set_remote() in umdev/virtio.h) ---- */

/*
 * Loop thread: true if any part of @r lies in shadowed memory; notes in
 * r->shadow_in whether a writable one does (to be copied out at completion).
 */
static bool remote_classify(struct umdev_vdev_queue *q, struct umdev_vdev_req *r)
{
	umdev_as_map *m = umdev_vq_map(q->vq);
	const struct umdev_vq_elem *e = &r->elem;
	bool any = false;
	uint64_t gpa;

	for (unsigned i = 0; i < e->n_out + e->n_in; i++)
		if (umdev_as_map_shadow_gpa(m, e->iov[i].iov_base, e->iov[i].iov_len, &gpa) == 1) {
			any = true;
			r->shadow_in |= i >= e->n_out;
		}
	return any;
}

/* Loop thread: hand @r to the control thread for its copy (@stage). */
static void remote_post(struct umdev_vdev_queue *q, struct umdev_vdev_req *r, uint8_t stage)
{
	uint64_t one = 1;

	r->remote_stage = stage;
	r->remote_err = 0;
	r->remote_next = NULL;
	pthread_mutex_lock(&q->lock);
	if (q->jobs_tail)
		q->jobs_tail->remote_next = r;
	else
		q->jobs = r;
	q->jobs_tail = r;
	/* A stop waiting on the control thread runs the copy itself. */
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	if (write(q->vdev->remote->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, so the control loop is woken anyway */
	}
}

/*
 * Control thread: the copy. In: every shadowed part, the writable ones too,
 * so bytes the device leaves alone go back unchanged. Out: the writable
 * shadowed parts.
 */
static int remote_copy(struct umdev_vdev_queue *q, const struct umdev_vdev_req *r)
{
	const struct umdev_vdev_remote *rm = q->vdev->remote;
	umdev_as_map *m = umdev_vq_map(q->vq);
	const struct umdev_vq_elem *e = &r->elem;
	bool out = r->remote_stage == REMOTE_OUT;

	for (unsigned i = out ? e->n_out : 0; i < e->n_out + e->n_in; i++) {
		const struct iovec *v = &e->iov[i];
		uint64_t gpa;
		int ret;

		if (umdev_as_map_shadow_gpa(m, v->iov_base, v->iov_len, &gpa) != 1)
			continue;
		ret = rm->copy(rm->opaque, gpa, v->iov_base, v->iov_len, out);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void push_done(struct umdev_vdev_req *r, uint32_t written);

/* Loop thread: the copy of @r is done; carry on where it left off. */
static void remote_done(void *opaque)
{
	struct umdev_vdev_req *r = opaque;
	struct umdev_vdev_queue *q = r->q;
	uint8_t stage = r->remote_stage;

	r->remote_stage = REMOTE_NONE;
	if (r->remote_err) {
		/*
		 * No used entry for it: the driver would read a status (or
		 * data) that never reached it as if it had. The queue stops
		 * until the driver resets it, as for a ring it broke.
		 */
		umdev_vq_set_broken(q->vq, "cannot copy %s remote memory: %s",
				    stage == REMOTE_IN ? "from" : "to", strerror(-r->remote_err));
		r->failed = true;
	}
	if (stage != REMOTE_IN || r->remote_err) {
		push_done(r, stage == REMOTE_IN ? 0 : r->written);
		return;
	}
	q->vdev->ops->handle(q, r);
	/* Popped before a stop began: what the device parks (event buffers) goes back now. */
	if (q->state == Q_STOPPING && q->vdev->ops->queue_stopping)
		q->vdev->ops->queue_stopping(q);
}

/* Control thread: run @q's waiting copies, handing each back to its loop. */
static void remote_run(struct umdev_vdev_queue *q)
{
	for (;;) {
		struct umdev_vdev_req *r;

		pthread_mutex_lock(&q->lock);
		r = q->jobs;
		if (r) {
			q->jobs = r->remote_next;
			if (!q->jobs)
				q->jobs_tail = NULL;
		}
		pthread_mutex_unlock(&q->lock);
		if (!r)
			return;
		r->remote_err = remote_copy(q, r);
		if (umdev_loop_call(q->loop, remote_done, r) < 0 &&
		    umdev_loop_call_sync(q->loop, remote_done, r) < 0)
			umdev_err("%s.q%u: a request with remote memory is lost", q->vdev->name,
				  q->idx);
	}
}

static void remote_wake(void *opaque, uint32_t events)
{
	struct umdev_virtio_dev *vdev = opaque;
	uint64_t v;

	(void)events;
	if (read(vdev->remote->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: woken for copies another pass already ran */
	}
	for (unsigned i = 0; i < vdev->num_queues; i++)
		if (vdev->queues[i])
			remote_run(vdev->queues[i]);
}

int umdev_vdev_set_remote(struct umdev_virtio_dev *vdev, umdev_loop *ctl, umdev_vdev_copy_fn copy,
			  void *opaque)
{
	struct umdev_vdev_remote *rm;
	int ret;

	if (vdev->remote || !ctl || !copy)
		return -EINVAL;
	rm = calloc(1, sizeof(*rm));
	if (!rm)
		return -ENOMEM;
	rm->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (rm->efd < 0) {
		ret = -errno;
		free(rm);
		return ret;
	}
	rm->ctl = ctl;
	rm->copy = copy;
	rm->opaque = opaque;
	ret = umdev_loop_add_fd(ctl, rm->efd, EPOLLIN, remote_wake, vdev);
	if (ret < 0) {
		close(rm->efd);
		free(rm);
		return ret;
	}
	vdev->remote = rm;
	return 0;
}

bool umdev_vdev_has_remote(const struct umdev_virtio_dev *vdev)
{
	return vdev->remote != NULL;
}

static void remote_free(struct umdev_virtio_dev *vdev)
{
	if (!vdev->remote)
		return;
	umdev_loop_del_fd(vdev->remote->ctl, vdev->remote->efd);
	close(vdev->remote->efd);
	free(vdev->remote);
	vdev->remote = NULL;
}

static void dispatch(struct umdev_vdev_queue *q, struct umdev_vdev_req *r)
{
	if (!q->batch_ns)
		q->batch_ns = now_ns();
	r->t_start = q->batch_ns;
	r->failed = false;
	q->free_list = r->next_free;
	q->inflight++;
	q->st.depth_sum += q->inflight;
	if (q->inflight > q->st.max_inflight)
		q->st.max_inflight = q->inflight;
	r->shadow_in = false;
	r->remote_stage = REMOTE_NONE;
	if (q->remote_check && remote_classify(q, r)) {
		remote_post(q, r, REMOTE_IN);
		return;
	}
	q->vdev->ops->handle(q, r);
}

static unsigned lat_bucket(uint64_t ns)
{
	unsigned b = ns ? 63 - (unsigned)__builtin_clzll(ns) : 0;

	return b < UMDEV_VDEV_LAT_BUCKETS ? b : UMDEV_VDEV_LAT_BUCKETS - 1;
}

static void count_completion(struct umdev_vdev_queue *q, const struct umdev_vdev_req *r,
			     uint32_t written)
{
	uint64_t now = now_ns();

	q->st.requests++;
	q->st.errors += r->failed;
	q->st.bytes_out += r->elem.out_len;
	q->st.bytes_in += written;
	q->st.lat[lat_bucket(now > r->t_start ? now - r->t_start : 0)]++;
}

static int on_adaptive_poll(void *opaque);

/*
 * The ring ran dry while sleeping on kicks. Returns true if the queue should
 * keep kicks off and poll a while (adaptive polling), false to re-arm kicks.
 */
static bool idle_keep_polling(struct umdev_vdev_queue *q)
{
	int err = 0;

	if (!q->vdev->poll_us)
		return false;
	if (q->poller)
		return true; /* already polling: the poller checks the deadline */
	q->poller = umdev_loop_add_poller(q->loop, on_adaptive_poll, q, &err);
	if (!q->poller)
		return false;
	q->poll_deadline_ns = now_ns() + q->vdev->poll_us * 1000ull;
	return true;
}

/* Pop and hand over everything available. Loop thread. Returns work done. */
static int process(struct umdev_vdev_queue *q)
{
	int n = 0, ret;

	if (q->in_process) {
		q->again = true;
		return 0;
	}
	q->in_process = true;
	q->batch_ns = 0;
	do {
		q->again = false;
		while (q->state == Q_RUNNING && free_slot(q)) {
			struct umdev_vdev_req *r = q->free_list;

			ret = umdev_vq_pop(q->vq, &r->elem, r->iov, q->vdev->max_iov);
			if (ret == 0) {
				/* Empty: re-arm kicks, then look once more (lost-wakeup race). */
				if (q->poll || idle_keep_polling(q) || !umdev_vq_enable_kicks(q->vq))
					break;
				continue;
			}
			if (ret < 0) {
				if (!q->broken_logged) {
					if (!umdev_vq_memory_gone(q->vq))
						umdev_err("%s.q%u: queue failed, ignoring it until "
							  "reset", q->vdev->name, q->idx);
					q->st.broken++;
				}
				q->broken_logged = true;
				break;
			}
			if (!q->poll)
				umdev_vq_disable_kicks(q->vq);
			dispatch(q, r);
			n++;
		}
	} while (q->again && q->state == Q_RUNNING);
	q->in_process = false;
	return n;
}

/*
 * The kick eventfd is watched edge-triggered and never read (one system call
 * less per wake-up): a kick made while process() runs is reported again by
 * the next wait. A back-end taking the fd over after us sees it readable: one
 * spurious kick, harmless.
 */
static void on_kick(void *opaque, uint32_t events)
{
	process(opaque);
}

static int on_poll(void *opaque)
{
	return process(opaque);
}

static int on_adaptive_poll(void *opaque)
{
	struct umdev_vdev_queue *q = opaque;
	int n = process(q);

	if (n > 0) {
		q->poll_deadline_ns = now_ns() + q->vdev->poll_us * 1000ull;
		return n;
	}
	if (q->state != Q_RUNNING || now_ns() < q->poll_deadline_ns)
		return 0;
	/* Idle for poll_us: sleep on kicks again (and catch a last-moment buffer). */
	umdev_loop_del_poller(q->loop, q->poller);
	q->poller = NULL;
	if (umdev_vq_enable_kicks(q->vq))
		n = process(q);
	return n;
}

void umdev_vdev_complete(struct umdev_vdev_req *r, uint32_t written)
{
	/* What the device wrote into shadowed memory goes out before the driver sees it used. */
	if (r->shadow_in && r->remote_stage == REMOTE_NONE) {
		r->written = written;
		remote_post(r->q, r, REMOTE_OUT);
		return;
	}
	push_done(r, written);
}

static void push_done(struct umdev_vdev_req *r, uint32_t written)
{
	struct umdev_vdev_queue *q = r->q;

	count_completion(q, r, written);
	/* Migration: what the device wrote is logged before the driver can see it used. */
	umdev_vq_log_write(q->vq, r->elem.iov + r->elem.n_out, r->elem.n_in);
	umdev_vq_push(q->vq, r->elem.head, written);
	umdev_loop_defer(q->loop, &q->notify_d);
	r->next_free = q->free_list;
	q->free_list = r;
	q->inflight--;
	if (q->state == Q_STOPPING) {
		/*
		 * The last request of a stopping queue: tear down after this
		 * completion has unwound, not inside it (queue_fini frees the
		 * backend channel whose callback we may be running in).
		 */
		if (q->inflight == 0 && umdev_loop_call(q->loop, finish_stop_msg, q) < 0)
			finish_stop(q);
	} else if (q->state == Q_RUNNING && !q->poll && !r->next_free && q->nfresh == q->nslots) {
		/* Slots had run out: the ring may hold requests we skipped. */
		process(q);
	}
}

/* Resubmit what a previous back-end left in flight (vhost-user inflight region). */
static void resubmit_inflight(struct umdev_vdev_queue *q)
{
	uint16_t *heads = calloc(q->nslots, sizeof(*heads));
	int n;

	if (!heads) {
		umdev_err("%s.q%u: no memory to recover in-flight requests", q->vdev->name, q->idx);
		return;
	}
	n = umdev_vq_recover_inflight(q->vq, heads, q->nslots);
	if (n < 0)
		umdev_err("%s.q%u: inflight region unusable (%s), not resubmitting",
			  q->vdev->name, q->idx, strerror(-n));
	else if (n > 0)
		umdev_info("%s.q%u: resubmitting %d request(s) left in flight", q->vdev->name,
			   q->idx, n);
	q->batch_ns = 0;
	for (int i = 0; i < n && free_slot(q); i++) {
		struct umdev_vdev_req *r = q->free_list;

		if (umdev_vq_get_head(q->vq, heads[i], &r->elem, r->iov, q->vdev->max_iov) < 0)
			break;
		dispatch(q, r);
	}
	free(heads);
}

static void start_on_loop(void *opaque)
{
	struct umdev_vdev_queue *q = opaque;
	int err = 0;

	q->start_err = 0;
	reset_free_list(q);
	q->inflight = 0;
	q->broken_logged = false;
	q->remote_check = q->vdev->remote && umdev_as_map_has_shadow(umdev_vq_map(q->vq));
	if (q->vdev->ops->queue_init) {
		q->start_err = q->vdev->ops->queue_init(q);
		if (q->start_err < 0)
			return;
	}
	if (q->poll) {
		q->poller = umdev_loop_add_poller(q->loop, on_poll, q, &err);
		if (q->poller)
			umdev_vq_disable_kicks(q->vq);
	} else {
		err = umdev_loop_add_fd_edge(q->loop, q->kick_fd, on_kick, q);
	}
	if (err < 0) {
		if (q->vdev->ops->queue_fini)
			q->vdev->ops->queue_fini(q);
		q->start_err = err;
		return;
	}
	q->stopped = false;
	q->state = Q_RUNNING;
	if (q->recover)
		resubmit_inflight(q);
	process(q);
}

int umdev_vdev_queue_start(struct umdev_virtio_dev *vdev, unsigned idx, umdev_vq *vq, int kick_fd,
			   bool recover)
{
	struct umdev_vdev_queue *q;
	int ret;

	if (idx >= vdev->num_queues || !vdev->num_loops)
		return -EINVAL;
	q = vdev->queues[idx];
	if (!q) {
		q = calloc(1, sizeof(*q));
		if (!q)
			return -ENOMEM;
		pthread_mutex_init(&q->lock, NULL);
		pthread_cond_init(&q->cond, NULL);
		q->vdev = vdev;
		q->idx = idx;
		q->stopped = true;
		q->notify_d.fn = notify_now;
		vdev->queues[idx] = q;
	}
	if (q->state != Q_STOPPED)
		return -EBUSY;
	ret = alloc_slots(q, umdev_vq_size(vq));
	if (ret < 0)
		return ret;
	q->vq = vq;
	q->kick_fd = kick_fd;
	q->poll = vdev->poll || kick_fd < 0;
	q->recover = recover;
	/* Spread queues over the data-plane loops; a queue never moves while it runs. */
	q->loop = vdev->loops[idx % vdev->num_loops];
	ret = umdev_loop_call_sync(q->loop, start_on_loop, q);
	if (ret < 0)
		return ret;
	return q->start_err;
}

static void stop_on_loop(void *opaque)
{
	struct umdev_vdev_queue *q = opaque;

	if (q->state != Q_RUNNING)
		return;
	if (q->poller) {
		umdev_loop_del_poller(q->loop, q->poller);
		q->poller = NULL;
	}
	if (!q->poll)
		umdev_loop_del_fd(q->loop, q->kick_fd);
	q->state = Q_STOPPING;
	if (q->inflight == 0) {
		finish_stop(q);
		return;
	}
	/* Its last completion (maybe in here) finishes the stop. */
	if (q->vdev->ops->queue_stopping)
		q->vdev->ops->queue_stopping(q);
}

void umdev_vdev_queue_stop(struct umdev_virtio_dev *vdev, unsigned idx)
{
	struct umdev_vdev_queue *q = idx < vdev->num_queues ? vdev->queues[idx] : NULL;

	if (!q || q->stopped)
		return;
	if (umdev_loop_call_sync(q->loop, stop_on_loop, q) < 0) {
		umdev_err("%s.q%u: cannot reach its loop to stop it", vdev->name, idx);
		return;
	}
	/*
	 * In-flight requests complete on the loop; wait for the last one,
	 * running the remote-memory copies it asks of this thread meanwhile.
	 */
	pthread_mutex_lock(&q->lock);
	while (!q->stopped) {
		if (q->jobs) {
			pthread_mutex_unlock(&q->lock);
			remote_run(q);
			pthread_mutex_lock(&q->lock);
			continue;
		}
		pthread_cond_wait(&q->cond, &q->lock);
	}
	pthread_mutex_unlock(&q->lock);
}

bool umdev_vdev_queue_running(const struct umdev_virtio_dev *vdev, unsigned idx)
{
	const struct umdev_vdev_queue *q = idx < vdev->num_queues ? vdev->queues[idx] : NULL;

	return q && !q->stopped;
}

/* A running queue's map changes on its loop: grown (@shrink false) or less [@addr, +@len). */
struct map_msg {
	struct umdev_vdev_queue *q;
	umdev_as_map *map;
	bool shrink;
	uint64_t addr, len;
	int ret;
};

static void map_on_loop(void *opaque)
{
	struct map_msg *m = opaque;
	struct umdev_vdev_queue *q = m->q;

	if (q->state != Q_RUNNING) {
		m->ret = -EINVAL;
		return;
	}
	m->ret = m->shrink ? umdev_vq_shrink_map(q->vq, m->map, m->addr, m->len)
			   : umdev_vq_grow_map(q->vq, m->map);
	/* The new windows may be shadows: requests in them go the remote way. */
	if (!m->ret)
		q->remote_check = q->vdev->remote && umdev_as_map_has_shadow(m->map);
}

static int queue_map_call(struct umdev_virtio_dev *vdev, unsigned idx, struct map_msg *m)
{
	struct umdev_vdev_queue *q = idx < vdev->num_queues ? vdev->queues[idx] : NULL;

	if (!q || q->stopped)
		return -EINVAL;
	m->q = q;
	m->ret = -EINVAL;
	if (umdev_loop_call_sync(q->loop, map_on_loop, m) < 0)
		return -EINVAL;
	return m->ret;
}

int umdev_vdev_queue_grow_map(struct umdev_virtio_dev *vdev, unsigned idx, umdev_as_map *map)
{
	struct map_msg m = { .map = map };

	return queue_map_call(vdev, idx, &m);
}

int umdev_vdev_queue_shrink_map(struct umdev_virtio_dev *vdev, unsigned idx, umdev_as_map *map,
				uint64_t addr, uint64_t len)
{
	struct map_msg m = { .map = map, .shrink = true, .addr = addr, .len = len };

	return queue_map_call(vdev, idx, &m);
}

struct call_fd_msg {
	umdev_vq *vq;
	int fd;
};

static void set_call_on_loop(void *opaque)
{
	struct call_fd_msg *m = opaque;

	umdev_vq_set_call_fd(m->vq, m->fd);
}

void umdev_vdev_queue_set_call_fd(struct umdev_virtio_dev *vdev, unsigned idx, umdev_vq *vq,
				  int call_fd)
{
	struct umdev_vdev_queue *q = idx < vdev->num_queues ? vdev->queues[idx] : NULL;
	struct call_fd_msg m = { vq, call_fd };

	/* A running queue reads its call fd on its loop: switch it there. */
	if (q && !q->stopped && umdev_loop_call_sync(q->loop, set_call_on_loop, &m) == 0)
		return;
	umdev_vq_set_call_fd(vq, call_fd);
}

void umdev_vdev_free_queues(struct umdev_virtio_dev *vdev)
{
	for (unsigned i = 0; i < vdev->num_queues; i++) {
		struct umdev_vdev_queue *q = vdev->queues[i];

		if (!q)
			continue;
		umdev_vdev_queue_stop(vdev, i);
		pthread_mutex_destroy(&q->lock);
		pthread_cond_destroy(&q->cond);
		free_slots(q);
		free(q);
		vdev->queues[i] = NULL;
	}
	remote_free(vdev);
}

struct stats_msg {
	struct umdev_vdev_queue *q;
	struct umdev_vdev_queue_stats *out;
};

static void stats_on_loop(void *opaque)
{
	struct stats_msg *m = opaque;

	*m->out = m->q->st;
	m->out->inflight = m->q->inflight;
	m->out->running = m->q->state != Q_STOPPED;
}

int umdev_vdev_queue_stats(struct umdev_virtio_dev *vdev, unsigned idx,
			   struct umdev_vdev_queue_stats *out)
{
	struct stats_msg m;

	if (idx >= vdev->num_queues)
		return -EINVAL;
	m.q = vdev->queues ? vdev->queues[idx] : NULL;
	m.out = out;
	if (!m.q)
		return -ENOENT;
	/* Never reached a loop (its first start failed early): nothing runs, read here. */
	if (!m.q->loop) {
		stats_on_loop(&m);
		return 0;
	}
	return umdev_loop_call_sync(m.q->loop, stats_on_loop, &m);
}

uint64_t umdev_vdev_lat_percentile(const uint64_t lat[UMDEV_VDEV_LAT_BUCKETS], unsigned pct)
{
	uint64_t total = 0, want, seen = 0;

	for (unsigned b = 0; b < UMDEV_VDEV_LAT_BUCKETS; b++)
		total += lat[b];
	if (!total)
		return 0;
	if (pct > 100)
		pct = 100;
	/* The rank of the percentile sample, 1-based, rounded up. */
	want = (total * pct + 99) / 100;
	if (want == 0)
		want = 1;
	for (unsigned b = 0; b < UMDEV_VDEV_LAT_BUCKETS; b++) {
		uint64_t lo = b ? 1ull << b : 0, hi = 1ull << (b + 1);

		if (seen + lat[b] >= want) {
			/* Spread the bucket's samples evenly over [lo, hi). */
			return lo + (hi - lo) * (want - seen) / lat[b];
		}
		seen += lat[b];
	}
	return 1ull << UMDEV_VDEV_LAT_BUCKETS;
}
