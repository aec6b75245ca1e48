/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Event loops: one control loop plus N data-plane loops.
 *
 * Concepts
 * - A loop is one thread running epoll for fd readiness plus one io_uring
 *   for backend I/O. It sleeps in the ring (io_uring_enter, which also
 *   submits), the ring polling the epoll fd and each edge fd; on kernels
 *   before 5.17 and on the epoll engine it sleeps in epoll_wait, the ring's
 *   completions signalling an eventfd that epoll watches.
 * - Everything registered on a loop runs on that loop's thread. Other threads
 *   talk to a loop only through umdev_loop_call()/umdev_loop_call_sync(),
 *   which queue a message; there are no locks on the data path.
 * - Pollers: a busy-polling device registers a poller, which runs every
 *   iteration; while any poller is registered the loop does not sleep.
 *   Sleeping devices register their kick eventfd instead (edge-triggered,
 *   umdev_loop_add_fd_edge(), so it is never read).
 * - Backend I/O: umdev_loop_sqe() hands out a submission entry; the loop
 *   submits all queued entries once per iteration (batching) and calls each
 *   umdev_loop_io's callback with the CQE result on the loop thread.
 * - I/O engines: a loop runs on "io_uring" (epoll + an io_uring for backend
 *   I/O) or on "epoll" alone, where io_uring is unavailable (seccomp
 *   profiles, the kernel.io_uring_disabled sysctl, qemu-user) or not wanted.
 *   The engine is chosen when the loop is created and never changes; on an
 *   epoll loop umdev_loop_sqe() fails and backends use their own fallback
 *   (see backend.h). Whether io_uring works is probed once per process.
 */
#ifndef UMDEV_LOOP_H
#define UMDEV_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#define UMDEV_WUR __attribute__((warn_unused_result))

struct io_uring_sqe;
typedef struct umdev_loop umdev_loop;

/* Called on the loop thread with the epoll events (EPOLLIN, ...). */
typedef void (*umdev_loop_fd_cb)(void *opaque, uint32_t events);
/* Called on the loop thread; returns the amount of work done (0: idle). */
typedef int (*umdev_loop_poll_cb)(void *opaque);
/* Message run on the loop thread. */
typedef void (*umdev_loop_fn)(void *opaque);

/* Embed in a request; set .cb before submitting. res is the CQE result. */
struct umdev_loop_io {
	void (*cb)(struct umdev_loop_io *io, int res);
};

enum umdev_io_engine {
	UMDEV_IO_ENGINE_AUTO, /* io_uring when the probe says it works, else epoll */
	UMDEV_IO_ENGINE_IO_URING, /* io_uring or fail */
	UMDEV_IO_ENGINE_EPOLL, /* never io_uring */
};

/** umdev_io_engine_name() - "auto", "io_uring" or "epoll"; static string. */
const char *umdev_io_engine_name(enum umdev_io_engine engine);

/** umdev_io_engine_parse() - the reverse; -EINVAL for anything else. */
int umdev_io_engine_parse(const char *s, enum umdev_io_engine *out) UMDEV_WUR;

/**
 * umdev_io_uring_probe() - 0 when this process may use io_uring, else the
 * -errno that makes it unusable (-ENOSYS: no such syscall or filtered out;
 * -EPERM: denied, or disabled by the kernel.io_uring_disabled sysctl). Runs
 * the probe once per process and caches the answer; any thread.
 */
int umdev_io_uring_probe(void) UMDEV_WUR;

/**
 * umdev_io_engine_set_default() - the engine umdev_loop_new() asks for;
 * UMDEV_IO_ENGINE_AUTO unless set. Set it once at start, before any loop is
 * created (not synchronised with loops being created on other threads).
 */
void umdev_io_engine_set_default(enum umdev_io_engine engine);
enum umdev_io_engine umdev_io_engine_get_default(void);

/**
 * umdev_loop_new_engine() - create a loop (not yet running). @name is
 * copied, used for the thread name and logs. @ring_entries sizes the io_uring
 * (0: 256). @engine AUTO picks io_uring when umdev_io_uring_probe() succeeds,
 * else epoll; IO_URING fails (with the probe's error) where io_uring cannot
 * be used; EPOLL never touches io_uring. Caller owns the loop (free with
 * umdev_loop_free()).
 */
umdev_loop *umdev_loop_new_engine(const char *name, unsigned ring_entries,
				  enum umdev_io_engine engine, int *err) UMDEV_WUR;

/** umdev_loop_new() - umdev_loop_new_engine() with the default engine. */
umdev_loop *umdev_loop_new(const char *name, unsigned ring_entries, int *err) UMDEV_WUR;

/**
 * umdev_loop_engine() - the engine @loop runs on: UMDEV_IO_ENGINE_IO_URING
 * or UMDEV_IO_ENGINE_EPOLL, never AUTO. Any thread.
 */
enum umdev_io_engine umdev_loop_engine(const umdev_loop *loop);

/**
 * umdev_loop_free() - the loop must be stopped (thread joined) or never run.
 * Every fd and poller must have been removed.
 */
void umdev_loop_free(umdev_loop *loop);

/** umdev_loop_start_thread() - run the loop in a new thread. */
int umdev_loop_start_thread(umdev_loop *loop) UMDEV_WUR;

/**
 * umdev_loop_set_cpu() - keep the loop's thread (umdev_loop_start_thread())
 * on CPU @cpu from now on; threads it starts later inherit it unless
 * they choose (file I/O workers run wherever the process may). Return: 0, -EINVAL (no such CPU, or not one this process may use),
 * -ESRCH (no thread started).
 */
int umdev_loop_set_cpu(umdev_loop *loop, unsigned cpu) UMDEV_WUR;

/** umdev_loop_run() - run the loop in the calling thread until stopped. */
int umdev_loop_run(umdev_loop *loop);

/**
 * umdev_loop_stop() - ask the loop to return from run after this iteration;
 * any thread. If it runs in its own thread, join it (not from that thread).
 */
void umdev_loop_stop(umdev_loop *loop);
void umdev_loop_join(umdev_loop *loop);

/** umdev_loop_in_thread() - true when called on @loop's own thread. */
bool umdev_loop_in_thread(const umdev_loop *loop);
const char *umdev_loop_name(const umdev_loop *loop);

/* fd watching; loop thread only (or before the loop runs). */
int umdev_loop_add_fd(umdev_loop *loop, int fd, uint32_t events, umdev_loop_fd_cb cb,
		      void *opaque) UMDEV_WUR;
int umdev_loop_mod_fd(umdev_loop *loop, int fd, uint32_t events) UMDEV_WUR;
/* Safe to call from inside any callback of the same loop, even for this fd. */
void umdev_loop_del_fd(umdev_loop *loop, int fd);

/**
 * umdev_loop_add_fd_edge() - watch an eventfd edge-triggered: after a write
 * to @fd (or the registration, if @fd was readable then), @cb(@opaque,
 * EPOLLIN) runs on the loop thread, once for one or more writes made since it
 * last ran (writes may or may not be merged). Neither the loop nor the owner
 * reads @fd: its counter only grows, and a write made while @cb runs calls it
 * again; without a new write there is no call. For notification eventfds (virtio
 * kicks) this saves a read() per wake-up. @fd must be a non-blocking eventfd
 * whose writers never fill its counter. Remove with umdev_loop_del_fd() (no
 * callback after that, even for writes already made); umdev_loop_mod_fd()
 * refuses it. Loop thread only (or before the loop runs).
 */
int umdev_loop_add_fd_edge(umdev_loop *loop, int fd, umdev_loop_fd_cb cb, void *opaque) UMDEV_WUR;

/* Pollers; loop thread only. Handles are opaque. */
typedef struct umdev_loop_poller umdev_loop_poller;
umdev_loop_poller *umdev_loop_add_poller(umdev_loop *loop, umdev_loop_poll_cb cb, void *opaque,
					 int *err) UMDEV_WUR;
void umdev_loop_del_poller(umdev_loop *loop, umdev_loop_poller *p);

/**
 * umdev_loop_call() - queue @fn(@opaque) to run on @loop's thread; any
 * thread, never blocks on the loop. -ENOMEM if the message cannot be queued.
 */
int umdev_loop_call(umdev_loop *loop, umdev_loop_fn fn, void *opaque) UMDEV_WUR;

/**
 * struct umdev_loop_deferred - work run once at the end of a loop iteration,
 * after its fd events, completions and pollers: the end of a batch (e.g. one
 * interrupt for every request a batch completed). Embed it; set @fn; the
 * other fields are the loop's.
 */
struct umdev_loop_deferred {
	void (*fn)(struct umdev_loop_deferred *d);
	struct umdev_loop_deferred *next;
	bool queued;
};

/**
 * umdev_loop_defer() - queue @d to run once at the end of this iteration (a
 * no-op if already queued). Loop thread only; no allocation, no syscall. @d
 * must stay valid until it ran or umdev_loop_cancel() took it back.
 */
void umdev_loop_defer(umdev_loop *loop, struct umdev_loop_deferred *d);
/** umdev_loop_cancel() - take @d back if queued. Loop thread only. */
void umdev_loop_cancel(umdev_loop *loop, struct umdev_loop_deferred *d);

/**
 * umdev_loop_call_sync() - run @fn on @loop's thread and wait for it to
 * return. Runs inline when already on that thread, and in the caller when
 * @loop is not running (after the messages queued before it). Must not be
 * called from a loop that @loop might itself wait on. Messages still queued
 * when a loop is freed are dropped without running.
 */
int umdev_loop_call_sync(umdev_loop *loop, umdev_loop_fn fn, void *opaque) UMDEV_WUR;

/**
 * umdev_loop_sqe() - a submission entry on @loop's io_uring, loop thread
 * only. On an epoll loop (umdev_loop_engine()) always NULL with -EOPNOTSUPP. The caller fills it (io_uring_prep_*), then calls
 * umdev_loop_sqe_ready(loop, sqe, io) which sets user_data (a NULL @io means
 * the completion is ignored). The entry is
 * submitted at the end of the current iteration. NULL with -EAGAIN in *err
 * when the ring is full even after submitting what was queued.
 */
struct io_uring_sqe *umdev_loop_sqe(umdev_loop *loop, int *err);
void umdev_loop_sqe_ready(umdev_loop *loop, struct io_uring_sqe *sqe, struct umdev_loop_io *io);

/**
 * umdev_loop_signal_eventfd() - add 1 to the eventfd @fd, which must be
 * non-blocking (O_NONBLOCK: a ring write to a blocking one would go to a
 * kernel worker thread). Called from deferred work (umdev_loop_defer) on an
 * io_uring loop, the write is queued on the ring and made by the system call
 * that also puts the loop to sleep, right after this iteration's deferred
 * work (which must not close @fd) and before any message or callback runs;
 * anywhere else it is a write(). 0, or -errno from write() (a saturated
 * counter counts as success: the reader is woken anyway). A failed ring
 * write is logged by the loop. Any thread; never blocks.
 */
int umdev_loop_signal_eventfd(int fd);

/** umdev_loop_io_pending() - io_uring requests submitted but not completed (0 on epoll). */
unsigned umdev_loop_io_pending(const umdev_loop *loop);

#endif
