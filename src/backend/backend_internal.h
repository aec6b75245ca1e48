/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private definitions of the block backends (src/backend/).
 *
 * backend.c parses the spec, validates every request (op, range, iovec
 * total, read-only) and only then calls the backend's ops, so each backend
 * sees well-formed requests inside its size.
 */
#ifndef UMDEV_BACKEND_INTERNAL_H
#define UMDEV_BACKEND_INTERNAL_H

#include <stdatomic.h>

#include "umdev/backend.h"

/**
 * struct umdev_bdev_ops - one kind of backend. All ops are mandatory.
 * @open: parse @arg (the spec after "kind:"), fill b->info and b->priv.
 *        Control thread; may block.
 * @close: release b->priv; every queue is already freed.
 * @queue_new: set up q->priv; on @q->loop's thread or before it runs.
 * @queue_free: release q->priv; no I/O in flight.
 * @submit: start a request that passed validation; loop thread. Returns 0
 *        when io->done will be (or was) called, -errno otherwise.
 * @flush_sync: make completed writes durable; blocking, any thread.
 */
struct umdev_bdev_ops {
	const char *kind;
	int (*open)(umdev_bdev *b, const char *arg, bool readonly);
	void (*close)(umdev_bdev *b);
	int (*queue_new)(umdev_bdev_queue *q);
	void (*queue_free)(umdev_bdev_queue *q);
	int (*submit)(umdev_bdev_queue *q, struct umdev_bdev_io *io);
	int (*flush_sync)(umdev_bdev *b);
};

struct umdev_bdev {
	const struct umdev_bdev_ops *ops;
	char *spec;
	struct umdev_bdev_info info; /* info.size: at open; the current size is size */
	_Atomic uint64_t size; /* bytes; changes on a resize (any thread reads it) */
	void *priv;
	atomic_uint nqueues; /* queues not yet freed */
	/* umdev_bdev_watch_size(): size_loop is set last (release), read by any thread. */
	umdev_loop *_Atomic size_loop;
	umdev_bdev_size_cb size_cb;
	void *size_opaque;
};

/* Counters for tests and statistics; only the queue's thread writes them. */
struct umdev_bdev_queue_stats {
	uint64_t direct_ios; /* requests (or continuations) sent to the O_DIRECT fd */
	uint64_t buffered_ios; /* ... to the buffered fd */
	uint64_t short_ios; /* partial transfers that were continued */
	uint64_t deferred; /* requests that waited for a free submission entry */
	uint64_t pool_ios; /* steps run on the worker pool (epoll loops) */
	uint64_t aio_ios; /* steps run as native AIO (epoll loops, O_DIRECT) */
};

struct umdev_bdev_queue {
	umdev_bdev *b;
	umdev_loop *loop;
	void *priv;
	struct umdev_bdev_queue_stats stats;
};

extern const struct umdev_bdev_ops umdev_bdev_file_ops;
extern const struct umdev_bdev_ops umdev_bdev_ram_ops;
extern const struct umdev_bdev_ops umdev_bdev_null_ops;
extern const struct umdev_bdev_ops umdev_bdev_nbd_ops; /* nbd.c */
extern const struct umdev_bdev_ops umdev_bdev_nbd_unix_ops;
extern const struct umdev_bdev_ops umdev_bdev_nbds_ops; /* TLS */
extern const struct umdev_bdev_ops umdev_bdev_nbds_unix_ops;
#ifdef UMDEV_HAVE_RBD
extern const struct umdev_bdev_ops umdev_bdev_rbd_ops;
#endif

/** umdev_bdev_size_loop() - the loop size changes go to, or NULL; any thread. */
umdev_loop *umdev_bdev_size_loop(const umdev_bdev *b);
/**
 * umdev_bdev_size_changed() - a backend found its size is now @size: publish
 * it (info.size, range checks) and tell the watcher. The size loop's thread.
 */
void umdev_bdev_size_changed(umdev_bdev *b, uint64_t size);

/** umdev_bdev_queue_get_stats() - copy of @q's counters; @q's thread. */
void umdev_bdev_queue_get_stats(const umdev_bdev_queue *q, struct umdev_bdev_queue_stats *st);

/*
 * Helpers shared by the backends.
 */

/* Copies the first @len bytes of the iovecs into @dst. */
void umdev_bdev_iov_to_buf(const struct iovec *iov, int iovcnt, void *dst, uint64_t len);
/* Copies @src into the iovecs. */
void umdev_bdev_buf_to_iov(const struct iovec *iov, int iovcnt, const void *src, uint64_t len);
/* Zeroes the iovecs from byte @skip on. */
void umdev_bdev_iov_zero(const struct iovec *iov, int iovcnt, uint64_t skip);

#endif
