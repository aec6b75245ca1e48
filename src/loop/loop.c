/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Event loop: epoll + io_uring, one thread per loop. See include/umdev/loop.h
 * for the contract and loop_internal.h for the data structures.
 *
 * One iteration on the io_uring engine (kernels with IORING_FEAT_CQE_SKIP,
 * 5.17+; "ring_sleep"):
 *   1. one io_uring_enter() submits every entry queued since the last one
 *      (backend I/O, eventfd writes from umdev_loop_signal_eventfd(), the
 *      loop's own polls) and, unless pollers, deferred work, ready
 *      completions or a stop request say not to, sleeps until a CQE comes;
 *   2. reap completions in order: backend I/O callbacks; wake-ups of edge
 *      fds (umdev_loop_add_fd_edge(), a multishot poll each); the epoll fd
 *      turning readable (a one-shot poll re-armed each time it fires), which
 *      runs epoll_wait(0) and dispatches level fds and messages;
 *   3. run the pollers, then the deferred work (umdev_loop_defer);
 *   4. free registrations deleted during this iteration.
 * In interrupt mode a request then costs the loop one system call: the
 * kick's CQE wakes it, and the call eventfd write rides on the next sleep.
 *
 * On the epoll engine (and io_uring on older kernels or with
 * UMDEV_DEBUG_NO_RING_SLEEP set, the ring's completions then signalling an
 * eventfd that epoll watches):
 *   1. hand every entry made ready since the last iteration to the kernel
 *      with a single io_uring_submit() (batching);
 *   2. epoll_wait(); timeout 0 while pollers exist or completions are already
 *      waiting, otherwise sleep until an fd, the ring eventfd or the wake
 *      eventfd fires (edge fds are EPOLLET entries);
 *   3. dispatch fd events (skipping registrations deleted meanwhile);
 *   4. reap completions and call their umdev_loop_io callbacks;
 *   5. run the pollers, then the deferred work (umdev_loop_defer);
 *   6. free registrations deleted during this iteration.
 * A loop on the epoll engine has no ring: steps 1 and 4 do nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loop_internal.h"
#include "umdev/log.h"

#define LOOP_MAX_EVENTS 64
#define LOOP_DEFAULT_ENTRIES 256
#define LOOP_CQE_BATCH 64

/* The loop running on this thread, if any (umdev_loop_in_thread()). */
static __thread umdev_loop *loop_current;

/* Set once at start, before loops exist (umdev_io_engine_set_default()). */
static enum umdev_io_engine loop_default_engine = UMDEV_IO_ENGINE_AUTO;

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_result;

const char *umdev_io_engine_name(enum umdev_io_engine engine)
{
	switch (engine) {
	case UMDEV_IO_ENGINE_AUTO:
		return "auto";
	case UMDEV_IO_ENGINE_IO_URING:
		return "io_uring";
	case UMDEV_IO_ENGINE_EPOLL:
		return "epoll";
	}
	return "?";
}

int umdev_io_engine_parse(const char *s, enum umdev_io_engine *out)
{
	static const enum umdev_io_engine all[] = { UMDEV_IO_ENGINE_AUTO,
						    UMDEV_IO_ENGINE_IO_URING,
						    UMDEV_IO_ENGINE_EPOLL };

	for (unsigned i = 0; s && i < sizeof(all) / sizeof(all[0]); i++) {
		if (!strcmp(s, umdev_io_engine_name(all[i]))) {
			*out = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

void umdev_io_engine_set_default(enum umdev_io_engine engine)
{
	loop_default_engine = engine;
}

enum umdev_io_engine umdev_io_engine_get_default(void)
{
	return loop_default_engine;
}

/* kernel.io_uring_disabled: 0 allowed, 1 only for io_uring_group, 2 never. */
static int probe_sysctl(void)
{
	char buf[16] = "";
	ssize_t n;
	int fd = open("/proc/sys/kernel/io_uring_disabled", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0; /* older kernels have no such switch */
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0 && buf[0] == '2')
		return -EPERM;
	return 0;
}

static void probe_run(void)
{
	struct io_uring ring;
	int ret, efd;

	ret = probe_sysctl();
	if (ret < 0) {
		umdev_dbg("io_uring disabled by kernel.io_uring_disabled");
		probe_result = ret;
		return;
	}
	/* What a loop does with its ring: set it up and register an eventfd. */
	ret = io_uring_queue_init(2, &ring, 0);
	if (ret == 0) {
		efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		ret = efd < 0 ? -errno : io_uring_register_eventfd(&ring, efd);
		if (efd >= 0)
			close(efd);
		io_uring_queue_exit(&ring);
	}
	if (ret < 0)
		umdev_dbg("io_uring unavailable: %s", strerror(-ret));
	probe_result = ret;
}

int umdev_io_uring_probe(void)
{
	pthread_once(&probe_once, probe_run);
	return probe_result;
}

enum umdev_io_engine umdev_loop_engine(const umdev_loop *loop)
{
	return loop->has_ring ? UMDEV_IO_ENGINE_IO_URING : UMDEV_IO_ENGINE_EPOLL;
}

static void loop_wake(umdev_loop *loop)
{
	uint64_t one = 1;

	/*
	 * EAGAIN means the counter is saturated, which still leaves the fd
	 * readable: the loop wakes either way.
	 */
	while (write(loop->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void loop_drain_eventfd(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

static void loop_run_msgs(umdev_loop *loop, struct loop_msg *m)
{
	while (m) {
		struct loop_msg *next = m->next;
		struct loop_sync *sync = m->sync;

		m->fn(m->opaque);
		if (m->heap)
			free(m);
		if (sync) {
			/* m lives on the waiter's stack: do not touch it after this. */
			pthread_mutex_lock(&loop->lock);
			sync->done = true;
			pthread_cond_broadcast(&loop->sync_cond);
			pthread_mutex_unlock(&loop->lock);
		}
		m = next;
	}
}

static struct loop_msg *loop_take_msgs(umdev_loop *loop)
{
	struct loop_msg *m;

	pthread_mutex_lock(&loop->lock);
	m = loop->msg_head;
	loop->msg_head = loop->msg_tail = NULL;
	pthread_mutex_unlock(&loop->lock);
	return m;
}

static void loop_wake_cb(void *opaque, uint32_t events)
{
	umdev_loop *loop = opaque;

	loop_drain_eventfd(loop->wake_fd);
	loop_run_msgs(loop, loop_take_msgs(loop));
}

static void loop_ring_cb(void *opaque, uint32_t events)
{
	umdev_loop *loop = opaque;

	/* Completions themselves are reaped once per iteration in any case. */
	loop_drain_eventfd(loop->ring_fd);
}

static int loop_epoll_add(umdev_loop *loop, struct loop_fd *reg)
{
	struct epoll_event ev = { .events = reg->events, .data.ptr = reg };

	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, reg->fd, &ev) < 0)
		return -errno;
	return 0;
}

static int loop_ring_init(umdev_loop *loop, unsigned entries)
{
	struct io_uring_params p;
	int ret;

	memset(&p, 0, sizeof(p));
	/*
	 * A larger CQ absorbs bursts of completions between two reaps.
	 * SUBMIT_ALL (5.18+): an entry that fails preparation does not leave
	 * the ones behind it queued (an eventfd write must not outlive the
	 * iteration that queued it: its fd may be closed after).
	 */
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
	p.cq_entries = entries * 4;
	ret = io_uring_queue_init_params(entries, &loop->ring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = entries * 4;
		ret = io_uring_queue_init_params(entries, &loop->ring, &p);
	}
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		ret = io_uring_queue_init_params(entries, &loop->ring, &p);
	}
	return ret;
}

umdev_loop *umdev_loop_new(const char *name, unsigned ring_entries, int *err)
{
	return umdev_loop_new_engine(name, ring_entries, loop_default_engine, err);
}

/*
 * Set up the ring. Where the kernel can skip the CQEs of successful entries
 * (5.17+, which also has multishot polls), the loop sleeps in the ring
 * (ring_sleep); otherwise it sleeps in epoll and the ring signals its
 * completions through an eventfd registered with epoll.
 */
static int loop_ring_setup(umdev_loop *loop, unsigned ring_entries)
{
	/* A switch for tests (and an escape hatch): the pre-5.17 way on any kernel. */
	const char *no_sleep = getenv("UMDEV_DEBUG_NO_RING_SLEEP");
	int ret = loop_ring_init(loop, ring_entries);

	if (ret < 0)
		return ret;
	if ((loop->ring.features & IORING_FEAT_CQE_SKIP) &&
	    !(no_sleep && *no_sleep && strcmp(no_sleep, "0") != 0)) {
		loop->ring_sleep = true;
		loop->ep_reg = (struct loop_fd){ .fd = loop->epfd };
		loop->has_ring = true;
		return 0;
	}
	loop->ring_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ret = loop->ring_fd < 0 ? -errno : io_uring_register_eventfd(&loop->ring, loop->ring_fd);
	if (ret == 0) {
		loop->ring_reg = (struct loop_fd){ .fd = loop->ring_fd, .events = EPOLLIN,
						   .cb = loop_ring_cb, .opaque = loop };
		ret = loop_epoll_add(loop, &loop->ring_reg);
	}
	if (ret < 0) {
		io_uring_queue_exit(&loop->ring);
		return ret;
	}
	loop->has_ring = true;
	return 0;
}

umdev_loop *umdev_loop_new_engine(const char *name, unsigned ring_entries,
				  enum umdev_io_engine engine, int *err)
{
	umdev_loop *loop;
	int ret;

	if (!name)
		name = "loop";
	if (ring_entries == 0)
		ring_entries = LOOP_DEFAULT_ENTRIES;
	if (ring_entries > 32768) {
		*err = -EINVAL;
		return NULL;
	}
	loop = calloc(1, sizeof(*loop));
	if (!loop) {
		*err = -ENOMEM;
		return NULL;
	}
	snprintf(loop->name, sizeof(loop->name), "%s", name);
	loop->epfd = loop->wake_fd = loop->ring_fd = -1;
	pthread_mutex_init(&loop->lock, NULL);
	pthread_cond_init(&loop->sync_cond, NULL);

	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		goto fail_errno;
	loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop->wake_fd < 0)
		goto fail_errno;

	loop->wake_reg = (struct loop_fd){ .fd = loop->wake_fd, .events = EPOLLIN,
					   .cb = loop_wake_cb, .opaque = loop };
	ret = loop_epoll_add(loop, &loop->wake_reg);
	if (ret < 0)
		goto fail;
	if (engine == UMDEV_IO_ENGINE_AUTO && umdev_io_uring_probe() < 0)
		engine = UMDEV_IO_ENGINE_EPOLL;
	if (engine != UMDEV_IO_ENGINE_EPOLL) {
		/* io_uring asked for (a failed probe fails it), or AUTO with a working probe. */
		ret = umdev_io_uring_probe();
		if (ret == 0)
			ret = loop_ring_setup(loop, ring_entries);
		if (ret < 0 && engine == UMDEV_IO_ENGINE_IO_URING) {
			umdev_err("%s: io_uring setup failed: %s", loop->name, strerror(-ret));
			goto fail;
		}
		if (ret < 0) {
			/* AUTO, and this ring failed although the probe's worked (memlock...). */
			umdev_warn("%s: io_uring setup failed (%s): running on epoll", loop->name,
				   strerror(-ret));
			if (loop->ring_fd >= 0)
				close(loop->ring_fd);
			loop->ring_fd = -1;
		}
	}
	return loop;

fail_errno:
	ret = -errno;
fail:
	if (loop->ring_fd >= 0)
		close(loop->ring_fd);
	if (loop->wake_fd >= 0)
		close(loop->wake_fd);
	if (loop->epfd >= 0)
		close(loop->epfd);
	pthread_cond_destroy(&loop->sync_cond);
	pthread_mutex_destroy(&loop->lock);
	free(loop);
	*err = ret;
	return NULL;
}

static void loop_free_dead(umdev_loop *loop)
{
	while (loop->dead_fds) {
		struct loop_fd *reg = loop->dead_fds;

		loop->dead_fds = reg->next_dead;
		free(reg);
	}
}

static void loop_prune_pollers(umdev_loop *loop)
{
	struct umdev_loop_poller **pp = &loop->pollers;

	if (!loop->pollers_dirty)
		return;
	while (*pp) {
		struct umdev_loop_poller *p = *pp;

		if (p->dead) {
			*pp = p->next;
			free(p);
		} else {
			pp = &p->next;
		}
	}
	loop->pollers_dirty = false;
}

void umdev_loop_free(umdev_loop *loop)
{
	struct loop_msg *m;

	if (!loop)
		return;
	if (loop->thread_started) {
		umdev_warn("%s: freed while its thread runs; stopping it", loop->name);
		umdev_loop_stop(loop);
		umdev_loop_join(loop);
	}
	if (loop->nregistered)
		umdev_warn("%s: freed with %u fds still registered", loop->name,
			   loop->nregistered);
	if (loop->io_pending)
		umdev_warn("%s: freed with %u I/O requests in flight", loop->name,
			   loop->io_pending);
	for (int i = 0; i < loop->nfds; i++)
		free(loop->fds[i]);
	free(loop->fds);
	loop_free_dead(loop);
	/* Deleted, their polls still armed: exiting the ring below cancels them. */
	while (loop->zombies) {
		struct loop_fd *reg = loop->zombies;

		loop->zombies = reg->next_dead;
		free(reg);
	}
	for (struct umdev_loop_poller *p = loop->pollers, *n; p; p = n) {
		n = p->next;
		free(p);
	}
	/* Messages queued after the loop last ran are dropped unrun. */
	for (m = loop->msg_head; m;) {
		struct loop_msg *n = m->next;

		if (m->heap)
			free(m);
		m = n;
	}
	/* Exiting the ring cancels whatever is still in flight. */
	if (loop->has_ring)
		io_uring_queue_exit(&loop->ring);
	if (loop->ring_fd >= 0)
		close(loop->ring_fd);
	close(loop->wake_fd);
	close(loop->epfd);
	pthread_cond_destroy(&loop->sync_cond);
	pthread_mutex_destroy(&loop->lock);
	free(loop);
}

const char *umdev_loop_name(const umdev_loop *loop)
{
	return loop->name;
}

bool umdev_loop_in_thread(const umdev_loop *loop)
{
	return loop_current == loop;
}

/* ---- the loop's own ring entries (ring_sleep) ---- */

/*
 * user_data of an entry the loop queued for itself: a struct loop_fd pointer
 * with bit 0 set (a umdev_loop_io pointer never has it), or LOOP_UD_SIGNAL.
 */
#define LOOP_UD_FD 1ull
#define LOOP_UD_SIGNAL LOOP_UD_FD /* umdev_loop_signal_eventfd()'s write: no loop_fd */

static struct io_uring_sqe *loop_own_sqe(umdev_loop *loop, uint64_t user_data)
{
	int err = 0;
	struct io_uring_sqe *sqe = umdev_loop_sqe(loop, &err);

	if (!sqe)
		return NULL;
	/* Filled by the caller before the next submit, which is ours to make. */
	io_uring_sqe_set_data64(sqe, user_data);
	loop->sq_queued++;
	return sqe;
}

static uint64_t loop_fd_ud(struct loop_fd *reg)
{
	return (uint64_t)(uintptr_t)reg | LOOP_UD_FD;
}

/* One CQE per wake-up of @reg's fd, until removed (or the kernel ends it). */
static int loop_arm_edge(umdev_loop *loop, struct loop_fd *reg)
{
	struct io_uring_sqe *sqe = loop_own_sqe(loop, loop_fd_ud(reg));

	if (!sqe)
		return -EAGAIN;
	io_uring_prep_poll_multishot(sqe, reg->fd, POLLIN);
	reg->armed = true;
	return 0;
}

/* Queue the removal of @reg's poll; its last CQE frees @reg (loop_fd_cqe). */
static bool loop_cancel_poll(umdev_loop *loop, struct loop_fd *reg)
{
	struct io_uring_sqe *sqe = loop_own_sqe(loop, 0);

	if (!sqe)
		return false;
	/*
	 * ASYNC_CANCEL, not POLL_REMOVE: on 6.1 a removal that races a
	 * wake-up fails with -EALREADY and leaves the poll armed for good;
	 * a cancel marks it cancelled either way, so its final -ECANCELED
	 * CQE (or an already queued last one) always comes.
	 */
	io_uring_prep_cancel64(sqe, loop_fd_ud(reg), 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	return true;
}

static void loop_queue_cancels(umdev_loop *loop)
{
	while (loop->cancels && loop_cancel_poll(loop, loop->cancels))
		loop->cancels = loop->cancels->next_cancel;
}

static void loop_unlink(struct loop_fd **head, struct loop_fd *reg, bool cancel_list)
{
	for (struct loop_fd **pp = head; *pp;
	     pp = cancel_list ? &(*pp)->next_cancel : &(*pp)->next_dead) {
		if (*pp == reg) {
			*pp = cancel_list ? reg->next_cancel : reg->next_dead;
			return;
		}
	}
}

static int loop_epoll_dispatch(umdev_loop *loop, int timeout);

/* A CQE of one of the loop's polls. */
static void loop_fd_cqe(umdev_loop *loop, struct loop_fd *reg, int res, uint32_t flags)
{
	if (reg == &loop->ep_reg) {
		/* One-shot, so re-armed only after epoll's ready list was looked at. */
		reg->armed = false;
		if (loop_epoll_dispatch(loop, 0) < 0)
			umdev_err("%s: epoll_wait: %s", loop->name, strerror(errno));
		return;
	}
	if (!(flags & IORING_CQE_F_MORE)) {
		reg->armed = false;
		if (reg->dead) {
			/* The last CQE that could name it. */
			loop_unlink(&loop->zombies, reg, false);
			loop_unlink(&loop->cancels, reg, true);
			free(reg);
			return;
		}
		/*
		 * The kernel ended the poll (CQ overflow, an error): watch
		 * the fd again, through epoll if the ring can't.
		 */
		if ((res < 0 || loop_arm_edge(loop, reg) < 0) && loop_epoll_add(loop, reg) < 0)
			umdev_err("%s: fd %d can no longer be watched (%s)", loop->name, reg->fd,
				  strerror(res < 0 ? -res : EAGAIN));
	}
	if (!reg->dead && res > 0)
		reg->cb(reg->opaque, (uint32_t)res);
}

static void loop_arm_epoll(umdev_loop *loop)
{
	struct io_uring_sqe *sqe = loop_own_sqe(loop, loop_fd_ud(&loop->ep_reg));

	if (!sqe)
		return;
	io_uring_prep_poll_add(sqe, loop->epfd, POLLIN);
	loop->ep_reg.armed = true;
}

int umdev_loop_signal_eventfd(int fd)
{
	static const uint64_t one = 1;
	umdev_loop *loop = loop_current;
	struct io_uring_sqe *sqe;

	/*
	 * Only from deferred work: the entry is then submitted before anything
	 * else runs on the loop, so no message (a new call fd, a stop) can
	 * let its owner close @fd while the write still names it.
	 */
	if (loop && loop->ring_sleep && loop->in_deferred &&
	    (sqe = loop_own_sqe(loop, LOOP_UD_SIGNAL))) {
		io_uring_prep_write(sqe, fd, &one, sizeof(one), 0);
		/*
		 * Never parked in the kernel: a full counter (a front-end
		 * that stopped reading) or an fd made blocking behind our
		 * back ends at once with -EAGAIN instead of waiting, or
		 * occupying an io-wq worker, until the ring goes.
		 */
		sqe->rw_flags = RWF_NOWAIT;
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		return 0;
	}
	/* EAGAIN: the counter is saturated, which already wakes the reader. */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

/* ---- fds ---- */

static int loop_fds_reserve(umdev_loop *loop, int fd)
{
	struct loop_fd **n;
	int cap;

	if (fd < loop->nfds)
		return 0;
	cap = loop->nfds ? loop->nfds : 64;
	while (cap <= fd) {
		if (cap > (1 << 24))
			return -EMFILE;
		cap *= 2;
	}
	n = realloc(loop->fds, (size_t)cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	memset(n + loop->nfds, 0, (size_t)(cap - loop->nfds) * sizeof(*n));
	loop->fds = n;
	loop->nfds = cap;
	return 0;
}

static int loop_add_fd(umdev_loop *loop, int fd, uint32_t events, bool edge, umdev_loop_fd_cb cb,
		       void *opaque)
{
	struct loop_fd *reg;
	int ret;

	if (fd < 0 || !cb)
		return -EINVAL;
	if (fd == loop->wake_fd || fd == loop->ring_fd || fd == loop->epfd)
		return -EINVAL;
	ret = loop_fds_reserve(loop, fd);
	if (ret < 0)
		return ret;
	if (loop->fds[fd])
		return -EEXIST;
	reg = calloc(1, sizeof(*reg));
	if (!reg)
		return -ENOMEM;
	reg->fd = fd;
	reg->events = events;
	reg->cb = cb;
	reg->opaque = opaque;
	reg->edge = edge;
	/* On a ring that sleeps, a poll of its own: no epoll_wait to wake. */
	if (!edge || !loop->ring_sleep || loop_arm_edge(loop, reg) < 0)
		ret = loop_epoll_add(loop, reg);
	if (ret < 0) {
		free(reg);
		return ret;
	}
	loop->fds[fd] = reg;
	loop->nregistered++;
	return 0;
}

int umdev_loop_add_fd(umdev_loop *loop, int fd, uint32_t events, umdev_loop_fd_cb cb,
		      void *opaque)
{
	return loop_add_fd(loop, fd, events, false, cb, opaque);
}

int umdev_loop_add_fd_edge(umdev_loop *loop, int fd, umdev_loop_fd_cb cb, void *opaque)
{
	/*
	 * An eventfd wakes its waiters on every write, whether or not its
	 * counter was already non-zero, and epoll reports an EPOLLET entry
	 * again after each wake-up: one report per burst of writes without
	 * ever draining the counter.
	 */
	return loop_add_fd(loop, fd, EPOLLIN | EPOLLET, true, cb, opaque);
}

int umdev_loop_mod_fd(umdev_loop *loop, int fd, uint32_t events)
{
	struct epoll_event ev;
	struct loop_fd *reg;

	if (fd < 0 || fd >= loop->nfds || !loop->fds[fd])
		return -ENOENT;
	reg = loop->fds[fd];
	if (reg->edge)
		return -EINVAL;
	ev.events = events;
	ev.data.ptr = reg;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	reg->events = events;
	return 0;
}

void umdev_loop_del_fd(umdev_loop *loop, int fd)
{
	struct loop_fd *reg;

	if (fd < 0 || fd >= loop->nfds || !loop->fds[fd])
		return;
	reg = loop->fds[fd];
	loop->fds[fd] = NULL;
	loop->nregistered--;
	if (reg->armed) {
		/* Its poll may still post CQEs naming it: kept until the last one. */
		reg->dead = true;
		reg->next_dead = loop->zombies;
		loop->zombies = reg;
		if (!loop_cancel_poll(loop, reg)) {
			reg->next_cancel = loop->cancels;
			loop->cancels = reg;
		}
		return;
	}
	/* Fails only if the owner already closed the fd, which removed it. */
	(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	/*
	 * The current epoll batch may still hold events pointing at reg:
	 * keep it until the iteration ends, marked dead.
	 */
	reg->dead = true;
	reg->next_dead = loop->dead_fds;
	loop->dead_fds = reg;
}

/* ---- pollers ---- */

umdev_loop_poller *umdev_loop_add_poller(umdev_loop *loop, umdev_loop_poll_cb cb, void *opaque,
					 int *err)
{
	struct umdev_loop_poller *p, **pp;

	if (!cb) {
		*err = -EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		*err = -ENOMEM;
		return NULL;
	}
	p->cb = cb;
	p->opaque = opaque;
	/* Append so pollers run in registration order. */
	for (pp = &loop->pollers; *pp; pp = &(*pp)->next)
		;
	*pp = p;
	loop->npollers++;
	return p;
}

void umdev_loop_del_poller(umdev_loop *loop, umdev_loop_poller *p)
{
	if (!p || p->dead)
		return;
	/* Unlinked after the pollers ran, so deleting from a poller is safe. */
	p->dead = true;
	loop->npollers--;
	loop->pollers_dirty = true;
}

static void loop_run_pollers(umdev_loop *loop)
{
	for (struct umdev_loop_poller *p = loop->pollers; p; p = p->next) {
		if (!p->dead)
			p->cb(p->opaque);
	}
	loop_prune_pollers(loop);
}

/* ---- messages ---- */

static void loop_enqueue(umdev_loop *loop, struct loop_msg *m)
{
	m->next = NULL;
	if (loop->msg_tail)
		loop->msg_tail->next = m;
	else
		loop->msg_head = m;
	loop->msg_tail = m;
}

int umdev_loop_call(umdev_loop *loop, umdev_loop_fn fn, void *opaque)
{
	struct loop_msg *m;

	if (!fn)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->fn = fn;
	m->opaque = opaque;
	m->heap = true;
	pthread_mutex_lock(&loop->lock);
	loop_enqueue(loop, m);
	pthread_mutex_unlock(&loop->lock);
	loop_wake(loop);
	return 0;
}

int umdev_loop_call_sync(umdev_loop *loop, umdev_loop_fn fn, void *opaque)
{
	struct loop_sync sync = { .done = false };
	struct loop_msg m = { .fn = fn, .opaque = opaque, .sync = &sync };

	if (!fn)
		return -EINVAL;
	if (umdev_loop_in_thread(loop)) {
		fn(opaque);
		return 0;
	}
	pthread_mutex_lock(&loop->lock);
	if (!loop->active) {
		/*
		 * Nobody runs the loop, so the caller may act as its thread.
		 * Messages queued earlier run first to keep their order.
		 */
		struct loop_msg *pending = loop->msg_head;
		umdev_loop *saved = loop_current;

		loop->msg_head = loop->msg_tail = NULL;
		pthread_mutex_unlock(&loop->lock);
		/* ... and umdev_loop_in_thread() agrees while it does. */
		loop_current = loop;
		loop_run_msgs(loop, pending);
		fn(opaque);
		loop_current = saved;
		return 0;
	}
	loop_enqueue(loop, &m);
	pthread_mutex_unlock(&loop->lock);
	loop_wake(loop);

	pthread_mutex_lock(&loop->lock);
	while (!sync.done)
		pthread_cond_wait(&loop->sync_cond, &loop->lock);
	pthread_mutex_unlock(&loop->lock);
	return 0;
}

/* ---- io_uring ---- */

struct io_uring_sqe *umdev_loop_sqe(umdev_loop *loop, int *err)
{
	struct io_uring_sqe *sqe;
	int ret;

	if (!loop->has_ring) {
		*err = -EOPNOTSUPP;
		return NULL;
	}
	sqe = io_uring_get_sqe(&loop->ring);
	if (sqe)
		return sqe;
	/* SQ full: hand what is queued to the kernel now and try again. */
	ret = io_uring_submit(&loop->ring);
	if (ret > 0)
		loop->sq_queued -= (unsigned)ret > loop->sq_queued ? loop->sq_queued :
								     (unsigned)ret;
	sqe = io_uring_get_sqe(&loop->ring);
	if (!sqe)
		*err = -EAGAIN;
	return sqe;
}

void umdev_loop_sqe_ready(umdev_loop *loop, struct io_uring_sqe *sqe, struct umdev_loop_io *io)
{
	io_uring_sqe_set_data(sqe, io);
	loop->sq_queued++;
	/* A NULL @io is a fire-and-forget entry whose completion is dropped. */
	if (io)
		loop->io_pending++;
}

unsigned umdev_loop_io_pending(const umdev_loop *loop)
{
	return loop->io_pending;
}

static unsigned loop_reap(umdev_loop *loop)
{
	struct io_uring_cqe *cqes[LOOP_CQE_BATCH];
	unsigned total = 0, n;

	if (!loop->has_ring)
		return 0;
	do {
		n = io_uring_peek_batch_cqe(&loop->ring, cqes, LOOP_CQE_BATCH);
		for (unsigned i = 0; i < n; i++) {
			uint64_t ud = io_uring_cqe_get_data64(cqes[i]);
			struct umdev_loop_io *io = (struct umdev_loop_io *)(uintptr_t)ud;
			uint32_t flags = cqes[i]->flags;
			int res = cqes[i]->res;

			/*
			 * Mark each CQE seen before its callback, which may
			 * queue new entries (the CQ slot is free again).
			 */
			io_uring_cqe_seen(&loop->ring, cqes[i]);
			if (ud == LOOP_UD_SIGNAL) {
				if (res != -EAGAIN)
					umdev_warn_rl(&loop->signal_rl, "%s: eventfd write failed: %s",
						      loop->name, strerror(-res));
				continue;
			}
			if (ud & LOOP_UD_FD) {
				loop_fd_cqe(loop, (struct loop_fd *)(uintptr_t)(ud & ~LOOP_UD_FD), res,
					    flags);
				continue;
			}
			if (!io)
				continue;
			if (loop->io_pending)
				loop->io_pending--;
			io->cb(io, res);
		}
		total += n;
	} while (n == LOOP_CQE_BATCH);
	return total;
}

/* ---- deferred work ---- */

void umdev_loop_defer(umdev_loop *loop, struct umdev_loop_deferred *d)
{
	if (d->queued)
		return;
	d->queued = true;
	d->next = loop->deferred;
	loop->deferred = d;
}

void umdev_loop_cancel(umdev_loop *loop, struct umdev_loop_deferred *d)
{
	for (struct umdev_loop_deferred **pp = &loop->deferred; *pp; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			d->queued = false;
			return;
		}
}

static void loop_run_deferred(umdev_loop *loop)
{
	/* Work deferred by deferred work runs in the next iteration. */
	struct umdev_loop_deferred *d = loop->deferred;

	loop->deferred = NULL;
	while (d) {
		struct umdev_loop_deferred *next = d->next;

		d->queued = false;
		d->fn(d);
		d = next;
	}
}

/* ---- running ---- */

/* -errno (errno set too) when epoll_wait fails other than by EINTR. */
static int loop_epoll_dispatch(umdev_loop *loop, int timeout)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];
	int n = epoll_wait(loop->epfd, evs, LOOP_MAX_EVENTS, timeout);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct loop_fd *reg = evs[i].data.ptr;

		if (reg->dead)
			continue;
		reg->cb(reg->opaque, evs[i].events);
	}
	return 0;
}

/* Hands queued entries to the kernel; sleeps in the same call when @wait. */
static void loop_submit_wait(umdev_loop *loop, bool wait)
{
	int ret = wait ? io_uring_submit_and_wait(&loop->ring, 1) : io_uring_submit(&loop->ring);

	if (ret >= 0) {
		loop->sq_queued -= (unsigned)ret > loop->sq_queued ? loop->sq_queued :
								     (unsigned)ret;
		loop->submit_failed = loop->sq_queued > 0;
		return;
	}
	/*
	 * EAGAIN/EBUSY: the kernel is short of resources or the CQ is
	 * backed up; the entries stay queued and the next iteration retries
	 * after reaping. Anything else is unexpected.
	 */
	loop->submit_failed = ret == -EAGAIN || ret == -EBUSY;
	if (ret != -EAGAIN && ret != -EBUSY && ret != -EINTR)
		umdev_err("%s: io_uring_submit: %s", loop->name, strerror(-ret));
}

/* The epoll engine's submit (and the last one at stop): nothing to wait for. */
static void loop_submit(umdev_loop *loop)
{
	if (loop->sq_queued)
		loop_submit_wait(loop, false);
}

/*
 * ring_sleep: one io_uring_enter both submits what the last iteration queued
 * (backend I/O, eventfd writes) and sleeps until a CQE: a completion, an
 * edge fd's wake-up, or the epoll fd turning readable (level fds, messages).
 */
static void loop_iterate_ring(umdev_loop *loop)
{
	bool wait = !(loop->npollers || loop->deferred || io_uring_cq_ready(&loop->ring) ||
		      atomic_load_explicit(&loop->stop, memory_order_acquire));

	loop_queue_cancels(loop);
	if (!loop->ep_reg.armed)
		loop_arm_epoll(loop);
	if (wait && (loop->submit_failed || !loop->ep_reg.armed)) {
		/* The kernel refused entries: wait 1 ms at most, then retry. */
		struct __kernel_timespec ts = { .tv_nsec = 1000000 };
		struct io_uring_cqe *cqe;

		(void)io_uring_wait_cqe_timeout(&loop->ring, &cqe, &ts);
		wait = false;
	}
	loop_submit_wait(loop, wait);
	loop_reap(loop);
}

static int loop_iterate(umdev_loop *loop)
{
	int timeout = -1, ret;

	if (loop->ring_sleep) {
		loop_iterate_ring(loop);
	} else {
		loop_submit(loop);
		if (loop->npollers || loop->deferred ||
		    (loop->has_ring && io_uring_cq_ready(&loop->ring)) ||
		    atomic_load_explicit(&loop->stop, memory_order_acquire))
			timeout = 0;
		else if (loop->sq_queued)
			timeout = 1; /* the kernel refused entries: retry soon */
		ret = loop_epoll_dispatch(loop, timeout);
		if (ret < 0)
			return ret;
		loop_reap(loop);
	}
	loop_run_pollers(loop);
	loop->in_deferred = true;
	loop_run_deferred(loop);
	loop->in_deferred = false;
	loop_free_dead(loop);
	return 0;
}

/* Runs the loop on the calling thread; loop->active is already set. */
static int loop_run_active(umdev_loop *loop)
{
	struct loop_msg *m;
	int ret = 0;

	loop_current = loop;
	while (!atomic_load_explicit(&loop->stop, memory_order_acquire)) {
		ret = loop_iterate(loop);
		if (ret < 0) {
			umdev_err("%s: epoll_wait: %s", loop->name, strerror(-ret));
			break;
		}
	}
	loop_run_deferred(loop);
	/* Hand queued entries to the kernel so none is left behind unsubmitted. */
	loop_submit(loop);

	/*
	 * Once inactive, call_sync() runs inline in its caller; serve the
	 * messages already queued (sync waiters among them) so none blocks
	 * forever.
	 */
	pthread_mutex_lock(&loop->lock);
	while ((m = loop->msg_head)) {
		loop->msg_head = loop->msg_tail = NULL;
		pthread_mutex_unlock(&loop->lock);
		loop_run_msgs(loop, m);
		pthread_mutex_lock(&loop->lock);
	}
	/* Cleared with an empty queue, so inline runners never overlap us. */
	loop->active = false;
	pthread_mutex_unlock(&loop->lock);
	loop_free_dead(loop);

	loop_current = NULL;
	atomic_store_explicit(&loop->stop, false, memory_order_release);
	return ret;
}

int umdev_loop_run(umdev_loop *loop)
{
	if (loop_current)
		return -EBUSY;
	pthread_mutex_lock(&loop->lock);
	if (loop->active) {
		pthread_mutex_unlock(&loop->lock);
		return -EBUSY;
	}
	loop->active = true;
	pthread_mutex_unlock(&loop->lock);
	return loop_run_active(loop);
}

void umdev_loop_stop(umdev_loop *loop)
{
	atomic_store_explicit(&loop->stop, true, memory_order_release);
	loop_wake(loop);
}

static void *loop_thread_main(void *arg)
{
	umdev_loop *loop = arg;
	char tname[16];

	/* Thread names are limited to 15 characters plus the NUL. */
	memcpy(tname, loop->name, sizeof(tname) - 1);
	tname[sizeof(tname) - 1] = '\0';
	pthread_setname_np(pthread_self(), tname);
	(void)loop_run_active(loop);
	return NULL;
}

int umdev_loop_start_thread(umdev_loop *loop)
{
	int ret;

	pthread_mutex_lock(&loop->lock);
	if (loop->active || loop->thread_started) {
		pthread_mutex_unlock(&loop->lock);
		return -EBUSY;
	}
	/*
	 * Active from now on, so a call_sync() racing with the thread's start
	 * queues its message instead of running inline beside the loop.
	 */
	loop->active = true;
	loop->thread_started = true;
	pthread_mutex_unlock(&loop->lock);

	ret = pthread_create(&loop->thread, NULL, loop_thread_main, loop);
	if (ret) {
		pthread_mutex_lock(&loop->lock);
		loop->active = false;
		loop->thread_started = false;
		pthread_mutex_unlock(&loop->lock);
		return -ret;
	}
	return 0;
}

int umdev_loop_set_cpu(umdev_loop *loop, unsigned cpu)
{
	cpu_set_t set;

	if (cpu >= CPU_SETSIZE)
		return -EINVAL;
	if (!loop->thread_started)
		return -ESRCH;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(loop->thread, sizeof(set), &set);
}

void umdev_loop_join(umdev_loop *loop)
{
	if (!loop->thread_started)
		return;
	if (umdev_loop_in_thread(loop)) {
		umdev_err("%s: cannot join a loop from its own thread", loop->name);
		return;
	}
	pthread_join(loop->thread, NULL);
	loop->thread_started = false;
}
