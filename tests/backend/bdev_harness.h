/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test harness shared by the backend tests: a loop, one backend and one
 * queue; run_io() submits a request and runs the loop until it completes.
 * Include after <cmocka.h>.
 */
#ifndef UMDEV_TEST_BDEV_HARNESS_H
#define UMDEV_TEST_BDEV_HARNESS_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend_internal.h"
#include "umdev/backend.h"
#include "umdev/loop.h"

/* ---- harness ---- */

struct env {
	umdev_loop *loop;
	umdev_bdev *b;
	umdev_bdev_queue *q;
	char path[64];
};

struct waiter {
	struct umdev_bdev_io io;
	umdev_loop *loop;
	int res;
	int calls;
};

static inline void io_done(struct umdev_bdev_io *io, int res)
{
	struct waiter *w = (struct waiter *)((char *)io - offsetof(struct waiter, io));

	w->res = res;
	w->calls++;
	/* Synchronous backends complete before the loop runs: nothing to stop. */
	if (umdev_loop_in_thread(w->loop))
		umdev_loop_stop(w->loop);
}

/* Runs one request to completion and returns its result. */
static inline int run_io(struct env *e, enum umdev_bdev_op op, uint64_t off, uint64_t len,
		  const struct iovec *iov, int iovcnt, bool fua)
{
	struct waiter w = {
		.io = { .op = op, .offset = off, .len = len, .iov = iov, .iovcnt = iovcnt,
			.fua = fua, .done = io_done },
		.loop = e->loop,
		.res = 1,
	};

	assert_int_equal(umdev_bdev_submit(e->q, &w.io), 0);
	if (!w.calls)
		assert_int_equal(umdev_loop_run(e->loop), 0);
	assert_int_equal(w.calls, 1);
	assert_int_equal(umdev_loop_io_pending(e->loop), 0);
	return w.res;
}

static inline int run_rw(struct env *e, enum umdev_bdev_op op, uint64_t off, void *buf, size_t len)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };

	return run_io(e, op, off, len, &iov, 1, false);
}

static inline void env_open(struct env *e, const char *spec, bool readonly)
{
	int err = 0;

	e->loop = umdev_loop_new("t-bdev", 64, &err);
	assert_non_null(e->loop);
	/* The engine asked for (or, under tests/nouring's launcher, the only one left). */
	assert_int_equal(umdev_loop_engine(e->loop),
			 getenv("UMDEV_TEST_NO_IO_URING") ||
					 umdev_io_engine_get_default() == UMDEV_IO_ENGINE_EPOLL ?
				 UMDEV_IO_ENGINE_EPOLL :
				 UMDEV_IO_ENGINE_IO_URING);
	e->b = umdev_bdev_open(spec, readonly, &err);
	assert_non_null(e->b);
	assert_string_equal(umdev_bdev_spec(e->b), spec);
	e->q = umdev_bdev_queue_new(e->b, e->loop, &err);
	assert_non_null(e->q);
}

/* Whether @e's file I/O went where its loop's engine says it must. */
static inline void check_io_path(const struct env *e)
{
	struct umdev_bdev_queue_stats st;

	umdev_bdev_queue_get_stats(e->q, &st);
	if (umdev_loop_engine(e->loop) == UMDEV_IO_ENGINE_EPOLL)
		assert_true(st.pool_ios + st.aio_ios > 0);
	else
		assert_true(st.pool_ios == 0 && st.aio_ios == 0);
}

static inline void env_close(struct env *e)
{
	umdev_bdev_queue_free(e->q);
	umdev_bdev_close(e->b);
	umdev_loop_free(e->loop);
	if (e->path[0])
		unlink(e->path);
}

/* Creates a temporary file of @size bytes filled with a pattern. */
static inline void make_file(struct env *e, const char *dir, size_t size)
{
	char *buf = malloc(size + 1);
	int fd;

	assert_non_null(buf);
	snprintf(e->path, sizeof(e->path), "%s/umdev-bdev-XXXXXX", dir);
	fd = mkstemp(e->path);
	assert_true(fd >= 0);
	for (size_t i = 0; i < size; i++)
		buf[i] = (char)(i * 7 + 3);
	assert_int_equal(pwrite(fd, buf, size, 0), (ssize_t)size);
	close(fd);
	free(buf);
}

static inline void *aligned_buf(size_t size, int fill)
{
	void *p = NULL;

	assert_int_equal(posix_memalign(&p, 4096, size), 0);
	memset(p, fill, size);
	return p;
}

static inline bool all_zero(const void *p, size_t len)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < len; i++)
		if (c[i])
			return false;
	return true;
}

/* Reads the file behind the backend's back, through the page cache. */
static inline void pread_file(const struct env *e, uint64_t off, void *buf, size_t len)
{
	int fd = open(e->path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

#endif
