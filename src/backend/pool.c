/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Worker pool for blocking backend calls; see pool.h for the contract.
 *
 * Completion path, worker side: push the item on the channel's stack
 * (compare-and-swap), write the eventfd if the stack was empty before, then
 * drop the channel reference taken at submission. Loop side: drain the
 * eventfd, then take the whole stack with one exchange, reverse it (oldest
 * first) and run ->done for each. Draining before taking means a push after
 * the exchange finds the stack empty and signals again, so no completion is
 * left waiting without a wake-up.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pool.h"
#include "umdev/log.h"

struct bdev_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct bdev_pool_work *head, *tail; /* queued work */
	unsigned nqueued, nworkers, nidle, max_workers;
	bool stop;
	pthread_t *threads; /* max_workers slots */
};

struct bdev_pool_chan {
	struct bdev_pool *pool;
	umdev_loop *loop;
	int efd;
	struct bdev_pool_work *_Atomic done_stack; /* newest first */
	atomic_uint refs; /* submitted items whose worker has not finished signalling */
};

void bdev_pool_chan_hold(struct bdev_pool_chan *c, struct bdev_pool_work *w)
{
	w->chan = c;
	w->next = NULL;
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void bdev_pool_chan_post(struct bdev_pool_work *w)
{
	struct bdev_pool_chan *c = w->chan;
	struct bdev_pool_work *old;
	uint64_t one = 1;

	old = atomic_load_explicit(&c->done_stack, memory_order_relaxed);
	do {
		w->next = old;
	} while (!atomic_compare_exchange_weak_explicit(&c->done_stack, &old, w,
						       memory_order_release, memory_order_relaxed));
	/* EAGAIN (counter saturated) still leaves the eventfd readable. */
	if (!old)
		while (write(c->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	atomic_fetch_sub_explicit(&c->refs, 1, memory_order_release);
}

static void *pool_worker(void *arg)
{
	struct bdev_pool *p = arg;

	/* Not the name of the loop that spawned us: tools tell the threads apart by it. */
	pthread_setname_np(pthread_self(), "umdev-io");

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct bdev_pool_work *w;

		while (!p->head && !p->stop) {
			p->nidle++;
			pthread_cond_wait(&p->cond, &p->lock);
			p->nidle--;
		}
		if (!p->head)
			break; /* stopping, and nothing left */
		w = p->head;
		p->nqueued--;
		p->head = w->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);

		w->fn(w);
		bdev_pool_chan_post(w);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct bdev_pool *bdev_pool_new(unsigned max_workers, int *err)
{
	struct bdev_pool *p = calloc(1, sizeof(*p));

	if (!p || max_workers == 0) {
		free(p);
		*err = p ? -EINVAL : -ENOMEM;
		return NULL;
	}
	p->threads = calloc(max_workers, sizeof(*p->threads));
	if (!p->threads) {
		free(p);
		*err = -ENOMEM;
		return NULL;
	}
	p->max_workers = max_workers;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	return p;
}

void bdev_pool_free(struct bdev_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nworkers; i++)
		pthread_join(p->threads[i], NULL);
	if (p->head)
		umdev_err("worker pool freed with work queued");
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}

unsigned bdev_pool_workers(struct bdev_pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->nworkers;
	pthread_mutex_unlock(&p->lock);
	return n;
}

static void chan_cb(void *opaque, uint32_t events)
{
	struct bdev_pool_chan *c = opaque;
	struct bdev_pool_work *list, *rev = NULL;
	uint64_t v;

	while (read(c->efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	list = atomic_exchange_explicit(&c->done_stack, NULL, memory_order_acquire);
	while (list) {
		struct bdev_pool_work *n = list->next;

		list->next = rev;
		rev = list;
		list = n;
	}
	while (rev) {
		struct bdev_pool_work *n = rev->next;

		rev->done(rev); /* may submit again, or free the item */
		rev = n;
	}
}

struct bdev_pool_chan *bdev_pool_chan_new(struct bdev_pool *p, umdev_loop *loop, int *err)
{
	struct bdev_pool_chan *c = calloc(1, sizeof(*c));
	int ret;

	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	c->pool = p;
	c->loop = loop;
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->efd < 0) {
		*err = -errno;
		free(c);
		return NULL;
	}
	ret = umdev_loop_add_fd(loop, c->efd, EPOLLIN, chan_cb, c);
	if (ret < 0) {
		close(c->efd);
		free(c);
		*err = ret;
		return NULL;
	}
	return c;
}

void bdev_pool_chan_free(struct bdev_pool_chan *c)
{
	if (!c)
		return;
	/* Workers may still be between their push and their last touch of c. */
	while (atomic_load_explicit(&c->refs, memory_order_acquire))
		sched_yield();
	if (atomic_load_explicit(&c->done_stack, memory_order_acquire))
		umdev_err("worker pool channel freed with completions not run");
	umdev_loop_del_fd(c->loop, c->efd);
	close(c->efd);
	free(c);
}

int bdev_pool_submit(struct bdev_pool_chan *c, struct bdev_pool_work *w)
{
	struct bdev_pool *p = c->pool;
	bool spawn = false;
	int ret = 0;

	bdev_pool_chan_hold(c, w);
	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = w;
	else
		p->head = w;
	p->tail = w;
	p->nqueued++;
	/*
	 * A worker per item in flight, up to the maximum: wake an idle one,
	 * and start another when more items wait than idle workers can take
	 * (idle ones signalled but not yet running are still counted idle).
	 */
	if (p->nidle)
		pthread_cond_signal(&p->cond);
	if (p->nqueued > p->nidle && p->nworkers < p->max_workers)
		spawn = true;
	if (spawn) {
		sigset_t all, old;
		pthread_attr_t attr;
		cpu_set_t cpus;

		/*
		 * Not on the CPU of the loop that happens to start it (--cpus):
		 * a worker blocks for any loop of the backend, so it may run
		 * wherever the process (its main thread, never pinned) may.
		 */
		pthread_attr_init(&attr);
		if (sched_getaffinity(getpid(), sizeof(cpus), &cpus) == 0)
			pthread_attr_setaffinity_np(&attr, sizeof(cpus), &cpus);
		/* Workers take no signals: the daemon handles them on its control loop. */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		ret = -pthread_create(&p->threads[p->nworkers], &attr, pool_worker, p);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&attr);
		if (ret == 0)
			p->nworkers++;
		else if (p->nworkers) /* the running workers will get to it */
			ret = 0;
		else {
			/* Nobody could ever run it: take it back. */
			p->head = p->tail = NULL;
			p->nqueued = 0;
			atomic_fetch_sub_explicit(&c->refs, 1, memory_order_relaxed);
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (ret < 0)
		umdev_err("cannot start an I/O worker: %d", ret);
	return ret;
}
