/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Worker pool for blocking backend calls, used by the file backend on loops
 * without io_uring (the epoll engine).
 *
 * Concepts
 * - A pool is a few threads taking work items from one bounded-by-use FIFO
 *   (a mutex and a condition variable: the only lock on the submission
 *   path). Threads are started on demand, when work arrives and none is
 *   idle, up to the pool's maximum; they live until the pool is freed.
 * - A channel ties the pool to one loop. Work submitted through a channel
 *   runs ->fn on a worker, then ->done on the channel's loop thread: the
 *   worker pushes the item onto the channel's lock-free completion stack and
 *   writes the channel's eventfd (only when the stack was empty, so a burst
 *   costs one wake-up), which the loop watches.
 * - Nothing blocks the loop thread except freeing a channel, which waits
 *   for workers still signalling completions the loop has already run
 *   (a few instructions).
 */
#ifndef UMDEV_BACKEND_POOL_H
#define UMDEV_BACKEND_POOL_H

#include "umdev/loop.h"

struct bdev_pool;
struct bdev_pool_chan;

/*
 * One work item, embedded in the caller's request (container_of). The
 * caller owns it; it must stay valid until ->done has run.
 */
struct bdev_pool_work {
	void (*fn)(struct bdev_pool_work *w); /* worker thread; may block */
	void (*done)(struct bdev_pool_work *w); /* the channel's loop thread */
	struct bdev_pool_chan *chan; /* set by bdev_pool_submit() */
	struct bdev_pool_work *next;
};

/** bdev_pool_new() - a pool of at most @max_workers threads (none started yet). */
struct bdev_pool *bdev_pool_new(unsigned max_workers, int *err) UMDEV_WUR;

/** bdev_pool_free() - stop and join the workers; every channel must be freed. */
void bdev_pool_free(struct bdev_pool *p);

/** bdev_pool_workers() - threads started so far; any thread. */
unsigned bdev_pool_workers(struct bdev_pool *p);

/**
 * bdev_pool_chan_new() - a channel delivering completions to @loop; on
 * @loop's thread or before it runs. Caller frees it with
 * bdev_pool_chan_free() on the same thread, with no work in flight.
 */
struct bdev_pool_chan *bdev_pool_chan_new(struct bdev_pool *p, umdev_loop *loop,
					  int *err) UMDEV_WUR;
void bdev_pool_chan_free(struct bdev_pool_chan *c);

/**
 * bdev_pool_submit() - queue @w; the channel's loop thread. Never blocks on
 * I/O. Returns 0 (->done will run later, never inline) or -errno when no
 * worker can run it (->done will not run).
 */
int bdev_pool_submit(struct bdev_pool_chan *c, struct bdev_pool_work *w) UMDEV_WUR;

/*
 * A channel also carries completions of work that some other thread runs
 * (a library's callback thread, the RBD backend): take the item with
 * bdev_pool_chan_hold() on the channel's loop thread before starting it,
 * then call bdev_pool_chan_post() from that thread once it is done (->fn is
 * not used); ->done runs on the loop as for pool work. Such a channel may
 * be made with a NULL pool (bdev_pool_submit() then must not be used).
 */
void bdev_pool_chan_hold(struct bdev_pool_chan *c, struct bdev_pool_work *w);
void bdev_pool_chan_post(struct bdev_pool_work *w);

#endif
