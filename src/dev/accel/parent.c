/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * accel parent: the list of parents, the IMS and PASID registry they own,
 * and the engines.
 *
 * Engines poll while there is work and sleep when there is none: before
 * sleeping an engine raises the idle flag in each of its queues' mapped hot
 * page, then looks at the tails once more (a full fence between the two,
 * the driver doing the mirror image: write tail, fence, read idle). A
 * driver that finds the flag set writes the trapped KICK register. So
 * submission never traps while the engine is busy and no submission is
 * missed when it sleeps; a slow timer stays as a safety net against a
 * driver that never kicks.
 *
 * Fairness: an engine serves its queues round-robin, each at most its
 * priority's worth of descriptors per round. A queue that floods can take
 * no more than prio / (sum of the busy queues' prios) of the engine.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "accel_internal.h"
#include "umdev/log.h"
#include "util/shm.h"

#define ENGINE_POLL_NS 200000ull /* keep polling this long after the last work */
#define ENGINE_SLEEP_NS 10000000l /* safety-net timer while asleep */

static struct umdev_accel *parents; /* control thread */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- engine thread ---- */

static int engine_round(struct accel_engine *e)
{
	unsigned work = 0;

	for (unsigned i = 0; i < e->nvdev; i++) {
		struct umdev_accel_vdev *v = e->vdevs[(e->rr + i) % e->nvdev];

		work += accel_vdev_run(v, v->prio);
	}
	if (e->nvdev)
		e->rr = (e->rr + 1) % e->nvdev;
	return (int)work;
}

static void arm_timer(struct accel_engine *e, bool on)
{
	struct itimerspec its = { 0 };

	if (on) {
		its.it_value.tv_nsec = ENGINE_SLEEP_NS;
		its.it_interval = its.it_value;
	}
	if (timerfd_settime(e->timer_fd, 0, &its, NULL) < 0)
		umdev_warn("%s: engine timer: %s", e->a->name, strerror(errno));
}

static int engine_poll(void *opaque);

static void engine_wake(struct accel_engine *e)
{
	int err = 0;

	if (!e->sleeping)
		return;
	e->poller = umdev_loop_add_poller(e->loop, engine_poll, e, &err);
	if (!e->poller)
		return; /* the timer keeps the queues moving, slower */
	arm_timer(e, false);
	for (unsigned i = 0; i < e->nvdev; i++)
		accel_vdev_set_idle(e->vdevs[i], false);
	e->sleeping = false;
	e->last_work_ns = now_ns();
}

static void engine_sleep(struct accel_engine *e)
{
	for (unsigned i = 0; i < e->nvdev; i++)
		accel_vdev_set_idle(e->vdevs[i], true);
	/* Pairs with the driver's fence between its tail write and idle read. */
	umdev_shm_fence_full();
	for (unsigned i = 0; i < e->nvdev; i++) {
		if (accel_vdev_has_work(e->vdevs[i])) {
			for (unsigned k = 0; k < e->nvdev; k++)
				accel_vdev_set_idle(e->vdevs[k], false);
			return;
		}
	}
	umdev_loop_del_poller(e->loop, e->poller);
	e->poller = NULL;
	e->sleeping = true;
	arm_timer(e, true);
}

static int engine_poll(void *opaque)
{
	struct accel_engine *e = opaque;
	int work = engine_round(e);
	uint64_t now;

	if (work) {
		e->last_work_ns = now_ns();
		return work;
	}
	now = now_ns();
	if (now - e->last_work_ns >= ENGINE_POLL_NS)
		engine_sleep(e);
	return 0;
}

static void engine_timer(void *opaque, uint32_t events)
{
	struct accel_engine *e = opaque;
	uint64_t ticks;

	(void)events;
	if (read(e->timer_fd, &ticks, sizeof(ticks)) < 0)
		return;
	if (e->sleeping && engine_round(e) > 0)
		engine_wake(e);
}

static void engine_kicked(void *opaque)
{
	struct accel_engine *e = opaque;

	atomic_store_explicit(&e->kick_pending, 0, memory_order_release);
	engine_wake(e);
}

static void engine_start(void *opaque)
{
	struct accel_engine *e = opaque;
	int ret = umdev_loop_add_fd(e->loop, e->timer_fd, EPOLLIN, engine_timer, e);

	if (ret < 0)
		umdev_err("%s: engine timer on %s: %s", e->a->name, umdev_loop_name(e->loop),
			  strerror(-ret));
	e->sleeping = true;
	arm_timer(e, true);
}

static void engine_stop(void *opaque)
{
	struct accel_engine *e = opaque;

	if (e->poller)
		umdev_loop_del_poller(e->loop, e->poller);
	e->poller = NULL;
	umdev_loop_del_fd(e->loop, e->timer_fd);
}

struct vdev_msg {
	struct umdev_accel_vdev *v;
	void (*fn)(struct umdev_accel_vdev *v);
	int ret;
};

static void vdev_add_on_engine(void *opaque)
{
	struct vdev_msg *m = opaque;
	struct accel_engine *e = m->v->eng;

	if (e->nvdev == e->cap) {
		unsigned cap = e->cap ? e->cap * 2 : 8;
		struct umdev_accel_vdev **nv = realloc(e->vdevs, cap * sizeof(*nv));

		if (!nv) {
			m->ret = -ENOMEM;
			return;
		}
		e->vdevs = nv;
		e->cap = cap;
	}
	e->vdevs[e->nvdev++] = m->v;
	accel_vdev_set_idle(m->v, e->sleeping);
	m->ret = 0;
}

static void vdev_del_on_engine(void *opaque)
{
	struct vdev_msg *m = opaque;
	struct accel_engine *e = m->v->eng;

	for (unsigned i = 0; i < e->nvdev; i++) {
		if (e->vdevs[i] == m->v) {
			memmove(&e->vdevs[i], &e->vdevs[i + 1], (e->nvdev - i - 1) * sizeof(e->vdevs[0]));
			e->nvdev--;
			break;
		}
	}
	e->rr = 0;
}

static void vdev_fn_on_engine(void *opaque)
{
	struct vdev_msg *m = opaque;

	m->fn(m->v);
}

/* ---- control thread ---- */

static void call_engine(struct accel_engine *e, void (*fn)(void *), void *arg)
{
	int ret = umdev_loop_call_sync(e->loop, fn, arg);

	/* Only a loop that cannot queue a message fails; nothing else can run it. */
	if (ret < 0) {
		umdev_err("%s: engine on %s unreachable: %s", e->a->name, umdev_loop_name(e->loop),
			  strerror(-ret));
		abort();
	}
}

int accel_engine_attach(struct umdev_accel_vdev *v)
{
	struct umdev_accel *a = v->a;
	struct accel_engine *best = &a->eng[0];
	struct vdev_msg m = { .v = v };

	for (unsigned i = 1; i < a->neng; i++)
		if (a->eng[i].assigned < best->assigned)
			best = &a->eng[i];
	v->eng = best;
	call_engine(best, vdev_add_on_engine, &m);
	if (m.ret == 0)
		best->assigned++;
	return m.ret;
}

void accel_engine_detach(struct umdev_accel_vdev *v)
{
	struct vdev_msg m = { .v = v };

	call_engine(v->eng, vdev_del_on_engine, &m);
	v->eng->assigned--;
}

void accel_engine_sync(struct umdev_accel_vdev *v, void (*fn)(struct umdev_accel_vdev *v))
{
	struct vdev_msg m = { .v = v, .fn = fn };

	call_engine(v->eng, vdev_fn_on_engine, &m);
}

void accel_engine_kick(struct umdev_accel_vdev *v)
{
	struct accel_engine *e = v->eng;

	/* Coalesce: one queued wake is enough however often the driver kicks. */
	if (atomic_exchange_explicit(&e->kick_pending, 1, memory_order_acq_rel))
		return;
	if (umdev_loop_call(e->loop, engine_kicked, e) < 0)
		atomic_store_explicit(&e->kick_pending, 0, memory_order_release); /* the timer catches it */
}

static void accel_free(struct umdev_accel *a)
{
	for (unsigned i = 0; i < a->neng; i++) {
		struct accel_engine *e = &a->eng[i];

		if (e->timer_fd >= 0) {
			if (e->loop)
				call_engine(e, engine_stop, e);
			close(e->timer_fd);
		}
		free(e->vdevs);
	}
	free(a->eng);
	umdev_pasid_reg_free(a->pasids);
	umdev_ims_free(a->ims);
	free(a);
}

umdev_accel *umdev_accel_find(const char *name)
{
	for (struct umdev_accel *a = parents; a; a = a->next)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

umdev_accel *umdev_accel_new(const struct umdev_accel_config *cfg, int *err)
{
	struct umdev_accel *a;

	if (!cfg->name || strlen(cfg->name) >= sizeof(a->name) || !cfg->num_loops ||
	    !cfg->engines || cfg->engines > cfg->num_loops || !cfg->max_vdevs) {
		*err = -EINVAL;
		return NULL;
	}
	if (umdev_accel_find(cfg->name)) {
		*err = -EEXIST;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		*err = -ENOMEM;
		return NULL;
	}
	snprintf(a->name, sizeof(a->name), "%s", cfg->name);
	a->max_vdevs = cfg->max_vdevs;
	a->ims = umdev_ims_new(cfg->ims_entries, err);
	a->pasids = a->ims ? umdev_pasid_reg_new(1, err) : NULL;
	a->eng = calloc(cfg->engines, sizeof(*a->eng));
	if (!a->ims || !a->pasids || !a->eng) {
		if (a->ims && a->pasids)
			*err = -ENOMEM;
		accel_free(a);
		return NULL;
	}
	a->neng = cfg->engines;
	for (unsigned i = 0; i < a->neng; i++)
		a->eng[i].timer_fd = -1;
	for (unsigned i = 0; i < a->neng; i++) {
		struct accel_engine *e = &a->eng[i];

		e->a = a;
		e->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (e->timer_fd < 0) {
			*err = -errno;
			accel_free(a);
			return NULL;
		}
		e->loop = cfg->loops[i];
		call_engine(e, engine_start, e);
	}
	a->refs = 1;
	a->listed = true;
	a->next = parents;
	parents = a;
	return a;
}

static void unlist(struct umdev_accel *a)
{
	for (struct umdev_accel **p = &parents; *p; p = &(*p)->next) {
		if (*p == a) {
			*p = a->next;
			break;
		}
	}
	a->listed = false;
}

void accel_parent_unref(struct umdev_accel *a)
{
	if (--a->refs == 0)
		accel_free(a);
}

void umdev_accel_put(umdev_accel *a)
{
	if (!a)
		return;
	unlist(a);
	accel_parent_unref(a);
}

unsigned umdev_accel_available(const umdev_accel *a)
{
	unsigned n = 0;

	if (a)
		return a->listed ? a->max_vdevs - a->nvdevs : 0;
	for (const struct umdev_accel *p = parents; p; p = p->next)
		n += p->max_vdevs - p->nvdevs;
	return n;
}

void umdev_accel_info(umdev_accel *a, struct umdev_accel_info *out)
{
	*out = (struct umdev_accel_info){
		.engines = a->neng,
		.vdevs = a->nvdevs,
		.max_vdevs = a->max_vdevs,
		.ims_entries = umdev_ims_size(a->ims),
		.ims_free = umdev_ims_num_free(a->ims),
		.pasids = umdev_pasid_count(a->pasids),
	};
}
