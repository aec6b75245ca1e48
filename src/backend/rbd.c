/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * "rbd:POOL/IMAGE[@SNAP][:key=value...]" backend: a Ceph RBD image through
 * librbd's asynchronous API. Keys: conf=PATH (ceph.conf; default: librados'
 * search path and $CEPH_CONF), id=NAME (cephx user without "client.";
 * default admin), snap=NAME (same as @SNAP). ':' rather than ',' separates
 * the keys because a device spec is itself comma-separated.
 *
 * Opening connects to the cluster on the control thread with bounded
 * timeouts (client_mount_timeout, rados_mon_op_timeout, rados_osd_op_timeout),
 * so a wrong address, a wrong key or a missing image is an error at create
 * time after seconds, not a hang; nothing is left open on failure.
 *
 * I/O
 * - One image handle per backend, shared by every queue. librbd completes
 *   requests on its own threads; the completion callback only pushes the
 *   request onto its queue's lock-free completion stack and writes the
 *   queue's eventfd (pool.h's channel), so io->done runs on the queue's loop.
 *   rbd_set_image_notification() would do the same for one loop only (one
 *   eventfd per image), and a second image handle per queue would make the
 *   handles trade the exclusive lock on every write.
 * - READ/WRITE: rbd_aio_readv/rbd_aio_writev straight on the iovecs (guest
 *   memory). FUA writes are followed by rbd_aio_flush before done: librbd's
 *   cache may hold writes, so volatile_cache is reported.
 * - FLUSH: rbd_aio_flush. DISCARD: rbd_aio_discard. WRITE_ZEROES:
 *   rbd_aio_write_zeroes (reads back as zeroes, may deallocate).
 * - A snapshot is opened read-only; so is the image with readonly.
 *
 * Resize: an update watch on the image header notices a resize made by
 * anyone (rbd resize); the new size is read on the loop given to
 * umdev_bdev_watch_size() (a header refresh: may wait briefly on the
 * cluster) and reported through umdev_bdev_size_changed().
 *
 * Guest memory taken away under a request (a hostile client shrinking its
 * memfd) is caught by the SIGBUS guard (mem.h) on whichever thread copies:
 * the loop thread for writes (librbd copies the data before
 * rbd_aio_writev returns), librbd's for reads. Nothing crashes; the client
 * only corrupts its own disk or reads.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rbd/librbd.h>

#include "backend_internal.h"
#include "pool.h"
#include "umdev/log.h"

/* Seconds: an unreachable cluster fails the create, it does not hang it. */
#define RBD_CONNECT_TIMEOUT "10"
#define RBD_OP_TIMEOUT "30"

/*
 * The update watch's link to the backend. librbd may call the watch from
 * its thread until rbd_update_unwatch() returns, and the message it posts
 * may run after the backend is gone: both hold a reference, and @b is
 * cleared (on the size loop's thread) when the backend closes.
 */
struct rbd_watch {
	atomic_uint refs;
	umdev_bdev *_Atomic b; /* NULL once closed; size loop's thread */
};

struct rbd_bdev {
	rados_t cluster;
	rados_ioctx_t ioctx;
	rbd_image_t image;
	uint64_t watch_handle;
	struct rbd_watch *watch;
	char *pool, *name, *snap, *conf, *id;
};

struct rbd_req {
	struct bdev_pool_work w; /* completion channel item */
	struct umdev_bdev_io *io;
	struct rbd_queue *rq;
	ssize_t res;
	bool flush_next; /* FUA write: flush once the write is done */
	struct rbd_req *free_next;
};

struct rbd_queue {
	umdev_bdev_queue *q;
	struct bdev_pool_chan *chan;
	struct rbd_req *free_list; /* the queue's thread only */
};

static void rbd_free_args(struct rbd_bdev *r)
{
	free(r->pool);
	free(r->name);
	free(r->snap);
	free(r->conf);
	free(r->id);
}

static int set_str(char **dst, const char *v, size_t n)
{
	if (*dst || n == 0)
		return -EINVAL; /* given twice, or empty */
	*dst = strndup(v, n);
	return *dst ? 0 : -ENOMEM;
}

/* POOL/IMAGE[@SNAP][:conf=PATH][:id=NAME][:snap=NAME] */
static int rbd_parse(struct rbd_bdev *r, const char *arg)
{
	const char *end = strchr(arg, ':'), *slash, *at;
	size_t head = end ? (size_t)(end - arg) : strlen(arg);
	int ret;

	slash = memchr(arg, '/', head);
	if (!slash || slash == arg)
		return -EINVAL;
	at = memchr(slash, '@', head - (size_t)(slash - arg));
	if ((ret = set_str(&r->pool, arg, (size_t)(slash - arg))) < 0 ||
	    (ret = set_str(&r->name, slash + 1, (size_t)((at ? at : arg + head) - slash - 1))) < 0)
		return ret;
	if (memchr(r->name, '/', strlen(r->name)))
		return -EINVAL; /* namespaces are not supported */
	if (at && (ret = set_str(&r->snap, at + 1, (size_t)(arg + head - at - 1))) < 0)
		return ret;
	while (end) {
		const char *kv = end + 1, *eq;
		size_t n;

		end = strchr(kv, ':');
		n = end ? (size_t)(end - kv) : strlen(kv);
		eq = memchr(kv, '=', n);
		if (!eq)
			return -EINVAL;
		if (eq - kv == 4 && !strncmp(kv, "conf", 4))
			ret = set_str(&r->conf, eq + 1, n - 5);
		else if (eq - kv == 2 && !strncmp(kv, "id", 2))
			ret = set_str(&r->id, eq + 1, n - 3);
		else if (eq - kv == 4 && !strncmp(kv, "snap", 4))
			ret = set_str(&r->snap, eq + 1, n - 5);
		else
			ret = -EINVAL;
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void rbd_disconnect(struct rbd_bdev *r)
{
	if (r->image)
		rbd_close(r->image);
	if (r->ioctx)
		rados_ioctx_destroy(r->ioctx);
	if (r->cluster)
		rados_shutdown(r->cluster);
	r->image = NULL;
	r->ioctx = NULL;
	r->cluster = NULL;
}

static int rbd_connect(struct rbd_bdev *r, const char *spec, bool readonly)
{
	static const char *const settings[][2] = {
		{ "client_mount_timeout", RBD_CONNECT_TIMEOUT },
		{ "rados_mon_op_timeout", RBD_CONNECT_TIMEOUT },
		{ "rados_osd_op_timeout", RBD_OP_TIMEOUT },
		/* Write data is copied at submission: the guest cannot change it in flight. */
		{ "rbd_disable_zero_copy_writes", "true" },
	};
	const char *step;
	int ret;

	step = "cannot create a cluster handle";
	ret = rados_create(&r->cluster, r->id);
	if (ret < 0)
		goto fail;
	step = "cannot read the Ceph configuration";
	ret = rados_conf_read_file(r->cluster, r->conf);
	if (ret < 0 && (r->conf || ret != -ENOENT))
		goto fail;
	ret = rados_conf_parse_env(r->cluster, NULL);
	if (ret < 0)
		goto fail;
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		ret = rados_conf_set(r->cluster, settings[i][0], settings[i][1]);
		if (ret < 0)
			goto fail;
	}
	step = "cannot connect to the cluster";
	ret = rados_connect(r->cluster);
	if (ret < 0)
		goto fail;
	step = "cannot open the pool";
	ret = rados_ioctx_create(r->cluster, r->pool, &r->ioctx);
	if (ret < 0)
		goto fail;
	step = "cannot open the image";
	ret = readonly ? rbd_open_read_only(r->ioctx, r->name, &r->image, r->snap)
		       : rbd_open(r->ioctx, r->name, &r->image, NULL);
	if (ret < 0)
		goto fail;
	return 0;
fail:
	umdev_err("backend '%s': %s: %s", spec, step,
		  ret == -ETIMEDOUT ? "timed out (is the cluster up and reachable?)"
				    : strerror(-ret));
	r->image = NULL; /* rbd_open leaves it unset on failure */
	rbd_disconnect(r);
	return ret;
}

static void watch_put(struct rbd_watch *w)
{
	if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) == 1)
		free(w);
}

/* On the size loop: read the new size (a header refresh; may block briefly). */
static void watch_msg(void *opaque)
{
	struct rbd_watch *w = opaque;
	umdev_bdev *b = atomic_load_explicit(&w->b, memory_order_relaxed);
	uint64_t size;

	if (b) {
		struct rbd_bdev *r = b->priv;

		if (rbd_get_size(r->image, &size) == 0)
			umdev_bdev_size_changed(b, size);
	}
	watch_put(w);
}

/* librbd's thread: the image header changed (resize, snapshot, lock...). */
static void watch_cb(void *arg)
{
	struct rbd_watch *w = arg;
	umdev_bdev *b = atomic_load_explicit(&w->b, memory_order_acquire);
	umdev_loop *loop = b ? umdev_bdev_size_loop(b) : NULL;

	if (!loop)
		return; /* nobody listens to size changes */
	atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
	if (umdev_loop_call(loop, watch_msg, w) < 0)
		watch_put(w);
}

static int rbd_open_bdev(umdev_bdev *b, const char *arg, bool readonly)
{
	struct rbd_bdev *r = calloc(1, sizeof(*r));
	uint64_t size;
	int ret;

	if (!r)
		return -ENOMEM;
	ret = rbd_parse(r, arg);
	if (ret < 0) {
		if (ret == -EINVAL)
			umdev_err("rbd:%s: expected rbd:POOL/IMAGE[@SNAP][:conf=PATH][:id=USER]"
				  "[:snap=NAME]", arg);
		goto fail;
	}
	if (r->snap)
		readonly = true; /* snapshots are immutable */
	ret = rbd_connect(r, b->spec, readonly);
	if (ret < 0)
		goto fail;
	ret = rbd_get_size(r->image, &size);
	if (ret < 0)
		goto fail_conn;
	r->watch = calloc(1, sizeof(*r->watch));
	if (!r->watch) {
		ret = -ENOMEM;
		goto fail_conn;
	}
	atomic_init(&r->watch->refs, 1);
	atomic_init(&r->watch->b, b);
	ret = rbd_update_watch(r->image, &r->watch_handle, watch_cb, r->watch);
	if (ret < 0) {
		free(r->watch);
		goto fail_conn;
	}
	b->priv = r;
	b->info.size = size;
	b->info.block_size = 512;
	b->info.physical_block_size = 4096;
	b->info.readonly = readonly;
	b->info.can_discard = !readonly;
	b->info.can_write_zeroes = !readonly;
	b->info.volatile_cache = true; /* librbd's cache; flush makes writes durable */
	b->info.direct = false;
	return 0;
fail_conn:
	rbd_disconnect(r);
fail:
	rbd_free_args(r);
	free(r);
	return ret;
}

static void watch_detach(void *opaque)
{
	struct rbd_watch *w = opaque;

	atomic_store_explicit(&w->b, NULL, memory_order_release);
}

static void rbd_close_bdev(umdev_bdev *b)
{
	struct rbd_bdev *r = b->priv;
	umdev_loop *loop = umdev_bdev_size_loop(b);

	/* After this no new watch call starts; messages already posted see b == NULL. */
	rbd_update_unwatch(r->image, r->watch_handle);
	if (!loop || umdev_loop_call_sync(loop, watch_detach, r->watch) < 0)
		watch_detach(r->watch);
	watch_put(r->watch);
	rbd_disconnect(r);
	rbd_free_args(r);
	free(r);
}

static int rbd_queue_new(umdev_bdev_queue *q)
{
	struct rbd_queue *rq = calloc(1, sizeof(*rq));
	int err = 0;

	if (!rq)
		return -ENOMEM;
	rq->q = q;
	rq->chan = bdev_pool_chan_new(NULL, q->loop, &err);
	if (!rq->chan) {
		free(rq);
		return err;
	}
	q->priv = rq;
	return 0;
}

static void rbd_queue_free(umdev_bdev_queue *q)
{
	struct rbd_queue *rq = q->priv;

	bdev_pool_chan_free(rq->chan);
	while (rq->free_list) {
		struct rbd_req *n = rq->free_list->free_next;

		free(rq->free_list);
		rq->free_list = n;
	}
	free(rq);
}

static void req_put(struct rbd_req *req)
{
	req->free_next = req->rq->free_list;
	req->rq->free_list = req;
}

/* librbd's thread: hand the request to its queue's loop. */
static void rbd_cb(rbd_completion_t c, void *arg)
{
	struct rbd_req *req = arg;

	req->res = rbd_aio_get_return_value(c);
	rbd_aio_release(c);
	bdev_pool_chan_post(&req->w);
}

/*
 * Start one librbd call for @req. 0: rbd_req_done will run (on failure to
 * start too, with the error); -errno: no completion could be made, nothing
 * started.
 */
static int rbd_start(struct rbd_bdev *r, struct rbd_req *req, enum umdev_bdev_op op)
{
	struct umdev_bdev_io *io = req->io;
	rbd_completion_t c;
	int ret;

	ret = rbd_aio_create_completion(req, rbd_cb, &c);
	if (ret < 0)
		return ret;
	bdev_pool_chan_hold(req->rq->chan, &req->w);
	switch (op) {
	case UMDEV_BDEV_READ:
		ret = rbd_aio_readv(r->image, io->iov, io->iovcnt, io->offset, c);
		break;
	case UMDEV_BDEV_WRITE:
		ret = rbd_aio_writev(r->image, io->iov, io->iovcnt, io->offset, c);
		break;
	case UMDEV_BDEV_FLUSH:
		ret = rbd_aio_flush(r->image, c);
		break;
	case UMDEV_BDEV_DISCARD:
		ret = rbd_aio_discard(r->image, io->offset, io->len, c);
		break;
	case UMDEV_BDEV_WRITE_ZEROES:
		ret = rbd_aio_write_zeroes(r->image, io->offset, io->len, c, 0, 0);
		break;
	default:
		ret = -EINVAL;
		break;
	}
	if (ret < 0) {
		/* Not started: the callback will not run; give back the channel hold. */
		rbd_aio_release(c);
		req->res = ret;
		bdev_pool_chan_post(&req->w);
	}
	return 0;
}

/* The request's loop: one librbd call finished. */
static void rbd_req_done(struct bdev_pool_work *w)
{
	struct rbd_req *req = (struct rbd_req *)w;
	struct umdev_bdev_io *io = req->io;
	int res = req->res < 0 ? (int)req->res : 0;

	if (res == 0 && req->flush_next) {
		req->flush_next = false;
		res = rbd_start(req->rq->q->b->priv, req, UMDEV_BDEV_FLUSH);
		if (res == 0)
			return;
	}
	req_put(req);
	io->done(io, res);
}

static int rbd_submit(umdev_bdev_queue *q, struct umdev_bdev_io *io)
{
	struct rbd_queue *rq = q->priv;
	struct rbd_req *req = rq->free_list;
	int ret;

	if (req)
		rq->free_list = req->free_next;
	else if (!(req = calloc(1, sizeof(*req))))
		return -ENOMEM;
	req->w.done = rbd_req_done;
	req->io = io;
	req->rq = rq;
	req->res = 0;
	req->flush_next = io->op == UMDEV_BDEV_WRITE && io->fua;
	ret = rbd_start(q->b->priv, req, io->op);
	if (ret < 0)
		req_put(req);
	return ret;
}

static int rbd_flush_sync(umdev_bdev *b)
{
	struct rbd_bdev *r = b->priv;

	return b->info.readonly ? 0 : rbd_flush(r->image);
}

const struct umdev_bdev_ops umdev_bdev_rbd_ops = {
	.kind = "rbd",
	.open = rbd_open_bdev,
	.close = rbd_close_bdev,
	.queue_new = rbd_queue_new,
	.queue_free = rbd_queue_free,
	.submit = rbd_submit,
	.flush_sync = rbd_flush_sync,
};
