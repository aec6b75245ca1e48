/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-blk over vhost-user, as a daemon device type. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "dev_type.h"
#include "umdev/blk.h"
#include "umdev/log.h"
#include "umdev/vhost_user.h"

struct vblk_inst {
	char id[32];
	umdev_blk *blk;
	umdev_vu_server *vu;
};

static void vblk_destroy(void *opaque)
{
	struct vblk_inst *v = opaque;

	/* Transport first: it stops the queues, which drain their in-flight I/O. */
	umdev_vu_server_free(v->vu);
	if (v->blk) {
		int ret = umdev_blk_flush(v->blk);

		if (ret < 0)
			umdev_err("%s: final flush failed: %s", v->id, strerror(-ret));
		umdev_blk_free(v->blk);
	}
	free(v);
}

static bool vblk_connected(void *opaque)
{
	return umdev_vu_server_connected(((struct vblk_inst *)opaque)->vu);
}

static int vblk_create(const struct umdev_dev_ctx *ctx, struct umdev_kv *kv, void **inst,
		       char *msg, size_t msglen)
{
	struct umdev_blk_opts o = { .id = ctx->id, .ctl = ctx->ctl };
	unsigned long nq, qsize, poll_us;
	struct vblk_inst *v;
	int ret, err = 0, lfd = -1;

	o.backend = umdev_kv_get(kv, "backend");
	o.serial = umdev_kv_get(kv, "serial");
	if ((ret = umdev_kv_bool(kv, "readonly", false, &o.readonly, msg, msglen)) < 0 ||
	    (ret = umdev_kv_bool(kv, "poll", false, &o.poll, msg, msglen)) < 0 ||
	    (ret = umdev_kv_uint(kv, "num-queues", UMDEV_BLK_MAX_QUEUES, 1, UMDEV_BLK_MAX_QUEUES, &nq, msg,
				 msglen)) < 0 ||
	    (ret = umdev_kv_uint(kv, "queue-size", 1024, 1, 32768, &qsize, msg, msglen)) < 0 ||
	    (ret = umdev_kv_uint(kv, "poll-us", 32, 0, 1000000, &poll_us, msg, msglen)) < 0)
		return ret;
	if (!o.backend) {
		snprintf(msg, msglen, "virtio-blk needs backend=file:PATH, ram:SIZE or null:SIZE");
		return -EINVAL;
	}
	if (qsize & (qsize - 1)) {
		snprintf(msg, msglen, "queue-size=%lu: must be a power of two", qsize);
		return -EINVAL;
	}
	if (o.serial && strlen(o.serial) > 20) {
		snprintf(msg, msglen, "serial is at most 20 characters");
		return -EINVAL;
	}
	ret = umdev_kv_check_unused(kv, msg, msglen);
	if (ret < 0)
		return ret;
	o.num_queues = nq;
	o.queue_size = qsize;
	o.poll_us = poll_us;

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	snprintf(v->id, sizeof(v->id), "%s", ctx->id);
	v->blk = umdev_blk_new(&o, ctx->loops, ctx->num_loops, &err);
	if (!v->blk) {
		snprintf(msg, msglen, "cannot open backend '%s': %s", o.backend, strerror(-err));
		vblk_destroy(v);
		return err;
	}
	/* An inherited socket stays the daemon's: the server gets (and owns) a dup. */
	if (ctx->listen_fd >= 0) {
		lfd = fcntl(ctx->listen_fd, F_DUPFD_CLOEXEC, 3);
		if (lfd < 0) {
			err = -errno;
			snprintf(msg, msglen, "cannot use fd %d: %s", ctx->listen_fd, strerror(errno));
			vblk_destroy(v);
			return err;
		}
		/* accept4() must never block the control loop (shares the file status). */
		fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
	}
	v->vu = umdev_vu_server_new(umdev_blk_vdev(v->blk), ctx->ctl,
				    lfd >= 0 ? NULL : ctx->socket, lfd, &err);
	if (!v->vu) {
		/* The server owns a given fd only once it was created. */
		if (lfd >= 0)
			close(lfd);
		snprintf(msg, msglen, "cannot listen on %s: %s", ctx->socket,
			 err == -EADDRINUSE ? "another server is listening there" :
			 strerror(-err));
		vblk_destroy(v);
		return err;
	}
	umdev_info("%s: virtio-blk on %s, backend %s%s, up to %lu queue(s)", ctx->id, ctx->socket,
		   o.backend, o.readonly ? " (read-only)" : "", nq);
	*inst = v;
	return 0;
}

static struct json_object *vblk_stats(void *opaque)
{
	return umdev_ctl_virtio_stats(umdev_blk_vdev(((struct vblk_inst *)opaque)->blk));
}

/* virtio-blk has no runtime methods yet; the RPC turns this into a clear error. */
static int vblk_call(void *opaque, const char *method, struct json_object *params,
		     struct json_object **result, char *msg, size_t msglen)
{
	return -ENOENT;
}

const struct umdev_dev_type umdev_type_virtio_blk = {
	.name = "virtio-blk",
	.transport = "vhost-user",
	.params = "id=ID,socket=PATH,backend=file:PATH|ram:SIZE|null:SIZE[,num-queues=N]"
		  "[,readonly=on][,queue-size=N][,serial=S][,poll=on][,poll-us=N]",
	.create = vblk_create,
	.destroy = vblk_destroy,
	.connected = vblk_connected,
	.call = vblk_call,
	.stats = vblk_stats,
	.inherit_fd = true,
};
