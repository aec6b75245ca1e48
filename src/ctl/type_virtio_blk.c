/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-blk over vhost-user or virtio-pci on vfio-user, as a daemon device type. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "dev_type.h"
#include "umdev/blk.h"
#include "umdev/log.h"

struct vblk_inst {
	char id[32];
	umdev_blk *blk;
	struct umdev_ctl_vt vt;
};

static void vblk_destroy(void *opaque)
{
	struct vblk_inst *v = opaque;

	/* Transport first: it stops the queues, which drain their in-flight I/O. */
	umdev_ctl_vt_stop(&v->vt);
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
	return umdev_ctl_vt_connected(&((struct vblk_inst *)opaque)->vt);
}

static int vblk_create(const struct umdev_dev_ctx *ctx, struct umdev_kv *kv, void **inst,
		       char *msg, size_t msglen)
{
	struct umdev_blk_opts o = { .id = ctx->id, .ctl = ctx->ctl };
	unsigned long nq, qsize, poll_us;
	struct vblk_inst *v;
	struct umdev_ctl_vt vt = { 0 };
	int ret, err = 0;

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
	ret = umdev_ctl_vt_parse(&vt, kv, msg, msglen);
	if (ret == 0)
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
	v->vt = vt;
	ret = umdev_ctl_vt_start(&v->vt, umdev_blk_vdev(v->blk), ctx, msg, msglen);
	if (ret < 0) {
		vblk_destroy(v);
		return ret;
	}
	umdev_info("%s: virtio-blk on %s %s, backend %s%s, up to %lu queue(s)", ctx->id,
		   umdev_ctl_vt_name(&v->vt), ctx->socket, o.backend, o.readonly ? " (read-only)" : "", nq);
	*inst = v;
	return 0;
}

static const char *vblk_transport(void *opaque)
{
	return umdev_ctl_vt_name(&((struct vblk_inst *)opaque)->vt);
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
		  "[,readonly=on][,queue-size=N][,serial=S][,poll=on][,poll-us=N]" UMDEV_CTL_VT_PARAMS,
	.create = vblk_create,
	.destroy = vblk_destroy,
	.connected = vblk_connected,
	.call = vblk_call,
	.stats = vblk_stats,
	.inherit_fd = true,
	.transport_of = vblk_transport,
};
