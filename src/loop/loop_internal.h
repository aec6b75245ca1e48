/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private definitions of the event loop (src/loop/).
 *
 * A loop owns: an epoll fd; an eventfd ("wake") that other threads write to
 * after queueing a message or asking the loop to stop; an io_uring whose
 * completions are signalled through a second eventfd ("ring") registered
 * with io_uring_register_eventfd() and watched by epoll. A loop on the epoll
 * engine has no ring and no ring eventfd (ring_fd is -1, has_ring false).
 * A ring that sleeps (ring_sleep, kernels 5.17+) has no ring eventfd either:
 * the loop waits in io_uring_enter and the ring polls the epoll fd (one-shot,
 * ep_reg) and each edge fd (multishot), the CQEs' user_data naming the
 * loop_fd with bit 0 set. A deleted edge fd whose poll is still armed stays
 * allocated (zombies) until the poll's last CQE, so no CQE names freed memory.
 *
 * fd registrations are looked up by fd through a table indexed by fd, so
 * add/mod/del are O(1). epoll's data.ptr points at the registration itself;
 * a deleted registration is only marked dead and kept on a garbage list until
 * the end of the iteration, so events already fetched for it in the current
 * epoll batch are recognised as stale and skipped instead of touching freed
 * memory or calling a callback the owner has just torn down.
 */
#ifndef UMDEV_LOOP_INTERNAL_H
#define UMDEV_LOOP_INTERNAL_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "umdev/log.h"
#include "umdev/loop.h"

struct loop_fd {
	int fd;
	uint32_t events;
	bool dead; /* deleted; stale events for it are ignored */
	bool edge; /* umdev_loop_add_fd_edge(): EPOLLET, never read */
	bool armed; /* a multishot poll on the ring watches it (ring_sleep) */
	umdev_loop_fd_cb cb;
	void *opaque;
	struct loop_fd *next_dead;
	struct loop_fd *next_cancel; /* on cancels: its poll removal is still to queue */
};

struct umdev_loop_poller {
	umdev_loop_poll_cb cb;
	void *opaque;
	bool dead;
	struct umdev_loop_poller *next;
};

/* A waiter of umdev_loop_call_sync(), on the caller's stack. */
struct loop_sync {
	bool done;
};

struct loop_msg {
	umdev_loop_fn fn;
	void *opaque;
	struct loop_sync *sync; /* NULL for umdev_loop_call() */
	bool heap; /* allocated by umdev_loop_call(), freed after running */
	struct loop_msg *next;
};

struct umdev_loop {
	char name[32];
	int epfd;
	int wake_fd;
	int ring_fd;
	bool has_ring; /* io_uring engine: ring and ring_fd are set up */
	/*
	 * The io_uring engine on a kernel with IORING_FEAT_CQE_SKIP (5.17+):
	 * the loop sleeps in io_uring_enter instead of epoll_wait, polling
	 * the epoll fd (ep_reg) and edge fds with the ring, and has no ring
	 * eventfd (ring_fd -1).
	 */
	bool ring_sleep;
	struct io_uring ring;

	/* Loop-thread state, no locks. */
	struct loop_fd **fds; /* indexed by fd */
	int nfds; /* capacity of fds */
	unsigned nregistered;
	struct loop_fd *dead_fds;
	struct loop_fd wake_reg; /* internal registrations */
	struct loop_fd ring_reg;
	struct loop_fd ep_reg; /* ring_sleep: the epoll fd, polled one-shot by the ring */
	struct loop_fd *zombies; /* ring_sleep: deleted, their poll's last CQE to come */
	struct loop_fd *cancels; /* ring_sleep: deleted, no SQE yet to remove their poll */
	bool submit_failed; /* the kernel refused entries: wait a little, then retry */
	bool in_deferred; /* running deferred work inside an iteration */
	struct umdev_ratelimit signal_rl; /* failed umdev_loop_signal_eventfd() writes */
	struct umdev_loop_poller *pollers;
	unsigned npollers; /* live pollers */
	bool pollers_dirty; /* some poller is dead and must be unlinked */
	unsigned sq_queued; /* ready entries not yet handed to the kernel */
	unsigned io_pending; /* entries made ready and not yet completed */
	struct umdev_loop_deferred *deferred; /* run at the end of the iteration */

	/* Shared with other threads. */
	pthread_mutex_t lock; /* message queue, active, sync waiters */
	pthread_cond_t sync_cond;
	struct loop_msg *msg_head, *msg_tail;
	bool active; /* run() is running or about to run in its thread */
	atomic_bool stop;

	pthread_t thread;
	bool thread_started; /* control thread only */
};

#endif
