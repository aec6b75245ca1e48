/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Block backends: where a block device's data lives.
 *
 * Concepts
 * - A umdev_bdev is one opened backend ("file:PATH", "ram:SIZE",
 *   "null:SIZE", "rbd:POOL/IMAGE"), shared by all queues of a device. A umdev_bdev_queue is its
 *   per-loop channel: each device queue has one, used only on that loop's
 *   thread, so the data path takes no locks.
 * - I/O reads and writes straight between the backend and the iovecs given
 *   (guest memory): no bounce buffer. The file backend uses io_uring on the
 *   queue's loop, with O_DIRECT when the file system and the request's
 *   alignment allow it, and buffered I/O through a second fd otherwise.
 * - Completion: io->done(io, res) on the queue's loop thread, res = 0 or
 *   -errno. On every backend done may run before umdev_bdev_submit()
 *   returns (ram and null always complete inline; validation errors do too);
 *   callers must not touch @io after submit.
 * - DISCARD is a hint: a backend that cannot discard completes it with 0.
 *   ram and null sizes must be multiples of 512 bytes.
 * - Flush means durable: fdatasync through io_uring for files.
 */
#ifndef UMDEV_BACKEND_H
#define UMDEV_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "umdev/loop.h"

typedef struct umdev_bdev umdev_bdev;
typedef struct umdev_bdev_queue umdev_bdev_queue;

enum umdev_bdev_op {
	UMDEV_BDEV_READ,
	UMDEV_BDEV_WRITE,
	UMDEV_BDEV_FLUSH,
	UMDEV_BDEV_DISCARD, /* may leave the range unspecified (hole) */
	UMDEV_BDEV_WRITE_ZEROES, /* reads back as zeroes afterwards */
};

struct umdev_bdev_io {
	enum umdev_bdev_op op;
	uint64_t offset; /* bytes */
	uint64_t len; /* bytes; READ/WRITE: must equal the iovec total */
	const struct iovec *iov; /* READ/WRITE only; must stay valid until done */
	int iovcnt;
	bool fua; /* WRITE: durable before done */
	void (*done)(struct umdev_bdev_io *io, int res);
	/* private to the backend */
	struct umdev_loop_io lio;
	void *priv;
};

struct umdev_bdev_info {
	uint64_t size; /* bytes */
	uint32_t block_size; /* logical block size, >= 512, power of two */
	uint32_t physical_block_size;
	bool readonly;
	bool can_discard;
	bool can_write_zeroes;
	bool volatile_cache; /* flush needed for durability */
	bool direct; /* O_DIRECT in use */
};

/**
 * umdev_bdev_open() - open a backend from its spec string:
 *   file:PATH   regular file or block device (io_uring)
 *   ram:SIZE    zero-filled memory, SIZE like 512M, 1G, 4096
 *   null:SIZE   reads return zeroes, writes are dropped
 *   nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH
 *               an NBD export (libnbd); "&nbd-timeout=SECONDS" (or NNNms)
 *               bounds every request, see docs/backends.md
 *   rbd:POOL/IMAGE[@SNAP][:conf=PATH][:id=USER]  a Ceph RBD image (librbd),
 *               when built with librbd; see docs/backends.md
 * @readonly opens read-only. Caller owns the result; control thread.
 */
umdev_bdev *umdev_bdev_open(const char *spec, bool readonly, int *err) UMDEV_WUR;
void umdev_bdev_close(umdev_bdev *b);
void umdev_bdev_get_info(const umdev_bdev *b, struct umdev_bdev_info *info);
/** umdev_bdev_spec() - the spec string it was opened with. */
const char *umdev_bdev_spec(const umdev_bdev *b);

/** umdev_bdev_flush_sync() - make all completed writes durable; blocking. */
int umdev_bdev_flush_sync(umdev_bdev *b) UMDEV_WUR;

/**
 * umdev_bdev_queue_new() - per-loop channel; create and free it on @loop's
 * thread (or before the loop runs). Free only with no I/O in flight.
 */
umdev_bdev_queue *umdev_bdev_queue_new(umdev_bdev *b, umdev_loop *loop, int *err) UMDEV_WUR;
void umdev_bdev_queue_free(umdev_bdev_queue *q);

/**
 * umdev_bdev_submit() - start @io; loop thread only. Range checks are the
 * backend's too: an offset/len beyond the size fails with -EINVAL through
 * done, never touches memory or the file beyond it. Returns 0 if done will be
 * (or was) called, -errno if not started (done not called).
 */
int umdev_bdev_submit(umdev_bdev_queue *q, struct umdev_bdev_io *io) UMDEV_WUR;

/**
 * umdev_bdev_size_cb - the backend's size changed to @size bytes (an RBD
 * image resized by its owner). umdev_bdev_get_info() and the range check of
 * new requests already use the new size. Runs on the loop given to
 * umdev_bdev_watch_size(); must not block.
 */
typedef void (*umdev_bdev_size_cb)(void *opaque, uint64_t size);

/**
 * umdev_bdev_watch_size() - call @cb(@opaque, size) on @loop's thread when
 * the backend's size changes behind our back (rbd: yes; file, ram, null:
 * never). Once per backend (-EBUSY after); stays until
 * umdev_bdev_close(), which must run on @loop's thread or with @loop
 * stopped. Control thread.
 */
int umdev_bdev_watch_size(umdev_bdev *b, umdev_loop *loop, umdev_bdev_size_cb cb,
			  void *opaque) UMDEV_WUR;

/** umdev_bdev_parse_size() - "4096", "512K", "1G"... in bytes. */
int umdev_bdev_parse_size(const char *s, uint64_t *out) UMDEV_WUR;

#endif
