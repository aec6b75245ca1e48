/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NBD backends in a build without libnbd (the arm64 cross build:
 * Debian's libnbd-dev cannot be installed for two architectures at once).
 * The URIs are still recognised, so the error says what is missing.
 */
#include <errno.h>

#include "backend_internal.h"
#include "umdev/log.h"

static int nbd_none_open(umdev_bdev *b, const char *arg, bool readonly)
{
	umdev_err("'%s': this umdevd was built without libnbd (libnbd-dev)", b->spec);
	return -EPROTONOSUPPORT;
}

/* Never reached: open always fails. */
static void nbd_none_close(umdev_bdev *b)
{
}

static int nbd_none_queue_new(umdev_bdev_queue *q)
{
	return -EPROTONOSUPPORT;
}

static void nbd_none_queue_free(umdev_bdev_queue *q)
{
}

static int nbd_none_submit(umdev_bdev_queue *q, struct umdev_bdev_io *io)
{
	return -EPROTONOSUPPORT;
}

static int nbd_none_flush_sync(umdev_bdev *b)
{
	return -EPROTONOSUPPORT;
}

#define NBD_NONE_OPS(name, scheme)                                                         \
	const struct umdev_bdev_ops name = {                                               \
		.kind = scheme,                                                            \
		.open = nbd_none_open,                                                     \
		.close = nbd_none_close,                                                   \
		.queue_new = nbd_none_queue_new,                                           \
		.queue_free = nbd_none_queue_free,                                         \
		.submit = nbd_none_submit,                                                 \
		.flush_sync = nbd_none_flush_sync,                                         \
	}

NBD_NONE_OPS(umdev_bdev_nbd_ops, "nbd");
NBD_NONE_OPS(umdev_bdev_nbd_unix_ops, "nbd+unix");
NBD_NONE_OPS(umdev_bdev_nbds_ops, "nbds");
NBD_NONE_OPS(umdev_bdev_nbds_unix_ops, "nbds+unix");
